"""`unetpp predict-images`: a 0/255 PNG mask, the size of its input, for new images of any size.

Two ways to fit an arbitrary image to a network that needs sides divisible by 16:

- ``resize`` (default): resize the image to the training size (S x S, with
  `unetpp preprocess`'s own `resize_image`, so exactly as the training images
  were), predict,
  resize the probability map back bilinearly and threshold at 0.5 (images
  shrunk 8x or more are block-averaged first, `unetpp.inference.downscale`,
  which keeps a 3000x4000 image cheap). The
  network then sees nuclei at the scale it was trained on, which matters
  because the training images were shrunk from 256-1000 px down to 96 px.
- ``pad``: reflect-pad the bottom and right edges up to a multiple of 16,
  predict at native resolution, crop back. Right for images already at the
  training scale (e.g. 96 px crops); slower and heavier for big images, and
  out of the training distribution for native-size DSB images.

Measured with `benchmarks/compare_predict_modes.py` (a small U-Net trained 15
epochs, val IoU 0.80 at 96 px; the 134 val images at native size): resize
0.79 mean IoU, pad 0.61. Resize is capped by the 96 px round trip itself
(the ground truth shrunk to 96 px and back scores 0.88 against the original).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from unetpp.atomic import atomic_path
from unetpp.choices import DEFAULT_DEVICE, DEFAULT_IMAGE_SIZE, DEFAULT_PRECISION, FIT_MODES
from unetpp.data.pngdecode import DEFAULT_MAX_PIXELS
from unetpp.data.preprocess import resize_probabilities
from unetpp.errors import UnetppError
from unetpp.inference.downscale import downscale_image
from unetpp.inference.images import collect_inputs, plan_outputs, read_image, write_mask
from unetpp.inference.loading import load_trained_model, select_output
from unetpp.inference.predictor import Forward, predict_batch
from unetpp.inference.runtime import resolve_runtime

MODES = FIT_MODES


@dataclass(frozen=True)
class ImagesResult:
    """What `run_predict_images` wrote, for the command's summary line."""

    written: list[Path]
    mode: str
    size: int | None
    device: str
    precision: str


def pad_to_multiple(image: np.ndarray, multiple: int) -> np.ndarray:
    """Reflect-pad the bottom and right edges so both sides are multiples of `multiple`."""
    height, width = image.shape[:2]
    pad = ((0, -height % multiple), (0, -width % multiple), (0, 0))
    # Reflection needs at least 2 pixels along an axis; a 1-pixel side can only be repeated.
    mode = "reflect" if min(height, width) > 1 else "edge"
    return np.pad(image, pad, mode=mode)


def training_size(checkpoint: dict, requested: int | None) -> int:
    """--size if given, else the size recorded in model.pt, else the pipeline's DEFAULT_IMAGE_SIZE."""
    if requested is not None:
        return requested
    settings = checkpoint.get("settings")
    if isinstance(settings, dict) and isinstance(settings.get("image_size"), int):
        return settings["image_size"]
    return DEFAULT_IMAGE_SIZE


@dataclass(frozen=True)
class NativePredictor:
    """A trained model set up to turn an image of any size into probabilities of that size."""

    forward: Forward  # see `predictor.predict_batch`
    mode: str
    side: int  # the training size images are resized to (mode "resize")
    multiple: int  # sides the network accepts are multiples of this (mode "pad")
    device: torch.device
    precision: str

    @property
    def size(self) -> int | None:
        """The size images are resized to, None when they are padded instead (for the records)."""
        return self.side if self.mode == "resize" else None

    def probabilities(self, image: np.ndarray) -> np.ndarray:
        """(H,W) foreground probabilities for one (H,W,3) uint8 image."""
        height, width = image.shape[:2]
        if self.mode == "pad":
            padded = pad_to_multiple(image, self.multiple)
            return predict_batch(self.forward, padded[None], self.device, self.precision)[0, :height, :width]
        probs = predict_batch(self.forward, downscale_image(image, self.side)[None], self.device, self.precision)[0]
        return resize_probabilities(probs, height, width)


def check_mode(mode: str) -> None:
    """Fail early, before any file is read, on a mode that is not one of MODES."""
    if mode not in MODES:
        raise UnetppError(f"--mode {mode!r} is unknown: choose one of {', '.join(MODES)}")


def load_native_predictor(
    model_path: str | os.PathLike[str],
    mode: str = "resize",
    size: int | None = None,
    device: str = DEFAULT_DEVICE,
    precision: str = DEFAULT_PRECISION,
    inference_output: str = "last",
) -> NativePredictor:
    """model.pt on the resolved device and precision, with the output, mode and size checked."""
    check_mode(mode)
    torch_device, used_precision = resolve_runtime(device, precision)
    model, checkpoint = load_trained_model(model_path, torch_device)
    forward = select_output(model, inference_output, model_path, checkpoint["arch"])
    multiple = 2**model.depth
    side = training_size(checkpoint, size)
    if mode == "resize" and (side < multiple or side % multiple):
        raise UnetppError(f"--size {side} must be a positive multiple of {multiple} (the network pools that often)")
    return NativePredictor(forward, mode, side, multiple, torch_device, used_precision)


def run_predict_images(
    model_path: str | os.PathLike[str],
    inputs: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    mode: str = "resize",
    size: int | None = None,
    device: str = DEFAULT_DEVICE,
    precision: str = DEFAULT_PRECISION,
    inference_output: str = "last",
    progress: bool | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> ImagesResult:
    """Write `<out_dir>/<stem>_mask.png` for every input image.

    Every input is decoded once before the model runs, so an unreadable image
    stops the command before any mask is written; each mask is then written
    atomically.
    """
    check_mode(mode)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UnetppError(f"--out {out} is a file, not a folder: give a folder for the masks")
    files = collect_inputs(inputs, out)
    targets = plan_outputs(files, out)
    predictor = load_native_predictor(model_path, mode, size, device, precision, inference_output)
    for path in tqdm(files, desc="check inputs", unit="image", disable=None if progress is None else not progress):
        read_image(path, max_pixels)  # decode everything first: a bad file fails before any output exists

    written: list[Path] = []
    for path, target in tqdm(
        list(zip(files, targets)), desc="predict", unit="image", disable=None if progress is None else not progress
    ):
        image = read_image(path, max_pixels)
        with atomic_path(target) as tmp:
            write_mask(tmp, predictor.probabilities(image) > 0.5)
        written.append(target)
    return ImagesResult(written, mode, predictor.size, str(predictor.device), predictor.precision)
