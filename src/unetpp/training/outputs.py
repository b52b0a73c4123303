"""The stage's declared outputs: model.pt, history.csv and train.json, written together at the end.

All three are written to temp files first and renamed only after every one
is complete, so a failure never leaves a mix of old and new files.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

import torch

from unetpp.atomic import atomic_path, remove_stale_temps  # noqa: F401 - the training loop imports it from here
from unetpp.choices import REDUCTIONS

# history.csv's columns, in order (`loop.history_row` writes one row per epoch; aggregate reads them).
HISTORY_COLUMNS = (
    "epoch",
    "train_loss",
    "train_iou",
    "val_loss",
    *(f"val_iou_{r}" for r in REDUCTIONS),
    "lr",
    "seconds",
)
MODEL_FILE, HISTORY_FILE, SUMMARY_FILE = "model.pt", "history.csv", "train.json"


def write_history(path: str | os.PathLike[str], history: list[dict[str, Any]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=HISTORY_COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(history)


def write_outputs(
    out_dir: str | os.PathLike[str],
    model_payload: dict[str, Any],
    history: list[dict[str, Any]],
    summary: dict[str, Any],
) -> None:
    """Write `out_dir/{model.pt,history.csv,train.json}`; renames happen only once all three are written."""
    out = Path(out_dir)
    with (
        atomic_path(out / MODEL_FILE) as model_tmp,
        atomic_path(out / HISTORY_FILE) as history_tmp,
        atomic_path(out / SUMMARY_FILE) as summary_tmp,
    ):
        model_tmp.write_bytes(model_bytes(model_payload))
        write_history(history_tmp, history)
        summary_tmp.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")


def model_bytes(payload: dict[str, Any]) -> bytes:
    """torch.save's bytes for `payload`, the same for the same content.

    Saved to a file, torch.save names the archive's inner folder after the
    file, and the atomic write's temp name is random; saved to a buffer the
    folder is always "archive", so identical trainings give identical files
    (DVC caches by content hash).
    """
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def load_model_payload(path: str | os.PathLike[str]) -> dict[str, Any]:
    """model.pt as written by `write_outputs`, loaded safely (tensors and plain containers only)."""
    return torch.load(path, map_location="cpu", weights_only=True)
