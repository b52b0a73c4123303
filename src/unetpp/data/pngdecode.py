"""Decode raw image and mask PNGs from bytes into the arrays the pipeline stores.

Pillow is called directly rather than through skimage.io: skimage.io delegates to
Pillow via imageio, and that indirection cost about 55% more time per file on
the ~30k small mask PNGs of stage1_train (measured), which is most of ingest.

Conversion rules (documented in docs/own-data.md):
- images become RGB uint8: alpha is dropped, grey is copied to 3 channels,
  palette images are expanded, 16-bit samples keep their high byte (v // 256,
  the same rule as skimage.util.img_as_ubyte and Pillow's 16-bit RGB decoding).
- a mask is binary when all its non-zero pixels share one value ({0,255},
  {0,1}, {0,65535} ... are all fine); an all-zero mask adds no nucleus.
"""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Iterator

import numpy as np
from PIL import Image

from unetpp.choices import DEFAULT_MAX_PIXELS
from unetpp.errors import UnetppError

_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I")
_BUFFER_REPR = re.compile(r"<_io\.BytesIO object at 0x[0-9a-fA-F]+>")


class UndecodableImage(UnetppError):
    """Pillow could not decode the bytes; `reason` says why, naming the file rather than a buffer."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        return type(self), (self.message, self.reason)  # workers send it back pickled


class TooManyPixels(UnetppError):
    """The header declares more pixels than --max-pixels allows; nothing was decoded."""


@contextlib.contextmanager
def _no_pillow_bomb_check() -> Iterator[None]:
    """Our header check (`check_pixels`) is the only cap, so --max-pixels can raise it past Pillow's own."""
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def check_pixels(size: tuple[int, int], where: str, max_pixels: int) -> None:
    """Refuse an image whose header declares more than `max_pixels` pixels (size is Pillow's (W, H))."""
    width, height = size
    if width * height > max_pixels:
        raise TooManyPixels(
            f"{where} declares {height}x{width} (HxW) = {width * height:,} pixels, above the cap of "
            f"{max_pixels:,} (a possible decompression bomb); nothing was decoded. Remove the file, or raise "
            "--max-pixels if the image is genuine."
        )


def _reason(exc: Exception, where: str) -> str:
    """Pillow's message, with the in-memory buffer's repr (`<_io.BytesIO object at 0x...>`) replaced by the file."""
    text = _BUFFER_REPR.sub(where, str(exc)).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _open(data: bytes, where: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Read the header, refuse too many pixels, then decode; every failure names `where`."""
    try:
        with _no_pillow_bomb_check():
            img = Image.open(io.BytesIO(data))  # reads the header only
        check_pixels(img.size, where, max_pixels)
        img.load()
    except TooManyPixels:
        raise
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError...
        reason = _reason(exc, where)
        raise UndecodableImage(
            f"{where} cannot be decoded as an image ({reason}); the PNG is truncated or "
            "corrupt - replace it with a good copy (re-download the dataset) or remove its image folder.",
            reason,
        ) from exc
    return img


def decode_image(data: bytes, where: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Return an (H, W, 3) uint8 array; refuse more than `max_pixels` before decoding."""
    img = _open(data, where, max_pixels)
    if img.mode in _SIXTEEN_BIT:
        array = np.asarray(img)
        if array.min() < 0 or array.max() > 65535:
            raise UnetppError(
                f"{where}: 32-bit pixel values outside 0..65535 are not supported; save it as 8- or 16-bit PNG."
            )
        array = (array.astype(np.uint16) >> 8).astype(np.uint8)
    elif img.mode == "RGBA":
        array = np.asarray(img.convert("RGB"))  # drops alpha in C: 4.5x faster than slicing a copy in numpy
    elif img.mode in ("L", "RGB"):
        array = np.asarray(img)
    elif img.mode in ("LA", "La"):
        array = np.asarray(img)[..., 0]
    else:  # palette, 1-bit and other modes: let Pillow expand them
        array = np.asarray(img.convert("RGB"))
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    return np.ascontiguousarray(array[:, :, :3])


def paint_mask(
    data: bytes, where: str, labels: np.ndarray, label: int, max_pixels: int = DEFAULT_MAX_PIXELS
) -> bool:
    """Write `label` into `labels` where the mask is set; return False for an all-zero mask.

    Only the mask's bounding box is copied out of Pillow's image, so no full-size
    numpy temporary is made per mask.
    """
    height, width = labels.shape
    found = _mask_crop(data, where, height, width, max_pixels)
    if found is None:
        return False
    (y0, x0, y1, x1), crop = found
    on = crop != 0
    values = crop[on]
    if (values != values[0]).any():
        present = np.unique(np.concatenate([[0], values]))
        shown = ", ".join(str(v) for v in present[:6]) + (", ..." if present.size > 6 else "")
        raise UnetppError(
            f"{where} is not a binary mask (values {shown}); each mask must hold 0 and one foreground value "
            "(e.g. 0/255) - re-export it as a binary PNG."
        )
    labels[y0:y1, x0:x1][on] = label
    return True


def _mask_crop(
    data: bytes, where: str, height: int, width: int, max_pixels: int
) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
    """The mask's non-zero bounding box (y0, x0, y1, x1) and its pixels there, or None when all zero.

    Decoded with Pillow; getbbox scans in C. Raises on bad input."""
    img = _open(data, where, max_pixels)
    if img.size != (width, height):
        raise UnetppError(
            f"{where} is {img.size[1]}x{img.size[0]} (HxW) but its image is {height}x{width}; a mask must have "
            "the same size as its image - fix or remove the mask."
        )
    if img.mode not in ("L", "1", *_SIXTEEN_BIT):
        img = img.convert("L") if img.mode in ("P", "PA", "LA", "La") else img
        if img.mode not in ("L",):
            raise UnetppError(f"{where} is a {img.mode} image; masks must be single-channel (greyscale) PNGs.")
    bbox = img.getbbox()
    if bbox is None:
        return None
    x0, y0, x1, y1 = bbox
    return (y0, x0, y1, x1), np.asarray(img.crop(bbox))
