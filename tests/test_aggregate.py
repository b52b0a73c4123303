"""`unetpp aggregate`: metrics.json, summary.md and curves.png from every arch's files."""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from helpers_inference import TINY_FILTERS
from unetpp.cli import main
from unetpp.evaluation.aggregate import STAGE1_TRAIN_CONTENT_SHA256
from unetpp.models import build_model, count_parameters
from unetpp.training.outputs import HISTORY_COLUMNS

ARCHS = ("unet", "nested_unet", "nested_unet_ds")
PER_IMAGE_OFFSETS = (-0.02, -0.01, 0.0, 0.01, 0.02)


HISTORY_HEADER = list(HISTORY_COLUMNS)  # exactly what `unetpp train` writes


def write_arch(root: Path, arch: str, k: int, epochs: int = 3, seed: int = 0) -> None:
    """history.csv and train.json as `unetpp train` writes them, metrics.json as `unetpp evaluate` does.

    Seed s adds 0.002 * s to every IoU and Dice, so two seeds differ by a known amount.
    """
    model_dir = root / "models" / arch / f"seed{seed}"
    model_dir.mkdir(parents=True)
    shift = 0.002 * seed
    with open(model_dir / "history.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HISTORY_HEADER)
        for e in range(1, epochs + 1):
            val = 0.45 + 0.1 * e + 0.01 * k + shift
            writer.writerow([e, 1.0 / e, 0.5 + 0.1 * e, 1.1 / e, val - 0.01, val - 0.02, val, 3e-4, 2.5])
    best = 0.45 + 0.1 * epochs + 0.01 * k + shift
    train = {
        "arch": arch,
        "best_epoch": epochs,
        "best_val_iou": best,
        "selection_metric": "batch_pooled",
        "best_val_iou_per_image": best - 0.01,
        "best_val_iou_pooled": best - 0.02,
        "best_val_iou_batch_pooled": best,
        "epochs_run": epochs,
        "wall_seconds": 100.0 * (k + 1),
        "device": "cpu",
        "precision": "fp32",
        "torch_version": "2.13.0",
        "settings": {"arch": arch, "model_kwargs": {"filters": list(TINY_FILTERS)}},
    }
    (model_dir / "train.json").write_text(json.dumps(train))
    result_dir = root / "results" / arch / f"seed{seed}"
    result_dir.mkdir(parents=True)
    metrics = {
        "n_images": 134,
        "iou_per_image": 0.80 + 0.01 * k + shift,
        "iou_pooled": 0.82 + 0.01 * k + shift,
        "iou_batch_pooled": 0.83 + 0.01 * k + shift,
        "dice_per_image": 0.88 + 0.01 * k + shift,
        "dice_pooled": 0.9 + shift,
        "dice_batch_pooled": 0.91 + shift,
        "batch_size": 16,
    }
    (result_dir / "metrics.json").write_text(json.dumps(metrics))
    # per_image.csv: five images around iou_per_image, so arch k beats U-Net by 0.01 * k on every image.
    with open(result_dir / "per_image.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "iou", "dice", "intersection", "union", "pred_pixels", "mask_pixels"])
        for i, offset in enumerate(PER_IMAGE_OFFSETS):
            writer.writerow([f"img{i}", metrics["iou_per_image"] + offset, 0.9, 10, 12, 11, 11])


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    for k, arch in enumerate(ARCHS):
        write_arch(tmp_path, arch, k)
    return tmp_path


def run(
    root: Path,
    *archs: str,
    out: str = "results",
    seeds: tuple[int, ...] = (0,),
    content_sha256: str | None = STAGE1_TRAIN_CONTENT_SHA256,
):
    args = ["aggregate", "--models-dir", root / "models", "--results-dir", root / "results", "--out", root / out]
    if content_sha256 is not None:
        args += ["--content-sha256", content_sha256]
    for arch in archs:
        args += ["--arch", arch]
    for seed in seeds:
        args += ["--seed", seed]
    return CliRunner().invoke(main, [str(a) for a in args])


def summary_rows(root: Path) -> tuple[list[str], dict[str, list[str]]]:
    """(header, {arch: cells}) of the table in summary.md."""
    lines = (root / "results" / "summary.md").read_text().splitlines()
    start = next(k for k, line in enumerate(lines) if line.startswith("|"))
    table = list(itertools.takewhile(lambda line: line.startswith("|"), lines[start:]))
    header = [c.strip() for c in table[0].strip("|").split("|")]
    rows = {line.split("`")[1]: [c.strip() for c in line.strip("|").split("|")] for line in table[2:]}
    return header, rows


def outputs(root: Path, out: str = "results") -> list[str]:
    return sorted(p.name for p in (root / out).iterdir() if p.is_file()) if (root / out).exists() else []


@pytest.mark.parametrize("content_sha256", [None, "any", "0" * 64])
def test_other_data_has_no_dsb2018_title_or_published_column(project, content_sha256):
    res = run(project, *ARCHS, content_sha256=content_sha256)
    assert res.exit_code == 0, res.output
    summary = (project / "results" / "summary.md").read_text()
    header, rows = summary_rows(project)
    assert summary.splitlines()[0] == "# U-Net vs UNet++"
    assert "DSB2018" not in summary and "Published" not in summary and "0.8347" not in summary
    assert len(rows["unet"]) == len(header) and "IoU batch-pooled" in header


def test_writes_every_file_with_published_column(project):
    res = run(project, *ARCHS)
    assert res.exit_code == 0, res.output
    assert outputs(project) == ["curves.png", "headline.json", "metrics.json", "summary.html", "summary.md"]
    metrics = json.loads((project / "results" / "metrics.json").read_text())
    assert list(metrics) == [*ARCHS, "comparisons"]
    assert all(
        set(metrics[arch]) == {"mean", "sd", "seeds"} and list(metrics[arch]["seeds"]) == ["0"] for arch in ARCHS
    )
    # One seed: the mean is that seed's value and every sd is null.
    assert metrics["nested_unet"]["mean"]["iou_per_image"] == pytest.approx(0.81)
    assert metrics["nested_unet"]["seeds"]["0"]["iou_per_image"] == pytest.approx(0.81)
    assert set(metrics["unet"]["sd"].values()) == {None}
    assert set(metrics["unet"]["sd"]) == set(metrics["unet"]["mean"]) == set(metrics["unet"]["seeds"]["0"])
    assert metrics["nested_unet_ds"]["mean"]["iou_batch_pooled"] == pytest.approx(0.85)
    assert metrics["nested_unet_ds"]["mean"]["best_val_iou_per_image"] == pytest.approx(0.76)
    unet = metrics["unet"]["seeds"]["0"]
    assert unet["train_seconds"] == 100.0 and unet["epochs_run"] == 3
    assert unet["train_seconds_median_epoch"] == pytest.approx(3 * 2.5)  # three epochs of 2.5 s
    assert unet["best_epoch"] == 3 and unet["n_images"] == 134
    assert unet["best_val_iou"] == pytest.approx(0.75) and unet["best_val_iou_pooled"] == pytest.approx(0.73)
    for arch in ARCHS:  # recounted from the arch and model_kwargs in train.json
        assert metrics[arch]["seeds"]["0"]["parameters"] == count_parameters(build_model(arch, filters=TINY_FILTERS))
    parameters = {arch: metrics[arch]["mean"]["parameters"] for arch in ARCHS}
    assert parameters["nested_unet_ds"] - parameters["nested_unet"] == 3 * (4 + 1)
    summary = (project / "results" / "summary.md").read_text()
    header, rows = summary_rows(project)
    assert header.index("Published IoU") == header.index("IoU batch-pooled") + 1
    assert rows["unet"][header.index("Published IoU")] == "0.8347"
    assert rows["nested_unet"][header.index("Published IoU")] == "0.8321"
    assert rows["nested_unet_ds"][header.index("Published IoU")] == "0.8367"
    assert rows["nested_unet"][header.index("IoU per image")] == "0.8100"
    assert rows["unet"][header.index("Seeds")] == "1 (seed 0)"  # a bare "0" read as "zero seeds"
    assert rows["nested_unet_ds"][header.index("Training time")] == "5.0 min"
    assert "**IoU batch-pooled**" in summary and "**Published IoU**" in summary
    assert summary.startswith("# U-Net vs UNet++ on DSB2018\n")
    png = (project / "results" / "curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_rows_follow_the_arch_order_and_subsets_work(project):
    res = run(project, "nested_unet_ds", "unet", out="two")
    assert res.exit_code == 0, res.output
    metrics = json.loads((project / "two" / "metrics.json").read_text())
    assert list(metrics) == ["nested_unet_ds", "unet", "comparisons"]
    assert list(metrics["comparisons"]) == ["nested_unet_ds_vs_unet"]  # nested_unet not aggregated: skipped


def test_unetpp_against_unet_image_by_image(project):
    res = run(project, *ARCHS)
    assert res.exit_code == 0, res.output
    comparisons = json.loads((project / "results" / "metrics.json").read_text())["comparisons"]
    assert list(comparisons) == ["nested_unet_vs_unet", "nested_unet_ds_vs_unet"]
    # Every image of arch k scores 0.01 * k above U-Net's: the difference and both interval ends.
    for name, diff in (("nested_unet_vs_unet", 0.01), ("nested_unet_ds_vs_unet", 0.02)):
        for stats in (comparisons[name]["seeds"]["0"], comparisons[name]["pooled"]):
            assert [stats["mean_diff"], stats["ci95_low"], stats["ci95_high"]] == pytest.approx([diff] * 3, abs=1e-12)
            assert (stats["n_images"], stats["resamples"], stats["bootstrap_seed"]) == (5, 10_000, 0)
    assert comparisons["nested_unet_vs_unet"]["pooled"]["n_seeds"] == 1
    summary = (project / "results" / "summary.md").read_text()
    assert "## UNet++ against U-Net, image by image" in summary
    assert "| UNet++ (`nested_unet`) − U-Net (`unet`) | seed 0 | 5 | +0.0100 | [+0.0100, +0.0100] |" in summary
    assert "two_level" not in comparisons["nested_unet_vs_unet"] and "two-level" not in summary  # needs 2 seeds
    assert "With one training seed the interval covers only the choice of images, not training noise" in summary
    assert "pooled" not in summary.split("image by image")[1]  # one seed: no pooled row


def test_no_unet_no_comparison(project):
    res = run(project, "nested_unet", "nested_unet_ds")
    assert res.exit_code == 0, res.output
    assert "comparisons" not in json.loads((project / "results" / "metrics.json").read_text())
    assert "image by image" not in (project / "results" / "summary.md").read_text()


def test_several_seeds_give_mean_and_sample_sd(project):
    for k, arch in enumerate(ARCHS):
        write_arch(project, arch, k, seed=1)
        write_arch(project, arch, k, seed=2)
    res = run(project, *ARCHS, seeds=(0, 1, 2))
    assert res.exit_code == 0, res.output
    metrics = json.loads((project / "results" / "metrics.json").read_text())
    unet = metrics["unet"]
    assert list(unet["seeds"]) == ["0", "1", "2"]
    assert unet["seeds"]["2"]["iou_per_image"] == pytest.approx(0.804)
    # Seeds shift IoU by 0, 0.002, 0.004: mean +0.002, sample sd (ddof=1) 0.002.
    assert unet["mean"]["iou_per_image"] == pytest.approx(0.802)
    assert unet["sd"]["iou_per_image"] == pytest.approx(0.002)
    assert unet["sd"]["epochs_run"] == 0.0 and unet["mean"]["epochs_run"] == 3.0
    header, rows = summary_rows(project)
    assert rows["nested_unet"][header.index("IoU per image")] == "0.8120 ± 0.0020"
    assert rows["nested_unet"][header.index("Seeds")] == "3 (seeds 0, 1, 2)"
    assert rows["nested_unet"][header.index("Epochs run")] == "3.0 ± 0.0"
    assert rows["unet"][header.index("Published IoU")] == "0.8347"
    pooled = metrics["comparisons"]["nested_unet_vs_unet"]["pooled"]
    assert pooled["n_seeds"] == 3 and pooled["mean_diff"] == pytest.approx(0.01)
    assert list(metrics["comparisons"]["nested_unet_vs_unet"]["seeds"]) == ["0", "1", "2"]
    # Two-level: every seed shifts both archs' IoU by 0.002 * seed, but the seeds are drawn for each arch on its
    # own, so the difference is 0.01 + 0.002 * (mean of 3 drawn seeds - mean of 3 others); its 2.5% and 97.5%
    # points are a sum difference of -4 and +4 (P(<= -5) = 0.0096, P(<= -4) = 0.0384 of 729 equally likely pairs).
    two_level = metrics["comparisons"]["nested_unet_vs_unet"]["two_level"]
    assert [two_level["mean_diff"], two_level["ci95_low"], two_level["ci95_high"]] == pytest.approx(
        [0.01, 0.01 - 0.008 / 3, 0.01 + 0.008 / 3], abs=1e-12
    )
    assert (two_level["n_seeds"], two_level["n_images"], two_level["resamples"]) == (3, 5, 10_000)
    summary = (project / "results" / "summary.md").read_text()
    assert "| pooled: IoU averaged over seeds 0, 1, 2 | 5 | +0.0100 | [+0.0100, +0.0100] |" in summary
    assert "| two-level: seeds 0, 1, 2 and images resampled | 5 | +0.0100 | [+0.0073, +0.0127] |" in summary
    assert "so it covers the choice of\nimages, not training noise" in summary
    assert "so it covers training noise and the choice of\nimages together" in summary
    # The headline: sd with several seeds, and the two-level interval (training noise included).
    headline = json.loads((project / "results" / "headline.json").read_text())
    assert headline["unet"] == {"iou_batch": 0.832, "sd_batch": 0.002, "iou_image": 0.802, "sd_image": 0.002}
    assert headline["nested_unet"]["diff"] == 0.01
    assert (headline["nested_unet"]["ci_low"], headline["nested_unet"]["ci_high"]) == (0.0073, 0.0127)


def test_headline_holds_the_compared_figures_rounded_one_file_per_arch_too(project):
    res = run(project, *ARCHS)
    assert res.exit_code == 0, res.output
    headline = json.loads((project / "results" / "headline.json").read_text())
    assert list(headline) == list(ARCHS)
    # One seed: no sd; the mean of the batch-pooled and the per-image IoU, as summary.md rounds them.
    assert headline["unet"] == {"iou_batch": 0.83, "iou_image": 0.8}
    # Every image of arch k scores 0.01 * k above U-Net's: the difference and both ends of its interval.
    assert headline["nested_unet_ds"] == {
        "iou_batch": 0.85, "iou_image": 0.82, "diff": 0.02, "ci_low": 0.02, "ci_high": 0.02
    }
    folder = project / "results" / "headline"
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{arch}.json" for arch in ARCHS)
    for arch in ARCHS:
        assert json.loads((folder / f"{arch}.json").read_text()) == headline[arch]
    # Aggregated again with fewer archs, the folder holds only those (no stale row).
    res = run(project, "unet", "nested_unet")
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in folder.iterdir()) == ["nested_unet.json", "unet.json"]


def test_summary_html_renders_the_tables_of_summary_md(project):
    res = run(project, *ARCHS)
    assert res.exit_code == 0, res.output
    page = (project / "results" / "summary.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<title>U-Net vs UNet++ on DSB2018</title>" in page
    assert page.index("<h1>U-Net vs UNet++ on DSB2018</h1>") < page.index("<table>")
    header, rows = summary_rows(project)
    right = '<th style="text-align:right">'
    assert "<thead>\n<tr>\n<th style=\"text-align:left\">Architecture</th>\n" + "".join(
        f"{right}{h}</th>\n" for h in header[1:]) in page
    assert '<td style="text-align:left">UNet++ (<code>nested_unet</code>)</td>' in page
    assert f'<td style="text-align:right">{rows["nested_unet"][header.index("IoU per image")]}</td>' in page
    assert page.count("<table>") == 2  # the summary and the comparisons
    assert "<li><strong>IoU per image</strong>: intersection over union" in page
    assert "UNet++ (<code>nested_unet</code>) − U-Net (<code>unet</code>)</td>" in page
    text = page.split("</style>")[1]
    # No markdown left unrendered (Dice's note writes |P| for a pixel count).
    assert "**" not in text and "`" not in text and "\n|" not in text and " | " not in text


def test_a_missing_seed_is_named(project):
    res = run(project, *ARCHS, seeds=(0, 1))
    assert res.exit_code == 1, res.output
    assert "models/unet/seed1/train.json does not exist" in res.output
    assert "unetpp train --arch unet --seed 1" in res.output
    assert outputs(project) == []


def test_curves_use_the_selection_metric_with_batch_pooled_as_fallback(project):
    path = project / "models" / "unet" / "seed0" / "train.json"
    train = json.loads(path.read_text())
    del train["selection_metric"]
    path.write_text(json.dumps(train))
    nested = project / "models" / "nested_unet" / "seed0" / "train.json"
    nested.write_text(json.dumps({**json.loads(nested.read_text()), "selection_metric": "per_image"}))
    from unetpp.evaluation.aggregate import collect, curves_figure

    results = [collect(arch, 0, project / "models", project / "results") for arch in ("unet", "nested_unet")]
    assert [r.selection_metric for r in results] == ["batch_pooled", "per_image"]
    iou_axis = curves_figure(results).axes[1]
    lines = {line.get_label(): list(line.get_ydata()) for line in iou_axis.get_lines()}
    assert lines["U-Net (1 seed)"] == pytest.approx([0.55, 0.65, 0.75])  # val_iou_batch_pooled
    assert lines["UNet++ (1 seed)"] == pytest.approx([0.55, 0.65, 0.75])  # val_iou_per_image (k=1: -0.01)
    dots = [list(line.get_ydata()) for line in iou_axis.get_lines() if line.get_marker() == "o"]
    assert dots == [pytest.approx([0.75]), pytest.approx([0.75])]  # the kept epoch, on each run's own curve
    assert not iou_axis.collections  # one seed: no band
    # Epoch ticks are whole numbers (3 epochs would otherwise get ticks at 1.25, 1.5, ...).
    figure = curves_figure(results)
    figure.canvas.draw()
    for axis in figure.axes[:2]:
        ticks = [t for t in axis.get_xticks() if axis.get_xlim()[0] <= t <= axis.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks


def test_curves_show_the_mean_over_seeds_with_a_min_max_band_and_three_legend_entries(project):
    from unetpp.evaluation.aggregate import collect, curves_figure

    for k, arch in enumerate(ARCHS):
        write_arch(project, arch, k, seed=1, epochs=4)  # seed 1 trains one epoch longer
        write_arch(project, arch, k, seed=2)
    results = [collect(a, s, project / "models", project / "results") for a in ARCHS for s in (0, 1, 2)]
    figure = curves_figure(results)
    iou_axis = figure.axes[1]
    assert [t.get_text() for t in iou_axis.get_legend().get_texts()] == [
        "U-Net (3 seeds)", "UNet++ (3 seeds)", "UNet++ (deep supervision) (3 seeds)"
    ]
    unet = next(line for line in iou_axis.get_lines() if line.get_label() == "U-Net (3 seeds)")
    # Val IoU 0.45 + 0.1 * epoch + 0.002 * seed: mean over seeds 0, 1, 2 while all three train (epochs 1-3).
    assert list(unet.get_xdata()) == [1, 2, 3, 4]
    assert list(unet.get_ydata())[:3] == pytest.approx([0.552, 0.652, 0.752]) and np.isnan(unet.get_ydata()[3])
    faint = [
        line for line in iou_axis.get_lines()
        if line.get_alpha() == 0.35 and line.get_color() == unet.get_color() and line.get_linestyle() == "-"
    ]
    assert len(faint) == 1 and list(faint[0].get_ydata()) == pytest.approx([0.752, 0.852])  # seed 1 alone at 4
    band = iou_axis.collections[0].get_paths()[0].vertices
    assert band[:, 1].min() == pytest.approx(0.55) and band[:, 1].max() == pytest.approx(0.852)  # min-max
    dots = [line for line in iou_axis.get_lines() if line.get_marker() == "o"]
    assert [list(d.get_xdata()) for d in dots][0] == [3, 4, 3]  # each seed's kept epoch


@pytest.mark.parametrize("n_seeds", [1, 3, 6, 10])
def test_curves_stay_laid_out_whatever_the_number_of_seeds(tmp_path, n_seeds):
    import warnings

    from unetpp.evaluation.aggregate import collect, curves_figure

    for k, arch in enumerate(ARCHS):
        for seed in range(n_seeds):
            write_arch(tmp_path, arch, k, seed=seed, epochs=60 + 7 * seed)
    results = [collect(a, s, tmp_path / "models", tmp_path / "results") for a in ARCHS for s in range(n_seeds)]
    figure = curves_figure(results)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. "constrained_layout not applied"
        figure.savefig(tmp_path / "curves.png")
    assert len(figure.axes[1].get_legend().get_texts()) == 3
    assert len(figure.axes[1].collections) == (3 if n_seeds > 1 else 0)  # one band per arch


def test_parameters_from_train_json_when_present(project):
    path = project / "models" / "unet" / "seed0" / "train.json"
    train = json.loads(path.read_text())
    train["parameters"] = 123
    path.write_text(json.dumps(train))
    assert run(project, "unet").exit_code == 0
    unet = json.loads((project / "results" / "metrics.json").read_text())["unet"]
    assert unet["seeds"]["0"]["parameters"] == 123 and unet["mean"]["parameters"] == 123


def test_input_size_from_the_evaluation_else_from_train_json(project):
    """Metrics evaluated before `evaluate` wrote "size" (the published reference) take train.json's image_size."""
    path = project / "models" / "unet" / "seed0" / "train.json"
    train = json.loads(path.read_text())
    train["settings"]["image_size"] = 96
    path.write_text(json.dumps(train))
    metrics_path = project / "results" / "nested_unet" / "seed0" / "metrics.json"
    metrics_path.write_text(json.dumps({**json.loads(metrics_path.read_text()), "size": 192}))
    assert run(project, "unet", "nested_unet", "nested_unet_ds").exit_code == 0
    document = json.loads((project / "results" / "metrics.json").read_text())
    assert document["unet"]["mean"]["size"] == 96 and document["nested_unet"]["mean"]["size"] == 192
    assert "size" not in document["nested_unet_ds"]["mean"]  # neither source has it: nothing invented


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            lambda r: (r / "models/nested_unet/seed0/history.csv").unlink(),
            "models/nested_unet/seed0/history.csv does not exist",
        ),
        (lambda r: (r / "models/unet/seed0/train.json").unlink(), "unetpp train --arch unet --seed 0"),
        (
            lambda r: (r / "results/nested_unet_ds/seed0/metrics.json").unlink(),
            "unetpp evaluate` for nested_unet_ds seed 0",
        ),
        (lambda r: (r / "results/unet/seed0/metrics.json").write_text("{not json"), "is not valid JSON"),
        (
            lambda r: (r / "results/unet/seed0/metrics.json").write_text('{"n_images": 3}'),
            "lacks the key(s) iou_per_image",
        ),
        (
            lambda r: (r / "models/unet/seed0/history.csv").write_text("epoch,train_loss,val_iou\n1,0.5,0.5\n"),
            "lacks the key(s) train_iou, val_loss, val_iou_per_image, val_iou_pooled, val_iou_batch_pooled",
        ),
        (
            lambda r: (r / "models/unet/seed0/train.json").write_text(
                (r / "models/nested_unet/seed0/train.json").read_text()
            ),
            "written for arch 'nested_unet', not 'unet'",
        ),
        (
            lambda r: (r / "models/unet/seed0/train.json").write_text(
                (r / "models/unet/seed0/train.json").read_text().replace('"batch_pooled"', '"median"')
            ),
            "selection_metric 'median', not one of per_image, pooled, batch_pooled",
        ),
        (
            lambda r: (r / "results/unet/seed0/per_image.csv").unlink(),
            "results/unet/seed0/per_image.csv does not exist",
        ),
        (
            lambda r: (r / "results/nested_unet/seed0/per_image.csv").write_text(
                (r / "results/nested_unet/seed0/per_image.csv").read_text().replace("img4", "other")
            ),
            "/results/unet/seed0/per_image.csv and ",
        ),
        (
            lambda r: (r / "results/nested_unet/seed0/per_image.csv").write_text(
                (r / "results/nested_unet/seed0/per_image.csv").read_text().replace("img4", "other")
            ),
            "/results/nested_unet/seed0/per_image.csv do not score the same images (1 id(s) only in the first, "
            "e.g. img4; 1 only in the second, e.g. other)",
        ),
    ],
)
def test_bad_inputs_give_clear_errors_and_no_output(project, damage, message):
    damage(project)
    res = run(project, *ARCHS)
    assert res.exit_code == 1, res.output
    assert message in res.output and "Traceback" not in res.output
    assert outputs(project) == []  # results/ holds only the per-arch folders
    assert not (project / "results" / "headline").exists()


@pytest.mark.parametrize(
    ("archs", "message"),
    [(("unet", "unet"), "--arch unet given more than once"), (("unet", "segnet"), "unknown --arch segnet")],
)
def test_bad_arch_options(project, archs, message):
    res = run(project, *archs)
    assert res.exit_code == 1 and message in res.output
    assert outputs(project) == []


def test_a_seed_given_twice_is_refused(project):
    res = run(project, "unet", seeds=(0, 0))
    assert res.exit_code == 1 and "--seed 0 given more than once" in res.output
    assert outputs(project) == []


def test_the_median_epoch_leaves_pauses_out_of_the_training_time(project):
    """A training stopped for 15 minutes in its second epoch: wall time counts the pause, epochs x median not."""
    history = project / "models" / "unet" / "seed0" / "history.csv"
    rows = [line.split(",") for line in history.read_text().splitlines()]
    column = rows[0].index("seconds")
    for row, seconds in zip(rows[1:], ("2.5", "902.5", "2.7"), strict=True):
        row[column] = seconds
    history.write_text("\n".join(",".join(row) for row in rows) + "\n")
    assert run(project, *ARCHS).exit_code == 0
    unet = json.loads((project / "results" / "metrics.json").read_text())["unet"]["mean"]
    assert unet["train_seconds_median_epoch"] == pytest.approx(3 * 2.7)
