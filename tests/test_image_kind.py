"""unetpp.data.image_kind: the three kinds of DSB2018 image, told from their pixels."""

from __future__ import annotations

import numpy as np
import pytest

from unetpp.data.image_kind import BRIGHTFIELD_MIN_MEAN, COLOUR_MIN_CHROMA, image_kind
from unetpp.errors import UnetppError


def grey(value: np.ndarray) -> np.ndarray:
    return np.repeat(value[..., None], 3, axis=2).astype(np.uint8)


def test_the_three_kinds_and_their_thresholds():
    rng = np.random.default_rng(0)
    dark = rng.integers(0, 40, (20, 30), dtype=np.uint8)  # bright nuclei on black, mostly black
    dark[5:9, 5:9] = 250
    assert image_kind(grey(dark)) == "fluorescence"
    assert image_kind(grey(255 - dark)) == "brightfield"
    tissue = np.stack([np.full((20, 30), 200), np.full((20, 30), 120), np.full((20, 30), 180)], axis=2)
    assert image_kind(tissue.astype(np.uint8)) == "colour"
    # The mean intensity decides between the grey kinds; the chroma, any kind against colour.
    flat = np.full((10, 10), int(BRIGHTFIELD_MIN_MEAN), dtype=np.uint8)  # 127: not above the threshold
    assert image_kind(grey(flat)) == "fluorescence" and image_kind(grey(flat + 1)) == "brightfield"
    tinted = grey(np.full((10, 10), 30))
    tinted[..., 0] += int(3 * COLOUR_MIN_CHROMA)  # red 3 above green and blue: mean |c - mean| is 4/3 * threshold
    assert image_kind(tinted) == "colour"
    tinted[..., 0] -= int(COLOUR_MIN_CHROMA)  # 2 above: 8/9 of the threshold
    assert image_kind(tinted) == "fluorescence"


def test_the_synthetic_sets_kinds_are_told_apart():
    from unetpp.data.synth import make_image

    expected = {"fluorescent": "fluorescence", "elongated": "fluorescence", "histology": "colour"}
    images = [make_image(seed=3, index=k) for k in range(6)]
    assert [image_kind(np.ascontiguousarray(im.rgba[..., :3])) for im in images] == [
        expected[im.kind] for im in images]


@pytest.mark.parametrize("bad", [np.zeros((4, 4), np.uint8), np.zeros((4, 4, 4), np.uint8), np.zeros((4, 4, 3))])
def test_anything_but_an_rgb_uint8_image_is_refused(bad):
    with pytest.raises(UnetppError, match=r"needs an \(H, W, 3\) uint8 image"):
        image_kind(bad)
