"""An order-preserving process-pool map with a bounded number of items in flight.

Results are consumed (written to HDF5) in input order as they arrive, and only
`window` items are submitted ahead, so memory does not grow with the dataset.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

from unetpp.errors import UnetppError

T = TypeVar("T")
R = TypeVar("R")


def ordered_map(function: Callable[[T], R], items: Iterable[T], workers: int, ahead: int = 4) -> Iterator[R]:
    """Like map(function, items), across `workers` processes (inline when workers <= 1).

    `function` must be picklable (a module-level function or functools.partial of one).
    An exception raised for one item is re-raised here, and the unstarted items are cancelled.
    """
    if workers <= 1:
        yield from map(function, items)
        return
    window = max(1, ahead * workers)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        pending: deque[Future[R]] = deque()
        try:
            for item in items:
                pending.append(pool.submit(function, item))
                if len(pending) >= window:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        except BrokenProcessPool as exc:
            raise UnetppError(
                f"a worker process died unexpectedly ({exc}); it was probably killed for lack of memory - "
                "rerun with --workers 1 or free some memory."
            ) from exc
        finally:
            for future in pending:
                future.cancel()
