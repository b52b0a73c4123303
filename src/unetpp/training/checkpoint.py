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

CHECKPOINT_ROOT = ".checkpoints"
CHECKPOINT_FILE = "last.pt"
FORMAT_VERSION = 1


def default_checkpoint_dir(out_dir: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> Path:
    """`<root>/.checkpoints/<16 hex of sha256(absolute out path)>`; root defaults to the working directory.

    Snakemake and DVC run stages from the repository root, so by default the
    checkpoints land in `<repo>/.checkpoints/`, one folder per output folder.
    """
    key = hashlib.sha256(str(Path(out_dir).resolve()).encode("utf-8")).hexdigest()[:16]
    return Path(root if root is not None else Path.cwd()) / CHECKPOINT_ROOT / key


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
