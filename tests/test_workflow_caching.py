"""Both tools rerun exactly what a params.yaml edit affects, and share one record.

One small project (16 synthetic images preprocessed to 32x32, 1 epoch per arch,
CPU; two protocol variants, reference and augment, sharing the 32x32 file) is
built once per module with `snakemake`; its onsuccess hook runs
`dvc commit -f`, so dvc.lock matches what Snakemake built. The plans after an
edit are read without running anything: `snakemake -n` lists every job to run,
`dvc status` lists the stages whose own deps changed (DVC finds the downstream
ones only while running), so the test also checks that DVC's changed stages plus
everything downstream of them in dvc.yaml equal Snakemake's plan.
Code is a dependency too: a comment added to a module reruns exactly the stages
that import it (and downstream), and `snakemake --touch` accepts such an edit
without rerunning anything, in both tools.
The last tests train twice more (1 epoch) on a second git branch with another
train.lr and check that `dvc metrics diff` shows the IoU change.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from workflow_helpers import (
    DVC,
    declared_variants,
    set_run_variants,
    GIT,
    GITIGNORE,
    REPO,
    SNAKEMAKE,
    STAGE_COMMANDS,
    Job,
    dvc_changed,
    dvc_stage_name,
    dvc_stages,
    git,
    missing_stage_commands,
    read_params,
    run,
    snakemake_plan,
    synth,
    tiny_workspace,
    write_params,
)

pytestmark = pytest.mark.slow

PIPELINE = STAGE_COMMANDS[1:]
PER_RUN_STAGES = ("train", "predict", "evaluate")


def snakemake_job_names(project: Path, *targets: str) -> set[str]:
    """Snakemake's plan (for `targets`, default everything) as DVC stage names (`train@unet-0`), rule `all` left out."""
    jobs, _ = snakemake_plan(project, *targets)
    return {dvc_stage_name(job, (), declared_variants(project)) for job in jobs}


