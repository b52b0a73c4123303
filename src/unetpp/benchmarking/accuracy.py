"""Train the same model briefly through two paths and compare the IoU they reach.

A faster path is only acceptable if it learns the same thing: this trains
from the same initial weights on the same batch order through `train_step`
(the function `unetpp train` calls) and scores with `eval_step`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from unetpp.benchmarking.paths import StepPath, build_for_path
from unetpp.metrics import PixelCounts, iou
from unetpp.training.step import eval_step, make_batch, train_step


def short_training_iou(
    arch: str,
    path: StepPath,
    train: tuple[np.ndarray, np.ndarray],
    score: tuple[np.ndarray, np.ndarray],
    epochs: int,
    batch_size: int,
    seed: int = 0,
    model_kwargs: dict[str, Any] | None = None,
    lr: float = 1e-3,
) -> float:
    """Per-image IoU on `score` (uint8 images, 0/1 masks) after `epochs` epochs on `train` via `path`."""
    device = torch.device("cpu")
    model, _ = build_for_path(arch, path, device, seed, model_kwargs)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    images, masks = (torch.from_numpy(np.ascontiguousarray(a)) for a in train)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(images.shape[0], generator=generator)
        for start in range(0, len(order), batch_size):
            x, y = make_batch(images, masks, order[start : start + batch_size])
            train_step(model, optimizer, x.contiguous(memory_format=path.memory_format), y, path.precision)
    model.eval()
    images, masks = (torch.from_numpy(np.ascontiguousarray(a)) for a in score)
    counts = []
    for start in range(0, images.shape[0], batch_size):
        x, y = make_batch(images, masks, torch.arange(start, min(start + batch_size, images.shape[0])))
        counts.append(eval_step(model, x.contiguous(memory_format=path.memory_format), y, path.precision)[1])
    return iou(PixelCounts.concat(counts), "per_image")
