"""Where a training step's time goes: torch.profiler over a few steps of one path.

Issue 11 asks what is left between the default path and the machine's limit
(BN/ReLU/concat/upsampling memory traffic, the optimizer, ...). This runs
`--steps` training steps (after 2 warm-up steps) of one architecture, batch 16,
96x96, in the given precision and layout, and prints the operators by self CPU
time, then the same time grouped into a few families.

    python benchmarks/profile_train_step.py --arch nested_unet --layout channels_last --precision fp32

Run it on a quiet machine; profiling itself adds a few percent.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from unetpp.benchmarking.paths import StepPath, build_for_path
from unetpp.benchmarking.train_steps import synthetic_batch_source
from unetpp.training.step import make_batch, train_step

# Operator-name fragments -> family; the first match wins (backward ops first).
FAMILIES = (
    ("convolution backward", ("convolution_backward", "mkldnn_convolution_backward")),
    ("convolution forward", ("convolution", "conv2d")),
    ("batch norm", ("batch_norm",)),
    ("relu / threshold", ("relu", "threshold", "clamp_min")),
    ("upsampling", ("upsample",)),
    ("concat / copy / layout", ("cat", "copy_", "contiguous", "to_dense", "clone")),
    ("max pool", ("max_pool",)),
    ("optimizer (Adam)", ("_foreach", "adam", "lerp", "addcdiv", "sqrt")),
    ("loss", ("binary_cross_entropy", "sigmoid", "log_sigmoid")),
)


def family(name: str) -> str:
    lowered = name.lower()
    for label, fragments in FAMILIES:
        if any(fragment in lowered for fragment in fragments):
            return label
    return "other"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="nested_unet")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--layout", choices=("nchw", "channels_last"), default="channels_last")
    parser.add_argument("--steps", type=int, default=3, help="profiled steps (after 2 warm-up steps)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads [default: torch's]")
    parser.add_argument("--top", type=int, default=25, help="operators listed")
    parser.add_argument("--json", type=Path, default=None, help="also write per-operator and per-family seconds")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    path = StepPath(f"{args.layout}_{args.precision}", args.precision, args.layout == "channels_last")
    model, optimizer = build_for_path(args.arch, path, device, 0, None)
    model.train()
    images, masks = synthetic_batch_source(64, 96)
    generator = torch.Generator().manual_seed(0)

    def step() -> None:
        x, y = make_batch(images, masks, torch.randperm(64, generator=generator)[:16])
        train_step(model, optimizer, x.contiguous(memory_format=path.memory_format), y, path.precision)

    for _ in range(2):
        step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(args.steps):
            step()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events) / 1e6
    print(f"{args.arch}, {path.describe()}, {torch.get_num_threads()} thread(s), torch {torch.__version__}, "
          f"capability {torch.backends.cpu.get_cpu_capability()}: {total / args.steps:.3f} s of self CPU time per "
          f"step (profiled)")
    print(events.table(sort_by="self_cpu_time_total", row_limit=args.top))
    families: dict[str, float] = defaultdict(float)
    for event in events:
        families[family(event.key)] += event.self_cpu_time_total / 1e6
    print("| family | s/step | share |\n|---|---:|---:|")
    for label, seconds in sorted(families.items(), key=lambda item: -item[1]):
        print(f"| {label} | {seconds / args.steps:.3f} | {seconds / total:.1%} |")
    if args.json:
        args.json.write_text(json.dumps({
            "arch": args.arch, "setup": path.describe(), "threads": torch.get_num_threads(), "steps": args.steps,
            "families_s_per_step": {k: v / args.steps for k, v in families.items()},
            "ops_s_per_step": {e.key: e.self_cpu_time_total / 1e6 / args.steps for e in events},
        }, indent=2))


if __name__ == "__main__":
    main()
