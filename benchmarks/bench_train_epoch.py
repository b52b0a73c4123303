"""One real `unetpp train` epoch: its wall time against the sum of its training-step times.

Runs the library's `train()` (what `unetpp train` calls, with freed memory
kept as that command keeps it) for one epoch and times, without changing
them, every call it makes to `train_step` and to `validation_pass`, by
wrapping the two names in `unetpp.training.loop`. Prints the epoch seconds
(history.csv's `seconds`: training + validation), the sum of the step
times, steps x median step time, and their ratios; the ratio says how much
data handling, bookkeeping and validation add to the steps. Load average is
printed because the machine may be shared.

Make the real data first (see the README), then:

    .venv/bin/python benchmarks/bench_train_epoch.py --data /tmp/e/p.h5 --split /tmp/e/split.json \
        [--arch nested_unet] [--precision auto] [--threads N] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from unetpp.allocator import keep_freed_memory
from unetpp.atomic import atomic_path
from unetpp.training import loop


def _timed(function: Any, times: list[float]) -> Any:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            times.append(time.perf_counter() - start)

    return wrapper


def run_epoch(
    data: Path, split: Path, arch: str, precision: str, threads: int | None, batch_size: int
) -> dict[str, Any]:
    step_times: list[float] = []
    validate_times: list[float] = []
    rows: list[dict[str, Any]] = []
    original_step, original_validate = loop.train_step, loop.validation_pass
    loop.train_step = _timed(original_step, step_times)
    loop.validation_pass = _timed(original_validate, validate_times)
    load_before = os.getloadavg()
    try:
        with tempfile.TemporaryDirectory(prefix="bench_epoch_") as tmp:
            config = loop.TrainConfig(
                data=data, split=split, arch=arch, out=Path(tmp) / "out", epochs=1, batch_size=batch_size,
                precision=precision, num_threads=threads, checkpoint_dir=Path(tmp) / "ckpt",
            )
            started = time.perf_counter()
            summary = loop.train(config, progress=True, on_epoch_end=lambda epoch, row: rows.append(row))
            total = time.perf_counter() - started
    finally:
        loop.train_step, loop.validation_pass = original_step, original_validate
    epoch_s = float(rows[0]["seconds"])
    median = statistics.median(step_times)
    return {
        "arch": arch,
        "precision": summary["precision"],
        "threads": summary["num_threads"],
        "torch_version": str(torch.__version__),
        "n_train": summary["n_train"],
        "n_val": summary["n_val"],
        "steps": len(step_times),
        "epoch_s": epoch_s,
        "sum_step_s": sum(step_times),
        "median_step_s": median,
        "steps_x_median_s": len(step_times) * median,
        "validate_s": sum(validate_times),
        "ratio_epoch_to_sum_steps": epoch_s / sum(step_times),
        "ratio_epoch_to_steps_x_median": epoch_s / (len(step_times) * median),
        "train_call_s": total,
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "step_times_s": step_times,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="processed HDF5 (unetpp preprocess --size 96)")
    parser.add_argument("--split", type=Path, required=True, help="split.json (unetpp split)")
    parser.add_argument("--arch", default="nested_unet", help="architecture (default nested_unet)")
    parser.add_argument("--precision", default="auto", help="auto, fp32 or bf16 (default auto, as unetpp train)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    parser.add_argument("--batch-size", type=int, default=16, help="batch size (default 16)")
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    args = parser.parse_args(argv)
    for path in (args.data, args.split):
        if not path.is_file():
            print(f"bench_train_epoch: {path} does not exist: make it with unetpp ingest, preprocess and split",
                  file=sys.stderr)
            return 1
    print(keep_freed_memory(), file=sys.stderr)  # as `unetpp train` does before it trains
    result = run_epoch(args.data, args.split, args.arch, args.precision, args.threads, args.batch_size)
    print(
        f"{result['arch']} ({result['precision']}, {result['threads']} threads, torch {result['torch_version']}): "
        f"{result['n_train']} train / {result['n_val']} val images, {result['steps']} steps\n"
        f"epoch {result['epoch_s']:.1f} s (validation {result['validate_s']:.1f} s) | sum of step times "
        f"{result['sum_step_s']:.1f} s | steps x median {result['steps_x_median_s']:.1f} s "
        f"(median {result['median_step_s']:.3f} s)\n"
        f"epoch / sum of steps = {result['ratio_epoch_to_sum_steps']:.3f}; "
        f"epoch / (steps x median) = {result['ratio_epoch_to_steps_x_median']:.3f}; "
        f"whole train() call {result['train_call_s']:.1f} s\n"
        f"load average before/after: {result['load_average_before']} / {result['load_average_after']}"
    )
    if args.json is not None:
        with atomic_path(args.json) as tmp:
            tmp.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
