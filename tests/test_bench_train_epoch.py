"""benchmarks/bench_train_epoch.py on synthetic data: one real epoch, every step and validation pass timed."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_train_epoch.py"


def test_one_epoch_is_timed_step_by_step(tmp_path: Path, synthetic_processed_h5: Path,
                                         synthetic_split_json: Path) -> None:
    out = tmp_path / "epoch.json"
    env = {**os.environ, "UNETPP_CACHE_DIR": str(tmp_path / "cache")}  # the layout choice stays out of ~/.cache
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--data", str(synthetic_processed_h5), "--split", str(synthetic_split_json),
         "--arch", "unet", "--precision", "fp32", "--threads", "1", "--batch-size", "4", "--json", str(out)],
        capture_output=True, text=True, timeout=600, env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "allocator: " in proc.stderr  # it keeps freed memory (or says why not) as `unetpp train` does
    result = json.loads(out.read_text())
    n_train = len(json.loads(synthetic_split_json.read_text())["train"])
    assert result["n_train"] == n_train and result["steps"] == math.ceil(n_train / 4)
    assert len(result["step_times_s"]) == result["steps"] and min(result["step_times_s"]) > 0
    assert result["validate_s"] > 0  # the validation pass was wrapped and timed too
    assert result["epoch_s"] >= result["sum_step_s"]  # the epoch holds its steps
    assert f"epoch {result['epoch_s']:.1f} s" in proc.stdout


def test_both_paths_each_in_its_own_process_give_one_ratio(tmp_path: Path, synthetic_processed_h5: Path,
                                                            synthetic_split_json: Path) -> None:
    out = tmp_path / "both.json"
    env = {**os.environ, "UNETPP_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--data", str(synthetic_processed_h5), "--split", str(synthetic_split_json),
         "--arch", "unet", "--threads", "1", "--batch-size", "4", "--path", "both", "--json", str(out)],
        capture_output=True, text=True, timeout=600, env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(out.read_text())
    reference, default = result["paths"]["reference"], result["paths"]["default"]
    assert (reference["path"], reference["precision"], reference["layout"]) == ("reference", "fp32", "nchw")
    assert default["path"] == "default" and default["steps"] == reference["steps"]
    assert result["speedup"] == reference["epoch_s"] / default["epoch_s"]
    assert f"= {result['speedup']:.2f}x" in proc.stdout
