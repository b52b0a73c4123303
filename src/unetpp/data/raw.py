"""Find the samples in a raw stage1_train zip or folder and refuse unsafe or malformed input early.

Both forms are reduced to the same list of relative POSIX names, so the layout
rules (and therefore the ingested arrays) cannot differ between them. Zip members
are read straight into memory and never extracted, so a zip-slip name could do
no harm here; such archives are refused anyway because they are not Kaggle data.
"""

from __future__ import annotations

import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from unetpp.errors import UnetppError

DEFAULT_MAX_UNPACKED_MB = 4096  # the real stage1_train.zip unpacks to ~89 MB
LAYOUT_HINT = "expected <id>/images/<id>.png and <id>/masks/<mask_id>.png (the Kaggle stage1_train layout)"
_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class Sample:
    """One image folder: its id and the member names of its image and masks (sorted)."""

    id: str
    image: str
    masks: tuple[str, ...]


@dataclass(frozen=True)
class RawSource:
    """A validated raw dataset: where it is and which samples it holds, sorted by id."""

    path: Path
    is_zip: bool
    samples: tuple[Sample, ...]

    @property
    def n_masks(self) -> int:
        return sum(len(s.masks) for s in self.samples)


def _is_ignored(name: str) -> bool:
    """Operating-system litter (macOS resource forks, .DS_Store) is not data."""
    parts = name.split("/")
    return parts[0] == "__MACOSX" or any(p.startswith(".") for p in parts)


def _check_member_name(archive: Path, name: str) -> None:
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or _DRIVE.match(name) or ".." in parts:
        raise UnetppError(
            f"{archive}: entry {name!r} has an absolute or '..' path (zip-slip); refusing the whole archive. "
            "Use the original Kaggle stage1_train.zip or rebuild the archive with relative paths."
        )


def _zip_names(path: Path, max_unpacked_mb: float) -> list[str]:
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise UnetppError(
            f"{path} is not a readable zip archive ({exc}); download stage1_train.zip again or pass the unpacked folder."
        ) from exc
    for info in infos:
        _check_member_name(path, info.filename)
    declared = sum(info.file_size for info in infos)
    if declared > max_unpacked_mb * 1024 * 1024:
        raise UnetppError(
            f"{path} declares {declared / 1024 ** 2:,.0f} MB of uncompressed data, above the cap of "
            f"{max_unpacked_mb:,.0f} MB (possible zip bomb); check the file, or raise --max-unpacked-mb if it is genuine."
        )
    return [info.filename for info in infos]  # folders end in "/"


def _dir_names(path: Path) -> list[str]:
    """Relative names of every file and sub-folder (folders end in "/", like zip folder entries)."""
    names = []
    for root, dirs, files in os.walk(path):
        rel = Path(root).relative_to(path)
        names.extend(f"{(rel / name).as_posix()}/" for name in dirs)
        names.extend((rel / name).as_posix() for name in files)
    return names


def _strip_wrapper(names: list[str]) -> str:
    """Return the prefix of a single wrapping folder (e.g. 'stage1_train/'), or ''.

    A single top folder is a wrapper unless it is itself an image folder (a
    one-image dataset), which has an `images/` child.
    """
    tops = {name.split("/", 1)[0] for name in names}
    if len(tops) != 1:
        return ""
    top = next(iter(tops))
    if any(name.startswith(f"{top}/images/") or name == top for name in names):
        return ""
    return f"{top}/"


def _group(where: Path, names: list[str], prefix: str, masks_required: bool) -> tuple[Sample, ...]:
    images: dict[str, list[str]] = {}
    masks: dict[str, list[str]] = {}
    for name in names:
        parts = PurePosixPath(name[len(prefix) :]).parts
        is_dir = name.endswith("/")
        if is_dir and (len(parts) == 1 or (len(parts) == 2 and parts[1] in ("images", "masks"))):
            images.setdefault(parts[0], [])  # an empty image folder must still be reported
            continue
        if is_dir and not parts:
            continue  # the wrapper folder itself
        if is_dir or len(parts) != 3 or parts[1] not in ("images", "masks"):
            raise UnetppError(f"{where}: unexpected entry {name!r}; {LAYOUT_HINT}. Remove it or fix the layout.")
        sample_id, kind, _ = parts
        (images if kind == "images" else masks).setdefault(sample_id, []).append(name)
        images.setdefault(sample_id, [])
    samples = []
    for sample_id in sorted(images):
        found = sorted(images[sample_id])
        if len(found) != 1:
            what = "no image" if not found else f"{len(found)} files ({', '.join(found)})"
            raise UnetppError(
                f"{where}: image folder {prefix}{sample_id}/images/ has {what}, expected exactly one image; "
                "leave one PNG there or remove the folder."
            )
        if masks_required and not masks.get(sample_id):
            raise UnetppError(
                f"{where}: {prefix}{sample_id}/ has no masks/ folder or it is empty; every training image needs at "
                "least one mask PNG. Remove the folder or add its masks."
            )
        samples.append(Sample(sample_id, found[0], tuple(sorted(masks.get(sample_id, ())))))
    return tuple(samples)


def open_raw(
    path: str | os.PathLike[str], max_unpacked_mb: float = DEFAULT_MAX_UNPACKED_MB, masks_required: bool = True
) -> RawSource:
    """Validate a raw zip or folder and list its samples, without decoding any image.

    A training set needs masks for every image; a test set (`masks_required=False`,
    e.g. stage1_test_images.zip) is read by the same listing, zip-slip and
    wrapper-folder rules, so both kinds are read alike.
    """
    path = Path(path)
    if not path.exists():
        if masks_required:
            raise UnetppError(
                f"{path} does not exist; pass the Kaggle stage1_train.zip (or its unpacked folder) with --raw, "
                "or make a demo set with `unetpp synth`."
            )
        raise UnetppError(
            f"test set {path} does not exist; pass a zip or folder in the Kaggle layout "
            "(<id>/images/<id>.png, masks optional), e.g. stage1_test_images.zip."
        )
    is_zip = path.is_file()
    names = _zip_names(path, max_unpacked_mb) if is_zip else _dir_names(path)
    names = sorted(name for name in names if not _is_ignored(name))
    if not any(not name.endswith("/") for name in names):
        kind = "archive" if is_zip else "folder"
        layout = LAYOUT_HINT if masks_required else "expected <id>/images/<id>.png (masks optional)"
        raise UnetppError(f"{path}: the {kind} is empty (no image files); {layout}.")
    samples = _group(path, names, _strip_wrapper(names), masks_required)
    return RawSource(path=path, is_zip=is_zip, samples=samples)


class MemberReader:
    """Reads member bytes from a zip (kept open) or a folder; one per process."""

    def __init__(self, source_path: Path, is_zip: bool) -> None:
        self.path = source_path
        self.is_zip = is_zip
        self._zip = zipfile.ZipFile(source_path) if is_zip else None

    def read(self, name: str) -> bytes:
        try:
            if self._zip is not None:
                return self._zip.read(name)
            return (self.path / name).read_bytes()
        except (zipfile.BadZipFile, OSError, NotImplementedError, EOFError) as exc:
            raise UnetppError(
                f"{self.path}: cannot read {name} ({exc}); the file is damaged - download or copy it again."
            ) from exc

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
