"""`unetpp aggregate`: every architecture and training seed side by side.

Inputs are derived from the options only (`<models-dir>/<arch>/seed<seed>/history.csv`,
`.../train.json`, `<results-dir>/<arch>/seed<seed>/metrics.json`, and the
`per_image.csv` beside it for the archs of a comparison), so a workflow can
declare each one. model.pt is not read: the parameter count is recomputed
from the architecture and model_kwargs recorded in train.json.

`metrics.json` is `{arch: {"mean": {metric: value}, "sd": {metric: value or null},
"seeds": {"0": {metric: value}}}}` (sd is the sample sd over seeds, null with one
seed); `dvc metrics show/diff` flattens it to `unet.mean.iou_per_image` and so on.
When U-Net and a UNet++ variant are both aggregated it also holds `"comparisons":
{"nested_unet_vs_unet": {"seeds": {"0": stats}, "pooled": stats}}`, the paired
bootstrap of `unetpp.evaluation.compare` (`comparisons.nested_unet_vs_unet.pooled.mean_diff`, ...).

`headline.json` holds only the figures people compare, under short keys, rounded as summary.md shows them
(`headline`): it is the DVC metric, so `dvc metrics diff` and `dvc exp show` stay readable at 120 columns.
`headline/<arch>.json` holds each arch's entry alone: `dvc metrics show results/variants/<variant>/headline`
prints one row per arch with the same columns. `summary.html` is summary.md rendered, for `snakemake --report`.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import statistics
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from unetpp.atomic import atomic_path
from unetpp.choices import ARCHITECTURES, DEFAULT_SELECTION_METRIC, REDUCTIONS
from unetpp.data.image_kind import KIND_KEYS
from unetpp.errors import UnetppError
from unetpp.evaluation.compare import COMPARISONS, compare_archs, comparison_markdown, comparison_name
from unetpp.evaluation.summary_html import markdown_to_html

# IoU on the DSB2018 validation set at 96x96 as published by the original blog
# post, which is the reference's batch-pooled validation IoU.
PUBLISHED_IOU = {"unet": 0.8347, "nested_unet": 0.8321, "nested_unet_ds": 0.8367}
# The content digest (unetpp.data.content) of the DSB2018 stage1_train release: the
# published IoU and the "on DSB2018" title apply only to data `unetpp fetch` checked
# against it (the workflow passes params.yaml's data.content_sha256 as --content-sha256).
STAGE1_TRAIN_CONTENT_SHA256 = "9ab049873a11411440d9027c902103a230434e55382bbbfe7f974f3f88fd743c"
HISTORY_COLUMNS = (
    "epoch",
    "train_loss",
    "train_iou",
    "val_loss",
    *(f"val_iou_{metric}" for metric in REDUCTIONS),
)
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
# Reported when train.json has them (written by `unetpp train` since selection_metric exists).
BEST_BY_METRIC_KEYS = tuple(f"best_val_iou_{metric}" for metric in REDUCTIONS)
# Reported when metrics.json has them (`unetpp evaluate --interim`): the native-size scores and the size, and
# the native per-image IoU of each image kind with its number of images.
NATIVE_KEYS = (
    "size", *(f"{name}_native_{metric}" for name in ("iou", "dice") for metric in REDUCTIONS), *KIND_KEYS
)
OUTPUT_NAMES = ("metrics.json", "summary.md", "curves.png", "headline.json", "summary.html")
# The folder of headline/<arch>.json, one file per arch.
HEADLINE_DIR = "headline"
# The digits summary.md shows (and headline.json keeps).
HEADLINE_DIGITS = 4

Table = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class RunResult:
    """Everything the three outputs need about one (architecture, seed) run."""

    arch: str
    seed: int
    parameters: int
    train: dict[str, Any]
    evaluation: dict[str, Any]
    history: dict[str, list[float]]  # column -> values, one per epoch

    @property
    def selection_metric(self) -> str:
        """The val IoU that chose the kept epoch (train.json's, else the reference's)."""
        return str(self.train.get("selection_metric", DEFAULT_SELECTION_METRIC))  # a train.json from before the option


def run_dir_name(seed: int) -> str:
    """The folder of one seed below <dir>/<arch>/: seed0, seed1, ..."""
    return f"seed{seed}"


def input_paths(arch: str, seed: int, models_dir: Path, results_dir: Path) -> dict[str, Path]:
    """The three files aggregate reads for one (arch, seed)."""
    run = run_dir_name(seed)
    return {
        "history": models_dir / arch / run / "history.csv",
        "train": models_dir / arch / run / "train.json",
        "metrics": results_dir / arch / run / "metrics.json",
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
    # `seconds` (each epoch's wall time) where the file has it: the training time without pauses.
    columns = (*HISTORY_COLUMNS, *(("seconds",) if "seconds" in rows[0] else ()))
    try:
        return {col: [float(row[col]) for row in rows] for col in columns}
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


def collect(arch: str, seed: int, models_dir: Path, results_dir: Path) -> RunResult:
    """Read and check the three input files of one (arch, seed) run."""
    paths = input_paths(arch, seed, models_dir, results_dir)
    out = models_dir / arch / run_dir_name(seed)
    retrain = f"run `unetpp train --arch {arch} --seed {seed} --out {out}` (or `snakemake`/`dvc repro`)"
    reevaluate = f"run `unetpp predict` and `unetpp evaluate` for {arch} seed {seed} (or `snakemake`/`dvc repro`)"
    train = _read_json(paths["train"], retrain)
    _need(train, TRAIN_KEYS, paths["train"], retrain)
    if train.get("arch", arch) != arch:
        raise UnetppError(
            f"{paths['train']} was written for arch {train['arch']!r}, not {arch!r}: its folder name and content "
            f"disagree; {retrain}"
        )
    if train.get("selection_metric", DEFAULT_SELECTION_METRIC) not in REDUCTIONS:
        raise UnetppError(
            f"{paths['train']} has selection_metric {train['selection_metric']!r}, not one of "
            f"{', '.join(REDUCTIONS)}: {retrain}"
        )
    evaluation = _read_json(paths["metrics"], reevaluate)
    _need(evaluation, EVAL_KEYS, paths["metrics"], reevaluate)
    history = read_history(paths["history"], retrain)
    return RunResult(arch, seed, parameter_count(arch, train, paths["train"]), train, evaluation, history)


def _input_size(r: RunResult) -> dict[str, int]:
    """{"size": side} from the evaluation, else from train.json's settings (metrics from before evaluate wrote it)."""
    size = r.evaluation.get("size", r.train.get("settings", {}).get("image_size"))
    return {"size": int(size)} if isinstance(size, int) else {}


