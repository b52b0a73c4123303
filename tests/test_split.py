"""unetpp split: deterministic, disjoint, complete, documented rounding, validated fractions."""

from __future__ import annotations

import json
import random

import pytest
from click.testing import CliRunner

from unetpp.cli import main
from unetpp.data.split import make_split, subset_size
from unetpp.errors import UnetppError

IDS_670 = [f"{k:064x}" for k in range(670)]


def check_partition(result: dict, ids: list[str]) -> None:
    train, val, test = result["train"], result["val"], result["test"]
    assert sorted(train + val + test) == sorted(ids)  # complete and, with the length check, disjoint
    assert len(set(train) | set(val) | set(test)) == len(ids) == len(train) + len(val) + len(test)
    for subset in (train, val, test):
        assert subset == sorted(subset)


def test_670_images_at_0_2_gives_134_val():
    result = make_split(IDS_670, 0.2, 0.0, 41)
    assert (len(result["train"]), len(result["val"]), len(result["test"])) == (536, 134, 0)
    check_partition(result, IDS_670)
    result = make_split(IDS_670, 0.2, 0.1, 41)
    assert (len(result["train"]), len(result["val"]), len(result["test"])) == (469, 134, 67)
    check_partition(result, IDS_670)


def test_rounding_is_half_up():
    assert subset_size(670, 0.2) == 134
    assert subset_size(5, 0.5) == 3  # Python's round(2.5) would give 2
    assert subset_size(10, 0.25) == 3
    assert subset_size(10, 0.24) == 2


def test_same_seed_same_split_regardless_of_input_order():
    shuffled = IDS_670[:]
    random.Random(0).shuffle(shuffled)
    assert make_split(shuffled, 0.2, 0.1, 41) == make_split(IDS_670, 0.2, 0.1, 41)
    assert make_split(IDS_670, 0.2, 0.1, 41)["val"] != make_split(IDS_670, 0.2, 0.1, 42)["val"]


def test_split_is_pinned_across_machines():
    """numpy's default_rng (PCG64) stream is stable, so this exact split must come out everywhere."""
    ids = [f"id{k:03d}" for k in range(20)]
    result = make_split(ids, 0.2, 0.1, 41)
    assert result["val"] == ["id005", "id008", "id009", "id012"]
    assert result["test"] == ["id011", "id019"]
    assert len(result["train"]) == 14


@pytest.mark.parametrize(
    "val, test, message",
    [
        (-0.1, 0.0, r"--val-fraction -0\.1 is invalid: it must be in \[0, 1\)"),
        (1.0, 0.0, r"--val-fraction 1\.0 is invalid"),
        (0.2, 1.5, r"--test-fraction 1\.5 is invalid"),
        (float("nan"), 0.0, r"--val-fraction nan is invalid"),
        (0.6, 0.4, r"= 1 leaves no training images; their sum must be below 1"),
        (0.01, 0.0, r"--val-fraction 0\.01 of 20 images rounds to an empty val set"),
        (0.2, 0.02, r"--test-fraction 0\.02 of 20 images rounds to an empty test set"),
    ],
)
def test_bad_fractions(val, test, message):
    with pytest.raises(UnetppError, match=message):
        make_split([f"id{k:03d}" for k in range(20)], val, test, 0)


def test_rounding_that_empties_train_is_refused():
    with pytest.raises(UnetppError, match="leave no training images"):
        make_split(["a", "b"], 0.5, 0.45, 0)


def test_duplicate_ids_refused():
    with pytest.raises(UnetppError, match="duplicate ids"):
        make_split(["a", "a", "b"], 0.3, 0.0, 0)


def test_cli_writes_the_design_format(tmp_path, synthetic_processed_h5, synthetic_split_json):
    out = tmp_path / "split.json"
    result = CliRunner().invoke(
        main,
        ["split", "--in", str(synthetic_processed_h5), "--val-fraction", "0.25", "--seed", "41", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert set(data) == {"seed", "val_fraction", "test_fraction", "train", "val", "test"}
    assert (data["seed"], data["val_fraction"], data["test_fraction"]) == (41, 0.25, 0.0)
    assert (len(data["train"]), len(data["val"]), data["test"]) == (9, 3, [])
    assert data == json.loads(synthetic_split_json.read_text())  # same inputs, same file


def test_cli_errors_leave_no_file(tmp_path, synthetic_processed_h5):
    out = tmp_path / "out" / "split.json"
    runner = CliRunner()
    result = runner.invoke(
        main, ["split", "--in", str(synthetic_processed_h5), "--val-fraction", "1.2", "--out", str(out)]
    )
    assert result.exit_code == 1 and "Error: --val-fraction 1.2 is invalid" in result.output
    result = runner.invoke(main, ["split", "--in", str(tmp_path / "none.h5"), "--out", str(out)])
    assert result.exit_code == 1 and "none.h5 does not exist; run `unetpp preprocess`" in result.output
    assert not out.parent.exists() or list(out.parent.iterdir()) == []
    text = runner.invoke(main, ["split", "--help"]).output
    for option in ("--in", "--val-fraction", "--test-fraction", "--seed", "--out"):
        assert option in text
