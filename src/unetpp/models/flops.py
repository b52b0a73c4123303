"""Forward FLOPs of a model, counted by PyTorch's own `FlopCounterMode`.

Convention (PyTorch's): a multiply-add is 2 FLOPs and only matrix-like ops
are counted (for these models: the convolutions, bias excluded); batch norm,
ReLU, pooling, upsampling and concatenation count as 0. With that convention
the reference architectures give, per 96x96 RGB image: U-Net 3.92 GFLOP,
UNet++ 9.70, and UNet++ pruned to L1/L2/L3/L4 1.12/2.90/5.71/9.70.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_forward_flops(
    model: nn.Module,
    input_shape: Sequence[int] = (1, 3, 96, 96),
    inference_output: str | None = None,
) -> int:
    """FLOPs of one eval-mode forward pass on an input of `input_shape`.

    Runs on a copy of the model on the meta device: the count depends only
    on shapes, so no arithmetic is done and the model itself (weights, BN
    statistics, train/eval mode, inference output) is left untouched.
    `inference_output` ("last", "mean", "L1".."L4") is set on the copy.
    Divide by the batch size in `input_shape` for a per-image figure.
    """
    ghost = copy.deepcopy(model).to("meta").eval()
    if inference_output is not None:
        ghost.set_inference_output(inference_output)  # type: ignore[operator]
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        ghost(torch.zeros(tuple(input_shape), device="meta"))
    return int(counter.get_total_flops())


def gflops_per_image(model: nn.Module, size: int = 96, inference_output: str | None = None) -> float:
    """Forward GFLOP (1e9, PyTorch's 2-FLOPs-per-multiply-add convention) for one size x size image."""
    in_channels = int(getattr(model, "in_channels", 3))
    return count_forward_flops(model, (1, in_channels, size, size), inference_output) / 1e9


def flops_table(size: int = 96) -> dict[str, float]:
    """Forward GFLOP per size x size image for every architecture and inference output."""
    from unetpp.models.registry import ARCHITECTURES, build_model

    table: dict[str, float] = {}
    for arch in ARCHITECTURES:
        model = build_model(arch)
        for output in model.inference_choices:
            key = arch if output == "last" else f"{arch}:{output}"
            table[key] = gflops_per_image(model, size, output)
    return table


if __name__ == "__main__":
    for name, gflop in flops_table().items():
        print(f"{name:22s} {gflop:6.2f} GFLOP per 96x96 image")
