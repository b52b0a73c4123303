"""The training stage: outputs, reproducibility, resume after a kill, early stopping, bad input."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from unetpp.allocator import keep_freed_memory
from unetpp.cli import main
from unetpp.data.processed import load_processed
from unetpp.errors import UnetppError
from unetpp.metrics import REDUCTIONS
from unetpp.models import build_model
from unetpp.training import loop
from unetpp.training.checkpoint import CHECKPOINT_FILE, load_checkpoint, run_checkpoint_dir, save_checkpoint
from unetpp.training.config import TrainConfig
from unetpp.training.device import (
    cpu_bf16_flags, cpu_flags, cpu_kernel_family, resolve_device, resolve_precision,
)
from unetpp.training.loop import EpochStats, shuffled_order, train, validation_pass
from unetpp.training.outputs import HISTORY_COLUMNS
from unetpp.training.step import make_batch, train_step
from unetpp.training.stopping import EarlyStopping

TINY = {"filters": (4, 8, 16, 32, 64)}
SUMMARY_KEYS = {
    "best_epoch", "best_val_iou", "best_val_iou_per_image", "best_val_iou_pooled", "best_val_iou_batch_pooled",
    "epochs_run", "wall_seconds", "device", "precision", "torch_version", "settings", "selection_metric", "layout",
    "git_commit", "git_commits", "seed",
}


def write_data(tmp: Path, n: int = 16, n_val: int = 4, size: int = 32, seed: int = 0) -> tuple[Path, Path]:
    """Tiny processed set: noisy images whose bright discs are the masks (learnable), plus a split."""
    rng = np.random.default_rng(seed)
    ids = [f"s{k:02d}" for k in range(n)]
    yy, xx = np.mgrid[:size, :size]
    masks = np.zeros((n, size, size), dtype=np.uint8)
    for k in range(n):
        for _ in range(2):
            cy, cx = rng.integers(5, size - 5, size=2)
            masks[k] |= ((yy - cy) ** 2 + (xx - cx) ** 2 <= 16).astype(np.uint8)
    noise = rng.integers(0, 60, size=(n, size, size, 3))
    images = np.clip(noise + 150 * masks[..., None], 0, 255).astype(np.uint8)
    h5 = tmp / "processed.h5"
    with h5py.File(h5, "w") as f:
        f["images"] = images
        f["masks"] = masks
        f.create_dataset("ids", data=ids, dtype=h5py.string_dtype("utf-8"))
        f.attrs["size"] = size
    split = tmp / "split.json"
    split.write_text(json.dumps({"seed": 0, "val_fraction": 0.25, "test_fraction": 0.0,
                                 "train": ids[n_val:], "val": ids[:n_val], "test": []}))
    return h5, split


@pytest.fixture()
def data(tmp_path: Path) -> tuple[Path, Path]:
    return write_data(tmp_path)


def config(tmp_path: Path, data: tuple[Path, Path], **kw) -> TrainConfig:
    base = dict(data=data[0], split=data[1], arch="unet", out=tmp_path / "out", epochs=2, batch_size=5,
                device="cpu", precision="fp32", num_threads=1, checkpoint_dir=tmp_path / "ckpt",
                model_kwargs=TINY)
    base.update(kw)
    return TrainConfig(**base)


def checkpoint_files(root: Path) -> list[Path]:
    """The resume checkpoints under a --checkpoint-dir root (one folder per run)."""
    return sorted(root.glob(f"*/{CHECKPOINT_FILE}"))


def read_history(out: Path) -> list[dict[str, str]]:
    with open(out / "history.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def without_seconds(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def assert_same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


# --- end to end through the CLI --------------------------------------------------------------


@pytest.mark.slow
def test_cli_end_to_end_writes_three_files(tmp_path, data):
    out = tmp_path / "models" / "unet"
    ckpt = tmp_path / "ckpt"
    stale = out / ".model.pt.tmp-dead.pt"  # left by a kill -9
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"half")
    result = CliRunner().invoke(main, [
        "train", "--data", str(data[0]), "--split", str(data[1]), "--arch", "unet", "--epochs", "2",
        "--batch-size", "12", "--seed", "0", "--device", "cpu", "--precision", "fp32", "--out", str(out),
        "--num-threads", "1", "--checkpoint-dir", str(ckpt), "--no-progress",
    ])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["history.csv", "model.pt", "train.json"]
    assert list(ckpt.iterdir()) == []  # the run's checkpoint folder is removed after success
    rows = read_history(out)
    assert tuple(rows[0].keys()) == HISTORY_COLUMNS
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert all(float(r["lr"]) == 3e-4 for r in rows)
    summary = json.loads((out / "train.json").read_text())
    assert SUMMARY_KEYS <= summary.keys()
    assert summary["epochs_run"] == 2 and summary["device"] == "cpu" and summary["precision"] == "fp32"
    best = summary["best_epoch"]
    # The default selection metric is the reference's batch-pooled val IoU.
    assert summary["selection_metric"] == "batch_pooled"
    column = [float(r["val_iou_batch_pooled"]) for r in rows]
    assert summary["best_val_iou"] == max(column) == column[best - 1] == summary["best_val_iou_batch_pooled"]
    for r in REDUCTIONS:
        assert summary[f"best_val_iou_{r}"] == float(rows[best - 1][f"val_iou_{r}"])
    # The code that trained it: this checkout's commit.
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent)
    if head.returncode == 0:
        assert summary["git_commit"]["sha"] == head.stdout.strip()
        assert summary["git_commits"] == [{"commit": summary["git_commit"], "from_epoch": 1}]
    assert summary["layout"]["layout"] in ("channels_last", "nchw")

    payload = torch.load(out / "model.pt", weights_only=True)
    assert {"state_dict", "arch", "model_kwargs", "settings", "best_epoch", "best_val_iou"} <= payload.keys()
    assert payload["arch"] == "unet" and payload["best_epoch"] == best and payload["model_kwargs"] == {}
    val = load_processed(data[0], data[1], "val")
    # predict-images maps new images to this size; aggregate reports the parameter count.
    assert payload["settings"]["image_size"] == val.size
    assert summary["parameters"] == 7_852_545
    # Rebuilt from the file alone, the model reproduces the best epoch's validation figures exactly.
    model = build_model(payload["arch"], **payload["model_kwargs"])
    model.load_state_dict(payload["state_dict"])
    stats = validation_pass(model, torch.from_numpy(val.images), torch.from_numpy(val.masks), 12, "fp32")
    assert stats.iou["batch_pooled"] == summary["best_val_iou"]
    assert stats.loss == pytest.approx(float(rows[best - 1]["val_loss"]), rel=1e-6)
    assert stats.iou["per_image"] == summary["best_val_iou_per_image"]


# --- reproducibility and resume ---------------------------------------------------------------


@pytest.mark.slow
def test_same_seed_gives_identical_history_and_weights(tmp_path, data):
    first = train(config(tmp_path, data, out=tmp_path / "a"), progress=False)
    second = train(config(tmp_path, data, out=tmp_path / "b"), progress=False)
    assert without_seconds(read_history(tmp_path / "a")) == without_seconds(read_history(tmp_path / "b"))
    assert first["best_val_iou"] == second["best_val_iou"]
    assert_same_state(torch.load(tmp_path / "a/model.pt", weights_only=True)["state_dict"],
                      torch.load(tmp_path / "b/model.pt", weights_only=True)["state_dict"])
    # Byte for byte, too: DVC caches model.pt by content hash.
    assert (tmp_path / "a/model.pt").read_bytes() == (tmp_path / "b/model.pt").read_bytes()
    other = train(config(tmp_path, data, out=tmp_path / "c", seed=1), progress=False)
    assert without_seconds(read_history(tmp_path / "c")) != without_seconds(read_history(tmp_path / "a"))
    assert other["settings"]["seed"] == 1


KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from unetpp.training.config import TrainConfig
    from unetpp.training.loop import train
    tmp = Path(sys.argv[1])

    def die(epoch, row):
        if epoch == 1:
            os.kill(os.getpid(), signal.SIGKILL)

    train(TrainConfig(data=tmp / "processed.h5", split=tmp / "split.json", arch="nested_unet_ds",
                      out=tmp / "resumed", epochs=3, batch_size=5, device="cpu", precision="fp32",
                      num_threads=1, checkpoint_dir=tmp / "ckpt", model_kwargs={"filters": (4, 8, 16, 32, 64)}),
          progress=False, on_epoch_end=die)
""")


