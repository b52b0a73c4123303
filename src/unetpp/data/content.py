"""What a raw stage1_train holds, independent of how it was packed: a content digest and the counts.

The digest identifies a release by its image and mask members only (the files
`unetpp ingest` reads), so a zip and its unpacked folder, a re-zipped copy with
another member order, compression, timestamps, directory entries or a
`stage1_train/` wrapper folder all have the same digest, while one changed mask
byte, a renamed file or a missing image changes it:

    manifest = "".join(f"{sha256(member bytes)}  {name}\\n" for name in sorted(names))
    content_sha256 = sha256(manifest)

with `name` = `<id>/images/<file>` or `<id>/masks/<file>` (any wrapper folder
removed), sorted by code point, and the hashes in lowercase hex: the manifest is
the output of `LC_ALL=C sort`ed `sha256sum` over those files, run inside the
unpacked folder.

`fetch` compares the digest and counts against the release this project's
results come from; `ingest` checks that the data it reads still has the digest
`fetch` recorded (`Verification`, a small JSON file).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from unetpp.data.raw import DEFAULT_MAX_UNPACKED_MB, MemberReader, RawSource, open_raw
from unetpp.errors import UnetppError

# `data.content_sha256: any` accepts any release (own data, a corrected set).
ANY = "any"


def member_name(name: str) -> str:
    """`<id>/images/<file>` or `<id>/masks/<file>` of a zip member or folder file (wrapper folder removed)."""
    return "/".join(name.split("/")[-3:])


def member_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def digest_of(pairs: Iterable[tuple[str, str]]) -> str:
    """The content digest of (normalised member name, sha256 hex of its bytes) pairs, in any order."""
    manifest = "".join(f"{sha}  {name}\n" for name, sha in sorted(pairs))
    return hashlib.sha256(manifest.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Content:
    """The identity of a raw dataset: its content digest and what ingest will count."""

    content_sha256: str
    images: int
    masks: int


def members(source: RawSource) -> list[str]:
    """Every image and mask member of `source`, as named in the zip or folder."""
    return [name for sample in source.samples for name in (sample.image, *sample.masks)]


def content_of(raw: str | os.PathLike[str], max_unpacked_mb: float = DEFAULT_MAX_UNPACKED_MB) -> Content:
    """Read every image and mask member of a raw zip or folder (layout checked as ingest does) and digest them."""
    source = open_raw(raw, max_unpacked_mb=max_unpacked_mb)
    reader = MemberReader(source.path, source.is_zip)
    try:
        digest = digest_of((member_name(name), member_sha256(reader.read(name))) for name in members(source))
    finally:
        reader.close()
    return Content(digest, images=len(source.samples), masks=source.n_masks)


def describe_difference(found: Content, expected: Content) -> str:
    """What differs between a dataset and the expected release, in words."""
    if (found.images, found.masks) != (expected.images, expected.masks):
        counts = (
            f"it has {found.images:,} images and {found.masks:,} masks, "
            f"the expected release {expected.images:,} images and {expected.masks:,} masks"
        )
    else:
        counts = (
            f"it has the same {found.images:,} images and {found.masks:,} masks, but some names or bytes differ "
            "(for example corrected masks or re-encoded PNGs)"
        )
    return f"{counts}; content digest {found.content_sha256}, expected {expected.content_sha256}"


@dataclass(frozen=True)
class Verification:
    """The record `unetpp fetch` writes once it has checked the raw data (and `ingest` reads)."""

    raw: str
    content_sha256: str
    images: int
    masks: int
    # "downloaded" (by this fetch, from `url`) or "existing" (put or linked there by the user)
    origin: str
    url: str | None
    # sha256 of the zip file itself (None for a folder): which packing of the release this is.
    file_sha256: str | None
    # The digest the data was checked against, or "any" when any release was accepted.
    expected_content_sha256: str

    def write(self, path: str | os.PathLike[str]) -> None:
        from unetpp.atomic import atomic_path

        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> Verification:
        path = Path(path)
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError) as exc:
            raise UnetppError(
                f"{path}: cannot read the verification record of `unetpp fetch` ({exc}); delete it and run the "
                "pipeline again (`snakemake` or `dvc repro`): fetch writes it anew, and with the data unchanged "
                "nothing after fetch reruns."
            ) from exc
