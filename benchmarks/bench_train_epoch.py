"""One real `unetpp train` epoch: its wall time against the sum of its training-step times.

Runs the library's `train()` (what `unetpp train` calls, with freed memory
kept as that command keeps it) for one epoch and times, without changing
them, every call it makes to `train_step` and to `validation_pass`, by
wrapping the two names in `unetpp.training.loop`. Prints the epoch seconds
(history.csv's `seconds`: training + validation), the sum of the step
times, steps x median step time, and their ratios; the ratio says how much
data handling, bookkeeping and validation add to the steps. Load average is
printed because the machine may be shared.

`--path reference` trains as the original code does instead: fp32, NCHW,
glibc's default allocator. `--path both` runs the two, each in a process of
its own (the allocator setting is process-wide), and prints the ratio of
their epoch times, measured in one run.

Make the real data first (docs/performance.md, "Whole epochs"), then:

    .venv/bin/python benchmarks/bench_train_epoch.py --data /tmp/e/p.h5 --split /tmp/e/split.json \
        [--arch nested_unet] [--precision auto] [--threads N] [--path default|reference|both] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from unetpp.allocator import keep_freed_memory
from unetpp.atomic import atomic_path
from unetpp.training import loop

PATHS = ("default", "reference", "both")


def _timed(function: Any, times: list[float]) -> Any:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            times.append(time.perf_counter() - start)

    return wrapper


def run_epoch(
    data: Path, split: Path, arch: str, precision: str, threads: int | None, batch_size: int, layout: str = "auto"
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
                precision=precision, layout=layout, num_threads=threads, checkpoint_dir=Path(tmp) / "ckpt",
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
        "layout": summary["layout"]["layout"],
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


def describe(result: dict[str, Any]) -> str:
    return (
        f"{result['path']} path, {result['arch']} ({result['precision']}, {result['layout']}, "
        f"{result['threads']} threads, torch {result['torch_version']}): "
        f"{result['n_train']} train / {result['n_val']} val images, {result['steps']} steps\n"
        f"epoch {result['epoch_s']:.1f} s (validation {result['validate_s']:.1f} s) | sum of step times "
        f"{result['sum_step_s']:.1f} s | steps x median {result['steps_x_median_s']:.1f} s "
        f"(median {result['median_step_s']:.3f} s)\n"
        f"epoch / sum of steps = {result['ratio_epoch_to_sum_steps']:.3f}; "
        f"epoch / (steps x median) = {result['ratio_epoch_to_steps_x_median']:.3f}; "
        f"whole train() call {result['train_call_s']:.1f} s\n"
        f"load average before/after: {result['load_average_before']} / {result['load_average_after']}"
    )


def run_in_own_process(args: argparse.Namespace, path: str, out: Path) -> dict[str, Any]:
    """This script for one path in a fresh process: the reference must not inherit kept freed memory."""
    command = [sys.executable, __file__, "--data", str(args.data), "--split", str(args.split), "--arch", args.arch,
               "--precision", args.precision, "--batch-size", str(args.batch_size), "--path", path,
               "--json", str(out)]
    if args.threads is not None:
        command += ["--threads", str(args.threads)]
    subprocess.run(command, check=True)
    return json.loads(out.read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="processed HDF5 (unetpp preprocess --size 96)")
    parser.add_argument("--split", type=Path, required=True, help="split.json (unetpp split)")
    parser.add_argument("--arch", default="nested_unet", help="architecture (default nested_unet)")
    parser.add_argument("--precision", default="auto",
                        help="auto, fp32 or bf16 (default auto, as unetpp train); the reference path is fp32")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    parser.add_argument("--batch-size", type=int, default=16, help="batch size (default 16)")
    parser.add_argument("--path", choices=PATHS, default="default",
                        help="default: as `unetpp train` runs; reference: as the original code (fp32, NCHW, "
                             "glibc's allocator); both: each in its own process, then their ratio")
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    args = parser.parse_args(argv)
    for path in (args.data, args.split):
        if not path.is_file():
            print(f"bench_train_epoch: {path} does not exist: make it with unetpp ingest, preprocess and split",
                  file=sys.stderr)
            return 1
    if args.path == "both":
        with tempfile.TemporaryDirectory(prefix="bench_epoch_both_") as tmp:
            results = {path: run_in_own_process(args, path, Path(tmp) / f"{path}.json")
                       for path in ("default", "reference")}
        result = {"paths": results,
                  "speedup": results["reference"]["epoch_s"] / results["default"]["epoch_s"],
                  "step_speedup": results["reference"]["median_step_s"] / results["default"]["median_step_s"]}
        print(f"whole epoch: reference {results['reference']['epoch_s']:.1f} s / default "
              f"{results['default']['epoch_s']:.1f} s = {result['speedup']:.2f}x; median step "
              f"{results['reference']['median_step_s']:.3f} / {results['default']['median_step_s']:.3f} s = "
              f"{result['step_speedup']:.2f}x")
    else:
        if args.path == "default":
            print(keep_freed_memory(), file=sys.stderr)  # as `unetpp train` does before it trains
            precision, layout = args.precision, "auto"
        else:
            precision, layout = "fp32", "nchw"
        result = {"path": args.path,
                  **run_epoch(args.data, args.split, args.arch, precision, args.threads, args.batch_size, layout)}
        print(describe(result))
    if args.json is not None:
        with atomic_path(args.json) as tmp:
            tmp.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
