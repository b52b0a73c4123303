"""Loading and validating the processed HDF5 + split.json (unetpp.data.processed)."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from unetpp.data.processed import file_sha256, load_processed, read_split
from unetpp.errors import UnetppError


def write_processed(path: Path, n: int = 12, size: int = 32, seed: int = 0) -> list[str]:
    """A tiny processed file in the DESIGN.md format: random images, disc masks."""
    rng = np.random.default_rng(seed)
    ids = [f"img{k:03d}" for k in range(n)]
    images = rng.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)
    yy, xx = np.mgrid[:size, :size]
    masks = np.zeros((n, size, size), dtype=np.uint8)
    for k in range(n):
        cy, cx = rng.integers(6, size - 6, size=2)
        masks[k] = ((yy - cy) ** 2 + (xx - cx) ** 2 <= 25).astype(np.uint8)
    with h5py.File(path, "w") as f:
        f["images"] = images
        f["masks"] = masks
        f.create_dataset("ids", data=ids, dtype=h5py.string_dtype("utf-8"))
        f.attrs["size"] = size
        f.attrs["input_sha256"] = "0" * 64
    return ids


def write_split(path: Path, ids: list[str], n_val: int = 4) -> dict:
    split = {"seed": 0, "val_fraction": 0.3, "test_fraction": 0.0, "train": ids[n_val:], "val": ids[:n_val][::-1],
             "test": []}
    path.write_text(json.dumps(split))
    return split


@pytest.fixture()
def files(tmp_path: Path) -> tuple[Path, Path, list[str]]:
    h5 = tmp_path / "p.h5"
    ids = write_processed(h5)
    split = tmp_path / "split.json"
    write_split(split, ids)
    return h5, split, ids


def test_subset_rows_follow_split_order(files):
    h5, split, ids = files
    val = load_processed(h5, split, "val")
    assert val.ids == ["img003", "img002", "img001", "img000"]
    with h5py.File(h5) as f:
        np.testing.assert_array_equal(val.images[0], f["images"][3])
        np.testing.assert_array_equal(val.masks[3], f["masks"][0])
    assert val.images.dtype == np.uint8 and val.images.shape == (4, 32, 32, 3)
    assert val.masks.shape == (4, 32, 32) and set(np.unique(val.masks)) <= {0, 1}
    assert val.size == 32 and len(val) == 4
    train = load_processed(h5, split, "train")
    assert train.ids == ids[4:]


def test_whole_file_without_split(files):
    h5, _, ids = files
    everything = load_processed(h5)
    assert everything.ids == ids and everything.images.shape[0] == 12


def test_missing_file_names_it(tmp_path, files):
    _, split, _ = files
    with pytest.raises(UnetppError, match=r"nope\.h5 does not exist.*unetpp preprocess"):
        load_processed(tmp_path / "nope.h5", split, "train")
    with pytest.raises(UnetppError, match=r"nope\.json does not exist.*unetpp split"):
        load_processed(files[0], tmp_path / "nope.json", "train")


def test_corrupt_hdf5(tmp_path, files):
    _, split, _ = files
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"this is not hdf5" * 100)
    with pytest.raises(UnetppError, match="bad.h5 cannot be read as HDF5.*corrupt"):
        load_processed(bad, split, "train")


def test_truncated_hdf5(tmp_path, files):
    h5, split, _ = files
    cut = tmp_path / "cut.h5"
    cut.write_bytes(h5.read_bytes()[:2000])
    with pytest.raises(UnetppError, match="cut.h5"):
        load_processed(cut, split, "train")


def test_missing_dataset_and_bad_masks(tmp_path, files):
    h5, split, _ = files
    with h5py.File(h5, "a") as f:
        del f["masks"]
    with pytest.raises(UnetppError, match="no dataset.*masks"):
        load_processed(h5, split, "train")
    with h5py.File(h5, "a") as f:
        f["masks"] = np.full((12, 32, 32), 255, dtype=np.uint8)
    with pytest.raises(UnetppError, match="values above 1"):
        load_processed(h5, split, "train")


def test_split_ids_not_in_data(tmp_path, files):
    h5, split, ids = files
    write_split(split, ids + ["ghost1", "ghost2"], n_val=4)
    # the two ghosts land at the end of train
    with pytest.raises(UnetppError, match=r"2 'train' id\(s\) not in .*ghost1, ghost2.*rerun `unetpp split`"):
        load_processed(h5, split, "train")
    assert load_processed(h5, split, "val").ids  # val is still fine


def test_bad_split_files(tmp_path, files):
    h5, split, ids = files
    split.write_text("{not json")
    with pytest.raises(UnetppError, match="not valid JSON"):
        load_processed(h5, split, "train")
    split.write_text(json.dumps({"train": ids[:5], "val": ids[4:6]}))
    with pytest.raises(UnetppError, match="'img004' appears in both 'train' and 'val'"):
        read_split(split)
    split.write_text(json.dumps({"train": ids, "val": []}))
    with pytest.raises(UnetppError, match="no 'val' ids"):
        load_processed(h5, split, "val")
    with pytest.raises(UnetppError, match="unknown subset 'dev'"):
        load_processed(h5, split, "dev")


def test_file_sha256_changes_with_content(tmp_path):
    a = tmp_path / "a"
    a.write_bytes(b"abc")
    assert file_sha256(a) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    a.write_bytes(b"abd")
    assert file_sha256(a) != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
