"""benchmarks/publish_cpu_grid.sh: a finished variant of a grid clone, evaluated again, aggregated and compared."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np

from unetpp.data.processed import load_processed

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "publish_cpu_grid.sh"
ARCHS = ("unet", "nested_unet", "nested_unet_ds")
HISTORY = ("epoch", "train_loss", "train_iou", "val_loss", "val_iou_per_image", "val_iou_pooled",
           "val_iou_batch_pooled", "lr", "seconds")


def fake_clone(root: Path, interim: Path, processed: Path, split: Path, variants: dict[str, int]) -> Path:
    """A run clone as cpu_protocol.sh leaves it: params, data, and per (variant, arch) a model's records and
    predictions (the val masks shifted by a variant-dependent number of pixels, so that scores differ)."""
    clone = root / "unetpp"
    (clone / "data" / "processed").mkdir(parents=True)
    (clone / "data" / "interim").mkdir(parents=True)
    shutil.copyfile(interim, clone / "data" / "interim" / "stage1_train.h5")
    shutil.copyfile(processed, clone / "data" / "processed" / "dsb2018_32.h5")
    shutil.copyfile(split, clone / "data" / "processed" / "split.json")
    lines = ["data:", "  content_sha256: abc123", "variants:"]
    lines += [f"  {name}:\n    name: {name}\n    size: 32" for name in variants]
    (clone / "params.yaml").write_text("\n".join(lines) + "\n")
    val = load_processed(processed, split, "val")
    for variant, shift in variants.items():
        for k, arch in enumerate(ARCHS):
            model = clone / "models" / variant / arch / "seed0"
            model.mkdir(parents=True)
            with open(model / "history.csv", "w", newline="") as fh:
                writer = csv.writer(fh)
                writer.writerow(HISTORY)
                writer.writerows([[e, 0.5, 0.6, 0.5, 0.6, 0.6, 0.6, 3e-4, 1.0] for e in (1, 2)])
            (model / "train.json").write_text(json.dumps({
                "arch": arch, "seed": 0, "selection_metric": "batch_pooled", "best_epoch": 2, "best_val_iou": 0.6,
                "epochs_run": 2, "wall_seconds": 60.0, "parameters": 1000 + k}))
            run = clone / "results" / variant / "runs" / arch / "seed0"
            run.mkdir(parents=True)
            with h5py.File(run / "predictions.h5", "w") as f:
                f["probabilities"] = np.roll(val.masks, shift + k, axis=2).astype(np.float16)
                f.create_dataset("ids", data=val.ids, dtype=h5py.string_dtype("utf-8"))
            (run / "samples.png").write_bytes(b"png")
    return root


def publish(run_root: Path, dest: Path, *variants: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "UNETPP": str(Path(sys.executable).parent / "unetpp"), "OMP_NUM_THREADS": "1"}
    return subprocess.run(["bash", str(SCRIPT), str(run_root), str(dest), *variants], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def test_publishes_scores_with_kinds_aggregates_and_both_tables(tmp_path, synthetic_interim_h5,
                                                                 synthetic_processed_h5, synthetic_split_json):
    root = fake_clone(tmp_path / "runs", synthetic_interim_h5, synthetic_processed_h5, synthetic_split_json,
                      {"reference": 0, "augment": 1})
    dest = tmp_path / "published"
    # RUN_ROOT relative to where it is called from (the script itself works from the checkout's root)
    proc = publish(Path("runs"), dest, "reference", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert not (dest / "results" / "variant_vs_reference.md").exists()  # nothing to compare yet
    proc = publish(root, dest, "augment")
    assert proc.returncode == 0, proc.stderr
    for variant in ("reference", "augment"):
        for arch in ARCHS:
            assert (dest / "models" / variant / arch / "seed0" / "train.json").is_file()
            assert (dest / "results" / variant / "runs" / arch / "seed0" / "samples.png").is_file()
            assert not (dest / "results" / variant / "runs" / arch / "seed0" / "predictions.h5").exists()
            metrics = json.loads((dest / "results" / variant / "runs" / arch / "seed0" / "metrics.json").read_text())
            assert metrics["n_images"] == 3 and "n_images_colour" in metrics and metrics["size"] == 32
        summary = json.loads((dest / "results" / "variants" / variant / "metrics.json").read_text())
        assert set(ARCHS) <= set(summary)
    table = (dest / "results" / "variants.md").read_text()
    assert "| reference | 32 | U-Net |" in table and "| augment | 32 | U-Net |" in table and "by image kind" in table
    pairs = (dest / "results" / "variant_vs_reference.md").read_text()
    assert "| augment | U-Net | all | 3 |" in pairs and "| reference |" not in pairs


def test_an_unfinished_variant_is_refused_by_name(tmp_path, synthetic_interim_h5, synthetic_processed_h5,
                                                  synthetic_split_json):
    root = fake_clone(tmp_path / "runs", synthetic_interim_h5, synthetic_processed_h5, synthetic_split_json,
                      {"reference": 0})
    (root / "unetpp" / "results" / "reference" / "runs" / "nested_unet" / "seed0" / "predictions.h5").unlink()
    proc = publish(root, tmp_path / "published", "reference")
    assert proc.returncode == 1
    assert "reference/runs/nested_unet/seed0/predictions.h5 does not exist: reference/nested_unet is not finished" \
        in proc.stderr
    assert not (tmp_path / "published" / "results").exists()


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_nothing_is_written_unless_every_named_variant_is_finished(tmp_path, synthetic_interim_h5,
                                                                   synthetic_processed_h5, synthetic_split_json):
    """The check covers every variant (and history.csv) before the first one is copied."""
    root = fake_clone(tmp_path / "runs", synthetic_interim_h5, synthetic_processed_h5, synthetic_split_json,
                      {"reference": 0, "augment": 1})
    (root / "unetpp" / "models" / "augment" / "unet" / "seed0" / "history.csv").unlink()
    proc = publish(root, tmp_path / "published", "reference", "augment")
    assert proc.returncode == 1
    assert "models/augment/unet/seed0/history.csv does not exist: augment/unet is not finished" in proc.stderr
    assert not (tmp_path / "published").exists()
    proc = publish(root, tmp_path / "published", "size384")
    assert proc.returncode == 1
    assert "params.yaml declares no variant size384 (it has reference, augment)" in proc.stderr


def test_a_failure_part_way_leaves_the_published_folder_as_it_was(tmp_path, synthetic_interim_h5,
                                                                  synthetic_processed_h5, synthetic_split_json):
    root = fake_clone(tmp_path / "runs", synthetic_interim_h5, synthetic_processed_h5, synthetic_split_json,
                      {"reference": 0, "augment": 1})
    dest = tmp_path / "published"
    assert publish(root, dest, "reference").returncode == 0
    before = snapshot(dest)
    # the reference trained again (a new train.json), and augment's last prediction cannot be read
    retrained = root / "unetpp" / "models" / "reference" / "unet" / "seed0" / "train.json"
    retrained.write_text(json.dumps({**json.loads(retrained.read_text()), "wall_seconds": 99.0}))
    (root / "unetpp" / "results" / "augment" / "runs" / "nested_unet_ds" / "seed0" / "predictions.h5").write_bytes(
        b"not hdf5")
    proc = publish(root, dest, "reference", "augment")
    assert proc.returncode != 0
    assert "predictions.h5" in proc.stderr
    assert snapshot(dest) == before  # neither the new reference files nor half of augment
    assert not list(dest.glob(".publish.*"))  # the staging folder is gone
