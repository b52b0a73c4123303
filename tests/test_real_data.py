"""The data stages on the real DSB2018 stage1_train.zip (skipped when it is absent).

One ingest + preprocess of the real zip is shared by the module (about 20 s of
wall time on 2 idle cores, more on a busy machine); the facts checked are those
in shared/data/dsb2018/SOURCE.md.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import h5py
import numpy as np
import pytest

from unetpp.data.ingest import ingest
from unetpp.data.preprocess import preprocess
from unetpp.data.split import split

from conftest import real_raw_zip

pytestmark = pytest.mark.real_data

SHAPES = {
    (256, 256): 334,
    (256, 320): 112,
    (520, 696): 92,
    (360, 360): 91,
    (1024, 1024): 16,
    (512, 640): 13,
    (603, 1272): 6,
    (260, 347): 5,
    (1040, 1388): 1,
}


@pytest.fixture(scope="module")
def real_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    raw = real_raw_zip()
    if not raw.is_file():
        pytest.skip(f"real data not found at {raw} (set UNETPP_RAW_ZIP to its path)")
    tmp = tmp_path_factory.mktemp("real")
    files = {"raw": raw, "interim": tmp / "interim.h5", "processed": tmp / "p96.h5", "split": tmp / "split.json"}
    ingest(raw, files["interim"], workers=2, progress=False)
    preprocess(files["interim"], files["processed"], size=96, workers=2, progress=False)
    split(files["processed"], files["split"], val_fraction=0.2, test_fraction=0.0, seed=41)
    return files


def rle(mask: np.ndarray) -> str:
    """Kaggle run-length encoding: column-major, 1-indexed 'start length' pairs."""
    flat = np.concatenate([[0], mask.T.ravel().astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(flat)) + 1
    starts, ends = edges[::2], edges[1::2]
    return " ".join(f"{s} {e - s}" for s, e in zip(starts, ends))


def test_counts_shapes_and_kinds(real_files):
    with h5py.File(real_files["interim"]) as h5:
        ids = list(h5["ids"].asstr()[()])
        assert len(ids) == 670 == h5.attrs["n_images"] and ids == sorted(ids)
        assert h5.attrs["n_nuclei"] == 29461
        shapes, grey, nuclei = Counter(), 0, 0
        for sample_id in ids:
            image, labels = h5["images"][sample_id][()], h5["labels"][sample_id][()]
            assert image.dtype == np.uint8 and image.shape[2] == 3 and labels.dtype == np.uint16
            shapes[image.shape[:2]] += 1
            grey += bool((image[..., 0] == image[..., 1]).all() and (image[..., 1] == image[..., 2]).all())
            nuclei += int(labels.max())
        assert shapes[(256, 256)] == 334
        assert dict(shapes) == SHAPES
        assert grey == 562
        assert nuclei == 29461  # no mask is empty, no two overlap, so labels run 1..n per image


def test_labels_match_the_official_run_length_csv(real_files):
    csv_path = real_files["raw"].with_name("stage1_train_labels.csv")
    if not csv_path.is_file():
        pytest.skip(f"{csv_path} not found")
    with h5py.File(real_files["interim"]) as h5:
        ids = list(h5["ids"].asstr()[()])
        chosen = {ids[0], ids[333], ids[-1]}
        expected: dict[str, set[str]] = {i: set() for i in chosen}
        with open(csv_path, newline="") as handle:
            for row in csv.DictReader(handle):
                if row["ImageId"] in chosen:
                    expected[row["ImageId"]].add(row["EncodedPixels"].strip())
        for sample_id in chosen:
            labels = h5["labels"][sample_id][()]
            found = {rle(labels == k) for k in range(1, int(labels.max()) + 1)}
            assert found == expected[sample_id], sample_id
            np.testing.assert_array_equal(h5["masks"][sample_id][()], (labels > 0).astype(np.uint8))


def test_processed_and_split(real_files):
    with h5py.File(real_files["processed"]) as h5:
        assert h5["images"].shape == (670, 96, 96, 3) and h5["masks"].shape == (670, 96, 96)
        masks = h5["masks"][()]
        assert set(np.unique(masks)) == {0, 1}
        assert 0.05 < masks.mean() < 0.3  # nuclei cover a small part of each image
        assert h5.attrs["size"] == 96
    data = json.loads(real_files["split"].read_text())
    assert (len(data["train"]), len(data["val"]), len(data["test"])) == (536, 134, 0)
