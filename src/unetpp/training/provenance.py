"""Which code trained a model: the git commit of the package's own checkout, if it is one."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

PACKAGE_DIR = Path(__file__).resolve().parent.parent


def code_commit(package_dir: Path = PACKAGE_DIR) -> dict[str, Any] | None:
    """{"sha": ..., "dirty": bool} of the checkout holding `package_dir`; None outside git (a wheel install).

    `dirty` is true when tracked files under src/ differ from the commit, so
    a result from uncommitted code is visible as such.
    """
    try:
        sha = subprocess.run(["git", "-C", str(package_dir), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "-C", str(package_dir), "status", "--porcelain", "--untracked-files=no",
                                 "--", "."], capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {"sha": sha, "dirty": bool(status.strip())} if sha else None
