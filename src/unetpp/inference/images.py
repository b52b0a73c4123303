"""Files in and out of `unetpp predict-images`: finding inputs, decoding them, writing PNG masks.

Images are decoded with the same rules as `unetpp ingest` (`unetpp.data.pngdecode`):
RGB uint8, alpha dropped, grey (also grey+alpha) copied to three channels,
16-bit samples keep their high byte. So a new image reaches the network in
the same form as the training images did.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from unetpp.data.pngdecode import DEFAULT_MAX_PIXELS, UndecodableImage, decode_image
from unetpp.errors import UnetppError

IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg")
MASK_SUFFIX = "_mask.png"


def collect_inputs(inputs: Iterable[str | os.PathLike[str]], out_dir: Path | None = None) -> list[Path]:
    """Files as given, folders expanded to their PNG/TIF/JPG files (sorted, not recursive).

    In a folder that is also `out_dir`, earlier `*_mask.png` outputs are not
    taken as inputs, so a rerun does not segment its own masks.
    """
    found: list[Path] = []
    out_resolved = out_dir.resolve() if out_dir is not None else None
    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            skip_masks = path.resolve() == out_resolved
            files = sorted(
                p
                for p in path.iterdir()
                if p.is_file()
                and p.suffix.lower() in IMAGE_SUFFIXES
                and not (skip_masks and p.name.endswith(MASK_SUFFIX))
            )
            if not files:
                raise UnetppError(
                    f"input folder {path} holds no {'/'.join(s.lstrip('.') for s in IMAGE_SUFFIXES)} images: "
                    f"put images there or name the files directly"
                )
            found.extend(files)
        elif path.is_file():
            found.append(path)
        else:
            raise UnetppError(f"input {path} does not exist: pass existing image files or folders")
    if not found:
        raise UnetppError("no input images given: pass one or more image files or folders")
    return list(dict.fromkeys(found))


def mask_path(image: Path, out_dir: Path) -> Path:
    """`<out_dir>/<stem>_mask.png`."""
    return out_dir / f"{image.stem}{MASK_SUFFIX}"


def plan_outputs(images: Sequence[Path], out_dir: Path) -> list[Path]:
    """One mask path per image; refuse two inputs that would write the same mask."""
    targets = [mask_path(p, out_dir) for p in images]
    seen: dict[Path, Path] = {}
    for image, target in zip(images, targets):
        if target in seen:
            raise UnetppError(
                f"inputs {seen[target]} and {image} would both write {target}: rename one of them or run "
                f"them separately with different --out folders"
            )
        seen[target] = image
    return targets


def read_image(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """(H, W, 3) uint8, or a UnetppError naming the file; more than `max_pixels` is refused before decoding."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UnetppError(f"cannot read image {path} ({exc.strerror}): check the path and its permissions") from exc
    try:
        image = decode_image(data, str(path), max_pixels)
    except UndecodableImage as exc:
        raise UnetppError(
            f"cannot read image {path} ({exc.reason}): it is corrupt or not an image; pass PNG, TIFF or JPEG "
            f"images (1, 2, 3 or 4 channels, 8 or 16 bit)"
        ) from exc
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise UnetppError(f"image {path} is empty ({image.shape[0]}x{image.shape[1]}): pass a non-empty image")
    return image


def write_mask(target: Path, mask: np.ndarray) -> None:
    """A 0/255 uint8 greyscale PNG (callers pass a temp path from `atomic_path`)."""
    from PIL import Image

    Image.fromarray(np.where(mask, 255, 0).astype(np.uint8)).save(target, format="PNG")
