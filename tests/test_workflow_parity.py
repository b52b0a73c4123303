"""The Snakefile and dvc.yaml describe the same jobs.

Both files are rendered by their own tool (a Snakemake dry run; DVC's parser)
and compared job by job: outputs, command, file inputs, the params.yaml keys the
job depends on, and the GPU resource. They are rendered twice: with the real
params.yaml, and with one where every value is replaced by a unique sentinel, so
that a value hard-coded in one file (equal to today's value) still shows up.
The test-set stage (predict_test) is off by default (test.sets: []); the
sentinel renderings and a test of their own switch it on with two test sets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from workflow_helpers import (
    Job,
    command_tokens,
    copy_workflow,
    declared_test_sets,
    declared_variants,
    dvc_stage_name,
    dvc_stages,
    normalise_command,
    set_run_variants,
    snakemake_plan,
)

# Keys that are not a job's value but its identity or its file: `runs.arch`, `runs.seed` and
# `test.sets` decide which jobs exist (compared through the job sets), `data.raw` is the ingest
# input path (and each test set's name and raw are its output folder and its input).
# A variant's name and size are its folders and its processed file (preprocess.sizes and run_variants
# decide which preprocess and per-variant jobs exist); DVC's per-variant stages track the variant's
# whole entry, `variants.<name>`, which stands for each of its values here.
STRUCTURAL_KEYS = {"runs.arch", "runs.seed", "data.raw", "test.sets", "preprocess.sizes", "run_variants"}


# What one variant's aggregate writes into results/variants/<variant>/.
AGGREGATE_OUTPUTS = ("metrics.json", "summary.md", "curves.png", "headline.json", "headline", "summary.html")


def structural(key: str) -> bool:
    return key in STRUCTURAL_KEYS or (key.startswith("variants.") and key.endswith((".name", ".size")))


def tracked_key(key: str) -> str:
    """The DVC params key that tracks `key`: `variants.<name>` for a variant's value, else the key itself."""
    parts = key.split(".")
    return ".".join(parts[:2]) if parts[0] == "variants" else key
PER_RUN_STAGES = ("train", "predict", "evaluate")
# Two test sets that switch the test-set stage on: a zip and a folder.
TEST_SETS = [
    {"name": "stage1_test", "raw": "data/raw/stage1_test_images.zip"},
    {"name": "mine", "raw": "data/raw/my_test_set"},
]
# Dry runs may ask for more cores than the machine has, so that `threads:` is never scaled down.
PLAN_ARGS = ("--forceall", "--cores", "1000000")


def leaf_keys(params: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"train.lr": 0.0003, ...}; lists are leaves."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(leaf_keys(value, f"{dotted}."))
        else:
            flat[dotted] = value
    return flat


