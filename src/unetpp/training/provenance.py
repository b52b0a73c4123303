"""Which code trained a model: a git commit only when it provably holds the running package, else none and why.

Why: a copy of `src/` that sits inside some other git repository (a scratch folder under a home directory that is
itself a checkout, a virtual environment inside a clone) would otherwise record that repository's HEAD as the
code's commit, "dirty": false, which is wrong and looks right. So the commit of the repository around the package
is recorded only when every module of the package is a file that repository tracks. A copy made outside any
checkout (the GPU protocol) can name the commit it was copied from in `UNETPP_SOURCE_COMMIT`; that is recorded
as given, with its source, and `dirty` unknown.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from unetpp.errors import UnetppError

PACKAGE_DIR = Path(__file__).resolve().parent.parent
SOURCE_COMMIT_ENV = "UNETPP_SOURCE_COMMIT"
_SHA = re.compile(r"[0-9a-f]{7,40}")


def _git(package_dir: Path, *args: str) -> str:
    """stdout of `git -C package_dir ARGS`; raises OSError/SubprocessError on any failure."""
    return subprocess.run(["git", "-C", str(package_dir), *args], capture_output=True, text=True, timeout=10,
                          check=True).stdout


def _untracked_modules(package_dir: Path, toplevel: Path) -> list[str]:
    """The package's .py files (relative to `toplevel`) that the repository at `toplevel` does not track."""
    tracked = set(_git(package_dir, "ls-files", "-z", "--full-name", "--", ".").split("\0")) - {""}
    on_disk = sorted(p.relative_to(toplevel).as_posix() for p in package_dir.rglob("*.py")
                     if "__pycache__" not in p.parts)
    return [p for p in on_disk if p not in tracked]


def checkout_commit(package_dir: Path = PACKAGE_DIR) -> dict[str, Any]:
    """{"sha", "dirty", "source": "git"} when the package is tracked by the checkout around it, else sha None + reason.

    `dirty` is true when tracked files of the package differ from the commit, so a result from uncommitted
    code is visible as such.
    """
    package_dir = package_dir.resolve()
    try:
        toplevel = Path(_git(package_dir, "rev-parse", "--show-toplevel").strip()).resolve()
    except (OSError, subprocess.SubprocessError):
        return {"sha": None, "dirty": None, "reason": f"{package_dir} is not inside a git checkout (or git is missing)"}
    try:
        untracked = _untracked_modules(package_dir, toplevel)
        sha = _git(package_dir, "rev-parse", "HEAD").strip()
        status = _git(package_dir, "status", "--porcelain", "--untracked-files=no", "--", ".")
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        return {"sha": None, "dirty": None, "reason": f"git could not describe {toplevel} ({exc})"}
    if untracked:
        return {
            "sha": None,
            "dirty": None,
            "reason": f"the git repository at {toplevel} does not track the running package's {len(untracked)} "
                      f"module(s) (e.g. {untracked[0]}): its commit would not be this code's",
        }
    return {"sha": sha, "dirty": bool(status.strip()), "source": "git"}


def code_commit(package_dir: Path = PACKAGE_DIR, environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """The commit of the code that runs: the checkout's (see `checkout_commit`), else `$UNETPP_SOURCE_COMMIT`.

    Without either, `{"sha": None, "dirty": None, "reason": ...}` says why no commit is recorded.
    """
    found = checkout_commit(package_dir)
    given = environ.get(SOURCE_COMMIT_ENV, "").strip().lower()
    if found["sha"] is not None or not given:
        return found
    if not _SHA.fullmatch(given):
        raise UnetppError(
            f"{SOURCE_COMMIT_ENV}={environ[SOURCE_COMMIT_ENV]!r} is not a git commit (7 to 40 hex digits): set it "
            "to `git rev-parse HEAD` of the checkout the code was copied from, or unset it"
        )
    return {"sha": given, "dirty": None, "source": SOURCE_COMMIT_ENV, "checkout": found["reason"]}
