"""The authors' block's dropout on the CPU: nn.Dropout(0.5) against HalfDropout, in whole training steps.

`unetpp train --block authors` drops out after every convolution. nn.Dropout
draws one coin per element (`bernoulli_`); HalfDropout (models/dropout.py)
draws 64 per generator call. This times training steps of one architecture
with the authors' block as `unetpp train` runs them (batch 16, 96x96, its
optimizer, bf16 autocast or fp32, channels_last), once with every HalfDropout
swapped for nn.Dropout(0.5) and once as built, interleaved step by step, and
prints the medians and their ratio. Also the two alone on the largest
dropout input (batch 16, 32 channels, 96x96), forward only.

    python benchmarks/bench_dropout.py --arch nested_unet --precision bf16 --threads 2

Run it on a quiet machine (pause any training: kill -STOP / -CONT).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from unetpp.choices import ARCHITECTURES
from unetpp.models.dropout import HalfDropout
from unetpp.training.device import cpu_kernel_family
from unetpp.training.step_timing import TimedSteps, interleaved_times


def with_nn_dropout(model: nn.Module) -> int:
    """Swap every HalfDropout of `model` for nn.Dropout(0.5) in place; returns how many."""
    swapped = 0
    for module in model.modules():
        for name, child in module.named_children():
            if isinstance(child, HalfDropout):
                setattr(module, name, nn.Dropout(0.5))
                swapped += 1
    return swapped


def forward_ms(dropout: nn.Module, x: torch.Tensor, repeats: int = 10) -> float:
    dropout.train()
    dropout(x)
    start = time.perf_counter()
    for _ in range(repeats):
        dropout(x)
    return (time.perf_counter() - start) / repeats * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", choices=list(ARCHITECTURES), default="nested_unet")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="bf16")
    parser.add_argument("--steps", type=int, default=8, help="timed steps per variant, after 2 warm-up steps")
    parser.add_argument("--threads", type=int, default=None, help="torch threads [default: torch's]")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cpu = torch.device("cpu")
    runners = [TimedSteps(args.arch, cpu, args.precision, torch.channels_last, args.steps + 2, 16, 96,
                          model_kwargs={"block": "authors"}) for _ in range(2)]
    swapped = with_nn_dropout(runners[0].model)
    times = interleaved_times(runners, args.steps, 2, f"{args.arch} authors' block steps")
    nn_step, half_step = (statistics.median(t) for t in times)
    dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32
    x = torch.randn(16, 32, 96, 96).to(dtype).contiguous(memory_format=torch.channels_last)
    nn_alone, half_alone = forward_ms(nn.Dropout(0.5), x), forward_ms(HalfDropout(), x)
    figures = {
        "arch": args.arch, "precision": args.precision, "threads": torch.get_num_threads(),
        "kernel_family": cpu_kernel_family(), "torch": torch.__version__, "dropouts": swapped,
        "nn_dropout_s_per_step": nn_step, "half_dropout_s_per_step": half_step, "step_speedup": nn_step / half_step,
        "nn_dropout_forward_ms": nn_alone, "half_dropout_forward_ms": half_alone,
    }
    print(f"{args.arch}, authors' block ({swapped} dropouts), {args.precision}, channels_last, "
          f"{torch.get_num_threads()} thread(s), kernel family {figures['kernel_family']}, torch {torch.__version__}")
    print(f"training step, median of {args.steps} interleaved: nn.Dropout {nn_step:.3f} s, HalfDropout "
          f"{half_step:.3f} s: {nn_step / half_step:.2f}x")
    print(f"one dropout forward on {tuple(x.shape)}: nn.Dropout {nn_alone:.1f} ms, HalfDropout {half_alone:.1f} ms: "
          f"{nn_alone / half_alone:.2f}x")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