def run_metrics(r: RunResult) -> dict[str, float | int]:
    """The metrics of one run: evaluation scores, training summary, parameter count."""
    return {
        **{key: r.evaluation[key] for key in EVAL_KEYS[1:]},
        "n_images": int(r.evaluation["n_images"]),
        "best_epoch": int(r.train["best_epoch"]),
        "best_val_iou": float(r.train["best_val_iou"]),
        **{key: float(r.train[key]) for key in BEST_BY_METRIC_KEYS if key in r.train},
        **{key: r.evaluation[key] for key in NATIVE_KEYS if key in r.evaluation},
        **_input_size(r),
        "epochs_run": int(r.train["epochs_run"]),
        "train_seconds": float(r.train["wall_seconds"]),
        # Epochs times the median epoch: what training costs without the pauses wall_seconds also counts (a
        # suspended laptop, a stopped process).
        **({"train_seconds_median_epoch": len(r.history["seconds"]) * statistics.median(r.history["seconds"])}
           if r.history.get("seconds") else {}),
        "parameters": int(r.parameters),
    }


def over_seeds(per_seed: dict[str, dict[str, float | int]]) -> dict[str, Any]:
    """{"mean", "sd", "seeds"} of one arch: sample sd (ddof=1), None with one seed.

    Only metrics every seed has are averaged (runs from an older `unetpp train` lack a few).
    """
    runs = list(per_seed.values())
    keys = [key for key in runs[0] if all(key in run for run in runs)]
    mean = {key: statistics.fmean(run[key] for run in runs) for key in keys}
    sd = {key: statistics.stdev(run[key] for run in runs) if len(runs) > 1 else None for key in keys}
    return {"mean": mean, "sd": sd, "seeds": per_seed}


