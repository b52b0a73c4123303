"""unetpp ingest: zip and folder agree, pixel conversions, and every bad input is refused cleanly."""

from __future__ import annotations

import io
import os
import re
import struct
import time
import zipfile
import zlib
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from unetpp.cli import main
from unetpp.data.ingest import ingest
from unetpp.data.parallel import ordered_map
from unetpp.data.synth import make_image
from unetpp.errors import UnetppError

from conftest import SYNTH_N


def png(array: np.ndarray, mode: str | None = None) -> bytes:
    buffer = io.BytesIO()
    (
        Image.fromarray(array, mode=mode).save(buffer, format="PNG")
        if mode
        else Image.fromarray(array).save(buffer, format="PNG")
    )
    return buffer.getvalue()


def small_dataset(n: int = 2) -> dict[str, bytes]:
    """n synthetic 32x32 samples as Kaggle-layout entries."""
    entries = {}
    for index in range(n):
        item = make_image(11, index, sizes=((32, 32),))
        entries[f"{item.id}/images/{item.id}.png"] = png(item.rgba)
        for mask_id, mask in item.masks.items():
            entries[f"{item.id}/masks/{mask_id}.png"] = png(mask)
    return entries


def write_zip(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


def write_dir(path: Path, entries: dict[str, bytes]) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for name, data in entries.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_bytes(data)
    return path


def read_h5(path: Path) -> dict[str, object]:
    with h5py.File(path, "r") as h5:
        ids = [str(i) for i in h5["ids"].asstr()[()]]
        return {
            "ids": ids,
            "attrs": {k: h5.attrs[k] for k in ("n_images", "n_nuclei")},
            **{f"{group}/{i}": h5[group][i][()] for group in ("images", "masks", "labels") for i in ids},
        }


def assert_same(a: dict[str, object], b: dict[str, object]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], np.ndarray):
            assert a[key].dtype == b[key].dtype, key
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        else:
            assert a[key] == b[key], key


def first(entries: dict[str, bytes], kind: str) -> str:
    return next(name for name in entries if f"/{kind}/" in name)


# ---------------------------------------------------------------- good input


def test_zip_folder_and_wrapped_forms_give_identical_arrays(
    tmp_path, synthetic_raw_zip, synthetic_raw_dir, synthetic_interim_h5
):
    from_zip = read_h5(synthetic_interim_h5)
    ingest(synthetic_raw_dir, tmp_path / "dir.h5", workers=1, progress=False)
    assert_same(from_zip, read_h5(tmp_path / "dir.h5"))
    with zipfile.ZipFile(synthetic_raw_zip) as archive:
        entries = {f"stage1_train/{name}": archive.read(name) for name in archive.namelist()}
    wrapped_zip = write_zip(tmp_path / "wrapped.zip", entries)
    wrapped_dir = write_dir(tmp_path / "wrapped", entries)
    # the pool path (2 workers) must give the same file as the inline path
    ingest(wrapped_zip, tmp_path / "wzip.h5", workers=2, progress=False)
    ingest(wrapped_dir, tmp_path / "wdir.h5", workers=1, progress=False)
    assert_same(from_zip, read_h5(tmp_path / "wzip.h5"))
    assert_same(from_zip, read_h5(tmp_path / "wdir.h5"))


def test_contents_match_the_pngs(synthetic_raw_zip, synthetic_interim_h5):
    data = read_h5(synthetic_interim_h5)
    with zipfile.ZipFile(synthetic_raw_zip) as archive:
        names = archive.namelist()
        ids = sorted({name.split("/")[0] for name in names})
        assert data["ids"] == ids and data["attrs"]["n_images"] == SYNTH_N
        total = 0
        for sample_id in ids:
            rgba = np.asarray(Image.open(io.BytesIO(archive.read(f"{sample_id}/images/{sample_id}.png"))))
            image, mask, labels = (data[f"{g}/{sample_id}"] for g in ("images", "masks", "labels"))
            assert image.dtype == np.uint8 and image.shape == rgba.shape[:2] + (3,)
            np.testing.assert_array_equal(image, rgba[..., :3])
            assert labels.dtype == np.uint16 and mask.dtype == np.uint8
            np.testing.assert_array_equal(mask, (labels > 0).astype(np.uint8))
            mask_names = sorted(n for n in names if n.startswith(f"{sample_id}/masks/"))
            for label, name in enumerate(mask_names, start=1):
                nucleus = np.asarray(Image.open(io.BytesIO(archive.read(name)))) > 0
                np.testing.assert_array_equal(labels == label, nucleus, err_msg=name)
            assert labels.max() == len(mask_names)
            total += len(mask_names)
    assert data["attrs"]["n_nuclei"] == total


