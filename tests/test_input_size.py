"""A training size other than 96 end to end, with the new knobs: train, predict, evaluate --interim, predict-test."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import pytest
import torch
from click.testing import CliRunner

from unetpp.cli import main

pytestmark = pytest.mark.slow
SIZE = 64  # not 96, and cheap; 192 was run by hand the same way


def cli(*args: object) -> str:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


def test_every_stage_runs_at_another_size_with_the_authors_block_and_augmentation(
    tmp_path: Path, synthetic_interim_h5: Path, synthetic_raw_zip: Path
) -> None:
    processed, split = tmp_path / f"p{SIZE}.h5", tmp_path / "split.json"
    cli("preprocess", "--in", synthetic_interim_h5, "--size", SIZE, "--out", processed, "--workers", 1, "--no-progress")
    cli("split", "--in", processed, "--val-fraction", 0.25, "--out", split)
    model_dir = tmp_path / "model"
    cli("train", "--data", processed, "--split", split, "--arch", "unet", "--epochs", 1, "--batch-size", 4,
        "--device", "cpu", "--precision", "fp32", "--num-threads", 1, "--out", model_dir,
        "--checkpoint-dir", tmp_path / "ckpt", "--block", "authors", "--augment", "flips_colour", "--no-progress")
    summary = json.loads((model_dir / "train.json").read_text())
    assert summary["settings"]["image_size"] == SIZE and summary["parameters"] == 7_760_097
    assert (summary["block"], summary["augment"]) == ("authors", "flips_colour")

    pred = tmp_path / "pred.h5"
    cli("predict", "--model", model_dir / "model.pt", "--data", processed, "--split", split, "--subset", "val",
        "--out", pred, "--device", "cpu", "--no-progress")
    with h5py.File(pred) as f:
        n_val = len(f["ids"])
        assert f["probabilities"].shape == (n_val, SIZE, SIZE)

    metrics = tmp_path / "metrics.json"
    cli("evaluate", "--pred", pred, "--data", processed, "--split", split, "--out", metrics,
        "--interim", synthetic_interim_h5)
    scores = json.loads(metrics.read_text())
    assert scores["size"] == SIZE and scores["n_images"] == n_val
    assert 0.0 <= scores["iou_native_per_image"] <= 1.0 and "dice_native_pooled" in scores

    out = tmp_path / "test_set"
    cli("predict-test", "--raw", synthetic_raw_zip, "--model", model_dir / "model.pt", "--out", out,
        "--device", "cpu", "--no-progress")
    record = json.loads((out / "predict_test.json").read_text())
    assert record["size"] == SIZE and record["n_images"] == 12  # the size recorded in model.pt
    assert (out / "submission.csv").read_text().startswith("ImageId,EncodedPixels")
    # The rebuilt model is the authors' (model.pt's block), or its weights would not have loaded.
    assert torch.load(model_dir / "model.pt", weights_only=True)["block"] == "authors"
