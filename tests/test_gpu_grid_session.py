"""benchmarks/gpu_grid_session.sh on the CPU: a synthetic bundle, one small run, everything in $OUT; a rerun resumes.

Without a GPU the CUDA-graph tests skip their CUDA part and the steps run eagerly, which the script says.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "gpu_grid_session.sh"


def load_gpu_bundle():
    spec = importlib.util.spec_from_file_location("gpu_bundle", REPO / "benchmarks" / "gpu_bundle.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_one_call_trains_evaluates_and_packs_then_a_second_call_skips_what_is_done(
    tmp_path, synthetic_interim_h5, synthetic_processed_h5, synthetic_split_json
):
    if shutil.which("bash") is None:
        pytest.skip("needs bash")
    # The device machine's view: the checkout's code and the carried bundle, nothing unpacked yet.
    there = tmp_path / "checkout"
    there.mkdir()
    for name in ("src", "benchmarks", "tests"):
        (there / name).symlink_to(REPO / name)
    processed = tmp_path / "processed"
    processed.mkdir()
    shutil.copyfile(synthetic_processed_h5, processed / "dsb2018_96.h5")  # the reference's size, 32x32 inside
    shutil.copyfile(synthetic_split_json, processed / "split.json")
    load_gpu_bundle().pack(processed, [96], synthetic_interim_h5, there / ".gpu_bundle", budget_mib=1.0)
    out = tmp_path / "out"
    env = {**os.environ, "OUT": str(out), "DEADLINE": "600", "JOBS": "1",
           "GRID_ARGS": "--variant reference --arch unet --seed 0 --epochs 1", "UNETPP_SOURCE_COMMIT": "abc1234",
           "PYTHON": sys.executable}

    def call() -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", str(SCRIPT)], cwd=there, env=env, capture_output=True, text=True, timeout=900)

    first = call()
    assert first.returncode == 0, first.stdout + first.stderr
    assert "training steps: eager" in (out / "gpu.txt").read_text()  # no GPU here
    assert " passed" in (out / "cuda_graph_tests.txt").read_text()
    with tarfile.open(out / "gpu_grid.tar.gz") as tar:
        names = set(tar.getnames())
    assert {"gpu_grid/models/reference/unet/seed0/train.json", "gpu_grid/results/variants.md"} <= names
    log = there / "gpu_grid" / "logs" / "reference" / "unet-seed0.log"
    assert log.read_text().count("-m unetpp train ") == 1

    second = call()
    assert second.returncode == 0, second.stdout + second.stderr
    assert "reference unet seed 0: done" in second.stdout
    assert log.read_text().count("-m unetpp train ") == 1  # the finished run was not trained again
