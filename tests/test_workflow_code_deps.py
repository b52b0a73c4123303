"""Each stage declares as code dependencies exactly the package modules its command imports.

A tiny project (synthetic data at 32x32, 1 epoch, every arch and seed of
params.yaml, and a synthetic test set for the test-set stage) is planned by Snakemake; every job's rendered command is then run
in pipeline order with `unetpp` replaced by a wrapper that records which modules
under src/unetpp the command imported. Per stage (the union over its jobs) the
recorded files must equal the `src/unetpp/...` inputs of the Snakemake jobs
(CODE in workflow/rules/common.smk) and the deps of the DVC stages (dvc.yaml):
a missing module means an edit that reruns nothing, an extra one an edit that
reruns a stage for nothing. A failure prints the correct lists.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml

from workflow_helpers import (
    BIN, Job, command_tokens, copy_workflow, dvc_stages, run, snakemake_plan, tiny_variants
)

pytestmark = pytest.mark.slow

PIPELINE = ("check_params", "fetch", "ingest", "preprocess", "split", "train", "predict", "evaluate", "aggregate", "compare_variants", "predict_test")
CODE_PREFIX = "src/unetpp/"
# Small enough to run every stage in seconds; device, precision, layout and the rest stay as in
# params.yaml, since they may decide which modules a stage imports.
TINY = {
    "preprocess": {"workers": 1},
    # Synthetic data: not the release of data.content_sha256.
    "data": {"workers": 1, "content_sha256": "any"},
    "split": {"val_fraction": 0.25},
    "train": {"epochs": 1, "patience": 1, "threads": 1},
    "predict": {"batch_size": 4},
    "evaluate": {"batch_size": 4},
    # The test-set stage, switched on; the set has masks, so that scoring is imported too
    # (a set without masks imports the same modules).
    "test": {"sets": [{"name": "tiny_test", "raw": "data/raw/tiny_test.zip"}]},
}
# Runs `unetpp ARGS...` in this process and, however it ends, writes the sorted
# src/unetpp/... files of every imported unetpp module to OUT.
RECORDER = """
import json, sys
from pathlib import Path
out = sys.argv[1]
sys.argv = ["unetpp", *sys.argv[2:]]
try:
    from unetpp.cli import main
    main()
finally:
    import unetpp
    root = Path(unetpp.__file__).resolve().parent
    files = set()
    for module in list(sys.modules.values()):
        path = Path(getattr(module, "__file__", None) or "/").resolve()
        if path.is_relative_to(root):
            files.add("src/unetpp/" + path.relative_to(root).as_posix())
    Path(out).write_text(json.dumps(sorted(files)))
"""


def tiny_params(project: Path) -> None:
    params = yaml.safe_load((project / "params.yaml").read_text())
    tiny_variants(params)  # the variants' sizes (32 for the reference's 96) and batch 4
    for section, values in TINY.items():
        params[section].update(values)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def record_imports(project: Path, job: Job, out: Path) -> set[str]:
    """Run one job's rendered command (without its log redirection) and return what it imported."""
    tokens = command_tokens(job.command)
    assert tokens[0] == "unetpp", job.command
    run([sys.executable, "-c", RECORDER, out, *tokens[1:]], cwd=project)
    return set(json.loads(out.read_text()))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, set[str]], list[Job], list[Job]]:
    """({stage: modules its jobs imported}, the Snakemake jobs, the DVC stages) of one tiny run."""
    project = copy_workflow(tmp_path_factory.mktemp("code-deps") / "project")
    tiny_params(project)
    params = yaml.safe_load((project / "params.yaml").read_text())
    raw = project / params["data"]["raw"]
    raw.parent.mkdir(parents=True)
    run([BIN / "unetpp", "synth", "--n", "12", "--seed", "0", "--size", "48x48", "--out", raw], cwd=project)
    (test_set,) = params["test"]["sets"]
    run([BIN / "unetpp", "synth", "--n", "3", "--seed", "1", "--size", "40x56", "--out", test_set["raw"]], cwd=project)
    jobs, _ = snakemake_plan(project, "--forceall")
    imported: dict[str, set[str]] = {stage: set() for stage in PIPELINE}
    for k, job in enumerate(sorted(jobs, key=lambda job: PIPELINE.index(job.name))):
        imported[job.name] |= record_imports(project, job, project / f"imports-{k}.json")
    return imported, jobs, dvc_stages(project)


def declared(jobs: Iterable[Job], stage: str) -> set[str]:
    """The src/unetpp/ inputs of every job (or DVC stage) of `stage`."""
    return {
        path for job in jobs if job.name.split("@")[0] == stage for path in job.inputs if path.startswith(CODE_PREFIX)
    }


def correct_lists(imported: dict[str, set[str]]) -> str:
    """The CODE dict for common.smk, then the same lists for dvc.yaml: what to paste when a test fails."""
    smk = "CODE = {\n" + "".join(
        f'    "{stage}": [\n' + "".join(f'        "{path}",\n' for path in sorted(imported[stage])) + "    ],\n"
        for stage in PIPELINE
    )
    dvc = "".join(
        f"  {stage}: deps:\n" + "".join(f"    - {path}\n" for path in sorted(imported[stage])) for stage in PIPELINE
    )
    return f"workflow/rules/common.smk:\n{smk}}}\n\ndvc.yaml:\n{dvc}"


def difference(stage: str, tool: str, have: set[str], want: set[str], imported: dict[str, set[str]]) -> str:
    return (
        f"{tool} code deps of {stage} differ from the modules it imports: missing {sorted(want - have)}, "
        f"not imported {sorted(have - want)}.\nThe correct lists:\n{correct_lists(imported)}"
    )


@pytest.mark.parametrize("stage", PIPELINE)
def test_snakemake_code_inputs_are_the_imported_modules(built: tuple[Any, list[Job], list[Job]], stage: str) -> None:
    imported, jobs, _ = built
    assert imported[stage], f"no job of {stage} ran"
    have = declared(jobs, stage)
    assert have == imported[stage], difference(stage, "Snakemake", have, imported[stage], imported)


@pytest.mark.parametrize("stage", PIPELINE)
def test_dvc_code_deps_are_the_imported_modules(built: tuple[Any, list[Job], list[Job]], stage: str) -> None:
    imported, _, stages = built
    have = declared(stages, stage)
    assert have == imported[stage], difference(stage, "dvc.yaml", have, imported[stage], imported)


def test_every_stage_imports_its_own_command_module(built: tuple[Any, list[Job], list[Job]]) -> None:
    # The recorder sees the stage's code: its click command and the library module behind it.
    imported, _, _ = built
    assert "src/unetpp/commands/train.py" in imported["train"]
    assert "src/unetpp/training/loop.py" in imported["train"]
    assert "src/unetpp/evaluation/aggregate.py" in imported["aggregate"]
    assert "src/unetpp/training/loop.py" not in imported["evaluate"]
    assert "src/unetpp/inference/test_set.py" in imported["predict_test"]
    assert "src/unetpp/training/loop.py" not in imported["predict_test"]
