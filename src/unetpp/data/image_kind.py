"""The kind of a microscopy image, told from its pixels: fluorescence, brightfield or colour.

DSB2018's stage1_train mixes three kinds of image, and a model trained on it does worst on the rarest
(colour, stained tissue), the kind a user's own data may well be. Scoring each kind on its own (`unetpp
evaluate --interim`) shows whether a protocol variant, such as augmentation or a larger input, helps there
or only on the common kind.

The rule reads two numbers, on the 0-255 scale:
- colour: the channels differ (mean |channel - mean of the channels| above COLOUR_MIN_CHROMA);
- brightfield: grey, with a mean intensity above BRIGHTFIELD_MIN_MEAN (dark nuclei on a bright background);
- fluorescence: grey and dark (bright nuclei on a dark background).
On stage1_train it splits 546 fluorescence, 16 brightfield and 108 colour images with a wide margin: every
grey image has a chroma of exactly 0 and every colour one at least 4.4; the grey images' means are
below 80 or above 200.
"""

from __future__ import annotations

import numpy as np

from unetpp.errors import UnetppError

IMAGE_KINDS = ("fluorescence", "brightfield", "colour")
COLOUR_MIN_CHROMA = 1.0
BRIGHTFIELD_MIN_MEAN = 127.5


def image_kind(rgb: np.ndarray) -> str:
    """The kind of one (H, W, 3) uint8 image, one of IMAGE_KINDS."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise UnetppError(f"image_kind needs an (H, W, 3) uint8 image, got {rgb.dtype} {rgb.shape}")
    pixels = rgb.astype(np.float32)
    chroma = float(np.abs(pixels - pixels.mean(axis=2, keepdims=True)).mean())
    if chroma > COLOUR_MIN_CHROMA:
        return "colour"
    return "brightfield" if float(pixels.mean()) > BRIGHTFIELD_MIN_MEAN else "fluorescence"


def kind_keys(kind: str) -> tuple[str, str]:
    """The metrics.json keys of one kind (`unetpp evaluate --interim`): its mean native per-image IoU, its count."""
    return f"iou_native_per_image_{kind}", f"n_images_{kind}"


# Every per-kind key evaluate may write (it writes those of the kinds present).
KIND_KEYS = tuple(key for kind in IMAGE_KINDS for key in kind_keys(kind))
