"""A seeded train/val(/test) split of the image ids, identical on every machine.

The ids are sorted first and shuffled with numpy.random.default_rng(seed)
(PCG64, whose stream numpy keeps stable), never with Python's hash, so the split
depends only on the set of ids and the seed. Subset sizes are
floor(n * fraction + 0.5) (round half up): 670 ids at 0.2 give 134 val ids.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import h5py
import numpy as np

from unetpp.atomic import atomic_path
from unetpp.errors import UnetppError


def subset_size(n: int, fraction: float) -> int:
    """Round half up, so the count never depends on banker's rounding."""
    return int(math.floor(n * fraction + 0.5))


def validate_fractions(val_fraction: float, test_fraction: float) -> None:
    for name, value in (("--val-fraction", val_fraction), ("--test-fraction", test_fraction)):
        if not (0.0 <= value < 1.0) or math.isnan(value):
            raise UnetppError(f"{name} {value} is invalid: it must be in [0, 1), e.g. 0.2.")
    if val_fraction + test_fraction >= 1.0:
        raise UnetppError(
            f"--val-fraction {val_fraction} + --test-fraction {test_fraction} = {val_fraction + test_fraction:g} "
            "leaves no training images; their sum must be below 1."
        )


def make_split(ids: list[str], val_fraction: float, test_fraction: float, seed: int) -> dict[str, object]:
    """Return the split.json content; each subset's ids are sorted."""
    validate_fractions(val_fraction, test_fraction)
    ordered = sorted(ids)
    if len(set(ordered)) != len(ordered):
        raise UnetppError("the input holds duplicate ids; rerun `unetpp ingest` to rebuild it.")
    n = len(ordered)
    n_val, n_test = subset_size(n, val_fraction), subset_size(n, test_fraction)
    for name, fraction, count in (("val", val_fraction, n_val), ("test", test_fraction, n_test)):
        if fraction > 0 and count == 0:
            raise UnetppError(
                f"--{name}-fraction {fraction} of {n} images rounds to an empty {name} set; "
                f"use a fraction of at least {0.5 / n:.3g} or 0 to have no {name} set."
            )
    if n - n_val - n_test < 1:
        raise UnetppError(
            f"{n} images split as {n_val} val + {n_test} test leave no training images; lower the fractions."
        )
    order = np.random.default_rng(seed).permutation(n)
    shuffled = [ordered[i] for i in order]
    return {
        "seed": seed,
        "val_fraction": val_fraction,
        "test_fraction": test_fraction,
        "train": sorted(shuffled[n_val + n_test :]),
        "val": sorted(shuffled[:n_val]),
        "test": sorted(shuffled[n_val : n_val + n_test]),
    }


def read_ids(path: Path) -> list[str]:
    """The `ids` of an ingest or preprocess HDF5."""
    if not path.exists():
        raise UnetppError(f"{path} does not exist; run `unetpp preprocess` first to create it.")
    try:
        with h5py.File(path, "r") as h5:
            if "ids" not in h5:
                raise UnetppError(
                    f"{path} has no 'ids' dataset; it is not a preprocess output - rerun `unetpp preprocess`."
                )
            return [str(i) for i in h5["ids"].asstr()[()]]
    except OSError as exc:
        raise UnetppError(f"{path} cannot be read as HDF5 ({exc}); it is corrupt - rerun `unetpp preprocess`.") from exc


def split(
    src: str | os.PathLike[str], out: str | os.PathLike[str], val_fraction: float, test_fraction: float, seed: int
) -> dict[str, object]:
    """Split the ids of `src` and write them to `out` as JSON."""
    validate_fractions(val_fraction, test_fraction)
    ids = read_ids(Path(src))
    if not ids:
        raise UnetppError(f"{src} holds no ids; rerun `unetpp ingest` and `unetpp preprocess` on a non-empty dataset.")
    result = make_split(ids, val_fraction, test_fraction, seed)
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return result
