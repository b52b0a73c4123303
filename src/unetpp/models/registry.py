"""What the names in `unetpp.choices` build: an architecture per `--arch`, a forward per `--inference-output`."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from unetpp.choices import ARCHITECTURES
from unetpp.errors import ModelError
from unetpp.models.nested_unet import NestedUNet
from unetpp.models.unet import UNet


@dataclass(frozen=True)
class ArchSpec:
    """How to build one named architecture (its display name and description are in `unetpp.choices`)."""

    builder: Callable[..., UNet | NestedUNet]
    fixed_kwargs: dict[str, Any]


BUILDERS: dict[str, ArchSpec] = {
    "unet": ArchSpec(UNet, {}),
    "nested_unet": ArchSpec(NestedUNet, {"deep_supervision": False}),
    "nested_unet_ds": ArchSpec(NestedUNet, {"deep_supervision": True}),
}


def build_model(arch: str, **kwargs: Any) -> UNet | NestedUNet:
    """Build `arch` with the reference defaults, overridden by `kwargs`.

    A keyword that contradicts the name (deep_supervision=True for
    nested_unet) is refused rather than silently ignored; an unknown keyword
    raises the builder's own TypeError (callers rebuilding from a checkpoint
    catch it to name the file).
    """
    if arch not in BUILDERS:
        raise ModelError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    spec = BUILDERS[arch]
    for key, value in spec.fixed_kwargs.items():
        if key in kwargs and kwargs[key] != value:
            raise ModelError(
                f"architecture {arch!r} always has {key}={value}, got {key}={kwargs[key]}: "
                f"pick the architecture name that matches instead ({', '.join(ARCHITECTURES)})"
            )
    return spec.builder(**{**kwargs, **spec.fixed_kwargs})


def output_forward(model: UNet | NestedUNet, output: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The method that computes the eval-time `output` of `model`, chosen once by name.

    "last" is `model` itself (its forward, the deepest head), "mean" its
    `forward_mean`, "L<k>" its `forward_level` at level k; `model.inference_choices`
    lists what the configuration offers.
    """
    choices = model.inference_choices
    if output not in choices:
        raise ModelError(
            f"output {output!r} is not available for this model; choose one of {', '.join(choices)}"
            + (" ('mean' and the pruned levels need deep supervision)" if len(choices) == 1 else "")
        )
    if output == "last":
        return model
    if output == "mean":
        return model.forward_mean  # type: ignore[union-attr]  # only NestedUNet offers it
    return functools.partial(model.forward_level, level=int(output[1:]))  # type: ignore[union-attr]


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters, the figure the reference reports."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
