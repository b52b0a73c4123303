"""No typo deletes anything: DVC's first stage checks params.yaml as the Snakefile does.

One tiny project (synthetic data, U-Net only, 1 epoch) is built with `snakemake`
(its hook commits dvc.lock). Then: a bad value stops `dvc repro` at check_params
with the Snakefile's own message, before train removes a file; a valid edit
reruns check_params alone (its record holds no value); and a training that fails
after DVC removed model.pt leaves history.csv and train.json as they were
(persist) and `dvc checkout` brings model.pt back, so the run is whole again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from workflow_helpers import (
    DVC,
    GIT,
    GITIGNORE,
    SNAKEMAKE,
    git,
    missing_stage_commands,
    read_params,
    run,
    synth,
    tiny_workspace,
    write_params,
)

pytestmark = pytest.mark.slow

RUN = tuple(f"models/reference/unet/seed0/{name}" for name in ("model.pt", "history.csv", "train.json"))


def digests(project: Path) -> dict[str, str]:
    return {name: hashlib.sha256((project / name).read_bytes()).hexdigest() for name in RUN}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    if missing_stage_commands() or GIT is None:
        pytest.skip("needs every stage command and git")
    project = tiny_workspace(tmp_path_factory.mktemp("typo") / "project", {"runs": {"arch": ["unet"], "seed": [0]}})
    synth(project, project / read_params(project)["data"]["raw"], 12, 0, "48x48")
    (project / ".gitignore").write_text(GITIGNORE)
    git(project, "init", "-q", "-b", "main")
    run([SNAKEMAKE, "--cores", "2"], cwd=project)
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "tiny run")
    yield project


@pytest.fixture
def params_restored(project: Path) -> Iterator[None]:
    original = (project / "params.yaml").read_text()
    yield
    (project / "params.yaml").write_text(original)


def test_a_bad_value_stops_dvc_before_anything_is_removed(project: Path, params_restored: None) -> None:
    before = digests(project)
    params = read_params(project)
    params["variants"]["reference"]["lr"] = "abc"
    write_params(project, params)
    snake = run([SNAKEMAKE, "-n"], cwd=project, check=False)
    repro = run([DVC, "repro"], cwd=project, check=False)
    assert snake.returncode != 0 and repro.returncode != 0
    message = (
        "params.yaml has 1 bad value(s) (checked against workflow/schemas/params.schema.yaml):\n"
        "  variants.reference.lr: 'abc' is not valid; it must be the learning rate, a number > 0, e.g. 0.0003\n"
        "Fix them in params.yaml (or the --config override) and run again."
    )
    assert message in snake.stdout + snake.stderr
    assert message in repro.stdout + repro.stderr
    said = repro.stdout + repro.stderr
    assert "Running stage 'check_params'" in said and "Running stage 'train" not in said
    assert "not a valid float" not in said  # click's message of the old failure, after DVC had removed the run
    assert digests(project) == before


def test_a_valid_edit_reruns_the_check_and_nothing_else(project: Path, params_restored: None) -> None:
    params = read_params(project)
    params["notes"] = {"comment": "a key no stage reads"}
    write_params(project, params)
    repro = run([DVC, "repro"], cwd=project)
    said = repro.stdout + repro.stderr
    assert "Running stage 'check_params'" in said
    assert said.count("Running stage") == 1, said
    # The same bytes as Snakemake's job wrote (DVC's lock holds their hash from the hook's commit).
    assert json.loads((project / "data/params.checked.json").read_text()) == {
        "params": "params.yaml", "schema": "workflow/schemas/params.schema.yaml", "valid": True}
    git(project, "checkout", "-q", "--", "dvc.lock")


def test_a_failed_training_leaves_the_run_whole_after_checkout(project: Path, params_restored: None) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA, where train.device: cuda fails")
    before = digests(project)
    params = read_params(project)
    params["train"]["device"] = "cuda"  # valid for the schema, fails on this machine after DVC removed model.pt
    write_params(project, params)
    repro = run([DVC, "repro", "train@variant0-unet-0"], cwd=project, check=False)
    assert repro.returncode != 0 and "Running stage 'train@variant0-unet-0'" in repro.stdout + repro.stderr
    assert not (project / RUN[0]).exists()  # DVC removed the cached model before running
    (project / "params.yaml").write_text(git(project, "show", "HEAD:params.yaml"))
    run([DVC, "checkout", "train@variant0-unet-0"], cwd=project)
    assert digests(project) == before  # history.csv and train.json were never removed (persist)
    git(project, "checkout", "-q", "--", "dvc.lock")
