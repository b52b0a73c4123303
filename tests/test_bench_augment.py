"""benchmarks/bench_augment.py: one tiny run reports a step time and a ratio per --augment kind."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from unetpp.choices import AUGMENTS

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_augment.py"
spec = importlib.util.spec_from_file_location("bench_augment", SCRIPT)
bench_augment = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench_augment)


@pytest.mark.slow
def test_a_tiny_run_times_every_kind(tmp_path, capsys):
    out = tmp_path / "r.json"
    result = bench_augment.main(["--arch", "unet", "--size", "32", "--batch-size", "2", "--rounds", "2",
                                 "--warmup", "1", "--device", "cpu", "--precision", "fp32", "--threads", "1",
                                 "--json", str(out)])
    assert json.loads(out.read_text())["ratio_to_none"] == result["ratio_to_none"]
    assert set(result["step_seconds"]) == set(AUGMENTS) and result["ratio_to_none"]["none"] == 1.0
    assert all(seconds > 0 for seconds in result["step_seconds"].values())
    assert result["augment_share_of_step"]["none"] == 0.0
    printed = capsys.readouterr().out
    assert all(f"  {kind}" in printed for kind in AUGMENTS)