def metrics_table(results: Sequence[RunResult]) -> Table:
    """The content of results/metrics.json, archs and seeds in the order of `results`."""
    per_arch: dict[str, dict[str, dict[str, float | int]]] = {}
    for r in results:
        per_arch.setdefault(r.arch, {})[str(r.seed)] = run_metrics(r)
    return {arch: over_seeds(per_seed) for arch, per_seed in per_arch.items()}


def non_finite(table: Table) -> list[str]:
    """`arch.seeds.seed.metric` of every NaN or infinite input value."""
    return [
        f"{arch}.seeds.{seed}.{key}"
        for arch, row in table.items()
        for seed, values in row["seeds"].items()
        for key, value in values.items()
        if not math.isfinite(value)
    ]


def format_duration(seconds: float) -> str:
    """12.3 s, 4.5 min or 1 h 02 min."""
    if seconds < 90:
        return f"{seconds:.1f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours} h {minutes:02d} min"


def mean_sd(row: dict[str, Any], key: str, digits: int) -> str:
    """`0.8123` with one seed, `0.8123 ± 0.0045` with several."""
    mean, sd = row["mean"][key], row["sd"][key]
    return f"{mean:.{digits}f}" if sd is None else f"{mean:.{digits}f} ± {sd:.{digits}f}"


def epochs_cell(row: dict[str, Any], key: str) -> str:
    """An epoch count: the integer with one seed, mean ± sd with several."""
    return str(round(row["mean"][key])) if row["sd"][key] is None else mean_sd(row, key, 1)


def seeds_cell(seeds: Sequence[str]) -> str:
    """`1 (seed 0)` or `3 (seeds 0, 1, 2)`: a bare `0` read as "zero seeds"."""
    return f"{len(seeds)} (seed{'s' if len(seeds) > 1 else ''} {', '.join(seeds)})"


def summary_markdown(table: Table, results: Sequence[RunResult], dsb2018: bool = False) -> str:
    """A markdown table of every arch (mean ± sd over seeds) and what each column means.

    With `dsb2018` (the data is the stage1_train release) the title names DSB2018 and the
    published IoU stands beside ours; for any other data both would claim too much.
    """
    header = (
        "Architecture",
        "Parameters",
        "Seeds",
        "Epochs run",
        "Best epoch",
        "IoU per image",
        "IoU pooled",
        "IoU batch-pooled",
        *(("Published IoU",) if dsb2018 else ()),
        "Dice per image",
        "Training time",
    )
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|"]
    for arch, row in table.items():
        published = PUBLISHED_IOU.get(arch)
        cells = (
            f"{ARCHITECTURES[arch].display_name} (`{arch}`)",
            f"{round(row['mean']['parameters']):,}",
            seeds_cell(list(row["seeds"])),
            epochs_cell(row, "epochs_run"),
            epochs_cell(row, "best_epoch"),
            mean_sd(row, "iou_per_image", 4),
            mean_sd(row, "iou_pooled", 4),
            mean_sd(row, "iou_batch_pooled", 4),
            *((f"{published:.4f}" if published is not None else "n/a",) if dsb2018 else ()),
            mean_sd(row, "dice_per_image", 4),
            format_duration(row["mean"]["train_seconds"]),
        )
        lines.append("| " + " | ".join(cells) + " |")
    title = "# U-Net vs UNet++ on DSB2018" if dsb2018 else "# U-Net vs UNet++"
    return title + "\n\n" + "\n".join(lines) + "\n" + summary_notes(results, dsb2018)


