"""The fast mask-PNG reader must agree with Pillow on every PNG it accepts, and decline everything else.

PNGs are built here row filter by row filter (PNG spec filters 0-4), so each
filter path of the reader is exercised; Pillow decoding the same bytes is the oracle.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from unetpp.data.maskpng import read_mask_crop
from unetpp.data.pngdecode import paint_mask
from unetpp.errors import UnetppError

NONE, SUB, UP, AVERAGE, PAETH = range(5)
BIG = 10**8


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def _filter_row(row: np.ndarray, above: np.ndarray, kind: int) -> bytes:
    out = bytearray([kind])
    for x in range(row.shape[0]):
        left = int(row[x - 1]) if x else 0
        up = int(above[x])
        up_left = int(above[x - 1]) if x else 0
        predicted = [0, left, up, (left + up) // 2, _paeth(left, up, up_left)][kind]
        out.append((int(row[x]) - predicted) % 256)
    return bytes(out)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def make_png(
    pixels: np.ndarray, kinds: list[int], interlace: int = 0, stream: bytes | None = None, idat_parts: int = 1
) -> bytes:
    """An 8-bit greyscale PNG of `pixels` whose row r uses filter kinds[r]."""
    height, width = pixels.shape
    above = np.zeros(width, dtype=np.uint8)
    raw = b""
    for r in range(height):
        raw += _filter_row(pixels[r], above, kinds[r])
        above = pixels[r]
    data = zlib.compress(raw, 9) if stream is None else stream
    cut = max(1, len(data) // idat_parts)
    parts = [data[i : i + cut] for i in range(0, len(data), cut)]
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, interlace)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + b"".join(_chunk(b"IDAT", part) for part in parts)
        + _chunk(b"IEND", b"")
    )


def _png_of(img: Image.Image) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format="PNG")
    return buffer.getvalue()


def pillow_crop(data: bytes) -> tuple[tuple[int, int, int, int] | None, np.ndarray | None]:
    img = Image.open(io.BytesIO(data))
    box = img.getbbox()
    if box is None:
        return None, None
    x0, y0, x1, y1 = box
    return (y0, x0, y1, x1), np.asarray(img.crop(box))


def assert_matches_pillow(data: bytes) -> None:
    crop = read_mask_crop(data, BIG)
    assert crop is not None, "the fast reader declined a PNG it should handle"
    box, pixels = pillow_crop(data)
    img = Image.open(io.BytesIO(data))
    assert (crop.height, crop.width) == (img.size[1], img.size[0])
    assert crop.bbox == box
    if box is None:
        assert crop.pixels is None
    else:
        np.testing.assert_array_equal(crop.pixels, pixels)


def blob_mask(height: int, width: int, seed: int, value: int = 255, to_right_edge: bool = False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    mask = np.zeros((height, width), dtype=np.uint8)
    for _ in range(3):
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        ry, rx = rng.uniform(2, height / 3), rng.uniform(2, width / 3)
        mask[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1] = value
    if to_right_edge:  # a run that ends at the border, so no filtered byte marks its end
        mask[height // 2 : height // 2 + 3, width // 2 :] = value
    return mask


FILTER_PLANS = {
    "none": lambda h, rng: [NONE] * h,
    "sub": lambda h, rng: [SUB] * h,
    "up": lambda h, rng: [UP] * h,
    "paeth": lambda h, rng: [PAETH] * h,
    "mixed": lambda h, rng: rng.choice([NONE, SUB, UP, PAETH], size=h).tolist(),
}


@pytest.mark.parametrize("plan", sorted(FILTER_PLANS))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_binary_masks_match_pillow_for_every_filter(plan: str, seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    for to_right_edge in (False, True):
        mask = blob_mask(29, 37, seed, to_right_edge=to_right_edge)
        assert_matches_pillow(make_png(mask, FILTER_PLANS[plan](29, rng)))


@pytest.mark.parametrize("plan", sorted(FILTER_PLANS))
def test_arbitrary_grey_values_match_pillow(plan: str) -> None:
    """Not only 0/255: the reader undoes the filters exactly, so any 8-bit content must round-trip."""
    rng = np.random.default_rng(7)
    pixels = np.zeros((21, 26), dtype=np.uint8)
    pixels[4:17, 3:22] = rng.integers(0, 256, size=(13, 19), dtype=np.uint8)
    assert_matches_pillow(make_png(pixels, FILTER_PLANS[plan](21, rng)))
    full = rng.integers(0, 256, size=(9, 11), dtype=np.uint8)  # non-zero up to every border
    assert_matches_pillow(make_png(full, FILTER_PLANS[plan](9, rng)))


def test_bbox_and_offsets_are_exact() -> None:
    mask = np.zeros((40, 50), dtype=np.uint8)
    mask[7:12, 30:44] = 1
    mask[20, 31] = 1
    crop = read_mask_crop(make_png(mask, [SUB] * 40), BIG)
    assert crop is not None
    assert crop.bbox == (7, 30, 21, 44)
    np.testing.assert_array_equal(crop.pixels, mask[7:21, 30:44])


@pytest.mark.parametrize("plan", sorted(FILTER_PLANS))
def test_a_single_pixel_anywhere_is_found(plan: str) -> None:
    """5x6 rows of 7 bytes make 35 bytes: four 8-byte words and a 3-byte tail, so every edge case of the scan."""
    rng = np.random.default_rng(11)
    for y in range(5):
        for x in range(6):
            pixels = np.zeros((5, 6), dtype=np.uint8)
            pixels[y, x] = 255
            assert_matches_pillow(make_png(pixels, FILTER_PLANS[plan](5, rng)))


def test_all_zero_mask_has_no_bbox() -> None:
    for kinds in ([NONE] * 8, [UP] * 8, [PAETH] * 8):
        crop = read_mask_crop(make_png(np.zeros((8, 12), np.uint8), kinds), BIG)
        assert crop is not None and crop.bbox is None and crop.pixels is None
        assert (crop.height, crop.width) == (8, 12)


def test_pillow_written_png_and_split_idat_are_read() -> None:
    mask = blob_mask(64, 80, seed=3)
    assert_matches_pillow(_png_of(Image.fromarray(mask)))
    assert_matches_pillow(make_png(mask, [UP] * 64, idat_parts=5))


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(make_png(blob_mask(16, 16, 0), [AVERAGE] * 16), id="average-filter"),
        pytest.param(make_png(blob_mask(16, 16, 0), [NONE] * 16, interlace=1), id="interlaced"),
        pytest.param(_png_of(Image.fromarray(blob_mask(16, 16, 0)).convert("RGB")), id="rgb"),
        pytest.param(_png_of(Image.fromarray(blob_mask(16, 16, 0)).convert("1")), id="1-bit"),
        pytest.param(_png_of(Image.fromarray(blob_mask(16, 16, 0)).convert("P")), id="palette"),
        pytest.param(_png_of(Image.fromarray(blob_mask(16, 16, 0).astype(np.uint16) * 257)), id="16-bit"),
        pytest.param(b"not a png at all", id="not-png"),
    ],
)
def test_declines_what_it_does_not_handle(data: bytes) -> None:
    assert read_mask_crop(data, BIG) is None


def test_declines_damaged_files() -> None:
    good = make_png(blob_mask(20, 24, 1), [SUB] * 20)
    assert read_mask_crop(good, BIG) is not None
    for cut in (len(good) - 5, len(good) // 2, 30, 9):
        assert read_mask_crop(good[:cut], BIG) is None, f"truncated at {cut}"
    idat = good.index(b"IDAT") + 6
    flipped = good[:idat] + bytes([good[idat] ^ 0x40]) + good[idat + 1 :]
    assert read_mask_crop(flipped, BIG) is None  # chunk CRC no longer matches
    ihdr_end = 8 + 25
    idat_start, iend_start = good.index(b"IDAT") - 4, good.index(b"IEND") - 4
    reordered = good[:8] + good[idat_start:iend_start] + good[8:ihdr_end] + good[iend_start:]
    assert read_mask_crop(reordered, BIG) is None  # IDAT before IHDR
    twice = good[:ihdr_end] + good[8:ihdr_end] + good[ihdr_end:]
    assert read_mask_crop(twice, BIG) is None  # a second IHDR
    raw_rows = b"".join(b"\x00" + bytes(24) for _ in range(20))
    assert read_mask_crop(make_png(np.zeros((20, 24), np.uint8), [NONE] * 20, stream=zlib.compress(raw_rows)), BIG)
    short = make_png(np.zeros((20, 24), np.uint8), [NONE] * 20, stream=zlib.compress(raw_rows[:-3]))
    long = make_png(np.zeros((20, 24), np.uint8), [NONE] * 20, stream=zlib.compress(raw_rows + b"\x00"))
    garbage = make_png(np.zeros((20, 24), np.uint8), [NONE] * 20, stream=b"\x78\x9c" + bytes(40))
    assert read_mask_crop(short, BIG) is None
    assert read_mask_crop(long, BIG) is None
    assert read_mask_crop(garbage, BIG) is None


def test_declines_headers_larger_than_the_image() -> None:
    data = make_png(blob_mask(20, 24, 1), [NONE] * 20)
    assert read_mask_crop(data, max_pixels=20 * 24) is not None
    assert read_mask_crop(data, max_pixels=20 * 24 - 1) is None


def test_paint_mask_gives_the_same_labels_through_either_reader() -> None:
    """An Average-filtered mask falls back to Pillow; the painted label map must not depend on the path."""
    mask = blob_mask(30, 34, seed=5)
    fast, slow = np.zeros((30, 34), np.uint16), np.zeros((30, 34), np.uint16)
    assert paint_mask(make_png(mask, [PAETH] * 30), "fast.png", fast, 3)
    assert paint_mask(make_png(mask, [AVERAGE] * 30), "slow.png", slow, 3)
    np.testing.assert_array_equal(fast, np.where(mask > 0, 3, 0))
    np.testing.assert_array_equal(slow, fast)


def test_paint_mask_errors_are_unchanged_on_the_fast_path() -> None:
    mask = blob_mask(30, 34, seed=5)
    mask[mask > 0] = 200
    mask[15, 10:20] = 100  # a second foreground value
    with pytest.raises(UnetppError, match=r"bad\.png is not a binary mask \(values 0, 100, 200\)"):
        paint_mask(make_png(mask, [SUB] * 30), "bad.png", np.zeros((30, 34), np.uint16), 1)
    with pytest.raises(UnetppError, match=r"small\.png is 30x34 \(HxW\) but its image is 31x34"):
        paint_mask(make_png(blob_mask(30, 34, 5), [SUB] * 30), "small.png", np.zeros((31, 34), np.uint16), 1)
