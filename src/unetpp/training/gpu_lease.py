"""One GPU per job on a machine with several: a lease held by `flock` on a per-GPU lock file.

Snakemake's `--resources gpu=N` and `dvc queue start -j N` run N jobs at once but
hand out a count, not device ids (snakemake issue #281), so every `--device auto`
job would land on cuda:0. A command that owns its process (`train`, `predict`,
`predict-test`) therefore leases one free GPU for its lifetime. The lock is the
kernel's: it goes when the process ends in any way, `kill -9` included, so a
crash never leaves a GPU marked busy, as a PID file would. The lease logic takes
the device count as an argument, so tests run it on machines without GPUs.

A device chosen by someone else (`--device cuda:1`, `CUDA_VISIBLE_DEVICES`,
SLURM's assignment), one GPU and no GPU take no lease: they behave as before.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unetpp.errors import UnetppError

if TYPE_CHECKING:
    import torch

try:
    import fcntl
except ImportError:  # Windows: no flock, so no lease
    fcntl = None  # type: ignore[assignment]

LEASE_DIR_ENV = "UNETPP_GPU_LEASE_DIR"
# Set by the user, a scheduler (SLURM sets CUDA_VISIBLE_DEVICES with its GPU ids) or ROCm's equivalents:
# the devices are already chosen, and a lease on top could only pick against that choice.
ASSIGNMENT_VARS = (
    "CUDA_VISIBLE_DEVICES",
    "SLURM_JOB_GPUS",
    "SLURM_STEP_GPUS",
    "HIP_VISIBLE_DEVICES",
    "ROCR_VISIBLE_DEVICES",
)
LEASING_DEVICES = ("auto", "cuda")
POLL_SECONDS = 2.0
STATUS_SECONDS = 60.0


@dataclass(frozen=True)
class GpuChoice:
    """What the lease decided for this process: the --device to use from now on, and why."""

    device: str  # "cuda:<index>" when leased, else the --device as given
    leased: bool
    reason: str  # for train.json and the log: what was leased, or why nothing was
    index: int | None = None
    lock_file: str | None = None
    fd: int | None = field(default=None, repr=False)  # open for the process lifetime: closing it ends the lease

    def record(self) -> dict[str, Any]:
        """The lease part of train.json's `gpu`."""
        return {"leased": self.leased, "reason": self.reason, "lock_file": self.lock_file}


_choice: GpuChoice | None = None  # this process's decision; the lease itself lives as long as its open descriptor


def default_lease_dir() -> Path:
    """A per-user folder in the machine's temp dir: local to the machine, as the GPUs are."""
    return Path(tempfile.gettempdir()) / f"unetpp-gpu-leases-{os.getuid()}"


def why_not_lease(device: str, count: int, environ: Mapping[str, str]) -> str | None:
    """None when this process should lease a GPU; otherwise why not (the device is already decided)."""
    if device not in LEASING_DEVICES:
        return f"--device {device} chosen explicitly"
    for name in ASSIGNMENT_VARS:
        if name in environ:
            return f"{name} is set ({environ[name]!r})"
    if count < 2:
        return f"{count} GPU(s) on this machine"
    if fcntl is None:
        return "no fcntl.flock on this system"
    return None


def lock_path(lock_dir: Path, index: int) -> Path:
    return lock_dir / f"gpu{index}.lock"


def try_lock(path: Path) -> int | None:
    """An open descriptor holding `path`'s exclusive flock, or None when another process holds it.

    The holder's pid and command go into the file for people looking at it; the lease rests on the lock alone.
    """
    flags = os.O_CLOEXEC | os.O_NOFOLLOW  # never write through a link someone planted in the folder
    try:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | flags, 0o644)
            writable = True
        except PermissionError:  # another user's file in a shared --gpu-lease-dir: flock needs no write access
            fd = os.open(path, os.O_RDONLY | flags)
            writable = False
    except OSError as exc:
        raise UnetppError(
            f"cannot open the GPU lock file {path} ({exc.strerror}; a symlink is refused): remove it, or point "
            f"--gpu-lease-dir (${LEASE_DIR_ENV}) at a folder of your own"
        ) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except OSError as exc:
        os.close(fd)
        raise UnetppError(
            f"cannot lock {path} to lease a GPU ({exc.strerror}): point --gpu-lease-dir (${LEASE_DIR_ENV}) at a "
            f"folder on a local disk, or choose the GPU yourself (CUDA_VISIBLE_DEVICES=1 or --device cuda:1)"
        ) from exc
    if writable:
        note = f"{os.getpid()} {' '.join(sys.argv)}\n".encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, note, 0)
    return fd


