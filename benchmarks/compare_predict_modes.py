"""Which `predict-images --mode` segments native-size images better? Prints native-resolution IoU per mode.

Runs the trained model over the native-size images of a split subset (from
the interim HDF5 `unetpp ingest` writes) with each mode and scores the masks
against the native-size ground truth, so the resize mode pays for its
down-and-up sampling and the pad mode for seeing nuclei at a scale it was not
trained on. Also prints the ceiling of the resize mode: the IoU of the
ground truth itself after the round trip to the training size and back.

    .venv/bin/python benchmarks/compare_predict_modes.py --model models/unet/model.pt \
        --interim data/interim/stage1_train.h5 --split data/processed/split.json --subset val
"""

from __future__ import annotations

import argparse

import h5py
import numpy as np
import torch

from unetpp.data.preprocess import resize_mask, resize_probabilities
from unetpp.data.processed import read_split
from unetpp.inference.loading import load_trained_model
from unetpp.inference.predict_images import MODES, NativePredictor, training_size


def iou(pred: np.ndarray, mask: np.ndarray) -> float:
    union = int((pred | mask).sum())
    return 1.0 if union == 0 else int((pred & mask).sum()) / union


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model.pt from `unetpp train`")
    parser.add_argument("--interim", required=True, help="native-size HDF5 from `unetpp ingest`")
    parser.add_argument("--split", required=True, help="split.json from `unetpp split`")
    parser.add_argument("--subset", default="val", help="split subset to score")
    parser.add_argument("--size", type=int, default=None, help="training size (default: from model.pt, else 96)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    model, checkpoint = load_trained_model(args.model, device)
    size = training_size(checkpoint, args.size)
    predictors = {mode: NativePredictor(model, mode, size, 16, device, "fp32") for mode in MODES}
    ids = read_split(args.split)[args.subset]
    scores: dict[str, list[float]] = {mode: [] for mode in MODES}
    ceiling: list[float] = []
    with h5py.File(args.interim, "r") as f:
        for sample_id in ids:
            image = f["images"][sample_id][()]
            mask = f["masks"][sample_id][()] > 0
            for mode in MODES:
                probs = predictors[mode].probabilities(image)
                scores[mode].append(iou(probs > 0.5, mask))
            round_trip = resize_probabilities(resize_mask(mask.astype(np.uint8), size).astype(np.float32), *mask.shape)
            ceiling.append(iou(round_trip > 0.5, mask))
    print(f"{len(ids)} '{args.subset}' images at native size, model {args.model} ({checkpoint['arch']}), size {size}")
    for mode in MODES:
        print(f"  --mode {mode:<6}: mean IoU {np.mean(scores[mode]):.4f}")
    print(f"  resize ceiling (ground truth -> {size} px -> back): mean IoU {np.mean(ceiling):.4f}")


if __name__ == "__main__":
    main()
