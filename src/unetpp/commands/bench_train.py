"""`unetpp bench-train`: training-step and inference speed, reference path vs the path `unetpp train` runs."""

from __future__ import annotations

import json
from pathlib import Path

import click

from unetpp.choices import ARCHITECTURES, BENCH_VARIANTS, DEFAULT_IMAGE_SIZE
from unetpp.commands.options import device_option
from unetpp.errors import UnetppError
from unetpp.training.config import TrainConfig

MIN_STEPS = 10


@click.command("bench-train")
@click.option("--arch", "archs", multiple=True, type=click.Choice(list(ARCHITECTURES)),
              help="Architecture to time; repeat for several [default: all three].")
@click.option("--steps", type=click.IntRange(min=1), default=MIN_STEPS, show_default=True,
              help=f"Timed training steps per path (the median is reported); at least {MIN_STEPS}.")
@click.option("--warmup", type=click.IntRange(min=0), default=2, show_default=True,
              help="Untimed steps per path first (allocator, oneDNN kernel choice).")
@click.option("--batch-size", type=click.IntRange(min=1), default=TrainConfig.batch_size, show_default=True,
              help="Images per step.")
@click.option("--size", type=int, default=DEFAULT_IMAGE_SIZE, show_default=True,
              help="Image side in pixels; a multiple of 16 (the networks pool four times).")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="torch CPU threads [default: all cores available, as `unetpp train` uses].")
@device_option
@click.option("--inference/--no-inference", default=True, show_default=True,
              help="Also time inference (U-Net; UNet++ with deep supervision at L1..L4).")
@click.option("--peak/--no-peak", default=True, show_default=True,
              help="Also time a plain fp32 and bf16 1024x1024 matmul: a yardstick per precision (shows whether bf16 "
                   "is native here).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write every measurement (all step times, machine, settings) to this JSON file.")
@click.option("--also", "variants", multiple=True, type=click.Choice(BENCH_VARIANTS),
              help="Also time this set-up, interleaved with the two paths (repeatable): channels_last_fp32 = "
                   "fp32 in channels_last whatever the layout choice; *_bf16 = bf16 autocast (very slow where "
                   "the CPU has no native bf16); *_kept = with the default path's allocator setting "
                   "(nchw_fp32_kept: what keeping freed memory alone is worth to the reference).")
@click.option("--allow-few-steps", is_flag=True, default=False,
              help=f"Accept --steps below {MIN_STEPS} (smoke tests only: such medians are not benchmark figures).")
@click.option("--progress/--no-progress", default=None,
              help="Show progress bars [default: only when stderr is a terminal].")
def bench_train(
    archs: tuple[str, ...],
    steps: int,
    warmup: int,
    batch_size: int,
    size: int,
    threads: int | None,
    device: str,
    inference: bool,
    peak: bool,
    json_out: Path | None,
    variants: tuple[str, ...],
    allow_few_steps: bool,
    progress: bool | None,
) -> None:
    """Median training-step time of the reference path (fp32, eager, NCHW) and of the default path
    (exactly what `unetpp train --precision auto` runs), their ratio and achieved GFLOP/s; then
    inference images/s. The two paths' steps are interleaved so machine load affects both alike; each
    path runs in a process of its own, so that the default path can keep freed memory as `unetpp train`
    does (unetpp.allocator) while the reference runs with the C library's defaults, as the original code does.
    """
    if steps < MIN_STEPS and not allow_few_steps:
        raise UnetppError(
            f"--steps {steps} is too few for a median: use --steps {MIN_STEPS} or more "
            f"(or add --allow-few-steps for a smoke test)"
        )
    if size < 16 or size % 16:
        raise UnetppError(f"--size {size} must be a positive multiple of 16 (the networks halve it four times)")

    from unetpp.atomic import atomic_path
    from unetpp.benchmarking.report import BenchSettings, format_report, run_benchmark
    from unetpp.training.device import default_num_threads, resolve_device

    settings = BenchSettings(
        archs=archs or tuple(ARCHITECTURES), steps=steps, warmup=warmup, batch_size=batch_size, size=size,
        threads=threads or default_num_threads(), inference=inference, variants=variants, peak=peak,
    )
    result = run_benchmark(settings, resolve_device(device), progress=progress)
    click.echo(format_report(result))
    if json_out is not None:
        with atomic_path(json_out) as tmp:
            tmp.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
