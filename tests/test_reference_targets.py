"""benchmarks/reference_targets.py: the blog's target definition and the val-set bootstrap (issue 12, item 8)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "reference_targets.py"
spec = importlib.util.spec_from_file_location("reference_targets", SCRIPT)
reference_targets = importlib.util.module_from_spec(spec)
spec.loader.exec_module(reference_targets)


def test_reference_mask_is_the_cv2_bilinear_resize_kept_above_half() -> None:
    # A 4x4 mask with its left half set, halved: cv2's INTER_LINEAR samples at source x = 0.5 and 2.5,
    # which sit halfway between columns 0|1 (both 1) and 2|3 (both 0): no edge pixel is ambiguous.
    mask = np.zeros((4, 4), np.uint8)
    mask[:, :2] = 1
    assert reference_mask(mask, 2).tolist() == [[1, 0], [1, 0]]
    # A 2x2 block halved to 1x1 is the mean of its 4 pixels (cv2 gives the same): 1 set pixel is 0.25,
    # not foreground; 3 set pixels are 0.75, foreground.
    one = np.zeros((2, 2), np.uint8)
    one[0, 0] = 1
    assert reference_mask(one, 1).tolist() == [[0]]
    one[0, 1] = one[1, 0] = 1
    assert reference_mask(one, 1).tolist() == [[1]]


def test_reference_mask_truncates_like_the_uint8_round_trip() -> None:
    # A half-set 1x2 row resized to 1x1 interpolates to exactly 0.5: 127 after x255 truncation, not > 0.5.
    row = np.array([[1, 0]], np.uint8)
    assert reference_mask(row, 1).tolist() == [[0]]


def test_bootstrap_of_perfect_predictions_has_no_spread() -> None:
    rng = np.random.default_rng(0)
    masks = (rng.random((20, 8, 8)) > 0.5).astype(np.uint8)
    sd, low, high = reference_targets.bootstrap(masks, masks, resamples=50, seed=0)
    assert (sd, low, high) == (0.0, 1.0, 1.0)


def test_bootstrap_spread_shrinks_with_more_images() -> None:
    rng = np.random.default_rng(1)

    def spread(n: int) -> float:
        masks = (rng.random((n, 8, 8)) > 0.5).astype(np.uint8)
        noisy = masks ^ (rng.random(masks.shape) > 0.8)
        return reference_targets.bootstrap(noisy, masks, resamples=400, seed=0)[0]

    assert spread(256) < 0.5 * spread(16)


reference_mask = reference_targets.reference_mask
