"""One label per nucleus from a union foreground mask: connected components, or a watershed that splits touching nuclei.

The network predicts foreground only, so nuclei that touch form one component.
The watershed floods the negative distance to the background from one marker per
local maximum of that distance (at least `min_distance` pixels apart), so two
round nuclei joined by a neck become two objects. Objects under `min_size`
pixels are dropped: they are mostly speckle, and each costs a false positive in
the competition metric.
"""

from __future__ import annotations

import numpy as np

METHODS = ("cc", "watershed")
# Chosen on the val images of stage1_train, never on a test set (docs/test-sets.md;
# benchmarks/choose_instances.py); params.yaml's test section repeats them for the workflow.
DEFAULT_METHOD = "watershed"
DEFAULT_MIN_DISTANCE = 13
DEFAULT_MIN_SIZE = 10
_MAX_LABEL = int(np.iinfo(np.uint16).max)


def _watershed(mask: np.ndarray, components: np.ndarray, min_distance: int) -> np.ndarray:
    from scipy.ndimage import distance_transform_edt
    from skimage.feature import peak_local_max
    from skimage.measure import label
    from skimage.segmentation import watershed

    distance = distance_transform_edt(mask)
    peaks = peak_local_max(distance, min_distance=min_distance, labels=components, exclude_border=False)
    marked = np.zeros(mask.shape, dtype=bool)
    marked[tuple(peaks.T)] = True
    markers = label(marked, connectivity=2)  # a plateau's adjacent peak pixels are one marker
    split = watershed(-distance, markers, mask=mask)
    unmarked = mask & (split == 0)  # a component without a peak keeps its own label
    if unmarked.any():
        extra = label(unmarked, connectivity=1)
        split = np.where(unmarked, extra + split.max(), split)
    return split


def label_instances(
    mask: np.ndarray,
    method: str = DEFAULT_METHOD,
    min_distance: int = DEFAULT_MIN_DISTANCE,
    min_size: int = DEFAULT_MIN_SIZE,
) -> np.ndarray:
    """uint16 (H,W) map, 0 = background, objects 1..n in raster order of their first pixel; objects never overlap.

    `cc`: 4-connected components (diagonal contact does not merge two nuclei).
    `watershed`: each component split at the necks of its distance transform.
    """
    from skimage.measure import label

    if method not in METHODS:
        raise ValueError(f"unknown instance method {method!r}: choose one of {', '.join(METHODS)}")
    mask = np.asarray(mask, dtype=bool)
    labels = label(mask, connectivity=1)
    if method == "watershed" and labels.max():
        labels = _watershed(mask, labels, min_distance)
    if min_size > 1 and labels.max():
        sizes = np.bincount(labels.ravel())
        small = sizes < min_size
        small[0] = False
        labels[small[labels]] = 0
    labels = label(labels > 0, connectivity=1) if method == "cc" else _raster_order(labels)
    if labels.max() > _MAX_LABEL:
        raise ValueError(f"{labels.max()} objects do not fit a 16-bit label map")
    return labels.astype(np.uint16)


def _raster_order(labels: np.ndarray) -> np.ndarray:
    """Renumber 1..n by each object's first pixel in row-major order, so the numbering does not depend on the method."""
    flat = labels.ravel()
    found, first = np.unique(flat, return_index=True)
    keep = found > 0
    order = found[keep][np.argsort(first[keep])]
    lookup = np.zeros(int(flat.max()) + 1, dtype=np.int64)
    lookup[order] = np.arange(1, order.size + 1)
    return lookup[labels]
