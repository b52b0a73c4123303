"""How far the published val IoU can move for reasons other than the model (issue 12, item 8).

Scores the saved val predictions of trained models (`results/runs/<arch>/seed<seed>/predictions.h5`) in
three ways, without training anything:

1. against this pipeline's targets (the processed HDF5: anti-aliased resize, then >= 0.5); this reproduces
   the evaluate stage's batch-pooled val IoU;
2. against the reference's targets: the native union mask resized like cv2.resize(INTER_LINEAR) (bilinear
   without anti-aliasing; skimage's order=1 resize without anti-aliasing gives the same floats), stored as
   uint8 (x255, truncated) and read back as > 0.5, as the blog's preprocess and IoU did;
3. the spread a different draw of val images alone gives: a bootstrap over the val images (resampled with
   replacement, batch-pooled in batches of 16 in the resampled order, as the reference's AverageMeter).

    python benchmarks/reference_targets.py --interim data/interim/stage1_train.h5 \
        --processed data/processed/dsb2018_96.h5 --split data/processed/split.json \
        --run unet=results/runs/unet/seed0/predictions.h5 --run nested_unet=...
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import h5py
import numpy as np
import torch
from skimage.transform import resize

from unetpp.data.processed import read_processed_file, read_split
from unetpp.evaluation.evaluate import read_predictions
from unetpp.metrics import REFERENCE_BATCH_SIZE, PixelCounts, iou, per_image_iou, pixel_counts


def reference_mask(union: np.ndarray, size: int) -> np.ndarray:
    """The blog's target: cv2-style bilinear resize of the 0/1 union mask, uint8 round trip, > 0.5."""
    soft = resize(union.astype(np.float64), (size, size), order=1, anti_aliasing=False, mode="edge")
    stored = (soft * 255).astype(np.uint8)  # cv2.imwrite of (mask * 255).astype('uint8'): truncation
    return (stored.astype(np.float32) / 255 > 0.5).astype(np.uint8)


def batch_pooled(pred: np.ndarray, target: np.ndarray) -> float:
    return iou(pixel_counts(pred, target), "batch_pooled", REFERENCE_BATCH_SIZE)


def bootstrap(pred: np.ndarray, target: np.ndarray, resamples: int, seed: int) -> tuple[float, float, float]:
    """sd and 95% interval of the batch-pooled IoU over val sets drawn with replacement from these images."""
    counts = pixel_counts(pred, target)
    n = counts.intersection.numel()
    rng = np.random.default_rng(seed)
    values = np.empty(resamples)
    for r in range(resamples):
        pick = torch.from_numpy(rng.integers(0, n, n))
        drawn = PixelCounts(counts.intersection[pick], counts.union[pick], counts.pred_sum[pick], counts.target_sum[pick])
        values[r] = iou(drawn, "batch_pooled", REFERENCE_BATCH_SIZE)
    low, high = np.percentile(values, [2.5, 97.5])
    return float(values.std(ddof=1)), float(low), float(high)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--interim", type=Path, required=True, help="ingest's HDF5 (native-size union masks)")
    parser.add_argument("--processed", type=Path, required=True, help="preprocess's HDF5 (this pipeline's targets)")
    parser.add_argument("--split", type=Path, required=True, help="split.json (val ids)")
    parser.add_argument("--run", action="append", required=True, metavar="NAME=PREDICTIONS_H5",
                        help="a model's val predictions; repeatable")
    parser.add_argument("--resamples", type=int, default=10_000, help="bootstrap resamples")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    _, masks, ids, size = read_processed_file(args.processed)
    val = read_split(args.split)["val"]
    index = {sample_id: i for i, sample_id in enumerate(ids)}
    ours = masks[[index[v] for v in val]].astype(np.uint8)
    with h5py.File(args.interim, "r") as h5:
        theirs = np.stack([reference_mask(h5["masks"][v][()], size) for v in val])
    agreement = per_image_iou(pixel_counts(theirs, ours)).numpy()
    print(f"{len(val)} val images at {size}x{size}; the two target definitions differ on "
          f"{(theirs != ours).mean():.2%} of pixels (foreground: ours {ours.mean():.2%}, reference {theirs.mean():.2%}); "
          f"per-image IoU between them: mean {agreement.mean():.4f}, min {agreement.min():.4f}")
    print(f"{'model':16} {'ours':>8} {'reference':>10} {'diff':>8} {'bootstrap sd':>13} {'95% interval':>17}")
    figures = {}
    for item in args.run:
        name, path = item.split("=", 1)
        predictions = read_predictions(path)
        if predictions.ids != val:
            raise SystemExit(f"{path}: its ids are not split.json's val ids in order")
        pred = (predictions.probabilities.astype(np.float32) > 0.5).astype(np.uint8)
        on_ours, on_theirs = batch_pooled(pred, ours), batch_pooled(pred, theirs)
        sd, low, high = bootstrap(pred, ours, args.resamples, args.seed)
        figures[name] = {"ours": on_ours, "reference_targets": on_theirs, "bootstrap_sd": sd,
                         "bootstrap_95": [low, high]}
        print(f"{name:16} {on_ours:8.4f} {on_theirs:10.4f} {on_theirs - on_ours:+8.4f} {sd:13.4f} "
              f"   [{low:.4f}, {high:.4f}]")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