@pytest.mark.slow
def test_kill_9_then_rerun_resumes_and_matches_uninterrupted(tmp_path, data, capfd):
    script = tmp_path / "kill.py"
    script.write_text(KILL_SCRIPT)
    proc = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert len(checkpoint_files(tmp_path / "ckpt")) == 1
    assert not (tmp_path / "resumed").exists()  # outputs only at the end
    stale = checkpoint_files(tmp_path / "ckpt")[0].parent / ".last.pt.tmp-dead.pt"  # as a kill mid-save leaves
    stale.write_bytes(b"half")

    cfg = config(tmp_path, data, arch="nested_unet_ds", epochs=3, out=tmp_path / "resumed")
    resumed = train(cfg, progress=False)
    assert "resuming" in capfd.readouterr().err
    assert resumed["resumed_after_epoch"] == 1 and resumed["epochs_run"] == 3
    assert checkpoint_files(tmp_path / "ckpt") == []

    straight = train(replace(cfg, out=tmp_path / "straight", checkpoint_dir=tmp_path / "ckpt2"), progress=False)
    assert straight["resumed_after_epoch"] == 0
    assert without_seconds(read_history(tmp_path / "resumed")) == without_seconds(read_history(tmp_path / "straight"))
    assert_same_state(torch.load(tmp_path / "resumed/model.pt", weights_only=True)["state_dict"],
                      torch.load(tmp_path / "straight/model.pt", weights_only=True)["state_dict"])


