"""The run-length code against the official stage1_train_labels.csv, and the real test zip (skipped when absent)."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from conftest import real_raw_zip
from unetpp.data.ingest import decode_sample
from unetpp.data.raw import open_raw
from unetpp.evaluation.rle import decode_labels, encode_labels

pytestmark = pytest.mark.real_data


def test_encoding_ingested_nuclei_gives_the_official_strings():
    raw = real_raw_zip()
    labels_csv = raw.with_name("stage1_train_labels.csv")
    if not raw.is_file() or not labels_csv.is_file():
        pytest.skip(f"real data not found at {raw} / {labels_csv}")
    source = open_raw(raw)
    chosen = [source.samples[k] for k in (0, 1, 100, 333, 500, len(source.samples) - 1)]
    official: dict[str, list[str]] = {s.id: [] for s in chosen}
    with open(labels_csv, newline="") as handle:
        for row in csv.DictReader(handle):
            if row["ImageId"] in official:
                official[row["ImageId"]].append(row["EncodedPixels"].strip())
    for sample in chosen:
        labels = decode_sample(source.path, source.is_zip, sample).labels
        strings = encode_labels(labels)
        assert len(strings) == len(sample.masks) == len(official[sample.id])
        assert set(strings) == set(official[sample.id]), sample.id
        decoded = decode_labels(official[sample.id], labels.shape)  # the CSV's order, so other label numbers
        pairs = np.unique(np.stack([labels.ravel(), decoded.ravel()]), axis=1)
        assert pairs.shape[1] == len(strings) + 1  # a one-to-one relabelling, background to background
        np.testing.assert_array_equal(decode_labels(strings, labels.shape), labels)


def test_the_real_test_zip_is_read_without_masks():
    path = real_raw_zip().with_name("stage1_test_images.zip")
    if not path.is_file():
        pytest.skip(f"{path} not found")
    source = open_raw(path, masks_required=False)
    assert len(source.samples) == 65 and source.n_masks == 0
