"""Find the images of a raw test set in the Kaggle layout, where masks are optional.

`unetpp.data.raw.open_raw` refuses an image folder without masks, as training
must; a test set such as `stage1_test_images.zip` has none. The same listing,
zip-slip and wrapper-folder rules are reused here, so a test set is read exactly
as a training set would be; only the "needs a mask" rule differs.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from unetpp.data.raw import (
    DEFAULT_MAX_UNPACKED_MB,
    LAYOUT_HINT,
    RawSource,
    Sample,
    _dir_names,
    _is_ignored,
    _strip_wrapper,
    _zip_names,
)
from unetpp.errors import UnetppError


def _group(where: Path, names: list[str], prefix: str) -> tuple[Sample, ...]:
    images: dict[str, list[str]] = {}
    masks: dict[str, list[str]] = {}
    for name in names:
        parts = PurePosixPath(name[len(prefix) :]).parts
        if name.endswith("/"):
            if len(parts) == 1:
                images.setdefault(parts[0], [])
            elif len(parts) > 2 or (len(parts) == 2 and parts[1] not in ("images", "masks")):
                raise UnetppError(f"{where}: unexpected folder {name!r}; {LAYOUT_HINT}. Remove it or fix the layout.")
            continue
        if len(parts) != 3 or parts[1] not in ("images", "masks"):
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
        samples.append(Sample(sample_id, found[0], tuple(sorted(masks.get(sample_id, ())))))
    return tuple(samples)


def open_test_set(path: str | os.PathLike[str], max_unpacked_mb: float = DEFAULT_MAX_UNPACKED_MB) -> RawSource:
    """Validate a raw test zip or folder and list its samples (masks may be absent), without decoding any image."""
    path = Path(path)
    if not path.exists():
        raise UnetppError(
            f"test set {path} does not exist; pass a zip or folder in the Kaggle layout "
            "(<id>/images/<id>.png, masks optional), e.g. stage1_test_images.zip."
        )
    is_zip = path.is_file()
    names = _zip_names(path, max_unpacked_mb) if is_zip else _dir_names(path)
    names = sorted(name for name in names if not _is_ignored(name))
    if not any(not name.endswith("/") for name in names):
        raise UnetppError(f"{path}: no image files; expected <id>/images/<id>.png (masks optional).")
    return RawSource(path=path, is_zip=is_zip, samples=_group(path, names, _strip_wrapper(names)))
