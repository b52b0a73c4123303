"""`unetpp evaluate --interim`: the val predictions scored at each image's native size.

A model trained at another size has other processed val masks, so its
per-size IoU cannot be set beside the reference's 96x96 one. Resized back
to native size (`data.preprocess.resize_probabilities`, the way
`predict-test` does it) and thresholded at 0.5, every prediction is scored
against the same ingested native union mask, whatever size it was made at.
Each image's kind (`data.image_kind`: fluorescence, brightfield or colour) goes
with its scores, and the native per-image IoU is also averaged per kind.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from unetpp.choices import REDUCTIONS
from unetpp.data.image_kind import IMAGE_KINDS, image_kind, kind_keys
from unetpp.data.preprocess import open_interim, resize_probabilities
from unetpp.errors import UnetppError
from unetpp.metrics import PixelCounts, counts_from_probabilities, dice, iou, per_image_dice, per_image_iou

NATIVE_COLUMNS = (
    "native_height", "native_width", "native_iou", "native_dice", "native_intersection", "native_union",
    "native_pred_pixels", "native_mask_pixels", "image_kind",
)


def read_native(path: str | os.PathLike[str], ids: Sequence[str]) -> tuple[list[np.ndarray], list[str]]:
    """(the (H,W) 0/1 union masks, the image kinds) of `ids` from an ingest output, in that order."""
    path = Path(path)
    with open_interim(path) as h5:
        for group, what in (("masks", "mask"), ("images", "image")):
            absent = [i for i in ids if i not in h5[group]]
            if absent:
                raise UnetppError(
                    f"{path} has no {what} for {len(absent)} of the {len(ids)} ids (e.g. {absent[0]!r}): pass "
                    "the `unetpp ingest` output the processed data was made from (data/interim/stage1_train.h5)"
                )
        masks = [h5["masks"][i][()] for i in ids]
        kinds = [image_kind(h5["images"][i][()]) for i in ids]
    return masks, kinds


def native_counts(probabilities: np.ndarray, masks: Sequence[np.ndarray]) -> PixelCounts:
    """Counts of each (S,S) probability map, resized to its mask's (H,W) and thresholded at 0.5, against it."""
    parts = []
    for probs, mask in zip(probabilities, masks, strict=True):
        native = resize_probabilities(probs.astype(np.float32), *mask.shape)
        parts.append(counts_from_probabilities(native[None], mask[None]))
    return PixelCounts.concat(parts)


def score_native(
    probabilities: np.ndarray, masks: Sequence[np.ndarray], kinds: Sequence[str], batch_size: int
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(the native-size figures, NATIVE_COLUMNS per image).

    The figures: `iou_native_<reduction>` / `dice_native_<reduction>`, and for each kind present the
    mean native per-image IoU of its images and their number (`kind_keys`).
    """
    counts = native_counts(probabilities, masks)
    summary: dict[str, Any] = {
        f"{name}_native_{reduction}": fn(counts, reduction, batch_size)
        for name, fn in (("iou", iou), ("dice", dice))
        for reduction in REDUCTIONS
    }
    image_iou, image_dice = per_image_iou(counts).tolist(), per_image_dice(counts).tolist()
    for kind in IMAGE_KINDS:
        scores = [value for value, its_kind in zip(image_iou, kinds, strict=True) if its_kind == kind]
        if scores:
            mean_key, n_key = kind_keys(kind)
            summary[mean_key], summary[n_key] = float(np.mean(scores)), len(scores)
    rows = [
        {
            "native_height": int(mask.shape[0]),
            "native_width": int(mask.shape[1]),
            "native_iou": image_iou[k],
            "native_dice": image_dice[k],
            "native_intersection": int(counts.intersection[k]),
            "native_union": int(counts.union[k]),
            "native_pred_pixels": int(counts.pred_sum[k]),
            "native_mask_pixels": int(counts.target_sum[k]),
            "image_kind": kinds[k],
        }
        for k, mask in enumerate(masks)
    ]
    return summary, rows
