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

The protocol variants (params.yaml `variants`): `--variant NAME` (repeatable) or `--grid` (all four:
reference, augment, authors, size192) runs each variant's (arch, seed) runs with its size, block,
augment, batch size and lr, with `--data` a pattern holding `{size}` (data/processed/dsb2018_{size}.h5:
the 96 and 192 files) and `--interim` for the native-size scores (the ingest output, or its val images
alone: a lent GPU machine takes at most 64 MiB, so pack the files with `benchmarks/gpu_bundle.py pack`,
carry `.gpu_bundle` and run `PYTHONPATH=src python benchmarks/gpu_bundle.py unpack .gpu_bundle data` there
first); the layout is the workflow's (models/<variant>/<arch>/seed<seed>, results/<variant>/runs/...,
results/variants/<variant>/ and results/variants.md from `unetpp compare-variants`). The whole grid for
seeds 0-2 is 36 runs, with --jobs 9 proposed (the size192 runs start first, the longest first). It takes
longer than one lent GPU session: `benchmarks/gpu_grid_estimate.py` puts a floor under it from the H200's
measured step times (processes on one GPU take turns, so the runs' GPU-busy times add up) and the epochs each
variant ran on the CPU: about 26 minutes for seeds 0-2 with `--cuda-graph` at best, about 33 eager (the
published nine eager runs of the reference came within 1.3x of their floor), 13.6 and 17.5 for the three 96x96
variants alone. `--cuda-graph` replays every training step from a CUDA graph (`unetpp train --cuda-graph`): a
captured UNet++ step took half the eager time alone on an H200 at batch 16, but with nine runs at once the eager
runs already fill most of each other's launch gaps, so the grid gains at most about a fifth; unmeasured (not
yet run on a GPU), and not bit-identical to the eager runs published so far, e.g.

    python benchmarks/gpu_protocol.py --grid --data 'data/processed/dsb2018_{size}.h5' \
        --interim data/interim/stage1_train_val.h5 --split data/processed/split.json \
        --work gpu_grid --archive gpu_grid.tar.gz --jobs 9 --cuda-graph

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
# The protocol variants of params.yaml (a copy, as above): the values each changes.
REFERENCE = {"size": 96, "block": "vgg", "augment": "none", "batch_size": 16, "lr": 3e-4}
VARIANTS = {
    "reference": REFERENCE,
    "augment": {**REFERENCE, "augment": "flips_colour"},
    "authors": {**REFERENCE, "block": "authors"},
    "size192": {**REFERENCE, "size": 192},
}
SMALL_FILES = ("history.csv", "train.json", "metrics.json", "per_image.csv", "samples.png", "summary.md",
               "curves.png", "status.json", "variants.md", "variants.json")


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


def variant_args(args: argparse.Namespace, name: str) -> argparse.Namespace:
    """args for the runs of variant `name`: its data file, batch size, lr, block and augment."""
    values = VARIANTS[name]
    return argparse.Namespace(**{**vars(args), "data": Path(str(args.data).format(size=values["size"])),
                                 "batch_size": values["batch_size"], "lr": values["lr"], "block": values["block"],
                                 "augment": values["augment"], "variant": name})


def run_dirs(args: argparse.Namespace, arch: str, seed: int) -> tuple[Path, Path, Path]:
    """(model folder, results folder, log) of one run: the workflow's layout for a variant, else the old one."""
    work: Path = args.work
    variant = getattr(args, "variant", None)
    if variant is None:
        return (work / "models" / arch / f"seed{seed}", work / "results" / arch / f"seed{seed}",
                work / "logs" / f"{arch}-seed{seed}.log")
    return (work / "models" / variant / arch / f"seed{seed}", work / "results" / variant / "runs" / arch / f"seed{seed}",
            work / "logs" / variant / f"{arch}-seed{seed}.log")


def run_finished(model_dir: Path, result_dir: Path) -> bool:
    """Whether a run has the aggregate's inputs: history.csv, train.json, metrics.json and per_image.csv."""
    return all((folder / name).is_file()
               for folder, name in ((model_dir, "history.csv"), (model_dir, "train.json"),
                                    (result_dir, "metrics.json"), (result_dir, "per_image.csv")))


