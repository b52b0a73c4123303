"""Tiny inputs for the predict / predict-images / evaluate / aggregate tests.

Built directly with h5py/numpy/torch in the formats of docs/DESIGN.md, so
these tests do not depend on the data or training stages.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import torch

from unetpp.models import build_model

TINY_FILTERS = (4, 8, 16, 32, 64)


def write_processed(path: Path, n: int = 8, size: int = 32, seed: int = 0) -> list[str]:
    """Random images with one bright disc each; the mask is the disc."""
    rng = np.random.default_rng(seed)
    ids = [f"img{k:03d}" for k in range(n)]
    yy, xx = np.mgrid[:size, :size]
    images = rng.integers(0, 60, size=(n, size, size, 3), dtype=np.uint8)
    masks = np.zeros((n, size, size), dtype=np.uint8)
    for k in range(n):
        cy, cx = rng.integers(8, size - 8, size=2)
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= 30
        masks[k] = disc
        images[k][disc] = 220
    with h5py.File(path, "w") as f:
        f["images"] = images
        f["masks"] = masks
        f.create_dataset("ids", data=ids, dtype=h5py.string_dtype("utf-8"))
        f.attrs["size"] = size
        f.attrs["input_sha256"] = "0" * 64
    return ids


def write_split(path: Path, train: list[str], val: list[str], test: list[str] | None = None) -> None:
    path.write_text(
        json.dumps(
            {"seed": 0, "val_fraction": 0.5, "test_fraction": 0.0, "train": train, "val": val, "test": test or []}
        )
    )


def disc_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """(H,W,3) uint8: dark noise with one bright disc."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 80, size=(height, width, 3), dtype=np.uint8)
    yy, xx = np.mgrid[:height, :width]
    image[(yy - height // 2) ** 2 + (xx - width // 3) ** 2 <= (min(height, width) // 4) ** 2] = 230
    return image


def _calibrate(model: torch.nn.Module, seed: int) -> None:
    """Shift the output bias so about half the pixels of typical inputs are foreground.

    An untrained network otherwise predicts all-background or all-foreground,
    and tests comparing masks would compare blank images.
    """
    images = np.stack([disc_image(32, 32, seed + k) for k in range(4)])
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    model.eval()
    with torch.no_grad():
        median = model(x).median()
        heads = model.heads if hasattr(model, "heads") else [model.head]
        for head in heads:
            head.bias -= median


def write_model(path: Path, arch: str = "unet", seed: int = 0, block: str | None = None) -> torch.nn.Module:
    """A small random model, biased to give non-trivial masks, saved in the `unetpp train` model.pt format.

    Without `block` the file has no "block" key, as files written before `--block` existed (the vgg block).
    """
    torch.manual_seed(seed)
    kwargs = {"filters": list(TINY_FILTERS)}
    model = build_model(arch, **kwargs, **({} if block is None else {"block": block}))
    _calibrate(model, seed)
    torch.save(
        {
            **({} if block is None else {"block": block}),
            "state_dict": model.state_dict(),
            "arch": arch,
            "model_kwargs": kwargs,
            "settings": {"arch": arch, "epochs": 1, "lr": 3e-4, "batch_size": 4, "seed": seed},
            "best_epoch": 1,
            "best_val_iou": 0.5,
        },
        path,
    )
    return model.eval()
