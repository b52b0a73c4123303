"""`unetpp evaluate` against hand-made predictions with hand-computed scores."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from helpers_inference import write_split
from unetpp.cli import main

S = 16
IDS = ["a_perfect", "b_half", "c_empty", "d_missed", "e_train"]


def write_case(tmp_path: Path) -> tuple[Path, Path, np.ndarray]:
    """Masks and probabilities whose IoU/Dice are easy to work out by hand.

    a: prediction = mask (128 px)                          IoU 1,   Dice 1
    b: mask = columns 0-7, prediction = columns 4-11      I 64, U 192: IoU 1/3, Dice 128/256 = 1/2
    c: mask and prediction empty                           IoU 1,   Dice 1 (empty convention)
    d: mask = columns 0-7, prediction empty                IoU 0,   Dice 0
    """
    masks = np.zeros((5, S, S), np.uint8)
    probs = np.full((4, S, S), 0.1, np.float16)
    masks[0, :, :8] = 1
    probs[0, :, :8] = 0.9
    masks[1, :, :8] = 1
    probs[1, :, 4:12] = 0.51
    probs[1, :, 12:] = 0.5  # exactly 0.5 is background (P = p > 0.5)
    masks[3, :, :8] = 1
    h5 = tmp_path / "p.h5"
    with h5py.File(h5, "w") as f:
        f["images"] = np.zeros((5, S, S, 3), np.uint8)
        f["masks"] = masks
        f.create_dataset("ids", data=IDS, dtype=h5py.string_dtype("utf-8"))
        f.attrs["size"] = S
    split = tmp_path / "split.json"
    write_split(split, ["e_train"], IDS[:4])
    return h5, split, probs


def write_pred(path: Path, probs: np.ndarray, ids: list[str]) -> Path:
    with h5py.File(path, "w") as f:
        f["probabilities"] = probs
        f.create_dataset("ids", data=ids, dtype=h5py.string_dtype("utf-8"))
    return path


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture()
def case(tmp_path):
    h5, split, probs = write_case(tmp_path)
    pred = write_pred(tmp_path / "pred.h5", probs, IDS[:4])
    return {"h5": h5, "split": split, "probs": probs, "pred": pred, "dir": tmp_path}


def test_hand_computed_scores(case):
    out, per_image = case["dir"] / "r" / "metrics.json", case["dir"] / "r" / "per_image.csv"
    res = cli(
        "evaluate",
        "--pred",
        case["pred"],
        "--data",
        case["h5"],
        "--split",
        case["split"],
        "--subset",
        "val",
        "--out",
        out,
        "--per-image",
        per_image,
        "--batch-size",
        "2",
    )
    assert res.exit_code == 0, res.output
    m = json.loads(out.read_text())
    assert m["n_images"] == 4 and m["batch_size"] == 2
    assert m["iou_per_image"] == pytest.approx((1 + 1 / 3 + 1 + 0) / 4)
    assert m["iou_pooled"] == pytest.approx((128 + 64) / (128 + 192 + 0 + 128))
    # batches (a, b) and (c, d): 192/320 and 0/128, both of size 2
    assert m["iou_batch_pooled"] == pytest.approx((192 / 320 + 0) / 2)
    assert m["dice_per_image"] == pytest.approx((1 + 0.5 + 1 + 0) / 4)
    assert m["dice_pooled"] == pytest.approx(2 * 192 / ((128 + 128) + (128 + 128 + 128)))
    assert m["dice_batch_pooled"] == pytest.approx((2 * 192 / 512 + 0) / 2)
    with open(per_image, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["id"] for r in rows] == IDS[:4]
    assert [float(r["iou"]) for r in rows] == pytest.approx([1, 1 / 3, 1, 0])
    assert [float(r["dice"]) for r in rows] == pytest.approx([1, 0.5, 1, 0])
    assert [(int(r["intersection"]), int(r["union"])) for r in rows] == [(128, 128), (64, 192), (0, 0), (0, 128)]
    assert [int(r["pred_pixels"]) for r in rows] == [128, 128, 0, 0]


def test_default_batch_of_16_equals_pooled_for_a_small_set(case):
    out = case["dir"] / "m.json"
    assert (
        cli("evaluate", "--pred", case["pred"], "--data", case["h5"], "--split", case["split"], "--out", out).exit_code
        == 0
    )
    m = json.loads(out.read_text())
    assert m["iou_batch_pooled"] == pytest.approx(m["iou_pooled"]) and m["batch_size"] == 16
    assert sorted(p.name for p in case["dir"].iterdir()) == ["m.json", "p.h5", "pred.h5", "split.json"]


def test_bad_predictions_give_clear_errors_and_no_output(case):
    d, probs = case["dir"], case["probs"]
    reordered = write_pred(d / "reordered.h5", probs[[1, 0, 2, 3]], [IDS[1], IDS[0], IDS[2], IDS[3]])
    foreign = write_pred(d / "foreign.h5", probs, IDS[:3] + ["zz_other"])
    short = write_pred(d / "short.h5", probs[:3], IDS[:3])
    small = write_pred(d / "small.h5", probs[:, :8, :8], IDS[:4])
    no_ids = d / "no_ids.h5"
    with h5py.File(no_ids, "w") as f:
        f["probabilities"] = probs
    corrupt = d / "corrupt.h5"
    corrupt.write_bytes(b"\x89HDF\r\n\x1a\n garbage")
    out_of_range = write_pred(d / "range.h5", probs * 2, IDS[:4])
    cases = [
        (d / "missing.h5", "does not exist: run `unetpp predict`"),
        (reordered, "same ids in a different order (first difference at row 0: 'b_half' vs 'a_perfect')"),
        (foreign, "1 id(s) not in the subset (e.g. 'zz_other') and 1 subset id(s) missing (e.g. 'd_missed')"),
        (short, "1 subset id(s) missing (e.g. 'd_missed')"),
        (small, "holds 8x8 maps but"),
        (no_ids, "has no dataset(s) ids"),
        (corrupt, "cannot be read as HDF5"),
        (out_of_range, "outside [0, 1]"),
    ]
    out, per_image = d / "r" / "metrics.json", d / "r" / "per_image.csv"
    for pred, message in cases:
        res = cli(
            "evaluate",
            "--pred",
            pred,
            "--data",
            case["h5"],
            "--split",
            case["split"],
            "--out",
            out,
            "--per-image",
            per_image,
        )
        assert res.exit_code == 1, (pred, res.output)
        assert message in res.output and str(pred) in res.output, (message, res.output)
        assert not (d / "r").exists() or list((d / "r").iterdir()) == []


def test_wrong_subset_is_refused(case):
    res = cli(
        "evaluate",
        "--pred",
        case["pred"],
        "--data",
        case["h5"],
        "--split",
        case["split"],
        "--subset",
        "train",
        "--out",
        case["dir"] / "m.json",
    )
    assert res.exit_code == 1 and "does not match the 'train' subset" in res.output
    assert not (case["dir"] / "m.json").exists()


@pytest.mark.slow
def test_evaluate_reproduces_the_training_validation_iou(tmp_path):
    """train (1 epoch, tiny) -> predict -> evaluate gives exactly train.json's best val IoU."""
    from helpers_inference import TINY_FILTERS, write_processed
    from unetpp.training.loop import TrainConfig, train

    h5 = tmp_path / "p.h5"
    ids = write_processed(h5, n=10, size=32)
    split = tmp_path / "split.json"
    write_split(split, ids[:6], ids[6:][::-1])
    summary = train(
        TrainConfig(
            data=h5,
            split=split,
            arch="nested_unet_ds",
            out=tmp_path / "m",
            epochs=1,
            lr=1e-2,
            batch_size=4,
            device="cpu",
            precision="fp32",
            num_threads=1,
            checkpoint_dir=tmp_path / "ck",
            model_kwargs={"filters": list(TINY_FILTERS)},
        ),
        progress=False,
    )
    pred, out = tmp_path / "pred.h5", tmp_path / "metrics.json"
    for args in (
        ["predict", "--model", tmp_path / "m" / "model.pt", "--out", pred, "--device", "cpu", "--precision", "fp32"],
        ["evaluate", "--pred", pred, "--out", out],
    ):
        res = cli(*args, "--data", h5, "--split", split, "--subset", "val")
        assert res.exit_code == 0, res.output
    metrics = json.loads(out.read_text())
    assert metrics["iou_per_image"] == pytest.approx(summary["best_val_iou"], abs=1e-12)
    assert metrics["iou_batch_pooled"] == pytest.approx(summary["best_val_iou_batch_pooled"], abs=1e-12)
