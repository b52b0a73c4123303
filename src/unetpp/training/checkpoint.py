"""Per-epoch checkpoints kept outside the stage's declared outputs, for resume after a kill.

A checkpoint is one file, written through `atomic_path` (temp file, then an
atomic rename), so a kill -9 at any moment leaves either the previous epoch's
checkpoint or the new one, never a torn file. It carries a fingerprint of
every setting that affects the result plus the input files' checksums; a
checkpoint whose fingerprint differs is ignored rather than resumed.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import torch

from unetpp.atomic import atomic_path

CHECKPOINT_ROOT = ".checkpoints"  # relative to the working directory, unless --checkpoint-dir says otherwise
CHECKPOINT_FILE = "last.pt"
FORMAT_VERSION = 2  # 2: adds layout, git_commits and the three val IoU reductions


def run_checkpoint_dir(root: str | os.PathLike[str], out_dir: str | os.PathLike[str], run_fingerprint: str) -> Path:
    """`<root>/<out path as a name>-<12 hex of the fingerprint>`: one folder per output folder and settings.

    The out path is taken as given (normalised, not resolved), so a fresh
    clone of the repository training `models/unet/seed0` with the same
    settings and data finds and resumes the same checkpoint when `root` lies
    outside the clone; the fingerprint keeps two projects sharing one root
    apart.
    """
    name = os.path.normpath(os.fspath(out_dir)).strip(os.sep).replace(os.sep, "-").replace(".", "_") or "out"
    return Path(root) / f"{name}-{run_fingerprint[:12]}"


def other_checkpoints(directory: Path) -> list[Path]:
    """Sibling checkpoint folders of the same out path written with other settings (left for the user to delete)."""
    stem = directory.name.rsplit("-", 1)[0]
    if not directory.parent.is_dir():
        return []
    return sorted(p for p in directory.parent.glob(f"{stem}-*")
                  if p != directory and p.name.rsplit("-", 1)[0] == stem and (p / CHECKPOINT_FILE).is_file())


def fingerprint(settings: dict[str, Any]) -> str:
    """sha256 of the settings as canonical JSON (sorted keys)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode("utf-8")).hexdigest()


def rng_state() -> dict[str, Any]:
    """The global torch RNG states (CPU and every CUDA device)."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(directory: Path, state: dict[str, Any]) -> Path:
    """Atomically replace `directory/last.pt` with `state` (plus the format version)."""
    target = directory / CHECKPOINT_FILE
    with atomic_path(target) as tmp:
        # No fsync: the rename is atomic against a killed process, which is what resume is for;
        # after a power loss an unreadable checkpoint only means starting over (see load_checkpoint).
        torch.save({"format_version": FORMAT_VERSION, **state}, tmp)
    return target


def load_checkpoint(directory: Path, expected_fingerprint: str) -> dict[str, Any] | None:
    """The checkpoint in `directory` if it matches `expected_fingerprint`, else None (with one line on stderr)."""
    path = directory / CHECKPOINT_FILE
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unreadable file means "start over", never a crash
        print(f"unetpp train: ignoring unreadable checkpoint {path} ({type(exc).__name__}); starting from epoch 1",
              file=sys.stderr)
        return None
    if state.get("format_version") != FORMAT_VERSION or state.get("fingerprint") != expected_fingerprint:
        print(f"unetpp train: ignoring checkpoint {path}: it was written with different arguments or input data; "
              f"starting from epoch 1", file=sys.stderr)
        return None
    return state