def summary_notes(results: Sequence[RunResult], dsb2018: bool = False) -> str:
    """What each column of the summary table means, with the values the runs used."""
    n_images = sorted({int(r.evaluation["n_images"]) for r in results})
    batch = sorted({int(r.evaluation.get("batch_size", 16)) for r in results})
    devices = sorted({str(r.train.get("device", "?")) + ", " + str(r.train.get("precision", "?")) for r in results})
    selection = sorted({r.selection_metric.replace("_", "-") for r in results})
    return f"""
Scores on the {' / '.join(map(str, n_images))} evaluated images (the split's evaluation subset), prediction =
probability > 0.5, mask = ground truth > 0.5. An image whose prediction and mask are both empty scores 1.
With several training seeds a cell is the mean ± sample standard deviation over the seeds.

- **Parameters**: trainable parameters of the model. **Seeds**: how many training seeds, and which (`unetpp train --seed`).
- **Epochs run**: epochs trained before the epoch limit or early stopping; **Best epoch**: the epoch whose
  weights were kept (highest validation IoU, {' / '.join(selection)}).
- **IoU per image**: intersection over union of each image, averaged over images (our primary figure).
- **IoU pooled**: total intersection over total union, summed over all evaluated images.
- **IoU batch-pooled**: intersection over union pooled within consecutive batches of {'/'.join(map(str, batch))}
  images in split order, averaged weighted by batch size: how the reference implementation reports validation
  IoU, hence the column to set beside the published figure.
{PUBLISHED_NOTE if dsb2018 else ""}- **Dice per image**: 2|P and T| / (|P| + |T|) of each image, averaged over images.
- **Training time**: wall-clock time of `unetpp train` ({'; '.join(devices)}).
"""


def seed_curves(runs: Sequence[RunResult], columns: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Epochs (E,), values (seeds, E) of each run's history column (NaN after it ended), seeds running (E,).

    Runs stop early at different epochs, so each epoch holds the seeds that reached it. `columns` names
    each run's own column (the val IoU is each run's selection metric).
    """
    epochs = np.array(sorted({int(e) for r in runs for e in r.history["epoch"]}), dtype=np.int64)
    position = {int(e): k for k, e in enumerate(epochs)}
    values = np.full((len(runs), len(epochs)), np.nan)
    for row, (r, column) in enumerate(zip(runs, columns)):
        for epoch, value in zip(r.history["epoch"], r.history[column]):
            values[row, position[int(epoch)]] = value
    running = np.isfinite(values).sum(axis=0)
    return epochs, values, running


def _plot_mean_and_band(ax, epochs: np.ndarray, values: np.ndarray, running: np.ndarray, colour: str,
                        linestyle: str, band: bool, label: str | None) -> None:
    """The mean over the seeds still training, solid while every seed is, faint after; min-max band if `band`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an epoch no seed reached has no mean
        mean = np.nanmean(values, axis=0)
        low, high = np.nanmin(values, axis=0), np.nanmax(values, axis=0)
    everyone = running == values.shape[0]
    marker = "." if len(epochs) <= 30 else None  # a one-epoch line has no length
    full = np.where(everyone, mean, np.nan)
    ax.plot(epochs, full, color=colour, linestyle=linestyle, marker=marker, label=label)
    if not everyone.all():
        last_full = int(np.flatnonzero(everyone)[-1]) if everyone.any() else 0
        ax.plot(epochs[last_full:], mean[last_full:], color=colour, linestyle=linestyle, alpha=0.35, marker=marker)
    if band and values.shape[0] > 1:
        ax.fill_between(epochs, low, high, color=colour, alpha=0.18, linewidth=0)