def test_pixel_formats_are_converted(tmp_path):
    """Grey, grey+alpha, 16-bit grey, palette and RGB images all become RGB uint8; 0/1 and 16-bit masks work."""
    ramp16 = (np.arange(32 * 32, dtype=np.uint16).reshape(32, 32) * 64).astype(np.uint16)  # up to 65472
    grey = np.tile(np.arange(32, dtype=np.uint8) * 8, (32, 1))
    mask = np.zeros((32, 32), dtype=np.uint8)
    mask[4:10, 5:12] = 1
    palette = Image.fromarray(np.stack([grey, grey[::-1], np.full_like(grey, 7)], axis=2)).convert("P")
    buffer = io.BytesIO()
    palette.save(buffer, format="PNG")
    cases = {
        "a_grey": (png(grey), np.repeat(grey[:, :, None], 3, axis=2)),
        "b_grey16": (png(ramp16), np.repeat((ramp16 >> 8).astype(np.uint8)[:, :, None], 3, axis=2)),
        "c_greyalpha": (
            png(np.stack([grey, np.full_like(grey, 9)], axis=2), "LA"),
            np.repeat(grey[:, :, None], 3, axis=2),
        ),
        "d_palette": (buffer.getvalue(), np.asarray(palette.convert("RGB"))),
    }
    entries = {}
    for sample_id, (data, _) in cases.items():
        entries[f"{sample_id}/images/{sample_id}.png"] = data
        entries[f"{sample_id}/masks/m01.png"] = png(mask)  # 0/1 mask
        entries[f"{sample_id}/masks/m02.png"] = png(np.where(np.eye(32, dtype=bool), 65535, 0).astype(np.uint16))
    ingest(write_dir(tmp_path / "raw", entries), tmp_path / "out.h5", workers=1, progress=False)
    data = read_h5(tmp_path / "out.h5")
    for sample_id, (_, expected) in cases.items():
        np.testing.assert_array_equal(data[f"images/{sample_id}"], expected, err_msg=sample_id)
        labels = data[f"labels/{sample_id}"]
        assert (labels[4:10, 5:12][~np.eye(32, dtype=bool)[4:10, 5:12]] == 1).all()
        assert (labels[np.eye(32, dtype=bool)] == 2).all()  # the later mask wins where two overlap
    assert data["attrs"]["n_nuclei"] == 8


def test_macos_litter_is_ignored(tmp_path):
    entries = small_dataset(1)
    entries["__MACOSX/._junk"] = b"junk"
    entries[".DS_Store"] = b"junk"
    summary = ingest(write_zip(tmp_path / "raw.zip", entries), tmp_path / "out.h5", workers=1, progress=False)
    assert summary.n_images == 1


# ---------------------------------------------------------------- bad input


def corrupt(entries: dict[str, bytes], name: str, data: bytes) -> dict[str, bytes]:
    return {**entries, name: data}


