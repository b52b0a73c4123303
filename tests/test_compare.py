"""The paired bootstrap of per-image IoU differences (unetpp.evaluation.compare), on hand-checkable values."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from unetpp.errors import UnetppError
from unetpp.evaluation.compare import compare_archs, paired_bootstrap, two_level_bootstrap

IOU_A = [0.91, 0.72, 0.85, 0.64, 0.99, 0.80, 0.77]


def write_per_image(root: Path, arch: str, seed: int, values: dict[str, float]) -> Path:
    path = root / arch / f"seed{seed}" / "per_image.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "iou", "dice", "intersection", "union", "pred_pixels", "mask_pixels"])
        for image_id, iou in values.items():
            writer.writerow([image_id, iou, 0.5, 1, 2, 1, 1])
    return path


def test_identical_scores_give_zero_and_the_interval_zero_zero():
    stats = paired_bootstrap(np.subtract(IOU_A, IOU_A))
    assert (stats["mean_diff"], stats["ci95_low"], stats["ci95_high"]) == (0.0, 0.0, 0.0)
    assert stats["n_images"] == 7 and stats["resamples"] == 10_000 and stats["bootstrap_seed"] == 0


def test_a_constant_shift_is_the_difference_and_the_whole_interval():
    shifted = [v + 0.05 for v in IOU_A]
    stats = paired_bootstrap(np.subtract(shifted, IOU_A))
    for key in ("mean_diff", "ci95_low", "ci95_high"):
        assert stats[key] == pytest.approx(0.05, abs=1e-12)


def test_a_small_case_matches_a_direct_numpy_computation_with_the_same_seed():
    diffs = np.array([0.03, -0.01, 0.02, 0.0, 0.05])
    stats = paired_bootstrap(diffs)
    draws = np.random.default_rng(0).integers(0, 5, (10_000, 5))
    means = np.array([diffs[row].mean() for row in draws])
    assert stats["mean_diff"] == pytest.approx(0.018)
    assert [stats["ci95_low"], stats["ci95_high"]] == pytest.approx(list(np.percentile(means, [2.5, 97.5])))
    # Plausible for five differences in [-0.01, 0.05]: inside their range, around the mean.
    assert -0.01 <= stats["ci95_low"] < 0.018 < stats["ci95_high"] <= 0.05


def test_agrees_with_scipy_bootstrap_paired_percentile():
    stats_module = pytest.importorskip("scipy.stats")
    import inspect

    if "rng" not in inspect.signature(stats_module.bootstrap).parameters:
        pytest.skip("scipy < 1.15 seeds bootstrap differently")
    a = np.array(IOU_A)
    b = a + np.array([0.02, -0.03, 0.01, 0.04, -0.01, 0.0, 0.03])
    res = stats_module.bootstrap(
        (b, a),
        lambda x, y, axis: np.mean(x - y, axis=axis),
        paired=True,
        vectorized=True,
        method="percentile",
        n_resamples=10_000,
        rng=np.random.default_rng(0),
    )
    stats = paired_bootstrap(b - a)
    assert [stats["ci95_low"], stats["ci95_high"]] == pytest.approx(
        [res.confidence_interval.low, res.confidence_interval.high], abs=1e-12
    )


def test_the_same_seed_gives_the_same_interval_and_another_seed_another():
    diffs = np.random.default_rng(5).normal(0.01, 0.05, 40)
    first, again, other = paired_bootstrap(diffs), paired_bootstrap(diffs), paired_bootstrap(diffs, seed=1)
    assert first == again
    assert (other["ci95_low"], other["ci95_high"]) != (first["ci95_low"], first["ci95_high"])
    assert other["mean_diff"] == first["mean_diff"]


def test_compare_archs_pairs_by_id_per_seed_and_pooled(tmp_path):
    # U-Net's file lists the images in another order: pairing is by id, not by row.
    write_per_image(tmp_path, "unet", 0, {"c": 0.7, "a": 0.5, "b": 0.6})
    write_per_image(tmp_path, "nested_unet", 0, {"a": 0.5, "b": 0.7, "c": 0.9})
    write_per_image(tmp_path, "unet", 1, {"a": 0.5, "b": 0.6, "c": 0.7})
    write_per_image(tmp_path, "nested_unet", 1, {"a": 0.5, "b": 0.6, "c": 0.7})
    result = compare_archs(["unet", "nested_unet"], [0, 1], tmp_path)
    assert list(result) == ["nested_unet_vs_unet"]  # no nested_unet_ds: that comparison is skipped
    seeds, pooled = result["nested_unet_vs_unet"]["seeds"], result["nested_unet_vs_unet"]["pooled"]
    assert seeds["0"]["mean_diff"] == pytest.approx(0.1)  # (0 + 0.1 + 0.2) / 3
    assert seeds["1"] == paired_bootstrap([0.0, 0.0, 0.0])
    # Pooled: per-image IoU averaged over seeds first, differences (0, 0.05, 0.1).
    assert pooled == pytest.approx({**paired_bootstrap([0.0, 0.05, 0.1]), "n_seeds": 2}, abs=1e-12)


def test_two_level_resamples_seeds_so_seed_to_seed_spread_widens_the_interval(tmp_path):
    # Every image of a seed scores the same, so resampling images changes nothing: UNet++ scores 0.6 with seed 0
    # and 0.7 with seed 1, U-Net 0.6 with both. Pooled: each image averages to +0.05, the interval [0.05, 0.05].
    # Two-level: UNet++'s two drawn seeds average 0.6, 0.65 or 0.7 (1/4, 1/2, 1/4), so [0, +0.1].
    for seed, nested in ((0, 0.6), (1, 0.7)):
        write_per_image(tmp_path, "unet", seed, {"a": 0.6, "b": 0.6, "c": 0.6})
        write_per_image(tmp_path, "nested_unet", seed, {"a": nested, "b": nested, "c": nested})
    result = compare_archs(["unet", "nested_unet"], [0, 1], tmp_path)["nested_unet_vs_unet"]
    pooled, two_level = result["pooled"], result["two_level"]
    assert [pooled["ci95_low"], pooled["ci95_high"]] == pytest.approx([0.05, 0.05], abs=1e-12)
    assert [two_level["mean_diff"], two_level["ci95_low"], two_level["ci95_high"]] == pytest.approx(
        [0.05, 0.0, 0.1], abs=1e-12
    )
    assert (two_level["n_seeds"], two_level["n_images"], two_level["resamples"], two_level["bootstrap_seed"]) == (
        2, 3, 10_000, 0
    )


def test_two_level_matches_a_direct_loop_over_the_same_draws():
    gen = np.random.default_rng(3)
    arch = gen.normal(0.8, 0.1, (4, 9))
    base = gen.normal(0.8, 0.1, (4, 9))
    stats = two_level_bootstrap(arch, base, resamples=500, seed=7)
    rng = np.random.default_rng(7)
    seeds_a, seeds_b = rng.integers(0, 4, (500, 4)), rng.integers(0, 4, (500, 4))
    images = rng.integers(0, 9, (500, 9))
    means = [
        (arch[sa].mean(axis=0) - base[sb].mean(axis=0))[im].mean() for sa, sb, im in zip(seeds_a, seeds_b, images)
    ]
    assert [stats["ci95_low"], stats["ci95_high"]] == pytest.approx(list(np.quantile(means, [0.025, 0.975])))
    assert stats["mean_diff"] == pytest.approx(float((arch - base).mean()))


def test_when_seed_noise_dominates_the_two_level_interval_is_the_wider():
    gen = np.random.default_rng(11)
    image_effect = gen.normal(0.8, 0.05, 100)
    # Six seeds per arch: each shifts all images by N(0, 0.02); image-level noise of the difference 0.002.
    base = image_effect + gen.normal(0, 0.02, (6, 1)) + gen.normal(0, 0.002, (6, 100))
    arch = image_effect + gen.normal(0, 0.02, (6, 1)) + gen.normal(0, 0.002, (6, 100))
    pooled = paired_bootstrap(arch.mean(axis=0) - base.mean(axis=0))
    two_level = two_level_bootstrap(arch, base)
    assert two_level["mean_diff"] == pytest.approx(pooled["mean_diff"], abs=1e-12)
    pooled_width = pooled["ci95_high"] - pooled["ci95_low"]
    two_level_width = two_level["ci95_high"] - two_level["ci95_low"]
    # Pooled: sd of a mean of 100 image differences of sd ~0.002/sqrt(3), about 0.0001, so ~0.0005 wide; two-level:
    # sd of a mean of 6 seed shifts per arch, ~0.02*sqrt(2/6) = 0.012, so ~0.04 wide.
    assert pooled_width < 0.001 < 0.02 < two_level_width < 0.08


def test_two_level_is_deterministic_given_its_seed():
    gen = np.random.default_rng(2)
    arch, base = gen.normal(0.8, 0.1, (3, 20)), gen.normal(0.8, 0.1, (3, 20))
    first, again, other = two_level_bootstrap(arch, base), two_level_bootstrap(arch, base), two_level_bootstrap(
        arch, base, seed=1
    )
    assert first == again and first["bootstrap_seed"] == 0 and other["bootstrap_seed"] == 1
    assert (other["ci95_low"], other["ci95_high"]) != (first["ci95_low"], first["ci95_high"])
    with pytest.raises(ValueError, match="one shape"):
        two_level_bootstrap(arch, base[:2])


def test_no_unet_means_no_comparison_and_no_file_read(tmp_path):
    assert compare_archs(["nested_unet", "nested_unet_ds"], [0], tmp_path) == {}


def test_different_ids_are_refused_naming_both_files(tmp_path):
    unet = write_per_image(tmp_path, "unet", 0, {"a": 0.5, "b": 0.6})
    nested = write_per_image(tmp_path, "nested_unet", 0, {"a": 0.5, "x": 0.6})
    with pytest.raises(UnetppError) as err:
        compare_archs(["unet", "nested_unet"], [0], tmp_path)
    message = str(err.value)
    assert str(unet) in message and str(nested) in message
    assert "do not score the same images" in message and "e.g. b" in message and "e.g. x" in message


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("id,dice\na,0.5\n", "lacks the column(s) iou"),
        ("id,iou\na,0.5\na,0.6\n", "lists image a twice"),
        ("id,iou\na,nan\n", "non-finite iou (nan) for image a"),
        ("id,iou\na,high\n", "non-numeric iou for image a"),
        ("id,iou\n", "has no images"),
    ],
)
def test_bad_per_image_files_are_named(tmp_path, content, message):
    write_per_image(tmp_path, "unet", 0, {"a": 0.5})
    path = tmp_path / "nested_unet" / "seed0" / "per_image.csv"
    path.parent.mkdir(parents=True)
    path.write_text(content)
    with pytest.raises(UnetppError, match="per_image.csv") as err:
        compare_archs(["unet", "nested_unet"], [0], tmp_path)
    assert message in str(err.value)