class Interrupt(Exception):
    pass


def interrupt_after(stop_epoch: int):
    def callback(epoch: int, row: dict) -> None:
        if epoch == stop_epoch:
            raise Interrupt

    return callback


@pytest.mark.slow
def test_interrupt_leaves_no_outputs_and_resume_uses_only_matching_checkpoints(tmp_path, data, capfd):
    cfg = config(tmp_path, data, epochs=2)
    with pytest.raises(Interrupt):
        train(cfg, progress=False, on_epoch_end=interrupt_after(1))
    assert len(checkpoint_files(tmp_path / "ckpt")) == 1 and not cfg.out.exists()
    capfd.readouterr()

    # Different lr: that checkpoint is not used (and named on stderr); this run starts its own.
    with pytest.raises(Interrupt):
        train(replace(cfg, lr=1e-3), progress=False, on_epoch_end=interrupt_after(1))
    err = capfd.readouterr().err
    assert "from other settings or data; it is not used" in err and "resuming" not in err
    assert len(checkpoint_files(tmp_path / "ckpt")) == 2

    # Same arguments as that run, but the data file changed underneath: not reused either.
    with h5py.File(data[0], "a") as f:
        f.attrs["touched"] = 1
    with pytest.raises(Interrupt):
        train(replace(cfg, lr=1e-3), progress=False, on_epoch_end=interrupt_after(1))
    assert "resuming" not in capfd.readouterr().err

    # Same arguments and data: resumed after epoch 1.
    summary = train(replace(cfg, lr=1e-3), progress=False)
    assert "resuming" in capfd.readouterr().err
    assert summary["resumed_after_epoch"] == 1 and summary["epochs_run"] == 2


@pytest.mark.slow
def test_augmented_authors_run_resumes_bit_identically_and_records_its_options(tmp_path, data, capfd):
    """Augmentation (seeded by (seed, epoch)) and dropout (the global RNG, restored) both survive a resume."""
    cfg = config(tmp_path, data, arch="nested_unet_ds", epochs=3, augment="flips_colour", block="authors",
                 out=tmp_path / "resumed")
    with pytest.raises(Interrupt):
        train(cfg, progress=False, on_epoch_end=interrupt_after(1))
    capfd.readouterr()
    torch.manual_seed(99)  # whatever the global RNG holds when the rerun starts
    resumed = train(cfg, progress=False)
    assert "resuming" in capfd.readouterr().err and resumed["resumed_after_epoch"] == 1
    straight = train(replace(cfg, out=tmp_path / "straight", checkpoint_dir=tmp_path / "ckpt2"), progress=False)
    assert without_seconds(read_history(tmp_path / "resumed")) == without_seconds(read_history(tmp_path / "straight"))
    assert_same_state(torch.load(tmp_path / "resumed/model.pt", weights_only=True)["state_dict"],
                      torch.load(tmp_path / "straight/model.pt", weights_only=True)["state_dict"])
    assert (resumed["block"], resumed["augment"]) == ("authors", "flips_colour")
    assert (resumed["settings"]["block"], resumed["settings"]["augment"]) == ("authors", "flips_colour")
    assert resumed["parameters"] == straight["parameters"] == sum(
        p.numel() for p in build_model("nested_unet_ds", block="authors", **TINY).parameters())
    payload = torch.load(tmp_path / "resumed/model.pt", weights_only=True)
    assert payload["block"] == "authors" and "block" not in payload["model_kwargs"]
    # The same run without augmentation, and the vgg block, train differently.
    plain = train(replace(cfg, augment="none", out=tmp_path / "plain", checkpoint_dir=tmp_path / "ckpt3"),
                  progress=False)
    assert plain["settings"]["augment"] == "none"
    assert without_seconds(read_history(tmp_path / "plain")) != without_seconds(read_history(tmp_path / "straight"))


@pytest.mark.slow
@pytest.mark.parametrize("change", [{"augment": "flips"}, {"block": "authors"}])
def test_another_augment_or_block_does_not_resume_the_checkpoint(tmp_path, data, capfd, change):
    cfg = config(tmp_path, data, epochs=2)
    with pytest.raises(Interrupt):
        train(cfg, progress=False, on_epoch_end=interrupt_after(1))
    capfd.readouterr()
    summary = train(replace(cfg, **change), progress=False)
    err = capfd.readouterr().err
    assert "from other settings or data; it is not used" in err and "resuming" not in err
    (key, value), = change.items()
    assert summary["resumed_after_epoch"] == 0 and summary["settings"][key] == value


