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
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from unetpp.allocator import keep_freed_memory
from unetpp.benchmarking.paths import StepPath
from unetpp.errors import UnetppError
from unetpp.models import build_model
from unetpp.training.step_timing import TimedSteps, interleaved_times


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


def path_steps(job: StepJob) -> TimedSteps:
    """One path's model, optimizer and batches: every path gets the same weights and the same batches."""
    path = job.path
    kwargs = {**job.model_kwargs, **path.model_kwargs}
    return TimedSteps(job.arch, torch.device(job.device), path.precision, path.memory_format, job.total_steps,
                      job.batch_size, job.size, job.seed, kwargs)


def _worker(job: StepJob, threads: int, conn: Connection) -> None:
    """A path in its own process: set up, then one step per `k` received; errors go back as text."""
    try:
        torch.set_num_threads(threads)
        if job.path.keep_freed_memory:
            keep_freed_memory()
        steps = path_steps(job)
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
    runners: list[TimedSteps | WorkerSteps] = []
    try:
        for job in jobs:  # one at a time, so that `finally` closes every worker started before a failure
            runners.append(WorkerSteps(job, torch.get_num_threads()) if isolate else path_steps(job))
        for runner in runners:
            if isinstance(runner, WorkerSteps):
                runner.wait_ready()
        times = interleaved_times(runners, steps, warmup, f"train steps {arch}", progress)
    finally:
        for runner in runners:
            if isinstance(runner, WorkerSteps):
                runner.close()
    return [StepTiming(arch, path, t, flops) for path, t in zip(paths, times)]
