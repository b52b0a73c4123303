"""benchmarks/bench_dropout.py compares what it says: the same model with nn.Dropout in place of every HalfDropout."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from torch import nn

from unetpp.models import build_model
from unetpp.models.dropout import HalfDropout

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_dropout.py"
spec = importlib.util.spec_from_file_location("bench_dropout", SCRIPT)
bench_dropout = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench_dropout)


@pytest.mark.parametrize(("arch", "units"), [("unet", 9), ("nested_unet_ds", 15)])
def test_every_dropout_of_the_authors_block_is_swapped(arch: str, units: int) -> None:
    model = build_model(arch, block="authors", filters=(4, 8, 8, 8, 8))
    assert bench_dropout.with_nn_dropout(model) == 2 * units  # two per unit
    dropouts = [m for m in model.modules() if isinstance(m, nn.Dropout | HalfDropout)]
    assert len(dropouts) == 2 * units and all(type(m) is nn.Dropout and m.p == 0.5 for m in dropouts)