def test_checkpoint_dir_is_the_same_from_any_clone_and_differs_per_out_and_settings(tmp_path):
    fp, other_fp = "a" * 64, "b" * 64
    a = run_checkpoint_dir(tmp_path, "models/unet/seed0", fp)
    assert a == tmp_path / "models-unet-seed0-aaaaaaaaaaaa"  # no absolute path in it: any clone finds it
    assert a == run_checkpoint_dir(tmp_path, "models/../models/unet/seed0/", fp)
    assert a != run_checkpoint_dir(tmp_path, "models/unet/seed1", fp)
    assert a != run_checkpoint_dir(tmp_path, "models/unet/seed0", other_fp)


def test_a_checkpoint_with_another_fingerprint_in_the_folder_is_ignored(tmp_path, capfd):
    save_checkpoint(tmp_path, {"fingerprint": "x" * 64, "history": []})
    assert load_checkpoint(tmp_path, "x" * 64)["history"] == []
    assert load_checkpoint(tmp_path, "y" * 64) is None
    assert "different arguments or input data" in capfd.readouterr().err
    (tmp_path / CHECKPOINT_FILE).write_bytes(b"torn")
    assert load_checkpoint(tmp_path, "x" * 64) is None
    assert "unreadable checkpoint" in capfd.readouterr().err


# --- early stopping -----------------------------------------------------------------------------


def test_early_stopping_rule():
    stopper = EarlyStopping(patience=2)
    assert stopper.update(1, 0.0) and stopper.best_epoch == 1  # the first epoch is always the best so far
    assert not stopper.update(2, 0.0) and not stopper.should_stop  # equal is not better
    assert stopper.update(3, 0.5) and stopper.bad_epochs == 0
    assert not stopper.update(4, 0.4) and not stopper.should_stop
    assert not stopper.update(5, 0.5) and stopper.should_stop
    assert (stopper.best_epoch, stopper.best_value) == (3, 0.5)


def test_training_stops_after_patience_epochs_without_gain(tmp_path, data, monkeypatch):
    scripted = iter([0.5, 0.6, 0.55, 0.9, 0.95])
    real_validate = loop.validation_pass

    def fake_validate(*args, **kwargs) -> EpochStats:
        real = real_validate(*args, **kwargs)
        value = next(scripted)
        return EpochStats(real.loss, {r: value for r in REDUCTIONS})

    monkeypatch.setattr(loop, "validation_pass", fake_validate)
    cfg = config(tmp_path, data, epochs=5, patience=1)
    states: dict[int, dict[str, torch.Tensor]] = {}

    def remember(epoch: int, row: dict) -> None:
        states[epoch] = torch.load(checkpoint_files(cfg.checkpoint_dir)[0], weights_only=True)["model"]

    summary = train(cfg, progress=False, on_epoch_end=remember)
    assert summary["epochs_run"] == 3 and summary["stopped_early"] is True
    assert summary["best_epoch"] == 2 and summary["best_val_iou"] == 0.6
    assert [float(r["val_iou_batch_pooled"]) for r in read_history(cfg.out)] == [0.5, 0.6, 0.55]
    # model.pt holds the weights after epoch 2, not the last epoch's
    saved = torch.load(cfg.out / "model.pt", weights_only=True)["state_dict"]
    assert_same_state(saved, states[2])
    assert not all(torch.equal(saved[k], states[3][k]) for k in saved)


# --- bad input ----------------------------------------------------------------------------------


def run_cli(tmp_path: Path, data: tuple[Path, Path], *extra: str):
    args = ["train", "--data", str(data[0]), "--split", str(data[1]), "--arch", "unet", "--epochs", "1",
            "--device", "cpu", "--out", str(tmp_path / "out"), "--checkpoint-dir", str(tmp_path / "ckpt"),
            "--no-progress", *extra]
    return CliRunner().invoke(main, args)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--arch", "resnet"], "--arch 'resnet' is unknown: choose one of unet, nested_unet, nested_unet_ds"),
        (["--lr", "0"], "--lr 0.0 is not a positive number"),
        (["--lr", "-1e-3"], "--lr -0.001 is not a positive number"),
        (["--lr", "nan"], "--lr nan is not a positive number"),
        (["--device", "cuda:7"], "--device cuda:7"),
        (["--device", "tpu"], "--device 'tpu'"),
    ],
)
def test_bad_options_fail_cleanly(tmp_path, data, extra, message):
    result = run_cli(tmp_path, data, *extra)
    assert result.exit_code == 1
    assert message in result.output and result.output.startswith("Error: ")
    assert not (tmp_path / "out").exists() and not (tmp_path / "ckpt").exists()


