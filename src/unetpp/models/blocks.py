"""Building blocks shared by every architecture."""

from __future__ import annotations

import torch
from torch import nn


class VGGBlock(nn.Sequential):
    """conv3x3-BN-ReLU-conv3x3-BN-ReLU, the unit of both U-Net and UNet++.

    A Sequential (rather than a custom forward) keeps the state_dict flat and
    lets fusion passes see the plain conv/BN/ReLU chain.
    """

    def __init__(self, in_channels: int, middle_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, middle_channels, kernel_size=3, padding=1),
            nn.BatchNorm2d(middle_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(middle_channels, out_channels, kernel_size=3, padding=1),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class Upsample2x(nn.Module):
    """Bilinear x2 upsampling; align_corners=True as in the reference."""

    def __init__(self, mode: str = "bilinear", align_corners: bool | None = True) -> None:
        super().__init__()
        self.mode = mode
        self.align_corners = align_corners if mode in {"bilinear", "bicubic"} else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.interpolate(
            x, scale_factor=2.0, mode=self.mode, align_corners=self.align_corners
        )

    def extra_repr(self) -> str:
        return f"mode={self.mode}, align_corners={self.align_corners}"


def check_input_size(x: torch.Tensor, depth: int) -> None:
    """Refuse inputs the encoder cannot halve `depth` times without losing pixels."""
    multiple = 2**depth
    height, width = x.shape[-2:]
    if height % multiple or width % multiple:
        raise ValueError(
            f"input height and width must be multiples of {multiple} (the network pools "
            f"{depth} times), got {height}x{width}: pad or resize the image first "
            f"(`unetpp predict-images` pads automatically)"
        )
