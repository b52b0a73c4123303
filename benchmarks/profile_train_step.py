"""Where a training step's time goes: torch.profiler over a few steps of one path.

Issue 11 asks what is left between the default path and the machine's limit
(BN/ReLU/concat/upsampling memory traffic, the optimizer, ...). This runs
`--steps` training steps (after 2 warm-up steps) of one architecture, batch 16,
96x96, in the given precision and layout, and prints the operators by self CPU
time, then the same time grouped into a few families.

    python benchmarks/profile_train_step.py --arch nested_unet --layout channels_last --precision fp32

`--by-shape` lists each convolution shape's time and GFLOP/s (are the
kernels near the machine's limit?), and `--bound` also times the reference
path and prints the largest speed-up this path could reach over it if
everything but its convolutions took no time:

    python benchmarks/profile_train_step.py --arch unet --precision bf16 --by-shape --bound --threads 2

Run it on a quiet machine; profiling itself adds a few percent.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import conv_flop_count

from unetpp.allocator import keep_freed_memory
from unetpp.benchmarking.paths import StepPath, build_for_path, reference_path
from unetpp.benchmarking.train_steps import time_train_steps
from unetpp.choices import BLOCKS
from unetpp.training.step_timing import synthetic_batch_source
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
    ("dropout", ("dropout", "bernoulli", "random_", "rshift", "bitwise_and")),  # nn.Dropout; HalfDropout
    ("optimizer (Adam)", ("_foreach", "adam", "lerp", "addcdiv", "sqrt")),
    ("loss", ("binary_cross_entropy", "sigmoid", "log_sigmoid")),
)


def family(name: str) -> str:
    lowered = name.lower()
    for label, fragments in FAMILIES:
        if any(fragment in lowered for fragment in fragments):
            return label
    return "other"


CONV_FAMILIES = ("convolution backward", "convolution forward")
CONV_FORWARD = "aten::mkldnn_convolution"
CONV_BACKWARD = "aten::convolution_backward"


def conv_forward_flops(input_shape: list[int], weight_shape: list[int]) -> int:
    """FlopCounterMode's count for one stride-1, 'same'-padded convolution (every convolution in these models)."""
    output_shape = [input_shape[0], weight_shape[0], *input_shape[2:]]
    return conv_flop_count(input_shape, weight_shape, output_shape)


def conv_rows(events: Any, steps: int, image_channels: int = 3) -> list[dict[str, Any]]:
    """Seconds per step and GFLOP/s of each convolution shape, forward and backward apart.

    The backward computes the input gradient and the weight gradient (2x the
    forward's FLOPs), except on the first layer, whose input (the image, with
    `image_channels` channels) needs no gradient.
    """
    rows = []
    for event in events:
        if event.key not in (CONV_FORWARD, CONV_BACKWARD) or len(event.input_shapes) < 3:
            continue
        if event.key == CONV_FORWARD:
            input_shape, weight_shape = event.input_shapes[0], event.input_shapes[1]
            flops = conv_forward_flops(input_shape, weight_shape)
        else:  # (grad_output, input, weight, ...)
            input_shape, weight_shape = event.input_shapes[1], event.input_shapes[2]
            flops = conv_forward_flops(input_shape, weight_shape) * (1 if input_shape[1] == image_channels else 2)
        seconds = event.self_cpu_time_total / 1e6 / steps
        calls = event.count // steps
        rows.append({"pass": "forward" if event.key == CONV_FORWARD else "backward",
                     "input": input_shape, "weight": weight_shape, "calls_per_step": calls,
                     "gflop_per_step": flops * calls / 1e9, "s_per_step": seconds,
                     "gflops_per_s": flops * calls / seconds / 1e9 if seconds else 0.0})
    return sorted(rows, key=lambda row: -row["s_per_step"])


def print_conv_rows(rows: list[dict[str, Any]]) -> None:
    print("| pass | input | weight | calls/step | ms/step | GFLOP/s |\n|---|---|---|---:|---:|---:|")
    for row in rows:
        print(f"| {row['pass']} | {'x'.join(map(str, row['input']))} | {'x'.join(map(str, row['weight']))} | "
              f"{row['calls_per_step']} | {row['s_per_step'] * 1e3:.1f} | {row['gflops_per_s']:.0f} |")


def profiled_steps(
    arch: str, path: StepPath, steps: int, by_shape: bool, size: int = 96, model_kwargs: dict[str, Any] | None = None
) -> Any:
    """torch.profiler's per-operator averages over `steps` training steps of `path` (after 2 warm-up steps).

    Batch 16 of `size` x `size` images; `model_kwargs` (tests shrink the filters) go to the model.
    """
    device = torch.device("cpu")
    model, optimizer = build_for_path(arch, path, device, 0, model_kwargs)
    model.train()
    images, masks = synthetic_batch_source(64, size)
    generator = torch.Generator().manual_seed(0)

    def step() -> None:
        x, y = make_batch(images, masks, torch.randperm(64, generator=generator)[:16])
        train_step(model, optimizer, x.contiguous(memory_format=path.memory_format), y, path.precision)

    for _ in range(2):
        step()
    with profile(activities=[ProfilerActivity.CPU], record_shapes=by_shape) as prof:
        for _ in range(steps):
            step()
    return prof.key_averages(group_by_input_shape=by_shape)


