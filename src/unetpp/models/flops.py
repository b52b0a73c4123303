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
from torch.utils.flop_counter import FlopCounterMode

from unetpp.choices import DEFAULT_IMAGE_SIZE
from unetpp.models.nested_unet import NestedUNet
from unetpp.models.registry import BUILDERS, build_model, output_forward
from unetpp.models.unet import UNet


def count_forward_flops(
    model: UNet | NestedUNet,
    input_shape: Sequence[int] = (1, 3, DEFAULT_IMAGE_SIZE, DEFAULT_IMAGE_SIZE),
    output: str = "last",
) -> int:
    """FLOPs of one eval-mode forward pass computing `output` ("last", "mean", "L1".."L4") on `input_shape`.

    Runs on a copy of the model on the meta device: the count depends only
    on shapes, so no arithmetic is done and the model itself (weights, BN
    statistics, train/eval mode) is left untouched. Divide by the batch size
    in `input_shape` for a per-image figure.
    """
    ghost = copy.deepcopy(model).to("meta").eval()
    forward = output_forward(ghost, output)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        forward(torch.zeros(tuple(input_shape), device="meta"))
    return int(counter.get_total_flops())


def gflops_per_image(model: UNet | NestedUNet, size: int = DEFAULT_IMAGE_SIZE, output: str = "last") -> float:
    """Forward GFLOP (1e9, PyTorch's 2-FLOPs-per-multiply-add convention) for one size x size image."""
    return count_forward_flops(model, (1, model.in_channels, size, size), output) / 1e9


def flops_table(size: int = DEFAULT_IMAGE_SIZE) -> dict[str, float]:
    """Forward GFLOP per size x size image for every architecture and inference output."""
    table: dict[str, float] = {}
    for arch in BUILDERS:
        model = build_model(arch)
        for output in model.inference_choices:
            key = arch if output == "last" else f"{arch}:{output}"
            table[key] = gflops_per_image(model, size, output)
    return table


if __name__ == "__main__":
    for name, gflop in flops_table().items():
        print(f"{name:22s} {gflop:6.2f} GFLOP per 96x96 image")
