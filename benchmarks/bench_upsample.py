"""The x2 bilinear upsampling (align_corners=True) of UNet++'s decoder, forward + backward (issue 11).

For every upsampling call of one UNet++ training step (the shapes the model really upsamples at batch 16,
96x96), times forward plus backward of the upsampling as the model uses it, its output concatenated after
the level's other inputs, channels_last, in the given dtype:

- `interpolate`: plain `F.interpolate`; the concatenation's backward hands it a channel slice of the
  gradient, a strided tensor, on which the backward kernel is slow;
- `Upsample2x`: the model's module (models/blocks.py), which makes that gradient contiguous first;
  bit-identical to `interpolate`;
- `matmul`: the same linear map as two small matrix products (rows, then columns) with the interpolation
  matrices; the values agree with `interpolate` up to rounding only (printed), so adopting it would change
  the training's numbers and need a new results run.

The concatenation alone is timed too and subtracted.

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
from unetpp.models.blocks import Upsample2x


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
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    cl = torch.channels_last
    module = Upsample2x()
    totals = {"concatenation alone": 0.0, "interpolate": 0.0, "Upsample2x": 0.0, "matmul": 0.0}
    worst = 0.0
    for n, c, s in shapes():
        base = torch.randn(n, c, s, s).to(dtype).contiguous(memory_format=cl)
        others = torch.randn(n, c, 2 * s, 2 * s).to(dtype).contiguous(memory_format=cl)
        grad = torch.randn(n, 2 * c, 2 * s, 2 * s).to(dtype).contiguous(memory_format=cl)
        matrix = interpolation_matrix(s, dtype)
        upsampled = F.interpolate(base, scale_factor=2, mode="bilinear", align_corners=True)
        ups: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
            "concatenation alone": lambda x, u=upsampled: u.detach().requires_grad_(True),
            "interpolate": lambda x: F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True),
            "Upsample2x": module,
            "matmul": lambda x, m=matrix: matmul_upsample(x, m, m),
        }
        for name, up in ups.items():
            x = base.clone().requires_grad_(True)

            def step(x: torch.Tensor = x, up: Callable[[torch.Tensor], torch.Tensor] = up) -> None:
                torch.cat([others, up(x)], dim=1).backward(grad)
                x.grad = None

            totals[name] += time_call(step, args.repeat)
        with torch.no_grad():
            reference = F.interpolate(base.float(), scale_factor=2, mode="bilinear", align_corners=True)
            worst = max(worst, float((matmul_upsample(base, matrix, matrix).float() - reference).abs().max()))
    print(f"{len(shapes())} upsamplings of one UNet++ step (batch {REFERENCE_BATCH_SIZE}), {args.dtype}, channels_last, "
          f"{args.threads} thread(s), torch {torch.__version__}, {torch.backends.cpu.get_cpu_capability()}; "
          f"forward + backward through the concatenation, median of {args.repeat}, concatenation subtracted")
    cat = totals.pop("concatenation alone")
    first = totals["interpolate"] - cat
    for name, seconds in totals.items():
        print(f"  {name:12} {(seconds - cat) * 1000:8.1f} ms  ({first / (seconds - cat):.2f}x)")
    print(f"  (the concatenation alone: {cat * 1000:.1f} ms; matmul against fp32 interpolate: largest difference "
          f"{worst:.3g})")


if __name__ == "__main__":
    main()
