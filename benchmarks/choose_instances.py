"""Choose `unetpp predict-test`'s instance post-processing on the val images, never on the test set.

Each val image of stage1_train is predicted once at native size (as predict-test
does: resize to the training size, predict, resize back, > 0.5); every candidate
(connected components, and the distance-transform watershed at several
--min-distance values, each with a few --min-size values) then turns the same
union mask into nuclei, which are scored against the ingested instance labels
with the competition metric. The best row is the default to put in params.yaml.
With --oracle (no model needed) the candidates split the ground-truth union
mask instead: the most each method can gain when the network's foreground is
perfect, a ceiling, not the choice.

    python benchmarks/choose_instances.py --model models/unet/seed0/model.pt \
        --interim data/interim/stage1_train.h5 --split data/processed/split.json [--json out.json]
    python benchmarks/choose_instances.py --oracle --interim ... --split ...
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import h5py
import numpy as np

from unetpp.evaluation.competition import score_image
from unetpp.evaluation.instances import label_instances
from unetpp.inference.predict_images import load_native_predictor

CANDIDATES: tuple[tuple[str, int, int], ...] = (
    ("cc", 1, 0),
    ("cc", 1, 10),
    ("cc", 1, 20),
    ("watershed", 3, 10),
    ("watershed", 5, 10),
    ("watershed", 7, 10),
    ("watershed", 10, 10),
    ("watershed", 13, 10),
    ("watershed", 16, 10),
    ("watershed", 5, 20),
)


def choose(
    model_path: Path | None,
    interim: Path,
    split_json: Path,
    subset: str = "val",
    candidates: tuple[tuple[str, int, int], ...] = CANDIDATES,
    device: str = "auto",
    limit: int | None = None,
) -> list[dict]:
    """One row per candidate: method, min_distance, min_size, competition and union IoU means over the images.

    Without a model, the ground-truth union mask is split (the oracle ceiling).
    """
    ids = json.loads(split_json.read_text())[subset][:limit]
    if not ids:
        raise SystemExit(f"{split_json} has no {subset} ids")
    if model_path is not None:
        predictor = load_native_predictor(model_path, "resize", device=device)
    scores: dict[tuple[str, int, int], list[tuple[float, float]]] = {c: [] for c in candidates}
    with h5py.File(interim, "r") as h5:
        for image_id in ids:
            image, truth = h5["images"][image_id][()], h5["labels"][image_id][()]
            if model_path is None:
                mask = truth > 0
            else:
                mask = predictor.probabilities(image) > 0.5
            for method, min_distance, min_size in candidates:
                score = score_image(truth, label_instances(mask, method, min_distance, min_size))
                scores[(method, min_distance, min_size)].append((score.competition, score.union_iou))
    rows = []
    for (method, min_distance, min_size), values in scores.items():
        values_arr = np.array(values)
        rows.append({
            "method": method, "min_distance": min_distance if method == "watershed" else None, "min_size": min_size,
            "competition": float(values_arr[:, 0].mean()), "union_iou": float(values_arr[:, 1].mean()),
            "n_images": len(values),
        })
    return rows


def table(rows: list[dict]) -> str:
    """Markdown table, best competition metric first."""
    lines = [
        "| method | min_distance | min_size | competition (mean) | union IoU (mean) | images |",
        "|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: -r["competition"]):
        md = "-" if r["min_distance"] is None else r["min_distance"]
        lines.append(f"| {r['method']} | {md} | {r['min_size']} | {r['competition']:.4f} | {r['union_iou']:.4f} "
                     f"| {r['n_images']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--oracle", action="store_true", help="split the true union mask instead (no model)")
    parser.add_argument("--interim", type=Path, required=True, help="data/interim/stage1_train.h5 (labels/<id>)")
    parser.add_argument("--split", type=Path, required=True, help="data/processed/split.json")
    parser.add_argument("--subset", default="val", choices=("val", "train"), help="never the test set")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--limit", type=int, default=None, help="only the first N images (a quick look)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args(argv)
    if (args.model is None) == (not args.oracle):
        parser.error("give --model, or --oracle (not both)")
    start = time.perf_counter()
    model = None if args.oracle else args.model
    rows = choose(model, args.interim, args.split, args.subset, device=args.device, limit=args.limit)
    print(table(rows))
    what = "true union masks (oracle)" if args.oracle else f"predicted by {args.model}"
    print(f"\n{rows[0]['n_images']} {args.subset} images, {what}, {time.perf_counter() - start:.1f} s", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
