"""Fetch: make sure the raw stage1_train is at `--raw` and is the expected release; record that it is.

- Data already at `--raw` (a file, a symlink, a folder, put there by the user)
  is used as it is: it is checked but never downloaded over, moved or deleted.
  A symlink whose target is missing is an error, not an invitation to download.
- Otherwise the zip is downloaded from `--url` with pooch into a private temporary
  folder beside `--raw` and checked there; only a complete download of the
  expected release is then linked into place (never replacing a file that
  appeared meanwhile). A download that breaks off, or that holds other data,
  leaves nothing at `--raw`; running again restarts it.
- The check (`unetpp.data.content`) digests the image and mask members and counts
  images and masks; a mismatch names what differs and how to accept other data
  on purpose (`--content-sha256 any`, or the digest of that release).

The record written to `--out` (`Verification`) is what the ingest stage depends
on; ingest checks that the data still has the recorded digest.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from unetpp.data.content import ANY, Content, Verification, content_of, describe_difference
from unetpp.errors import UnetppError

HOW_TO_ACCEPT = (
    "To use this data on purpose, set data.content_sha256 in params.yaml to {found} (and data.images: {images}, "
    "data.masks: {masks}), or to `any` to accept any release (with `unetpp fetch`: --content-sha256 ...)."
)
_CHUNK = 1 << 20


def _download_dir_prefix(raw: Path) -> str:
    return f".{raw.name}.download-"


def _remove_stale_downloads(raw: Path) -> None:
    """Temporary folders of downloads killed before they could clean up (kill -9, power cut)."""
    if raw.parent.is_dir():
        for stale in raw.parent.glob(f"{_download_dir_prefix(raw)}*"):
            shutil.rmtree(stale, ignore_errors=True)


def check(found: Content, expected: Content | None, what: str) -> None:
    """Raise a UnetppError naming what differs unless `found` is the `expected` release (None: any)."""
    if expected is None or found == expected:
        return
    raise UnetppError(
        f"{what} is not the stage1_train release this project's results come from: "
        f"{describe_difference(found, expected)}. "
        + HOW_TO_ACCEPT.format(found=found.content_sha256, images=found.images, masks=found.masks)
    )


def download(url: str, dest_dir: Path, name: str, progress: bool, timeout: float, raw: Path) -> Path:
    """Download `url` into `dest_dir/name` with pooch (streamed to a temporary file, renamed when complete).

    `raw` is where the data is missing (named first in the error).
    """
    import pooch
    import requests

    pooch.get_logger().setLevel("WARNING")  # its "use this hash as known_hash" hint does not apply here
    downloader = pooch.HTTPDownloader(progressbar=progress, chunk_size=_CHUNK, timeout=timeout)
    try:
        return Path(pooch.retrieve(url, known_hash=None, fname=name, path=dest_dir, downloader=downloader))
    except (requests.RequestException, OSError, ValueError) as exc:
        raise UnetppError(
            f"{raw}: not there, and downloading it from {url} failed ({type(exc).__name__}: {exc}); nothing was "
            "kept. If the data is elsewhere, point data.raw at it (a typo?); otherwise run the fetch stage again to "
            "restart the download, or download the file yourself and put or link it at data.raw."
        ) from exc


def _place(downloaded: Path, raw: Path) -> None:
    """Put a finished download at `raw` without ever replacing something that is there now."""
    try:
        os.link(downloaded, raw)  # atomic, and fails if raw exists
    except FileExistsError as exc:
        raise UnetppError(
            f"{raw} appeared while the download was running; it was left as it is and the download discarded. "
            "Run the fetch stage again to check it."
        ) from exc
    except OSError:  # no hard links on this file system
        if os.path.lexists(raw):
            raise UnetppError(f"{raw} appeared while the download was running; run the fetch stage again.") from None
        os.replace(downloaded, raw)


def fetch(
    raw: str | os.PathLike[str],
    url: str,
    expected: Content | None,
    out: str | os.PathLike[str],
    progress: bool | None = None,
    timeout: float = 60.0,
) -> Verification:
    """Check the data at `raw`, downloading it from `url` first when nothing is there; write the record to `out`."""
    import pooch

    raw = Path(raw)
    if progress is None:
        progress = sys.stderr.isatty()
    if not os.path.lexists(raw) and expected is None:
        raise UnetppError(
            f"{raw}: nothing there. With content digest `any` (your own data) nothing is ever downloaded (it would "
            "be DSB2018, not your data): fix data.raw (a typo?) or put your data there; to download DSB2018, set "
            "data.content_sha256 to its release's digest."
        )
    if os.path.lexists(raw):
        if not raw.exists():
            raise UnetppError(
                f"{raw} is a symlink to {os.readlink(raw)}, which does not exist; fix the link, or remove it to "
                f"download the data from {url}."
            )
        found = content_of(raw)
        check(found, expected, f"{raw} (your data, used as it is and never downloaded over)")
        origin, source_url = "existing", None
        file_sha256 = pooch.file_hash(str(raw)) if raw.is_file() else None
    else:
        raw.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_downloads(raw)
        workdir = Path(tempfile.mkdtemp(prefix=_download_dir_prefix(raw), dir=raw.parent))
        try:
            downloaded = download(url, workdir, raw.name, progress, timeout, raw)
            try:
                found = content_of(downloaded)
            except UnetppError as exc:
                raise UnetppError(
                    f"{raw}: the download from {url} is not a usable stage1_train ({exc.message}); nothing was "
                    "written there. Check data.url, or download the file yourself and put or link it at data.raw."
                ) from exc
            check(found, expected, f"{raw}: the download from {url} (nothing was written there)")
            file_sha256 = pooch.file_hash(str(downloaded))
            _place(downloaded, raw)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        origin, source_url = "downloaded", url
    record = Verification(
        raw=str(raw),
        content_sha256=found.content_sha256,
        images=found.images,
        masks=found.masks,
        origin=origin,
        url=source_url,
        file_sha256=file_sha256,
        expected_content_sha256=ANY if expected is None else expected.content_sha256,
    )
    record.write(out)
    return record
