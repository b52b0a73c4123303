"""What `unetpp train --augment` costs per training step, measured in one run.

Times, interleaved round by round on one model (each kind first in turn),
the training step as `train_epoch` runs it (make_batch, then the
augmentation when there is one, then `train_step`) for each `--augment`
kind, after warm-up rounds, and the batch preparation alone. Prints the
median step time per kind and its ratio to `none`, and the augmentation's
own time (batch preparation less none's) as a share of none's step, the
figure that a shared machine's drift disturbs least. Device, precision and
layout are resolved as `unetpp train` resolves them (`--precision auto`, `--layout auto`), and freed memory is kept as that
command keeps it. Load average is printed because the machine may be shared.

    .venv/bin/python benchmarks/bench_augment.py [--arch nested_unet] [--batch-size 16] [--size 96] \
        [--rounds 10] [--device auto] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from unetpp.allocator import keep_freed_memory
from unetpp.choices import AUGMENTS
from unetpp.models import build_model
from unetpp.training.augment import epoch_augment
from unetpp.training.device import resolve_device, resolve_precision
from unetpp.training.layout import memory_format, resolve_layout
from unetpp.training.optimizer import make_optimizer
from unetpp.training.step import make_batch, train_step


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(arch: str, batch_size: int, size: int, rounds: int, warmup: int, device_name: str,
            precision_name: str, threads: int | None) -> dict[str, Any]:
    """Median seconds of a training step per augmentation kind, and of the augmentation alone."""
    device = resolve_device(device_name)
    precision = resolve_precision(precision_name, device)
    threads = threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    layout = resolve_layout("auto", device, precision, arch, batch_size, size, threads, {}, False)
    fmt = memory_format(layout["layout"])
    torch.manual_seed(0)
    model = build_model(arch).to(device, memory_format=fmt).train()
    optimizer = make_optimizer(model, 3e-4)
    n = 4 * batch_size
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, size, size, 3), dtype=torch.uint8, generator=generator).to(device)
    masks = (torch.rand(n, size, size, generator=generator) > 0.7).to(torch.uint8).to(device)
    plans = {kind: epoch_augment(kind, n, 0, 1, device) for kind in AUGMENTS}
    step_times: dict[str, list[float]] = {kind: [] for kind in AUGMENTS}
    batch_times: dict[str, list[float]] = {kind: [] for kind in AUGMENTS}
    kinds = list(AUGMENTS)
    for r in range(warmup + rounds):
        index = torch.arange(batch_size, device=device) + (r % 4) * batch_size
        for kind in kinds[r % len(kinds):] + kinds[: r % len(kinds)]:  # each kind goes first in turn
            plan = plans[kind]
            _sync(device)
            start = time.perf_counter()
            x, y = make_batch(images, masks, index, fmt)
            if plan is not None:
                x, y = plan.apply(index, x, y)
                x = x.contiguous(memory_format=fmt)
            _sync(device)
            prepared = time.perf_counter()
            loss, _ = train_step(model, optimizer, x, y, precision)
            float(loss)  # waits for the step on any device
            end = time.perf_counter()
            if r >= warmup:
                step_times[kind].append(end - start)
                batch_times[kind].append(prepared - start)
    base = statistics.median(step_times["none"])
    batch_base = statistics.median(batch_times["none"])
    return {
        "arch": arch, "batch_size": batch_size, "size": size, "device": str(device), "precision": precision,
        "layout": layout["layout"], "threads": threads, "rounds": rounds, "warmup": warmup,
        "load_average": os.getloadavg(),
        "step_seconds": {kind: statistics.median(t) for kind, t in step_times.items()},
        "ratio_to_none": {kind: statistics.median(t) / base for kind, t in step_times.items()},
        "batch_seconds": {kind: statistics.median(t) for kind, t in batch_times.items()},
        # The augmentation's own time (its batch preparation less none's) per step of none: robust to a
        # shared machine's drift, which moves whole step times far more than this.
        "augment_share_of_step": {kind: (statistics.median(t) - batch_base) / base for kind, t in batch_times.items()},
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="nested_unet")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    keep_freed_memory()
    result = measure(args.arch, args.batch_size, args.size, args.rounds, args.warmup, args.device, args.precision,
                     args.threads)
    print(f"{result['arch']} batch {result['batch_size']} at {result['size']}x{result['size']} on {result['device']} "
          f"({result['precision']}, {result['layout']}, {result['threads']} threads, load {result['load_average']})")
    for kind, seconds in result["step_seconds"].items():
        print(f"  {kind:13s} step {1000 * seconds:8.1f} ms  x{result['ratio_to_none'][kind]:.3f} of none; batch "
              f"{1000 * result['batch_seconds'][kind]:6.1f} ms, augmentation "
              f"{100 * result['augment_share_of_step'][kind]:+.2f}% of none's step")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
