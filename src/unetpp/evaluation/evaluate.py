"""`unetpp evaluate`: IoU and Dice of stored predictions against the processed masks (and, with
`interim`, against the native-size masks: `evaluation.native`).

The prediction rows must be the split subset in the split's order: the
batch-pooled figures depend on that order, so a mismatch is an error rather
than something silently re-sorted.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from unetpp.atomic import atomic_path
from unetpp.choices import REDUCTIONS
from unetpp.data.processed import load_processed
from unetpp.errors import UnetppError
from unetpp.evaluation.native import NATIVE_COLUMNS, read_native, score_native
from unetpp.metrics import REFERENCE_BATCH_SIZE, counts_from_probabilities, dice, iou, per_image_dice, per_image_iou

PER_IMAGE_COLUMNS = ("id", "iou", "dice", "intersection", "union", "pred_pixels", "mask_pixels")
_REPREDICT = "rerun `unetpp predict` with the same --data/--split/--subset"


@dataclass(frozen=True)
class Predictions:
    """The content of predictions.h5."""

    probabilities: np.ndarray  # (N, S, S) float16 or float32
    ids: list[str]


def read_predictions(path: str | os.PathLike[str]) -> Predictions:
    """Read and validate predictions.h5 (datasets, shapes, value range)."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise UnetppError(f"predictions file {path} does not exist: run `unetpp predict` to write it")
    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in ("probabilities", "ids") if k not in f]
            if missing:
                raise UnetppError(f"predictions file {path} has no dataset(s) {', '.join(missing)}: {_REPREDICT}")
            probs = f["probabilities"][()]
            ids = [x.decode("utf-8") if isinstance(x, bytes) else str(x) for x in f["ids"][()].tolist()]
    except UnetppError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise UnetppError(
            f"predictions file {path} cannot be read as HDF5 ({exc}): it is corrupt; {_REPREDICT}"
        ) from exc
    if probs.ndim != 3 or not np.issubdtype(probs.dtype, np.floating):
        raise UnetppError(
            f"predictions file {path}: 'probabilities' is {probs.dtype} {probs.shape}, expected float (N, S, S); "
            f"{_REPREDICT}"
        )
    if len(ids) != probs.shape[0]:
        raise UnetppError(
            f"predictions file {path}: {len(ids)} ids for {probs.shape[0]} probability maps; {_REPREDICT}"
        )
    if probs.size and not (np.isfinite(probs).all() and probs.min() >= 0.0 and probs.max() <= 1.0):
        raise UnetppError(f"predictions file {path}: probabilities outside [0, 1] or not finite; {_REPREDICT}")
    return Predictions(probs, ids)


def check_same_ids(
    pred_ids: Sequence[str], subset_ids: Sequence[str], pred_path: str, split_path: str, subset: str
) -> None:
    """Refuse predictions whose ids or order differ from the subset's."""
    if list(pred_ids) == list(subset_ids):
        return
    subset_set, pred_set = set(subset_ids), set(pred_ids)
    extra = [i for i in pred_ids if i not in subset_set]
    absent = [i for i in subset_ids if i not in pred_set]
    if not extra and not absent and len(pred_ids) == len(subset_ids):
        first = next(k for k, (a, b) in enumerate(zip(pred_ids, subset_ids)) if a != b)
        what = (
            f"the same ids in a different order (first difference at row {first}: "
            f"{pred_ids[first]!r} vs {subset_ids[first]!r})"
        )
    else:
        parts = []
        if extra:
            parts.append(f"{len(extra)} id(s) not in the subset (e.g. {extra[0]!r})")
        if absent:
            parts.append(f"{len(absent)} subset id(s) missing (e.g. {absent[0]!r})")
        if not parts:
            parts.append(f"{len(pred_ids)} rows for {len(subset_ids)} subset ids (duplicated ids)")
        what = " and ".join(parts)
    raise UnetppError(
        f"predictions file {pred_path} does not match the '{subset}' subset of {split_path}: {what}; {_REPREDICT}"
    )


def score(
    probabilities: np.ndarray, masks: np.ndarray, ids: Sequence[str], batch_size: int = REFERENCE_BATCH_SIZE
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(summary metrics, one row per image) for probabilities against 0/1 masks."""
    counts = counts_from_probabilities(probabilities.astype(np.float32), masks)
    summary: dict[str, Any] = {"n_images": len(ids)}
    for name, fn in (("iou", iou), ("dice", dice)):
        for reduction in REDUCTIONS:
            summary[f"{name}_{reduction}"] = fn(counts, reduction, batch_size)
    summary["batch_size"] = batch_size
    image_iou = per_image_iou(counts).tolist()
    image_dice = per_image_dice(counts).tolist()
    rows = [
        {
            "id": ids[k],
            "iou": image_iou[k],
            "dice": image_dice[k],
            "intersection": int(counts.intersection[k]),
            "union": int(counts.union[k]),
            "pred_pixels": int(counts.pred_sum[k]),
            "mask_pixels": int(counts.target_sum[k]),
        }
        for k in range(len(ids))
    ]
    return summary, rows


def run_evaluate(
    pred_path: str | os.PathLike[str],
    data_path: str | os.PathLike[str],
    split_path: str | os.PathLike[str],
    subset: str,
    out: str | os.PathLike[str],
    per_image: str | os.PathLike[str] | None = None,
    batch_size: int = REFERENCE_BATCH_SIZE,
    interim: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Score `pred_path` against the subset's masks; write `out` (and `per_image`) or nothing on error.

    With `interim` (the ingest output), every prediction is also scored at its
    image's native size: `iou_native_*`/`dice_native_*` in `out`, NATIVE_COLUMNS in `per_image`.
    """
    if batch_size < 1:
        raise UnetppError(f"--batch-size must be a positive integer, got {batch_size}")
    if per_image is not None and Path(per_image).resolve() == Path(out).resolve():
        raise UnetppError(f"--per-image and --out are the same file ({out}): give each its own path")
    preds = read_predictions(pred_path)
    data = load_processed(data_path, split_path, subset)
    check_same_ids(preds.ids, data.ids, str(pred_path), str(split_path), subset)
    if preds.probabilities.shape != data.masks.shape:
        raise UnetppError(
            f"predictions file {pred_path} holds {preds.probabilities.shape[1]}x{preds.probabilities.shape[2]} maps "
            f"but {data_path} has {data.size}x{data.size} masks; {_REPREDICT}"
        )
    summary, rows = score(preds.probabilities, data.masks, data.ids, batch_size)
    summary["size"] = data.size  # the side the per-size figures were scored at (native ones: below)
    columns = PER_IMAGE_COLUMNS
    if interim is not None:
        native_masks, kinds = read_native(interim, data.ids)
        native_summary, native_rows = score_native(preds.probabilities, native_masks, kinds, batch_size)
        summary.update(native_summary)
        rows = [{**row, **native} for row, native in zip(rows, native_rows, strict=True)]
        columns = PER_IMAGE_COLUMNS + NATIVE_COLUMNS
    with contextlib.ExitStack() as stack:
        json_tmp = stack.enter_context(atomic_path(out))
        json_tmp.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        if per_image is not None:
            csv_tmp = stack.enter_context(atomic_path(per_image))
            with open(csv_tmp, "w", newline="", encoding="utf-8") as fh:
                writer = csv.DictWriter(fh, fieldnames=columns)
                writer.writeheader()
                writer.writerows(rows)
    return summary
