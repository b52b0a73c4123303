"""The reference loss: 0.5 * BCE-with-logits + (1 - soft Dice), per-sample Dice averaged."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

DICE_SMOOTH = 1e-5


def bce_dice_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = DICE_SMOOTH) -> torch.Tensor:
    """0.5 * BCE(logits, target) + 1 - mean_n (2 sum(p t) + s) / (sum(p) + sum(t) + s), p = sigmoid(logits).

    BCE is the mean over every element; the Dice is computed per sample over
    all its channels and pixels, then averaged over the batch, as in the
    reference. Runs in fp32 even under autocast: the Dice sums over 9,216
    pixels lose too much precision in bf16.
    """
    if logits.shape != target.shape:
        raise ValueError(
            f"logits shape {tuple(logits.shape)} differs from target shape {tuple(target.shape)}: "
            f"give the mask a channel axis, (N, 1, H, W)"
        )
    with torch.autocast(device_type=logits.device.type, enabled=False):
        logits = logits.float()
        target = target.float()
        bce = F.binary_cross_entropy_with_logits(logits, target)
        n = logits.shape[0]
        probs = torch.sigmoid(logits).reshape(n, -1)
        flat_target = target.reshape(n, -1)
        dice = (2.0 * (probs * flat_target).sum(dim=1) + smooth) / (probs.sum(dim=1) + flat_target.sum(dim=1) + smooth)
        return 0.5 * bce + (1.0 - dice.mean())


def supervised_loss(heads: Sequence[torch.Tensor], target: torch.Tensor) -> torch.Tensor:
    """BCE+Dice of each head's logits, averaged: the deep-supervision loss (with one head, that head's loss)."""
    if not heads:
        raise ValueError("supervised_loss got an empty list of heads")
    return torch.stack([bce_dice_loss(logits, target) for logits in heads]).mean()


class BCEDiceLoss(nn.Module):
    """Module form of `supervised_loss`, for code that expects an nn.Module criterion."""

    def forward(self, heads: Sequence[torch.Tensor], target: torch.Tensor) -> torch.Tensor:
        return supervised_loss(heads, target)