def one_run(arch: str, seed: int, args: argparse.Namespace, env: dict[str, str], deadline: float) -> bool:
    """train -> predict -> evaluate for one (arch, seed); False if any step failed or ran out of time.

    A run an earlier call finished is left as it is; a trained model is not trained again; a training it cut
    short resumes from its checkpoint.
    """
    work: Path = args.work
    model_dir, result_dir, log = run_dirs(args, arch, seed)
    if run_finished(model_dir, result_dir):
        return True
    variant_options = ("--block", args.block, "--augment", args.augment) if getattr(args, "variant", None) else ()
    interim = ("--interim", str(args.interim)) if getattr(args, "interim", None) else ()
    graph = ("--cuda-graph",) if getattr(args, "cuda_graph", False) else ()
    steps = [
        unetpp("train", "--data", str(args.data), "--split", str(args.split), "--arch", arch,
               "--epochs", str(args.epochs), "--patience", str(args.patience), "--lr", str(args.lr),
               "--batch-size", str(args.batch_size), "--seed", str(seed), "--device", args.device,
               "--precision", args.precision, "--selection-metric", args.selection_metric,
               "--layout", args.layout, "--num-threads", str(args.threads), *variant_options, *graph,
               "--out", str(model_dir),
               "--checkpoint-dir", str(work / "checkpoints"), "--no-progress"),
        unetpp("predict", "--model", str(model_dir / "model.pt"), "--data", str(args.data), "--split",
               str(args.split), "--subset", "val", "--batch-size", str(args.batch_size), "--device", args.device,
               "--precision", args.precision, "--out", str(result_dir / "predictions.h5"),
               "--figure", str(result_dir / "samples.png"), "--no-progress"),
        unetpp("evaluate", "--pred", str(result_dir / "predictions.h5"), "--data", str(args.data),
               "--split", str(args.split), "--subset", "val", "--batch-size", "16", *interim,
               "--out", str(result_dir / "metrics.json"), "--per-image", str(result_dir / "per_image.csv")),
    ]
    if (model_dir / "model.pt").is_file() and (model_dir / "train.json").is_file():
        steps = steps[1:]
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


def complete_seeds(work: Path, archs: list[str], seeds: list[int], variant: str | None = None) -> list[int]:
    """The seeds for which every arch has its three aggregate inputs (of `variant`, in its layout)."""
    def done(arch: str, seed: int) -> bool:
        model_dir, result_dir, _ = run_dirs(argparse.Namespace(work=work, variant=variant), arch, seed)
        return run_finished(model_dir, result_dir)

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
    parser.add_argument("--cuda-graph", action="store_true",
                        help="`unetpp train --cuda-graph`: each step replayed from a CUDA graph (about 2x faster "
                             "steps alone at batch 16 on an H200, at most about a fifth off a grid of many runs; "
                             "not bit-identical to the eager runs published so far)")
    parser.add_argument("--content-sha256", default=STAGE1_TRAIN_CONTENT_SHA256,
                        help="data.content_sha256 of the raw data the HDF5 came from [the stage1_train release: "
                             "its summary gets the published column]")
    parser.add_argument("--jobs", type=int, default=3, help="(arch, seed) runs at once on the one GPU [9 for --grid]")
    parser.add_argument("--variant", dest="variants", action="append", choices=list(VARIANTS),
                        help="a protocol variant to run (repeatable; --data then holds {size}); overrides --lr, "
                             "--batch-size")
    parser.add_argument("--grid", action="store_true", help="every variant: reference, augment, authors, size192")
    parser.add_argument("--interim", type=Path, default=None,
                        help="data/interim/stage1_train.h5: evaluate also scores at native size (`--interim`)")
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
    for name in ("data", "split", "work", "archive", "interim"):
        if getattr(args, name, None) is None:
            continue
        path: Path = getattr(args, name).expanduser()
        setattr(args, name, path if path.is_absolute() else start / path)
    variants = (list(VARIANTS) if getattr(args, "grid", False) else getattr(args, "variants", None)) or []
    datas = [Path(str(args.data).format(size=VARIANTS[v]["size"])) for v in variants] or [args.data]
    for name, path in [*(("data", d) for d in dict.fromkeys(datas)), ("split", args.split),
                       *([("interim", args.interim)] if getattr(args, "interim", None) else [])]:
        if not path.is_file():
            raise SystemExit(f"--{name} {path} does not exist (relative paths are taken from {start})")
    return args