def bad_inputs() -> list[tuple[str, str, object]]:
    """(case id, form, how to build the entries / special marker)."""
    return [
        ("truncated_image", "zip", lambda e: corrupt(e, first(e, "images"), e[first(e, "images")][:60])),
        ("truncated_image", "dir", lambda e: corrupt(e, first(e, "images"), e[first(e, "images")][:60])),
        ("corrupt_mask", "zip", lambda e: corrupt(e, first(e, "masks"), b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)),
        (
            "two_images",
            "zip",
            lambda e: corrupt(e, first(e, "images").replace(".png", "_b.png"), e[first(e, "images")]),
        ),
        ("no_image", "dir", lambda e: {k: v for k, v in e.items() if "/images/" not in k or k != first(e, "images")}),
        ("mask_size", "zip", lambda e: corrupt(e, first(e, "masks"), png(np.full((16, 32), 255, np.uint8)))),
        (
            "non_binary",
            "zip",
            lambda e: corrupt(
                e, first(e, "masks"), png(np.arange(1024, dtype=np.uint16).reshape(32, 32).astype(np.uint8))
            ),
        ),
        (
            "non_binary",
            "dir",
            lambda e: corrupt(
                e, first(e, "masks"), png(np.tile([0, 128, 255], 342)[:1024].reshape(32, 32).astype(np.uint8))
            ),
        ),
        (
            "no_masks",
            "zip",
            lambda e: {k: v for k, v in e.items() if not k.startswith(first(e, "masks").split("/")[0] + "/masks/")},
        ),
        ("empty", "zip", lambda e: {}),
        ("empty", "dir", lambda e: {}),
        ("zip_slip", "zip", lambda e: corrupt(e, "../evil/images/evil.png", e[first(e, "images")])),
        ("absolute", "zip", lambda e: corrupt(e, "/tmp/evil/images/evil.png", e[first(e, "images")])),
        ("stray_file", "dir", lambda e: corrupt(e, "README.txt", b"hello")),
    ]


EXPECTED = {
    "truncated_image": r"images/.*\.png cannot be decoded as an image .*truncated or corrupt",
    "corrupt_mask": r"masks/.*\.png cannot be decoded as an image",
    "two_images": r"image folder .*/images/ has 2 files .*expected exactly one image",
    "no_image": r"image folder .*/images/ has no image, expected exactly one image",
    "mask_size": r"masks/.*\.png is 16x32 \(HxW\) but its image is 32x32; a mask must have the same size",
    "non_binary": r"masks/.*\.png is not a binary mask \(values 0, .*re-export it as a binary PNG",
    "no_masks": r"/ has no masks/ folder or it is empty; every training image needs at least one mask PNG",
    "empty": r"is empty \(no image files\)",
    "zip_slip": r"entry '\.\./evil/images/evil\.png' has an absolute or '\.\.' path \(zip-slip\); refusing",
    "absolute": r"entry '/tmp/evil/images/evil\.png' has an absolute or '\.\.' path",
    "stray_file": r"unexpected entry 'README\.txt'; expected <id>/images/<id>\.png",
}


def run_ingest(tmp_path: Path, raw: Path, *extra: str):
    out_dir = tmp_path / "out"
    out_dir.mkdir(exist_ok=True)
    result = CliRunner().invoke(main, ["ingest", "--raw", str(raw), "--out", str(out_dir / "x.h5"), *extra])
    return result, out_dir


@pytest.mark.parametrize("case, form, build", bad_inputs(), ids=[f"{c}-{f}" for c, f, _ in bad_inputs()])
def test_bad_input_is_refused_and_leaves_nothing(tmp_path, case, form, build):
    entries = build(small_dataset(2))
    raw = write_zip(tmp_path / "raw.zip", entries) if form == "zip" else write_dir(tmp_path / "raw", entries)
    result, out_dir = run_ingest(tmp_path, raw, "--workers", "1")
    assert result.exit_code == 1, result.output
    message = result.output.strip().splitlines()[-1]  # earlier lines may be the progress bar
    assert message.startswith("Error: ") and "Traceback" not in result.output
    assert re.search(EXPECTED[case], message), message
    assert str(raw) in message  # names the offending dataset (and the member where there is one)
    assert list(out_dir.iterdir()) == []  # neither the target nor a temporary file


def test_error_from_a_worker_process_is_the_same_clean_error(tmp_path):
    entries = small_dataset(3)
    name = sorted(n for n in entries if "/masks/" in n)[-1]  # in the last image, decoded by a worker
    entries[name] = entries[name][:50]
    result, out_dir = run_ingest(tmp_path, write_zip(tmp_path / "raw.zip", entries), "--workers", "2")
    assert result.exit_code == 1 and f"{name} cannot be decoded" in result.output
    assert list(out_dir.iterdir()) == []


