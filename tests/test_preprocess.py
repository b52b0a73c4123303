"""unetpp preprocess: shapes, strictly binary masks, the resize rule, attrs and option validation."""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from skimage.transform import resize

from unetpp.cli import main
from unetpp.data.preprocess import preprocess, resize_image, resize_mask, validate_size
from unetpp.errors import UnetppError

from conftest import SYNTH_N, SYNTH_PROCESSED_SIZE


def test_shapes_dtypes_ids_and_attrs(synthetic_interim_h5, synthetic_processed_h5):
    size = SYNTH_PROCESSED_SIZE
    with h5py.File(synthetic_processed_h5) as h5, h5py.File(synthetic_interim_h5) as interim:
        images, masks = h5["images"][()], h5["masks"][()]
        assert images.shape == (SYNTH_N, size, size, 3) and images.dtype == np.uint8
        assert masks.shape == (SYNTH_N, size, size) and masks.dtype == np.uint8
        assert set(np.unique(masks)) == {0, 1}
        ids = list(h5["ids"].asstr()[()])
        assert ids == list(interim["ids"].asstr()[()]) == sorted(ids)
        assert h5.attrs["size"] == size
        expected = hashlib.sha256(synthetic_interim_h5.read_bytes()).hexdigest()
        assert h5.attrs["input_sha256"] == expected
        # each row is the documented resize of the matching native image and mask
        for row in (0, SYNTH_N - 1):
            np.testing.assert_array_equal(images[row], resize_image(interim["images"][ids[row]][()], size))
            np.testing.assert_array_equal(masks[row], resize_mask(interim["masks"][ids[row]][()], size))
            # a resized mask still covers about the same fraction of the image
            native = interim["masks"][ids[row]][()]
            assert abs(masks[row].mean() - native.mean()) < 0.05


def test_mask_rule_is_antialiased_float_then_half_threshold():
    mask = np.zeros((64, 64), dtype=np.uint8)
    mask[:, :32] = 1  # left half
    half = resize_mask(mask, 32)
    assert (half[:, :16] == 1).all() and (half[:, 16:] == 0).all()
    dot = np.zeros((64, 64), dtype=np.uint8)
    dot[10, 10] = 1  # far smaller than the 2x scale: averaged below 0.5, it vanishes
    assert resize_mask(dot, 32).sum() == 0
    block = np.zeros((64, 64), dtype=np.uint8)
    block[8:24, 8:24] = 1
    assert resize_mask(block, 32).sum() == 64  # an 8x8 block at half scale
    expected = resize(block.astype(float), (32, 32), anti_aliasing=True) >= 0.5
    np.testing.assert_array_equal(resize_mask(block, 32), expected)


def test_grey_shortcut_equals_the_full_colour_resize():
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, size=(70, 90), dtype=np.uint8)
    image = np.repeat(grey[:, :, None], 3, axis=2)
    full = resize(image, (32, 32), anti_aliasing=True, preserve_range=True)
    np.testing.assert_array_equal(resize_image(image, 32), np.clip(np.rint(full), 0, 255).astype(np.uint8))
    colour = rng.integers(0, 256, size=(70, 90, 3), dtype=np.uint8)
    full = resize(colour, (32, 32), anti_aliasing=True, preserve_range=True)
    np.testing.assert_array_equal(resize_image(colour, 32), np.clip(np.rint(full), 0, 255).astype(np.uint8))


def test_pool_and_inline_give_the_same_file_contents(tmp_path, synthetic_interim_h5, synthetic_processed_h5):
    out = tmp_path / "p.h5"
    preprocess(synthetic_interim_h5, out, size=SYNTH_PROCESSED_SIZE, workers=2, progress=False)
    with h5py.File(out) as a, h5py.File(synthetic_processed_h5) as b:
        for name in ("images", "masks"):
            np.testing.assert_array_equal(a[name][()], b[name][()])


@pytest.mark.parametrize("size", [0, -16, 100, 8])
def test_size_must_be_positive_multiple_of_16(size, tmp_path, synthetic_interim_h5):
    with pytest.raises(UnetppError, match=f"--size {size} is invalid: it must be a positive multiple of 16"):
        validate_size(size)
    out = tmp_path / "out" / "p.h5"
    result = CliRunner().invoke(
        main, ["preprocess", "--in", str(synthetic_interim_h5), "--size", str(size), "--out", str(out)]
    )
    assert result.exit_code == 1 and "pool 4 times" in result.output
    assert not out.parent.exists() or list(out.parent.iterdir()) == []


