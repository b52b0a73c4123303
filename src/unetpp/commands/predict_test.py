"""`unetpp predict-test`: options only; the work is in `unetpp.inference.test_set`."""

from __future__ import annotations

from pathlib import Path

import click

from unetpp.commands.options import (
    device_option,
    fit_mode_option,
    gpu_lease_dir_option,
    inference_output_option,
    max_pixels_option,
    model_option,
    precision_option,
    progress_option,
    verbose_option,
    training_size_option,
)
from unetpp.evaluation.instances import DEFAULT_METHOD, DEFAULT_MIN_DISTANCE, DEFAULT_MIN_SIZE
from unetpp.evaluation.instances import METHODS as INSTANCE_METHODS


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--raw",
    required=True,
    type=click.Path(path_type=Path),
    help="Test set in the Kaggle layout, zip or folder: <id>/images/<id>.png, masks optional "
    "(e.g. stage1_test_images.zip).",
)
@model_option
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="Folder to write (replaced as a whole): masks/<id>.png (0/255), labels/<id>.png (16-bit instance map), "
    "submission.csv, predict_test.json; with truth also per_image.csv and scores.json.",
)
@click.option(
    "--instances",
    type=click.Choice(INSTANCE_METHODS),
    default=DEFAULT_METHOD,
    show_default=True,
    help="cc: one nucleus per 4-connected component of the union mask. watershed: split components at the "
    "necks of their distance transform (touching nuclei become separate objects). The defaults scored best "
    "on the val images of stage1_train (docs/test-sets.md).",
)
@click.option(
    "--min-distance",
    type=click.IntRange(min=1),
    default=DEFAULT_MIN_DISTANCE,
    show_default=True,
    help="watershed only: least distance in pixels between two nucleus centres (peaks of the distance transform).",
)
@click.option(
    "--min-size",
    type=click.IntRange(min=0),
    default=DEFAULT_MIN_SIZE,
    show_default=True,
    help="Drop objects smaller than this many pixels (speckle; each would be a false positive).",
)
@click.option(
    "--truth",
    type=click.Path(path_type=Path),
    default=None,
    help="Answers to score against: a solution CSV (ImageId,EncodedPixels,Height,Width) or a Kaggle-layout set "
    "with masks. Default: the masks in --raw, if it has them; otherwise nothing is scored.",
)
@fit_mode_option
@training_size_option
@device_option
@gpu_lease_dir_option
@precision_option
@inference_output_option
@progress_option
@verbose_option
@max_pixels_option
def predict_test(
    raw: Path,
    model_path: Path,
    out_dir: Path,
    instances: str,
    min_distance: int,
    min_size: int,
    truth: Path | None,
    mode: str,
    size: int | None,
    device: str,
    gpu_lease_dir: Path | None,
    precision: str,
    inference_output: str,
    progress: bool | None,
    verbose: bool,
    max_pixels: int,
) -> None:
    """Segment every image of a test set into nuclei and write the Kaggle submission.

    For each image: the union mask (native size), an instance label map from it
    (connected components, or a distance-transform watershed), and its nuclei in
    submission.csv (ImageId,EncodedPixels; run-length encoded column-major,
    1-indexed 'start length' pairs; a row with empty EncodedPixels for an image
    without nuclei). Where truth exists, also the per-image IoU of the union mask
    and the competition metric (mean over IoU thresholds 0.50..0.95 of
    TP/(TP+FP+FN)), averaged over images. Choose --instances and its parameters
    on validation images (benchmarks/choose_instances.py), never on the test set.
    """
    from unetpp.allocator import keep_freed_memory
    from unetpp.inference.test_set import InstanceSettings, run_predict_test
    from unetpp.training.gpu_lease import lease_gpu

    allocator = keep_freed_memory()  # said after the summary: errors come first and alone
    device = lease_gpu(device, gpu_lease_dir).device  # held until the process ends

    result = run_predict_test(
        model_path,
        raw,
        out_dir,
        InstanceSettings(instances, min_distance, min_size),
        truth=truth,
        mode=mode,
        size=size,
        device=device,
        precision=precision,
        inference_output=inference_output,
        progress=progress,
        max_pixels=max_pixels,
    )
    line = f"wrote {result.n_images} image(s), {result.n_objects} nuclei to {out_dir} ({result.seconds:.1f} s)"
    if result.scores:
        line += f"; union IoU {result.scores['union_iou']:.4f}, competition metric {result.scores['competition']:.4f}"
    click.echo(line, err=True)
    if verbose:
        click.echo(allocator, err=True)
