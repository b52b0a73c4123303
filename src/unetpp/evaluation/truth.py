"""Instance truth for scoring a test set: masks in the Kaggle layout, or a solution CSV.

Kaggle published the stage-1 answers as `ImageId,EncodedPixels,Height,Width`
(one row per nucleus); a labelled set in the training layout carries one mask PNG
per nucleus instead. Both become the same uint16 label map per image, read one
image at a time so a large set never sits in memory whole.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import numpy as np

from unetpp.data.pngdecode import DEFAULT_MAX_PIXELS, paint_mask
from unetpp.data.raw import MemberReader, RawSource, open_raw
from unetpp.errors import UnetppError
from unetpp.evaluation.rle import decode_labels

SOLUTION_COLUMNS = ("ImageId", "EncodedPixels", "Height", "Width")


class Truth(Protocol):
    ids: tuple[str, ...]

    def labels(self, image_id: str, shape: tuple[int, int]) -> np.ndarray: ...


class MaskTruth:
    """Label maps painted from `<id>/masks/*.png`, in mask-name order, as `unetpp ingest` paints them."""

    def __init__(self, source: RawSource, reader: MemberReader, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        self._samples = {s.id: s for s in source.samples if s.masks}
        self.ids = tuple(sorted(self._samples))
        self._reader, self._where, self._max_pixels = reader, source.path, max_pixels

    def labels(self, image_id: str, shape: tuple[int, int]) -> np.ndarray:
        labels = np.zeros(shape, dtype=np.uint16)
        n = 0
        for name in self._samples[image_id].masks:
            if paint_mask(self._reader.read(name), f"{self._where}: {name}", labels, n + 1, self._max_pixels):
                n += 1
        return labels


class CsvTruth:
    """Label maps decoded from a solution CSV; an image whose only row has empty EncodedPixels has no object."""

    def __init__(self, path: Path) -> None:
        self._rows: dict[str, list[str]] = {}
        self._shapes: dict[str, tuple[int, int]] = {}
        try:
            with open(path, newline="") as handle:
                reader = csv.DictReader(handle)
                missing = [c for c in SOLUTION_COLUMNS if c not in (reader.fieldnames or ())]
                if missing:
                    raise UnetppError(
                        f"solution {path} lacks the column(s) {', '.join(missing)}; expected "
                        f"{','.join(SOLUTION_COLUMNS)} (the Kaggle stage-1 solution format)"
                    )
                for line, row in enumerate(reader, start=2):
                    image_id, encoded = row["ImageId"], (row["EncodedPixels"] or "").strip()
                    try:
                        shape = (int(row["Height"]), int(row["Width"]))
                    except (TypeError, ValueError):
                        raise UnetppError(f"solution {path}, line {line}: Height/Width are not integers") from None
                    if self._shapes.setdefault(image_id, shape) != shape:
                        raise UnetppError(f"solution {path}, line {line}: {image_id} has two different sizes")
                    strings = self._rows.setdefault(image_id, [])
                    if encoded:
                        strings.append(encoded)
        except OSError as exc:
            raise UnetppError(f"cannot read solution {path} ({exc.strerror}): check the path") from exc
        self._path = path
        self.ids = tuple(sorted(self._rows))

    def labels(self, image_id: str, shape: tuple[int, int]) -> np.ndarray:
        if self._shapes[image_id] != tuple(shape):
            raise UnetppError(
                f"solution {self._path}: {image_id} is {self._shapes[image_id][0]}x{self._shapes[image_id][1]} "
                f"there but the image is {shape[0]}x{shape[1]}: the solution belongs to other images"
            )
        return decode_labels(self._rows[image_id], shape, f"solution {self._path}, {image_id}")


@contextmanager
def open_truth(
    path: str | os.PathLike[str], max_pixels: int = DEFAULT_MAX_PIXELS
) -> Iterator[MaskTruth | CsvTruth]:
    """A solution CSV (`*.csv`) or a Kaggle-layout zip/folder whose images have masks."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        yield CsvTruth(path)
        return
    source = open_raw(path, masks_required=False)
    reader = MemberReader(source.path, source.is_zip)
    try:
        truth = MaskTruth(source, reader, max_pixels)
        if not truth.ids:
            raise UnetppError(f"truth {path} holds no masks: pass a set with <id>/masks/*.png or a solution CSV")
        yield truth
    finally:
        reader.close()
