"""`unetpp predict-images`: options only; the work is in `unetpp.inference.predict_images`."""

from __future__ import annotations

from pathlib import Path

import click

from unetpp.commands.options import (
    device_option,
    fit_mode_option,
    inference_output_option,
    max_pixels_option,
    model_option,
    precision_option,
    progress_option,
    verbose_option,
    training_size_option,
)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@model_option
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="Folder for the masks, one <stem>_mask.png (0/255 uint8) per input; created if needed.",
)
@fit_mode_option
@training_size_option
@device_option
@precision_option
@inference_output_option
@progress_option
@verbose_option
@max_pixels_option
def predict_images(
    inputs: tuple[Path, ...],
    model_path: Path,
    out_dir: Path,
    mode: str,
    size: int | None,
    device: str,
    precision: str,
    inference_output: str,
    progress: bool | None,
    verbose: bool,
    max_pixels: int,
) -> None:
    """Write a binary PNG mask for each new image, the same size as the image.

    INPUTS are image files or folders (every .png/.tif/.tiff/.jpg/.jpeg file in
    a folder, not recursive). Images may have any size and 1 (grey), 2 (grey +
    alpha), 3 (RGB) or 4 (RGBA) channels, 8 or 16 bits; they are converted to
    RGB uint8 exactly as `unetpp ingest` converts the training images. The
    default --mode resize maps each image to the training size and the
    prediction back, because the model was trained on images shrunk to that
    size (on the DSB val images at native size a small U-Net scored mean IoU
    0.79 with resize, 0.61 with pad); --mode pad keeps native resolution
    instead, for images already at the training scale. Every input is decoded
    before the model runs, so an unreadable image stops the command before any
    mask is written; each mask is written atomically.
    """
    from unetpp.allocator import keep_freed_memory
    from unetpp.inference.predict_images import run_predict_images

    allocator = keep_freed_memory()  # said after the summary: errors come first and alone

    result = run_predict_images(
        model_path,
        inputs,
        out_dir,
        mode=mode,
        size=size,
        device=device,
        precision=precision,
        inference_output=inference_output,
        progress=progress,
        max_pixels=max_pixels,
    )
    how = f"resized to {result.size}x{result.size}" if result.mode == "resize" else "padded to a multiple of 16"
    click.echo(
        f"wrote {len(result.written)} mask(s) to {out_dir} ({how}; {result.device}, {result.precision})", err=True
    )
    if verbose:
        click.echo(allocator, err=True)
