"""Run the whole benchmark and present it: a text table for people, JSON for the record."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from typing import Any

import torch

from unetpp.allocator import keep_freed_memory
from unetpp.benchmarking.inference import INFERENCE_CASES, InferenceTiming, time_inference
from unetpp.benchmarking.peak import peak_table
from unetpp.benchmarking.paths import StepPath, default_path, reference_path, variant_paths
from unetpp.benchmarking.train_steps import StepTiming, time_train_steps
from unetpp.training.device import cpu_kernel_family, cpu_model, describe_device, resolve_precision


@dataclass(frozen=True)
class BenchSettings:
    archs: tuple[str, ...]
    steps: int
    warmup: int
    batch_size: int
    size: int
    threads: int
    seed: int = 0
    inference: bool = True
    model_kwargs: tuple[tuple[str, Any], ...] = ()  # tests shrink the models; empty for real figures
    variants: tuple[str, ...] = ()  # names from paths.variant_paths(), timed beside the two paths
    peak: bool = True  # also time a plain fp32 and bf16 GEMM


def load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def machine_info(device: torch.device, threads: int) -> dict[str, Any]:
    return {
        "device": describe_device(device),
        "cpu": cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_kernel_family": cpu_kernel_family(),
        "logical_cpus": os.cpu_count(),
        "torch_threads": threads,
        "torch_version": str(torch.__version__),
        "python": platform.python_version(),
    }


def train_entry(reference: StepTiming, default: StepTiming, variants: list[StepTiming]) -> dict[str, Any]:
    return {
        "arch": reference.arch,
        "gflop_per_step": reference.flops_per_step / 1e9,
        "reference": reference.as_dict(),
        "default": default.as_dict(),
        "speedup": reference.median / default.median,
        "variants": [{**v.as_dict(), "speedup": reference.median / v.median} for v in variants],
    }


def run_benchmark(settings: BenchSettings, device: torch.device, progress: bool | None = None) -> dict[str, Any]:
    """Time both paths for every arch (and inference), returning the JSON-ready result."""
    torch.set_num_threads(settings.threads)
    # This process resolves the default path's layout and times inference: set it up as `unetpp train` and
    # `unetpp predict` set up theirs. Each training path then runs in a process of its own (`isolate`).
    allocator = keep_freed_memory()
    model_kwargs = dict(settings.model_kwargs)
    extra = [variant_paths()[name] for name in settings.variants]
    load_before = load_average()
    peak = peak_table(device) if settings.peak else {}
    train = []
    described: dict[str, str] = {}
    for arch in settings.archs:
        # The default path's layout may differ per arch (it is measured per arch, as `unetpp train` does).
        paths = [reference_path(), default_path(device, arch, settings.batch_size, settings.size, settings.threads,
                                                model_kwargs, progress)]
        described.update({p.name: p.describe() for p in paths + extra})
        described[f"default ({arch})"] = paths[1].describe()
        reference, default, *variants = time_train_steps(
            arch, paths + extra, device, settings.steps, settings.warmup, settings.batch_size, settings.size,
            settings.seed, model_kwargs, progress, isolate=True,
        )
        train.append(train_entry(reference, default, variants))
    inference: list[InferenceTiming] = []
    if settings.inference:
        inference = time_inference(
            INFERENCE_CASES, StepPath("default", resolve_precision("auto", device), True), device, settings.steps, settings.warmup, settings.batch_size,
            settings.size, settings.seed, model_kwargs, progress,
        )
    return {
        "machine": {**machine_info(device, settings.threads), "allocator": allocator},
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "settings": {
            "archs": list(settings.archs), "steps": settings.steps, "warmup": settings.warmup,
            "batch_size": settings.batch_size, "size": settings.size, "threads": settings.threads,
            "seed": settings.seed, "model_kwargs": model_kwargs,
        },
        "paths": described,
        "gemm_gflops": peak,
        "train": train,
        "inference": [r.as_dict() for r in inference],
    }


def format_report(result: dict[str, Any]) -> str:
    """Plain-text tables (Markdown-compatible) of a `run_benchmark` result."""
    m, s = result["machine"], result["settings"]
    lines = [
        f"{m['cpu']} ({m['cpu_capability']}), {m['torch_threads']} torch threads, torch {m['torch_version']}, "
        f"{m['device']}; load average before/after: {result['load_average_before']} / "
        f"{result['load_average_after']}",
        f"training step: batch {s['batch_size']}, {s['size']}x{s['size']}, median of {s['steps']} steps after "
        f"{s['warmup']} warm-up; paths interleaved step by step, each in a process of its own",
        f"this process (layout choice, inference) and the default path: {m['allocator']}",
        f"reference path: {result['paths']['reference']}; default path (`unetpp train`): "
        + "; ".join(f"{arch} {result['paths'][f'default ({arch})']}" for arch in s["archs"]),
    ]
    if result.get("gemm_gflops"):
        rates = ", ".join(f"{k} {v:.1f} GFLOP/s" for k, v in result["gemm_gflops"].items())
        lines.append(f"plain 1024x1024 GEMM: {rates}")
    lines += [
        "",
        "| arch | GFLOP/step | reference s/step | reference GFLOP/s | default s/step | default GFLOP/s | speed-up |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["train"]:
        ref, dflt = row["reference"], row["default"]
        lines.append(
            f"| {row['arch']} | {row['gflop_per_step']:.1f} | {ref['median_step_s']:.3f} | {ref['gflops_per_s']:.1f} "
            f"| {dflt['median_step_s']:.3f} | {dflt['gflops_per_s']:.1f} | {row['speedup']:.2f}x |"
        )
    variant_rows = [(row["arch"], v) for row in result["train"] for v in row.get("variants", [])]
    if variant_rows:
        lines += ["", "| arch | variant (--also) | set-up | s/step | GFLOP/s | speed-up vs reference |",
                  "|---|---|---|---:|---:|---:|"]
        for arch, v in variant_rows:
            lines.append(f"| {arch} | {v['path']} | {v['setup']} | {v['median_step_s']:.3f} | {v['gflops_per_s']:.1f} "
                         f"| {v['speedup']:.2f}x |")
    if result["inference"]:
        lines += [
            "",
            "inference (default path, `predict_batch`, eval mode):",
            "",
            "| model | output | GFLOP/image | images/s | GFLOP/s |",
            "|---|---|---:|---:|---:|",
        ]
        for row in result["inference"]:
            lines.append(
                f"| {row['arch']} | {row['output']} | {row['gflop_per_image']:.2f} | {row['images_per_s']:.1f} "
                f"| {row['gflops_per_s']:.1f} |"
            )
    return "\n".join(lines)
