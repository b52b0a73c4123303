"""Read unfinished trainings out of their resume checkpoints: how far each run got, and its history so far.

`unetpp train` writes history.csv and train.json only when it ends, so a
run that takes many hours (and may be interrupted) is visible only through
its per-epoch checkpoint. This reads each `<root>/*/last.pt` and writes the
history so far plus a short status, so progress can be committed and seen.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import torch

from unetpp.atomic import atomic_path
from unetpp.errors import UnetppError
from unetpp.training.checkpoint import CHECKPOINT_FILE
from unetpp.training.outputs import write_history


def run_status(state: dict[str, Any]) -> dict[str, Any]:
    """A JSON-ready summary of one checkpoint: what runs, how far, the best epoch so far."""
    settings = state.get("settings", {})
    history = list(state["history"])
    stopper = state["stopper"]
    seconds = [float(row["seconds"]) for row in history]
    return {
        "out": state.get("out"),
        "arch": settings.get("arch"),
        "seed": settings.get("seed"),
        "selection_metric": settings.get("selection_metric"),
        "epochs_done": len(history),
        "max_epochs": settings.get("epochs"),
        "patience": settings.get("patience"),
        "epochs_without_gain": int(stopper["bad_epochs"]),
        "best_epoch": int(stopper["best_epoch"]),
        "best_val_iou": float(stopper["best_value"]),
        "best_row": state.get("best_row"),
        "median_epoch_seconds": statistics.median(seconds) if seconds else None,
        "wall_seconds": round(float(state["wall_seconds"]), 1),
        "layout": state.get("layout"),
        "precision": settings.get("precision"),
        "num_threads": settings.get("num_threads"),
        "device": settings.get("device"),
        "git_commits": state.get("git_commits"),
    }


def export_progress(root: str | Path, out_dir: str | Path) -> list[Path]:
    """Write `<out_dir>/<run folder>/{history.csv,status.json}` for every checkpoint under `root`."""
    root, out_dir = Path(root), Path(out_dir)
    found = sorted(root.glob(f"*/{CHECKPOINT_FILE}"))
    if not found:
        raise UnetppError(f"{root} holds no training checkpoints (*/{CHECKPOINT_FILE}): give the folder passed to "
                          f"`unetpp train --checkpoint-dir` (or $UNETPP_CHECKPOINT_DIR; default .checkpoints)")
    written = []
    for path in found:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # a checkpoint being replaced right now, or a foreign file: say so, go on
            print(f"unetpp progress: skipping unreadable {path} ({type(exc).__name__})")
            continue
        if "history" not in state or "stopper" not in state:
            print(f"unetpp progress: skipping {path}: not a checkpoint written by `unetpp train`")
            continue
        folder = out_dir / path.parent.name
        with atomic_path(folder / "history.csv") as tmp:
            write_history(tmp, list(state["history"]))
        with atomic_path(folder / "status.json") as tmp:
            tmp.write_text(json.dumps(run_status(state), indent=2) + "\n", encoding="utf-8")
        written.append(folder)
    return written