@pytest.mark.parametrize("option", ["--epochs", "--patience", "--batch-size", "--num-threads"])
def test_counts_below_one_are_usage_errors(tmp_path, data, option):
    result = run_cli(tmp_path, data, option, "0")
    assert result.exit_code == 2 and f"Invalid value for '{option}': 0 is not in the range x>=1" in result.output
    assert not (tmp_path / "out").exists() and not (tmp_path / "ckpt").exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"epochs": 0}, "--epochs 0 must be a positive whole number"),
        ({"batch_size": -4}, "--batch-size -4 must be a positive whole number"),
        ({"patience": 0}, "--patience 0 must be a positive whole number"),
        ({"num_threads": 0}, "--num-threads 0 must be 1 or more"),
        ({"selection_metric": "dice"}, "--selection-metric 'dice' is unknown"),
        ({"layout": "nhwc"}, "--layout 'nhwc' is unknown"),
        ({"augment": "mixup"}, "--augment 'mixup' is unknown: use one of none, flips, flips_colour"),
        ({"block": "resnet"}, "--block 'resnet' is unknown: use one of vgg, authors"),
        ({"model_kwargs": {"block": "authors"}}, "not in model_kwargs"),
    ],
)
def test_library_callers_get_the_same_checks(tmp_path, data, change, message):
    with pytest.raises(UnetppError, match=message):
        train(config(tmp_path, data, **change))
    assert not (tmp_path / "out").exists() and not (tmp_path / "ckpt").exists()


def test_bad_data_files_fail_cleanly(tmp_path, data):
    missing = run_cli(tmp_path, (tmp_path / "nope.h5", data[1]))
    assert missing.exit_code == 1 and "nope.h5 does not exist" in missing.output

    corrupt = tmp_path / "corrupt.h5"
    corrupt.write_bytes(data[0].read_bytes()[:1500])
    result = run_cli(tmp_path, (corrupt, data[1]))
    assert result.exit_code == 1 and "corrupt.h5" in result.output and "unetpp preprocess" in result.output

    split = json.loads(data[1].read_text())
    split["val"].append("not-an-id")
    bad_split = tmp_path / "bad_split.json"
    bad_split.write_text(json.dumps(split))
    result = run_cli(tmp_path, (data[0], bad_split))
    assert result.exit_code == 1 and "not-an-id" in result.output and "rerun `unetpp split`" in result.output
    assert not (tmp_path / "out").exists() and not (tmp_path / "ckpt").exists()


def test_image_size_must_suit_the_network(tmp_path):
    data = write_data(tmp_path, size=24)
    with pytest.raises(UnetppError, match="images are 24x24.*multiple of 16"):
        train(TrainConfig(data=data[0], split=data[1], arch="unet", out=tmp_path / "out", device="cpu"))
    assert not (tmp_path / "out").exists()


# --- device, precision, batches -----------------------------------------------------------------


def test_device_choice_and_errors():
    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(UnetppError, match="CUDA is not available.*use --device auto or cpu"):
            resolve_device("cuda")
        if not torch.backends.mps.is_available():
            assert resolve_device("auto") == torch.device("cpu")
    if not torch.backends.mps.is_available():
        with pytest.raises(UnetppError, match="MPS is not available"):
            resolve_device("mps")
    with pytest.raises(UnetppError, match="not a device name"):
        resolve_device("gpu0")


def test_precision_choice(tmp_path):
    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu) == "fp32" and resolve_precision("bf16", cpu) == "bf16"
    assert resolve_precision("auto", cpu) == ("bf16" if cpu_bf16_flags() else "fp32")
    fake = tmp_path / "cpuinfo"
    fake.write_text("processor: 0\nflags\t\t: fpu sse avx2 avx512f amx_tile amx_bf16\n")
    assert cpu_bf16_flags(fake) == {"amx_bf16"}
    fake.write_text("processor: 0\nflags\t\t: fpu sse avx2 avx512f\n")
    assert cpu_bf16_flags(fake) == set()
    with pytest.raises(UnetppError, match="--precision 'fp16' is unknown"):
        resolve_precision("fp16", cpu)


# The flags that decide the family, as each kind seen so far reports them (abridged /proc/cpuinfo lines).
KIND_FLAGS = {
    "AMD Zen 3": ("fpu sse sse2 avx fma avx2 bmi2 sha_ni vaes", "AVX2"),
    "Intel Ice Lake": ("fpu sse avx2 avx512f avx512dq avx512bw avx512vl avx512_vnni avx512_vbmi2", "AVX512"),
    "AMD Zen 4": ("fpu sse avx2 avx512f avx512dq avx512bw avx512vl avx512_vnni avx512_bf16", "AVX512-BF16"),
    "Intel Xeon with AMX": ("fpu avx2 avx512f avx512_vnni avx512_bf16 avx512_fp16 amx_bf16 amx_tile amx_int8",
                            "AMX"),
    "Intel Xeon with AMX-FP16": ("avx2 avx512f avx512_bf16 amx_bf16 amx_tile amx_int8 amx_fp16", "AMX-FP16"),
}


