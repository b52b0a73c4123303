"""`unetpp aggregate`: every architecture side by side, in three files.

Inputs are derived from the options only (`<models-dir>/<arch>/history.csv`,
`<models-dir>/<arch>/train.json`, `<results-dir>/<arch>/metrics.json`), so a
workflow can declare each one. model.pt is not read: the parameter count is
recomputed from the architecture and model_kwargs recorded in train.json.

`metrics.json` is nested one level, `{arch: {metric: value}}`; `dvc metrics
show/diff` flattens it to `unet.iou_per_image` and so on.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unetpp.atomic import atomic_path
from unetpp.errors import UnetppError

# IoU on the DSB2018 validation set at 96x96 as published by the original blog
# post, which is the reference's batch-pooled validation IoU.
PUBLISHED_IOU = {"unet": 0.8347, "nested_unet": 0.8321, "nested_unet_ds": 0.8367}
HISTORY_COLUMNS = ("epoch", "train_loss", "train_iou", "val_loss", "val_iou")
EVAL_KEYS = (
    "n_images",
    "iou_per_image",
    "iou_pooled",
    "iou_batch_pooled",
    "dice_per_image",
    "dice_pooled",
    "dice_batch_pooled",
)
TRAIN_KEYS = ("best_epoch", "best_val_iou", "epochs_run", "wall_seconds")
OUTPUT_NAMES = ("metrics.json", "summary.md", "curves.png")


@dataclass(frozen=True)
class ArchResult:
    """Everything the three outputs need about one architecture."""

    arch: str
    parameters: int
    train: dict[str, Any]
    evaluation: dict[str, Any]
    history: dict[str, list[float]]  # column -> values, one per epoch


def input_paths(arch: str, models_dir: Path, results_dir: Path) -> dict[str, Path]:
    """The three files aggregate reads for `arch`."""
    return {
        "history": models_dir / arch / "history.csv",
        "train": models_dir / arch / "train.json",
        "metrics": results_dir / arch / "metrics.json",
    }


def _read_json(path: Path, fix: str) -> dict[str, Any]:
    if not path.is_file():
        raise UnetppError(f"{path} does not exist: {fix}")
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UnetppError(f"{path} is not valid JSON ({exc}): {fix}") from exc
    if not isinstance(value, dict):
        raise UnetppError(f"{path} does not hold a JSON object: {fix}")
    return value


def _need(mapping: dict[str, Any], keys: Sequence[str], path: Path, fix: str) -> None:
    missing = [k for k in keys if k not in mapping]
    if missing:
        raise UnetppError(f"{path} lacks the key(s) {', '.join(missing)}: {fix}")


def read_history(path: Path, fix: str) -> dict[str, list[float]]:
    """history.csv as columns of floats, checked for the columns the curves need."""
    if not path.is_file():
        raise UnetppError(f"{path} does not exist: {fix}")
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UnetppError(f"{path} cannot be read as CSV ({exc}): {fix}") from exc
    if not rows:
        raise UnetppError(f"{path} has no epochs: {fix}")
    _need(rows[0], HISTORY_COLUMNS, path, fix)
    try:
        return {col: [float(row[col]) for row in rows] for col in HISTORY_COLUMNS}
    except (TypeError, ValueError) as exc:
        raise UnetppError(f"{path} holds a non-numeric value ({exc}): {fix}") from exc


def parameter_count(arch: str, train: dict[str, Any], path: Path) -> int:
    """train.json's `parameters` if present, else counted on the model rebuilt from its settings."""
    if isinstance(train.get("parameters"), int):
        return train["parameters"]
    from unetpp.models import build_model, count_parameters

    settings = train.get("settings") if isinstance(train.get("settings"), dict) else {}
    kwargs = settings.get("model_kwargs", {}) if isinstance(settings.get("model_kwargs", {}), dict) else {}
    try:
        return count_parameters(build_model(arch, **kwargs))
    except (TypeError, ValueError) as exc:
        raise UnetppError(
            f"{path}: cannot rebuild {arch} from model_kwargs {kwargs} to count its parameters ({exc}): "
            f"rerun `unetpp train` for {arch}"
        ) from exc


