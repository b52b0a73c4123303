"""Measure wall time, CPU time and peak memory of `unetpp ingest` and `unetpp preprocess` on the real zip.

Each stage runs as its own `unetpp` subprocess, exactly as the pipeline runs it.
Peak memory is sampled from /proc every 20 ms over the whole process tree (the
CLI and its pool workers): the peak of the summed PSS (proportional set size,
shared copy-on-write pages split between processes) and of the summed RSS
(which counts shared pages once per process, so it over-states). CPU time is
user+sys of the tree, from the kernel's accounting of reaped children. Load
average is printed because the machine may be shared.

    .venv/bin/python benchmarks/bench_ingest.py [--raw ZIP] [--workers 2] [--size 96] [--repeat 1]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REAL_ZIP = Path(__file__).resolve().parents[2] / "shared/data/dsb2018/stage1_train.zip"


def _tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as handle:
                    todo.extend(int(child) for child in handle.read().split())
        except OSError:
            continue
    return pids


def _memory_kb(pid: int) -> tuple[int, int]:
    """(pss, rss) in kB of one process, (0, 0) once it is gone."""
    values = {"Pss:": 0, "Rss:": 0}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                key = line.split(None, 1)[0]
                if key in values:
                    values[key] = int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return values["Pss:"], values["Rss:"]


def run_measured(command: list[str]) -> dict[str, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    peak = {"pss": 0, "rss": 0}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            totals = [_memory_kb(pid) for pid in _tree(process.pid)]
            peak["pss"] = max(peak["pss"], sum(t[0] for t in totals))
            peak["rss"] = max(peak["rss"], sum(t[1] for t in totals))
            done.wait(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, _ = process.communicate()
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if process.returncode != 0:
        sys.exit(f"{' '.join(command)} failed with exit status {process.returncode}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "peak_pss_mb": peak["pss"] / 1024,
        "peak_rss_mb": peak["rss"] / 1024,
        "out": stdout.strip(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--raw",
        type=Path,
        default=Path(os.environ.get("UNETPP_RAW_ZIP", REAL_ZIP)),
        help="raw zip or folder (default: the shared real stage1_train.zip)",
    )
    parser.add_argument("--workers", type=int, default=2, help="--workers passed to both stages")
    parser.add_argument("--size", type=int, default=96, help="--size passed to preprocess")
    parser.add_argument("--repeat", type=int, default=1, help="run both stages this many times")
    args = parser.parse_args()
    if not args.raw.exists():
        sys.exit(f"{args.raw} does not exist; pass --raw or set UNETPP_RAW_ZIP")
    unetpp = [sys.executable, "-c", "from unetpp.cli import main; main()"]
    print(f"raw: {args.raw}  workers: {args.workers}  size: {args.size}  cpus: {os.cpu_count()}")
    with tempfile.TemporaryDirectory(prefix="bench_ingest_") as tmp:
        interim, processed = Path(tmp) / "interim.h5", Path(tmp) / "processed.h5"
        for run in range(1, args.repeat + 1):
            load = os.getloadavg()[0]
            ingest = run_measured(
                [*unetpp, "ingest", "--raw", str(args.raw), "--out", str(interim), "--workers", str(args.workers)]
            )
            prep = run_measured(
                [
                    *unetpp,
                    "preprocess",
                    "--in",
                    str(interim),
                    "--size",
                    str(args.size),
                    "--out",
                    str(processed),
                    "--workers",
                    str(args.workers),
                ]
            )
            print(f"run {run} (1-min load average before: {load:.2f})")
            for name, result in (("ingest", ingest), ("preprocess", prep)):
                print(
                    f"  {name:<11} wall {result['wall_s']:6.1f} s  cpu {result['cpu_s']:6.1f} s  "
                    f"peak PSS {result['peak_pss_mb']:7.0f} MB  peak RSS {result['peak_rss_mb']:7.0f} MB  "
                    f"| {result['out']}"
                )
            total_wall = ingest["wall_s"] + prep["wall_s"]
            peak = max(ingest["peak_pss_mb"], prep["peak_pss_mb"])
            print(
                f"  {'total':<11} wall {total_wall:6.1f} s  cpu {ingest['cpu_s'] + prep['cpu_s']:6.1f} s  "
                f"peak PSS {peak:7.0f} MB   (target: <= 40 s on 2 idle cores, <= 2048 MB)"
            )
            print(
                f"  interim file {interim.stat().st_size / 1e6:.0f} MB, processed file {processed.stat().st_size / 1e6:.1f} MB"
            )


if __name__ == "__main__":
    main()
