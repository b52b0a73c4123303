"""Does the model compile cleanly with torch.compile, and does it pay? (issue 11, item 4)

Runs the real training and validation steps (`training/step.py`) through two epochs of the pattern
`unetpp train` produces: full batches, a short last training batch, then validation in eval mode with its
own short last batch. `forward_heads` (training) and `forward` (validation) are compiled separately, as
`nn.Module.compile()` would only compile `forward`, which training does not call. Prints every
recompilation with the guard that failed, and the median steady-state training step, eager and compiled,
measured in the same process (second epoch, full batches only). Optionally profiles the compiled step.

    python benchmarks/compile_check.py --arch nested_unet --precision bf16 --threads 2
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time

import torch

from unetpp.models import build_model
from unetpp.training.step import eval_step, train_step


class RecompileLog(logging.Handler):
    """Collects dynamo's recompilation messages (TORCH_LOGS=recompiles, set through torch._logging)."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def batch(n: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.rand(n, 3, size, size).contiguous(memory_format=torch.channels_last)
    return x, (torch.rand(n, 1, size, size) > 0.8).float()


def two_epochs(
    arch: str, compiled: bool, precision: str, size: int, steps: int, dynamic: bool | None = None
) -> tuple[list[float], float]:
    """(steady training step times, total seconds including compilation)."""
    torch.manual_seed(0)
    model = build_model(arch).to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), 3e-4)
    if compiled:
        model.forward_heads = torch.compile(model.forward_heads, dynamic=dynamic)
        model.forward = torch.compile(model.forward, dynamic=dynamic)
    start, steady = time.perf_counter(), []
    for epoch in range(2):
        model.train()
        for n in [16] * steps + [8]:
            t = time.perf_counter()
            train_step(model, optimizer, *batch(n, size), precision)
            if epoch == 1 and n == 16:
                steady.append(time.perf_counter() - t)
        model.eval()
        for n in (16, 6):
            eval_step(model, *batch(n, size), precision)
    return steady, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="nested_unet")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--steps", type=int, default=4, help="full training batches per epoch")
    parser.add_argument("--static", action="store_true",
                        help="torch.compile(dynamic=False): one graph per batch size instead of a dynamic one")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch._logging.set_logs(recompiles=True)
    handler = RecompileLog()
    logging.getLogger("torch._dynamo").addHandler(handler)

    eager, eager_total = two_epochs(args.arch, False, args.precision, args.size, args.steps)
    compiled, compiled_total = two_epochs(args.arch, True, args.precision, args.size, args.steps,
                                          False if args.static else None)
    reasons = [line.strip() for m in handler.messages for line in m.splitlines() if line.strip().startswith("- ")]
    breaks = sum(torch._dynamo.utils.counters["graph_break"].values())
    print(f"{args.arch}, {args.precision}, {'static' if args.static else 'default (dynamic after a new shape)'} "
          f"shapes, {args.threads} thread(s), torch {torch.__version__}, "
          f"{torch.backends.cpu.get_cpu_capability()}")
    print(f"graph breaks: {breaks}; recompilations: {len(reasons)}")
    for reason in reasons:
        print(f"  {reason}")
    e, c = statistics.median(eager), statistics.median(compiled)
    print(f"steady training step: eager {e:.3f} s, compiled {c:.3f} s ({e / c:.2f}x); "
          f"two epochs incl. compilation: eager {eager_total:.0f} s, compiled {compiled_total:.0f} s")


if __name__ == "__main__":
    main()
