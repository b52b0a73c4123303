"""`unetpp predict-images`: masks of the input's size for any image layout."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from helpers_inference import disc_image, write_model
from unetpp.cli import main
from unetpp.inference.predict_images import pad_to_multiple, run_predict_images


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "model.pt"
    write_model(path, "unet", seed=3)
    return path


def rgb(height: int, width: int, seed: int = 0) -> np.ndarray:
    return disc_image(height, width, seed)


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def read_mask(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        assert img.mode == "L"
        return np.asarray(img)


def test_odd_size_and_every_layout(model_path, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    base = rgb(37, 51)
    grey = base[..., 0]
    Image.fromarray(base).save(src / "rgb.png")
    Image.fromarray(np.dstack([base, np.full((37, 51), 255, np.uint8)])).save(src / "rgba.png")
    Image.fromarray(grey).save(src / "grey.png")
    Image.fromarray(np.dstack([grey, np.full((37, 51), 200, np.uint8)]), mode="LA").save(src / "grey_alpha.png")
    Image.fromarray(grey.astype(np.uint16) * 256 + 77).save(src / "grey16.png")  # 16-bit, high byte = grey
    Image.fromarray(grey.astype(np.uint16) * 256).save(src / "grey16t.tif")
    Image.fromarray(base).save(src / "photo.jpg", quality=95)
    (src / "notes.txt").write_text("not an image, ignored when reading a folder")

    out = tmp_path / "masks"
    res = cli(
        "predict-images",
        src,
        "--model",
        model_path,
        "--out",
        out,
        "--size",
        "32",
        "--device",
        "cpu",
        "--precision",
        "fp32",
    )
    assert res.exit_code == 0, res.output
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "grey16_mask.png",
        "grey16t_mask.png",
        "grey_alpha_mask.png",
        "grey_mask.png",
        "photo_mask.png",
        "rgb_mask.png",
        "rgba_mask.png",
    ]
    masks = {p.name: read_mask(p) for p in out.iterdir()}
    for name, mask in masks.items():
        assert mask.shape == (37, 51) and mask.dtype == np.uint8, name
        assert set(np.unique(mask)) == {0, 255}, name  # binary and not blank, so the comparisons below mean something
    # Alpha is dropped and 16-bit keeps its high byte, so these inputs reach the network identically.
    np.testing.assert_array_equal(masks["rgba_mask.png"], masks["rgb_mask.png"])
    np.testing.assert_array_equal(masks["grey_alpha_mask.png"], masks["grey_mask.png"])
    np.testing.assert_array_equal(masks["grey16_mask.png"], masks["grey_mask.png"])
    np.testing.assert_array_equal(masks["grey16t_mask.png"], masks["grey_mask.png"])


def test_tif_and_the_same_stem_clash(model_path, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    grey = rgb(40, 24)[..., 0]
    Image.fromarray(grey.astype(np.uint16) * 256).save(src / "a.tif")
    Image.fromarray(grey).save(src / "b.png")
    out = tmp_path / "out"
    run_predict_images(
        model_path, [src / "a.tif", src / "b.png"], out, size=32, device="cpu", precision="fp32", progress=False
    )
    np.testing.assert_array_equal(read_mask(out / "a_mask.png"), read_mask(out / "b_mask.png"))
    Image.fromarray(grey).save(src / "a.png")
    res = cli(
        "predict-images",
        src / "a.tif",
        src / "a.png",
        "--model",
        model_path,
        "--out",
        tmp_path / "o2",
        "--device",
        "cpu",
    )
    assert res.exit_code == 1 and "would both write" in res.output and not (tmp_path / "o2").exists()


def test_rerun_into_the_input_folder_skips_its_own_masks(model_path, tmp_path):
    Image.fromarray(rgb(20, 30)).save(tmp_path / "cell.png")
    for _ in range(2):
        res = run_predict_images(model_path, [tmp_path], tmp_path, size=32, device="cpu", progress=False)
        assert [p.name for p in res.written] == ["cell_mask.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cell.png", "cell_mask.png"]


def test_pad_mode_matches_the_network_on_a_fitting_image(model_path, tmp_path):
    image = rgb(32, 48, seed=1)
    Image.fromarray(image).save(tmp_path / "fit.png")
    Image.fromarray(rgb(37, 51, seed=2)).save(tmp_path / "odd.png")
    run_predict_images(
        model_path,
        [tmp_path / "fit.png", tmp_path / "odd.png"],
        tmp_path / "out",
        mode="pad",
        device="cpu",
        precision="fp32",
        progress=False,
    )
    from unetpp.inference.loading import load_trained_model

    model, _ = load_trained_model(model_path, "cpu")
    with torch.no_grad():
        logits = model(torch.from_numpy(image[None]).permute(0, 3, 1, 2).float() / 255)
    expected = np.where(torch.sigmoid(logits)[0, 0].numpy() > 0.5, 255, 0)
    got = read_mask(tmp_path / "out" / "fit_mask.png")
    assert (got != expected).mean() < 0.002  # equal up to a pixel at the threshold
    assert read_mask(tmp_path / "out" / "odd_mask.png").shape == (37, 51)


def test_pad_to_multiple_reflects_and_handles_tiny_images():
    image = np.arange(5 * 3 * 3, dtype=np.uint8).reshape(5, 3, 3)
    padded = pad_to_multiple(image, 16)
    assert padded.shape == (16, 16, 3)
    np.testing.assert_array_equal(padded[:5, :3], image)
    np.testing.assert_array_equal(padded[5, :3], image[3])  # reflection, not repetition
    assert pad_to_multiple(np.zeros((1, 1, 3), np.uint8), 16).shape == (16, 16, 3)


def test_bad_inputs_leave_no_masks(model_path, tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(rgb(20, 20)).save(good)
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n this is truncated")
    empty = tmp_path / "empty_dir"
    empty.mkdir()
    five = tmp_path / "five.tif"
    import tifffile

    tifffile.imwrite(five, np.zeros((8, 8, 5), np.uint8), photometric="minisblack", planarconfig="contig")
    out = tmp_path / "out"
    cases = [
        ([good, bad], [], "cannot read image " + str(bad)),
        ([good, tmp_path / "missing.png"], [], "does not exist"),
        ([empty], [], "holds no png/tif/tiff/jpg/jpeg images"),
        ([good], ["--inference-output", "mean"], "--inference-output mean"),
        ([good], ["--size", "40"], "--size 40 must be a positive multiple of 16"),
        ([good], ["--model", tmp_path / "nope.pt"], "nope.pt does not exist"),
        # 5 channels: no image layout we know; the message lists the channel counts the help allows.
        ([good, five], [], "cannot read image " + str(five)),
        ([five], [], "(1, 2, 3 or 4 channels, 8 or 16 bit)"),
    ]
    for inputs, extra, message in cases:
        args = ["predict-images", *inputs, "--device", "cpu", "--out", out]
        if "--model" not in extra:
            args += ["--model", model_path]
        res = cli(*args, *extra)
        assert res.exit_code == 1, (inputs, extra, res.output)
        assert message in res.output, (message, res.output)
        assert "Traceback" not in res.output
        assert not out.exists() or list(out.iterdir()) == []
    out.write_text("a file where the mask folder should be")
    res = cli("predict-images", good, "--model", model_path, "--out", out, "--device", "cpu")
    assert res.exit_code == 1 and f"--out {out} is a file" in res.output


@pytest.mark.real_data
def test_real_dsb_images_of_several_sizes(model_path, tmp_path):
    """RGBA PNGs straight from the Kaggle zip, including odd sizes, in both modes."""
    import zipfile

    from conftest import real_raw_zip

    zip_path = real_raw_zip()
    if not zip_path.is_file():
        pytest.skip(f"real DSB2018 zip not found at {zip_path} (set UNETPP_RAW_ZIP)")
    wanted = {(347, 260), (1272, 603), (256, 256)}  # (width, height) as Pillow reports them
    src = tmp_path / "in"
    src.mkdir()
    with zipfile.ZipFile(zip_path) as zf:
        for name in sorted(n for n in zf.namelist() if "/images/" in n and n.endswith(".png")):
            data = zf.read(name)
            with Image.open(io.BytesIO(data)) as img:
                size = img.size
            if size in wanted:
                (src / f"{size[0]}x{size[1]}.png").write_bytes(data)
                wanted.discard(size)
            if not wanted:
                break
    assert not wanted
    for mode in ("resize", "pad"):
        out = tmp_path / mode
        res = cli("predict-images", src, "--model", model_path, "--out", out, "--mode", mode, "--device", "cpu")
        assert res.exit_code == 0, res.output
        for width, height in ((347, 260), (1272, 603), (256, 256)):
            mask = read_mask(out / f"{width}x{height}_mask.png")
            assert mask.shape == (height, width) and set(np.unique(mask)) <= {0, 255}


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height with almost no pixel data (decoding would fail as truncated)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_pixel_bomb_and_max_pixels(model_path, tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_header_only(13000, 13000))
    out = tmp_path / "out"
    res = cli("predict-images", bomb, "--model", model_path, "--out", out, "--device", "cpu")
    assert res.exit_code == 1 and res.output == (
        f"Error: {bomb} declares 13000x13000 (HxW) = 169,000,000 pixels, above the cap of 64,000,000 (a possible "
        "decompression bomb); nothing was decoded. Remove the file, or raise --max-pixels if the image is genuine.\n"
    )
    small = tmp_path / "small.png"
    Image.fromarray(rgb(20, 20)).save(small)
    res = cli("predict-images", small, "--model", model_path, "--out", out, "--device", "cpu", "--max-pixels", "399")
    assert res.exit_code == 1 and "= 400 pixels, above the cap of 399" in res.output
    res = cli("predict-images", small, "--model", model_path, "--out", out, "--device", "cpu", "--max-pixels", "400")
    assert res.exit_code == 0 and read_mask(out / "small_mask.png").shape == (20, 20)


def test_an_unknown_format_names_the_file_not_a_buffer(model_path, tmp_path):
    text = tmp_path / "notes.png"
    text.write_bytes(b"just some text, not an image")
    res = cli("predict-images", text, "--model", model_path, "--out", tmp_path / "out", "--device", "cpu")
    assert res.exit_code == 1 and "BytesIO" not in res.output and " at 0x" not in res.output
    assert f"cannot read image {text} (UnidentifiedImageError: cannot identify image file {text})" in res.output


def test_help_names_the_model_path_and_the_channels_it_reads() -> None:
    from click.testing import CliRunner

    from unetpp.cli import main

    text = " ".join(CliRunner().invoke(main, ["predict-images", "--help"]).output.split())
    assert "models/ARCH/seedN/model.pt" in text and "models/ARCH/model.pt" not in text
    assert "1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA) channels" in text
