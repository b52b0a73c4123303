"""One exception type for every user-facing error.

It subclasses click's exception so the CLI prints `Error: <message>` and exits
with status 1, without a traceback: the message itself must name the
offending file, what is wrong and what to do about it.
"""

from __future__ import annotations

import click


class UnetppError(click.ClickException):
    """A problem with the user's input or environment, explained in one message."""
