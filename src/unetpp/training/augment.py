"""`unetpp train --augment`: per-sample augmentation of the in-memory training batches, on the training device.

- `flips`: one of the eight flips and right-angle rotations (the dihedral
  group of the square) per image, the mask moved with it. Written with
  `torch.flip`/`torch.rot90`: exact pixel permutations, no interpolation.
- `flips_colour`: the same, then brightness, contrast, saturation and hue
  changes and, for a tenth of the images, grey; the image only. The colour
  maths is kornia's (`kornia.enhance`, torchvision's ColorJitter semantics:
  brightness scales, contrast and saturation blend with the grey mean and
  the grey image, hue rotates in HSV), given per-sample factors.
- `none`: nothing; the batches are exactly those of a run without the option.

The parameters of an epoch are drawn at its start for every training image
(indexed by its row in the training set) from a CPU generator seeded with
(seed, epoch) alone, never from the global RNG: the same on every device, the
same after a resume, and independent of what else draws random numbers
(the authors' block's dropout). kornia's own augmentation classes draw from
the global RNG, so only its functional colour operations are used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from unetpp.choices import AUGMENTS

AUGMENT_SEED_SALT = 1 << 40  # keeps the augmentation stream apart from the shuffle's generator of the same epoch
SEED_STRIDE = 1_000_003  # as the shuffle's: (seed, epoch) -> seed one-to-one for epochs < 1e6
# (low, high) of each uniform colour factor, ColorJitter-style: brightness 0.2, contrast 0.2, saturation 0.3,
# hue 0.05 of a turn (kornia takes radians); grey with probability GREY_PROBABILITY.
COLOUR_RANGES = {
    "brightness": (0.8, 1.2),
    "contrast": (0.8, 1.2),
    "saturation": (0.7, 1.3),
    "hue": (-0.05 * 2 * math.pi, 0.05 * 2 * math.pi),
}
GREY_PROBABILITY = 0.1


def augment_seed(seed: int, epoch: int) -> int:
    """The generator seed of `epoch`'s augmentation parameters: (seed, epoch) alone."""
    return seed * SEED_STRIDE + epoch + AUGMENT_SEED_SALT


def dihedral(x: torch.Tensor, element: torch.Tensor) -> torch.Tensor:
    """(B,C,S,S) with image b flipped left-right if element[b] >= 4, then turned element[b] % 4 quarter turns.

    Branch-free (`torch.where` over the four turns), so no device sync; square
    images only, as the processed set's are.
    """
    flip = (element >= 4).view(-1, 1, 1, 1)
    base = torch.where(flip, x.flip(-1), x)
    turns = (element % 4).view(-1, 1, 1, 1)
    out = base
    for k in (1, 2, 3):
        out = torch.where(turns == k, torch.rot90(base, k, dims=(-2, -1)), out)
    return out


def recolour(images: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """Float RGB (B,3,H,W) in [0,1] through brightness, contrast, saturation, hue and grey, with factors (B,5)."""
    from kornia.color import rgb_to_grayscale
    from kornia.enhance import (
        adjust_brightness_accumulative,
        adjust_contrast_with_mean_subtraction,
        adjust_hue,
        adjust_saturation_with_gray_subtraction,
    )

    x = adjust_brightness_accumulative(images, factors[:, 0])
    x = adjust_contrast_with_mean_subtraction(x, factors[:, 1]).clamp(0.0, 1.0)
    x = adjust_saturation_with_gray_subtraction(x, factors[:, 2]).clamp(0.0, 1.0)
    x = adjust_hue(x, factors[:, 3])
    grey = rgb_to_grayscale(x).expand_as(x)
    return torch.where(factors[:, 4].view(-1, 1, 1, 1) > 0.5, grey, x).clamp(0.0, 1.0)


@dataclass(frozen=True)
class EpochAugment:
    """One epoch's parameters for every training image, on the training device."""

    element: torch.Tensor  # (N,) int64 in 0..7, see `dihedral`
    colour: torch.Tensor | None  # (N,5) float32: brightness, contrast, saturation, hue (radians), grey (0/1)

    def apply(
        self, index: torch.Tensor, images: torch.Tensor, masks: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch of training rows `index` (float images (B,3,S,S), masks (B,1,S,S)), augmented."""
        element = self.element[index]
        images, masks = dihedral(images, element), dihedral(masks, element)
        if self.colour is not None:
            images = recolour(images, self.colour[index])
        return images, masks


def epoch_augment(kind: str, n: int, seed: int, epoch: int, device: torch.device) -> EpochAugment | None:
    """The parameters of `epoch` for `n` training images under `--augment kind`; None for `none`."""
    if kind not in AUGMENTS:
        raise ValueError(f"augmentation {kind!r} is unknown; choose one of {', '.join(AUGMENTS)}")
    if kind == "none":
        return None
    generator = torch.Generator().manual_seed(augment_seed(seed, epoch))
    element = torch.randint(0, 8, (n,), generator=generator)
    colour = None
    if kind == "flips_colour":
        draws = torch.rand(n, 5, generator=generator)
        low = torch.tensor([lo for lo, _ in COLOUR_RANGES.values()])
        high = torch.tensor([hi for _, hi in COLOUR_RANGES.values()])
        colour = torch.cat([low + draws[:, :4] * (high - low), (draws[:, 4:] < GREY_PROBABILITY).float()], dim=1)
        colour = colour.to(device)
    return EpochAugment(element.to(device), colour)
