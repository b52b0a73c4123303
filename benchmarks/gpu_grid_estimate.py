"""How long the variant grid takes on one H200: a floor from measured step times, not a measurement of the grid.

Why: the GPU script runs many trainings at once on one GPU, and a lent GPU gives a session about ten minutes.
Processes on one GPU do not run kernels at the same time (without MPS their contexts take turns), so the grid
cannot take less than the sum, over its runs, of each run's GPU-busy time. A training step replayed from one
CUDA graph is GPU-busy time with the launch gaps removed, so:

    floor = sum over runs of epochs x (training steps + validation batches / 3) x graph step time

with the median step times that `step_bench.py` measured alone on an H200 (torch 2.11, bf16, channels_last,
96x96; ../shared/results/gpu-h200-2026-12-04/step_bench.json, quoted in docs/performance.md): at batch 16 and at
batch 128, interpolated linearly in pixels per step for a larger input (batch 16 at 192x192 has the pixels of
batch 64 at 96x96). A validation batch is a forward pass, taken as a third of a step. The epochs are those each
run took on the CPU (`<results>/models/<variant>/<arch>/seed0/train.json`; a run not finished there takes the
reference's, and the table says so); the UNet++ authors' block is taken at the vgg block's step time (not
measured on a GPU).

The check: the reference's seeds 0-2 (nine eager runs at once, the published GPU run) finished their last
training 291 s after the start; their floor by this formula, with the epochs they ran, is printed beside it, and
their ratio is what eager steps cost over the floor with nine processes filling each other's launch gaps. With
`--cuda-graph` the grid can approach the floor but not pass it. Below it lies only what overlapping the runs'
kernels would give (NVIDIA's MPS, or every run on its own CUDA stream in one process), printed last: each step
at batch 128's cost per image.

    python benchmarks/gpu_grid_estimate.py --results results/cpu_amx_grid --params params.yaml \\
        --variant reference --variant augment --variant authors --variant size192 --seeds 3
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import yaml

ARCHS = ("unet", "nested_unet", "nested_unet_ds")
# step_bench.json: median ms of one bf16 training step replayed from a CUDA graph, alone on one H200, 96x96.
GRAPH_STEP_MS = {
    16: {"unet": 4.41, "nested_unet": 9.37, "nested_unet_ds": 9.88},
    128: {"unet": 18.70, "nested_unet": 49.49, "nested_unet_ds": 50.67},
}
BENCH_SIZE = 96
VALIDATION_COST = 1 / 3  # a forward pass against forward, backward and Adam
# The published GPU run of the reference, seeds 0-2, nine eager runs at once: epochs run per arch and the
# seconds from the start to the end of its last training (../shared/results/gpu-h200-2026-12-04/run_seeds012.log).
OBSERVED_EPOCHS = {"unet": (73, 116, 100), "nested_unet": (92, 69, 69), "nested_unet_ds": (89, 80, 100)}
OBSERVED_WALL_S = 291.0
OBSERVED_IMAGES = (536, 134)  # its training and validation images


def image_equivalents(batch_size: int, size: int) -> float:
    """The 96x96 images with the pixels of one batch at `size`."""
    return batch_size * (size / BENCH_SIZE) ** 2


def step_ms(arch: str, batch_size: int, size: int) -> float:
    """GPU-busy ms of one training step: the graph times, linear in 96x96-image equivalents per step."""
    images = image_equivalents(batch_size, size)
    small, large = GRAPH_STEP_MS[16][arch], GRAPH_STEP_MS[128][arch]
    return small + (large - small) * (images - 16) / (128 - 16)


def overlapped_step_ms(arch: str, batch_size: int, size: int) -> float:
    """The same step at batch 128's cost per image: what it would cost if other runs' kernels filled the GPU
    beside it (MPS, or streams in one process), which one process at batch 16 does not."""
    return GRAPH_STEP_MS[128][arch] * image_equivalents(batch_size, size) / 128


def epoch_s(arch: str, batch_size: int, size: int, n_train: int, n_val: int, overlapped: bool = False) -> float:
    """GPU-busy seconds of one epoch: every training step and the validation passes."""
    steps = math.ceil(n_train / batch_size) + VALIDATION_COST * math.ceil(n_val / batch_size)
    per_step = (overlapped_step_ms if overlapped else step_ms)(arch, batch_size, size)
    return steps * per_step / 1000


def cpu_epochs(results: Path, variant: str, arch: str) -> int | None:
    """The epochs the variant's seed-0 run took on the CPU, or None if it has not finished there."""
    path = results / "models" / variant / arch / "seed0" / "train.json"
    return json.loads(path.read_text(encoding="utf-8"))["epochs_run"] if path.is_file() else None


