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
from unetpp.data.image_kind import image_kind

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
    assert metrics["size"] == 32  # recorded without --interim too: the variant table's "size" column
    assert metrics["iou_per_image"] == pytest.approx(summary["best_val_iou"], abs=1e-12)
    assert metrics["iou_batch_pooled"] == pytest.approx(summary["best_val_iou_batch_pooled"], abs=1e-12)


# --- native size (--interim) --------------------------------------------------------------------


def test_native_size_scores_each_prediction_against_its_ingested_mask(tmp_path, synthetic_interim_h5,
                                                                      synthetic_processed_h5):
    """The processed 32x32 val masks as predictions: perfect at 32x32, the 32 px round trip at native size."""
    from skimage.transform import resize

    from unetpp.data.processed import load_processed

    with h5py.File(synthetic_processed_h5) as f:
        ids = [i.decode() for i in f["ids"][()]]
    split = tmp_path / "split.json"
    write_split(split, ids[:1], ids[1:])  # every size among the val images
    val = load_processed(synthetic_processed_h5, split, "val")
    with h5py.File(synthetic_interim_h5) as f:
        native = [f["masks"][i][()] for i in val.ids]
    shapes = {m.shape for m in native}
    assert (32, 32) in shapes and len(shapes) > 1  # mixed native sizes, one of them the processed size
    pred = write_pred(tmp_path / "pred.h5", val.masks.astype(np.float16), val.ids)
    out, per_image = tmp_path / "metrics.json", tmp_path / "per_image.csv"
    result = cli("evaluate", "--pred", pred, "--data", synthetic_processed_h5, "--split", split,
                 "--out", out, "--per-image", per_image, "--interim", synthetic_interim_h5)
    assert result.exit_code == 0, result.output
    assert "native size IoU per_image" in result.output
    m = json.loads(out.read_text())
    assert m["iou_per_image"] == 1.0 and m["size"] == 32
    with open(per_image, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["id"] for r in rows] == val.ids
    for row, mask, small in zip(rows, native, val.masks):
        assert (int(row["native_height"]), int(row["native_width"])) == mask.shape
        assert int(row["native_mask_pixels"]) == int(mask.sum())
        back = resize(small.astype(np.float32), mask.shape, order=1, anti_aliasing=False, preserve_range=True) > 0.5
        inter, union = int((back & (mask > 0)).sum()), int((back | (mask > 0)).sum())
        assert (int(row["native_intersection"]), int(row["native_union"])) == (inter, union)
        assert float(row["native_iou"]) == pytest.approx(inter / union)
        if mask.shape == (32, 32):  # no resizing either way: the processed mask is the native one
            assert float(row["native_iou"]) == 1.0
    ious = [float(r["native_iou"]) for r in rows]
    assert min(ious) < 1.0  # the round trip through 32 px loses pixels of the larger images
    assert m["iou_native_per_image"] == pytest.approx(np.mean(ious))
    assert m["iou_native_pooled"] == pytest.approx(
        sum(int(r["native_intersection"]) for r in rows) / sum(int(r["native_union"]) for r in rows))
    assert m["dice_native_per_image"] == pytest.approx(np.mean([float(r["native_dice"]) for r in rows]))
    # Each image's kind, from its own pixels, and each kind's mean native IoU over its images.
    with h5py.File(synthetic_interim_h5) as f:
        kinds = [image_kind(f["images"][i][()]) for i in val.ids]
    assert [r["image_kind"] for r in rows] == kinds and set(kinds) == {"fluorescence", "colour"}
    for kind in ("fluorescence", "colour"):
        ours = [float(r["native_iou"]) for r in rows if r["image_kind"] == kind]
        assert m[f"n_images_{kind}"] == len(ours) and m[f"iou_native_per_image_{kind}"] == pytest.approx(np.mean(ours))
    assert "n_images_brightfield" not in m and "iou_native_per_image_brightfield" not in m  # no such image here
    assert "(fluorescence " in result.output and "colour " in result.output

    # Without --interim, the file keeps its per-size columns only.
    plain = cli("evaluate", "--pred", pred, "--data", synthetic_processed_h5, "--split", split,
                "--out", tmp_path / "plain.json", "--per-image", tmp_path / "plain.csv")
    assert plain.exit_code == 0, plain.output
    assert "iou_native_per_image" not in json.loads((tmp_path / "plain.json").read_text())
    assert (tmp_path / "plain.csv").read_text().splitlines()[0] == ",".join(
        ["id", "iou", "dice", "intersection", "union", "pred_pixels", "mask_pixels"])


def test_native_size_needs_the_matching_ingest_output(tmp_path, synthetic_processed_h5, synthetic_split_json):
    from unetpp.data.processed import load_processed

    val = load_processed(synthetic_processed_h5, synthetic_split_json, "val")
    pred = write_pred(tmp_path / "pred.h5", val.masks.astype(np.float16), val.ids)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.create_group("images")
        f.create_group("masks")
        f.create_dataset("ids", data=[], dtype=h5py.string_dtype("utf-8"))
    args = ["evaluate", "--pred", pred, "--data", synthetic_processed_h5, "--split", synthetic_split_json,
            "--out", tmp_path / "m.json"]
    result = cli(*args, "--interim", other)
    assert result.exit_code == 1 and f"{other} has no mask for 3 of the 3 ids" in result.output
    missing = cli(*args, "--interim", tmp_path / "nope.h5")
    assert missing.exit_code == 1 and "nope.h5 does not exist; run `unetpp ingest`" in missing.output
    assert not (tmp_path / "m.json").exists()
