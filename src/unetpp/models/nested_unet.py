"""UNet++ (Zhou et al. 2018): nested, dense skip pathways, optional deep supervision."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from unetpp.models.blocks import ModelError, Upsample2x, VGGBlock, check_filters, check_input

INFERENCE_OUTPUTS = ("last", "mean", "L1", "L2", "L3", "L4")


class NestedUNet(nn.Module):
    """Nodes X(i,j), i = level, j = position along the skip pathway, i + j <= depth.

    X(i,0) = block(pool(X(i-1,0)));  X(i,j) = block(cat(X(i,0..j-1), up(X(i+1,j-1)))).
    Outputs are logits. With deep supervision a 1x1 head sits on each X(0,j),
    j = 1..depth; in training mode the model returns all their logits (a list,
    shallowest first, whatever `inference_output` says). In eval mode it
    returns one tensor chosen by `inference_output`:

    - "last": the deepest head X(0,depth) (the default; the only choice without deep supervision);
    - "mean": the mean of the heads' logits (not of their probabilities);
    - "L1".."L4": the head of X(0,L), computing only the nodes that head needs,
      i.e. X(i,j) with i + j <= L (L1 runs X(0,0), X(1,0) and X(0,1) only).
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 1,
        filters: Sequence[int] = (32, 64, 128, 256, 512),
        deep_supervision: bool = False,
        upsample_mode: str = "bilinear",
        align_corners: bool = True,
        inference_output: str = "last",
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.filters = tuple(int(f) for f in filters)
        check_filters(self.filters)
        self.depth = len(self.filters) - 1
        self.deep_supervision = bool(deep_supervision)
        self.pool = nn.MaxPool2d(2, 2)
        self.up = Upsample2x(upsample_mode, align_corners)
        nodes = {}
        for i in range(self.depth + 1):
            for j in range(self.depth + 1 - i):
                if j == 0:
                    in_ch = in_channels if i == 0 else self.filters[i - 1]
                else:
                    in_ch = self.filters[i] * j + self.filters[i + 1]
                nodes[f"x{i}_{j}"] = VGGBlock(in_ch, self.filters[i], self.filters[i])
        self.nodes = nn.ModuleDict(nodes)
        n_heads = self.depth if self.deep_supervision else 1
        self.heads = nn.ModuleList([nn.Conv2d(self.filters[0], num_classes, kernel_size=1) for _ in range(n_heads)])
        self.inference_output = "last"
        self.set_inference_output(inference_output)

    @property
    def inference_choices(self) -> tuple[str, ...]:
        """The values `set_inference_output` accepts for this configuration."""
        if not self.deep_supervision:
            return ("last",)
        return ("last", "mean") + tuple(f"L{level}" for level in range(1, self.depth + 1))

    def set_inference_output(self, mode: str) -> None:
        """Choose what eval-mode forward returns (see the class docstring)."""
        if mode not in self.inference_choices:
            raise ModelError(
                f"inference_output {mode!r} is not available for this model; choose one of "
                f"{', '.join(self.inference_choices)} ('mean' and the pruned levels need deep supervision, "
                f"i.e. --arch nested_unet_ds)"
            )
        self.inference_output = mode

    def _compute(self, x: torch.Tensor, max_level: int) -> dict[tuple[int, int], torch.Tensor]:
        """Compute every node X(i,j) with i + j <= max_level, in dependency order.

        That set is exactly what X(0,max_level) depends on, so a pruned level
        runs nothing it does not need.
        """
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
                    inputs = [feats[(i, k)] for k in range(j)] + [self.up(feats[(i + 1, j - 1)])]
                    feats[(i, j)] = node(torch.cat(inputs, dim=1))
        return feats

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        check_input(x, self.in_channels, self.depth)
        if not self.deep_supervision:
            return self.heads[0](self._compute(x, self.depth)[(0, self.depth)])
        if self.training:
            feats = self._compute(x, self.depth)
            return [head(feats[(0, j + 1)]) for j, head in enumerate(self.heads)]
        mode = self.inference_output
        if mode.startswith("L"):
            level = int(mode[1:])
            return self.heads[level - 1](self._compute(x, level)[(0, level)])
        feats = self._compute(x, self.depth)
        if mode == "last":
            return self.heads[-1](feats[(0, self.depth)])
        return torch.stack([head(feats[(0, j + 1)]) for j, head in enumerate(self.heads)]).mean(dim=0)
