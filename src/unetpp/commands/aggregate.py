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
    "--seed",
    "seeds",
    type=int,
    multiple=True,
    required=True,
    help="A training seed to include for every --arch (repeat: --seed 0 --seed 1); "
    "with several, metrics are the mean and sample sd over seeds.",
)
@click.option(
    "--models-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("models"),
    show_default=True,
    help="Folder holding <arch>/seed<seed>/history.csv and train.json from `unetpp train`.",
)
@click.option(
    "--results-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("results"),
    show_default=True,
    help="Folder holding <arch>/seed<seed>/metrics.json (and per_image.csv, read for the UNet++ vs U-Net "
    "comparisons) from `unetpp evaluate`.",
)
@click.option(
    "--content-sha256",
    default=None,
    help="The content digest the data was checked against (`unetpp fetch --content-sha256`, params.yaml's "
    "data.content_sha256). Only the DSB2018 stage1_train release's digest titles summary.md 'on DSB2018' and "
    "shows the published IoU beside ours; without it (or with `any` or another digest) neither appears.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for metrics.json, summary.md, curves.png, summary.html, headline.json and headline/ "
    "(written together, atomically).",
)
def aggregate(
    archs: tuple[str, ...],
    seeds: tuple[int, ...],
    models_dir: Path,
    results_dir: Path,
    content_sha256: str | None,
    out_dir: Path,
) -> None:
    """Collect every architecture and seed into metrics.json, summary.md and curves.png.

    Reads only <models-dir>/<arch>/seed<seed>/history.csv and train.json and
    <results-dir>/<arch>/seed<seed>/metrics.json for each --arch and --seed, and
    per_image.csv beside metrics.json for the archs of a comparison.
    metrics.json is {arch: {"mean": {metric: value}, "sd": {metric: value or
    null}, "seeds": {"0": {metric: value}}}} with the metrics iou_per_image,
    iou_pooled, iou_batch_pooled, dice_*, n_images, best_epoch, best_val_iou
    (and best_val_iou_<metric>), epochs_run, train_seconds, parameters; sd is
    the sample sd over seeds (null with one seed). `dvc metrics diff` shows them
    as unet.mean.iou_per_image etc. summary.md is a markdown table (mean ± sd)
    with the published IoU beside ours for the DSB2018 release (--content-sha256); curves.png plots loss and IoU per epoch,
    train and validation, one line per architecture and seed.

    With unet and nested_unet (or nested_unet_ds) among the --arch, both
    metrics.json ("comparisons": {"nested_unet_vs_unet": {"seeds": {"0": ...},
    "pooled": ...}} with mean_diff, ci95_low, ci95_high, n_images, resamples,
    bootstrap_seed) and summary.md also hold the mean per-image IoU difference
    with a 95% paired bootstrap interval over the images (10,000 resamples,
    seed 0); "pooled" averages each image's IoU over the seeds first. The ids
    of the per_image.csv files must agree.
    """
    from unetpp.evaluation.aggregate import run_aggregate

    written = run_aggregate(archs, seeds, models_dir, results_dir, out_dir, content_sha256)
    click.echo(
        f"aggregated {len(archs)} architecture(s) x {len(seeds)} seed(s): " + ", ".join(str(p) for p in written),
        err=True,
    )
