"""`TrainConfig`: every option of `unetpp train`, with its default, checked before any work is done.

No torch here: the train command takes its defaults from this class without
importing torch (so `--help` stays fast), and the CLI and the library can
never disagree about a default.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unetpp.choices import (
    ARCHITECTURES,
    AUGMENTS,
    BLOCKS,
    DEFAULT_AUGMENT,
    DEFAULT_BLOCK,
    DEFAULT_DEVICE,
    DEFAULT_PRECISION,
    DEFAULT_SELECTION_METRIC,
    LAYOUTS,
    REDUCTIONS,
    REFERENCE_BATCH_SIZE,
)
from unetpp.errors import UnetppError


@dataclass(frozen=True)
class TrainConfig:
    """Everything `unetpp train` accepts; `model_kwargs` (library only) shrinks models for tests."""

    data: Path
    split: Path
    arch: str
    out: Path
    epochs: int = 200
    patience: int = 20
    lr: float = 3e-4
    batch_size: int = REFERENCE_BATCH_SIZE
    seed: int = 0
    device: str = DEFAULT_DEVICE
    precision: str = DEFAULT_PRECISION
    num_threads: int | None = None  # None: every core this process may use
    checkpoint_dir: Path | None = None  # the root; this run's folder is run_checkpoint_dir(root, out, fingerprint)
    selection_metric: str = DEFAULT_SELECTION_METRIC
    layout: str = "auto"
    augment: str = DEFAULT_AUGMENT
    block: str = DEFAULT_BLOCK
    cuda_graph: bool = False  # CUDA only: replay each step from a captured graph (training/cuda_graph.py)
    model_kwargs: dict[str, Any] = field(default_factory=dict)

    def architecture_kwargs(self) -> dict[str, Any]:
        """What `build_model(arch, ...)` takes: `model_kwargs`, plus the block when it is not the default.

        The default block is left out so that the vgg runs' per-machine layout
        cache entries (keyed by these) stay those of before the option.
        """
        return dict(self.model_kwargs) if self.block == DEFAULT_BLOCK else {**self.model_kwargs, "block": self.block}

    def validate(self) -> None:
        """Refuse bad values before any file is read or written (the CLI's own checks cover most of them)."""
        if self.arch not in ARCHITECTURES:
            raise UnetppError(f"--arch {self.arch!r} is unknown: choose one of {', '.join(ARCHITECTURES)}")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise UnetppError(f"--lr {self.lr} is not a positive number: use e.g. --lr 3e-4")
        for name, value in (("epochs", self.epochs), ("batch-size", self.batch_size), ("patience", self.patience)):
            if value < 1:
                raise UnetppError(f"--{name} {value} must be a positive whole number (1 or more)")
        if self.num_threads is not None and self.num_threads < 1:
            raise UnetppError(f"--num-threads {self.num_threads} must be 1 or more (or leave it out for all cores)")
        if self.selection_metric not in REDUCTIONS:
            raise UnetppError(
                f"--selection-metric {self.selection_metric!r} is unknown: use one of {', '.join(REDUCTIONS)}"
            )
        if self.layout not in LAYOUTS:
            raise UnetppError(f"--layout {self.layout!r} is unknown: use one of {', '.join(LAYOUTS)}")
        if self.augment not in AUGMENTS:
            raise UnetppError(f"--augment {self.augment!r} is unknown: use one of {', '.join(AUGMENTS)}")
        if self.block not in BLOCKS:
            raise UnetppError(f"--block {self.block!r} is unknown: use one of {', '.join(BLOCKS)}")
        if self.cuda_graph and self.device not in ("auto", "cuda") and not self.device.startswith("cuda:"):
            raise UnetppError(
                f"--cuda-graph needs a CUDA device, and --device is {self.device!r}: leave --cuda-graph out "
                f"(steps then run eagerly) or train on --device cuda"
            )
        if "block" in self.model_kwargs:
            raise UnetppError("give the block as TrainConfig.block (--block), not in model_kwargs")
