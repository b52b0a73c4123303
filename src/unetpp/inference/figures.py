"""The sample figure of `unetpp predict`: one row per image, columns image / ground truth / prediction.

Drawn on a bare Agg canvas (no pyplot), so it works headless and never
touches global matplotlib state.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from unetpp.atomic import atomic_path

COLUMNS = ("image", "ground truth", "prediction")


def sample_figure(
    images: np.ndarray,
    masks: np.ndarray,
    probabilities: np.ndarray,
    ids: Sequence[str],
    ious: Sequence[float],
    title: str,
) -> Figure:
    """Rows = samples; the prediction column shows probability > 0.5, its title the image's IoU."""
    n = len(ids)
    fig = Figure(figsize=(7.5, 2.5 * n + 0.6), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(n, 3, squeeze=False)
    for row in range(n):
        panels = (images[row], masks[row], probabilities[row] > 0.5)
        for col, panel in enumerate(panels):
            ax = axes[row, col]
            if col == 0:
                ax.imshow(panel)
            else:
                ax.imshow(panel, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(COLUMNS[col], fontsize=11, fontweight="bold")
        axes[row, 0].set_ylabel(ids[row][:12], fontsize=8)
        axes[row, 2].set_xlabel(f"IoU {ious[row]:.3f}", fontsize=9)
    fig.suptitle(title, fontsize=12)
    return fig


def save_png(fig: Figure, target: str | os.PathLike[str]) -> None:
    """Write `fig` as PNG through a temporary file, so a crash leaves no partial image."""
    with atomic_path(target) as tmp:
        fig.savefig(tmp, format="png")