def test_zip_bomb_cap(tmp_path):
    entries = small_dataset(1)
    big = zipfile.ZipFile(tmp_path / "bomb.zip", "w", compression=zipfile.ZIP_DEFLATED)
    with big:
        for name, data in entries.items():
            big.writestr(name, data)
        big.writestr(f"{next(iter(entries)).split('/')[0]}/masks/huge.png", b"\0" * (3 * 1024 * 1024))
    assert (tmp_path / "bomb.zip").stat().st_size < 100_000
    result, out_dir = run_ingest(tmp_path, tmp_path / "bomb.zip", "--max-unpacked-mb", "2")
    assert result.exit_code == 1
    assert "declares 3 MB of uncompressed data, above the cap of 2 MB (possible zip bomb)" in result.output
    assert "--max-unpacked-mb" in result.output and list(out_dir.iterdir()) == []


def test_missing_path_and_not_a_zip(tmp_path):
    result, out_dir = run_ingest(tmp_path, tmp_path / "nowhere.zip")
    assert result.exit_code == 1 and f"{tmp_path / 'nowhere.zip'} does not exist" in result.output
    (tmp_path / "fake.zip").write_bytes(b"not a zip at all" * 10)
    result, out_dir = run_ingest(tmp_path, tmp_path / "fake.zip")
    assert result.exit_code == 1 and "fake.zip is not a readable zip archive" in result.output
    assert list(out_dir.iterdir()) == []


def test_failed_run_keeps_an_existing_output(tmp_path, synthetic_raw_zip):
    out = tmp_path / "out" / "x.h5"
    ingest(synthetic_raw_zip, out, workers=1, progress=False)
    before = out.read_bytes()
    result, _ = run_ingest(tmp_path, tmp_path / "nowhere")
    assert result.exit_code == 1 and out.read_bytes() == before


def test_help_explains_every_option():
    text = CliRunner().invoke(main, ["ingest", "--help"]).output
    for option in ("--raw", "--out", "--max-unpacked-mb", "--workers", "--max-pixels", "--progress / --no-progress"):
        assert option in text
    assert "zip-bomb" in text and "stage1_train" in text and re.search(r"pixel-\s*bomb\s+guard", text)


def test_empty_image_folder_and_zip_folder_entries(tmp_path):
    entries = small_dataset(2)
    image = first(entries, "images")
    raw = write_dir(tmp_path / "raw", {k: v for k, v in entries.items() if k != image})
    (raw / image).parent.mkdir(parents=True, exist_ok=True)  # images/ is there, but empty
    result, out_dir = run_ingest(tmp_path, raw)
    assert result.exit_code == 1 and f"{image.split('/')[0]}/images/ has no image" in result.output
    assert list(out_dir.iterdir()) == []
    # a zip made by a zip tool has folder entries; they are fine
    with zipfile.ZipFile(tmp_path / "tool.zip", "w") as archive:
        archive.mkdir("stage1_train")
        for sample_id in sorted({name.split("/")[0] for name in entries}):
            archive.mkdir(f"stage1_train/{sample_id}")
            archive.mkdir(f"stage1_train/{sample_id}/images")
            archive.mkdir(f"stage1_train/{sample_id}/masks")
        for name, data in entries.items():
            archive.writestr(f"stage1_train/{name}", data)
    assert ingest(tmp_path / "tool.zip", tmp_path / "tool.h5", workers=1, progress=False).n_images == 2
    empty = tmp_path / "only_folders"
    (empty / "a" / "images").mkdir(parents=True)
    result, _ = run_ingest(tmp_path, empty)
    assert result.exit_code == 1 and "the folder is empty (no image files)" in result.output


def _double_or_die(x: int) -> int:
    if x == 5:
        os._exit(9)  # a worker killed (e.g. by the OOM killer)
    time.sleep(0.01 * (x % 3))  # finish out of order
    return 2 * x


