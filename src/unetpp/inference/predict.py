"""`unetpp predict`: probabilities for one split subset of the processed set, plus a sample figure.

The rows of `predictions.h5` follow the split's order for the subset (the
order `unetpp evaluate` checks and the batch-pooled IoU depends on).
Probabilities are stored as float16: 2 bytes a pixel is plenty for a value
later thresholded at 0.5, provided the rounding never moves a pixel across
the threshold (values in (0.5, 0.50024) would round down to exactly 0.5 and
turn into background; they are stored as the next float16 above 0.5). So
`unetpp evaluate` on the file gives exactly the IoU that training's
validation computed in fp32, and the figure's IoU agrees with both.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from unetpp.atomic import atomic_path
from unetpp.choices import ARCHITECTURES, DEFAULT_DEVICE, DEFAULT_PRECISION, DEFAULT_PREDICT_BATCH_SIZE
from unetpp.data.processed import load_processed
from unetpp.errors import UnetppError
from unetpp.inference.figures import sample_figure
from unetpp.inference.loading import load_trained_model, select_output
from unetpp.inference.predictor import predict_probabilities
from unetpp.inference.runtime import resolve_runtime
from unetpp.metrics import counts_from_probabilities, per_image_iou

DEFAULT_FIGURE_COUNT = 4


@dataclass(frozen=True)
class PredictResult:
    """What `run_predict` did, for the command's one-line summary."""

    n_images: int
    size: int
    arch: str
    device: str
    precision: str
    figure_ids: list[str]


def choose_figure_ids(subset_ids: Sequence[str], requested: Sequence[str] | None, count: int, split: str) -> list[str]:
    """The requested ids (checked against the subset), else the first `count` ids in sorted order."""
    if requested:
        known = set(subset_ids)
        unknown = [i for i in requested if i not in known]
        if unknown:
            raise UnetppError(
                f"--figure-ids {', '.join(unknown)} not in the '{split}' subset of the split: "
                f"pick ids listed under '{split}' in split.json"
            )
        return list(dict.fromkeys(requested))
    if count < 1:
        raise UnetppError(f"--figure-count must be at least 1, got {count}")
    return sorted(subset_ids)[:count]


ABOVE_HALF = np.nextafter(np.float16(0.5), np.float16(1.0))


def to_float16(probabilities: np.ndarray) -> np.ndarray:
    """float16 copy with `p > 0.5` unchanged for every pixel (see the module docstring)."""
    out = probabilities.astype(np.float16)
    out[(probabilities > 0.5) & (out <= 0.5)] = ABOVE_HALF
    return out


def write_predictions(path: str | os.PathLike[str], probabilities: np.ndarray, ids: Sequence[str], attrs: dict) -> None:
    """predictions.h5: `probabilities` (N,S,S) float16 and `ids` (N,) utf-8 (callers pass a temp path)."""
    import h5py

    with h5py.File(path, "w") as f:
        f.create_dataset("probabilities", data=to_float16(probabilities))
        f.create_dataset("ids", data=list(ids), dtype=h5py.string_dtype("utf-8"))
        for key, value in attrs.items():
            f.attrs[key] = value


def run_predict(
    model_path: str | os.PathLike[str],
    data_path: str | os.PathLike[str],
    split_path: str | os.PathLike[str],
    subset: str,
    out: str | os.PathLike[str],
    figure: str | os.PathLike[str] | None = None,
    figure_ids: Sequence[str] | None = None,
    figure_count: int = DEFAULT_FIGURE_COUNT,
    device: str = DEFAULT_DEVICE,
    precision: str = DEFAULT_PRECISION,
    batch_size: int = DEFAULT_PREDICT_BATCH_SIZE,
    inference_output: str = "last",
    progress: bool | None = None,
) -> PredictResult:
    """Predict `subset`, write `out` (and `figure` if given); nothing is written on any error."""
    if batch_size < 1:
        raise UnetppError(f"--batch-size must be a positive integer, got {batch_size}")
    if figure is not None and Path(figure).resolve() == Path(out).resolve():
        raise UnetppError(f"--figure and --out are the same file ({out}): give the figure its own .png path")
    torch_device, used_precision = resolve_runtime(device, precision)
    data = load_processed(data_path, split_path, subset)
    shown = choose_figure_ids(data.ids, figure_ids, figure_count, subset) if figure is not None else []
    model, checkpoint = load_trained_model(model_path, torch_device)
    arch = str(checkpoint["arch"])
    forward = select_output(model, inference_output, model_path, arch)
    multiple = 2**model.depth
    if data.size % multiple:
        raise UnetppError(
            f"images in {data_path} are {data.size}x{data.size}, not a multiple of {multiple} as the network "
            f"needs: rerun `unetpp preprocess` with --size a multiple of {multiple}"
        )

    probs = to_float16(
        predict_probabilities(
            forward, data.images, torch_device, used_precision, batch_size, progress, description=f"predict {arch}"
        )
    )
    fig = None
    if figure is not None:
        rows = [data.ids.index(i) for i in shown]
        ious = per_image_iou(counts_from_probabilities(probs[rows], data.masks[rows])).tolist()
        name = ARCHITECTURES[arch].display_name
        head = f", output {inference_output}" if inference_output != "last" else ""
        title = f"{name} ({arch}{head}) on {subset}: image / ground truth / prediction"
        fig = sample_figure(data.images[rows], data.masks[rows], probs[rows], shown, ious, title)

    attrs = {"arch": arch, "subset": subset, "inference_output": inference_output, "precision": used_precision}
    # Both outputs are complete before either is renamed into place (ExitStack renames the figure, then
    # the predictions); an error in either deletes both temporaries.
    with contextlib.ExitStack() as stack:
        write_predictions(stack.enter_context(atomic_path(out)), probs, data.ids, attrs)
        if fig is not None and figure is not None:
            fig.savefig(stack.enter_context(atomic_path(figure)), format="png")
    return PredictResult(len(data), data.size, arch, str(torch_device), used_precision, shown)
