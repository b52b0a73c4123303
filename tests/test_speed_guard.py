"""The fast default path must compute the same model: outputs and gradients equal to rounding, same IoU."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from unetpp.benchmarking.accuracy import short_training_iou
from unetpp.benchmarking.paths import default_path, reference_path
from unetpp.data.ingest import ingest
from unetpp.data.preprocess import preprocess
from unetpp.data.processed import load_processed
from unetpp.data.synth import synthesize
from unetpp.models import ModelError, build_model, count_parameters
from unetpp.models.conv import Conv3x3, nchw_training_applies
from unetpp.training.step import train_step

CL = torch.channels_last
SMALL = {"filters": (4, 8, 16, 32, 64)}


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Fixed thread count: oneDNN's summation order (and so the rounding) depends on it."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def guard_set(tmp_path_factory: pytest.TempPathFactory) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """24 synthetic 32x32 images: 18 to train on, 6 to score."""
    folder = tmp_path_factory.mktemp("guard")
    synthesize(24, folder / "raw.zip", seed=7, sizes=((32, 32), (40, 48), (48, 48)))
    ingest(folder / "raw.zip", folder / "interim.h5", workers=1, progress=False)
    preprocess(folder / "interim.h5", folder / "p.h5", size=32, workers=1, progress=False)
    data = load_processed(folder / "p.h5")
    return (data.images[:18], data.masks[:18]), (data.images[18:], data.masks[18:])


def _conv_pair(cin: int, cout: int, seed: int = 0) -> tuple[nn.Conv2d, Conv3x3]:
    torch.manual_seed(seed)
    reference = nn.Conv2d(cin, cout, 3, padding=1)
    fast = Conv3x3(cin, cout)
    fast.load_state_dict(reference.state_dict())
    return reference, fast.to(memory_format=CL)


@pytest.mark.parametrize("input_grad", [True, False])
def test_auto_layout_conv_matches_conv2d_in_fp32(input_grad: bool) -> None:
    """Channels_last weights and input, as `unetpp train` has them: same output and gradients as nn.Conv2d."""
    reference, fast = _conv_pair(24, 16)
    x = torch.randn(4, 24, 12, 12)
    x_ref = x.clone().requires_grad_(input_grad)
    x_cl = x.contiguous(memory_format=CL).requires_grad_(input_grad)
    grad_out = torch.randn(4, 16, 12, 12)
    if torch.backends.cpu.get_cpu_capability() == "AVX2":
        assert nchw_training_applies(x_cl, fast.weight)  # the NCHW route really runs where it is meant to
    out_ref, out_fast = reference(x_ref), fast(x_cl)
    torch.testing.assert_close(out_fast, out_ref)
    wanted = [reference.weight, reference.bias] + ([x_ref] if input_grad else [])
    got = [fast.weight, fast.bias] + ([x_cl] if input_grad else [])
    grads_fast = torch.autograd.grad(out_fast, got, grad_out)
    for g_fast, g_ref in zip(grads_fast, torch.autograd.grad(out_ref, wanted, grad_out)):
        torch.testing.assert_close(g_fast, g_ref, rtol=1e-5, atol=1e-5)


def test_nchw_route_is_not_used_where_it_does_not_apply() -> None:
    _, fast = _conv_pair(8, 8)
    x_cl = torch.randn(2, 8, 8, 8).contiguous(memory_format=CL)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not nchw_training_applies(x_cl, fast.weight)  # autocast must keep casting the conv
        assert fast(x_cl).dtype == torch.bfloat16
    with torch.no_grad():
        assert not nchw_training_applies(x_cl, fast.weight)  # inference keeps the layout it is given
        assert fast(x_cl).is_contiguous(memory_format=CL)
    with pytest.raises(ModelError, match="conv_layout 'fast'"):
        Conv3x3(3, 4, conv_layout="fast")


@pytest.mark.parametrize("arch", ["unet", "nested_unet_ds"])
def test_models_with_either_backward_are_interchangeable(arch: str) -> None:
    native, auto = build_model(arch, conv_layout="native"), build_model(arch)
    assert count_parameters(native) == count_parameters(auto)
    assert list(native.state_dict()) == list(auto.state_dict())
    auto.load_state_dict(native.state_dict())  # strict: same keys and shapes


def test_training_step_gradients_match_reference_layout(one_thread: None) -> None:
    """One real train_step: the reference (NCHW, plain nn.Conv2d) vs channels_last with conv_layout=auto."""
    torch.manual_seed(3)
    ref = build_model("nested_unet_ds", conv_layout="native", **SMALL)
    fast = build_model("nested_unet_ds", **SMALL)
    fast.load_state_dict(ref.state_dict())
    fast = fast.to(memory_format=CL)
    x = torch.rand(4, 3, 32, 32)
    y = (torch.rand(4, 1, 32, 32) > 0.7).float()
    losses = []
    for model, inp in ((ref, x), (fast, x.contiguous(memory_format=CL))):
        optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # keep the weights; we compare the gradients
        losses.append(train_step(model, optimizer, inp, y, "fp32")[0])
    torch.testing.assert_close(losses[0], losses[1], rtol=1e-5, atol=1e-6)
    for (name, p_ref), p_fast in zip(ref.named_parameters(), fast.parameters()):
        torch.testing.assert_close(p_fast.grad, p_ref.grad, rtol=1e-3, atol=1e-5, msg=name)


@pytest.mark.parametrize("arch", ["unet", "nested_unet_ds"])
def test_short_training_reaches_the_same_iou(arch: str, guard_set, one_thread: None) -> None:
    """20 epochs (lr 3e-4, batch 6) from the same weights and batch order: IoU within 0.01 of the reference."""
    train, score = guard_set
    reference = short_training_iou(arch, reference_path(), train, score, 20, 6, 0, SMALL, lr=3e-4)
    default = short_training_iou(arch, default_path(torch.device("cpu")), train, score, 20, 6, 0, SMALL, lr=3e-4)
    assert 0.2 < reference < 0.9, "the guard needs an IoU that is neither trivial nor saturated"
    assert abs(default - reference) <= 0.01, (reference, default)
