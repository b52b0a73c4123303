"""The reference protocol for every (arch, seed) on one GPU, from the processed HDF5 and the split alone.

For a machine that has a GPU but neither the raw data nor Snakemake: copy
`data/processed/dsb2018_96.h5` and `data/processed/split.json` there (about
25 MB) with a checkout, then

    python benchmarks/gpu_protocol.py --data data/processed/dsb2018_96.h5 \
        --split data/processed/split.json --work gpu_run --archive gpu_results.tar.gz

(paths relative to the directory it is started from) trains, predicts and evaluates every (arch, seed) -- `--jobs` of them at once
on the one GPU, since one 96x96 training at batch 16 leaves most of a large
GPU idle -- then aggregates, and packs the small outputs (histories,
train.json, per-image scores, metrics, figures, logs) into one archive. The
archive is rewritten after every finished job, so a run cut short by a time
limit still leaves what it finished, and `--deadline` stops it in time to
aggregate what is complete and export the unfinished runs' history so far.

The `unetpp` commands run as `python -m unetpp` with `src/` on PYTHONPATH,
so no install step is needed (the machine's own torch is used). The defaults
are the protocol's values in params.yaml (train, predict and evaluate).

Each train.json records the commit of the code only if `src/` is a tracked
part of a git checkout; for a copy of `src/` and `benchmarks/` made elsewhere,
pass `--source-commit $(git rev-parse HEAD)` of the checkout it was copied
from, which train.json then records as given (`UNETPP_SOURCE_COMMIT`).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The release this project's results come from (params.yaml data.content_sha256); a copy, because this script
# runs `unetpp` only as a subprocess.
STAGE1_TRAIN_CONTENT_SHA256 = "9ab049873a11411440d9027c902103a230434e55382bbbfe7f974f3f88fd743c"
ARCHS = ("unet", "nested_unet", "nested_unet_ds")
SMALL_FILES = ("history.csv", "train.json", "metrics.json", "per_image.csv", "samples.png", "summary.md",
               "curves.png", "status.json")


def unetpp(*args: str) -> list[str]:
    """The command line of `unetpp ARGS` run from this checkout's src/, without an install."""
    return [sys.executable, "-m", "unetpp", *args]


def run_logged(cmd: list[str], log: Path, env: dict[str, str], deadline: float) -> bool:
    """Run `cmd` with output to `log`; kill it at `deadline` (time.monotonic); True on exit status 0."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8") as fh:
        fh.write("$ " + " ".join(cmd) + "\n")
        fh.flush()
        # From the checkout root, so `-m unetpp` finds nothing else first; every path in `cmd` is absolute.
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=REPO)
        try:
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            fh.write("stopped at the --deadline\n")
            return False
    return proc.returncode == 0


def one_run(arch: str, seed: int, args: argparse.Namespace, env: dict[str, str], deadline: float) -> bool:
    """train -> predict -> evaluate for one (arch, seed); False if any step failed or ran out of time."""
    work: Path = args.work
    model_dir = work / "models" / arch / f"seed{seed}"
    result_dir = work / "results" / arch / f"seed{seed}"
    log = work / "logs" / f"{arch}-seed{seed}.log"
    steps = [
        unetpp("train", "--data", str(args.data), "--split", str(args.split), "--arch", arch,
               "--epochs", str(args.epochs), "--patience", str(args.patience), "--lr", str(args.lr),
               "--batch-size", str(args.batch_size), "--seed", str(seed), "--device", args.device,
               "--precision", args.precision, "--selection-metric", args.selection_metric,
               "--layout", args.layout, "--num-threads", str(args.threads), "--out", str(model_dir),
               "--checkpoint-dir", str(work / "checkpoints"), "--no-progress"),
        unetpp("predict", "--model", str(model_dir / "model.pt"), "--data", str(args.data), "--split",
               str(args.split), "--subset", "val", "--batch-size", str(args.batch_size), "--device", args.device,
               "--precision", args.precision, "--out", str(result_dir / "predictions.h5"),
               "--figure", str(result_dir / "samples.png"), "--no-progress"),
        unetpp("evaluate", "--pred", str(result_dir / "predictions.h5"), "--data", str(args.data),
               "--split", str(args.split), "--subset", "val", "--batch-size", "16",
               "--out", str(result_dir / "metrics.json"), "--per-image", str(result_dir / "per_image.csv")),
    ]
    return all(run_logged(cmd, log, env, deadline) for cmd in steps)


def pack(work: Path, archive: Path, lock: threading.Lock) -> None:
    """Rewrite `archive` with every small output under `work` (atomically: temp file, then rename)."""
    with lock:
        tmp = archive.with_name(archive.name + ".tmp")
        with tarfile.open(tmp, "w:gz") as tar:
            for path in sorted(work.rglob("*")):
                if path.is_file() and (path.name in SMALL_FILES or path.suffix == ".log"):
                    tar.add(path, arcname=str(path.relative_to(work.parent)))
        os.replace(tmp, archive)


def complete_seeds(work: Path, archs: list[str], seeds: list[int]) -> list[int]:
    """The seeds for which every arch has its three aggregate inputs."""
    def done(arch: str, seed: int) -> bool:
        return all((work / sub / arch / f"seed{seed}" / name).is_file()
                   for sub, name in (("models", "history.csv"), ("models", "train.json"),
                                     ("results", "metrics.json"), ("results", "per_image.csv")))

    return [s for s in seeds if all(done(a, s) for a in archs)]


def build_parser() -> argparse.ArgumentParser:
    """The script's options; every default is the protocol's value in params.yaml."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="processed HDF5 (`unetpp preprocess` output)")
    parser.add_argument("--split", type=Path, required=True, help="split.json (`unetpp split` output)")
    parser.add_argument("--work", type=Path, required=True, help="folder for models/, results/, logs/")
    parser.add_argument("--archive", type=Path, required=True, help="tar.gz of the small outputs")
    parser.add_argument("--arch", dest="archs", action="append", choices=ARCHS, help="repeatable [all three]")
    parser.add_argument("--seed", dest="seeds", action="append", type=int, help="repeatable [0, 1, 2]")
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--patience", type=int, default=20)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--selection-metric", default="batch_pooled")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--layout", default="auto")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads per training process")
    parser.add_argument("--content-sha256", default=STAGE1_TRAIN_CONTENT_SHA256,
                        help="data.content_sha256 of the raw data the HDF5 came from [the stage1_train release: "
                             "its summary gets the published column]")
    parser.add_argument("--jobs", type=int, default=3, help="(arch, seed) runs at once on the one GPU")
    parser.add_argument("--deadline", type=float, default=None,
                        help="seconds from now after which running jobs are stopped and the rest skipped")
    parser.add_argument("--source-commit", default=os.environ.get("UNETPP_SOURCE_COMMIT"),
                        help="the commit this copy of src/ was made from, for train.json when src/ is not tracked "
                             "by a git checkout here [$UNETPP_SOURCE_COMMIT]")
    return parser


