"""`unetpp ingest`: raw stage1_train zip or folder -> native-size HDF5."""

from __future__ import annotations

from pathlib import Path

import click

from unetpp.commands.options import max_pixels_option, progress_option
from unetpp.data.raw import DEFAULT_MAX_UNPACKED_MB


@click.command()
@click.option(
    "--raw",
    "raw",
    required=True,
    type=click.Path(path_type=Path),
    help="The Kaggle stage1_train.zip or its unpacked folder (<id>/images/<id>.png, <id>/masks/*.png); "
    "a single wrapping stage1_train/ folder is accepted.",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="HDF5 file to write (e.g. data/interim/stage1_train.h5); written to a temporary file and renamed at the end.",
)
@click.option(
    "--max-unpacked-mb",
    default=DEFAULT_MAX_UNPACKED_MB,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Refuse a zip whose declared uncompressed size is above this many MB (zip-bomb guard; the real zip is ~89 MB).",
)
@click.option(
    "--workers",
    default=2,
    show_default=True,
    type=click.IntRange(min=1),
    help="Processes decoding PNGs in parallel; 1 decodes in the main process.",
)
@click.option(
    "--verified",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="The record of `unetpp fetch` (e.g. data/raw/stage1_train.verified.json): refuse data whose content "
    "digest is no longer the one checked there. The workflows always pass it.",
)
@max_pixels_option
@progress_option
def ingest(
    raw: Path,
    out: Path,
    max_unpacked_mb: float,
    workers: int,
    verified: Path | None,
    max_pixels: int,
    progress: bool | None,
) -> None:
    """Read every image, its union mask and its instance label map into one HDF5, ids sorted."""
    from unetpp.atomic import exit_on_sigterm
    from unetpp.data.ingest import ingest as run_ingest

    with exit_on_sigterm():
        summary = run_ingest(
            raw,
            out,
            max_unpacked_mb=max_unpacked_mb,
            workers=workers,
            verified=verified,
            max_pixels=max_pixels,
            progress=progress,
        )
    click.echo(f"wrote {summary.out}: {summary.n_images} images, {summary.n_nuclei} nuclei")
