"""Load the processed HDF5 and one split subset into memory, refusing bad files early.

Training and prediction both hold a whole subset in memory as uint8 arrays
(a few tens of MB at 96x96) and batch by index, so this module reads the file
once, checks everything a later stage would trip over, and returns plain
arrays in the order the split lists the ids (that order decides the
``batch_pooled`` metric, so every stage must agree on it).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from unetpp.choices import SUBSETS
from unetpp.errors import UnetppError


@dataclass(frozen=True)
class ProcessedSet:
    """One subset of the processed data, rows in split order."""

    images: np.ndarray  # (N, S, S, 3) uint8
    masks: np.ndarray  # (N, S, S) uint8, 0/1
    ids: list[str]
    size: int  # S
    source: str  # the HDF5 path it came from, for messages

    def __len__(self) -> int:
        return len(self.ids)


def file_sha256(path: str | os.PathLike[str], chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes (used to fingerprint training inputs)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()


def _decode_ids(raw: np.ndarray) -> list[str]:
    return [x.decode("utf-8") if isinstance(x, bytes) else str(x) for x in raw.tolist()]


def _refuse_ingest_output(h5: Any, path: Path) -> None:
    """An ingest file (per-image groups, native sizes) is a step too early, not a corrupt file."""
    import h5py

    if isinstance(h5.get("images"), h5py.Group):
        raise UnetppError(
            f"{path} is an ingest output (one native-size array per image), not processed data: run "
            f"`unetpp preprocess --in {path} --out <processed.h5>` first and pass its output (e.g. "
            "data/processed/dsb2018_96.h5)"
        )


def _refuse_raw_archive(path: Path) -> None:
    """A zip (raw data in the Kaggle layout, e.g. `unetpp synth`'s) is the wrong kind of file, not a corrupt one."""
    import zipfile

    if zipfile.is_zipfile(path):
        raise UnetppError(
            f"{path} is a zip archive (raw data, e.g. stage1_train.zip or `unetpp synth`'s), not processed data: "
            f"run `unetpp ingest --raw {path} --out <interim.h5>` and `unetpp preprocess --in <interim.h5> "
            "--out <processed.h5>` first and pass the processed file (e.g. data/processed/dsb2018_96.h5), "
            "or run the whole pipeline (`snakemake`)"
        )


def read_processed_file(h5_path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray, list[str], int]:
    """Read and validate the whole processed file: (images, masks, ids, size)."""
    import h5py  # local: keeps `import unetpp.data.processed` light for the CLI

    path = Path(h5_path)
    fix = "rerun `unetpp preprocess` (or `snakemake`/`dvc repro`) to rebuild it"
    if not path.is_file():
        raise UnetppError(f"processed data file {path} does not exist: {fix}")
    _refuse_raw_archive(path)
    try:
        with h5py.File(path, "r") as f:
            _refuse_ingest_output(f, path)
            missing = [k for k in ("images", "masks", "ids") if k not in f]
            if missing:
                raise UnetppError(f"processed data file {path} has no dataset(s) {', '.join(missing)}: {fix}")
            images = f["images"][()]
            masks = f["masks"][()]
            ids = _decode_ids(f["ids"][()])
            size_attr = f.attrs.get("size")
    except UnetppError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise UnetppError(f"processed data file {path} cannot be read as HDF5 ({exc}): it is corrupt; {fix}") from exc

    if images.ndim != 4 or images.shape[3] != 3 or images.shape[1] != images.shape[2]:
        raise UnetppError(f"processed data file {path}: 'images' has shape {images.shape}, expected (N, S, S, 3); {fix}")
    n, size = images.shape[0], images.shape[1]
    if images.dtype != np.uint8 or masks.dtype != np.uint8:
        raise UnetppError(
            f"processed data file {path}: images/masks are {images.dtype}/{masks.dtype}, expected uint8; {fix}"
        )
    if masks.shape != (n, size, size):
        raise UnetppError(f"processed data file {path}: 'masks' has shape {masks.shape}, expected {(n, size, size)}; {fix}")
    if len(ids) != n:
        raise UnetppError(f"processed data file {path}: {len(ids)} ids for {n} images; {fix}")
    if len(set(ids)) != n:
        raise UnetppError(f"processed data file {path}: 'ids' contains duplicates; {fix}")
    if n == 0:
        raise UnetppError(f"processed data file {path} holds no images; {fix}")
    if size_attr is not None and int(size_attr) != size:
        raise UnetppError(f"processed data file {path}: attribute size={size_attr} but images are {size}x{size}; {fix}")
    if masks.max() > 1:
        raise UnetppError(f"processed data file {path}: masks contain values above 1 (expected 0/1); {fix}")
    return images, masks, ids, size


def read_split(split_path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate split.json: each subset a list of unique ids, no id in two subsets."""
    path = Path(split_path)
    fix = "rerun `unetpp split` to rebuild it"
    if not path.is_file():
        raise UnetppError(f"split file {path} does not exist: {fix}")
    try:
        split = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UnetppError(f"split file {path} is not valid JSON ({exc}): {fix}") from exc
    if not isinstance(split, dict):
        raise UnetppError(f"split file {path} does not hold a JSON object: {fix}")
    seen: dict[str, str] = {}
    for subset in SUBSETS:
        ids = split.get(subset, [])
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise UnetppError(f"split file {path}: '{subset}' must be a list of id strings: {fix}")
        for i in ids:
            if i in seen:
                raise UnetppError(f"split file {path}: id {i!r} appears in both '{seen[i]}' and '{subset}': {fix}")
            seen[i] = subset
    return split


def load_processed(
    h5_path: str | os.PathLike[str],
    split_path: str | os.PathLike[str] | None = None,
    subset: str | None = None,
) -> ProcessedSet:
    """The `subset` ("train", "val" or "test") of the processed file, rows in split order.

    With `split_path` and `subset` both None, the whole file in file order.
    Every split id must be in the file; an empty subset is an error.
    """
    if (split_path is None) != (subset is None):
        raise ValueError("give both split_path and subset, or neither")
    images, masks, ids, size = read_processed_file(h5_path)
    if subset is None:
        return ProcessedSet(images, masks, ids, size, str(h5_path))
    if subset not in SUBSETS:
        raise UnetppError(f"unknown subset {subset!r}: choose one of {', '.join(SUBSETS)}")
    split = read_split(split_path)  # type: ignore[arg-type]
    wanted = split.get(subset, [])
    if not wanted:
        raise UnetppError(
            f"split file {split_path} has no '{subset}' ids: rerun `unetpp split` with a non-zero fraction for it"
        )
    row = {name: k for k, name in enumerate(ids)}
    absent = [i for i in wanted if i not in row]
    if absent:
        shown = ", ".join(absent[:3]) + (f" and {len(absent) - 3} more" if len(absent) > 3 else "")
        raise UnetppError(
            f"split file {split_path} lists {len(absent)} '{subset}' id(s) not in {h5_path} ({shown}): "
            f"the split and the processed data come from different datasets; rerun `unetpp split` on this data"
        )
    index = np.fromiter((row[i] for i in wanted), dtype=np.int64, count=len(wanted))
    return ProcessedSet(
        np.ascontiguousarray(images[index]), np.ascontiguousarray(masks[index]), list(wanted), size, str(h5_path)
    )
