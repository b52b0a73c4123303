"""Device and numeric precision: the one place that decides where and how training runs.

`--precision auto` turns on bf16 autocast only where the hardware does bf16
natively (CUDA GPUs that report it; CPUs with AVX-512 BF16 or AMX), because
emulated bf16 is slower than fp32. Weights, optimizer state and the loss stay
in fp32 in every mode.
"""

from __future__ import annotations

import contextlib
import os
import platform
from pathlib import Path

import torch

from unetpp.choices import DEVICES, PRECISIONS
from unetpp.errors import UnetppError

CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
# Widest first. amx_fp16 (Granite Rapids) gets its own name: oneDNN has an ISA level for it, so its kernels may
# differ from Sapphire Rapids' although both have amx_bf16. Names follow oneDNN's ISA levels, not marketing.
CPU_KERNEL_FAMILIES: tuple[tuple[str, frozenset[str]], ...] = (
    ("AMX-FP16", frozenset({"amx_tile", "amx_bf16", "amx_fp16"})),
    ("AMX", frozenset({"amx_tile", "amx_bf16"})),
    ("AVX512-BF16", frozenset({"avx512f", "avx512_bf16"})),
    ("AVX512", frozenset({"avx512f"})),
    ("AVX2", frozenset({"avx2"})),
)


def resolve_device(name: str) -> torch.device:
    """`auto` -> CUDA, then MPS, then CPU; an explicit device must exist here."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise UnetppError(f"--device {name!r} is not a device name: use {DEVICES}") from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            built = f"built with CUDA {torch.version.cuda}" if torch.version.cuda else "built without CUDA"
            raise UnetppError(
                f"--device {name}: CUDA is not available (torch {torch.__version__} is {built}, or no GPU is "
                f"visible): use --device auto or cpu, or install a CUDA build of torch"
            )
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise UnetppError(
                f"--device {name}: only {count} CUDA device(s) visible (cuda:0..cuda:{count - 1}): pick one of them"
            )
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise UnetppError(f"--device {name}: Apple MPS is not available on this machine: use --device auto or cpu")
    elif device.type != "cpu":
        raise UnetppError(f"--device {name!r} is not supported: use {DEVICES}")
    return device


def cpu_flags(cpuinfo: str | os.PathLike[str] = "/proc/cpuinfo") -> set[str]:
    """Every CPU flag this machine reports (empty where /proc/cpuinfo is absent)."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    flags: set[str] = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.partition(":")[2].split())
    return flags


def cpu_model(cpuinfo: str | os.PathLike[str] = "/proc/cpuinfo") -> str:
    """The CPU's model name (what `lscpu` prints as Model name), or platform's guess without /proc/cpuinfo."""
    try:
        for line in Path(cpuinfo).read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_bf16_flags(cpuinfo: str | os.PathLike[str] = "/proc/cpuinfo") -> set[str]:
    """The native-bf16 CPU flags this machine reports (empty where /proc/cpuinfo is absent)."""
    return cpu_flags(cpuinfo) & set(CPU_BF16_FLAGS)


def cpu_supports_bf16() -> bool:
    """True when the CPU does bf16 matmul/conv natively (AVX-512 BF16 or AMX)."""
    if cpu_bf16_flags():
        return True
    # Without /proc/cpuinfo (macOS, some containers) trust torch's dispatch level.
    return torch.backends.cpu.get_cpu_capability().upper().startswith("AMX")


def cpu_kernel_family(cpuinfo: str | os.PathLike[str] = "/proc/cpuinfo") -> str:
    """The widest x86 instruction family oneDNN can pick its kernels from here, from the CPU's flags.

    Two CPUs of one family run the same oneDNN kernels; across families the
    kernels (and so the rounding of a training) differ even where torch's
    own capability is the same: AMX tiles and AVX-512 BF16 both report
    "AVX512". Where no flags can be read (no /proc/cpuinfo), torch's
    capability stands in, prefixed so it never equals a flag-derived name.
    """
    flags = cpu_flags(cpuinfo)
    for family, needed in CPU_KERNEL_FAMILIES:
        if needed <= flags:
            return family
    return f"torch-{torch.backends.cpu.get_cpu_capability()}"


def resolve_precision(name: str, device: torch.device) -> str:
    """`fp32` or `bf16` for this device; `auto` picks bf16 only where it is native."""
    if name not in PRECISIONS:
        raise UnetppError(f"--precision {name!r} is unknown: use one of {', '.join(PRECISIONS)}")
    if name != "auto":
        return name
    if device.type == "cuda":
        try:
            native = torch.cuda.is_bf16_supported(including_emulation=False)
        except TypeError:  # torch before 2.5 has no including_emulation and reports native support only
            native = torch.cuda.is_bf16_supported()
        return "bf16" if native else "fp32"
    if device.type == "cpu":
        return "bf16" if cpu_supports_bf16() else "fp32"
    return "fp32"  # MPS bf16 autocast coverage is partial; fp32 is the safe choice


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[None]:
    """bf16 autocast for `precision == "bf16"`, a no-op context otherwise."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def default_num_threads() -> int:
    """All cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def describe_device(device: torch.device) -> str:
    """A human-readable device name for train.json (GPU model where there is one)."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return str(device)
