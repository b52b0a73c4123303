"""Either memory layout computes the same model: gradients equal to rounding, the same IoU after training.

`unetpp train --layout auto` may train in channels_last or NCHW depending on
the CPU (training/layout.py), so both must be the same function. They differ
only in fp32 summation order: oneDNN picks different kernels (and blockings)
per layout and per CPU family, so results agree to rounding, not bit for bit.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

from unetpp.benchmarking.accuracy import short_training_iou
from unetpp.benchmarking.paths import StepPath, reference_path
from unetpp.data.ingest import ingest
from unetpp.data.preprocess import preprocess
from unetpp.data.processed import load_processed
from unetpp.data.synth import synthesize
from unetpp.models import build_model
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


def test_training_step_gradients_match_reference_layout(one_thread: None) -> None:
    """One real train_step: the reference (NCHW) vs channels_last, from the same weights and batch."""
    torch.manual_seed(3)
    ref = build_model("nested_unet_ds", **SMALL)
    fast = build_model("nested_unet_ds", **SMALL)
    fast.load_state_dict(ref.state_dict())
    fast = fast.to(memory_format=CL)
    x = torch.rand(4, 3, 32, 32)
    y = (torch.rand(4, 1, 32, 32) > 0.7).float()
    losses = []
    for model, inp in ((ref, x), (fast, x.contiguous(memory_format=CL))):
        optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # keep the weights; we compare the gradients
        losses.append(train_step(model, optimizer, inp, y, "fp32")[0])
    # The loss is a mean over 4x32x32 pixels of values near 1: fp32 reordering moves it by a few ulps (~1e-7).
    torch.testing.assert_close(losses[0], losses[1], rtol=1e-5, atol=1e-6)
    # Weight gradients sum 4x32x32 products per element through ~20 layers of BN, whose backward divides by the
    # batch variance: reordering differences of ~1e-7 grow to ~1e-5 absolute on AVX2 and AVX-512 alike, and
    # near-zero elements make the relative error large, hence rtol 1e-3 with an absolute floor of 1e-5.
    for (name, p_ref), p_fast in zip(ref.named_parameters(), fast.parameters()):
        torch.testing.assert_close(p_fast.grad, p_ref.grad, rtol=1e-3, atol=1e-5, msg=name)


@pytest.mark.parametrize("arch", ["unet", "nested_unet_ds"])
def test_short_training_reaches_the_same_iou(arch: str, guard_set, one_thread: None) -> None:
    """20 epochs (lr 3e-4, batch 6) from the same weights and batch order: channels_last within 0.03 IoU of NCHW."""
    train, score = guard_set
    reference = short_training_iou(arch, reference_path(), train, score, 20, 6, 0, SMALL, lr=3e-4)
    channels_last = short_training_iou(arch, StepPath("channels_last", "fp32", True), train, score, 20, 6, 0, SMALL,
                                       lr=3e-4)
    assert 0.2 < reference < 0.9, "the guard needs an IoU that is neither trivial nor saturated"
    # 120 Adam steps amplify the per-step rounding differences above. Measured on Zen 4 (AVX-512 BF16, fp32 here):
    # channels_last moved the IoU by 0.010 (unet) and 0.012 (nested_unet_ds), and the reference itself moved by
    # 0.007 with 2 threads instead of 1 (the same layout, only another summation order); images transposed
    # against their masks (a layout bug) cost 0.13. So 0.03: above rounding, well below a real conversion error.
    assert abs(channels_last - reference) <= 0.03, (reference, channels_last)