def test_missing_and_wrong_input(tmp_path, synthetic_processed_h5):
    with pytest.raises(UnetppError, match=r"nope\.h5 does not exist; run `unetpp ingest`"):
        preprocess(tmp_path / "nope.h5", tmp_path / "out.h5")
    (tmp_path / "bad.h5").write_bytes(b"garbage" * 100)
    with pytest.raises(UnetppError, match=r"bad\.h5 cannot be read as HDF5"):
        preprocess(tmp_path / "bad.h5", tmp_path / "out.h5")
    with pytest.raises(
        UnetppError, match=r"has no images, masks group\(s\) of per-image arrays; it is not an ingest output"
    ):
        preprocess(synthetic_processed_h5, tmp_path / "out.h5")  # a processed file has flat datasets, no groups
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.h5"]


def test_help_explains_every_option():
    text = " ".join(CliRunner().invoke(main, ["preprocess", "--help"]).output.split())
    for option in ("--in", "--size", "--out", "--workers"):
        assert option in text
    assert "multiple of 16" in text


# The real stage command in a child process, one step per image slowed by 0.3 s so that a signal lands
# mid-run; the pool forks after the patch, so the workers run the slowed function too.
_SLOW_STAGE = """
import sys, time
import unetpp.data.{module} as stage
fast = stage.{function}
stage.{function} = lambda *args: (time.sleep(0.3), fast(*args))[1]
from unetpp.cli import main
main(sys.argv[1:])
"""
_STAGES = {
    "preprocess": ("preprocess", "resize_image", ["--size", "32"]),
    "ingest": ("ingest", "decode_image", []),
}


def _alive(pid: int) -> bool:
    """True while `pid` runs; a zombie (dead, not yet reaped by whoever adopted it) counts as ended."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _wait_for(condition, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc (Linux)")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
@pytest.mark.parametrize("command", list(_STAGES))
def test_killed_stage_leaves_no_worker_and_a_rerun_no_temp(
    tmp_path, synthetic_raw_zip, synthetic_interim_h5, command, signum
):
    module, function, extra = _STAGES[command]
    source = ["--in", str(synthetic_interim_h5)] if command == "preprocess" else ["--raw", str(synthetic_raw_zip)]
    out = tmp_path / "x.h5"
    base = [command, *source, "--out", str(out), *extra]
    script = _SLOW_STAGE.format(module=module, function=function)
    stage = subprocess.Popen([sys.executable, "-c", script, *base, "--workers", "2"])
    try:
        assert _wait_for(lambda: len(_children(stage.pid)) >= 2 and list(tmp_path.glob(".x.h5.tmp-*")))
        workers = _children(stage.pid)
        time.sleep(0.5)  # both workers are inside a step
        stage.send_signal(signum)
        assert stage.wait(timeout=20) == (-signum if signum == signal.SIGKILL else 128 + signum)
        assert _wait_for(lambda: not any(_alive(pid) for pid in workers), timeout=5), "a worker outlived its stage"
    finally:
        stage.kill()
        stage.wait()
    temps = list(tmp_path.glob(".x.h5.tmp-*"))
    assert len(temps) == (1 if signum == signal.SIGKILL else 0)  # only SIGKILL gives no chance to clean up
    assert not out.exists()
    rerun = CliRunner().invoke(main, [*base, "--workers", "1"])
    assert rerun.exit_code == 0, rerun.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.h5"]  # the rerun swept the stale temp


def test_progress_bar_only_when_asked_or_on_a_terminal(tmp_path, synthetic_interim_h5):
    args = ["preprocess", "--in", str(synthetic_interim_h5), "--size", "32", "--out", str(tmp_path / "p.h5")]
    quiet = CliRunner().invoke(main, [*args, "--workers", "1"])  # CliRunner's stderr is not a terminal
    assert quiet.exit_code == 0 and "\r" not in quiet.output and "preprocess:" not in quiet.output
    shown = CliRunner().invoke(main, [*args, "--workers", "1", "--progress"])
    assert shown.exit_code == 0 and "preprocess: 100%" in shown.output
