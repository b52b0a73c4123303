"""Two trainings with 1 thread each, side by side, against one training with all threads.

Answers "on this CPU, should the workflow run two trainings at once with
`train.threads: 1` and `--resources gpu=2`?". Phase 1 times training steps
of one model in one process with `--threads` threads; phase 2 starts two
processes with 1 thread each at the same moment and times the same steps in
both. In fp32 every process interleaves NCHW and channels_last steps (the
two layouts `unetpp train --layout auto` chooses from), so each layout gets
its own figure; with `--precision bf16` (what `--precision auto` trains in
where the CPU has native bf16) it times channels_last only, the layout
`auto` always takes with bf16. The throughput ratio is (2 / two-process s/step) / (1 / one-process
s/step) per layout, and for the faster layout of each phase.

    python benchmarks/bench_parallel_trainings.py --arch nested_unet --steps 6

Run it on a quiet machine (it prints the load average before and after).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def step_paths(precision: str) -> list:
    """The layouts `--layout auto` chooses from at this precision (bf16: channels_last only)."""
    from unetpp.benchmarking.paths import StepPath

    if precision == "bf16":
        return [StepPath("channels_last", "bf16", True)]
    return [StepPath("nchw", "fp32", False), StepPath("channels_last", "fp32", True)]


def worker(arch: str, precision: str, threads: int, steps: int, out: Path) -> None:
    """Time `steps` interleaved steps per layout (after 1 warm-up each) and write the medians."""
    import torch

    from unetpp.benchmarking.train_steps import time_train_steps

    torch.set_num_threads(threads)
    paths = step_paths(precision)
    timings = time_train_steps(arch, paths, torch.device("cpu"), steps=steps, warmup=1, batch_size=16, size=96,
                               progress=False)
    out.write_text(json.dumps({t.path.name: {"median": statistics.median(t.times), "times": t.times}
                               for t in timings}))


def run_phase(arch: str, precision: str, threads: list[int], steps: int, folder: Path) -> list[dict]:
    """Start one worker per entry of `threads` at once; wait for all; return their results."""
    procs = []
    for k, n in enumerate(threads):
        out = folder / f"{len(threads)}-{k}.json"
        cmd = [sys.executable, __file__, "--worker", "--arch", arch, "--precision", precision, "--threads", str(n),
               "--steps", str(steps), "--out", str(out)]
        procs.append((subprocess.Popen(cmd), out))
    for proc, _ in procs:
        if proc.wait() != 0:
            raise SystemExit(f"worker failed with exit {proc.returncode}")
    return [json.loads(out.read_text()) for _, out in procs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="nested_unet")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                        help="fp32 (NCHW and channels_last) or bf16 autocast (channels_last; needs native bf16 "
                        "to be meaningful) [default: fp32]")
    parser.add_argument("--steps", type=int, default=6, help="timed steps per layout and process")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2,
                        help="threads of the single training (phase 1) [default: all cores]")
    parser.add_argument("--json", type=Path, default=None, help="also write the raw results here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.arch, args.precision, args.threads, args.steps, args.out)
        return
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        (single,) = run_phase(args.arch, args.precision, [args.threads], args.steps, Path(tmp))
        pair = run_phase(args.arch, args.precision, [1, 1], args.steps, Path(tmp))
    load_after = os.getloadavg()
    print(f"{args.arch}, batch 16, 96x96, {args.precision}, median of {args.steps} steps after 1 warm-up; load average before "
          f"{load_before[0]:.2f}, after {load_after[0]:.2f}")
    print("| layout | 1 training x %d threads s/step | 2 trainings x 1 thread s/step (each) | throughput ratio |"
          % args.threads)
    print("|---|---:|---:|---:|")
    for layout in single:
        one = single[layout]["median"]
        two = [p[layout]["median"] for p in pair]
        print(f"| {layout} | {one:.3f} | {two[0]:.3f} / {two[1]:.3f} | {2 / statistics.mean(two) * one:.2f}x |")
    best_one = min(single[layout]["median"] for layout in single)
    best_two = min(statistics.mean(p[layout]["median"] for p in pair) for layout in single)
    print(f"each phase in its faster layout: {2 / best_two * best_one:.2f}x the throughput with two trainings")
    if args.json:
        args.json.write_text(json.dumps({"precision": args.precision, "single": single, "pair": pair, "load_before": load_before,
                                         "load_after": load_after}, indent=2))


if __name__ == "__main__":
    main()
