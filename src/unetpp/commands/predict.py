"""`unetpp predict`: options only; the work is in `unetpp.inference.predict`."""

from __future__ import annotations

from pathlib import Path

import click

from unetpp.choices import DEFAULT_PREDICT_BATCH_SIZE, SUBSETS
from unetpp.commands.options import (
    device_option,
    gpu_lease_dir_option,
    inference_output_option,
    model_option,
    precision_option,
    progress_option,
    verbose_option,
)

def split_ids(value: str | None) -> list[str] | None:
    """'a,b, c' -> ['a', 'b', 'c']; None or blank -> None."""
    if value is None or not value.strip():
        return None
    return [part.strip() for part in value.split(",") if part.strip()]


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@model_option
@click.option(
    "--data",
    "data_path",
    required=True,
    type=click.Path(path_type=Path),
    help="Processed HDF5 written by `unetpp preprocess` (data/processed/dsb2018_96.h5).",
)
@click.option(
    "--split",
    "split_path",
    required=True,
    type=click.Path(path_type=Path),
    help="split.json written by `unetpp split`.",
)
@click.option(
    "--subset",
    type=click.Choice(SUBSETS),
    default="val",
    show_default=True,
    help="Which subset of the split to predict; rows follow the split's order.",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    help="Output HDF5: `probabilities` (N,S,S) float16 and `ids` (N,).",
)
@click.option(
    "--figure",
    type=click.Path(path_type=Path),
    default=None,
    help="Optional PNG: rows = sample images, columns = image / ground truth / prediction, with IoU.",
)
@click.option(
    "--figure-ids",
    default=None,
    help="Comma-separated ids to draw in --figure (default: the first --figure-count ids of the subset, sorted).",
)
@click.option(
    "--figure-count",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="How many images the figure shows when --figure-ids is not given.",
)
@device_option
@gpu_lease_dir_option
@precision_option
@click.option(
    "--batch-size", type=click.IntRange(min=1), default=DEFAULT_PREDICT_BATCH_SIZE, show_default=True,
    help="Images per forward pass: memory and speed, not results (the probabilities change only by rounding)."
)
@inference_output_option
@progress_option
@verbose_option
def predict(
    model_path: Path,
    data_path: Path,
    split_path: Path,
    subset: str,
    out: Path,
    figure: Path | None,
    figure_ids: str | None,
    figure_count: int,
    device: str,
    gpu_lease_dir: Path | None,
    precision: str,
    batch_size: int,
    inference_output: str,
    progress: bool | None,
    verbose: bool,
) -> None:
    """Predict foreground probabilities for one split subset and draw a sample figure.

    Writes --out atomically (and --figure, if given); on any error neither is written.
    """
    from unetpp.allocator import keep_freed_memory
    from unetpp.inference.predict import run_predict
    from unetpp.training.gpu_lease import lease_gpu

    allocator = keep_freed_memory()  # said after the summary: errors come first and alone
    device = lease_gpu(device, gpu_lease_dir).device  # held until the process ends

    result = run_predict(
        model_path,
        data_path,
        split_path,
        subset,
        out,
        figure=figure,
        figure_ids=split_ids(figure_ids),
        figure_count=figure_count,
        device=device,
        precision=precision,
        batch_size=batch_size,
        inference_output=inference_output,
        progress=progress,
    )
    click.echo(
        f"predicted {result.n_images} {subset} images ({result.size}x{result.size}) with {result.arch} on "
        f"{result.device} ({result.precision}) -> {out}" + (f", figure {figure}" if figure else ""),
        err=True,
    )
    if verbose:
        click.echo(allocator, err=True)
