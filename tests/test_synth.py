"""unetpp synth: Kaggle layout, RGBA images, binary non-overlapping masks, determinism."""

from __future__ import annotations

import io
import re
import zipfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from unetpp.cli import main
from unetpp.data.synth import make_image, parse_size, synthesize
from unetpp.errors import UnetppError

from conftest import SYNTH_N, SYNTH_SIZES

HEX64 = re.compile(r"^[0-9a-f]{64}$")


def zip_entries(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def dir_entries(path: Path) -> dict[str, bytes]:
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_zip_has_the_kaggle_layout(synthetic_raw_zip):
    entries = zip_entries(synthetic_raw_zip)
    images: dict[str, list[str]] = defaultdict(list)
    masks: dict[str, list[str]] = defaultdict(list)
    for name in entries:
        sample_id, kind, filename = name.split("/")
        assert HEX64.match(sample_id) and kind in ("images", "masks") and filename.endswith(".png")
        (images if kind == "images" else masks)[sample_id].append(filename)
    assert len(images) == SYNTH_N and set(masks) == set(images)
    shapes, grey, colour = set(), 0, 0
    for sample_id, files in images.items():
        assert files == [f"{sample_id}.png"]
        image = Image.open(io.BytesIO(entries[f"{sample_id}/images/{sample_id}.png"]))
        assert image.mode == "RGBA"
        pixels = np.asarray(image)
        assert (pixels[..., 3] == 255).all()
        shapes.add(pixels.shape[:2])
        is_grey = (pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 1] == pixels[..., 2]).all()
        grey, colour = grey + is_grey, colour + (not is_grey)
        union = np.zeros(pixels.shape[:2], dtype=int)
        assert len(masks[sample_id]) >= 1
        for filename in masks[sample_id]:
            mask_image = Image.open(io.BytesIO(entries[f"{sample_id}/masks/{filename}"]))
            assert mask_image.mode == "L" and HEX64.match(filename[:-4])
            mask = np.asarray(mask_image)
            assert mask.shape == pixels.shape[:2]
            assert set(np.unique(mask)) == {0, 255}
            union += mask > 0
        assert union.max() == 1, "masks overlap"
    assert shapes == set(SYNTH_SIZES)  # mixed sizes, all of the requested ones
    assert grey > 0 and colour > 0  # fluorescent and histology kinds


def test_nuclei_are_brighter_or_darker_than_background():
    fluorescent, histology = make_image(3, 0), make_image(3, 1)
    for item, sign in ((fluorescent, 1), (histology, -1)):
        grey = item.rgba[..., :3].mean(axis=2)
        inside = np.zeros(grey.shape, dtype=bool)
        for mask in item.masks.values():
            inside |= mask > 0
        assert sign * (grey[inside].mean() - grey[~inside].mean()) > 50, item.kind


def test_elongated_kind_is_elongated():
    item = make_image(0, 2)
    assert item.kind == "elongated"
    ratios = []
    for mask in item.masks.values():
        rows, cols = np.nonzero(mask)
        eig = np.linalg.eigvalsh(np.cov(np.stack([rows, cols]).astype(float)))
        ratios.append(np.sqrt(eig[1] / eig[0]))
    assert min(ratios) > 1.5


def test_same_seed_same_bytes_and_zip_equals_folder(tmp_path, synthetic_raw_zip, synthetic_raw_dir):
    again = tmp_path / "again.zip"
    synthesize(SYNTH_N, again, seed=7, sizes=SYNTH_SIZES)
    assert again.read_bytes() == synthetic_raw_zip.read_bytes()
    assert dir_entries(synthetic_raw_dir) == zip_entries(synthetic_raw_zip)
    other = tmp_path / "other.zip"
    synthesize(SYNTH_N, other, seed=8, sizes=SYNTH_SIZES)
    assert set(zip_entries(other)).isdisjoint(zip_entries(synthetic_raw_zip))


def test_image_does_not_depend_on_dataset_size():
    assert make_image(5, 3).id == make_image(5, 3).id
    np.testing.assert_array_equal(make_image(5, 3).rgba, make_image(5, 3).rgba)


def test_zip_entries_are_sorted_stored_and_fixed_time(synthetic_raw_zip):
    with zipfile.ZipFile(synthetic_raw_zip) as archive:
        infos = archive.infolist()
    names = [info.filename for info in infos]
    assert names == sorted(names)
    assert {info.compress_type for info in infos} == {zipfile.ZIP_STORED}
    assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}


def test_parse_size():
    assert parse_size("40x48") == (40, 48)
    assert parse_size("64") == (64, 64)
    for bad in ("8x64", "axb", "1x2x3", ""):
        with pytest.raises(UnetppError, match="HxW"):
            parse_size(bad)


def test_cli_writes_folder_and_refuses_bad_options(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["synth", "--n", "2", "--size", "32x32", "--out", str(tmp_path / "demo")])
    assert result.exit_code == 0, result.output
    assert len([p for p in (tmp_path / "demo").iterdir()]) == 2
    result = runner.invoke(main, ["synth", "--n", "0", "--out", str(tmp_path / "none.zip")])
    assert result.exit_code == 2 and "Invalid value for '--n'" in result.output and "x>=1" in result.output
    result = runner.invoke(main, ["synth", "--n", "2", "--size", "12x12", "--out", str(tmp_path / "small.zip")])
    assert result.exit_code == 1 and "'12x12' is invalid" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]
    help_text = runner.invoke(main, ["synth", "--help"]).output
    for option in ("--n", "--out", "--seed", "--size"):
        assert option in help_text
