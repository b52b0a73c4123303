"""The two ways of running a training step that the benchmark compares.

The default path must be exactly what `unetpp train` runs, so it is built
from the same pieces the training loop uses (`build_model`, `torch.optim.Adam`,
`make_batch`, `train_step`, `resolve_precision("auto")` and
`resolve_layout("auto")`, which may time both layouts once on this machine).
The reference path is the plain PyTorch way: fp32, eager, NCHW, the same
step function.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from unetpp.choices import BENCH_VARIANTS
from unetpp.training.device import resolve_precision
from unetpp.training.layout import memory_format, resolve_layout
from unetpp.training.step_timing import build_for_training


@dataclass(frozen=True)
class StepPath:
    """How one path sets up the model and its inputs."""

    name: str
    precision: str  # "fp32" or "bf16", already resolved
    channels_last: bool
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    layout_source: str = "pinned"  # how the layout was chosen (training/layout.py's `source`)
    keep_freed_memory: bool = False  # unetpp.allocator's process setting, as `unetpp train` makes it

    @property
    def layout(self) -> str:
        """The resolved layout name (training/layout.py's)."""
        return "channels_last" if self.channels_last else "nchw"

    @property
    def memory_format(self) -> torch.memory_format:
        return memory_format(self.layout)

    def describe(self) -> str:
        layout = "channels_last" if self.channels_last else "NCHW"
        extra = "".join(f", {k}={v}" for k, v in sorted(self.model_kwargs.items()))
        chosen = "" if self.layout_source == "pinned" else f" ({self.layout_source})"
        kept = ", freed memory kept" if self.keep_freed_memory else ""
        return f"{self.precision}, eager, {layout}{chosen}{extra}{kept}"


def reference_path() -> StepPath:
    """fp32, eager, NCHW, plain layers: what a plain PyTorch port would do."""
    return StepPath("reference", "fp32", channels_last=False)


def default_path(
    device: torch.device,
    arch: str,
    batch_size: int,
    size: int,
    threads: int,
    model_kwargs: dict[str, Any] | None = None,
    progress: bool | None = None,
) -> StepPath:
    """What `unetpp train --precision auto --layout auto` runs on `device` for `arch` (see training/loop.py).

    Its layout is resolved in this process, so the caller keeps freed memory
    first, as `unetpp train` does before it measures layouts.
    """
    precision = resolve_precision("auto", device)
    chosen = resolve_layout("auto", device, precision, arch, batch_size, size, threads, dict(model_kwargs or {}),
                            progress)
    return StepPath("default", precision, chosen["layout"] == "channels_last", layout_source=chosen["source"],
                    keep_freed_memory=True)


def variant_paths() -> dict[str, StepPath]:
    """Other set-ups `--also` can time beside the two paths, to show what each ingredient is worth.

    Each name in `BENCH_VARIANTS` is "<layout>_<precision>[_kept]" and says
    what it sets up; "_kept" adds the default path's allocator setting.
    """
    paths = {}
    for name in BENCH_VARIANTS:
        kept = name.endswith("_kept")
        layout, precision = name.removesuffix("_kept").rsplit("_", 1)
        paths[name] = StepPath(name, precision, channels_last=layout == "channels_last", keep_freed_memory=kept)
    return paths


def build_for_path(
    arch: str, path: StepPath, device: torch.device, seed: int = 0, model_kwargs: dict[str, Any] | None = None
) -> tuple[nn.Module, torch.optim.Optimizer]:
    """Model and optimizer set up as `unetpp train` sets them up, in `path`'s layout.

    `model_kwargs` (tests shrink the filters) are applied to both paths alike.
    """
    kwargs = {**(model_kwargs or {}), **path.model_kwargs}
    return build_for_training(arch, device, path.memory_format, seed, kwargs)
