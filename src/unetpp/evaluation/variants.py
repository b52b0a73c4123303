"""`unetpp compare-variants`: every protocol variant's aggregate side by side.

Reads `<variants-dir>/<variant>/metrics.json` (what `unetpp aggregate` wrote for each variant) and writes
one markdown table and one JSON file: for each variant and architecture the validation IoU at native size
(`evaluate --interim`; comparable across input sizes) and at the variant's own size, Dice, epochs and
training time (mean and sample sd over seeds), and each UNet++ architecture minus U-Net (per-image IoU at the
variant's size) with its 95% paired bootstrap interval, as the aggregate computed it. Where the evaluation
knew each image's kind (fluorescence, brightfield, colour), a second table gives the native IoU per kind:
a variant that helps only the common kind shows there.
"""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path
from typing import Any

from unetpp.atomic import atomic_path
from unetpp.choices import ARCHITECTURES
from unetpp.data.image_kind import IMAGE_KINDS, kind_keys
from unetpp.errors import UnetppError
from unetpp.evaluation.aggregate import format_duration
from unetpp.evaluation.summary_html import markdown_to_html

# The figures of the tables, read from an aggregate's {arch: {"mean": ..., "sd": ...}}.
KIND_FIGURES = tuple(kind_keys(kind)[0] for kind in IMAGE_KINDS)
FIGURES = (
    "iou_native_per_image", "iou_per_image", "dice_per_image", "best_epoch", "epochs_run", "train_seconds",
    "train_seconds_median_epoch", *KIND_FIGURES,
)
REFERENCE = "reference"


def variant_order(names: list[str]) -> list[str]:
    """`reference` first, then the others by name."""
    return sorted(names, key=lambda name: (name != REFERENCE, name))


