"""UNet++ against U-Net image by image: the mean per-image val IoU difference with a paired bootstrap interval.

Why: the per-architecture means in summary.md differ by a few thousandths of IoU, and on ~134 val images the
choice of images alone moves a mean by more than that. Both architectures score the same images, so the
honest comparison is paired: the difference per image, its mean, and a 95% percentile bootstrap interval
that resamples images (10,000 resamples, numpy `default_rng(0)`). The interval covers the choice of images
only; with one training seed it says nothing about training noise, and with several the pooled figure
averages each image's IoU over the seeds first (the seeds are then fixed, not resampled). With two or more
seeds a two-level bootstrap (`two_level_bootstrap`) also resamples the seeds, then the images, so that its
interval covers training noise as well as the choice of images.

The resampling is written out in numpy rather than calling `scipy.stats.bootstrap(paired=True,
method="percentile")`, which computes the same interval from the same draws (tests/test_compare.py checks
that they agree): its seed argument (`rng`, since scipy 1.15; `random_state` before) and its quantile
routine differ across the scipy versions this package allows, so the same seed would not give the same
interval everywhere.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from unetpp.choices import ARCHITECTURES
from unetpp.errors import UnetppError

# (arch, baseline): each is compared only when both are aggregated.
COMPARISONS: tuple[tuple[str, str], ...] = (("nested_unet", "unet"), ("nested_unet_ds", "unet"))
RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
CONFIDENCE = 0.95


def per_image_path(results_dir: Path, arch: str, seed: int) -> Path:
    """`<results-dir>/<arch>/seed<seed>/per_image.csv`, as `unetpp evaluate --per-image` writes it."""
    return results_dir / arch / f"seed{seed}" / "per_image.csv"


def read_per_image_rows(path: Path, fix: str, columns: Sequence[str] = ("id", "iou")) -> dict[str, dict[str, str]]:
    """{image id: row} from a per_image.csv, checked (readable, the named columns present, images, unique ids)."""
    if not path.is_file():
        raise UnetppError(f"{path} does not exist: {fix}")
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            rows = list(reader)
            present = reader.fieldnames or []
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UnetppError(f"{path} cannot be read as CSV ({exc}): {fix}") from exc
    missing = [c for c in columns if c not in present]
    if missing:
        raise UnetppError(f"{path} lacks the column(s) {', '.join(missing)}: {fix}")
    if not rows:
        raise UnetppError(f"{path} has no images: {fix}")
    by_id: dict[str, dict[str, str]] = {}
    for row in rows:
        if row["id"] in by_id:
            raise UnetppError(f"{path} lists image {row['id']} twice: {fix}")
        by_id[row["id"]] = row
    return by_id


def finite_column(path: Path, rows: dict[str, dict[str, str]], column: str, fix: str) -> dict[str, float]:
    """{image id: value} of one numeric column of read_per_image_rows' rows; a non-numeric or non-finite value
    is refused with the image it belongs to."""
    values: dict[str, float] = {}
    for image_id, row in rows.items():
        try:
            value = float(row[column])
        except (TypeError, ValueError) as exc:
            raise UnetppError(f"{path} holds a non-numeric {column} for image {image_id} ({exc}): {fix}") from exc
        if not math.isfinite(value):
            raise UnetppError(f"{path} holds a non-finite {column} ({value}) for image {image_id}: {fix}")
        values[image_id] = value
    return values


def read_per_image_iou(path: Path, fix: str) -> dict[str, float]:
    """{image id: IoU} from a per_image.csv, checked (columns, unique ids, finite values)."""
    return finite_column(path, read_per_image_rows(path, fix), "iou", fix)


def check_same_ids(tables: dict[Path, Mapping[str, Any]]) -> list[str]:
    """The sorted ids every table holds; refused, naming two files, if any table holds other ids."""
    (first, reference), *others = tables.items()
    for path, table in others:
        if table.keys() != reference.keys():
            only_first = sorted(reference.keys() - table.keys())
            only_other = sorted(table.keys() - reference.keys())
            raise UnetppError(
                f"{first} and {path} do not score the same images ({len(only_first)} id(s) only in the first"
                f"{', e.g. ' + only_first[0] if only_first else ''}; {len(only_other)} only in the second"
                f"{', e.g. ' + only_other[0] if only_other else ''}): the paired comparison needs every "
                "architecture and seed evaluated on the same split subset; rerun `unetpp evaluate` (or "
                "`snakemake`/`dvc repro`) with one --split and --subset for all of them"
            )
    return sorted(reference)


def paired_bootstrap(
    differences: Sequence[float] | np.ndarray,
    resamples: int = RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    confidence: float = CONFIDENCE,
) -> dict[str, float | int]:
    """Mean of per-image differences and its percentile bootstrap interval (images resampled with replacement).

    Resampling the differences is the paired bootstrap: both architectures' scores of an image stay together.
    Draws are `default_rng(seed).integers(0, n, (resamples, n))` at once, the same as scipy.stats.bootstrap's.
    """
    diffs = np.asarray(differences, dtype=np.float64)
    if diffs.ndim != 1 or diffs.size == 0:
        raise ValueError(f"need a non-empty 1-D array of differences, got shape {diffs.shape}")
    if resamples < 1 or not 0 < confidence < 1:
        raise ValueError(f"need resamples >= 1 and 0 < confidence < 1, got {resamples} and {confidence}")
    rng = np.random.default_rng(seed)
    indices = rng.integers(0, diffs.size, (resamples, diffs.size))
    means = diffs[indices].mean(axis=-1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return {
        "mean_diff": float(diffs.mean()),
        "ci95_low": float(low),
        "ci95_high": float(high),
        "n_images": int(diffs.size),
        "resamples": int(resamples),
        "bootstrap_seed": int(seed),
    }


def _counts(draws: np.ndarray, size: int) -> np.ndarray:
    """How often each of `size` items is drawn in each row of `draws` (rows, k) -> (rows, size)."""
    rows = draws.shape[0]
    flat = draws + size * np.arange(rows)[:, None]
    return np.bincount(flat.ravel(), minlength=rows * size).reshape(rows, size)


def two_level_bootstrap(
    scores: np.ndarray,
    baseline: np.ndarray,
    resamples: int = RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    confidence: float = CONFIDENCE,
) -> dict[str, float | int]:
    """Mean IoU difference over seeds and images, with an interval that resamples seeds, then images.

    `scores` and `baseline` are (seeds, images) arrays, columns paired by image id. Each resample draws
    the seeds with replacement for each architecture independently (a seed number pairs nothing across
    architectures: each is trained on its own), then the images with replacement, the same images for both
    (paired), and takes the mean over those images of (mean over drawn seeds of the arch − the same of the
    baseline). So the interval covers training noise as well as the choice of images; with few seeds its seed
    level is coarse (six seeds give at most six distinct draws per architecture). Draws: `default_rng(seed)`,
    the arch's seeds, then the baseline's, then the images, each `integers(0, n, (resamples, n))`; the sums
    are weighted by draw counts, so memory stays (resamples, images).
    """
    a = np.asarray(scores, dtype=np.float64)
    b = np.asarray(baseline, dtype=np.float64)
    if a.ndim != 2 or a.shape != b.shape or a.size == 0:
        raise ValueError(f"need two non-empty (seeds, images) arrays of one shape, got {a.shape} and {b.shape}")
    if resamples < 1 or not 0 < confidence < 1:
        raise ValueError(f"need resamples >= 1 and 0 < confidence < 1, got {resamples} and {confidence}")
    n_seeds, n_images = a.shape
    rng = np.random.default_rng(seed)
    seeds_a = _counts(rng.integers(0, n_seeds, (resamples, n_seeds)), n_seeds)
    seeds_b = _counts(rng.integers(0, n_seeds, (resamples, n_seeds)), n_seeds)
    images = _counts(rng.integers(0, n_images, (resamples, n_images)), n_images)
    # (resamples, images): each image's seed-averaged difference under each resample's seed draw.
    per_image = (seeds_a @ a - seeds_b @ b) / n_seeds
    means = np.einsum("ri,ri->r", per_image, images) / n_images
    alpha = (1 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return {
        "mean_diff": float((a - b).mean()),
        "ci95_low": float(low),
        "ci95_high": float(high),
        "n_images": int(n_images),
        "n_seeds": int(n_seeds),
        "resamples": int(resamples),
        "bootstrap_seed": int(seed),
    }


def comparison_name(arch: str, baseline: str) -> str:
    """The metrics.json key of one comparison: `nested_unet_vs_unet`."""
    return f"{arch}_vs_{baseline}"


def compare_archs(archs: Sequence[str], seeds: Sequence[int], results_dir: Path) -> dict[str, dict[str, Any]]:
    """Every comparison in COMPARISONS whose two archs are among `archs` (none without U-Net).

    `{name: {"seeds": {"0": stats, ...}, "pooled": stats + n_seeds}}` with stats as `paired_bootstrap` returns
    them; "pooled" resamples images after averaging each image's IoU over the seeds (with one seed it equals
    that seed's). With two or more seeds also `"two_level"`: `two_level_bootstrap`'s stats, seeds and images
    resampled. Only the per_image.csv files of the compared archs are read.
    """
    pairs = [(arch, baseline) for arch, baseline in COMPARISONS if arch in archs and baseline in archs]
    if not pairs:
        return {}
    # The baseline first, so that a refused id mismatch names its file first.
    needed = list(dict.fromkeys([baseline for _, baseline in pairs] + [arch for arch, _ in pairs]))
    tables: dict[tuple[str, int], dict[str, float]] = {}
    by_path: dict[Path, dict[str, float]] = {}
    for arch in needed:
        for seed in seeds:
            path = per_image_path(results_dir, arch, seed)
            fix = f"run `unetpp evaluate ... --per-image {path}` for {arch} seed {seed} (or `snakemake`/`dvc repro`)"
            tables[arch, seed] = by_path[path] = read_per_image_iou(path, fix)
    ids = check_same_ids(by_path)

    def scores(arch: str, seed: int) -> np.ndarray:
        return np.array([tables[arch, seed][i] for i in ids], dtype=np.float64)

    out: dict[str, dict[str, Any]] = {}
    for arch, baseline in pairs:
        per_seed = {str(s): paired_bootstrap(scores(arch, s) - scores(baseline, s)) for s in seeds}
        # The same float operations whatever the number of seeds, so one seed gives exactly its own figures.
        mean_arch = np.mean([scores(arch, s) for s in seeds], axis=0)
        mean_baseline = np.mean([scores(baseline, s) for s in seeds], axis=0)
        pooled = {**paired_bootstrap(mean_arch - mean_baseline), "n_seeds": len(seeds)}
        result: dict[str, Any] = {"seeds": per_seed, "pooled": pooled}
        if len(seeds) > 1:
            result["two_level"] = two_level_bootstrap(
                np.stack([scores(arch, s) for s in seeds]), np.stack([scores(baseline, s) for s in seeds])
            )
        out[comparison_name(arch, baseline)] = result
    return out


def _signed(value: float) -> str:
    return f"{value:+.4f}"


def comparison_markdown(comparisons: dict[str, dict[str, Any]], seeds: Sequence[int]) -> str:
    """The summary.md section: a row per comparison and seed (with several, pooled and two-level), and their scope."""
    if not comparisons:
        return ""
    header = ("Comparison", "Seeds", "Images", "Mean IoU difference", "95% interval")
    lines = ["| " + " | ".join(header) + " |", "|:---|:---|---:|---:|---:|"]
    pairs = {comparison_name(a, b): (a, b) for a, b in COMPARISONS}
    any_stats: dict[str, Any] = {}
    for name, result in comparisons.items():
        arch, baseline = pairs[name]
        label = (
            f"{ARCHITECTURES[arch].display_name} (`{arch}`) − {ARCHITECTURES[baseline].display_name} (`{baseline}`)"
        )
        rows = [(f"seed {seed}", stats) for seed, stats in result["seeds"].items()]
        if len(seeds) > 1:
            listed = ", ".join(result["seeds"])
            rows.append((f"pooled: IoU averaged over seeds {listed}", result["pooled"]))
            rows.append((f"two-level: seeds {listed} and images resampled", result["two_level"]))
        for seed, stats in rows:
            any_stats = stats
            cells = (
                label,
                seed,
                str(stats["n_images"]),
                _signed(stats["mean_diff"]),
                f"[{_signed(stats['ci95_low'])}, {_signed(stats['ci95_high'])}]",
            )
            lines.append("| " + " | ".join(cells) + " |")
    resampled = "the images (the two-level row: of the seeds, then the images)" if len(seeds) > 1 else "the images"
    if len(seeds) > 1:
        scope = (
            "A seed row's interval covers the choice of images for that one pair of trained models. The pooled\n"
            "row averages each image's IoU over the seeds before resampling images, so it covers the choice of\n"
            "images, not training noise (the seeds count as fixed). The two-level row resamples the seeds (for\n"
            "each architecture on its own), then the images, so it covers training noise and the choice of\n"
            f"images together; with {len(seeds)} seeds its seed level rests on {len(seeds)} runs per architecture."
        )
    else:
        scope = (
            "With one training seed the interval covers only the choice of images, not training noise: it says\n"
            "whether these two trained models differ on images like these, not whether the architecture would\n"
            "win again with another seed."
        )
    return f"""
## UNet++ against U-Net, image by image

Mean over the evaluated images of (IoU of the UNet++ model − IoU of U-Net on the same image), with a 95%
paired bootstrap interval (percentile; {any_stats['resamples']:,} resamples of {resampled}; numpy
`default_rng({any_stats['bootstrap_seed']})`).
{scope}

""" + "\n".join(lines) + "\n"