def bound(
    arch: str, path: StepPath, timed_steps: int, convolution_share: float, model_kwargs: dict[str, Any] | None = None
) -> dict[str, float]:
    """The speed-up over the reference that `path` has, and the most it could have with free non-convolutions.

    Step times are medians of unprofiled steps, the two paths interleaved and
    each in a process of its own as in `unetpp bench-train`; the convolutions' share of `path`'s step comes from
    the profile (it scales out the profiler's overhead, which falls mostly on
    the many small operators, so the bound errs high, not low).
    """
    reference, this = time_train_steps(arch, [reference_path(), path], torch.device("cpu"), timed_steps, 2, 16, 96,
                                       model_kwargs=model_kwargs, isolate=True)
    convolutions = this.median * convolution_share
    figures = {"reference_s_per_step": reference.median, "path_s_per_step": this.median,
               "convolution_share": convolution_share, "convolutions_s_per_step": convolutions,
               "speedup": reference.median / this.median,
               "speedup_if_only_convolutions": reference.median / convolutions}
    print(f"reference (fp32, NCHW) {reference.median:.3f} s/step, this path {this.median:.3f} s/step "
          f"(medians of {timed_steps} unprofiled steps, interleaved): {figures['speedup']:.2f}x. Its convolutions, "
          f"{convolution_share:.1%} of its profiled step, take {convolutions:.3f} s/step: with everything else "
          f"free, this path could reach at most {figures['speedup_if_only_convolutions']:.2f}x.")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="nested_unet")
    parser.add_argument("--block", choices=BLOCKS, default="vgg",
                        help="the unit of each node (`unetpp train --block`): vgg (the reference) or authors")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--layout", choices=("nchw", "channels_last"), default="channels_last")
    parser.add_argument("--steps", type=int, default=3, help="profiled steps (after 2 warm-up steps)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads [default: torch's]")
    parser.add_argument("--top", type=int, default=25, help="operators listed")
    parser.add_argument("--by-shape", action="store_true",
                        help="also list every convolution shape's time and GFLOP/s, forward and backward apart")
    parser.add_argument("--bound", action="store_true",
                        help="also time this path and the reference (fp32, NCHW) unprofiled, interleaved, and "
                             "print the most this path could gain on the reference if everything but its "
                             "convolutions took no time")
    parser.add_argument("--timed-steps", type=int, default=10,
                        help="--bound: unprofiled steps timed per path, interleaved (the medians are used)")
    parser.add_argument("--json", type=Path, default=None, help="also write per-operator and per-family seconds")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    # Profiled as `unetpp train` runs: freed memory kept (unetpp.allocator), or page faults land inside the
    # operators that allocate (above all the convolutions' backward).
    print(keep_freed_memory())
    path = StepPath(f"{args.layout}_{args.precision}", args.precision, args.layout == "channels_last",
                    keep_freed_memory=True)
    # Shapes are recorded in a separate pass: recording them slows the many small operators (concatenations,
    # copies) by far more than the few percent profiling costs otherwise, and would skew the families and the bound.
    model_kwargs = {"block": args.block}
    events = profiled_steps(args.arch, path, args.steps, by_shape=False, model_kwargs=model_kwargs)
    families: dict[str, float] = defaultdict(float)  # self CPU seconds per step
    for event in events:
        families[family(event.key)] += event.self_cpu_time_total / 1e6 / args.steps
    total = sum(families.values())
    print(f"{args.arch} ({args.block} block), {path.describe()}, {torch.get_num_threads()} thread(s), torch {torch.__version__}, "
          f"capability {torch.backends.cpu.get_cpu_capability()}: {total:.3f} s of self CPU time per "
          f"step (profiled)")
    print(events.table(sort_by="self_cpu_time_total", row_limit=args.top))
    print("| family | s/step | share |\n|---|---:|---:|")
    for label, seconds in sorted(families.items(), key=lambda item: -item[1]):
        print(f"| {label} | {seconds:.3f} | {seconds / total:.1%} |")
    result: dict[str, Any] = {
        "arch": args.arch, "block": args.block, "setup": path.describe(), "threads": torch.get_num_threads(), "steps": args.steps,
        "families_s_per_step": dict(families),
        "ops_s_per_step": {e.key: e.self_cpu_time_total / 1e6 / args.steps for e in events},
    }
    if args.by_shape:
        rows = conv_rows(profiled_steps(args.arch, path, args.steps, by_shape=True, model_kwargs=model_kwargs),
                         args.steps)
        print_conv_rows(rows)
        result["convolutions"] = rows
    if args.bound:
        convolution_share = sum(families[label] for label in CONV_FAMILIES) / total
        result["bound"] = bound(args.arch, path, args.timed_steps, convolution_share, model_kwargs)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