def collect(arch: str, models_dir: Path, results_dir: Path) -> ArchResult:
    """Read and check the three input files of one architecture."""
    paths = input_paths(arch, models_dir, results_dir)
    retrain = f"run `unetpp train --arch {arch} --out {models_dir / arch}` (or `snakemake`/`dvc repro`)"
    reevaluate = f"run `unetpp predict` and `unetpp evaluate` for {arch} (or `snakemake`/`dvc repro`)"
    train = _read_json(paths["train"], retrain)
    _need(train, TRAIN_KEYS, paths["train"], retrain)
    if train.get("arch", arch) != arch:
        raise UnetppError(
            f"{paths['train']} was written for arch {train['arch']!r}, not {arch!r}: its folder name and content "
            f"disagree; {retrain}"
        )
    evaluation = _read_json(paths["metrics"], reevaluate)
    _need(evaluation, EVAL_KEYS, paths["metrics"], reevaluate)
    history = read_history(paths["history"], retrain)
    return ArchResult(arch, parameter_count(arch, train, paths["train"]), train, evaluation, history)


def metrics_table(results: Sequence[ArchResult]) -> dict[str, dict[str, float | int]]:
    """The content of results/metrics.json."""
    table: dict[str, dict[str, float | int]] = {}
    for r in results:
        table[r.arch] = {
            **{key: r.evaluation[key] for key in EVAL_KEYS[1:]},
            "n_images": int(r.evaluation["n_images"]),
            "best_epoch": int(r.train["best_epoch"]),
            "best_val_iou": float(r.train["best_val_iou"]),
            "epochs_run": int(r.train["epochs_run"]),
            "train_seconds": float(r.train["wall_seconds"]),
            "parameters": int(r.parameters),
        }
    return table


def format_duration(seconds: float) -> str:
    """12.3 s, 4.5 min or 1 h 02 min."""
    if seconds < 90:
        return f"{seconds:.1f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours} h {minutes:02d} min"


def summary_markdown(results: Sequence[ArchResult]) -> str:
    """A markdown table of every arch, the published IoU beside ours, and what each column means."""
    from unetpp.models import ARCHITECTURES

    header = (
        "Architecture",
        "Parameters",
        "Epochs run",
        "Best epoch",
        "IoU per image",
        "IoU pooled",
        "IoU batch-pooled",
        "Published IoU",
        "Dice per image",
        "Training time",
    )
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|"]
    for r in results:
        published = PUBLISHED_IOU.get(r.arch)
        cells = (
            f"{ARCHITECTURES[r.arch].display_name} (`{r.arch}`)",
            f"{r.parameters:,}",
            str(r.train["epochs_run"]),
            str(r.train["best_epoch"]),
            f"{r.evaluation['iou_per_image']:.4f}",
            f"{r.evaluation['iou_pooled']:.4f}",
            f"{r.evaluation['iou_batch_pooled']:.4f}",
            f"{published:.4f}" if published is not None else "n/a",
            f"{r.evaluation['dice_per_image']:.4f}",
            format_duration(float(r.train["wall_seconds"])),
        )
        lines.append("| " + " | ".join(cells) + " |")
    n_images = sorted({int(r.evaluation["n_images"]) for r in results})
    batch = sorted({int(r.evaluation.get("batch_size", 16)) for r in results})
    devices = sorted({str(r.train.get("device", "?")) + ", " + str(r.train.get("precision", "?")) for r in results})
    notes = f"""
Scores on the {' / '.join(map(str, n_images))} evaluated images (the split's evaluation subset), prediction =
probability > 0.5, mask = ground truth > 0.5. An image whose prediction and mask are both empty scores 1.

- **Parameters**: trainable parameters of the model.
- **Epochs run**: epochs trained before the epoch limit or early stopping; **Best epoch**: the epoch whose
  weights were kept (highest validation IoU per image).
- **IoU per image**: intersection over union of each image, averaged over images (our primary figure).
- **IoU pooled**: total intersection over total union, summed over all evaluated images.
- **IoU batch-pooled**: intersection over union pooled within consecutive batches of {'/'.join(map(str, batch))}
  images in split order, averaged weighted by batch size: how the reference implementation reports validation
  IoU, hence the column to set beside the published figure.
- **Published IoU**: the IoU the original blog reports for the same architecture on DSB2018 at 96x96
  (U-Net 0.8347, UNet++ 0.8321, UNet++ with deep supervision 0.8367), measured on its own random validation
  split, not on ours.
- **Dice per image**: 2|P and T| / (|P| + |T|) of each image, averaged over images.
- **Training time**: wall-clock time of `unetpp train` ({'; '.join(devices)}).
"""
    return "# U-Net vs UNet++ on DSB2018\n\n" + "\n".join(lines) + "\n" + notes


