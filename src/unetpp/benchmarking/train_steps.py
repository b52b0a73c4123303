"""Time training steps of two paths side by side and count the FLOPs of one step.

The two paths' steps are interleaved (reference, default, reference, ...)
after their warm-up, so a change of machine load during the run hits both
alike and their ratio stays meaningful on a shared machine.
"""

from __future__ import annotations

import copy
import statistics
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from tqdm import tqdm

from unetpp.benchmarking.paths import StepPath, build_for_path
from unetpp.models import build_model
from unetpp.training.step import make_batch, train_step


@dataclass
class StepTiming:
    """Step times (seconds, after warm-up) of one path for one architecture."""

    arch: str
    path: StepPath
    times: list[float]
    flops_per_step: int

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def gflops_per_s(self) -> float:
        return self.flops_per_step / self.median / 1e9

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path.name,
            "setup": self.path.describe(),
            "precision": self.path.precision,
            "channels_last": self.path.channels_last,
            "median_step_s": self.median,
            "min_step_s": min(self.times),
            "max_step_s": max(self.times),
            "step_times_s": self.times,
            "gflops_per_s": self.gflops_per_s,
        }


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


def count_train_step_flops(
    arch: str, batch_size: int, size: int, model_kwargs: dict[str, Any] | None = None
) -> int:
    """FLOPs of forward + loss + backward of one training step, counted by FlopCounterMode.

    Runs on the meta device (shapes only, no arithmetic). The loss and the
    optimizer add no matrix-like FLOPs, so the loss is stood in for by a plain
    sum (autocast, which the real loss toggles, has no meta device) and the
    count is the whole step by PyTorch's convention.
    The first convolution needs no input gradient, so the total is a little
    under 3x the forward FLOPs.
    """
    model = build_model(arch, **(model_kwargs or {}))
    ghost = copy.deepcopy(model).to("meta").train()
    in_channels = int(getattr(model, "in_channels", 3))
    x = torch.zeros((batch_size, in_channels, size, size), device="meta")
    y = torch.zeros((batch_size, 1, size, size), device="meta")
    counter = FlopCounterMode(display=False)
    with counter:
        sum(((o - y) ** 2).sum() for o in ghost.forward_heads(x)).backward()
    return int(counter.get_total_flops())


def _one_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    path: StepPath,
    images: torch.Tensor,
    masks: torch.Tensor,
    index: torch.Tensor,
) -> float:
    x, y = make_batch(images, masks, index)
    x = x.contiguous(memory_format=path.memory_format)  # a no-op for channels_last, as in the loop
    synchronize(images.device)
    start = time.perf_counter()
    train_step(model, optimizer, x, y, path.precision)
    synchronize(images.device)
    return time.perf_counter() - start


def time_train_steps(
    arch: str,
    paths: list[StepPath],
    device: torch.device,
    steps: int,
    warmup: int,
    batch_size: int,
    size: int,
    seed: int = 0,
    model_kwargs: dict[str, Any] | None = None,
    progress: bool | None = None,
) -> list[StepTiming]:
    """Median-ready step times for each path; warm-up steps are run and discarded.

    Every path trains its own model from the same initial weights on the
    same sequence of batches.
    """
    images, masks = synthetic_batch_source(max(4 * batch_size, 64), size, seed)
    images, masks = images.to(device), masks.to(device)
    generator = torch.Generator().manual_seed(seed)
    batches = [torch.randperm(images.shape[0], generator=generator)[:batch_size].to(device)
               for _ in range(warmup + steps)]
    setups = [build_for_path(arch, path, device, seed, model_kwargs) for path in paths]
    for model, _ in setups:
        model.train()
    flops = count_train_step_flops(arch, batch_size, size, model_kwargs)
    times: list[list[float]] = [[] for _ in paths]
    total = (warmup + steps) * len(paths)
    with tqdm(total=total, desc=f"train steps {arch}", unit="step", leave=False,
              disable=None if progress is None else not progress) as bar:
        for k, index in enumerate(batches):
            for p, (path, (model, optimizer)) in enumerate(zip(paths, setups)):
                seconds = _one_step(model, optimizer, path, images, masks, index)
                if k >= warmup:
                    times[p].append(seconds)
                bar.update(1)
    return [StepTiming(arch, path, t, flops) for path, t in zip(paths, times)]
