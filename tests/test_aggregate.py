"""`unetpp aggregate`: metrics.json, summary.md and curves.png from every arch's files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from helpers_inference import TINY_FILTERS
from unetpp.cli import main
from unetpp.models import build_model, count_parameters

ARCHS = ("unet", "nested_unet", "nested_unet_ds")


def write_arch(root: Path, arch: str, k: int, epochs: int = 3) -> None:
    """history.csv and train.json as `unetpp train` writes them, metrics.json as `unetpp evaluate` does."""
    model_dir = root / "models" / arch
    model_dir.mkdir(parents=True)
    with open(model_dir / "history.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["epoch", "train_loss", "train_iou", "val_loss", "val_iou", "lr", "seconds"])
        for e in range(1, epochs + 1):
            writer.writerow([e, 1.0 / e, 0.5 + 0.1 * e, 1.1 / e, 0.45 + 0.1 * e + 0.01 * k, 3e-4, 2.5])
    train = {
        "arch": arch,
        "best_epoch": epochs,
        "best_val_iou": 0.45 + 0.1 * epochs + 0.01 * k,
        "epochs_run": epochs,
        "wall_seconds": 100.0 * (k + 1),
        "device": "cpu",
        "precision": "fp32",
        "torch_version": "2.13.0",
        "settings": {"arch": arch, "model_kwargs": {"filters": list(TINY_FILTERS)}},
    }
    (model_dir / "train.json").write_text(json.dumps(train))
    result_dir = root / "results" / arch
    result_dir.mkdir(parents=True)
    metrics = {
        "n_images": 134,
        "iou_per_image": 0.80 + 0.01 * k,
        "iou_pooled": 0.82 + 0.01 * k,
        "iou_batch_pooled": 0.83 + 0.01 * k,
        "dice_per_image": 0.88 + 0.01 * k,
        "dice_pooled": 0.9,
        "dice_batch_pooled": 0.91,
        "batch_size": 16,
    }
    (result_dir / "metrics.json").write_text(json.dumps(metrics))


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    for k, arch in enumerate(ARCHS):
        write_arch(tmp_path, arch, k)
    return tmp_path


def run(root: Path, *archs: str, out: str = "results"):
    args = ["aggregate", "--models-dir", root / "models", "--results-dir", root / "results", "--out", root / out]
    for arch in archs:
        args += ["--arch", arch]
    return CliRunner().invoke(main, [str(a) for a in args])


def outputs(root: Path, out: str = "results") -> list[str]:
    return sorted(p.name for p in (root / out).iterdir() if p.is_file()) if (root / out).exists() else []


def test_writes_three_files_with_published_column(project):
    res = run(project, *ARCHS)
    assert res.exit_code == 0, res.output
    assert outputs(project) == ["curves.png", "metrics.json", "summary.md"]
    metrics = json.loads((project / "results" / "metrics.json").read_text())
    assert list(metrics) == list(ARCHS)
    assert metrics["nested_unet"]["iou_per_image"] == pytest.approx(0.81)
    assert metrics["nested_unet_ds"]["iou_batch_pooled"] == pytest.approx(0.85)
    assert metrics["unet"]["train_seconds"] == 100.0 and metrics["unet"]["epochs_run"] == 3
    assert metrics["unet"]["best_epoch"] == 3 and metrics["unet"]["n_images"] == 134
    for arch in ARCHS:  # recounted from the arch and model_kwargs in train.json
        assert metrics[arch]["parameters"] == count_parameters(build_model(arch, filters=TINY_FILTERS))
    assert metrics["nested_unet_ds"]["parameters"] - metrics["nested_unet"]["parameters"] == 3 * (4 + 1)
    summary = (project / "results" / "summary.md").read_text()
    table = [line for line in summary.splitlines() if line.startswith("|")]
    header = [c.strip() for c in table[0].strip("|").split("|")]
    assert header.index("Published IoU") == header.index("IoU batch-pooled") + 1
    rows = {line.split("`")[1]: [c.strip() for c in line.strip("|").split("|")] for line in table[2:]}
    assert rows["unet"][header.index("Published IoU")] == "0.8347"
    assert rows["nested_unet"][header.index("Published IoU")] == "0.8321"
    assert rows["nested_unet_ds"][header.index("Published IoU")] == "0.8367"
    assert rows["nested_unet"][header.index("IoU per image")] == "0.8100"
    assert rows["nested_unet_ds"][header.index("Training time")] == "5.0 min"
    assert "**IoU batch-pooled**" in summary and "**Published IoU**" in summary
    png = (project / "results" / "curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_rows_follow_the_arch_order_and_subsets_work(project):
    res = run(project, "nested_unet_ds", "unet", out="two")
    assert res.exit_code == 0, res.output
    assert list(json.loads((project / "two" / "metrics.json").read_text())) == ["nested_unet_ds", "unet"]


def test_parameters_from_train_json_when_present(project):
    path = project / "models" / "unet" / "train.json"
    train = json.loads(path.read_text())
    train["parameters"] = 123
    path.write_text(json.dumps(train))
    assert run(project, "unet").exit_code == 0
    assert json.loads((project / "results" / "metrics.json").read_text())["unet"]["parameters"] == 123


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda r: (r / "models/nested_unet/history.csv").unlink(), "models/nested_unet/history.csv does not exist"),
        (lambda r: (r / "models/unet/train.json").unlink(), "unetpp train --arch unet"),
        (lambda r: (r / "results/nested_unet_ds/metrics.json").unlink(), "unetpp evaluate` for nested_unet_ds"),
        (lambda r: (r / "results/unet/metrics.json").write_text("{not json"), "is not valid JSON"),
        (lambda r: (r / "results/unet/metrics.json").write_text('{"n_images": 3}'), "lacks the key(s) iou_per_image"),
        (
            lambda r: (r / "models/unet/history.csv").write_text("epoch,train_loss\n1,0.5\n"),
            "lacks the key(s) train_iou, val_loss, val_iou",
        ),
        (
            lambda r: (r / "models/unet/train.json").write_text((r / "models/nested_unet/train.json").read_text()),
            "written for arch 'nested_unet', not 'unet'",
        ),
    ],
)
def test_bad_inputs_give_clear_errors_and_no_output(project, damage, message):
    damage(project)
    res = run(project, *ARCHS)
    assert res.exit_code == 1, res.output
    assert message in res.output and "Traceback" not in res.output
    assert outputs(project) == []  # results/ holds only the per-arch folders


@pytest.mark.parametrize(
    ("archs", "message"),
    [(("unet", "unet"), "--arch unet given more than once"), (("unet", "segnet"), "unknown --arch segnet")],
)
def test_bad_arch_options(project, archs, message):
    res = run(project, *archs)
    assert res.exit_code == 1 and message in res.output
    assert outputs(project) == []
