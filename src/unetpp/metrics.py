"""IoU and Dice at threshold 0.5, with the reductions used in our reports.

Binarisation, as in the reference's ``iou_score``: P = sigmoid(logit) > 0.5,
computed in fp32 (the same as logit > 0 except for |logit| < 1.2e-7, where
fp32 sigmoid rounds to exactly 0.5), or probability > 0.5 for stored
probabilities; T = mask > 0.5.

Reductions (all computed from per-image pixel counts):

- ``per_image``: IoU of each image, then the mean over images. Our primary figure.
- ``pooled``: sum of intersections over sum of unions, over the whole set.
- ``batch_pooled``: pooled within consecutive batches of ``batch_size`` (16)
  in the given order, then averaged weighted by batch size. This is how the
  reference implementation reports validation IoU, so it is the figure to set
  beside the published numbers.

Empty convention: when prediction and mask are both empty (union 0) the IoU
and the Dice are 1.0 (perfect agreement); when exactly one is empty they are 0.
The same rule applies to a pooled group whose union is 0. The reference gets
the same values from its smoothing, (I + 1e-5) / (U + 1e-5); we use the exact
ratio otherwise, which differs from it by less than 1e-5 / U.

The reference's ``dice_coef`` is a soft Dice on probabilities; our Dice is
thresholded like the IoU so that the two figures describe the same masks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from unetpp.choices import REDUCTIONS, REFERENCE_BATCH_SIZE


@dataclass
class PixelCounts:
    """Per-image pixel counts from which every IoU/Dice reduction follows."""

    intersection: torch.Tensor  # (N,) int64, |P and T|
    union: torch.Tensor  # (N,) int64, |P or T|
    pred_sum: torch.Tensor  # (N,) int64, |P|
    target_sum: torch.Tensor  # (N,) int64, |T|

    @staticmethod
    def concat(parts: list[PixelCounts]) -> PixelCounts:
        return PixelCounts(
            *(torch.cat([getattr(p, f) for p in parts]) for f in ("intersection", "union", "pred_sum", "target_sum"))
        )


def _as_tensor(x: torch.Tensor | np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(x)) if not isinstance(x, torch.Tensor) else x


def _binary(x: torch.Tensor | np.ndarray, name: str) -> torch.Tensor:
    """Refuse anything but 0/1 values: a probability map would silently count as all-foreground."""
    x = _as_tensor(x)
    if x.dtype != torch.bool:
        if x.numel() and not bool(((x == 0) | (x == 1)).all()):
            raise ValueError(
                f"{name} must be boolean or 0/1, got values in [{float(x.min())}, {float(x.max())}]: "
                f"use counts_from_logits or counts_from_probabilities to threshold it"
            )
        x = x.bool()
    return x


def pixel_counts(pred: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray) -> PixelCounts:
    """Counts for boolean (or already thresholded 0/1) predictions and masks of shape (N, ...)."""
    p = _binary(pred, "prediction")
    t = _binary(target, "mask")
    if p.ndim == 0:
        raise ValueError("prediction must have a batch axis, shape (N, ...)")
    if p.shape != t.shape:
        raise ValueError(f"prediction shape {tuple(p.shape)} differs from mask shape {tuple(t.shape)}")
    n = p.shape[0]
    p = p.reshape(n, -1)
    t = t.reshape(n, -1)
    inter = (p & t).sum(dim=1)
    union = (p | t).sum(dim=1)
    return PixelCounts(inter, union, p.sum(dim=1), t.sum(dim=1))


def counts_from_logits(logits: torch.Tensor, target: torch.Tensor | np.ndarray) -> PixelCounts:
    """P = sigmoid(logits) > 0.5 in fp32, as the reference, against T = target > 0.5."""
    return pixel_counts(torch.sigmoid(logits.detach().float()) > 0.5, _as_tensor(target).detach() > 0.5)


def counts_from_probabilities(probs: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray) -> PixelCounts:
    """P = probability > 0.5 against T = target > 0.5 (target may be 0/1 uint8 or float)."""
    return pixel_counts(_as_tensor(probs).float() > 0.5, _as_tensor(target).float() > 0.5)


def _ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    num = num.double()
    den = den.double()
    return torch.where(den > 0, num / den.clamp(min=1), torch.ones_like(num))


def per_image_iou(counts: PixelCounts) -> torch.Tensor:
    """(N,) float64 IoU of each image, 1.0 where prediction and mask are both empty."""
    return _ratio(counts.intersection, counts.union)


def per_image_dice(counts: PixelCounts) -> torch.Tensor:
    """(N,) float64 Dice of each image, 1.0 where prediction and mask are both empty."""
    return _ratio(2 * counts.intersection, counts.pred_sum + counts.target_sum)


def _reduce(num: torch.Tensor, den: torch.Tensor, reduction: str, batch_size: int) -> float:
    if reduction not in REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}; choose one of {', '.join(REDUCTIONS)}")
    if num.numel() == 0:
        raise ValueError("cannot reduce an empty set of images")
    if reduction == "per_image":
        return float(_ratio(num, den).mean())
    if reduction == "pooled":
        return float(_ratio(num.sum(), den.sum()))
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    total, weight = 0.0, 0
    for start in range(0, num.numel(), batch_size):
        chunk = slice(start, start + batch_size)
        size = num[chunk].numel()
        total += float(_ratio(num[chunk].sum(), den[chunk].sum())) * size
        weight += size
    return total / weight


def iou(counts: PixelCounts, reduction: str = "per_image", batch_size: int = REFERENCE_BATCH_SIZE) -> float:
    """IoU = |P and T| / |P or T| reduced as named (see the module docstring)."""
    return _reduce(counts.intersection, counts.union, reduction, batch_size)


def dice(counts: PixelCounts, reduction: str = "per_image", batch_size: int = REFERENCE_BATCH_SIZE) -> float:
    """Dice = 2|P and T| / (|P| + |T|) reduced as named (see the module docstring)."""
    return _reduce(2 * counts.intersection, counts.pred_sum + counts.target_sum, reduction, batch_size)
