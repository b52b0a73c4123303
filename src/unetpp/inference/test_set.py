"""`unetpp predict-test`: a raw test set in the Kaggle layout -> union masks, label maps, submission.csv (+ scores).

Every image is predicted at the training scale (`predict_images.NativePredictor`)
and thresholded at 0.5 at native size; `evaluation.instances` turns the union
mask into one label per nucleus; the labels are written as a 16-bit PNG and
run-length encoded into the Kaggle submission, one row per nucleus and a row with
empty EncodedPixels for an image without one (Kaggle needs a row per image).
Where truth exists (masks in the set, or --truth) each image is also scored.
The whole folder is written atomically, so a failure leaves no partial result.
"""

from __future__ import annotations

import csv
import json
import os
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from unetpp.atomic import atomic_path
from unetpp.choices import DEFAULT_DEVICE, DEFAULT_PRECISION
from unetpp.data.pngdecode import DEFAULT_MAX_PIXELS, decode_image
from unetpp.data.raw import DEFAULT_MAX_UNPACKED_MB, MemberReader, open_raw
from unetpp.errors import UnetppError
from unetpp.evaluation.competition import THRESHOLDS, score_image
from unetpp.evaluation.instances import DEFAULT_METHOD, DEFAULT_MIN_DISTANCE, DEFAULT_MIN_SIZE, label_instances
from unetpp.evaluation.rle import encode_labels
from unetpp.evaluation.truth import MaskTruth, open_truth
from unetpp.inference.images import write_mask
from unetpp.inference.predict_images import check_mode, load_native_predictor


@dataclass(frozen=True)
class InstanceSettings:
    """How a union mask becomes nuclei (see `unetpp.evaluation.instances`)."""

    method: str = DEFAULT_METHOD
    min_distance: int = DEFAULT_MIN_DISTANCE
    min_size: int = DEFAULT_MIN_SIZE


@dataclass(frozen=True)
class TestResult:
    n_images: int
    n_objects: int
    seconds: float
    scores: dict | None


def write_labels(target: Path, labels: np.ndarray) -> None:
    """A 16-bit greyscale PNG (0 = background, 1..n nuclei)."""
    from PIL import Image

    Image.fromarray(labels.astype(np.uint16)).save(target, format="PNG")


def _summary(rows: list[dict]) -> dict:
    return {
        "n_images": len(rows),
        "union_iou": float(np.mean([r["union_iou"] for r in rows])),
        "competition": float(np.mean([r["competition"] for r in rows])),
        "thresholds": [float(t) for t in THRESHOLDS],
    }


def run_predict_test(
    model_path: str | os.PathLike[str],
    raw: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    instances: InstanceSettings = InstanceSettings(),
    truth: str | os.PathLike[str] | None = None,
    mode: str = "resize",
    size: int | None = None,
    device: str = DEFAULT_DEVICE,
    precision: str = DEFAULT_PRECISION,
    inference_output: str = "last",
    progress: bool | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_unpacked_mb: float = DEFAULT_MAX_UNPACKED_MB,
) -> TestResult:
    """Write `<out>/masks/<id>.png`, `<out>/labels/<id>.png`, `<out>/submission.csv`, `<out>/predict_test.json`,
    and with truth `<out>/per_image.csv` and `<out>/scores.json`."""
    check_mode(mode)
    if instances.min_distance < 1 or instances.min_size < 0:
        raise UnetppError("--min-distance must be >= 1 and --min-size >= 0")
    label_instances(np.zeros((1, 1), bool), instances.method)  # an unknown method fails before any work
    out = Path(out_dir)
    source = open_raw(raw, max_unpacked_mb, masks_required=False)
    predictor = load_native_predictor(model_path, mode, size, device, precision, inference_output)

    with ExitStack() as stack:
        reader = MemberReader(source.path, source.is_zip)
        stack.callback(reader.close)
        if truth is not None:
            known = stack.enter_context(open_truth(truth, max_pixels))
        elif any(s.masks for s in source.samples):
            known = MaskTruth(source, reader, max_pixels)
        else:
            known = None
        if known is not None:
            missing = sorted(set(s.id for s in source.samples) - set(known.ids))
            if missing:
                raise UnetppError(
                    f"truth has no answer for {len(missing)} of the {len(source.samples)} images (e.g. {missing[0]}): "
                    "give truth for every image, or none"
                )
        start = time.perf_counter()
        rows: list[dict] = []
        n_objects = 0
        with atomic_path(out, is_dir=True) as tmp:
            (tmp / "masks").mkdir(parents=True)
            (tmp / "labels").mkdir()
            with open(tmp / "submission.csv", "w", newline="") as handle:
                writer = csv.writer(handle, lineterminator="\n")
                writer.writerow(["ImageId", "EncodedPixels"])
                for sample in tqdm(
                    source.samples, desc="predict-test", unit="image",
                    disable=None if progress is None else not progress,
                ):
                    image = decode_image(reader.read(sample.image), f"{source.path}: {sample.image}", max_pixels)
                    mask = predictor.probabilities(image) > 0.5
                    labels = label_instances(mask, instances.method, instances.min_distance, instances.min_size)
                    write_mask(tmp / "masks" / f"{sample.id}.png", mask)
                    write_labels(tmp / "labels" / f"{sample.id}.png", labels)
                    strings = encode_labels(labels)
                    n_objects += len(strings)
                    for text in strings or [""]:
                        writer.writerow([sample.id, text])
                    if known is not None:
                        score = score_image(known.labels(sample.id, image.shape[:2]), labels)
                        rows.append({"ImageId": sample.id, "height": image.shape[0], "width": image.shape[1],
                                     **asdict(score)})
            seconds = time.perf_counter() - start
            scores = _summary(rows) if rows else None
            if rows:
                with open(tmp / "per_image.csv", "w", newline="") as handle:
                    writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
                    writer.writeheader()
                    writer.writerows(rows)
                (tmp / "scores.json").write_text(json.dumps(scores, indent=2) + "\n")
            record = {
                "model": str(model_path), "raw": str(raw), "truth": None if truth is None else str(truth),
                "instances": asdict(instances), "mode": mode, "size": predictor.size,
                "device": str(predictor.device), "precision": predictor.precision, "n_images": len(source.samples),
                "n_objects": n_objects, "seconds": round(seconds, 3),
                "images_per_second": round(len(source.samples) / seconds, 3) if seconds > 0 else None,
            }
            (tmp / "predict_test.json").write_text(json.dumps(record, indent=2) + "\n")
    return TestResult(len(source.samples), n_objects, seconds, scores)