def curves_figure(results: Sequence[RunResult]):
    """Loss and IoU per epoch: one colour per arch, the mean over its seeds, validation solid with a min-max band.

    Whatever the number of seeds the figure has three lines per panel and a legend of three entries; a mean
    turns faint where some seeds had stopped already. The validation IoU is each run's selection metric, so a
    dot per seed (its kept epoch) sits on that seed's maximum, inside the band.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(11, 4.6), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax_loss, ax_iou = fig.subplots(1, 2)
    colours = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"]
    by_arch: dict[str, list[RunResult]] = {}
    for r in results:
        by_arch.setdefault(r.arch, []).append(r)
    for k, (arch, runs) in enumerate(by_arch.items()):
        colour = colours[k % len(colours)]
        n = len(runs)
        label = f"{ARCHITECTURES[arch].display_name} ({n} seed{'s' if n > 1 else ''})"
        val_iou = [f"val_iou_{r.selection_metric}" for r in runs]
        panels = ((ax_loss, ["train_loss"] * n, ["val_loss"] * n), (ax_iou, ["train_iou"] * n, val_iou))
        for ax, train_columns, val_columns in panels:
            epochs, values, running = seed_curves(runs, train_columns)
            _plot_mean_and_band(ax, epochs, values, running, colour, "--", False, None)
            epochs, values, running = seed_curves(runs, val_columns)
            _plot_mean_and_band(ax, epochs, values, running, colour, "-", True, label if ax is ax_iou else None)
        kept = [(int(r.train["best_epoch"]), r, column) for r, column in zip(runs, val_iou)]
        dots = [(e, r.history[column][r.history["epoch"].index(e)]) for e, r, column in kept if e in r.history["epoch"]]
        if dots:
            ax_iou.plot(*zip(*dots), "o", color=colour, markersize=5, markeredgecolor="black", markeredgewidth=0.6)
    selection = " / ".join(sorted({r.selection_metric.replace("_", "-") for r in results}))
    n_seeds = sorted({len(runs) for runs in by_arch.values()})
    several = max(n_seeds) > 1
    lines = "mean over seeds per epoch" if several else "one seed per architecture"
    spread = "; band: min-max over seeds; faint: some seeds stopped" if several else ""
    ax_loss.set(title="Loss: 0.5 BCE + (1 - soft Dice)", xlabel="epoch", ylabel="loss")
    ax_iou.set(title=f"IoU (val: {selection}; dot: a seed's kept epoch)", xlabel="epoch", ylabel="IoU")
    fig.suptitle(f"{lines.capitalize()}: solid val, dashed train{spread}", fontsize=10)
    for ax in (ax_loss, ax_iou):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers, even for short runs
        ax.grid(alpha=0.3)
    ax_iou.legend(fontsize=8, loc="lower right")
    return fig


PUBLISHED_NOTE = """- **Published IoU**: the IoU the original blog reports for the same architecture on DSB2018 at 96x96
  (U-Net 0.8347, UNet++ 0.8321, UNet++ with deep supervision 0.8367), measured on its own random validation
  split, not on ours.
