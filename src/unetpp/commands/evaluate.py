"""`unetpp evaluate`: options only; the work is in `unetpp.evaluation.evaluate`."""

from __future__ import annotations

from pathlib import Path

import click

from unetpp.choices import REFERENCE_BATCH_SIZE, SUBSETS


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--pred",
    "pred_path",
    required=True,
    type=click.Path(path_type=Path),
    help="predictions.h5 written by `unetpp predict`.",
)
@click.option(
    "--data",
    "data_path",
    required=True,
    type=click.Path(path_type=Path),
    help="Processed HDF5 holding the ground-truth masks (data/processed/dsb2018_96.h5).",
)
@click.option(
    "--split",
    "split_path",
    required=True,
    type=click.Path(path_type=Path),
    help="split.json; the predictions must list exactly this subset's ids, in its order.",
)
@click.option(
    "--subset",
    type=click.Choice(SUBSETS),
    default="val",
    show_default=True,
    help="Which subset the predictions cover.",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    help="Output JSON: n_images, iou_/dice_ per_image, pooled and batch_pooled.",
)
@click.option(
    "--per-image",
    type=click.Path(path_type=Path),
    default=None,
    help="Optional CSV, one row per image: id, iou, dice, intersection, union, pred_pixels, mask_pixels.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=REFERENCE_BATCH_SIZE,
    show_default=True,
    help=f"Batch size of the batch_pooled reduction ({REFERENCE_BATCH_SIZE} is the reference's validation batch).",
)
@click.option(
    "--interim",
    type=click.Path(path_type=Path),
    default=None,
    help="The ingest output the processed data came from (data/interim/stage1_train.h5). Also scores each "
    "prediction at its image's native size: resized back bilinearly (as predict-test does), thresholded at 0.5, "
    "against the native union mask. Adds iou_native_*/dice_native_* to --out and native_* columns "
    "to --per-image: figures comparable across training sizes. Also tells each image's kind from its pixels "
    "(fluorescence, brightfield or colour; an image_kind column) and adds each kind's mean native per-image IoU "
    "and image count (iou_native_per_image_<kind>, n_images_<kind>) to --out.",
)
def evaluate(
    pred_path: Path,
    data_path: Path,
    split_path: Path,
    subset: str,
    out: Path,
    per_image: Path | None,
    batch_size: int,
    interim: Path | None,
) -> None:
    """Score predictions at threshold 0.5: IoU and Dice, per image, pooled and batch-pooled.

    per_image is the mean of each image's score; pooled sums intersections and
    unions over the whole subset; batch_pooled pools within consecutive batches
    of --batch-size in split order and averages them weighted by batch size
    (how the reference reports validation IoU). An image whose prediction and
    mask are both empty scores 1.0.
    """
    from unetpp.data.image_kind import IMAGE_KINDS, kind_keys
    from unetpp.evaluation.evaluate import run_evaluate

    summary = run_evaluate(pred_path, data_path, split_path, subset, out, per_image, batch_size, interim)
    native = ""
    if interim is not None:
        by_kind = ", ".join(
            f"{kind} {summary[mean_key]:.4f} ({summary[n_key]})"
            for kind in IMAGE_KINDS
            for mean_key, n_key in [kind_keys(kind)]
            if n_key in summary
        )
        native = f"; native size IoU per_image {summary['iou_native_per_image']:.4f} ({by_kind})"
    click.echo(
        f"{summary['n_images']} {subset} images: IoU per_image {summary['iou_per_image']:.4f}, pooled "
        f"{summary['iou_pooled']:.4f}, batch_pooled {summary['iou_batch_pooled']:.4f}; Dice per_image "
        f"{summary['dice_per_image']:.4f}{native} -> {out}",
        err=True,
    )