def read_variants(variants_dir: Path) -> dict[str, dict[str, Any]]:
    """{variant: its aggregate metrics.json} for every folder of `variants_dir` that holds one."""
    if not variants_dir.is_dir():
        raise UnetppError(f"{variants_dir} does not exist: run `unetpp aggregate --out {variants_dir}/<variant>` first")
    found = {}
    for folder in sorted(variants_dir.iterdir()):
        path = folder / "metrics.json"
        if folder.is_dir() and path.is_file():
            try:
                found[folder.name] = json.loads(path.read_text())
            except json.JSONDecodeError as exc:
                raise UnetppError(f"{path} is not valid JSON ({exc}); rerun `unetpp aggregate` for {folder.name}") from exc
    if not found:
        raise UnetppError(f"{variants_dir} holds no <variant>/metrics.json: run the variants' aggregates first")
    return {name: found[name] for name in variant_order(list(found))}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def variant_table(variants: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The JSON document: {variant: {"size", "image_kinds", "archs": {arch: {figure: {"mean", "sd"}, "n_seeds"}},
    "comparisons"}}; image_kinds is {kind: number of val images} for the kinds the evaluation found."""
    document: dict[str, Any] = {}
    for name, metrics in variants.items():
        archs: dict[str, Any] = {}
        size = None
        image_kinds: dict[str, int] = {}
        for arch in ARCHITECTURES:
            if arch not in metrics:
                continue
            mean, sd = metrics[arch].get("mean", {}), metrics[arch].get("sd", {})
            size = size or _number(mean.get("size"))
            for kind in IMAGE_KINDS:
                count = _number(mean.get(kind_keys(kind)[1]))
                if count is not None:
                    image_kinds.setdefault(kind, int(count))
            archs[arch] = {
                **{key: {"mean": _number(mean.get(key)), "sd": _number(sd.get(key))} for key in FIGURES},
                "n_seeds": len(metrics[arch].get("seeds", {})),
            }
        comparisons = {}
        for comparison, result in metrics.get("comparisons", {}).items():
            # Two-level (seeds and images resampled) where there are several seeds, else the pooled one.
            kind = "two_level" if "two_level" in result else "pooled"
            stats = result[kind]
            comparisons[comparison] = {
                "kind": kind,
                **{key: _number(stats.get(key)) for key in ("mean_diff", "ci95_low", "ci95_high")},
            }
        document[name] = {
            "size": int(size) if size else None, "image_kinds": image_kinds, "archs": archs, "comparisons": comparisons
        }
    return document


def _cell(figure: dict[str, float | None], digits: int) -> str:
    if figure["mean"] is None:
        return "n/a"
    text = f"{figure['mean']:.{digits}f}"
    return text + (f" ± {figure['sd']:.{digits}f}" if figure["sd"] is not None else "")


def variant_markdown(document: dict[str, Any]) -> str:
    """The markdown table of `variant_table`'s document, and the comparisons below it."""
    lines = [
        "# Protocol variants",
        "",
        "Validation images (mean ± sd over seeds where there are several). IoU and Dice per image; native: each "
        "prediction resized back to its image's own size, comparable across input sizes. Time: the training's wall "
        "time, and epochs times its median epoch (the cost without pauses, which the wall time also counts).",
        "",
        "| variant | size | architecture | IoU native | IoU at size | Dice at size | best epoch | epochs | time "
        "| epochs x median epoch | seeds |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def duration(seconds: float | None) -> str:
        return format_duration(seconds) if seconds is not None else "n/a"

    for name, variant in document.items():
        for arch, row in variant["archs"].items():
            lines.append(
                f"| {name} | {variant['size'] or 'n/a'} | {ARCHITECTURES[arch].display_name} | "
                f"{_cell(row['iou_native_per_image'], 4)} | {_cell(row['iou_per_image'], 4)} | "
                f"{_cell(row['dice_per_image'], 4)} | {_cell(row['best_epoch'], 0)} | {_cell(row['epochs_run'], 0)} | "
                f"{duration(row['train_seconds']['mean'])} | {duration(row['train_seconds_median_epoch']['mean'])} | "
                f"{row['n_seeds']} |"
            )
    lines += [
        "",
        "UNet++ minus U-Net, per-image IoU at the variant's size, paired by image, 95% bootstrap interval "
        "(two-level, seeds and images resampled, where there are several seeds):",
        "",
        "| variant | comparison | difference | 95% interval |",
        "|---|---|---|---|",
    ]
    for name, variant in document.items():
        for comparison, stats in variant["comparisons"].items():
            if stats["mean_diff"] is None:
                continue
            arch = comparison.removesuffix("_vs_unet")
            label = f"{ARCHITECTURES[arch].display_name if arch in ARCHITECTURES else arch} - U-Net"
            lines.append(
                f"| {name} | {label} | {stats['mean_diff']:+.4f} | "
                f"[{stats['ci95_low']:+.4f}, {stats['ci95_high']:+.4f}] |"
            )
    return "\n".join(lines + kind_markdown(document)) + "\n"


def kind_markdown(document: dict[str, Any]) -> list[str]:
    """The lines of the per-kind table (native per-image IoU), none when no variant knows its images' kinds."""
    kinds = [kind for kind in IMAGE_KINDS if any(kind in variant["image_kinds"] for variant in document.values())]
    if not kinds:
        return []
    lines = [
        "",
        "IoU per image at native size, by image kind (`unetpp.data.image_kind`: fluorescence is grey and dark, "
        "brightfield grey and bright, colour mostly stained tissue); in brackets, the scored images of the kind:",
        "",
        "| variant | architecture | " + " | ".join(kinds) + " |",
        "|---|---|" + "---|" * len(kinds),
    ]
    for name, variant in document.items():
        if not variant["image_kinds"]:
            continue
        for arch, row in variant["archs"].items():
            cells = [
                f"{_cell(row[kind_keys(kind)[0]], 4)} ({variant['image_kinds'][kind]})"
                if kind in variant["image_kinds"] else "n/a"
                for kind in kinds
            ]
            lines.append(f"| {name} | {ARCHITECTURES[arch].display_name} | " + " | ".join(cells) + " |")
    return lines


def compare_variants(variants_dir: Path, out: Path, json_out: Path, html_out: Path | None = None) -> dict[str, Any]:
    """Read every variant's aggregate below `variants_dir`; write the table to `out` and the JSON to `json_out`.

    With `html_out`, also the table rendered to HTML (the report's landing text includes it).
    """
    targets = [path for path in (out, json_out, html_out) if path is not None]
    if len({path.resolve() for path in targets}) < len(targets):
        raise UnetppError(f"--out, --json and --html must name different files (given {', '.join(map(str, targets))})")
    document = variant_table(read_variants(variants_dir))
    markdown = variant_markdown(document)
    files = [(json_out, json.dumps(document, indent=2) + "\n"), (out, markdown)]
    if html_out is not None:
        files.append((html_out, markdown_to_html(markdown, "Protocol variants")))
    # All or none: each file goes into place only when every one is written.
    with contextlib.ExitStack() as stack:
        for path, text in files:
            stack.enter_context(atomic_path(path)).write_text(text, encoding="utf-8")
    return document
