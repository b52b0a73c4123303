"""U-Net (Ronneberger et al. 2015) with VGG blocks, as in the UNet++ reference."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from unetpp.choices import DEFAULT_FILTERS, inference_outputs
from unetpp.models.blocks import Upsample2x, VGGBlock, check_filters, check_input


class UNet(nn.Module):
    """Encoder X(i,0), decoder X(i,depth-i): one skip connection per level.

    Node X(i,j) is at resolution level i (0 = full size); the names follow the
    UNet++ paper so the two architectures are easy to compare. `forward`
    returns logits of shape (N, num_classes, H, W); `forward_heads` returns
    them as the one-element list of heads that training averages over, the
    same interface as `NestedUNet`.
    """

    deep_supervision = False

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 1,
        filters: Sequence[int] = DEFAULT_FILTERS,
        upsample_mode: str = "bilinear",
        align_corners: bool = True,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.filters = tuple(int(f) for f in filters)
        check_filters(self.filters)
        self.depth = len(self.filters) - 1
        self.pool = nn.MaxPool2d(2, 2)
        self.up = Upsample2x(upsample_mode, align_corners)
        self.encoder = nn.ModuleList(
            [VGGBlock(in_channels, self.filters[0], self.filters[0])]
            + [
                VGGBlock(self.filters[i - 1], self.filters[i], self.filters[i])
                for i in range(1, self.depth + 1)
            ]
        )
        # decoder[i] is X(i, depth - i), fed by X(i,0) and the upsampled level below.
        self.decoder = nn.ModuleList(
            [
                VGGBlock(self.filters[i] + self.filters[i + 1], self.filters[i], self.filters[i])
                for i in range(self.depth)
            ]
        )
        self.head = nn.Conv2d(self.filters[0], num_classes, kernel_size=1)

    @property
    def inference_choices(self) -> tuple[str, ...]:
        """The eval-time outputs U-Net offers: its one head, "last"."""
        return inference_outputs(self.depth, deep_supervision=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of the one head."""
        check_input(x, self.in_channels, self.depth)
        skips = [self.encoder[0](x)]
        for level in range(1, self.depth + 1):
            skips.append(self.encoder[level](self.pool(skips[-1])))
        out = skips[-1]
        for level in range(self.depth - 1, -1, -1):
            out = self.decoder[level](torch.cat([skips[level], self.up(out)], dim=1))
        return self.head(out)

    def forward_heads(self, x: torch.Tensor) -> list[torch.Tensor]:
        """[forward(x)]: the one head, as a list like `NestedUNet.forward_heads`."""
        return [self.forward(x)]
