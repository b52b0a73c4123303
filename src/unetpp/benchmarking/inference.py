"""Inference throughput (images/s) through the code `unetpp predict` runs (`predict_batch`)."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any

import torch
from tqdm import tqdm

from unetpp.benchmarking.paths import StepPath, build_for_path
from unetpp.training.step_timing import synchronize, synthetic_batch_source
from unetpp.inference.predictor import predict_batch
from unetpp.models import NestedUNet, UNet, output_forward
from unetpp.models.flops import count_forward_flops

# (arch, inference output) pairs the issue asks about: U-Net and the pruned UNet++ levels.
INFERENCE_CASES: tuple[tuple[str, str], ...] = (
    ("unet", "last"),
    ("nested_unet_ds", "L1"),
    ("nested_unet_ds", "L2"),
    ("nested_unet_ds", "L3"),
    ("nested_unet_ds", "L4"),
)


@dataclass
class InferenceTiming:
    arch: str
    output: str
    batch_size: int
    times: list[float]
    flops_per_image: int

    @property
    def images_per_s(self) -> float:
        return self.batch_size / statistics.median(self.times)

    @property
    def gflops_per_s(self) -> float:
        return self.flops_per_image * self.images_per_s / 1e9

    def as_dict(self) -> dict[str, Any]:
        return {
            "arch": self.arch,
            "output": self.output,
            "batch_size": self.batch_size,
            "median_batch_s": statistics.median(self.times),
            "images_per_s": self.images_per_s,
            "gflop_per_image": self.flops_per_image / 1e9,
            "gflops_per_s": self.gflops_per_s,
        }


def time_inference(
    cases: tuple[tuple[str, str], ...],
    path: StepPath,
    device: torch.device,
    batches: int,
    warmup: int,
    batch_size: int,
    size: int,
    seed: int = 0,
    model_kwargs: dict[str, Any] | None = None,
    progress: bool | None = None,
) -> list[InferenceTiming]:
    """Median batch time of eval-mode prediction for each (arch, output), one model per arch."""
    images, _ = synthetic_batch_source(batch_size, size, seed)
    array = images.numpy()
    results = []
    models: dict[str, UNet | NestedUNet] = {}
    with tqdm(total=len(cases) * (warmup + batches), desc="inference", unit="batch", leave=False,
              disable=None if progress is None else not progress) as bar:
        for arch, output in cases:
            if arch not in models:
                models[arch] = build_for_path(arch, path, device, seed, model_kwargs)[0].eval()
            model = models[arch]
            forward = output_forward(model, output)
            flops = count_forward_flops(model, (1, model.in_channels, size, size), output)
            times = []
            for k in range(warmup + batches):
                synchronize(device)
                start = time.perf_counter()
                predict_batch(forward, array, device, path.precision)
                synchronize(device)
                if k >= warmup:
                    times.append(time.perf_counter() - start)
                bar.update(1)
            results.append(InferenceTiming(arch, output, batch_size, times, flops))
    return results
