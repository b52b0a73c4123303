"""Time training steps of two paths side by side and count the FLOPs of one step.

The two paths' steps are interleaved (reference, default, reference, ...)
after their warm-up, so a change of machine load during the run hits both
alike and their ratio stays meaningful on a shared machine. bench-train runs
each path in a process of its own (`isolate`): the default path keeps freed
memory (unetpp.allocator) as `unetpp train` does, the reference does not, as
the original code does not.
"""

from __future__ import annotations

import copy
import multiprocessing
import statistics
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from tqdm import tqdm

from unetpp.allocator import keep_freed_memory
from unetpp.benchmarking.paths import StepPath, build_for_path
from unetpp.errors import UnetppError
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


@dataclass(frozen=True)
class StepJob:
    """Everything one path needs to set itself up and run its steps, in this process or in a worker."""

    arch: str
    path: StepPath
    device: str
    total_steps: int  # warm-up included
    batch_size: int
    size: int
    seed: int
    model_kwargs: dict[str, Any]


class PathSteps:
    """One path's model, optimizer and batches: every path gets the same weights and the same batches."""

    def __init__(self, job: StepJob) -> None:
        device = torch.device(job.device)
        images, masks = synthetic_batch_source(max(4 * job.batch_size, 64), job.size, job.seed)
        self.images, self.masks = images.to(device), masks.to(device)
        generator = torch.Generator().manual_seed(job.seed)
        self.batches = [torch.randperm(images.shape[0], generator=generator)[:job.batch_size].to(device)
                        for _ in range(job.total_steps)]
        self.path = job.path
        self.model, self.optimizer = build_for_path(job.arch, job.path, device, job.seed, job.model_kwargs)
        self.model.train()

    def step(self, k: int) -> float:
        """Seconds of training step `k`."""
        return _one_step(self.model, self.optimizer, self.path, self.images, self.masks, self.batches[k])


def _worker(job: StepJob, threads: int, conn: Connection) -> None:
    """A path in its own process: set up, then one step per `k` received; errors go back as text."""
    try:
        torch.set_num_threads(threads)
        if job.path.keep_freed_memory:
            keep_freed_memory()
        steps = PathSteps(job)
        conn.send(("ready", None))
        while (k := conn.recv()) is not None:
            conn.send(("step", steps.step(k)))
    except BaseException:  # noqa: BLE001 - whatever happened, the parent must hear of it, not hang
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


class WorkerSteps:
    """A path run in a spawned process of its own, step by step on request (see `time_train_steps`)."""

    def __init__(self, job: StepJob, threads: int) -> None:
        self.name = job.path.name
        context = multiprocessing.get_context("spawn")  # fork would copy this process's allocator and threads
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_worker, args=(job, threads, child), daemon=True,
                                       name=f"unetpp-bench-{self.name}")
        self.process.start()
        child.close()

    def _receive(self, expected: str) -> Any:
        try:
            kind, value = self.conn.recv()
        except EOFError:
            self.process.join(5)
            raise UnetppError(f"the {self.name} path's worker process died (exit code {self.process.exitcode}): "
                              "out of memory? Rerun with fewer --also variants or a smaller --batch-size") from None
        if kind == "error":
            raise UnetppError(f"the {self.name} path failed in its worker process:\n{value}")
        assert kind == expected, (kind, expected)
        return value

    def wait_ready(self) -> None:
        self._receive("ready")

    def step(self, k: int) -> float:
        self.conn.send(k)
        return float(self._receive("step"))

    def close(self) -> None:
        try:
            self.conn.send(None)
        except OSError:
            pass  # already gone
        self.conn.close()
        self.process.join(10)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join()


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
    isolate: bool = False,
) -> list[StepTiming]:
    """Median-ready step times for each path; warm-up steps are run and discarded.

    Every path trains its own model from the same initial weights on the
    same sequence of batches. With `isolate`, each path runs in a spawned
    process of its own (with this process's torch thread count), still one
    step at a time in turn: needed when paths differ in a process-wide
    setting (`StepPath.keep_freed_memory`), and it keeps one path's freed
    memory from serving another's. Without it they share this process, whose
    allocator setting applies to all of them.
    """
    jobs = [StepJob(arch, path, str(device), warmup + steps, batch_size, size, seed, dict(model_kwargs or {}))
            for path in paths]
    flops = count_train_step_flops(arch, batch_size, size, model_kwargs)
    runners: list[PathSteps | WorkerSteps] = []
    try:
        for job in jobs:  # one at a time, so that `finally` closes every worker started before a failure
            runners.append(WorkerSteps(job, torch.get_num_threads()) if isolate else PathSteps(job))
        for runner in runners:
            if isinstance(runner, WorkerSteps):
                runner.wait_ready()
        times: list[list[float]] = [[] for _ in paths]
        with tqdm(total=(warmup + steps) * len(paths), desc=f"train steps {arch}", unit="step", leave=False,
                  disable=None if progress is None else not progress) as bar:
            for k in range(warmup + steps):
                for p, runner in enumerate(runners):
                    seconds = runner.step(k)
                    if k >= warmup:
                        times[p].append(seconds)
                    bar.update(1)
    finally:
        for runner in runners:
            if isinstance(runner, WorkerSteps):
                runner.close()
    return [StepTiming(arch, path, t, flops) for path, t in zip(paths, times)]