def prepare_lease_dir(lock_dir: Path) -> None:
    """Create the folder; the default one in the shared temp dir must be this user's, not one planted there."""
    default = lock_dir == default_lease_dir()
    try:
        lock_dir.mkdir(mode=0o700 if default else 0o777, parents=True, exist_ok=True)
        owner = lock_dir.lstat().st_uid
    except OSError as exc:
        raise UnetppError(
            f"cannot create the GPU lease folder {lock_dir} ({exc.strerror}): point --gpu-lease-dir "
            f"(${LEASE_DIR_ENV}) at a writable local folder"
        ) from exc
    if default and (owner != os.getuid() or lock_dir.is_symlink()):
        raise UnetppError(
            f"the GPU lease folder {lock_dir} belongs to uid {owner}, not to you: remove it, or point "
            f"--gpu-lease-dir (${LEASE_DIR_ENV}) at a folder of your own"
        )


def holders(lock_dir: Path, count: int) -> str:
    """'pid 12 (unetpp train ...), ...': who holds the leases, as their lock files say."""
    notes = []
    for index in range(count):
        try:
            text = lock_path(lock_dir, index).read_text(errors="replace").strip()
        except OSError:
            continue
        pid, _, command = text.partition(" ")
        if pid:
            notes.append(f"GPU {index}: pid {pid} ({command[:60]})")
    return "; ".join(notes) or "holders unknown"


def acquire(
    count: int,
    lock_dir: Path,
    *,
    poll_seconds: float = POLL_SECONDS,
    status_seconds: float = STATUS_SECONDS,
    say: Callable[[str], None] | None = None,
) -> tuple[int, int]:
    """(index, descriptor) of the first free GPU of `count`; while all are leased, wait and say so.

    Tries the GPUs in order, each with a non-blocking flock, so two jobs starting
    together get different ones. Keep the descriptor open for as long as the GPU is
    used: closing it, or the process ending, frees the GPU.
    """
    say = say or (lambda line: print(line, file=sys.stderr, flush=True))
    prepare_lease_dir(lock_dir)
    started: float | None = None
    next_status = 0.0
    while True:
        for index in range(count):
            fd = try_lock(lock_path(lock_dir, index))
            if fd is not None:
                if started is not None:
                    say(f"unetpp: GPU {index} is free, leased after waiting {time.monotonic() - started:.0f} s")
                return index, fd
        now = time.monotonic()
        if started is None:
            started, next_status = now, now + status_seconds
            say(f"unetpp: all {count} GPUs are leased by other unetpp jobs ({holders(lock_dir, count)}); "
                f"waiting for one to free up (lock files in {lock_dir}, checked every {poll_seconds:g} s)")
        elif now >= next_status:
            next_status = now + status_seconds
            say(f"unetpp: still waiting for a free GPU after {now - started:.0f} s ({holders(lock_dir, count)})")
        time.sleep(poll_seconds)


def choose_device(
    device: str,
    lock_dir: Path | None,
    count: int,
    environ: Mapping[str, str],
    **acquire_options: Any,
) -> GpuChoice:
    """The device for `--device` given `count` GPUs: a leased `cuda:<i>` where a lease applies, else `device`.

    The lease's descriptor (`fd`) is left open on purpose: it holds the GPU until the process ends.
    """
    reason = why_not_lease(device, count, environ)
    if reason is not None:
        return GpuChoice(device=device, leased=False, reason=reason)
    folder = lock_dir if lock_dir is not None else default_lease_dir()
    index, fd = acquire(count, folder, **acquire_options)
    return GpuChoice(
        device=f"cuda:{index}", leased=True, reason=f"leased GPU {index} of {count}", index=index,
        lock_file=str(lock_path(folder, index)), fd=fd,
    )


def lease_gpu(device: str, lock_dir: Path | None) -> GpuChoice:
    """Take this process's GPU lease where one applies (`train`, `predict`, `predict-test` call it first).

    On a lease the leased GPU also becomes torch's current device, so that code
    asking for plain "cuda" (or querying it) never touches another GPU.
    """
    global _choice
    count = 0
    if device in LEASING_DEVICES and not any(name in os.environ for name in ASSIGNMENT_VARS):
        import torch

        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    _choice = choose_device(device, lock_dir, count, os.environ)
    if _choice.leased:
        import torch

        torch.cuda.set_device(_choice.index)
        print(f"unetpp: {_choice.reason} for this process (lock {_choice.lock_file})", file=sys.stderr, flush=True)
    return _choice


def gpu_record(device: torch.device) -> dict[str, Any] | None:
    """train.json's `gpu` for a CUDA run: the index used, whether it was leased and why; None off CUDA."""
    if device.type != "cuda":
        return None
    if device.index is not None:
        index = device.index
    else:
        import torch

        index = torch.cuda.current_device()
    lease = _choice.record() if _choice is not None else {
        "leased": False, "reason": "no lease asked for (not run as a unetpp command)", "lock_file": None,
    }
    return {"index": index, "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"), **lease}
