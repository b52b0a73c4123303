"""Timed training steps on synthetic batches, set up as `unetpp train` sets them up.

Training needs this for `--layout auto` (training/layout.py times a few steps
in each layout); `unetpp bench-train` builds its comparison of whole set-ups
on the same pieces. It lives in training so that benchmarking imports
training and never the reverse.

Several set-ups are timed interleaved (a step of each in turn, after their
warm-up), so that a change of machine load during the run hits all alike and
their ratios stay meaningful on a shared machine.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Protocol

import torch
from torch import nn
from tqdm import tqdm

from unetpp.models import build_model
from unetpp.training.config import TrainConfig
from unetpp.training.optimizer import make_optimizer
from unetpp.training.step import make_batch, train_step


class Steppable(Protocol):
    """Anything that runs training step `k` and says how many seconds it took."""

    def step(self, k: int) -> float: ...


def synthetic_batch_source(n: int, size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images (n,S,S,3) and 0/1 masks (n,S,S) shaped like the processed set; speed ignores the values."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, size, size, 3), dtype=torch.uint8, generator=generator)
    masks = (images[..., 1] > 160).to(torch.uint8)
    return images, masks


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work so wall-clock times cover it (a no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def build_for_training(
    arch: str,
    device: torch.device,
    memory_format: torch.memory_format,
    seed: int = 0,
    model_kwargs: dict[str, Any] | None = None,
) -> tuple[nn.Module, torch.optim.Optimizer]:
    """Model and optimizer as `unetpp train` builds them (seeded weights, `make_optimizer`), in `memory_format`."""
    torch.manual_seed(seed)
    model = build_model(arch, **(model_kwargs or {})).to(device, memory_format=memory_format)
    return model, make_optimizer(model, TrainConfig.lr)  # Adam's cost does not depend on the lr


class TimedSteps:
    """One set-up's model, optimizer and batches; every set-up with the same seed gets the same weights and batches."""

    def __init__(
        self,
        arch: str,
        device: torch.device,
        precision: str,
        memory_format: torch.memory_format,
        total_steps: int,
        batch_size: int,
        size: int,
        seed: int = 0,
        model_kwargs: dict[str, Any] | None = None,
    ) -> None:
        images, masks = synthetic_batch_source(max(4 * batch_size, 64), size, seed)
        self.device = device
        self.images, self.masks = images.to(device), masks.to(device)
        generator = torch.Generator().manual_seed(seed)
        self.batches = [torch.randperm(images.shape[0], generator=generator)[:batch_size].to(device)
                        for _ in range(total_steps)]
        self.precision = precision
        self.memory_format = memory_format
        self.model, self.optimizer = build_for_training(arch, device, memory_format, seed, model_kwargs)
        self.model.train()

    def step(self, k: int) -> float:
        """Seconds of training step `k` (forward, loss, backward, Adam), as the training loop runs it."""
        x, y = make_batch(self.images, self.masks, self.batches[k])
        x = x.contiguous(memory_format=self.memory_format)  # a no-op for channels_last, as in the loop
        synchronize(self.device)
        start = time.perf_counter()
        train_step(self.model, self.optimizer, x, y, self.precision)
        synchronize(self.device)
        return time.perf_counter() - start


def interleaved_times(
    runners: Sequence[Steppable], steps: int, warmup: int, desc: str, progress: bool | None = None
) -> list[list[float]]:
    """Each runner's step times after `warmup` discarded steps, one step of each runner in turn."""
    times: list[list[float]] = [[] for _ in runners]
    with tqdm(total=(warmup + steps) * len(runners), desc=desc, unit="step", leave=False,
              disable=None if progress is None else not progress) as bar:
        for k in range(warmup + steps):
            for p, runner in enumerate(runners):
                seconds = runner.step(k)
                if k >= warmup:
                    times[p].append(seconds)
                bar.update(1)
    return times