def variant_table(results: Path, variants: dict[str, dict], names: list[str], n_train: int, n_val: int
                  ) -> list[dict]:
    """One row per (variant, arch): size, epochs and where they come from, the run's floor in seconds."""
    rows = []
    for name in names:
        settings = variants[name]
        for arch in ARCHS:
            epochs = cpu_epochs(results, name, arch)
            source = "CPU seed 0"
            if epochs is None:
                epochs, source = cpu_epochs(results, "reference", arch), "the reference's (not finished)"
            if epochs is None:
                sys.exit(f"{results}/models/reference/{arch}/seed0/train.json is missing: publish the reference first")
            shape = (arch, settings["batch_size"], settings["size"], n_train, n_val)
            rows.append({"variant": name, "arch": arch, "size": settings["size"], "epochs": epochs,
                         "source": source, "seconds": epochs * epoch_s(*shape),
                         "overlapped_seconds": epochs * epoch_s(*shape, overlapped=True)})
    return rows


def observed_floor() -> float:
    """The floor of the published reference GPU run (seeds 0-2, its own images), by the same formula."""
    return sum(epochs * epoch_s(arch, 16, BENCH_SIZE, *OBSERVED_IMAGES)
               for arch, runs in OBSERVED_EPOCHS.items() for epochs in runs)


def report(rows: list[dict], seeds: int) -> str:
    lines = ["| variant | arch | size | epochs | epochs from | GPU-busy floor per run |",
             "|---|---|---:|---:|---|---:|"]
    lines += [f"| {r['variant']} | {r['arch']} | {r['size']} | {r['epochs']} | {r['source']} | {r['seconds']:.0f} s |"
              for r in rows]
    per_seed = sum(r["seconds"] for r in rows)
    overlapped = sum(r["overlapped_seconds"] for r in rows)
    check = observed_floor()
    ratio = OBSERVED_WALL_S / check
    lines += [
        "",
        f"floor per seed {per_seed:.0f} s; for {seeds} seed(s) {seeds * per_seed / 60:.1f} min (graphs at best)",
        f"check: the published reference seeds 0-2, eager, nine at once: floor {check:.0f} s, "
        f"observed {OBSERVED_WALL_S:.0f} s (x{ratio:.2f})",
        f"eager at that ratio: about {seeds * per_seed * ratio / 60:.1f} min",
        f"if the runs' kernels overlapped (MPS, or streams in one process) at batch 128's cost per image: "
        f"{seeds * overlapped / 60:.1f} min",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, required=True, help="holds models/<variant>/<arch>/seed0/train.json")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="the variants' sizes and batches")
    parser.add_argument("--variant", action="append", help="a variant to count (repeatable) [every declared one]")
    parser.add_argument("--seeds", type=int, default=3, help="training seeds per (variant, arch) [3]")
    parser.add_argument("--train-images", type=int, default=536, help="training images per epoch [536]")
    parser.add_argument("--val-images", type=int, default=134, help="validation images per epoch [134]")
    args = parser.parse_args()
    variants = yaml.safe_load(args.params.read_text(encoding="utf-8"))["variants"]
    names = args.variant or list(variants)
    unknown = [n for n in names if n not in variants]
    if unknown:
        sys.exit(f"{args.params} declares no variant {', '.join(unknown)} (it has {', '.join(variants)})")
    rows = variant_table(args.results, variants, names, args.train_images, args.val_images)
    print(report(rows, args.seeds))


if __name__ == "__main__":
    main()