def test_ordered_map_keeps_order_and_reports_a_dead_worker():
    assert list(ordered_map(_double_or_die, range(5), workers=2, ahead=1)) == [0, 2, 4, 6, 8]
    assert list(ordered_map(_double_or_die, range(5), workers=1)) == [0, 2, 4, 6, 8]
    with pytest.raises(UnetppError, match="a worker process died unexpectedly.*--workers 1"):
        list(ordered_map(_double_or_die, range(8), workers=2))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width x height 8-bit grey, with a tiny IDAT: decoding it would fail as truncated.

    So a refusal that names the pixel cap proves the header was checked before any decoding.
    """

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.mark.parametrize("kind, side", [("images", 13000), ("masks", 20000)])
def test_pixel_bomb_is_refused_from_its_header(tmp_path, kind, side):
    entries = small_dataset(1)
    name = first(entries, kind)
    entries[name] = png_header_only(side, side)
    raw = write_zip(tmp_path / "bomb.zip", entries)
    assert raw.stat().st_size < 10_000
    result, out_dir = run_ingest(tmp_path, raw, "--workers", "1")
    message = result.output.strip().splitlines()[-1]
    assert result.exit_code == 1, result.output
    assert message == (
        f"Error: {raw}: {name} declares {side}x{side} (HxW) = {side * side:,} pixels, above the cap of 64,000,000 "
        "(a possible decompression bomb); nothing was decoded. Remove the file, or raise --max-pixels if the "
        "image is genuine."
    )
    assert list(out_dir.iterdir()) == []


def test_max_pixels_option_sets_the_cap(tmp_path):
    raw = write_zip(tmp_path / "raw.zip", small_dataset(1))  # 32x32 = 1,024 pixels per image and mask
    result, out_dir = run_ingest(tmp_path, raw, "--workers", "1", "--max-pixels", "1023")
    assert result.exit_code == 1 and "declares 32x32 (HxW) = 1,024 pixels, above the cap of 1,023" in result.output
    result, out_dir = run_ingest(tmp_path, raw, "--workers", "1", "--max-pixels", "1024")
    assert result.exit_code == 0, result.output
    stored = read_h5(out_dir / "x.h5")
    assert stored["attrs"]["n_images"] == 1 and stored[f"images/{stored['ids'][0]}"].shape == (32, 32, 3)


def test_an_undecodable_member_is_named_not_its_buffer(tmp_path):
    entries = small_dataset(1)
    name = first(entries, "masks")
    entries[name] = b"this is not an image at all"
    raw = write_zip(tmp_path / "raw.zip", entries)
    result, _ = run_ingest(tmp_path, raw, "--workers", "1")
    message = result.output.strip().splitlines()[-1]
    assert result.exit_code == 1 and "BytesIO" not in message and " at 0x" not in message
    assert f"{raw}: {name} cannot be decoded as an image (UnidentifiedImageError: cannot identify image file " \
        f"{raw}: {name});" in message


def test_progress_bar_only_when_asked_or_on_a_terminal(tmp_path):
    raw = write_zip(tmp_path / "raw.zip", small_dataset(1))
    quiet, out_dir = run_ingest(tmp_path, raw, "--workers", "1")  # CliRunner's stderr is not a terminal
    assert quiet.exit_code == 0 and "\r" not in quiet.output and "ingest:" not in quiet.output
    shown, _ = run_ingest(tmp_path, raw, "--workers", "1", "--progress")
    assert shown.exit_code == 0 and "ingest: 100%" in shown.output


def test_a_rerun_sweeps_the_temp_a_killed_run_left(tmp_path):
    raw = write_zip(tmp_path / "raw.zip", small_dataset(1))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / ".x.h5.tmp-dead1234.h5").write_bytes(b"half an HDF5 file")
    (out_dir / ".other.h5.tmp-keep.h5").write_bytes(b"another output's temp")
    result, _ = run_ingest(tmp_path, raw, "--workers", "1")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out_dir.iterdir()) == [".other.h5.tmp-keep.h5", "x.h5"]


def test_the_cli_default_pixel_cap_is_the_decoders():
    from unetpp.commands.options import DEFAULT_MAX_PIXELS as CLI_DEFAULT
    from unetpp.data.pngdecode import DEFAULT_MAX_PIXELS

    assert CLI_DEFAULT == DEFAULT_MAX_PIXELS == 64_000_000
