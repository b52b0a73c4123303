"""Write outputs so that a crash never leaves a half-written file behind.

Every stage writes to a temporary path beside its target (same directory, so
the final rename is atomic on POSIX) and renames only when it has finished.
A stage killed with SIGTERM (what Snakemake, DVC and SLURM send) deletes its
temp too, via `exit_on_sigterm`; one killed with SIGKILL cannot, so each stage
sweeps such leftovers with `remove_stale_temps` before it writes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str], is_dir: bool = False) -> Iterator[Path]:
    """Yield a temporary path; on success move it onto `target`, on error delete it.

    The parent directory of `target` is created if needed. An existing `target`
    is replaced only once the new content is complete.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{target.name}.tmp-"
    if is_dir:
        tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=target.parent))
    else:
        fd, name = tempfile.mkstemp(prefix=prefix, suffix=target.suffix, dir=target.parent)
        os.close(fd)
        tmp = Path(name)
        # mkstemp creates 0600; give the output the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
    try:
        yield tmp
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    # os.replace swaps a symlinked target (DVC's link cache types) for the new file, never writing through it.
    os.replace(tmp, target)


def remove_stale_temps(directory: str | os.PathLike[str], names: tuple[str, ...]) -> None:
    """Delete temp files a killed earlier run left beside `names` (atomic_path's `.<name>.tmp-*`)."""
    folder = Path(directory)
    if not folder.is_dir():
        return
    for name in names:
        for stale in folder.glob(f".{name}.tmp-*"):
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)


def _raise_exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def exit_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into SystemExit, so `atomic_path` deletes its temp and worker pools shut down.

    Only the main thread may set signal handlers; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
