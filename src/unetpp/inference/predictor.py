"""Run a trained model over uint8 RGB images and return foreground probabilities.

Inputs are prepared exactly as training prepares them (uint8 -> float / 255,
no mean/std, channels_last; see `unetpp.training.step.make_batch`) and the
same autocast is used, so a model sees the same numbers at training and
inference time. Probabilities are sigmoid(logits) computed in fp32 even under
bf16 autocast.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from tqdm import tqdm

from unetpp.choices import DEFAULT_PREDICT_BATCH_SIZE
from unetpp.training.device import autocast
from unetpp.training.step import to_model_input

Forward = Callable[[torch.Tensor], torch.Tensor]  # input batch -> logits (N, 1, H, W)


def to_input_tensor(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """(N,H,W,3) uint8 -> (N,3,H,W) float in [0,1] on `device`, channels_last."""
    return to_model_input(torch.from_numpy(np.ascontiguousarray(images)).to(device, non_blocking=True))


@torch.inference_mode()
def predict_batch(forward: Forward, images: np.ndarray, device: torch.device, precision: str) -> np.ndarray:
    """Probabilities (N,H,W) float32 for one batch of (N,H,W,3) uint8 images.

    `forward` is an eval-mode model (its deepest head) or the method
    `loading.select_output` picked for another output.
    """
    with autocast(device, precision):
        logits = forward(to_input_tensor(images, device))
    return torch.sigmoid(logits.float())[:, 0].cpu().numpy()


def predict_probabilities(
    forward: Forward,
    images: np.ndarray,
    device: torch.device,
    precision: str,
    batch_size: int = DEFAULT_PREDICT_BATCH_SIZE,
    progress: bool | None = None,
    description: str = "predict",
) -> np.ndarray:
    """Probabilities (N,H,W) float32 for (N,H,W,3) uint8 images, in batches of `batch_size`.

    `progress=None` shows a bar only on a terminal.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    n, height, width = images.shape[:3]
    out = np.empty((n, height, width), dtype=np.float32)
    starts = range(0, n, batch_size)
    for start in tqdm(starts, desc=description, unit="batch", disable=None if progress is None else not progress):
        stop = min(start + batch_size, n)
        out[start:stop] = predict_batch(forward, images[start:stop], device, precision)
    return out
