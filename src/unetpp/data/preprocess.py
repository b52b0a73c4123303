"""Preprocess: native-size interim HDF5 -> fixed-size arrays the networks train on.

Resizing rule (documented in docs/method.md):
- images: skimage.transform.resize to (S, S) with anti-aliasing (Gaussian
  pre-filter, bilinear), values rounded back to uint8;
- masks: the 0/1 union mask is resized the same way as float and then
  thresholded at >= 0.5, so it stays strictly 0/1. A nucleus much smaller than
  the scale factor can vanish, as it would for any binary downscale.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
from skimage.transform import resize
from tqdm import tqdm

from unetpp.atomic import atomic_path, remove_stale_temps
from unetpp.choices import DEFAULT_IMAGE_SIZE
from unetpp.data.parallel import ordered_map
from unetpp.data.processed import file_sha256
from unetpp.errors import UnetppError

POOLING_STEPS = 4  # U-Net and UNet++ halve the resolution four times
SIZE_MULTIPLE = 2**POOLING_STEPS


_interim: tuple[Path, h5py.File] | None = None


def _resize_sample(src: Path, size: int, sample_id: str) -> tuple[np.ndarray, np.ndarray]:
    """Read and resize one sample; runs in a worker process with its own read handle."""
    global _interim
    if _interim is None or _interim[0] != src:
        _close_interim()
        _interim = (src, h5py.File(src, "r"))
    h5 = _interim[1]
    try:
        image, mask = h5["images"][sample_id][()], h5["masks"][sample_id][()]
    except KeyError as exc:
        raise UnetppError(f"{src}: id {sample_id!r} has no image or mask; rerun `unetpp ingest`.") from exc
    return resize_image(image, size), resize_mask(mask, size)


def _close_interim() -> None:
    global _interim
    if _interim is not None:
        _interim[1].close()
        _interim = None


@dataclass(frozen=True)
class PreprocessSummary:
    n_images: int
    size: int
    out: Path


def validate_size(size: int) -> int:
    """Refuse sizes the networks cannot pool four times without losing pixels."""
    if size <= 0 or size % SIZE_MULTIPLE:
        raise UnetppError(
            f"--size {size} is invalid: it must be a positive multiple of {SIZE_MULTIPLE} because the networks "
            f"pool {POOLING_STEPS} times (e.g. 96, 128, 256)."
        )
    return size


def resize_image(image: np.ndarray, size: int) -> np.ndarray:
    """(H, W, 3) uint8 -> (size, size, 3) uint8, anti-aliased.

    Most DSB images are grey stored as R==G==B; resizing is per channel, so one
    channel is resized and copied, giving the identical result at a third of the cost.
    """
    grey = bool((image[..., 0] == image[..., 1]).all() and (image[..., 0] == image[..., 2]).all())
    source = image[..., :1] if grey else image
    out = resize(source, (size, size), order=1, anti_aliasing=True, preserve_range=True)
    out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return np.repeat(out, 3, axis=2) if grey else out


def resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """(H, W) 0/1 -> (size, size) uint8 0/1: anti-aliased float resize, then >= 0.5."""
    out = resize(mask.astype(np.float32), (size, size), order=1, anti_aliasing=True, preserve_range=True)
    return (out >= 0.5).astype(np.uint8)


def resize_probabilities(probs: np.ndarray, height: int, width: int) -> np.ndarray:
    """A probability map back to (height, width): bilinear, no anti-aliasing (it only grows or barely shrinks).

    The one way back to native size: `predict-images`/`predict-test` in resize mode and `evaluate --interim`.
    """
    return resize(probs, (height, width), order=1, anti_aliasing=False, preserve_range=True).astype(np.float32)


def open_interim(path: Path) -> h5py.File:
    """The ingest output at `path`, open for reading, with its per-image groups checked (errors name the fix)."""
    if not path.exists():
        raise UnetppError(f"{path} does not exist; run `unetpp ingest` first to create it.")
    try:
        h5 = h5py.File(path, "r")
    except OSError as exc:
        raise UnetppError(f"{path} cannot be read as HDF5 ({exc}); it is corrupt - rerun `unetpp ingest`.") from exc
    missing = [name for name in ("images", "masks") if not isinstance(h5.get(name), h5py.Group)]
    missing += [] if isinstance(h5.get("ids"), h5py.Dataset) else ["ids"]
    if missing:
        h5.close()
        raise UnetppError(
            f"{path} has no {', '.join(missing)} group(s) of per-image arrays; it is not an ingest output - "
            "pass the file written by `unetpp ingest` (rerun it if needed)."
        )
    return h5


def preprocess(
    src: str | os.PathLike[str],
    out: str | os.PathLike[str],
    size: int = DEFAULT_IMAGE_SIZE,
    workers: int = 2,
    progress: bool | None = None,
) -> PreprocessSummary:
    """Resize every image and mask of the interim file, in its (sorted) id order.

    `progress` None shows the bar only when stderr is a terminal, so logs get no carriage-return frames.
    """
    src, out = Path(src), Path(out)
    validate_size(size)
    with open_interim(src) as h5:
        ids = [str(i) for i in h5["ids"].asstr()[()]]
    if not ids:
        raise UnetppError(f"{src} holds no images; rerun `unetpp ingest` on a non-empty dataset.")
    remove_stale_temps(out.parent, (out.name,))
    work = functools.partial(_resize_sample, src, size)
    try:
        with atomic_path(out) as tmp, h5py.File(tmp, "w") as dst:
            images = dst.create_dataset("images", shape=(len(ids), size, size, 3), dtype=np.uint8)
            masks = dst.create_dataset("masks", shape=(len(ids), size, size), dtype=np.uint8)
            results = ordered_map(work, ids, workers)
            quiet = None if progress is None else not progress  # None: a bar only on a terminal
            for row, (image, mask) in enumerate(
                tqdm(results, total=len(ids), desc="preprocess", unit="image", disable=quiet)
            ):
                images[row] = image
                masks[row] = mask
            dst.create_dataset("ids", data=np.array(ids, dtype=object), dtype=h5py.string_dtype("utf-8"))
            dst.attrs["size"] = size
            dst.attrs["input_sha256"] = file_sha256(src)
    finally:
        _close_interim()  # only open in this process when resizing ran inline (workers=1)
    return PreprocessSummary(n_images=len(ids), size=size, out=out)
