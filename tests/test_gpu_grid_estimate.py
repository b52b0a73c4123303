"""benchmarks/gpu_grid_estimate.py: the GPU grid's floor from measured step times and the CPU runs' epochs."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_grid_estimate.py"
spec = importlib.util.spec_from_file_location("gpu_grid_estimate", SCRIPT)
script = importlib.util.module_from_spec(spec)
spec.loader.exec_module(script)

PARAMS = """\
variants:
  reference: &reference
    name: reference
    size: 96
    batch_size: 16
  size192:
    <<: *reference
    name: size192
    size: 192
"""


def write_epochs(results: Path, variant: str, epochs: dict[str, int]) -> None:
    for arch, n in epochs.items():
        folder = results / "models" / variant / arch / "seed0"
        folder.mkdir(parents=True)
        (folder / "train.json").write_text(json.dumps({"epochs_run": n}))


def test_step_times_interpolate_in_pixels_per_step():
    # batch 16 at 96x96 and batch 128: the measured graph steps themselves
    assert script.step_ms("nested_unet", 16, 96) == pytest.approx(9.37)
    assert script.step_ms("nested_unet", 128, 96) == pytest.approx(49.49)
    # batch 16 at 192x192 holds 64 images' pixels at 96x96: 48/112 of the way from batch 16 to 128
    assert script.step_ms("unet", 16, 192) == pytest.approx(4.41 + (18.70 - 4.41) * 48 / 112)
    # overlapped, every image costs what it costs in a batch of 128
    assert script.overlapped_step_ms("unet", 16, 192) == pytest.approx(18.70 / 2)


def test_epoch_counts_training_steps_and_a_third_of_each_validation_batch():
    # 536 training images: 34 steps; 134 validation images: 9 batches at a third of a step each
    assert script.epoch_s("unet", 16, 96, 536, 134) == pytest.approx(37 * 4.41 / 1000)


def test_the_published_gpu_run_checks_the_formula():
    """The reference's seeds 0-2 ran 289 U-Net, 230 UNet++ and 269 UNet++ DS epochs in all."""
    expected = 37 * (289 * 4.41 + 230 * 9.37 + 269 * 9.88) / 1000
    assert script.observed_floor() == pytest.approx(expected)
    assert 200 < expected < script.OBSERVED_WALL_S  # eager nine at once came within 1.3x of the floor


def test_unfinished_variant_takes_the_references_epochs_and_says_so(tmp_path):
    write_epochs(tmp_path, "reference", {"unet": 100, "nested_unet": 80, "nested_unet_ds": 70})
    write_epochs(tmp_path, "size192", {"unet": 50})
    variants = {"reference": {"size": 96, "batch_size": 16}, "size192": {"size": 192, "batch_size": 16}}
    rows = script.variant_table(tmp_path, variants, ["reference", "size192"], 536, 134)
    by_run = {(r["variant"], r["arch"]): r for r in rows}
    assert by_run["size192", "unet"]["epochs"] == 50 and by_run["size192", "unet"]["source"] == "CPU seed 0"
    assert by_run["size192", "nested_unet"]["epochs"] == 80
    assert by_run["size192", "nested_unet"]["source"] == "the reference's (not finished)"
    assert by_run["size192", "unet"]["seconds"] == pytest.approx(50 * 37 * script.step_ms("unet", 16, 192) / 1000)
    text = script.report(rows, 3)
    floor = sum(r["seconds"] for r in rows)
    assert f"floor per seed {floor:.0f} s; for 3 seed(s) {3 * floor / 60:.1f} min" in text


def test_command_line_names_an_undeclared_variant(tmp_path):
    (tmp_path / "params.yaml").write_text(PARAMS)
    write_epochs(tmp_path, "reference", {"unet": 10, "nested_unet": 10, "nested_unet_ds": 10})
    run = [sys.executable, str(SCRIPT), "--results", str(tmp_path), "--params", str(tmp_path / "params.yaml")]
    ok = subprocess.run(run + ["--seeds", "2"], capture_output=True, text=True, check=True)
    assert "| size192 | nested_unet_ds | 192 | 10 | the reference's (not finished) |" in ok.stdout
    bad = subprocess.run(run + ["--variant", "size384"], capture_output=True, text=True)
    assert bad.returncode != 0
    assert "declares no variant size384 (it has reference, size192)" in bad.stderr