@pytest.mark.parametrize("kind", list(KIND_FLAGS))
def test_each_cpu_kind_gets_its_own_kernel_family(tmp_path, kind):
    flags, family = KIND_FLAGS[kind]
    fake = tmp_path / "cpuinfo"
    fake.write_text(f"processor\t: 0\nflags\t\t: {flags}\nprocessor\t: 1\nflags\t\t: {flags}\n")
    assert cpu_kernel_family(fake) == family
    assert cpu_flags(fake) == set(flags.split())


def test_kernel_family_without_cpu_flags_names_torchs_capability(tmp_path):
    family = cpu_kernel_family(tmp_path / "absent")
    assert family == f"torch-{torch.backends.cpu.get_cpu_capability()}"
    assert family not in {name for _, name in KIND_FLAGS.values()}


def test_make_batch_scales_and_uses_channels_last():
    images = torch.arange(2 * 32 * 32 * 3, dtype=torch.int64).remainder(256).to(torch.uint8).reshape(2, 32, 32, 3)
    masks = torch.zeros(2, 32, 32, dtype=torch.uint8)
    masks[1, 3, 4] = 1
    x, y = make_batch(images, masks, torch.tensor([1, 0]))
    assert x.shape == (2, 3, 32, 32) and x.dtype == torch.float32
    assert x.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(x[0, :, 5, 7], images[1, 5, 7].float() / 255)
    assert y.shape == (2, 1, 32, 32) and y[0, 0, 3, 4] == 1 and y.sum() == 1


def test_shuffle_depends_only_on_seed_and_epoch():
    assert torch.equal(shuffled_order(50, 0, 3), shuffled_order(50, 0, 3))
    assert not torch.equal(shuffled_order(50, 0, 3), shuffled_order(50, 0, 4))
    assert not torch.equal(shuffled_order(50, 0, 3), shuffled_order(50, 1, 3))
    assert sorted(shuffled_order(50, 0, 3).tolist()) == list(range(50))


def test_bf16_train_step_runs_and_learns():
    torch.manual_seed(0)
    # The deep-supervision path (four heads); unet's single head is simpler.
    model = build_model("nested_unet_ds", **TINY).to(memory_format=torch.channels_last)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    # bf16 is emulated (slow) on CPUs without AVX-512 BF16/AMX: keep this to 16x16 and 4 steps.
    images = torch.randint(0, 256, (2, 16, 16, 3), dtype=torch.uint8)
    masks = (images[..., 0] > 128).to(torch.uint8)
    x, y = make_batch(images, masks, torch.arange(2))
    losses = [float(train_step(model, optimizer, x, y, "bf16")[0]) for _ in range(4)]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_cli_defaults_are_train_config_defaults_and_help_imports_no_torch():
    from dataclasses import MISSING, fields

    from unetpp.commands.train import train as train_command

    defaults = {f.name: f.default for f in fields(TrainConfig) if f.default is not MISSING}
    options = {p.name: p.default for p in train_command.params}
    options["split"] = options.pop("split_path")
    assert {name: options[name] for name in defaults} == defaults
    script = ("import sys; from unetpp.cli import main\n"
              "try:\n    main(['train', '--help'])\nexcept SystemExit:\n    pass\n"
              "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert all(name in out for name in ("unet", "nested_unet", "nested_unet_ds"))
    assert out.strip().endswith("False")


# --- memory layout ------------------------------------------------------------------------------


@pytest.mark.slow
def test_resumed_run_keeps_its_layout_and_records_it(tmp_path, data, monkeypatch):
    from unetpp.training import layout as layout_module

    monkeypatch.setenv("UNETPP_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(layout_module, "measure", lambda *a, **k: {"layout": "nchw", "nchw_step_s": 1.0,
                                                                     "channels_last_step_s": 1.0})
    seen: list[bool] = []
    real_step = loop.train_step

    def spy(model, optimizer, images, masks, precision):  # type: ignore[no-untyped-def]
        seen.append(images.is_contiguous(memory_format=torch.channels_last))
        return real_step(model, optimizer, images, masks, precision)

    monkeypatch.setattr(loop, "train_step", spy)
    cfg = config(tmp_path, data, epochs=2, layout="auto")
    with pytest.raises(Interrupt):
        train(cfg, progress=False, on_epoch_end=interrupt_after(1))
    assert seen and not any(seen)  # NCHW batches
    # This machine's cached answer changes (say, a new measurement); the interrupted run keeps NCHW.
    (tmp_path / "cache" / "layout.json").unlink()
    monkeypatch.setattr(layout_module, "measure", lambda *a, **k: {"layout": "channels_last", "nchw_step_s": 2.0,
                                                                     "channels_last_step_s": 1.0})
    seen.clear()
    summary = train(cfg, progress=False)
    assert summary["resumed_after_epoch"] == 1 and seen and not any(seen)
    assert summary["layout"] == {"layout": "nchw", "nchw_step_s": 1.0, "channels_last_step_s": 1.0,
                                 "source": "measured", "cache": str(tmp_path / "cache" / "layout.json")}
    # A fresh run measures again and follows the new answer.
    seen.clear()
    fresh = train(replace(cfg, out=tmp_path / "fresh"), progress=False)
    assert fresh["layout"]["layout"] == "channels_last" and all(seen)


