"""`unetpp aggregate`: options only; the work is in `unetpp.evaluation.aggregate`."""

from __future__ import annotations

from pathlib import Path

import click


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--arch",
    "archs",
    multiple=True,
    required=True,
    help="An architecture to include (repeat: --arch unet --arch nested_unet --arch nested_unet_ds); "
    "rows and curves follow this order.",
)
@click.option(
    "--models-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("models"),
    show_default=True,
    help="Folder holding <arch>/history.csv and <arch>/train.json from `unetpp train`.",
)
@click.option(
    "--results-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("results"),
    show_default=True,
    help="Folder holding <arch>/metrics.json from `unetpp evaluate`.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for metrics.json, summary.md and curves.png (written together, atomically).",
)
def aggregate(archs: tuple[str, ...], models_dir: Path, results_dir: Path, out_dir: Path) -> None:
    """Collect every architecture into metrics.json, summary.md and curves.png.

    Reads only <models-dir>/<arch>/history.csv, <models-dir>/<arch>/train.json
    and <results-dir>/<arch>/metrics.json for each --arch. metrics.json is
    {arch: {iou_per_image, iou_pooled, iou_batch_pooled, dice_*, n_images,
    best_epoch, best_val_iou, epochs_run, train_seconds, parameters}}, shown by
    `dvc metrics diff` as unet.iou_per_image etc. summary.md is a markdown
    table with the published IoU beside ours; curves.png plots loss and IoU per
    epoch, train and validation, for every architecture.
    """
    from unetpp.evaluation.aggregate import run_aggregate

    written = run_aggregate(archs, models_dir, results_dir, out_dir)
    click.echo(f"aggregated {len(archs)} architecture(s): " + ", ".join(str(p) for p in written), err=True)