def with_sentinels(params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """A copy of params with every leaf replaced by a unique value; and {rendered value: key}."""
    counter = iter(range(900001, 999999))
    rendered: dict[str, str] = {}

    def replace(value: Any, dotted: str) -> Any:
        if isinstance(value, dict):
            return {k: replace(v, f"{dotted}.{k}" if dotted else k) for k, v in value.items()}
        n = next(counter)
        if dotted.startswith("variants.") and dotted.endswith(".name"):
            rendered[value] = dotted  # a name is the variant's key (its folders)
            return value
        if dotted == "run_variants":
            return None  # set below: every declared variant runs
        if dotted == "test.sets":
            # Each set's name and raw path: unique too (they are its output folder and its input).
            new = [{"name": f"set{n}x{i}", "raw": f"raw{n}x{i}/test.zip"} for i, _ in enumerate(value)]
            for i, test_set in enumerate(new):
                rendered[test_set["name"]] = rendered[test_set["raw"]] = dotted
            return new
        if isinstance(value, list):
            # Seeds are ints (paths seed<int>, `--seed <int>`): distinct ints; archs become unique names.
            new: Any = [next(counter) if isinstance(item, int) else f"arch{n}x{i}" for i, item in enumerate(value)]
            for item in new:
                rendered[str(item)] = dotted
            return new
        if isinstance(value, bool):
            raise AssertionError(f"{dotted}: booleans have no unique sentinel; extend with_sentinels")
        if isinstance(value, int):
            new = n
        elif isinstance(value, float):
            new = float(f"0.{n}")
        elif dotted == "data.raw":
            new = f"raw{n}/stage1_train.zip"
        else:
            new = f"s{n}"
        rendered[str(new)] = dotted
        return new

    new = replace(params, "")
    set_run_variants(new, list(new["variants"]))
    for size in new["preprocess"]["sizes"]:
        rendered[str(size)] = "preprocess.sizes"
    return new, rendered


def value_keys(job: Job, sentinels: dict[str, str]) -> set[str]:
    """The params keys whose sentinel is a token of the command, ignoring declared files and the log."""
    files = job.inputs | job.outputs
    keys = set()
    for token in command_tokens(job.command):
        if token in files:
            continue
        key = sentinels.get(token)
        if key is not None and not structural(key):
            keys.add(key)
    return keys


def compare(
    snake: list[Job],
    dvc: list[Job],
    sentinels: dict[str, str] | None,
    test_sets: list[str] | None = None,
    variants: list[str] | None = None,
) -> list[str]:
    """Every difference between the two plans, as readable lines (empty: same jobs).

    test_sets, variants: the names of test.sets and run_variants in order (how DVC numbers their stages).
    """
    problems: list[str] = []
    by_outputs_snake = {job.outputs: job for job in snake}
    by_outputs_dvc = {stage.outputs: stage for stage in dvc}
    for outputs in by_outputs_snake.keys() - by_outputs_dvc.keys():
        problems.append(
            f"Snakemake job {by_outputs_snake[outputs].name} has no DVC stage with outputs {sorted(outputs)}"
        )
    for outputs in by_outputs_dvc.keys() - by_outputs_snake.keys():
        problems.append(f"DVC stage {by_outputs_dvc[outputs].name} has no Snakemake job with outputs {sorted(outputs)}")
    for outputs in by_outputs_snake.keys() & by_outputs_dvc.keys():
        job, stage = by_outputs_snake[outputs], by_outputs_dvc[outputs]
        name = stage.name
        snake_name = dvc_stage_name(job, test_sets or (), variants or ("reference",))
        if snake_name != stage.name:
            problems.append(f"{name}: the Snakemake job maps to stage name {snake_name!r}")
        snake_command, log = normalise_command(job.command)
        dvc_command, _ = normalise_command(stage.command)
        if snake_command != dvc_command:
            problems.append(f"{name}: commands differ\n  snakemake: {snake_command}\n  dvc:       {dvc_command}")
        if log is None or log != job.log:
            problems.append(f"{name}: the Snakemake command does not end with `> {job.log} 2>&1`")
        if job.inputs != stage.inputs:
            problems.append(
                f"{name}: file inputs differ: only Snakemake {sorted(job.inputs - stage.inputs)}, "
                f"only DVC {sorted(stage.inputs - job.inputs)}"
            )
        if sentinels is not None:
            snake_keys = {tracked_key(key) for key in value_keys(job, sentinels)}
            if snake_keys != set(stage.param_keys):
                problems.append(
                    f"{name}: param keys differ: values in the Snakemake command {sorted(snake_keys)}, "
                    f"DVC params {sorted(stage.param_keys)}"
                )
        if job.gpu != stage.gpu:
            problems.append(f"{name}: gpu resource differs: Snakemake {job.gpu}, DVC meta.resources.gpu {stage.gpu}")
    return problems


def plans(project: Path) -> tuple[list[Job], list[Job]]:
    params = yaml.safe_load((project / "params.yaml").read_text())
    for raw in [params["data"]["raw"], *(test_set["raw"] for test_set in params["test"]["sets"])]:
        (project / raw).parent.mkdir(parents=True, exist_ok=True)
        (project / raw).touch()
    snake, _ = snakemake_plan(project, *PLAN_ARGS)
    return snake, dvc_stages(project)


def enable_test_sets(project: Path, test_sets: list[dict[str, str]] = TEST_SETS) -> None:
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["test"]["sets"] = test_sets
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def sentinel_project(project: Path) -> dict[str, str]:
    """Rewrite project/params.yaml with sentinels (and two test sets); return {rendered value: key}."""
    enable_test_sets(project)
    params = yaml.safe_load((project / "params.yaml").read_text())
    new, sentinels = with_sentinels(params)
    (project / "params.yaml").write_text(yaml.safe_dump(new, sort_keys=False))
    # Sentinels are no valid values (names, URLs, multiples of 16): this copy's Snakefile
    # accepts any params.yaml (tests/test_workflow_params.py tests the real schema).
    (project / "workflow/schemas/params.schema.yaml").write_text('$schema: "https://json-schema.org/draft/2020-12/schema"\ntype: object\n')
    return sentinels


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    return copy_workflow(tmp_path / "project")


def expected_stages(params: dict[str, Any]) -> set[str]:
    """The DVC stage names of params: the pipeline, each (variant, arch, seed) run, each test set x run."""
    variants = [f"variant{v}" for v, _ in enumerate(params["run_variants"])]
    runs = [f"{v}-{arch}-{seed}" for v in variants for arch in params["runs"]["arch"] for seed in params["runs"]["seed"]]
    sizes = {variant["size"] for variant in params["run_variants"]}
    return (
        {"check_params", "fetch", "ingest", "split", "compare_variants"}
        | {f"preprocess@{size}" for size in sizes}
        | {f"aggregate@{v}" for v in variants}
        | {f"{stage}@{run}" for stage in PER_RUN_STAGES for run in runs}
        | {f"predict_test@set{i}-{run}" for i, _ in enumerate(params["test"]["sets"]) for run in runs}
    )


def test_same_jobs_with_the_real_params(project: Path) -> None:
    snake, dvc = plans(project)
    assert compare(snake, dvc, None) == []
    params = yaml.safe_load((project / "params.yaml").read_text())
    # The test-set stage is off by default: neither tool has a predict_test job.
    assert params["test"]["sets"] == []
    expected = expected_stages(params)
    assert not any(name.startswith("predict_test") for name in expected)
    assert {stage.name for stage in dvc} == expected
    assert {dvc_stage_name(job) for job in snake} == expected
    for job in snake:
        assert job.log and job.benchmark, f"rule {job.name} needs log: and benchmark:"
        # Every stage depends on its code (the lists are checked by tests/test_workflow_code_deps.py).
        assert f"src/unetpp/commands/{job.name}.py" in job.inputs, job.inputs
    trains = [job for job in snake if job.name == "train"]
    assert trains and all(job.gpu == 1 for job in trains)
    assert all(job.gpu == 0 for job in snake if job.name != "train")
    threads = yaml.safe_load((project / "params.yaml").read_text())["train"]["threads"]
    # Snakemake prints `threads:` only when it is not 1.
    assert all((job.threads or 1) == threads for job in trains)


def test_same_jobs_with_test_sets(project: Path) -> None:
    # Switched on: one predict_test job per test set x (arch, seed), the same in both tools;
    # every other job is the same as without test sets.
    _, dvc_before = plans(project)
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["runs"] = {"arch": ["unet", "nested_unet_ds"], "seed": [0, 1]}
    params["test"]["sets"] = TEST_SETS
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (project / "data/raw/my_test_set").mkdir(parents=True)
    snake, dvc = plans(project)
    assert compare(snake, dvc, None, declared_test_sets(project)) == []
    assert {stage.name for stage in dvc} == {dvc_stage_name(job, declared_test_sets(project)) for job in snake}
    assert {stage.name for stage in dvc} == expected_stages(params)
    tests = {stage.name: stage for stage in dvc if stage.name.startswith("predict_test@")}
    assert set(tests) == {
        f"predict_test@set{i}-variant0-{arch}-{seed}" for i in (0, 1) for arch in ("unet", "nested_unet_ds") for seed in (0, 1)
    }
    # results/<variant>/<set>/<arch>/seed<seed>/ from the model of that run and the set's raw data.
    stage = tests["predict_test@set0-variant0-nested_unet_ds-1"]
    assert stage.outputs == {"results/reference/stage1_test/nested_unet_ds/seed1"}
    assert {"data/raw/stage1_test_images.zip", "models/reference/nested_unet_ds/seed1/model.pt"} <= stage.inputs
    assert tests["predict_test@set1-variant0-unet-0"].outputs == {"results/reference/mine/unet/seed0"}
    # Nothing outside results/<variant>/runs/ and models/<variant>/: aggregate's deps are unchanged.
    (aggregate,) = [stage for stage in dvc if stage.name == "aggregate@variant0"]
    assert not any("stage1_test" in path for path in aggregate.inputs)
    for job in snake:
        if job.name == "predict_test":
            assert job.log and job.benchmark and "src/unetpp/commands/predict_test.py" in job.inputs
            assert job.gpu == 0
    assert len(dvc_before) < len(dvc)


def test_same_jobs_with_sentinel_params(project: Path) -> None:
    sentinels = sentinel_project(project)
    snake, dvc = plans(project)
    variants = declared_variants(project)
    assert compare(snake, dvc, sentinels, declared_test_sets(project), variants) == []
    assert len(variants) == 4  # every declared variant runs here
    assert sum(job.name == "predict_test" for job in snake) == 2 * 4 * 3  # two sets x four variants x three runs
    # Every value of params.yaml reaches some command: no key is dead in both files.
    used = set().union(*(value_keys(job, sentinels) for job in snake))
    all_keys = set(leaf_keys(yaml.safe_load((project / "params.yaml").read_text())))
    assert {key for key in all_keys - used if not structural(key)} == set()


MUTATIONS = [
    # (file, text, replacement, the stage (without @arch) and the kind of difference reported)
    ("dvc.yaml", "--lr ${item.variant.lr}", "--lr 0.0003", ("train@", "commands differ")),
    ("dvc.yaml", "--block ${item.variant.block}", "--block vgg", ("train@", "commands differ")),
    ("dvc.yaml", "    - variants.${item.variant.name}\n", "", ("train@", "param keys differ")),
    # DVC tracks a variant's entry as a whole: a value hard-coded in one file shows as a command difference.
    ("workflow/rules/train.smk", "--augment {params.augment}", "--augment none", ("train@", "commands differ")),
    ("dvc.yaml", " --interim data/interim/stage1_train.h5", "", ("evaluate@", "commands differ")),
    ("dvc.yaml", "--size ${item.size}", "--size 96", ("preprocess@", "commands differ")),
    ("dvc.yaml", "    - results/variants\n", "", ("compare_variants", "file inputs differ")),
    ("workflow/rules/split.smk", "--seed {params.seed}", "--seed 41", ("split", "param keys differ")),
    ("dvc.yaml", "    - train.patience\n", "", ("train@", "param keys differ")),
    ("workflow/rules/train.smk", "        gpu=1,\n", "        mem_mb=1000,\n", ("train@", "gpu resource differs")),
    (
        "workflow/rules/predict.smk",
        "        split=rules.split.output.json,\n",
        '        split=rules.split.output.json,\n        raw=config["data"]["raw"],\n',
        ("predict@", "file inputs differ"),
    ),
    ("dvc.yaml", "--results-dir results/${item.variant.name}/runs ${runs}", "--results-dir results/${item.variant.name}/runs",
     ("aggregate", "commands differ")),
    # Without `parsing.list: append`, DVC renders ${runs} as `--arch unet nested_unet ...`.
    (".dvc/config", "    list = append\n", "", ("aggregate", "commands differ")),
    ("dvc.yaml", "    - results/${item.variant.name}/runs\n", "", ("aggregate", "file inputs differ")),
    (
        "workflow/rules/aggregate.smk",
        "        samples=expand(rules.predict.output.figure, **ARCH_SEEDS, allow_missing=True),\n",
        "",
        ("aggregate", "file inputs differ"),
    ),
    (
        "dvc.yaml",
        "    params:\n    - data.content_sha256\n    outs:\n    - results/variants/${item.variant.name}/summary.md",
        "    outs:\n    - results/variants/${item.variant.name}/summary.md",
        ("aggregate", "param keys differ"),
    ),
    ("dvc.yaml", "--seed ${item.seed}", "--seed 0", ("train@", "commands differ")),
    (
        "dvc.yaml",
        "    - src/unetpp/evaluation/evaluate.py\n",
        "",
        ("evaluate@", "file inputs differ"),
    ),
    (
        "workflow/rules/common.smk",
        '        "src/unetpp/commands/aggregate.py",\n',
        "",
        ("aggregate", "file inputs differ"),
    ),
    # The test-set stage (switched on by sentinel_project).
    ("dvc.yaml", "--min-size ${test.min_size}", "--min-size 10", ("predict_test@", "commands differ")),
    ("workflow/rules/predict_test.smk", "--min-size {params.min_size}", "--min-size 10", ("predict_test@", "param keys differ")),
    ("dvc.yaml", "    - test.mode\n", "", ("predict_test@", "param keys differ")),
    ("dvc.yaml", "    - ${item.set.raw}\n", "", ("predict_test@", "file inputs differ")),
    (
        "dvc.yaml",
        "--raw ${item.set.raw}\n      --model models/${item.variant.name}/${item.arch}/seed${item.seed}/model.pt",
        "--raw ${item.set.raw}\n      --model models/${item.variant.name}/${item.arch}/seed0/model.pt",
        ("predict_test@", "commands differ"),
    ),
]


@pytest.mark.parametrize(
    ("path", "text", "replacement", "expected"), MUTATIONS, ids=[f"{m[0]}:{m[3][0]}:{m[3][1]}" for m in MUTATIONS]
)
def test_a_change_in_one_file_only_is_reported(
    project: Path, path: str, text: str, replacement: str, expected: tuple[str, str]
) -> None:
    target = project / path
    source = target.read_text()
    assert text in source, f"{path} no longer contains {text!r}: update this mutation"
    target.write_text(source.replace(text, replacement, 1))
    sentinels = sentinel_project(project)
    snake, dvc = plans(project)
    problems = compare(snake, dvc, sentinels, declared_test_sets(project), declared_variants(project))
    stage, kind = expected
    assert any(problem.startswith(stage) and kind in problem.split("\n")[0] for problem in problems), problems


def test_an_extra_stage_in_one_file_is_reported(project: Path) -> None:
    sentinels = sentinel_project(project)
    snake, dvc = plans(project)
    extra = Job(name="report", command="unetpp report", inputs=frozenset(), outputs=frozenset({"report.md"}))
    problems = compare(snake, [*dvc, extra], sentinels, declared_test_sets(project), declared_variants(project))
    assert problems == ["DVC stage report has no Snakemake job with outputs ['report.md']"]


ARCHS = ("unet", "nested_unet", "nested_unet_ds")


@pytest.mark.parametrize("n_archs", [1, 2, 3])
@pytest.mark.parametrize("seeds", [[0], [0, 1]], ids=["1seed", "2seeds"])
def test_any_number_of_archs_and_seeds_gives_the_same_jobs(project: Path, n_archs: int, seeds: list[int]) -> None:
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["runs"] = {"arch": list(ARCHS[:n_archs]), "seed": seeds}
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    snake, dvc = plans(project)
    assert compare(snake, dvc, None) == []
    runs = {(arch, seed) for arch in ARCHS[:n_archs] for seed in seeds}
    for stage in PER_RUN_STAGES:
        assert {(job.wildcards["arch"], int(job.wildcards["seed"])) for job in snake if job.name == stage} == runs
    (aggregate,) = [stage for stage in dvc if stage.name == "aggregate@variant0"]
    options = " ".join(f"--arch {arch}" for arch in ARCHS[:n_archs]) + " " + " ".join(f"--seed {s}" for s in seeds)
    assert f" {options} " in aggregate.command
    # Every output of every run, and of nothing else (models/reference/ and results/reference/runs/ in dvc.yaml).
    per_run = {path for stage in dvc if stage.name.split("@")[0] in PER_RUN_STAGES for path in stage.outputs}
    assert {path for path in aggregate.inputs if not path.startswith("src/")} == per_run


VARIANT_SETS = [["reference"], ["reference", "augment", "authors", "size192"], ["size192"], ["authors", "reference"]]


@pytest.mark.parametrize("names", VARIANT_SETS, ids=["-".join(names) for names in VARIANT_SETS])
def test_any_run_variants_give_the_same_jobs(project: Path, names: list[str]) -> None:
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["runs"] = {"arch": ["unet", "nested_unet"], "seed": [0, 1]}
    set_run_variants(params, names)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    snake, dvc = plans(project)
    assert compare(snake, dvc, None, None, names) == []
    assert {stage.name for stage in dvc} == expected_stages(params)
    stages = {stage.name: stage for stage in dvc}
    # Shared: one fetch/ingest/split for all, one preprocess per distinct size.
    sizes = sorted({params["variants"][name]["size"] for name in names})
    assert sorted(name for name in stages if name.startswith("preprocess")) == sorted(f"preprocess@{s}" for s in sizes)
    assert sum(job.name == "preprocess" for job in snake) == len(sizes)
    assert sum(job.name in ("ingest", "split", "compare_variants") for job in snake) == 3
    for index, name in enumerate(names):
        variant = params["variants"][name]
        train = stages[f"train@variant{index}-nested_unet-1"]
        assert train.outputs == {f"models/{name}/nested_unet/seed1/{f}" for f in ("model.pt", "history.csv", "train.json")}
        assert f"data/processed/dsb2018_{variant['size']}.h5" in train.inputs
        tokens = command_tokens(train.command)
        for option in ("lr", "batch-size", "block", "augment"):
            assert tokens[tokens.index(f"--{option}") + 1] == str(variant[option.replace("-", "_")])
        assert train.param_keys >= {f"variants.{name}"} and not any(
            key.startswith("variants.") and key != f"variants.{name}" for key in train.param_keys)
        evaluate = stages[f"evaluate@variant{index}-unet-0"]
        assert "data/interim/stage1_train.h5" in evaluate.inputs and "--interim" in evaluate.command
        assert stages[f"aggregate@variant{index}"].outputs == {
            f"results/variants/{name}/{f}" for f in AGGREGATE_OUTPUTS}
    # The table reads every aggregate.
    assert {p for p in stages["compare_variants"].inputs if not p.startswith("src/")} == {
        f"results/variants/{name}/{f}" for name in names for f in AGGREGATE_OUTPUTS}