def test_selection_metric_picks_the_kept_epoch(tmp_path, data, monkeypatch):
    """Scripted val IoU whose reductions disagree: per_image peaks at epoch 2, batch_pooled at epoch 3."""
    script = {"per_image": [0.5, 0.9, 0.6], "pooled": [0.7, 0.6, 0.65], "batch_pooled": [0.5, 0.6, 0.8]}
    real_validate = loop.validation_pass
    epochs = iter(range(3))

    def fake_validate(*args, **kwargs) -> EpochStats:
        k = next(epochs)
        return EpochStats(real_validate(*args, **kwargs).loss, {r: script[r][k] for r in REDUCTIONS})

    monkeypatch.setattr(loop, "validation_pass", fake_validate)
    expected = {"per_image": (2, 0.9), "pooled": (1, 0.7), "batch_pooled": (3, 0.8)}
    for metric, (best_epoch, best_value) in expected.items():
        epochs = iter(range(3))
        summary = train(config(tmp_path, data, epochs=3, selection_metric=metric, out=tmp_path / metric),
                        progress=False)
        assert (summary["best_epoch"], summary["best_val_iou"]) == (best_epoch, best_value), metric
        assert {r: summary[f"best_val_iou_{r}"] for r in REDUCTIONS} == {r: script[r][best_epoch - 1]
                                                                         for r in REDUCTIONS}
        rows = read_history(tmp_path / metric)
        assert [float(row["val_iou_pooled"]) for row in rows] == script["pooled"]


# --- progress of unfinished runs ----------------------------------------------------------------


@pytest.mark.slow
def test_progress_exports_the_history_so_far_of_an_interrupted_run(tmp_path, data):
    cfg = config(tmp_path, data, epochs=3, out=tmp_path / "models/unet/seed0")
    with pytest.raises(Interrupt):
        train(cfg, progress=False, on_epoch_end=interrupt_after(2))
    result = CliRunner().invoke(main, ["progress", "--checkpoint-dir", str(cfg.checkpoint_dir),
                                       "--out", str(tmp_path / "progress")])
    assert result.exit_code == 0, result.output
    (folder,) = (tmp_path / "progress").iterdir()
    assert folder.name.startswith(f"{str(tmp_path).strip('/').replace('/', '-').replace('.', '_')}-models-unet-seed0-")
    rows = read_history(folder)
    assert [int(r["epoch"]) for r in rows] == [1, 2] and tuple(rows[0]) == HISTORY_COLUMNS
    status = json.loads((folder / "status.json").read_text())
    assert (status["arch"], status["seed"], status["epochs_done"], status["max_epochs"]) == ("unet", 0, 2, 3)
    column = [float(r["val_iou_batch_pooled"]) for r in rows]
    assert status["best_val_iou"] == max(column) and status["best_epoch"] == column.index(max(column)) + 1
    assert status["layout"]["layout"] in ("channels_last", "nchw") and status["git_commits"][0]["from_epoch"] == 1
    # Finishing the run afterwards resumes and is unaffected by the export.
    assert train(cfg, progress=False)["resumed_after_epoch"] == 2
    empty = CliRunner().invoke(main, ["progress", "--checkpoint-dir", str(tmp_path / "none"), "--out", str(tmp_path)])
    assert empty.exit_code == 1 and "holds no training checkpoints" in empty.output


def test_a_raw_zip_is_named_the_wrong_kind_of_file_not_corrupt(tmp_path, data, synthetic_raw_zip):
    result = run_cli(tmp_path, (synthetic_raw_zip, data[1]))
    assert result.exit_code == 1 and "corrupt" not in result.output
    assert result.output.startswith(f"Error: {synthetic_raw_zip} is a zip archive (raw data")
    assert f"run `unetpp ingest --raw {synthetic_raw_zip}" in result.output and "unetpp preprocess" in result.output
    assert not (tmp_path / "out").exists() and not (tmp_path / "ckpt").exists()


@pytest.mark.slow
def test_the_allocator_line_only_with_verbose(tmp_path, data):
    quiet = run_cli(tmp_path, data, "--batch-size", "12", "--num-threads", "1", "--precision", "fp32", "--layout", "nchw")
    assert quiet.exit_code == 0, quiet.output
    assert "best val IoU" in quiet.output and "allocator: " not in quiet.output
    verbose = run_cli(tmp_path / "again", data, "--batch-size", "12", "--num-threads", "1", "--precision", "fp32", "--layout", "nchw",
                      "--verbose")
    assert verbose.exit_code == 0, verbose.output
    assert "allocator: " in verbose.output


