"""benchmarks/bench_upsample.py: its matmul form is the same linear map as bilinear x2 with align_corners=True."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
import torch.nn.functional as F

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_upsample.py"
spec = importlib.util.spec_from_file_location("bench_upsample", SCRIPT)
bench_upsample = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench_upsample)


def test_matmul_upsampling_equals_interpolate_in_float64() -> None:
    torch.manual_seed(0)
    for side in (1, 3, 6, 12):
        x = torch.randn(2, 3, side, side, dtype=torch.float64)
        matrix = bench_upsample.interpolation_matrix(side, torch.float64)
        expected = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        # float64 on both sides: only summation order differs, far below 1e-12.
        assert torch.allclose(bench_upsample.matmul_upsample(x, matrix, matrix), expected, atol=1e-12, rtol=0)


def test_the_shapes_are_unetpps_ten_upsamplings() -> None:
    # Depth 4: nodes X(i, j) with j >= 1 upsample X(i+1, j-1): 4 + 3 + 2 + 1 calls, 64 channels at 48x48 first.
    shapes = bench_upsample.shapes()
    assert len(shapes) == 10
    assert shapes[0] == (16, 64, 48) and (16, 512, 6) in shapes
