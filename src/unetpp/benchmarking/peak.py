"""Matrix-multiply throughput in fp32 and bf16: a yardstick for the training step's GFLOP/s.

A training step is almost all convolutions, i.e. GEMM-like work, so the GEMM
rate of each precision tells whether bf16 autocast can pay off on this
machine (it does only where the hardware has native bf16). A 1024 GEMM is
a yardstick, not the peak: larger or better-blocked work can exceed it.
"""

from __future__ import annotations

import statistics
import time

import torch

from unetpp.training.step_timing import synchronize


def gemm_gflops(dtype: torch.dtype, device: torch.device, n: int = 1024, repeats: int = 5) -> float:
    """Median GFLOP/s of an n x n by n x n matmul (2 n^3 FLOPs) after one warm-up call."""
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=generator).to(device=device, dtype=dtype)
    b = torch.randn(n, n, generator=generator).to(device=device, dtype=dtype)
    times = []
    for k in range(repeats + 1):
        synchronize(device)
        start = time.perf_counter()
        torch.mm(a, b)
        synchronize(device)
        if k:
            times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times) / 1e9


def peak_table(device: torch.device, n: int = 1024) -> dict[str, float]:
    return {"fp32": gemm_gflops(torch.float32, device, n), "bf16": gemm_gflops(torch.bfloat16, device, n)}
