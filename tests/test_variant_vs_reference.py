"""benchmarks/variant_vs_reference.py: each variant minus the reference, paired by image, overall and per kind."""

from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "variant_vs_reference.py"
spec = importlib.util.spec_from_file_location("variant_vs_reference", SCRIPT)
script = importlib.util.module_from_spec(spec)
spec.loader.exec_module(script)

KINDS = ["fluorescence"] * 6 + ["colour"] * 3 + ["brightfield"]


def write_runs(results: Path, variant: str, ious: dict[str, list[float]]) -> None:
    for arch, values in ious.items():
        folder = results / variant / "runs" / arch / "seed0"
        folder.mkdir(parents=True)
        with open(folder / "per_image.csv", "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["id", "iou", "native_iou", "image_kind"])
            for k, (value, kind) in enumerate(zip(values, KINDS, strict=True)):
                writer.writerow([f"img{9 - k}", 0.5, value, kind])  # ids not in sorted order


def test_differences_per_arch_and_kind(tmp_path, monkeypatch, capsys):
    reference = {arch: list(np.linspace(0.6, 0.9, 10)) for arch in ("unet", "nested_unet", "nested_unet_ds")}
    variant = {arch: [v + (0.05 if kind == "colour" else 0.0) for v, kind in zip(values, KINDS)]
               for arch, values in reference.items()}
    write_runs(tmp_path, "reference", reference)
    write_runs(tmp_path, "augment", variant)
    out = tmp_path / "table.md"
    monkeypatch.setattr(sys, "argv", ["x", "--results", str(tmp_path), "--variant", "augment", "--out", str(out)])
    script.main()
    text = out.read_text()
    assert text == capsys.readouterr().out
    # All ten images: 3 of 10 gain 0.05; colour alone: every one gains 0.05, so the interval is the point.
    assert "| augment | U-Net | all | 10 | +0.0150 | [" in text
    assert "| augment | UNet++ | colour | 3 | +0.0500 | [+0.0500, +0.0500] |" in text
    assert "| augment | U-Net | fluorescence | 6 | +0.0000 | [+0.0000, +0.0000] |" in text
    assert "| augment | UNet++ (deep supervision) | brightfield | 1 | +0.0000 | n/a (one image) |" in text


@pytest.mark.parametrize(
    ("content", "message"),
    [
        # evaluated before image kinds (or without --interim): no native score, no kind
        ("id,iou\nimg0,0.5\n", "lacks the column.s. native_iou, image_kind"),
        # a blank native score (a half-written evaluation) is named with its image
        ("id,native_iou,image_kind\nimg0,0.5,colour\nimg1,,fluorescence\n", "non-numeric native_iou for image img1"),
        # a blank or unknown kind would drop the image from every per-kind row
        ("id,native_iou,image_kind\nimg0,0.5,colour\nimg1,0.5,\n", "holds image kind.s. '', not one of"),
    ],
)
def test_an_unusable_run_is_named(tmp_path, content, message):
    path = tmp_path / "reference" / "runs" / "unet" / "seed0" / "per_image.csv"
    path.parent.mkdir(parents=True)
    path.write_text(content)
    with pytest.raises(SystemExit, match=message):
        script.read_native(path)


def test_missing_run_and_kinds_that_disagree_are_named(tmp_path):
    """A run not published says so; two runs whose images got different kinds were scored by different code."""
    write_runs(tmp_path, "reference", {"unet": [0.5] * 10})
    with pytest.raises(SystemExit, match="augment/runs/unet/seed0/per_image.csv does not exist: that run is not "):
        script.compare(tmp_path, "augment", "reference", "unet", 0)
    write_runs(tmp_path, "augment", {"unet": [0.6] * 10})
    path = tmp_path / "augment" / "runs" / "unet" / "seed0" / "per_image.csv"
    path.write_text(path.read_text().replace(",colour", ",fluorescence", 1))
    with pytest.raises(SystemExit, match=r"give 1 image\(s\) different kinds \(e.g. img3\)"):
        script.compare(tmp_path, "augment", "reference", "unet", 0)


def test_runs_of_different_images_are_named(tmp_path):
    write_runs(tmp_path, "reference", {"unet": [0.5] * 10})
    write_runs(tmp_path, "augment", {"unet": [0.6] * 10})
    path = tmp_path / "augment" / "runs" / "unet" / "seed0" / "per_image.csv"
    path.write_text(path.read_text().replace("img0,", "img10,"))
    with pytest.raises(SystemExit, match=r"do not score the same images \(1 id\(s\) only in the first, e.g. img0"):
        script.compare(tmp_path, "augment", "reference", "unet", 0)
