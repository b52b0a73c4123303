"""UNet++ (Zhou et al. 2018): nested, dense skip pathways, optional deep supervision."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from unetpp.choices import DEFAULT_BLOCK, DEFAULT_FILTERS, inference_outputs
from unetpp.errors import ModelError
from unetpp.models.blocks import (
    check_block,
    check_filters,
    check_input,
    make_block,
    make_head,
    make_upsample,
    upsampled_channels,
)


class NestedUNet(nn.Module):
    """Nodes X(i,j), i = level, j = position along the skip pathway, i + j <= depth.

    X(i,0) = block(pool(X(i-1,0)));  X(i,j) = block(cat(X(i,0..j-1), up(X(i+1,j-1)))).
    A 1x1 head sits on X(0,depth), and with deep supervision on every X(0,L),
    L = 1..depth (`head_levels`). Every output is logits and has its own method,
    the same in training and eval mode, so each caller asks for what it means:

    - `forward(x)`: the deepest head, X(0,depth): the network's prediction;
    - `forward_heads(x)`: every head, shallowest first: what the deep-supervision loss averages;
    - `forward_level(x, L)`: the head on X(0,L) alone, computing only the nodes it
      needs, X(i,j) with i + j <= L (L1 runs X(0,0), X(1,0) and X(0,1) only);
    - `forward_mean(x)`: the mean of the heads' logits (not of their probabilities).

    Args:
        in_channels: channels of the input images (3: RGB).
        num_classes: output channels (logits) of each head, 1 for a foreground mask.
        filters: channels per level, top first; depth = len(filters) - 1.
        deep_supervision: a head on every X(0,L) rather than on X(0,depth) alone.
        upsample_mode: interpolation of the vgg block's x2 upsampling.
        align_corners: of that interpolation (the reference's True).
        block: "vgg" (the reference) or "authors" (`unetpp.choices.BLOCKS`); the authors' block has a
            transposed convolution per node, `ups["x{i}_{j}"]` bringing X(i+1,j-1) up for X(i,j).
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 1,
        filters: Sequence[int] = DEFAULT_FILTERS,
        deep_supervision: bool = False,
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
        self.deep_supervision = bool(deep_supervision)
        f = self.filters
        self.pool = nn.MaxPool2d(2, 2)
        nodes, ups = {}, {}
        for i in range(self.depth + 1):
            for j in range(self.depth + 1 - i):
                if j == 0:
                    in_ch = in_channels if i == 0 else f[i - 1]
                else:
                    ups[f"x{i}_{j}"] = make_upsample(block, f[i + 1], f[i], upsample_mode, align_corners)
                    in_ch = f[i] * j + upsampled_channels(block, f[i + 1], f[i])
                nodes[f"x{i}_{j}"] = make_block(block, in_ch, f[i])
        self.nodes = nn.ModuleDict(nodes)
        self.ups = nn.ModuleDict(ups)
        self.head_levels = tuple(range(1, self.depth + 1)) if self.deep_supervision else (self.depth,)
        self.heads = nn.ModuleList([make_head(block, f[0], num_classes) for _ in self.head_levels])

    @property
    def inference_choices(self) -> tuple[str, ...]:
        """The eval-time outputs this configuration offers, by name (`unetpp.models.output_forward`)."""
        return inference_outputs(self.depth, self.deep_supervision)

    def _compute(self, x: torch.Tensor, max_level: int) -> dict[tuple[int, int], torch.Tensor]:
        """Check the input, then compute every node X(i,j) with i + j <= max_level, in dependency order.

        That set is exactly what X(0,max_level) depends on, so a pruned level
        runs nothing it does not need. Every output goes through here.
        """
        check_input(x, self.in_channels, self.depth)
        feats: dict[tuple[int, int], torch.Tensor] = {}
        for diagonal in range(max_level + 1):
            # Nodes on one anti-diagonal depend only on earlier diagonals; going
            # from the deepest level up matches the reference's order.
            for i in range(diagonal, -1, -1):
                j = diagonal - i
                node = self.nodes[f"x{i}_{j}"]
                if j == 0:
                    feats[(i, 0)] = node(x if i == 0 else self.pool(feats[(i - 1, 0)]))
                else:
                    inputs = [feats[(i, k)] for k in range(j)] + [self.ups[f"x{i}_{j}"](feats[(i + 1, j - 1)])]
                    feats[(i, j)] = node(torch.cat(inputs, dim=1))
        return feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of the deepest head: the network's prediction."""
        return self.forward_level(x, self.depth)

    def forward_heads(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Logits of every head, shallowest first (one tensor without deep supervision)."""
        feats = self._compute(x, self.depth)
        return [head(feats[(0, level)]) for level, head in zip(self.head_levels, self.heads)]

    def forward_level(self, x: torch.Tensor, level: int) -> torch.Tensor:
        """Logits of the head on X(0,level), computing only the nodes that head depends on."""
        if level not in self.head_levels:
            raise ModelError(
                f"this UNet++ has no head at level {level}: its heads are at level(s) "
                f"{', '.join(map(str, self.head_levels))}"
                + ("" if self.deep_supervision else " (the shallower levels need deep supervision)")
            )
        head = self.heads[self.head_levels.index(level)]
        return head(self._compute(x, level)[(0, level)])

    def forward_mean(self, x: torch.Tensor) -> torch.Tensor:
        """The mean of the heads' logits: the paper's ensemble of the deep-supervision heads."""
        return torch.stack(self.forward_heads(x)).mean(dim=0)