def downstream(stages: list[Job], changed: set[str]) -> set[str]:
    """`changed` plus every stage that reads, directly or not, an output of one of them."""
    result = set(changed)
    grew = True
    while grew:
        produced = {path for stage in stages if stage.name in result for path in stage.outputs}
        new = {stage.name for stage in stages if stage.inputs & produced} - result
        result |= new
        grew = bool(new)
    return result


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A git + DVC project built once with `snakemake`, everything committed on `main`."""
    missing = missing_stage_commands()
    if missing:
        pytest.skip(f"stage command(s) not written yet: {', '.join('unetpp ' + m for m in missing)}")
    if GIT is None:
        pytest.skip("git is not installed")
    project = tiny_workspace(tmp_path_factory.mktemp("workflow") / "project")
    params = read_params(project)
    set_run_variants(params, ["reference", "augment"])
    write_params(project, params)
    (project / ".gitignore").write_text(GITIGNORE)
    git(project, "init", "-q", "-b", "main")
    synth(project, project / read_params(project)["data"]["raw"], 16, 0, "48x48", "48x64")
    # First only the data stages (a partial target), then everything.
    run([SNAKEMAKE, "--cores", "2", "data/processed/split.json"], cwd=project)
    run([SNAKEMAKE, "--cores", "2"], cwd=project)
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "full run")
    yield project


def test_the_hook_commits_the_stages_of_each_run(project: Path) -> None:
    first, second = (project / "logs/dvc_commit.log").read_text().splitlines()
    # The partial run built and committed only the data stages it needs (split reads the interim ids).
    assert first.endswith(" dvc commit -f check_params fetch ingest split: done")
    every = set().union(*(stage_names(stage, read_params(project)) for stage in PIPELINE))
    assert {"train@variant0-unet-0", "train@variant1-unet-0", "preprocess@32", "compare_variants"} <= every
    assert set(second.split(" dvc commit -f ")[1].removesuffix(": done").split()) == every


def test_after_a_run_both_tools_have_nothing_to_do(project: Path) -> None:
    assert snakemake_job_names(project) == set()
    assert dvc_changed(project) == set()
    # dvc repro accepts the pipeline (no overlapping or git-tracked outputs) and runs nothing.
    repro = run([DVC, "repro"], cwd=project)
    assert "Running stage" not in repro.stdout + repro.stderr
    assert "Data and pipelines are up to date." in repro.stdout + repro.stderr
    # Big files are in the DVC cache and ignored by git; small results are committed.
    tracked = set(git(project, "ls-files").split())
    assert "results/variants/reference/metrics.json" in tracked and "models/augment/unet/seed0/history.csv" in tracked
    assert "results/variants.json" in tracked and "results/variants.md" in tracked
    assert "models/reference/unet/seed0/model.pt" not in tracked and "data/processed/dsb2018_32.h5" not in tracked
    # The table has both variants, each with its native-size IoU.
    table = json.loads((project / "results/variants.json").read_text())
    assert list(table) == ["reference", "augment"] and table["augment"]["size"] == 32
    assert table["reference"]["archs"]["unet"]["iou_native_per_image"]["mean"] is not None


def test_the_report_holds_the_results_with_captions(project: Path) -> None:
    report = project / "report.html"
    run([SNAKEMAKE, "--report", report], cwd=project)
    try:
        html = report.read_text()
        for name in ("results/variants/reference/summary.md", "results/variants/augment/curves.png",
                     "results/variants/reference/metrics.json", "results/variants.md"):
            assert name in html, name
        params = read_params(project)
        for arch in params["runs"]["arch"]:
            assert f"results/reference/runs/{arch}/seed0/samples.png" in html, arch
        # The captions (workflow/report/*.rst) and the workflow description.
        for phrase in ("Summary table", "Training curves", "Statistics", "Sample predictions of", "U-Net vs UNet++"):
            assert phrase in html, phrase
        # The landing text (the workflow description) holds the rendered summary table itself.
        description = html[html.index("var workflow_desc"):]
        description = description[:description.index("</script>")]
        assert 'class=\\"unetpp-summary\\"' in description and "IoU native" in description
        # Synthetic data: summary.md names neither DSB2018 nor the published IoU.
        summary = (project / "results/variants/reference/summary.md").read_text()
        assert summary.startswith("# U-Net vs UNet++\n") and "Published" not in summary
        # The repository's .gitignore keeps the report out of git.
        assert "report.html" in run([GIT, "check-ignore", "report.html"], cwd=REPO).stdout
    finally:
        report.unlink(missing_ok=True)


def stage_names(stage: str, params: dict[str, Any], variants: list[int] | None = None) -> set[str]:
    """The DVC stage names of one stage: `train@variant0-unet-0`... for the per-run ones, `aggregate@variant0`,
    `preprocess@32`; `variants`: only those positions of run_variants (default all)."""
    indices = range(len(params["run_variants"])) if variants is None else variants
    if stage == "preprocess":
        return {f"preprocess@{size}" for size in params["preprocess"]["sizes"]}
    if stage == "aggregate":
        return {f"aggregate@variant{i}" for i in indices}
    if stage not in PER_RUN_STAGES:
        return {stage}
    return {f"{stage}@variant{i}-{arch}-{seed}" for i in indices for arch in params["runs"]["arch"]
            for seed in params["runs"]["seed"]}


def expected_plans(
    affected: str | tuple[str, ...] | None, params: dict[str, Any], variants: list[int] | None = None
) -> tuple[set[str], set[str]]:
    """(Snakemake's plan, DVC's changed stages) when an edit affects the stage(s) `affected` directly
    (of the run_variants at positions `variants`, default all)."""
    if affected is None:
        return set(), set()
    stages = (affected,) if isinstance(affected, str) else affected
    after = PIPELINE[min(PIPELINE.index(stage) for stage in stages) :]
    if "split" in stages:  # split reads the interim file: preprocess is not downstream of it
        after = tuple(stage for stage in after if stage != "preprocess")
    planned = set().union(*(stage_names(stage, params, variants) for stage in after))
    return planned, set().union(*(stage_names(stage, params, variants) for stage in stages))


@pytest.mark.parametrize(
    ("section", "key", "value", "first", "variants"),
    [
        ("train", "patience", 3, "train", None),
        # One variant's override: only that variant's jobs (and the table) rerun, in both tools.
        ("variants.augment", "lr", 0.001, "train", [1]),
        ("variants.reference", "block", "authors", "train", [0]),
        ("split", "seed", 7, "split", None),
        ("notes", "comment", "a key that no stage reads", None, None),
    ],
    ids=["train.patience", "variants.augment.lr", "variants.reference.block", "split.seed", "unused key"],
)
def test_an_edit_reruns_exactly_what_it_affects(
    project: Path, section: str, key: str, value: Any, first: str | None, variants: list[int] | None
) -> None:
    original = (project / "params.yaml").read_text()
    params = read_params(project)
    target = params
    for part in section.split("."):
        target = target.setdefault(part, {})
    target[key] = value
    write_params(project, params)
    try:
        planned, changed = snakemake_job_names(project), dvc_changed(project)
        # DVC's check_params tracks every value, so any edit reruns it; its record holds no value, so the
        # stages after it rerun only for their own params (tests/test_workflow_typo.py runs it).
        assert "check_params" in changed
        changed -= {"check_params"}
        assert (planned, changed) == expected_plans(first, params, variants)
        if variants is not None:
            assert "compare_variants" in planned and not any(f"@variant{i}" in name for i in {0, 1} - set(variants)
                                                            for name in planned)
        assert downstream(dvc_stages(project), changed) == planned
        assert not planned & {"ingest", "preprocess@32"}
    finally:
        (project / "params.yaml").write_text(original)
    assert snakemake_job_names(project) == set()
    assert dvc_changed(project) == set()


@pytest.mark.parametrize(
    ("module", "importers"),
    [
        ("training/loop.py", ("train",)),
        # Predict rebuilds the model; aggregate takes the parameter count from train.json
        # (it rebuilds the model only for a train.json without one, importing it lazily).
        ("models/nested_unet.py", ("train", "predict")),
        ("evaluation/evaluate.py", ("evaluate",)),
        # compare-variants formats durations with aggregate's helper.
        ("evaluation/aggregate.py", ("aggregate", "compare_variants")),
        ("commands/predict_images.py", None),
    ],
)
def test_a_code_edit_reruns_exactly_what_imports_it(
    project: Path, module: str, importers: tuple[str, ...] | None
) -> None:
    path = project / "src/unetpp" / module
    original, stat = path.read_text(), path.stat()
    path.write_text(original + "\n# an edit\n")
    try:
        planned, changed = snakemake_job_names(project), dvc_changed(project)
        assert (planned, changed) == expected_plans(importers, read_params(project))
        assert downstream(dvc_stages(project), changed) == planned
    finally:
        path.write_text(original)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert snakemake_job_names(project) == set()
    assert dvc_changed(project) == set()


def test_touch_accepts_an_edit_that_keeps_the_outputs(project: Path) -> None:
    # A comment cannot change evaluate's outputs: accept it instead of rerunning evaluate and aggregate.
    path = project / "src/unetpp/evaluation/evaluate.py"
    path.write_text(path.read_text() + "\n# a comment\n")
    assert snakemake_job_names(project) == expected_plans("evaluate", read_params(project))[0]
    run([SNAKEMAKE, "--touch", "--cores", "1"], cwd=project)
    # Snakemake touched the outputs; its onsuccess hook recorded the new code in dvc.lock.
    assert snakemake_job_names(project) == set()
    assert dvc_changed(project) == set()
    last = (project / "logs/dvc_commit.log").read_text().splitlines()[-1]
    assert last.endswith(": done") and "evaluate@variant0-unet-0" in last, last
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "a comment in evaluate.py")


def iou_changes(diff: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """{"unet.iou_image": (old, new), ...} from `dvc metrics diff --json` (the reference's headline.json)."""
    changes = {}
    for name, values in diff["results/variants/reference/headline.json"].items():
        if ".iou_" in name:
            changes[name] = (values["old"], values["new"])
    return changes


def test_a_config_override_is_not_credited_to_params_yaml(project: Path, tmp_path: Path) -> None:
    """`--config train={patience: ...}` trains with that value; the hook must not commit it under params.yaml's."""
    copy = tmp_path / "copy"
    shutil.copytree(project, copy, symlinks=True)
    lock_before = (copy / "dvc.lock").read_text()
    run([SNAKEMAKE, "--cores", "1", "models/reference/unet/seed0/model.pt", "--forcerun", "train",
         "--config", 'train={"patience": 5}'], cwd=copy)
    assert json.loads((copy / "models/reference/unet/seed0/train.json").read_text())["settings"]["patience"] == 5
    last = (copy / "logs/dvc_commit.log").read_text().splitlines()[-1]
    assert "differs from params.yaml in train.patience (this run: 5, params.yaml: 1)" in last
    assert "dvc.lock not updated" in last
    assert (copy / "dvc.lock").read_text() == lock_before
    assert "train@variant0-unet-0" in dvc_changed(copy)  # DVC sees the model as not matching params.yaml's value


def test_metrics_diff_between_branches(project: Path) -> None:
    git(project, "checkout", "-q", "-b", "higher-lr")
    params = read_params(project)
    params["variants"]["reference"]["lr"] = 0.01  # run_variants aliases it
    write_params(project, params)
    run([SNAKEMAKE, "--cores", "2"], cwd=project)
    # The onsuccess hook brought dvc.lock up to date: nothing stale for either tool.
    assert dvc_changed(project) == set()
    assert snakemake_job_names(project) == set()
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "train.lr 0.01")

    diff = json.loads(run([DVC, "metrics", "diff", "main", "higher-lr", "--all", "--json"], cwd=project).stdout)
    changes = iou_changes(diff)
    for arch in params["runs"]["arch"]:
        for key in ("iou_image", "iou_batch"):
            old, new = changes[f"{arch}.{key}"]
            assert 0.0 <= old <= 1.0 and 0.0 <= new <= 1.0
    changed = {name for name, (old, new) in changes.items() if old != new}
    assert changed, changes
    # The plain table lists what changed, with the difference.
    text = run([DVC, "metrics", "diff", "main", "higher-lr"], cwd=project).stdout
    assert "results/variants/reference/headline.json" in text and "Change" in text
    assert all(name in text for name in changed), text

    # The validation curve of every run (a plot of the train stage), on both branches.
    plots = json.loads(run([DVC, "plots", "diff", "main", "higher-lr", "--json"], cwd=project).stdout)
    runs = {f"models/{v}/{a}/seed{s}/history.csv" for v in declared_variants(project) for a in params["runs"]["arch"]
            for s in params["runs"]["seed"]}
    assert set(plots["data"]) == runs
    for name, (plot,) in plots["data"].items():
        assert plot["revisions"] == ["main", "higher-lr"], name
        values = plot["content"]["data"]["values"]
        # One point (1 epoch) per branch.
        assert sorted(row["rev"] for row in values) == ["higher-lr", "main"], name
        assert all("val_iou_batch_pooled" in row for row in values), values