def resolve_paths(args: argparse.Namespace, start: Path) -> argparse.Namespace:
    """--data, --split, --work, --archive as absolute paths: relative ones are relative to `start`.

    The commands run from the checkout root, so a path as the user typed it would point elsewhere there.
    """
    for name in ("data", "split", "work", "archive"):
        path: Path = getattr(args, name).expanduser()
        setattr(args, name, path if path.is_absolute() else start / path)
    for name in ("data", "split"):
        if not getattr(args, name).is_file():
            raise SystemExit(f"--{name} {getattr(args, name)} does not exist (relative paths are taken from {start})")
    return args


def main() -> int:
    args = resolve_paths(build_parser().parse_args(), Path.cwd())
    archs = args.archs or list(ARCHS)
    seeds = args.seeds or [0, 1, 2]
    args.work.mkdir(parents=True, exist_ok=True)
    args.archive.parent.mkdir(parents=True, exist_ok=True)
    # Leave a minute after the deadline to aggregate, export progress and pack.
    deadline = time.monotonic() + (args.deadline - 60 if args.deadline else 10 * 365 * 86400)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
           "UNETPP_CACHE_DIR": str(args.work / "cache")}
    if args.source_commit:
        env["UNETPP_SOURCE_COMMIT"] = args.source_commit
    lock = threading.Lock()
    started = time.monotonic()

    def job(arch_seed: tuple[str, int]) -> tuple[str, int, bool]:
        arch, seed = arch_seed
        ok = time.monotonic() < deadline and one_run(arch, seed, args, env, deadline)
        print(f"{arch} seed {seed}: {'done' if ok else 'NOT done'} after {time.monotonic() - started:.0f} s",
              flush=True)
        pack(args.work, args.archive, lock)
        return arch, seed, ok

    # Seed-major order: with a deadline, whole seeds (all archs) finish first and can be aggregated.
    order = [(arch, seed) for seed in seeds for arch in archs]
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        outcomes = list(pool.map(job, order))

    finished = complete_seeds(args.work, archs, seeds)
    status = 0 if all(ok for _, _, ok in outcomes) else 1
    if finished:
        cmd = unetpp("aggregate", "--models-dir", str(args.work / "models"), "--results-dir",
                     str(args.work / "results"), "--out", str(args.work / "results"),
                     "--content-sha256", args.content_sha256,
                     *[x for a in archs for x in ("--arch", a)], *[x for s in finished for x in ("--seed", str(s))])
        if not run_logged(cmd, args.work / "logs" / "aggregate.log", env, time.monotonic() + 120):
            status = 1
    if (args.work / "checkpoints").is_dir() and any((args.work / "checkpoints").glob("*/last.pt")):
        run_logged(unetpp("progress", "--checkpoint-dir", str(args.work / "checkpoints"), "--out",
                          str(args.work / "unfinished")), args.work / "logs" / "progress.log", env,
                   time.monotonic() + 120)
    pack(args.work, args.archive, lock)
    print(f"aggregated seeds {finished} of {seeds}; archive {args.archive} "
          f"({args.archive.stat().st_size / 1e6:.1f} MB) after {time.monotonic() - started:.0f} s", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