def test_an_ingest_output_is_named_as_one_not_as_corrupt(tmp_path, data, synthetic_interim_h5):
    result = run_cli(tmp_path, (synthetic_interim_h5, data[1]))
    assert result.exit_code == 1 and "corrupt" not in result.output
    assert result.output == (
        f"Error: {synthetic_interim_h5} is an ingest output (one native-size array per image), not processed data: "
        f"run `unetpp preprocess --in {synthetic_interim_h5} --out <processed.h5>` first and pass its output "
        "(e.g. data/processed/dsb2018_96.h5)\n"
    )
    assert not (tmp_path / "out").exists() and not (tmp_path / "ckpt").exists()


# --- refactors keep training bit-identical ------------------------------------------------------

# sha256 (first 16 hex) of the kept weights (state_dict tensors in key order) and of history.csv without the
# seconds column, after 2 epochs of the tiny models below, per training path (precision, layout). Results depend
# on the kernels oneDNN picks, so a reference holds for one torch build and one CPU kernel family
# (`cpu_kernel_family`, from the CPU's flags): AMX and AVX-512 BF16 CPUs both report torch's capability "AVX512"
# but run different kernels, and so round differently.
# AVX2 (AMD Zen 3): recorded before the training code was restructured.
# AVX512-BF16 (AMD Zen 4): recorded at cd29b5a, the commit that trained the published CPU results, and equal at
# the commit that added them.
# AMX (Intel Xeon, amx_bf16 amx_tile): the same digests at cd29b5a and at 78af85b (the commit the GPU runs used),
# computed on one AMX machine with the same training calls as this test.
TRAINING_REFERENCE = {
    ("2.13.0+cpu", "AVX2"): {
        ("fp32", "nchw"): {"unet": ("59a624bc92533e84", "f52127d577892bd9"),
                           "nested_unet_ds": ("a3d33f70c185c76e", "028ec24789f03795")},
    },
    ("2.13.0+cpu", "AVX512-BF16"): {
        ("fp32", "nchw"): {"unet": ("138ced3ceaa7326c", "c8812f7019d8a2b3"),
                           "nested_unet_ds": ("d3b8b6516ac4187d", "551867080f21ca09")},
        ("bf16", "channels_last"): {"unet": ("d774a55ff1e33c11", "ae8fdaaefad65c2e"),
                                    "nested_unet_ds": ("c8a361565d54ce88", "8f48355cbcd57900")},
    },
    ("2.13.0+cpu", "AMX"): {
        ("fp32", "nchw"): {"unet": ("cf12c1259c10b9e4", "aa064eae96d636e7"),
                           "nested_unet_ds": ("8620ae0713eca630", "7b96566c674cdb81")},
        ("bf16", "channels_last"): {"unet": ("c1c7b6896def1286", "95bf8068ac6d773f"),
                                    "nested_unet_ds": ("66460fc63472632a", "b1bc6ac7410cc5b1")},
    },
}
# Set to print this machine's digests (in the skip message) where no reference is recorded, to record them.
RECORD_ENV = "UNETPP_RECORD_TRAINING_REFERENCE"


def weights_digest(state: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for key, tensor in state.items():
        digest.update(key.encode())
        digest.update(tensor.contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


@pytest.mark.slow
@pytest.mark.parametrize("path", [("fp32", "nchw"), ("bf16", "channels_last")], ids="-".join)
@pytest.mark.parametrize("arch", ["unet", "nested_unet_ds"])
def test_training_is_bit_identical_to_the_recorded_reference(tmp_path, arch, path):
    key = (str(torch.__version__), cpu_kernel_family())
    reference = TRAINING_REFERENCE.get(key, {}).get(path)
    if reference is None and not os.environ.get(RECORD_ENV):
        pytest.skip(f"no {'/'.join(path)} reference recorded for torch {key[0]} on the {key[1]} kernel family: "
                    f"rounding differs between builds and kernel families; on a commit known to be right, rerun "
                    f"with {RECORD_ENV}=1 and add the digests it prints to TRAINING_REFERENCE[{key!r}]")
    precision, layout = path
    data = write_data(tmp_path)
    cfg = config(tmp_path, data, arch=arch, epochs=2, precision=precision, layout=layout, out=tmp_path / arch)
    # As `unetpp train` runs (the references were recorded before it kept freed memory): the allocator
    # setting must not change a bit. It is process-wide, so it stays set for the rest of this test session.
    keep_freed_memory()
    train(cfg, progress=False)
    rows = [{k: v for k, v in r.items() if k != "seconds"} for r in read_history(cfg.out)]
    state = torch.load(cfg.out / "model.pt", weights_only=True)["state_dict"]
    got = (weights_digest(state), hashlib.sha256(json.dumps(rows).encode()).hexdigest()[:16])
    if reference is None:
        pytest.skip(f"to record for {key!r}, {path!r}: {arch!r}: {got!r}")
    assert got == reference[arch]
