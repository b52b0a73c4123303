"""Shrink a large image to the training size cheaply, with the same anti-aliasing blur as `resize_image`.

`unetpp preprocess`'s `resize_image` (skimage `resize`, anti-aliased) blurs the
full-resolution image with a Gaussian of sigma (F - 1) / 2 for a shrink factor F
before sampling it: on a 3000x4000 image shrunk to 96 px that is sigma ~15-20 over
12 M float64 pixels, most of the 30 s and 950 MB one such image cost.

Here, when the image shrinks by at least `BLOCK_FROM` times, it is first averaged
over integer k x k blocks (k about F / 4: an exact, cheap low-pass on uint8), and
only the small block image gets a Gaussian whose width, added to the box's, gives
the same total blur variance as resize_image's ((F - 1) / 2)^2, then is sampled
bilinearly on resize_image's own pixel grid. Images shrunk less than `BLOCK_FROM`
times (every stage1_train size up to 696 px at 96 px) go to `resize_image`
unchanged, so their predictions are bit-identical to before.
"""

from __future__ import annotations

import math

import numpy as np

from unetpp.data.preprocess import resize_image

BLOCK_FROM = 8.0  # shrink factor from which block averaging is used
RESIDUAL_FACTOR = 4.0  # the block size leaves about this much shrink to the Gaussian + bilinear step


def block_sizes(shape: tuple[int, int], size: int) -> tuple[int, int]:
    """(k_rows, k_cols): 1 where an axis shrinks less than BLOCK_FROM times."""
    factors = (shape[0] / size, shape[1] / size)
    return tuple(int(f // RESIDUAL_FACTOR) if f >= BLOCK_FROM else 1 for f in factors)  # type: ignore[return-value]


def block_mean(image: np.ndarray, k_rows: int, k_cols: int) -> np.ndarray:
    """(ceil(H/kr), ceil(W/kc), C) float32 means; a partial edge block averages only its real pixels."""
    height, width, channels = image.shape
    rows, cols = -(-height // k_rows), -(-width // k_cols)
    pad = ((0, rows * k_rows - height), (0, cols * k_cols - width), (0, 0))
    padded = np.pad(image, pad) if any(p[1] for p in pad) else image
    # Rows first, then columns, in exact integers: 3x faster than one sum over both block axes of a 5-D view.
    sums = padded.reshape(rows, k_rows, cols * k_cols, channels).sum(axis=1, dtype=np.uint32)
    sums = sums.reshape(rows, cols, k_cols, channels).sum(axis=2, dtype=np.uint32).astype(np.float32)
    row_n = np.full(rows, k_rows, dtype=np.float32)
    row_n[-1] = height - (rows - 1) * k_rows
    col_n = np.full(cols, k_cols, dtype=np.float32)
    col_n[-1] = width - (cols - 1) * k_cols
    return sums / (row_n[:, None, None] * col_n[None, :, None])


def _blocked_resize(source: np.ndarray, size: int, k_rows: int, k_cols: int) -> np.ndarray:
    from scipy import ndimage as ndi

    blocks = block_mean(source, k_rows, k_cols)
    sigmas, steps = [], []
    for length, k in ((source.shape[0], k_rows), (source.shape[1], k_cols)):
        factor = length / size
        target_var = max(0.0, (factor - 1) / 2) ** 2  # resize_image's Gaussian, in input pixels
        box_var = (k * k - 1) / 12  # what the k-pixel block mean already contributed
        sigmas.append(math.sqrt(max(0.0, target_var - box_var)) / k)
        steps.append(factor / k)  # one output pixel in block pixels
    filtered = ndi.gaussian_filter(blocks, (*sigmas, 0), mode="mirror")
    # Output pixel o samples input coordinate (o + 0.5) F - 0.5, i.e. block coordinate (o + 0.5) F/k - 0.5.
    offset = [0.5 * steps[0] - 0.5, 0.5 * steps[1] - 0.5, 0.0]
    return ndi.affine_transform(
        filtered, [steps[0], steps[1], 1.0], offset=offset, output_shape=(size, size, source.shape[2]), order=1,
        mode="mirror",
    )


def downscale_image(image: np.ndarray, size: int) -> np.ndarray:
    """(H, W, 3) uint8 -> (size, size, 3) uint8, as `resize_image` but cheap for large shrink factors."""
    k_rows, k_cols = block_sizes(image.shape[:2], size)
    if k_rows == 1 and k_cols == 1:
        return resize_image(image, size)
    grey = bool((image[..., 0] == image[..., 1]).all() and (image[..., 0] == image[..., 2]).all())
    source = image[..., :1] if grey else image
    out = np.clip(np.rint(_blocked_resize(source, size, k_rows, k_cols)), 0, 255).astype(np.uint8)
    return np.repeat(out, 3, axis=2) if grey else out