def test_after_checkout_touch_brings_snakemake_up_to_date(project: Path) -> None:
    # Back on main (after the branch of the test above, if it ran): DVC restores main's outputs.
    git(project, "checkout", "-q", "main")
    run([DVC, "checkout"], cwd=project)
    assert dvc_changed(project) == set()
    # Only DVC ran: Snakemake's records still describe the other branch (or nothing).
    # With a clean `dvc status`, touching every job records the current params and times.
    run([SNAKEMAKE, "--touch", "--forceall", "--cores", "1"], cwd=project)
    assert snakemake_job_names(project) == set()
    assert dvc_changed(project) == set()
    original = (project / "params.yaml").read_text()
    params = read_params(project)
    params["variants"]["reference"]["lr"] = 0.002
    write_params(project, params)
    try:
        assert snakemake_job_names(project) == expected_plans("train", params, [0])[0]
    finally:
        (project / "params.yaml").write_text(original)


def test_a_raw_zip_with_a_new_mtime_but_the_same_content_reruns_nothing(tmp_path: Path) -> None:
    """A copy or a re-provisioned shared disk gives the raw zip a new mtime: only new content reruns ingest.

    The zip is linked, as the README does with a shared copy, and bigger than Snakemake's default 1 MB
    checksum limit, so only the profiles' max-checksum-file-size keeps Snakemake from rerunning on the time.
    """
    if missing_stage_commands() or GIT is None:
        pytest.skip("needs every stage command and git")
    project = tiny_workspace(tmp_path / "project")
    (project / ".gitignore").write_text(GITIGNORE)
    git(project, "init", "-q", "-b", "main")  # for the onsuccess hook's dvc commit
    shared = tmp_path / "shared" / "stage1_train.zip"
    shared.parent.mkdir()
    synth(project, shared, 16, 0, "48x48", "512x512")
    assert shared.stat().st_size > 1_000_000  # above Snakemake's default limit of 1 MB
    (project / read_params(project)["data"]["raw"]).symlink_to(shared)
    target = "data/processed/split.json"
    run([SNAKEMAKE, "--cores", "2", target], cwd=project)

    assert snakemake_job_names(project, target) == set()
    later = shared.stat().st_mtime + 3600
    os.utime(shared, (later, later))
    assert snakemake_job_names(project, target) == set()
    # New content (another seed) is new input, whatever its time.
    synth(project, shared, 16, 1, "48x48", "512x512")
    # split reads the ingested ids; preprocess is no input of it.
    assert snakemake_job_names(project, target) == {"ingest", "split"}
