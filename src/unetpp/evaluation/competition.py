"""The DSB2018 competition metric and the union-mask IoU, per image.

Per image: for each IoU threshold t in 0.50, 0.55, ..., 0.95, a predicted object
and a true object match when their IoU > t (one-to-one: above 0.5 no object can
overlap two others that much), and the image scores TP / (TP + FP + FN); the
image's score is the mean over the ten thresholds, the data set's the mean over
images. Both label maps use 0 for background and 1..n for objects.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

THRESHOLDS = np.round(np.arange(0.5, 1.0, 0.05), 2)  # 0.50 ... 0.95, ten values


def iou_matrix(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """(n_true, n_pred) IoU of every pair of objects, from one contingency table of the two label maps."""
    if truth.shape != pred.shape:
        raise ValueError(f"label maps differ in shape: truth {truth.shape}, prediction {pred.shape}")
    t = np.unique(truth, return_inverse=True)[1].reshape(-1)  # dense ids 0..; id 0 is background when present
    p = np.unique(pred, return_inverse=True)[1].reshape(-1)
    t_has_bg, p_has_bg = (truth == 0).any(), (pred == 0).any()
    n_t, n_p = int(t.max()) + 1, int(p.max()) + 1
    table = np.bincount(t * n_p + p, minlength=n_t * n_p).reshape(n_t, n_p)
    if t_has_bg:
        table = table[1:]
    if p_has_bg:
        table = table[:, 1:]
    area_t = np.bincount(t, minlength=n_t)[int(t_has_bg):]
    area_p = np.bincount(p, minlength=n_p)[int(p_has_bg):]
    union = area_t[:, None] + area_p[None, :] - table
    return table / np.maximum(union, 1)


@dataclass(frozen=True)
class ImageScore:
    """One image: union-mask IoU, the competition score and the object counts."""

    union_iou: float
    competition: float
    n_true: int
    n_pred: int


def competition_score(truth: np.ndarray, pred: np.ndarray) -> float:
    """Mean over THRESHOLDS of TP / (TP + FP + FN); 1.0 when neither map holds an object."""
    ious = iou_matrix(truth, pred)
    n_true, n_pred = ious.shape
    if n_true == 0 and n_pred == 0:
        return 1.0
    scores = []
    for threshold in THRESHOLDS:
        tp = int((ious > threshold).sum())  # > 0.5 makes every match one-to-one
        scores.append(tp / (n_true + n_pred - tp))  # TP + FP + FN
    return float(np.mean(scores))


def union_iou(truth: np.ndarray, pred: np.ndarray) -> float:
    """|T ∩ P| / |T ∪ P| of the foreground; 1.0 when both are empty."""
    t, p = truth > 0, pred > 0
    union = int((t | p).sum())
    return 1.0 if union == 0 else int((t & p).sum()) / union


def score_image(truth: np.ndarray, pred: np.ndarray) -> ImageScore:
    """Both measures for one image's label maps."""
    n_true = len(np.unique(truth[truth > 0]))
    n_pred = len(np.unique(pred[pred > 0]))
    return ImageScore(union_iou(truth, pred), competition_score(truth, pred), n_true, n_pred)
