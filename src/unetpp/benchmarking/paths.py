"""The two ways of running a training step that the benchmark compares.

The default path must be exactly what `unetpp train` runs, so it is built
from the same pieces the training loop uses (`build_model`, channels_last,
`torch.optim.Adam`, `make_batch`, `train_step`, `resolve_precision("auto")`).
The reference path is the plain PyTorch way: fp32, eager, NCHW, the same
step function.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from unetpp.models import build_model
from unetpp.training.device import resolve_precision

DEFAULT_LR = 3e-4  # `unetpp train --lr` default; Adam's cost does not depend on it


@dataclass(frozen=True)
class StepPath:
    """How one path sets up the model and its inputs."""

    name: str
    precision: str  # "fp32" or "bf16", already resolved
    channels_last: bool
    model_kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def describe(self) -> str:
        layout = "channels_last" if self.channels_last else "NCHW"
        extra = "".join(f", {k}={v}" for k, v in sorted(self.model_kwargs.items()))
        return f"{self.precision}, eager, {layout}{extra}"


def reference_path() -> StepPath:
    """fp32, eager, NCHW, the models' reference layers: what a plain PyTorch port would do."""
    return StepPath("reference", "fp32", channels_last=False, model_kwargs={"conv_layout": "native"})


def default_path(device: torch.device) -> StepPath:
    """What `unetpp train --precision auto` runs on `device` (see training/loop.py)."""
    return StepPath("default", resolve_precision("auto", device), channels_last=True)


def variant_paths() -> dict[str, StepPath]:
    """Other set-ups `--also` can time beside the two paths, to show what each ingredient is worth."""
    return {
        "channels_last_native": StepPath("channels_last_native", "fp32", True, {"conv_layout": "native"}),
        "nchw_bf16": StepPath("nchw_bf16", "bf16", False, {"conv_layout": "native"}),
        "channels_last_bf16": StepPath("channels_last_bf16", "bf16", True),
    }


def build_for_path(
    arch: str, path: StepPath, device: torch.device, seed: int = 0, model_kwargs: dict[str, Any] | None = None
) -> tuple[nn.Module, torch.optim.Optimizer]:
    """Model and optimizer set up as `unetpp train` sets them up, in `path`'s layout.

    `model_kwargs` (tests shrink the filters) are applied to both paths alike.
    """
    torch.manual_seed(seed)
    kwargs = {**(model_kwargs or {}), **path.model_kwargs}
    model = build_model(arch, **kwargs).to(device, memory_format=path.memory_format)
    optimizer = torch.optim.Adam(model.parameters(), lr=DEFAULT_LR)
    return model, optimizer
