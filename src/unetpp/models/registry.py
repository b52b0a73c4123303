"""Architecture names accepted by `--arch`, and how to build each one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from unetpp.models.blocks import ModelError
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


def arch_help() -> str:
    """Help text for an `--arch` option: every name with its description."""
    return "Architecture: " + "; ".join(f"{name} = {spec.description}" for name, spec in ARCHITECTURES.items()) + "."


def build_model(arch: str, **kwargs: Any) -> nn.Module:
    """Build `arch` with the reference defaults, overridden by `kwargs`.

    A keyword that contradicts the name (deep_supervision=True for
    nested_unet) is refused rather than silently ignored; an unknown keyword
    raises the builder's own TypeError (callers rebuilding from a checkpoint
    catch it to name the file).
    """
    if arch not in ARCHITECTURES:
        raise ModelError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    spec = ARCHITECTURES[arch]
    for key, value in spec.fixed_kwargs.items():
        if key in kwargs and kwargs[key] != value:
            raise ModelError(
                f"architecture {arch!r} always has {key}={value}, got {key}={kwargs[key]}: "
                f"pick the architecture name that matches instead ({', '.join(ARCHITECTURES)})"
            )
    return spec.builder(**{**kwargs, **spec.fixed_kwargs})


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters, the figure the reference reports."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
