"""BCE+Dice against values computed by hand with plain math."""

from __future__ import annotations

import math

import pytest
import torch

from unetpp.losses import BCEDiceLoss, bce_dice_loss, supervised_loss

SMOOTH = 1e-5
# Tolerances: the hand computation is float64; the loss runs in fp32, whose vectorised exp/log (SLEEF) and sums
# differ between AVX2 and AVX-512 builds by a few ulps. rel=1e-6 is about 8 fp32 ulps: above that rounding,
# far below any change of formula (the smallest one tested here, pooled vs per-sample Dice, moves it by > 0.3).


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _hand_loss(samples: list[tuple[list[float], list[float]]]) -> float:
    """0.5 * mean BCE over every pixel + 1 - mean over samples of the smoothed soft Dice."""
    bce_terms, dices = [], []
    for logits, target in samples:
        p = [_sigmoid(z) for z in logits]
        bce_terms += [-(t * math.log(q) + (1 - t) * math.log(1 - q)) for q, t in zip(p, target)]
        inter = sum(q * t for q, t in zip(p, target))
        dices.append((2 * inter + SMOOTH) / (sum(p) + sum(target) + SMOOTH))
    return 0.5 * sum(bce_terms) / len(bce_terms) + 1 - sum(dices) / len(dices)


def test_single_2x2_image_matches_hand_computation() -> None:
    logits = [0.0, 2.0, -1.0, 3.0]
    target = [0.0, 1.0, 1.0, 0.0]
    # Written out: p = (0.5, 0.8808, 0.2689, 0.9526); BCE terms (0.6931, 0.1269, 1.3133, 3.0486);
    # Dice = (2 * 1.1497 + 1e-5) / (2.6023 + 2 + 1e-5) = 0.49964; loss = 0.5 * 1.29548 + 1 - 0.49964.
    expected = _hand_loss([(logits, target)])
    assert expected == pytest.approx(1.148101, abs=1e-5)
    got = bce_dice_loss(torch.tensor(logits).reshape(1, 1, 2, 2), torch.tensor(target).reshape(1, 1, 2, 2))
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_dice_is_averaged_over_samples_not_pooled() -> None:
    a = ([4.0] * 4, [1.0] * 4)  # large object found: Dice near 1
    b = ([-4.0] * 4, [1.0, 0.0, 0.0, 0.0])  # small object missed: Dice near 0
    logits = torch.tensor([a[0], b[0]]).reshape(2, 1, 2, 2)
    target = torch.tensor([a[1], b[1]]).reshape(2, 1, 2, 2)
    got = bce_dice_loss(logits, target).item()
    assert got == pytest.approx(_hand_loss([a, b]), rel=1e-6)
    # The pooled alternative (one Dice over both samples) is a different number.
    assert abs(got - _hand_loss([(a[0] + b[0], a[1] + b[1])])) > 0.3


def test_empty_mask_and_confident_background_gives_small_loss() -> None:
    logits = [-20.0] * 4
    target = [0.0] * 4
    got = bce_dice_loss(torch.tensor(logits).reshape(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)).item()
    assert got == pytest.approx(_hand_loss([(logits, target)]), abs=1e-6)
    assert got < 1e-3  # smoothing makes an empty-vs-empty Dice about 1


def test_deep_supervision_loss_is_the_mean_over_the_heads() -> None:
    target_list = [1.0, 0.0, 0.0, 1.0]
    target = torch.tensor(target_list).reshape(1, 1, 2, 2)
    heads = [[0.5, -0.5, 1.0, 2.0], [-1.0, 1.0, 0.0, 0.0], [3.0, -3.0, -3.0, 3.0], [0.0, 0.0, 0.0, 0.0]]
    expected = sum(_hand_loss([(h, target_list)]) for h in heads) / 4
    outputs = [torch.tensor(h).reshape(1, 1, 2, 2) for h in heads]
    assert supervised_loss(outputs, target).item() == pytest.approx(expected, rel=1e-6)
    assert BCEDiceLoss()(outputs, target).item() == pytest.approx(expected, rel=1e-6)
    assert supervised_loss([outputs[2]], target).item() == pytest.approx(_hand_loss([(heads[2], target_list)]), rel=1e-6)


def test_gradient_flows_to_every_head() -> None:
    outputs = [torch.zeros(1, 1, 2, 2, requires_grad=True) for _ in range(4)]
    supervised_loss(outputs, torch.ones(1, 1, 2, 2)).backward()
    for o in outputs:
        assert o.grad is not None and bool((o.grad < 0).all())  # raising every logit lowers the loss


def test_bfloat16_logits_are_scored_in_float32() -> None:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 1, 16, 16, generator=gen)
    target = (torch.rand(2, 1, 16, 16, generator=gen) > 0.5).float()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = bce_dice_loss(logits.bfloat16(), target)
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(bce_dice_loss(logits.bfloat16().float(), target).item(), rel=1e-6)


def test_shape_mismatch_and_empty_list_are_refused() -> None:
    with pytest.raises(ValueError, match=r"logits shape \(2, 1, 4, 4\) differs from target shape \(2, 4, 4\)"):
        bce_dice_loss(torch.zeros(2, 1, 4, 4), torch.zeros(2, 4, 4))
    with pytest.raises(ValueError, match="empty list"):
        supervised_loss([], torch.zeros(1, 1, 2, 2))
