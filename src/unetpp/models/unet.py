"""U-Net (Ronneberger et al. 2015) with VGG blocks, as in the UNet++ reference."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from unetpp.choices import DEFAULT_BLOCK, DEFAULT_FILTERS, inference_outputs
from unetpp.models.blocks import (
    check_block,
    check_filters,
    check_input,
    make_block,
    make_head,
    make_upsample,
    upsampled_channels,
)


class UNet(nn.Module):
    """Encoder X(i,0), decoder X(i,depth-i): one skip connection per level.

    Node X(i,j) is at resolution level i (0 = full size); the names follow the
    UNet++ paper so the two architectures are easy to compare. `forward`
    returns logits of shape (N, num_classes, H, W); `forward_heads` returns
    them as the one-element list of heads that training averages over, the
    same interface as `NestedUNet`.

    Args:
        in_channels: channels of the input images (3: RGB).
        num_classes: output channels (logits), 1 for a foreground mask.
        filters: channels per level, top first; depth = len(filters) - 1.
        upsample_mode: interpolation of the vgg block's x2 upsampling.
        align_corners: of that interpolation (the reference's True).
        block: "vgg" (the reference) or "authors" (`unetpp.choices.BLOCKS`).
    """

    deep_supervision = False

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 1,
        filters: Sequence[int] = DEFAULT_FILTERS,
        upsample_mode: str = "bilinear",
        align_corners: bool = True,
        block: str = DEFAULT_BLOCK,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.filters = tuple(int(f) for f in filters)
        check_filters(self.filters)
        check_block(block, upsample_mode, align_corners)
        self.block = block
        self.depth = len(self.filters) - 1
        f = self.filters
        self.pool = nn.MaxPool2d(2, 2)
        self.encoder = nn.ModuleList(
            [make_block(block, in_channels, f[0])]
            + [make_block(block, f[i - 1], f[i]) for i in range(1, self.depth + 1)]
        )
        # ups[i] brings level i + 1 up to level i, for decoder[i] = X(i, depth - i), fed by X(i,0) and it.
        self.ups = nn.ModuleList(
            [make_upsample(block, f[i + 1], f[i], upsample_mode, align_corners) for i in range(self.depth)]
        )
        self.decoder = nn.ModuleList(
            [make_block(block, f[i] + upsampled_channels(block, f[i + 1], f[i]), f[i]) for i in range(self.depth)]
        )
        self.head = make_head(block, f[0], num_classes)

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
            out = self.decoder[level](torch.cat([skips[level], self.ups[level](out)], dim=1))
        return self.head(out)

    def forward_heads(self, x: torch.Tensor) -> list[torch.Tensor]:
        """[forward(x)]: the one head, as a list like `NestedUNet.forward_heads`."""
        return [self.forward(x)]