def start(args: argparse.Namespace) -> tuple[float, dict[str, str], threading.Lock, float]:
    """The folders, the deadline (a minute early, to aggregate, export progress and pack), the jobs' environment
    (this checkout's src/ first, the layout cache in --work, the source commit), the packing lock, the start time."""
    args.work.mkdir(parents=True, exist_ok=True)
    args.archive.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + (args.deadline - 60 if args.deadline else 10 * 365 * 86400)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
           "UNETPP_CACHE_DIR": str(args.work / "cache")}
    if args.source_commit:
        env["UNETPP_SOURCE_COMMIT"] = args.source_commit
    return deadline, env, threading.Lock(), time.monotonic()


def main() -> int:
    args = resolve_paths(build_parser().parse_args(), Path.cwd())
    archs = args.archs or list(ARCHS)
    seeds = args.seeds or [0, 1, 2]
    variants = list(VARIANTS) if args.grid else args.variants
    if variants:
        return run_variants(args, variants, archs, seeds)
    deadline, env, lock, started = start(args)

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


def run_variants(args: argparse.Namespace, variants: list[str], archs: list[str], seeds: list[int]) -> int:
    """Every (variant, arch, seed) run, one aggregate per variant, then the variant table; packed as main() does."""
    deadline, env, lock, started = start(args)

    def job(item: tuple[str, str, int]) -> tuple[str, str, int, bool]:
        variant, arch, seed = item
        ok = time.monotonic() < deadline and one_run(arch, seed, variant_args(args, variant), env, deadline)
        print(f"{variant} {arch} seed {seed}: {'done' if ok else 'NOT done'} after {time.monotonic() - started:.0f} s",
              flush=True)
        pack(args.work, args.archive, lock)
        return variant, arch, seed, ok

    # Seed-major (whole seeds finish first under a deadline); within a seed the larger sizes first (longest first).
    order = [(v, a, s) for s in seeds for v in sorted(variants, key=lambda v: -VARIANTS[v]["size"]) for a in archs]
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        outcomes = list(pool.map(job, order))
    status = 0 if all(ok for *_, ok in outcomes) else 1
    aggregated = {}
    for variant in variants:
        finished = complete_seeds(args.work, archs, seeds, variant)
        aggregated[variant] = finished
        if not finished:
            continue
        cmd = unetpp("aggregate", "--models-dir", str(args.work / "models" / variant), "--results-dir",
                     str(args.work / "results" / variant / "runs"), "--out", str(args.work / "results" / "variants" / variant),
                     "--content-sha256", args.content_sha256,
                     *[x for a in archs for x in ("--arch", a)], *[x for s in finished for x in ("--seed", str(s))])
        if not run_logged(cmd, args.work / "logs" / "aggregate" / f"{variant}.log", env, time.monotonic() + 120):
            status = 1
    if any(aggregated.values()):
        cmd = unetpp("compare-variants", "--variants-dir", str(args.work / "results" / "variants"),
                     "--out", str(args.work / "results" / "variants.md"),
                     "--json", str(args.work / "results" / "variants.json"))
        if not run_logged(cmd, args.work / "logs" / "compare_variants.log", env, time.monotonic() + 120):
            status = 1
    pack(args.work, args.archive, lock)
    print(f"aggregated {aggregated}; archive {args.archive} ({args.archive.stat().st_size / 1e6:.1f} MB) "
          f"after {time.monotonic() - started:.0f} s", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
