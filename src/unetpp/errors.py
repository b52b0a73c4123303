"""The errors the library raises for problems the user can fix.

Plain exceptions, so the library (models, training, inference, data) does not
depend on click: the command line turns a `UnetppError` into
`Error: <message>` and exit status 1, without a traceback, at its boundary
(`unetpp.cli`). The message itself must name the offending file or value,
what is wrong and what to do about it.
"""

from __future__ import annotations


class UnetppError(Exception):
    """A problem with the user's input or environment, explained in one message (`message`, also `str()`)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ModelError(UnetppError, ValueError):
    """A model asked for something it cannot do (bad input size, unknown option).

    A `ValueError` too, so library callers can catch it the ordinary way.
    """
