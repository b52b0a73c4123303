"""An order-preserving process-pool map with a bounded number of items in flight.

Results are consumed (written to HDF5) in input order as they arrive, and only
`window` items are submitted ahead, so memory does not grow with the dataset.

Workers never outlive the stage. If the map stops early (an error, or SIGTERM
turned into SystemExit by `unetpp.atomic.exit_on_sigterm`), the queued items
are cancelled and the workers exit after the item each is on. If the
parent is killed outright (kill -9), each worker notices within
`_PARENT_POLL_S` that it was re-parented and exits: a polling thread works the
same under fork, forkserver and spawn and on any POSIX system, whereas Linux's
PR_SET_PDEATHSIG fires on the death of the forking *thread* (or the forkserver)
and needs ctypes.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

from unetpp.errors import UnetppError

T = TypeVar("T")
R = TypeVar("R")
_PARENT_POLL_S = 0.5


def _exit_when_orphaned(parent: int) -> None:
    """Worker side: end this process as soon as its parent is gone (its parent id changes)."""
    while os.getppid() == parent:
        time.sleep(_PARENT_POLL_S)
    os._exit(1)


def _watch_parent() -> None:
    """Pool initializer: die on SIGTERM (not the parent's SystemExit handler, which a task would swallow)
    and start the orphan watch in a daemon thread."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    threading.Thread(target=_exit_when_orphaned, args=(os.getppid(),), daemon=True).start()


def ordered_map(function: Callable[[T], R], items: Iterable[T], workers: int, ahead: int = 4) -> Iterator[R]:
    """Like map(function, items), across `workers` processes (inline when workers <= 1).

    `function` must be picklable (a module-level function or functools.partial of one).
    An exception raised for one item is re-raised here, and the workers are stopped.
    """
    if workers <= 1:
        yield from map(function, items)
        return
    window = max(1, ahead * workers)
    pool = ProcessPoolExecutor(max_workers=workers, initializer=_watch_parent)
    finished = False
    try:
        pending: deque[Future[R]] = deque()
        for item in items:
            pending.append(pool.submit(function, item))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
        finished = True
    except BrokenProcessPool as exc:
        raise UnetppError(
            f"a worker process died unexpectedly ({exc}); it was probably killed for lack of memory - "
            "rerun with --workers 1 or free some memory."
        ) from exc
    finally:
        # On an early stop, drop the queued items but let each worker finish its current one: killing a
        # worker mid-send leaves half a result in the pipe, and the pool's manager thread (which exit
        # joins) then waits on it forever. One item takes well under a second (pixels are capped).
        pool.shutdown(wait=True, cancel_futures=not finished)
