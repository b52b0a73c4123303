"""The test-set stage (test.sets in params.yaml) runs end to end, in both tools.

A tiny project (16 synthetic images at 32x32, U-Net only, 1 epoch, CPU) with two
synthetic test sets in the Kaggle layout: a zip without masks (as
stage1_test_images.zip is) and a folder with masks. `snakemake` builds the whole
pipeline and both test sets (for the one variant, reference, in
results/reference/<set>/); its onsuccess hook records the test stages in
dvc.lock (predict_test@set<i>-variant0-unet-0). An edit of a test.* value then
reruns exactly the test stages, which `dvc repro` runs (and DVC's check_params,
which tracks every value of params.yaml and whose record holds none). Switched
off again (test.sets: []), nothing else changes (but for that check_params).
tests/test_workflow_parity.py checks that the two files declare the same jobs;
this checks that they run.
"""

from __future__ import annotations

import csv
import json
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workflow_helpers import (
    DVC,
    GIT,
    GITIGNORE,
    SNAKEMAKE,
    declared_test_sets,
    dvc_changed,
    declared_variants,
    dvc_stage_name,
    git,
    read_params,
    run,
    snakemake_plan,
    synth,
    tiny_workspace,
    write_params,
)

pytestmark = pytest.mark.slow

TEST_SETS = [
    {"name": "stage1_test", "raw": "data/raw/stage1_test_images.zip"},
    {"name": "mine", "raw": "data/raw/my_test_set"},
]
SETTINGS = {
    "runs": {"arch": ["unet"], "seed": [0]},
    "test": {"sets": TEST_SETS, "instances": "watershed", "min_distance": 3, "min_size": 2},
}
TEST_STAGES = {"predict_test@set0-variant0-unet-0", "predict_test@set1-variant0-unet-0"}
# DVC's first stage tracks every value of params.yaml, so any edit reruns it; its record holds no value,
# so nothing after it reruns on its account (docs/pipeline.md, "Checked before anything runs").
CHECK_PARAMS = {"check_params"}


def planned(project: Path) -> set[str]:
    """Snakemake's plan as DVC stage names."""
    jobs, _ = snakemake_plan(project)
    return {dvc_stage_name(job, declared_test_sets(project), declared_variants(project)) for job in jobs}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    if GIT is None:
        pytest.skip("git is not installed")
    project = tiny_workspace(tmp_path_factory.mktemp("test-sets") / "project", SETTINGS)
    (project / ".gitignore").write_text(GITIGNORE)
    git(project, "init", "-q", "-b", "main")
    synth(project, project / read_params(project)["data"]["raw"], 16, 0, "48x48", "48x64")
    # A test set without masks, as a zip; one with masks, as a folder (other sizes than training).
    with_masks = project / "with_masks.zip"
    synth(project, with_masks, 3, 1, "40x56", "64x48")
    with zipfile.ZipFile(with_masks) as source, zipfile.ZipFile(project / TEST_SETS[0]["raw"], "w") as target:
        for name in source.namelist():
            if "/masks/" not in name:
                target.writestr(name, source.read(name))
    with_masks.unlink()
    synth(project, project / TEST_SETS[1]["raw"], 2, 2, "40x40")
    run([SNAKEMAKE, "--cores", "2"], cwd=project)
    yield project


def image_ids(raw: Path) -> list[str]:
    if raw.is_dir():
        return sorted(path.name for path in raw.iterdir())
    with zipfile.ZipFile(raw) as archive:
        return sorted({name.split("/")[0] for name in archive.namelist()})


@pytest.mark.parametrize("index", [0, 1], ids=[test_set["name"] for test_set in TEST_SETS])
def test_every_test_set_has_its_results(project: Path, index: int) -> None:
    test_set = TEST_SETS[index]
    out = project / "results" / "reference" / test_set["name"] / "unet" / "seed0"
    ids = image_ids(project / test_set["raw"])
    assert sorted(path.stem for path in (out / "masks").iterdir()) == ids
    assert sorted(path.stem for path in (out / "labels").iterdir()) == ids
    for image_id in ids:
        with Image.open(out / "labels" / f"{image_id}.png") as labels, Image.open(out / "masks" / f"{image_id}.png") as mask:
            assert labels.mode == "I;16" and labels.size == mask.size
            assert set(np.unique(np.asarray(mask))) <= {0, 255}
    with open(out / "submission.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {row["ImageId"] for row in rows} == set(ids)
    record = json.loads((out / "predict_test.json").read_text())
    assert record["instances"] == {"method": "watershed", "min_distance": 3, "min_size": 2}
    # Scored only where the set has masks.
    assert (out / "scores.json").exists() == (test_set["name"] == "mine")
    log = (project / f"logs/predict_test/reference/{test_set['name']}/unet/seed0.log").read_text()
    assert "nuclei to results/" in log


def test_the_hook_records_the_test_stages_and_both_tools_are_done(project: Path) -> None:
    last = (project / "logs/dvc_commit.log").read_text().splitlines()[-1]
    assert last.endswith(": done") and all(stage in last.split() for stage in TEST_STAGES), last
    assert planned(project) == set()
    assert dvc_changed(project) == set()


def test_switched_off_nothing_else_changes(project: Path) -> None:
    original = (project / "params.yaml").read_text()
    params = read_params(project)
    params["test"]["sets"] = []
    write_params(project, params)
    try:
        assert planned(project) == set()
        assert dvc_changed(project) == CHECK_PARAMS
        stages = run([DVC, "stage", "list", "--name-only"], cwd=project).stdout.split()
        assert "aggregate@variant0" in stages and not any(stage.startswith("predict_test") for stage in stages)
    finally:
        (project / "params.yaml").write_text(original)


def test_a_test_value_reruns_only_the_test_stages_in_both_tools(project: Path) -> None:
    params = read_params(project)
    params["test"]["min_size"] = 5
    write_params(project, params)
    assert planned(project) == TEST_STAGES
    assert dvc_changed(project) == TEST_STAGES | CHECK_PARAMS
    result = run([DVC, "repro"], cwd=project)
    output = result.stdout + result.stderr
    assert {stage for stage in TEST_STAGES if f"Running stage '{stage}'" in output} == TEST_STAGES, output
    ran = set(re.findall(r"Running stage '([^']+)'", output))
    assert ran == TEST_STAGES | CHECK_PARAMS, output
    assert dvc_changed(project) == set()
    for test_set in TEST_SETS:
        record = json.loads(
            (project / "results/reference" / test_set["name"] / "unet/seed0/predict_test.json").read_text()
        )
        assert record["instances"]["min_size"] == 5
