"""The x2 bilinear upsampling (align_corners=True) of UNet++'s decoder, forward + backward, four ways (issue 11).

In bf16 the upsampling's backward costs as much as in fp32 while the convolutions got 2.4x faster (README,
"Where a step goes"). This times, for every upsampling call of one UNet++ training step (the shapes the
model really upsamples at batch 16, 96x96), forward plus backward of:

- `interpolate`, channels_last (what training runs), in the given dtype;
- `interpolate`, NCHW;
- `matmul`: the same linear map as two small matrix products (rows, then columns) with the interpolation
  matrices, which a GEMM library runs at its bf16 speed; the values agree with `interpolate` up to rounding
  (printed), so adopting it would change the training's numbers and need a new results run.

    python benchmarks/bench_upsample.py --dtype bf16 --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from unetpp.choices import DEFAULT_FILTERS, DEFAULT_IMAGE_SIZE, REFERENCE_BATCH_SIZE


def interpolation_matrix(n: int, dtype: torch.dtype) -> torch.Tensor:
    """(2n, n) weights of align_corners=True linear interpolation from n to 2n samples."""
    out = 2 * n
    position = torch.arange(out, dtype=torch.float64) * (n - 1) / max(out - 1, 1)
    low = position.floor().long().clamp(max=n - 1)
    high = (low + 1).clamp(max=n - 1)
    frac = position - low
    matrix = torch.zeros(out, n, dtype=torch.float64)
    matrix[torch.arange(out), low] += 1 - frac
    matrix[torch.arange(out), high] += frac
    return matrix.to(dtype)


def matmul_upsample(x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    return rows @ x @ cols.T


def shapes() -> list[tuple[int, int, int]]:
    """(channels, side) of each upsampling in one UNet++ forward: node X(i,j) upsamples X(i+1, j-1)."""
    found = []
    depth = len(DEFAULT_FILTERS) - 1
    for j in range(1, depth + 1):
        for i in range(0, depth + 1 - j):
            level = i + 1
            found.append((DEFAULT_FILTERS[level], DEFAULT_IMAGE_SIZE >> level))
    return [(REFERENCE_BATCH_SIZE, c, s) for c, s in found]


def time_call(fn: Callable[[], None], repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dtype", choices=("fp32", "bf16"), default="bf16")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    totals = {"interpolate channels_last": 0.0, "interpolate NCHW": 0.0, "matmul": 0.0}
    worst = 0.0
    for n, c, s in shapes():
        base = torch.randn(n, c, s, s).to(dtype)
        grad = torch.randn(n, c, 2 * s, 2 * s).to(dtype)
        rows, cols = interpolation_matrix(s, dtype), interpolation_matrix(s, dtype)
        for name in totals:
            x = base.contiguous(memory_format=torch.channels_last) if "channels_last" in name else base.clone()
            x.requires_grad_(True)

            def step(x=x, name=name) -> None:
                if name == "matmul":
                    y = matmul_upsample(x, rows, cols)
                else:
                    y = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
                y.backward(grad.contiguous(memory_format=torch.channels_last) if "channels_last" in name else grad)
                x.grad = None

            totals[name] += time_call(step, args.repeat)
        with torch.no_grad():
            reference = F.interpolate(base.float(), scale_factor=2, mode="bilinear", align_corners=True)
            worst = max(worst, float((matmul_upsample(base, rows, cols).float() - reference).abs().max()))
    print(f"{len(shapes())} upsamplings of one UNet++ step (batch {REFERENCE_BATCH_SIZE}), {args.dtype}, "
          f"{args.threads} thread(s), torch {torch.__version__}, {torch.backends.cpu.get_cpu_capability()}; "
          f"forward + backward, median of {args.repeat}")
    first = totals["interpolate channels_last"]
    for name, seconds in totals.items():
        print(f"  {name:26} {seconds * 1000:8.1f} ms  ({first / seconds:.2f}x)")
    print(f"  matmul against fp32 interpolate: largest difference {worst:.3g}")


if __name__ == "__main__":
    main()
