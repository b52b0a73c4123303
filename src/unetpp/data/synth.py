"""A small synthetic nuclei dataset in exactly the Kaggle stage1_train layout, for demos and tests.

Three kinds of image, cycled so every small set has all of them: round
fluorescent nuclei (grey, bright on dark), dark-stained nuclei on a bright
pink "histology" background (colour), and elongated fluorescent nuclei. Nuclei
are irregular blobs that never overlap or touch, each with its own {0,255} mask
PNG; images are RGBA PNGs with alpha 255 like Kaggle's. Everything derives from
the seed (one numpy generator per image), so a seed always gives the same bytes.
"""

from __future__ import annotations

import io
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import binary_dilation
from skimage.draw import polygon
from skimage.filters import gaussian

from unetpp.atomic import atomic_path
from unetpp.errors import UnetppError

KINDS = ("fluorescent", "histology", "elongated")
DEFAULT_SIZES: tuple[tuple[int, int], ...] = ((96, 96), (96, 128), (128, 128), (128, 160))
MIN_SIDE = 16
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class SynthImage:
    id: str
    kind: str
    rgba: np.ndarray  # (H, W, 4) uint8
    masks: dict[str, np.ndarray]  # mask id -> (H, W) uint8 {0, 255}


def parse_size(text: str) -> tuple[int, int]:
    """'HxW' (or a single 'S' for SxS) -> (H, W)."""
    parts = text.lower().split("x")
    try:
        height, width = (int(parts[0]), int(parts[-1])) if len(parts) in (1, 2) else (0, 0)
    except ValueError:
        height = width = 0
    if height < MIN_SIDE or width < MIN_SIDE:
        raise UnetppError(f"--size {text!r} is invalid: write HxW (e.g. 96x128) with both sides at least {MIN_SIDE}.")
    return height, width


def _blob(rng: np.random.Generator, center: tuple[float, float], radii: tuple[float, float], shape: tuple[int, int]):
    """Pixel coordinates of an irregular, rotated ellipse-like blob."""
    angles = np.linspace(0, 2 * np.pi, 32, endpoint=False)
    wobble = (
        1
        + 0.12 * np.sin(2 * angles + rng.uniform(0, 2 * np.pi))
        + 0.06 * np.sin(3 * angles + rng.uniform(0, 2 * np.pi))
    )
    theta = rng.uniform(0, np.pi)
    y, x = radii[0] * wobble * np.sin(angles), radii[1] * wobble * np.cos(angles)
    rows = center[0] + y * np.cos(theta) - x * np.sin(theta)
    cols = center[1] + y * np.sin(theta) + x * np.cos(theta)
    return polygon(rows, cols, shape=shape)


def _place_nuclei(rng: np.random.Generator, kind: str, shape: tuple[int, int]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Rejection-sample blobs that neither overlap nor touch (8-connectivity); the first one always fits."""
    height, width = shape
    short = min(shape)
    target = int(rng.integers(3, 3 + max(2, height * width // (short * short // 12)) + 1))  # ~3-15 nuclei
    taken = np.zeros(shape, dtype=bool)
    nuclei: list[tuple[np.ndarray, np.ndarray]] = []
    for _ in range(10 * target):
        if len(nuclei) == target:
            break
        if kind == "elongated":
            major = rng.uniform(short / 9, short / 5)
            radii = (major * rng.uniform(0.3, 0.5), major)
        else:
            radius = rng.uniform(short / 14, short / 8) * (1.2 if kind == "histology" else 1.0)
            radii = (radius * rng.uniform(0.8, 1.0), radius)
        radii = (max(radii[0], 1.5), max(radii[1], 1.5))
        reach = max(radii) * 1.2
        center = (rng.uniform(reach, height - reach), rng.uniform(reach, width - reach))
        if taken[int(center[0]), int(center[1])]:
            continue
        rows, cols = _blob(rng, center, radii, shape)
        if rows.size < 4:
            continue
        if taken[rows, cols].any():
            continue
        blob = np.zeros(shape, dtype=bool)
        blob[rows, cols] = True
        taken |= binary_dilation(blob, structure=np.ones((3, 3), dtype=bool))  # keep a 1-pixel gap
        nuclei.append((rows, cols))
    return nuclei


def _render(rng: np.random.Generator, kind: str, shape: tuple[int, int], nuclei) -> np.ndarray:
    """An RGB float image in [0, 1] with noisy background and textured nuclei."""
    if kind == "histology":
        background = np.array([0.92, 0.76, 0.86]) * rng.uniform(0.9, 1.0)
        stain = np.array([0.36, 0.20, 0.55])
        image = np.broadcast_to(background, (*shape, 3)).copy()
        for rows, cols in nuclei:
            image[rows, cols] = stain * rng.uniform(0.7, 1.1)
        image += rng.normal(0, 0.035, size=image.shape)
        image = gaussian(image, sigma=0.8, channel_axis=-1)
    else:
        grey = np.full(shape, rng.uniform(0.02, 0.12))
        for rows, cols in nuclei:
            grey[rows, cols] = rng.uniform(0.35, 0.95)
        grey *= 1 + rng.normal(0, 0.08, size=shape)
        grey += rng.normal(0, 0.02, size=shape)
        grey = gaussian(grey, sigma=0.8)
        image = np.repeat(grey[:, :, None], 3, axis=2)
    return np.clip(image, 0, 1)


def make_image(seed: int, index: int, sizes: tuple[tuple[int, int], ...] = DEFAULT_SIZES) -> SynthImage:
    """The `index`-th image of the dataset for `seed`, independent of how many others there are."""
    rng = np.random.default_rng([seed, index])
    kind = KINDS[index % len(KINDS)]
    shape = sizes[int(rng.integers(len(sizes)))]
    image_id = rng.bytes(32).hex()
    nuclei = _place_nuclei(rng, kind, shape)
    rgb = np.rint(_render(rng, kind, shape, nuclei) * 255).astype(np.uint8)
    rgba = np.concatenate([rgb, np.full((*shape, 1), 255, dtype=np.uint8)], axis=2)
    masks = {}
    for rows, cols in nuclei:
        mask = np.zeros(shape, dtype=np.uint8)
        mask[rows, cols] = 255
        masks[rng.bytes(32).hex()] = mask
    return SynthImage(image_id, kind, rgba, masks)


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _entries(images: list[SynthImage]) -> dict[str, bytes]:
    entries = {}
    for item in images:
        entries[f"{item.id}/images/{item.id}.png"] = _png(item.rgba)
        for mask_id, mask in item.masks.items():
            entries[f"{item.id}/masks/{mask_id}.png"] = _png(mask)
    return dict(sorted(entries.items()))


def synthesize(
    n: int, out: str | os.PathLike[str], seed: int = 0, sizes: tuple[tuple[int, int], ...] = DEFAULT_SIZES
) -> list[SynthImage]:
    """Write `n` images to `out`: a zip (stored, fixed timestamps) when it ends in .zip, else a folder."""
    if n < 1:
        raise UnetppError(f"--n {n} is invalid: ask for at least 1 image.")
    if not sizes:
        raise UnetppError("no --size given; pass at least one HxW, e.g. --size 96x128.")
    out = Path(out)
    images = [make_image(seed, index, sizes) for index in range(n)]
    entries = _entries(images)
    if out.suffix.lower() == ".zip":
        with atomic_path(out) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as archive:
            for name, data in entries.items():
                info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
                info.create_system = 3
                info.external_attr = 0o644 << 16
                archive.writestr(info, data)
    else:
        with atomic_path(out, is_dir=True) as tmp:
            for name, data in entries.items():
                path = tmp / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
    return images
