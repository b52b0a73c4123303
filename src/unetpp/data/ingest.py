"""Ingest: raw stage1_train (zip or folder) -> one native-size HDF5 (format in docs/DESIGN.md).

Decoding ~30k mask PNGs with Pillow is most of the cost, so images are decoded
in a small process pool, each worker reading members from its own open zip
handle, and the results are written to the HDF5 in sorted-id order as they arrive. At most a few images are in flight at once,
so memory stays flat whatever the dataset size.

Datasets are stored uncompressed: on a fifth of the real set, lzf cut the file
from 146 to 52 MB but took 12x the CPU to write (2.1 s vs 0.18 s) and 9x to read
back (1.0 s vs 0.11 s); gzip level 1 was slower still. For the whole set that is
~15 s more CPU per ingest + preprocess, half the 30 s time budget, to save ~400 MB of
a 623 MB file that can always be rebuilt from the raw zip.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
from tqdm import tqdm

from unetpp.atomic import atomic_path, remove_stale_temps
from unetpp.data.content import Verification, digest_of, member_name, member_sha256
from unetpp.data.parallel import ordered_map
from unetpp.data.pngdecode import DEFAULT_MAX_PIXELS, decode_image, paint_mask
from unetpp.data.raw import DEFAULT_MAX_UNPACKED_MB, MemberReader, Sample, open_raw
from unetpp.errors import UnetppError

_MAX_LABEL = np.iinfo(np.uint16).max


@dataclass(frozen=True)
class Decoded:
    """One decoded sample as it is stored."""

    id: str
    image: np.ndarray  # (H, W, 3) uint8
    labels: np.ndarray  # (H, W) uint16, 0 = background, 1..n = nuclei in mask-name order
    n_nuclei: int
    # (normalised member name, sha256) of the image and every mask, for the content digest (unetpp.data.content)
    members: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class IngestSummary:
    n_images: int
    n_nuclei: int
    out: Path


_reader: MemberReader | None = None


def _worker_reader(source_path: Path, is_zip: bool) -> MemberReader:
    """One open reader per process, so a zip's central directory is parsed once per worker."""
    global _reader
    if _reader is None or (_reader.path, _reader.is_zip) != (source_path, is_zip):
        _close_reader()
        _reader = MemberReader(source_path, is_zip)
    return _reader


def _close_reader() -> None:
    global _reader
    if _reader is not None:
        _reader.close()
        _reader = None


def decode_sample(
    source_path: Path, is_zip: bool, sample: Sample, digest: bool = False, max_pixels: int = DEFAULT_MAX_PIXELS
) -> Decoded:
    """Decode one image folder; runs in a worker process (or inline with one worker).

    With `digest`, also hash the bytes of every member read, for the content digest.
    A PNG whose header declares more than `max_pixels` pixels is refused before decoding.
    """
    reader = _worker_reader(source_path, is_zip)
    members: list[tuple[str, str]] = []

    def read(name: str) -> bytes:
        data = reader.read(name)
        if digest:
            members.append((member_name(name), member_sha256(data)))
        return data

    where = f"{source_path}: {sample.image}"
    image = decode_image(read(sample.image), where, max_pixels)
    if len(sample.masks) > _MAX_LABEL:
        raise UnetppError(f"{where} has {len(sample.masks)} masks; at most {_MAX_LABEL} fit in the uint16 label map.")
    labels = np.zeros(image.shape[:2], dtype=np.uint16)
    n = 0
    for name in sample.masks:
        if paint_mask(read(name), f"{source_path}: {name}", labels, n + 1, max_pixels):
            n += 1
    return Decoded(sample.id, image, labels, n, tuple(members))


def ingest(
    raw: str | os.PathLike[str],
    out: str | os.PathLike[str],
    max_unpacked_mb: float = DEFAULT_MAX_UNPACKED_MB,
    workers: int = 2,
    progress: bool | None = None,
    verified: str | os.PathLike[str] | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> IngestSummary:
    """Read every sample of `raw` and write the interim HDF5 atomically.

    With `verified` (the record of `unetpp fetch`), the bytes read must have the
    content digest recorded there, or nothing is written: the data changed since
    it was checked. `progress` None shows the bar only when stderr is a terminal,
    so logs get no carriage-return frames.
    """
    record = Verification.read(verified) if verified is not None else None
    source = open_raw(raw, max_unpacked_mb=max_unpacked_mb)
    out = Path(out)
    remove_stale_temps(out.parent, (out.name,))
    ids: list[str] = []
    n_nuclei = 0
    members: list[tuple[str, str]] = []
    decode = functools.partial(
        decode_sample, source.path, source.is_zip, digest=record is not None, max_pixels=max_pixels
    )
    try:
        with atomic_path(out) as tmp, h5py.File(tmp, "w") as h5:
            groups = {name: h5.create_group(name) for name in ("images", "masks", "labels")}
            for item in tqdm(
                ordered_map(decode, source.samples, workers),
                total=len(source.samples),
                desc="ingest",
                unit="image",
                disable=None if progress is None else not progress,
            ):
                groups["images"].create_dataset(item.id, data=item.image)
                groups["masks"].create_dataset(item.id, data=(item.labels > 0).view(np.uint8))
                groups["labels"].create_dataset(item.id, data=item.labels)
                ids.append(item.id)
                n_nuclei += item.n_nuclei
                members.extend(item.members)
            if record is not None:
                _check_unchanged(source.path, verified, record, digest_of(members), len(ids), source.n_masks)
            h5.create_dataset("ids", data=np.array(ids, dtype=object), dtype=h5py.string_dtype("utf-8"))
            h5.attrs["n_images"] = len(ids)
            h5.attrs["n_nuclei"] = n_nuclei
            h5.attrs["source"] = str(source.path)
    finally:
        _close_reader()  # only open in this process when decoding ran inline (workers=1)
    return IngestSummary(n_images=len(ids), n_nuclei=n_nuclei, out=out)


def _check_unchanged(
    raw: Path, verified: str | os.PathLike[str] | None, record: Verification, digest: str, images: int, masks: int
) -> None:
    if (digest, images, masks) == (record.content_sha256, record.images, record.masks):
        return
    raise UnetppError(
        f"{raw} is not the data `unetpp fetch` checked ({verified}: {record.images:,} images, {record.masks:,} masks, "
        f"content digest {record.content_sha256}; now {images:,} images, {masks:,} masks, digest {digest}): "
        "it changed since. Nothing was written. Check it again with `snakemake --forcerun fetch` "
        "(or `dvc repro -f fetch`), then rerun."
    )
