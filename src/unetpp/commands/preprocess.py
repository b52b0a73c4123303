"""`unetpp preprocess`: native-size HDF5 -> (N, S, S) arrays for training."""

from __future__ import annotations

from pathlib import Path

import click

from unetpp.choices import DEFAULT_IMAGE_SIZE
from unetpp.commands.options import progress_option


@click.command()
@click.option(
    "--in",
    "src",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Interim HDF5 written by `unetpp ingest` (e.g. data/interim/stage1_train.h5).",
)
@click.option(
    "--size",
    default=DEFAULT_IMAGE_SIZE,
    show_default=True,
    type=int,
    help="Output side length in pixels; a positive multiple of 16 (the networks pool 4 times).",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="HDF5 file to write (e.g. data/processed/dsb2018_96.h5); written atomically.",
)
@click.option(
    "--workers",
    default=2,
    show_default=True,
    type=click.IntRange(min=1),
    help="Processes resizing in parallel; 1 resizes in the main process.",
)
@progress_option
def preprocess(src: Path, size: int, out: Path, workers: int, progress: bool | None) -> None:
    """Resize images (anti-aliased) and masks (anti-aliased float, then >= 0.5) to SIZE x SIZE."""
    from unetpp.atomic import exit_on_sigterm
    from unetpp.data.preprocess import preprocess as run_preprocess
    from unetpp.data.preprocess import validate_size

    validate_size(size)
    with exit_on_sigterm():
        summary = run_preprocess(src, out, size=size, workers=workers, progress=progress)
    click.echo(f"wrote {summary.out}: {summary.n_images} images at {summary.size}x{summary.size}")
