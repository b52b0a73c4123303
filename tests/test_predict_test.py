"""`unetpp predict-test`: union masks, 16-bit label maps, submission.csv and scores for a Kaggle-layout test set."""

from __future__ import annotations

import csv
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from helpers_inference import write_model
from unetpp.cli import main
from unetpp.data.preprocess import resize_image
from unetpp.errors import UnetppError
from unetpp.evaluation.competition import score_image
from unetpp.evaluation.rle import decode_labels, encode_labels
from unetpp.inference.downscale import block_mean, block_sizes, downscale_image
from unetpp.inference.test_set import InstanceSettings, run_predict_test


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "model.pt"
    write_model(path, "unet", seed=3)
    return path


@pytest.fixture(scope="module")
def images_only_zip(tmp_path_factory, synthetic_raw_zip) -> Path:
    """The synthetic set without its masks, as stage1_test_images.zip is."""
    path = tmp_path_factory.mktemp("test_set") / "test_images.zip"
    with zipfile.ZipFile(synthetic_raw_zip) as src, zipfile.ZipFile(path, "w") as dst:
        for name in src.namelist():
            if "/masks/" not in name:
                dst.writestr(name, src.read(name))
    return path


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_outputs_for_a_test_set_without_masks(model_path, images_only_zip, tmp_path):
    out = tmp_path / "pred"
    result = run_predict_test(model_path, images_only_zip, out, InstanceSettings("watershed", 3, 2), device="cpu",
                              precision="fp32", progress=False)
    assert result.scores is None and not (out / "scores.json").exists()
    with zipfile.ZipFile(images_only_zip) as archive:
        ids = sorted({n.split("/")[0] for n in archive.namelist()})
    assert sorted(p.stem for p in (out / "masks").iterdir()) == ids
    rows = read_rows(out / "submission.csv")
    assert list(rows[0]) == ["ImageId", "EncodedPixels"]
    assert {r["ImageId"] for r in rows} == set(ids)  # a row for every image
    total = 0
    for image_id in ids:
        with Image.open(out / "masks" / f"{image_id}.png") as img:
            mask = np.asarray(img)
        with Image.open(out / "labels" / f"{image_id}.png") as img:
            assert img.mode == "I;16"
            labels = np.asarray(img)
        assert labels.dtype == np.uint16 and labels.shape == mask.shape
        assert ((labels > 0) <= (mask == 255)).all()  # objects lie in the union mask (minus dropped speckle)
        strings = [r["EncodedPixels"] for r in rows if r["ImageId"] == image_id]
        if labels.max() == 0:
            assert strings == [""]
        else:
            np.testing.assert_array_equal(decode_labels(strings, labels.shape), labels)  # no overlaps, same objects
        total += int(labels.max())
    record = json.loads((out / "predict_test.json").read_text())
    assert record["n_images"] == len(ids) and record["n_objects"] == total == result.n_objects
    assert record["instances"] == {"method": "watershed", "min_distance": 3, "min_size": 2}


def test_scores_from_masks_and_from_a_solution_csv_agree(model_path, synthetic_raw_zip, images_only_zip, tmp_path):
    from unetpp.data.ingest import decode_sample
    from unetpp.data.raw import open_raw

    first = run_predict_test(model_path, synthetic_raw_zip, tmp_path / "a", device="cpu", precision="fp32",
                             progress=False)
    per_image = read_rows(tmp_path / "a" / "per_image.csv")
    # the same truth as a Kaggle solution CSV, built from the ingested label maps
    solution = tmp_path / "solution.csv"
    source = open_raw(synthetic_raw_zip)
    expected = {}
    with open(solution, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ImageId", "EncodedPixels", "Height", "Width", "Usage"])
        for sample in source.samples:
            labels = decode_sample(source.path, source.is_zip, sample).labels
            for text in encode_labels(labels):
                writer.writerow([sample.id, text, *labels.shape, "Public"])
            with Image.open(tmp_path / "a" / "labels" / f"{sample.id}.png") as img:
                expected[sample.id] = score_image(labels, np.asarray(img))
    second = run_predict_test(model_path, images_only_zip, tmp_path / "b", truth=solution, device="cpu",
                              precision="fp32", progress=False)
    assert second.scores == first.scores
    assert first.scores["n_images"] == len(per_image) == len(source.samples)
    for row in per_image:
        assert float(row["competition"]) == pytest.approx(expected[row["ImageId"]].competition)
        assert float(row["union_iou"]) == pytest.approx(expected[row["ImageId"]].union_iou)
    assert first.scores["competition"] == pytest.approx(np.mean([s.competition for s in expected.values()]))


def test_cli_and_refusals(model_path, images_only_zip, tmp_path):
    out = tmp_path / "cli"
    res = CliRunner().invoke(main, ["predict-test", "--raw", str(images_only_zip), "--model", str(model_path),
                                    "--out", str(out), "--instances", "cc", "--device", "cpu", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "nuclei to" in res.output and (out / "submission.csv").is_file()
    bad_truth = tmp_path / "bad.csv"
    bad_truth.write_text("ImageId,EncodedPixels\nx,1 1\n")
    with pytest.raises(UnetppError, match="Height"):
        run_predict_test(model_path, images_only_zip, tmp_path / "c", truth=bad_truth, device="cpu", progress=False)
    partial = tmp_path / "partial.csv"
    partial.write_text("ImageId,EncodedPixels,Height,Width\nnot_an_image,1 1,4,4\n")
    with pytest.raises(UnetppError, match="no answer"):
        run_predict_test(model_path, images_only_zip, tmp_path / "d", truth=partial, device="cpu", progress=False)
    assert not (tmp_path / "d").exists()


def test_block_mean_by_hand():
    image = np.arange(15, dtype=np.uint8).reshape(3, 5, 1)  # rows 0-4, 5-9, 10-14
    out = block_mean(image, 2, 2)
    # full 2x2 block (0,1,5,6) -> 3; partial blocks average only real pixels: (4,9) -> 6.5, (10,11) -> 10.5, (14) -> 14
    np.testing.assert_allclose(out[..., 0], [[3, 5, 6.5], [10.5, 12.5, 14]])
    assert block_sizes((520, 696), 96) == (1, 1) and block_sizes((1024, 1024), 96) == (2, 2)
    assert block_sizes((3000, 4000), 96) == (7, 10)


def test_downscale_equals_resize_image_where_it_matters():
    rng = np.random.default_rng(0)
    small = rng.integers(0, 255, (520, 696, 3), dtype=np.uint8)
    np.testing.assert_array_equal(downscale_image(small, 96), resize_image(small, 96))  # below 8x: same function
    # a smooth 1200x1600 RGB image (12.5x and 16.7x shrink): measured max difference 1 grey level
    yy, xx = np.mgrid[:1200, :1600]
    smooth = np.dstack([128 + 100 * np.sin(yy / 37.0 + k) * np.cos(xx / 53.0) for k in range(3)]).astype(np.uint8)
    diff = np.abs(downscale_image(smooth, 96).astype(int) - resize_image(smooth, 96))
    assert diff.max() <= 1 and diff.mean() < 0.1
