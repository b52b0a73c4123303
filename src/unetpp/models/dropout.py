"""Dropout(0.5) for the authors' block with one random bit per element, drawn 64 at a time, on the CPU.

`nn.Dropout` draws each element's keep/drop on the CPU with `bernoulli_`, one
generator call per element: in the authors' UNet++ (a dropout after each of
its 30 convolutions) that was half of a training step on a 2-core AMX Xeon
(`benchmarks/profile_train_step.py --block authors`, 0.96 of 1.85 s). With
p = 0.5, each bit of a uniformly random 64-bit word is an independent fair
coin, so one generator call serves 64 elements; unpacking the bits and
scaling are vectorised tensor ops. The values are those of `nn.Dropout`
for a given mask (kept elements times 2, an exact scaling, dropped ones 0);
only the way the mask is drawn differs. The global torch generator draws it,
which training seeds and its checkpoint restores, so a resumed run stays
bit-identical. On CUDA `nn.Dropout`'s one fused kernel is kept: a step there
is bound by kernel launches, which unpacking bits would add.
"""

from __future__ import annotations

import torch
from torch import nn

_TABLES: dict[tuple[torch.device, torch.dtype], torch.Tensor] = {}


def _byte_table(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(256, 8): row b holds 2 * bit k of byte b in column k, so one lookup turns a byte into eight scales."""
    key = (device, dtype)
    if key not in _TABLES:
        bits = (torch.arange(256).unsqueeze(-1) >> torch.arange(8)) & 1
        _TABLES[key] = (2 * bits).to(device=device, dtype=dtype)
    return _TABLES[key]


def half_keep_scale(like: torch.Tensor) -> torch.Tensor:
    """Each element 0 or 2 with probability 1/2, independently: `like`'s shape, dtype and memory layout.

    Random 64-bit words (all 64 bits uniform: `random_(-2**63, None)` spans
    the whole int64 range; `random_()` alone leaves the sign bit 0) are read
    bit by bit in memory order, bit k of byte i deciding element 8i + k, by
    one table lookup per byte (2.7x faster than shifting and masking, the
    same values). The mask follows `like`'s strides (channels_last stays
    channels_last, with no copy).
    """
    n = like.numel()
    words = torch.empty((n + 63) // 64, dtype=torch.int64, device=like.device).random_(-(2**63), None)
    table = _byte_table(like.device, like.dtype)
    scale = table.index_select(0, words.view(torch.uint8).to(torch.int32)).view(-1)[:n]
    if like.is_contiguous() or like.is_contiguous(memory_format=torch.channels_last):
        return scale.as_strided(like.shape, like.stride())
    return scale.view(like.shape)


class HalfDropout(nn.Module):
    """`nn.Dropout(0.5)` whose CPU mask takes one generator call per 64 elements (see the module docstring)."""

    p = 0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        if x.device.type != "cpu":
            return nn.functional.dropout(x, self.p, training=True)
        return x * half_keep_scale(x)

    def extra_repr(self) -> str:
        return f"p={self.p}"
