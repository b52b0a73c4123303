"""benchmarks/profile_train_step.py: its per-shape convolution FLOPs are the whole step's, as PyTorch counts them."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from unetpp.benchmarking.paths import StepPath
from unetpp.benchmarking.train_steps import count_train_step_flops

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "profile_train_step.py"
spec = importlib.util.spec_from_file_location("profile_train_step", SCRIPT)
profile_train_step = importlib.util.module_from_spec(spec)
spec.loader.exec_module(profile_train_step)

TINY = {"filters": (4, 8, 16)}


@pytest.mark.parametrize("arch", ["unet", "nested_unet_ds"])
def test_convolution_rows_add_up_to_flop_counter_total(arch: str) -> None:
    # FlopCounterMode counts convolutions only (forward, input and weight gradients; none for the image's
    # gradient), so the rows, one per (pass, shape), must add up to its total exactly: this checks the
    # backward's 2x rule, the first layer's 1x and the call counts. Both are integer-valued sums.
    path = StepPath("channels_last_fp32", "fp32", channels_last=True)
    events = profile_train_step.profiled_steps(arch, path, steps=2, by_shape=True, size=32, model_kwargs=TINY)
    rows = profile_train_step.conv_rows(events, steps=2)
    assert {row["pass"] for row in rows} == {"forward", "backward"}
    assert all(row["calls_per_step"] >= 1 and row["s_per_step"] > 0 for row in rows)
    counted = count_train_step_flops(arch, 16, 32, TINY)
    assert sum(row["gflop_per_step"] for row in rows) * 1e9 == pytest.approx(counted, rel=1e-12)


def test_family_sorts_backward_before_forward() -> None:
    assert profile_train_step.family("aten::convolution_backward") == "convolution backward"
    assert profile_train_step.family("aten::mkldnn_convolution") == "convolution forward"
    assert profile_train_step.family("aten::upsample_bilinear2d_backward") == "upsampling"
    assert profile_train_step.family("aten::cat") == "concat / copy / layout"


def test_dropout_is_a_family_of_its_own() -> None:
    # The authors' block (--block authors) drops out after every convolution: its RNG and masks are counted apart.
    assert profile_train_step.family("aten::native_dropout") == "dropout"
    assert profile_train_step.family("aten::bernoulli_") == "dropout"
    assert profile_train_step.family("aten::native_dropout_backward") == "dropout"