"""


def headline(table: Table, comparisons: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """`{arch: figures}`, rounded to summary.md's 4 decimals, keys short enough for a 120-column table.

    `iou_batch`/`iou_image`: mean over seeds of the batch-pooled and the per-image validation IoU, with
    `sd_batch`/`sd_image` (their sample sd) only with several seeds. A UNet++ variant compared with U-Net
    also has `diff` (mean per-image IoU difference, UNet++ minus U-Net, seeds pooled) and its 95% interval
    `ci_low`/`ci_high`: the two-level one (seeds, then images: training noise included) with several
    seeds, else the paired bootstrap over the images.
    """

    def rounded(value: float) -> float:
        return round(float(value), HEADLINE_DIGITS)

    out: dict[str, dict[str, float]] = {}
    for arch, row in table.items():
        figures = {}
        for key, name in (("iou_batch_pooled", "batch"), ("iou_per_image", "image")):
            figures[f"iou_{name}"] = rounded(row["mean"][key])
        for key, name in (("iou_batch_pooled", "batch"), ("iou_per_image", "image")):
            if row["sd"][key] is not None:
                figures[f"sd_{name}"] = rounded(row["sd"][key])
        out[arch] = figures
    for arch, baseline in COMPARISONS:
        result = comparisons.get(comparison_name(arch, baseline))
        if result is None:
            continue
        stats = result.get("two_level", result["pooled"])
        out[arch].update(
            diff=rounded(result["pooled"]["mean_diff"]),
            ci_low=rounded(stats["ci95_low"]),
            ci_high=rounded(stats["ci95_high"]),
        )
    return out


def check_options(archs: Sequence[str], seeds: Sequence[int]) -> None:
    """Each --arch known and given once, each --seed given once, at least one of each."""
    if not archs:
        raise UnetppError("no --arch given: name each architecture to aggregate, e.g. --arch unet --arch nested_unet")
    if not seeds:
        raise UnetppError("no --seed given: name each training seed to aggregate, e.g. --seed 0 --seed 1")
    for option, values in (("--arch", list(archs)), ("--seed", list(seeds))):
        duplicated = sorted({str(v) for v in values if values.count(v) > 1})
        if duplicated:
            raise UnetppError(f"{option} {', '.join(duplicated)} given more than once: name each one once")
    unknown = [a for a in archs if a not in ARCHITECTURES]
    if unknown:
        raise UnetppError(f"unknown --arch {', '.join(unknown)}: choose from {', '.join(ARCHITECTURES)}")


def run_aggregate(
    archs: Sequence[str],
    seeds: Sequence[int],
    models_dir: str | os.PathLike[str],
    results_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    content_sha256: str | None = None,
) -> list[Path]:
    """Write `out_dir/{metrics.json,summary.md,curves.png,headline.json,summary.html}` and
    `out_dir/headline/<arch>.json` over every (arch, seed); all of them or none.

    With U-Net and a UNet++ variant among `archs`, both files also hold their paired per-image comparison.
    `content_sha256` is the digest the data was checked against; only the stage1_train release's puts
    "on DSB2018" and the published IoU into summary.md.
    """
    check_options(archs, seeds)
    results = [collect(a, s, Path(models_dir), Path(results_dir)) for a in archs for s in seeds]
    table = metrics_table(results)
    bad = non_finite(table)
    if bad:
        raise UnetppError(f"non-finite values in the inputs ({', '.join(bad)}): rerun the stages that wrote them")
    comparisons = compare_archs(archs, seeds, Path(results_dir))
    document: dict[str, Any] = {**table, "comparisons": comparisons} if comparisons else dict(table)
    markdown = summary_markdown(table, results, content_sha256 == STAGE1_TRAIN_CONTENT_SHA256) + comparison_markdown(comparisons, seeds)
    figures = headline(table, comparisons)
    fig = curves_figure(results)
    out = Path(out_dir)
    targets = [out / name for name in OUTPUT_NAMES] + [out / HEADLINE_DIR]
    with contextlib.ExitStack() as stack:
        tmp_json, tmp_md, tmp_png, tmp_headline, tmp_html, tmp_dir = (
            stack.enter_context(atomic_path(t, is_dir=t.name == HEADLINE_DIR)) for t in targets
        )
        tmp_json.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        tmp_md.write_text(markdown, encoding="utf-8")
        fig.savefig(tmp_png, format="png")
        tmp_headline.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
        tmp_html.write_text(markdown_to_html(markdown, markdown.splitlines()[0].lstrip("# ")), encoding="utf-8")
        for arch, values in figures.items():
            (tmp_dir / f"{arch}.json").write_text(json.dumps(values, indent=2) + "\n", encoding="utf-8")
    return targets
