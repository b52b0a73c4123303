"""Architecture names accepted by `--arch`, and how to build each one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from unetpp.models.nested_unet import NestedUNet
from unetpp.models.unet import UNet


@dataclass(frozen=True)
class ArchSpec:
    """How to build one named architecture and what to call it in reports."""

    builder: Callable[..., nn.Module]
    fixed_kwargs: dict[str, Any]
    display_name: str
    description: str


ARCHITECTURES: dict[str, ArchSpec] = {
    "unet": ArchSpec(UNet, {}, "U-Net", "U-Net with VGG blocks (7,852,545 parameters)"),
    "nested_unet": ArchSpec(
        NestedUNet, {"deep_supervision": False}, "UNet++", "UNet++ without deep supervision (9,163,329 parameters)"
    ),
    "nested_unet_ds": ArchSpec(
        NestedUNet,
        {"deep_supervision": True},
        "UNet++ (deep supervision)",
        "UNet++ with four deep-supervision heads, loss = mean of the four (9,163,428 parameters)",
    ),
}


def build_model(arch: str, **kwargs: Any) -> nn.Module:
    """Build `arch` with the reference defaults, overridden by `kwargs`."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    spec = ARCHITECTURES[arch]
    return spec.builder(**{**kwargs, **spec.fixed_kwargs})


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters, the figure the reference reports."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
