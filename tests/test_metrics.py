"""IoU / Dice: thresholds, empty conventions and the three reductions, by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unetpp.metrics import (
    REDUCTIONS,
    PixelCounts,
    counts_from_logits,
    counts_from_probabilities,
    dice,
    iou,
    per_image_dice,
    per_image_iou,
    pixel_counts,
)

# Five 1x4 images (prediction, mask) and their counts worked out by hand.
PRED = [[1, 1, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0]]
MASK = [[1, 0, 1, 0], [1, 1, 1, 0], [0, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]]
INTER = [1, 3, 0, 0, 0]
UNION = [3, 4, 0, 1, 1]
PRED_SUM = [2, 4, 0, 0, 1]
MASK_SUM = [2, 3, 0, 1, 0]
IOU = [1 / 3, 3 / 4, 1.0, 0.0, 0.0]  # both empty -> 1, exactly one empty -> 0
DICE = [2 / 4, 6 / 7, 1.0, 0.0, 0.0]


def _counts() -> PixelCounts:
    pred = torch.tensor(PRED).reshape(5, 1, 2, 2)
    return pixel_counts(pred, torch.tensor(MASK, dtype=torch.uint8).reshape(5, 1, 2, 2))


def test_pixel_counts_by_hand() -> None:
    c = _counts()
    assert c.intersection.tolist() == INTER
    assert c.union.tolist() == UNION
    assert c.pred_sum.tolist() == PRED_SUM
    assert c.target_sum.tolist() == MASK_SUM
    assert c.intersection.dtype == torch.int64


def test_per_image_values_and_empty_convention() -> None:
    c = _counts()
    assert per_image_iou(c).tolist() == pytest.approx(IOU)
    assert per_image_dice(c).tolist() == pytest.approx(DICE)


def test_reductions_over_the_set() -> None:
    c = _counts()
    assert iou(c, "per_image") == pytest.approx(sum(IOU) / 5)
    assert dice(c, "per_image") == pytest.approx(sum(DICE) / 5)
    assert iou(c, "pooled") == pytest.approx(4 / 9)
    assert dice(c, "pooled") == pytest.approx(8 / 13)
    # Batches of 2: [0,1] -> 4/7, [2,3] -> 0/1, [4] -> 0/1; weighted by size 2, 2, 1.
    assert iou(c, "batch_pooled", batch_size=2) == pytest.approx((4 / 7 * 2 + 0 * 2 + 0 * 1) / 5)
    # Batches [0,1,2] -> 4/7 and [3,4] -> 0/2.
    assert iou(c, "batch_pooled", batch_size=3) == pytest.approx((4 / 7 * 3) / 5)
    # Dice of batch [0,1]: 2 * (1 + 3) / (2 + 4 + 2 + 3) = 8/11.
    assert dice(c, "batch_pooled", batch_size=2) == pytest.approx((8 / 11 * 2) / 5)
    # One batch covering everything is the pooled figure.
    assert iou(c, "batch_pooled", batch_size=100) == pytest.approx(iou(c, "pooled"))


def test_a_pooled_group_with_empty_union_scores_one() -> None:
    c = pixel_counts(torch.zeros(3, 4, dtype=torch.bool), torch.zeros(3, 4, dtype=torch.bool))
    assert iou(c, "pooled") == 1.0 and dice(c, "pooled") == 1.0
    assert iou(c, "batch_pooled", batch_size=2) == 1.0
    assert iou(c, "per_image") == 1.0


def test_batch_pooled_uses_batches_of_16_like_the_reference() -> None:
    # 16 images with I=1, U=3, then 4 images: two empty/empty (I=U=0) and two with I=1, U=4.
    inter = torch.tensor([1] * 16 + [0, 0, 1, 1])
    union = torch.tensor([3] * 16 + [0, 0, 4, 4])
    c = PixelCounts(inter, union, union.clone(), inter.clone())
    assert iou(c, "per_image") == pytest.approx((16 / 3 + 2 * 1.0 + 2 * 0.25) / 20)
    assert iou(c, "pooled") == pytest.approx(18 / 56)
    assert iou(c, "batch_pooled") == pytest.approx((16 * 16 / 48 + 4 * 2 / 8) / 20)
    assert len({round(iou(c, r), 6) for r in REDUCTIONS}) == 3


def test_logit_threshold_is_sigmoid_above_one_half() -> None:
    logits = torch.tensor([[-1.0, 0.0, 1e-8, 1e-3, 5.0]])
    target = torch.tensor([[0.0, 1.0, 1.0, 0.6, 0.5]])
    c = counts_from_logits(logits, target)
    # P = [0, 0, 0 (fp32 sigmoid(1e-8) is exactly 0.5), 1, 1]; T = [0, 1, 1, 1, 0] (0.5 is not > 0.5).
    assert (c.intersection.item(), c.union.item(), c.pred_sum.item(), c.target_sum.item()) == (1, 4, 2, 3)
    # bf16 logits give the same answer (they are scored in fp32).
    assert counts_from_logits(logits.bfloat16(), target).union.item() == 4


def test_probability_threshold_accepts_float16_and_uint8_numpy() -> None:
    probs = np.array([[0.2, 0.5, 0.5009766, 0.9]], dtype=np.float16)
    mask = np.array([[0, 1, 1, 1]], dtype=np.uint8)
    c = counts_from_probabilities(probs, mask)
    assert (c.intersection.item(), c.union.item()) == (2, 3)
    assert iou(c) == pytest.approx(2 / 3)


def test_non_binary_or_mismatched_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="prediction must be boolean or 0/1.*counts_from_probabilities"):
        pixel_counts(torch.tensor([[0.2, 0.9]]), torch.tensor([[0, 1]]))
    with pytest.raises(ValueError, match="mask must be boolean or 0/1"):
        pixel_counts(torch.tensor([[0, 1]]), torch.tensor([[0, 255]]))
    with pytest.raises(ValueError, match=r"prediction shape \(1, 3\) differs from mask shape \(1, 2\)"):
        pixel_counts(torch.zeros(1, 3, dtype=torch.bool), torch.zeros(1, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="unknown reduction 'mean'"):
        iou(_counts(), "mean")
    with pytest.raises(ValueError, match="empty set"):
        iou(PixelCounts(*(torch.zeros(0, dtype=torch.int64) for _ in range(4))))


def test_concat_keeps_order_so_batches_can_be_accumulated() -> None:
    c = _counts()
    parts = [
        pixel_counts(torch.tensor(PRED[:2]), torch.tensor(MASK[:2])),
        pixel_counts(torch.tensor(PRED[2:]), torch.tensor(MASK[2:])),
    ]
    joined = PixelCounts.concat(parts)
    assert joined.union.tolist() == c.union.tolist()
    assert iou(joined, "batch_pooled", batch_size=2) == iou(c, "batch_pooled", batch_size=2)
