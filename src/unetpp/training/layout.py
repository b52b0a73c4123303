"""Memory layout of training (channels_last or NCHW): measured once per machine, then reused.

Which layout is faster for fp32 CPU training depends on the CPU, not on the
model: measured with `unetpp bench-train`, channels_last was 1.40-1.42x
faster than NCHW on an AVX-512 Ice Lake and 0.90-0.97x (slower) on an AVX2
Zen 3, where oneDNN's channels_last weight-gradient kernel is slow. So
`--layout auto` times both on this machine instead of guessing:

- GPUs and bf16 autocast always use channels_last (what their kernels want).
- CPU fp32: a few interleaved training steps of the real model in each
  layout; channels_last wins only by a clear margin (`MARGIN`), NCHW (the
  reference layout) otherwise. The decision is stored in a small JSON cache
  keyed by everything that could change it (CPU model, torch, threads, arch,
  batch and image size), so two runs on one machine never differ by a timing
  coin-flip. The layout changes only the fp32 summation order, not the maths.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock

from unetpp.atomic import atomic_path
from unetpp.choices import LAYOUTS
from unetpp.errors import UnetppError
from unetpp.training.device import cpu_model
from unetpp.training.step_timing import TimedSteps, interleaved_times

MARGIN = 0.95  # channels_last must take under 95% of NCHW's median step time to be chosen
TIMED_STEPS = 3  # per layout, after one warm-up step each: about 8 steps in all
CACHE_ENV = "UNETPP_CACHE_DIR"


def memory_format(layout: str) -> torch.memory_format:
    """The torch memory format of a resolved layout."""
    if layout == "channels_last":
        return torch.channels_last
    if layout == "nchw":
        return torch.contiguous_format
    raise UnetppError(f"layout {layout!r} is not resolved: use channels_last or nchw")


def cache_path() -> Path:
    """`$UNETPP_CACHE_DIR/layout.json`, else `$XDG_CACHE_HOME/unetpp/...`, else `~/.cache/unetpp/...`."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]) / "layout.json"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "unetpp" / "layout.json"


def machine_key(arch: str, batch_size: int, image_size: int, threads: int, model_kwargs: dict[str, Any]) -> str:
    """Everything a layout measurement depends on, as one string."""
    parts = {
        "cpu": cpu_model(),
        "capability": torch.backends.cpu.get_cpu_capability(),
        "torch": str(torch.__version__),
        "threads": threads,
        "arch": arch,
        "batch_size": batch_size,
        "image_size": image_size,
        "model_kwargs": model_kwargs,
    }
    return json.dumps(parts, sort_keys=True)


def _read_cache(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # absent or unreadable: measure again (and rewrite it)
    return value if isinstance(value, dict) else {}


def choose(nchw_seconds: float, channels_last_seconds: float) -> str:
    """channels_last only when clearly faster; NCHW on a tie or near-tie (fixed tie-break)."""
    return "channels_last" if channels_last_seconds < MARGIN * nchw_seconds else "nchw"


def measure(
    arch: str, batch_size: int, image_size: int, model_kwargs: dict[str, Any], progress: bool | None = None
) -> dict[str, Any]:
    """Median fp32 CPU step time of each layout (interleaved steps), without touching the global RNG."""
    layouts = ("nchw", "channels_last")
    cpu = torch.device("cpu")
    with torch.random.fork_rng(devices=[]):
        runners = [TimedSteps(arch, cpu, "fp32", memory_format(layout), TIMED_STEPS + 1, batch_size, image_size,
                              model_kwargs=model_kwargs) for layout in layouts]
        times = interleaved_times(runners, TIMED_STEPS, 1, f"layout probe {arch}", progress)
    # Decide on the recorded (rounded) times, so the cached record always explains its own choice: on a
    # near-tie the unrounded medians could fall on the other side of the margin than the rounded ones.
    medians = {layout: round(statistics.median(t), 6) for layout, t in zip(layouts, times)}
    return {
        "layout": choose(medians["nchw"], medians["channels_last"]),
        "nchw_step_s": medians["nchw"],
        "channels_last_step_s": medians["channels_last"],
    }


def resolve_layout(
    requested: str,
    device: torch.device,
    precision: str,
    arch: str,
    batch_size: int,
    image_size: int,
    threads: int,
    model_kwargs: dict[str, Any],
    progress: bool | None = None,
) -> dict[str, Any]:
    """{"layout": channels_last|nchw, "source": ...} for this run; may measure and write the cache.

    `source` says why: "pinned" (--layout given), "gpu_or_bf16", "cached" or
    "measured" (the last two also carry the measured step times).
    """
    if requested not in LAYOUTS:
        raise UnetppError(f"--layout {requested!r} is unknown: use one of {', '.join(LAYOUTS)}")
    if requested != "auto":
        return {"layout": requested, "source": "pinned"}
    if device.type != "cpu" or precision != "fp32":
        return {"layout": "channels_last", "source": "gpu_or_bf16"}
    path = cache_path()
    key = machine_key(arch, batch_size, image_size, threads, model_kwargs)
    cached = _read_cache(path).get(key)
    if isinstance(cached, dict) and cached.get("layout") in LAYOUTS[1:]:
        return {**cached, "source": "cached", "cache": str(path)}
    print(f"unetpp train: timing {arch} in NCHW and channels_last ({TIMED_STEPS + 1} steps each) to pick the "
          f"faster layout on this CPU; the choice is kept in {path}", file=sys.stderr)
    result = measure(arch, batch_size, image_size, model_kwargs, progress)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Parallel trainings (one per arch) may finish measuring together: merge under a lock.
        with FileLock(str(path) + ".lock"):
            entries = _read_cache(path)
            entries[key] = result
            with atomic_path(path) as tmp:
                tmp.write_text(json.dumps(entries, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    except OSError as exc:  # a read-only home must not stop training; the next run measures again
        print(f"unetpp train: could not write {path} ({exc}); the layout is not remembered", file=sys.stderr)
    print(f"unetpp train: layout {result['layout']} (NCHW {result['nchw_step_s']:.3f} s/step, channels_last "
          f"{result['channels_last_step_s']:.3f} s/step)", file=sys.stderr)
    return {**result, "source": "measured", "cache": str(path)}