def curves_figure(results: Sequence[ArchResult]):
    """Loss and IoU per epoch, train dashed and validation solid, one colour per arch."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from unetpp.models import ARCHITECTURES

    fig = Figure(figsize=(11, 4.2), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax_loss, ax_iou = fig.subplots(1, 2)
    colours = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"]
    for k, r in enumerate(results):
        colour = colours[k % len(colours)]
        name = ARCHITECTURES[r.arch].display_name
        epochs = r.history["epoch"]
        # Markers keep short runs visible: a one-epoch line has no length.
        marker = "." if len(epochs) <= 30 else None
        for ax, metric in ((ax_loss, "loss"), (ax_iou, "iou")):
            ax.plot(epochs, r.history[f"train_{metric}"], color=colour, linestyle="--", marker=marker,
                    label=f"{name} train")
            ax.plot(epochs, r.history[f"val_{metric}"], color=colour, linestyle="-", marker=marker,
                    label=f"{name} val")
        best = int(r.train["best_epoch"])
        if best in epochs:
            ax_iou.plot([best], [r.history["val_iou"][epochs.index(best)]], "o", color=colour)
    ax_loss.set(title="Loss: 0.5 BCE + (1 - soft Dice)", xlabel="epoch", ylabel="loss")
    ax_iou.set(title="IoU per image (dot: kept epoch)", xlabel="epoch", ylabel="IoU")
    for ax in (ax_loss, ax_iou):
        ax.grid(alpha=0.3)
    ax_iou.legend(fontsize=8, loc="lower right")
    return fig


def run_aggregate(
    archs: Sequence[str],
    models_dir: str | os.PathLike[str],
    results_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
) -> list[Path]:
    """Write `out_dir/{metrics.json,summary.md,curves.png}`; all three or none."""
    from unetpp.models import ARCHITECTURES

    if not archs:
        raise UnetppError("no --arch given: name each architecture to aggregate, e.g. --arch unet --arch nested_unet")
    duplicated = sorted({a for a in archs if list(archs).count(a) > 1})
    if duplicated:
        raise UnetppError(f"--arch {', '.join(duplicated)} given more than once: name each architecture once")
    unknown = [a for a in archs if a not in ARCHITECTURES]
    if unknown:
        raise UnetppError(f"unknown --arch {', '.join(unknown)}: choose from {', '.join(ARCHITECTURES)}")
    results = [collect(a, Path(models_dir), Path(results_dir)) for a in archs]
    table = metrics_table(results)
    bad = [f"{a}.{k}" for a, row in table.items() for k, v in row.items() if not math.isfinite(v)]
    if bad:
        raise UnetppError(f"non-finite values in the inputs ({', '.join(bad)}): rerun the stages that wrote them")
    markdown = summary_markdown(results)
    fig = curves_figure(results)
    out = Path(out_dir)
    targets = [out / name for name in OUTPUT_NAMES]
    with contextlib.ExitStack() as stack:
        tmp_json, tmp_md, tmp_png = (stack.enter_context(atomic_path(t)) for t in targets)
        tmp_json.write_text(json.dumps(table, indent=2) + "\n", encoding="utf-8")
        tmp_md.write_text(markdown, encoding="utf-8")
        fig.savefig(tmp_png, format="png")
    return targets
