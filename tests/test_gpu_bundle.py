"""benchmarks/gpu_bundle.py: the unpacked files are the packed ones, and the cut-down val interim file scores as
the full ingest output."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from unetpp.cli import main
from unetpp.data.image_kind import image_kind
from unetpp.data.processed import file_sha256, load_processed

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_bundle.py"
spec = importlib.util.spec_from_file_location("gpu_bundle", SCRIPT)
gpu_bundle = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gpu_bundle)


def evaluate(pred: Path, data: Path, split: Path, interim: Path, out: Path) -> dict:
    result = CliRunner().invoke(main, ["evaluate", "--pred", str(pred), "--data", str(data), "--split", str(split),
                                       "--out", str(out), "--interim", str(interim)])
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text())


def test_pack_then_unpack_gives_the_same_bytes_and_the_same_native_scores(
    tmp_path, synthetic_interim_h5, synthetic_processed_h5, synthetic_split_json
):
    processed = tmp_path / "processed"
    processed.mkdir()
    shutil.copyfile(synthetic_processed_h5, processed / "dsb2018_32.h5")
    shutil.copyfile(synthetic_split_json, processed / "split.json")
    manifest = gpu_bundle.pack(processed, [32], synthetic_interim_h5, tmp_path / "bundle", budget_mib=1.0)
    assert sorted(p.name for p in (tmp_path / "bundle").iterdir()) == [
        "MANIFEST.json", "dsb2018_32.h5.gz", "split.json", gpu_bundle.VAL_INTERIM]
    gpu_bundle.unpack(tmp_path / "bundle", tmp_path / "data")
    for relative, digest in manifest.items():
        assert file_sha256(tmp_path / "data" / relative) == digest
    unpacked = tmp_path / "data" / "processed" / "dsb2018_32.h5"
    assert unpacked.read_bytes() == synthetic_processed_h5.read_bytes()  # train.json's data_sha256 is unchanged
    val_interim = tmp_path / "data" / "interim" / gpu_bundle.VAL_INTERIM
    val = load_processed(unpacked, synthetic_split_json, "val")
    with h5py.File(val_interim) as f, h5py.File(synthetic_interim_h5) as full_file:
        assert sorted(f["masks"]) == sorted(f["images"]) == sorted(val.ids) and "labels" not in f
        for image_id in val.ids:
            image, stand_in = full_file["images"][image_id][()], f["images"][image_id][()]
            assert stand_in.shape == (gpu_bundle.KIND_SIDE, gpu_bundle.KIND_SIDE, 3)
            assert image_kind(stand_in) == image_kind(image)
    # A prediction that is not the mask, so the native figures are not all 1: the same with either file.
    pred = tmp_path / "pred.h5"
    with h5py.File(pred, "w") as f:
        f["probabilities"] = np.roll(val.masks, 3, axis=2).astype(np.float16)
        f.create_dataset("ids", data=val.ids, dtype=h5py.string_dtype("utf-8"))
    full = evaluate(pred, unpacked, synthetic_split_json, synthetic_interim_h5, tmp_path / "full.json")
    cut = evaluate(pred, unpacked, synthetic_split_json, val_interim, tmp_path / "cut.json")
    assert full == cut and 0 < full["iou_native_per_image"] < 1
    assert any(key.startswith("n_images_") for key in cut)  # the image kinds, from the images it carries


def test_a_changed_file_is_refused_on_unpacking(tmp_path, synthetic_interim_h5, synthetic_processed_h5,
                                                 synthetic_split_json):
    processed = tmp_path / "processed"
    processed.mkdir()
    shutil.copyfile(synthetic_processed_h5, processed / "dsb2018_32.h5")
    shutil.copyfile(synthetic_split_json, processed / "split.json")
    gpu_bundle.pack(processed, [32], synthetic_interim_h5, tmp_path / "bundle", budget_mib=1.0)
    (tmp_path / "bundle" / "split.json").write_text("{}")
    with pytest.raises(SystemExit, match="split.json: sha256 differs"):
        gpu_bundle.unpack(tmp_path / "bundle", tmp_path / "data")
