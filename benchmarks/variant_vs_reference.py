"""Each protocol variant against the reference, architecture by architecture, image by image.

The variant table (`unetpp compare-variants`) sets the variants' means side by side; on 134 val images a
difference of a few thousandths between two means says little by itself. Both variants score the same images,
so this pairs them: per image, the variant's native-size IoU minus the reference's (native size, so that a
variant at another input size compares too), the mean and its 95% paired bootstrap interval
(`unetpp.evaluation.compare.paired_bootstrap`: images resampled, 10,000 draws, seed 0), over all images and
over each image kind (`image_kind`, written by `unetpp evaluate --interim`). With one training seed per run the
interval covers the choice of images, not training noise.

    python benchmarks/variant_vs_reference.py --results results/cpu_amx_grid/results \\
        --variant augment --variant authors --out results/cpu_amx_grid/results/variant_vs_reference.md

reads `<results>/<variant>/runs/<arch>/seed<seed>/per_image.csv` of the reference and of each variant.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from unetpp.choices import ARCHITECTURES
from unetpp.data.image_kind import IMAGE_KINDS
from unetpp.errors import UnetppError
from unetpp.evaluation.compare import (
    check_same_ids,
    finite_column,
    paired_bootstrap,
    per_image_path,
    read_per_image_rows,
)

COLUMNS = ("id", "native_iou", "image_kind")


def read_native(path: Path) -> dict[str, tuple[float, str]]:
    """{id: (native IoU, image kind)} from one per_image.csv of `unetpp evaluate --interim`."""
    if not path.is_file():
        sys.exit(f"{path} does not exist: that run is not published (benchmarks/publish_cpu_grid.sh) or not "
                 "evaluated (`unetpp evaluate --interim ... --per-image`)")
    fix = "evaluate that run again with this checkout's `unetpp evaluate --interim`"
    try:
        rows = read_per_image_rows(path, fix, COLUMNS)
        native = finite_column(path, rows, "native_iou", fix)
    except UnetppError as exc:
        sys.exit(str(exc))
    unknown = sorted({row["image_kind"] for row in rows.values()} - set(IMAGE_KINDS))
    if unknown:
        sys.exit(f"{path} holds image kind(s) {', '.join(map(repr, unknown))}, not one of "
                 f"{', '.join(IMAGE_KINDS)}: {fix}")
    return {image_id: (native[image_id], row["image_kind"]) for image_id, row in rows.items()}


def compare(results: Path, variant: str, reference: str, arch: str, seed: int) -> list[dict]:
    """The rows (all images, then each kind) of variant minus reference for one arch."""
    def path(name: str) -> Path:
        return per_image_path(results / name / "runs", arch, seed)

    ours, theirs = read_native(path(variant)), read_native(path(reference))
    try:
        ids = check_same_ids({path(reference): theirs, path(variant): ours})
    except UnetppError as exc:
        sys.exit(str(exc))
    differ = [i for i in ids if ours[i][1] != theirs[i][1]]
    if differ:
        sys.exit(f"{path(variant)} and {path(reference)} give {len(differ)} image(s) different kinds "
                 f"(e.g. {differ[0]}): they were scored by different code; evaluate both again with this checkout")
    rows = []
    for kind in ("all", *IMAGE_KINDS):
        chosen = [i for i in ids if kind == "all" or ours[i][1] == kind]
        if not chosen:
            continue
        differences = np.array([ours[i][0] - theirs[i][0] for i in chosen])
        rows.append({"variant": variant, "arch": arch, "images": kind, **paired_bootstrap(differences)})
    return rows


def markdown(rows: list[dict], reference: str) -> str:
    lines = [
        f"# Each variant minus `{reference}`, per image",
        "",
        f"IoU per image at native size, the variant's minus the `{reference}` run's of the same architecture on the "
        "same image; mean and 95% paired bootstrap interval (images resampled). One training seed per run: the "
        "interval covers the choice of images, not training noise. Written by `benchmarks/variant_vs_reference.py`.",
        "",
        "| variant | architecture | images | n | difference | 95% interval |",
        "|---|---|---|---:|---:|---|",
    ]
    for row in rows:
        interval = (f"[{row['ci95_low']:+.4f}, {row['ci95_high']:+.4f}]" if row["n_images"] > 1
                    else "n/a (one image)")
        lines.append(
            f"| {row['variant']} | {ARCHITECTURES[row['arch']].display_name} | {row['images']} | {row['n_images']} | "
            f"{row['mean_diff']:+.4f} | {interval} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, required=True, help="holds <variant>/runs/<arch>/seed<seed>/")
    parser.add_argument("--variant", action="append", required=True, help="a variant to compare (repeatable)")
    parser.add_argument("--reference", default="reference", help="the variant compared against [reference]")
    parser.add_argument("--seed", type=int, default=0, help="the training seed of the runs [0]")
    parser.add_argument("--out", type=Path, required=True, help="the markdown table to write")
    args = parser.parse_args()
    rows = [row for variant in args.variant for arch in ARCHITECTURES
            for row in compare(args.results, variant, args.reference, arch, args.seed)]
    text = markdown(rows, args.reference)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text, end="")


if __name__ == "__main__":
    main()
