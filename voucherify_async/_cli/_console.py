"""The rich consoles the command line prints through (rich: the optional ``cli`` extra).

Imported only once :func:`._output.require_rich` has passed. Two departures from
rich's defaults, for output that goes to a pipe or a file:

- A reader that goes away (``| head -1``) raises :class:`BrokenPipeError`, which
  the command line turns into exit code 141 and silence, as for the plain
  formats; rich's own handling would exit with 1.
- Off a terminal, no line ends with the spaces rich pads table cells with.
"""

from __future__ import annotations

import re
from typing import TextIO, cast

from rich.console import Console

__all__ = ["output_console"]

# Spaces at the end of a line, before any closing style codes (FORCE_COLOR).
_TRAILING_SPACES = re.compile(r" +((?:\x1b\[[0-9;]*m)*)$", re.MULTILINE)


class OutputConsole(Console):
    """A rich console that lets a closed pipe raise :class:`BrokenPipeError`."""

    def on_broken_pipe(self) -> None:
        """Raise :class:`BrokenPipeError`, for the command line to exit with 141."""
        self.quiet = True  # nothing more from this console, whatever the caller does
        raise BrokenPipeError


class _TrimmedLines:
    """A text stream writing to ``stream`` without the spaces that end a line.

    Spaces at the end of a write are held back until the next write shows whether
    a line break follows them (then they are dropped) or more text (then they are
    written first).
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._held = ""
        self.encoding: str = getattr(stream, "encoding", None) or "utf-8"

    def isatty(self) -> bool:
        """``False``: this stream is never a terminal."""
        return False

    def write(self, text: str) -> int:
        """Write ``text``, each complete line without its trailing spaces."""
        lines, newline, tail = (self._held + text).rpartition("\n")
        kept = tail.rstrip(" ")
        self._held = tail[len(kept) :]
        if newline:
            kept = _TRAILING_SPACES.sub(r"\1", lines) + newline + kept
        self._stream.write(kept)
        return len(text)

    def flush(self) -> None:
        """Flush ``stream``."""
        self._stream.flush()


def output_console(stream: TextIO, *, width: int | None = None) -> OutputConsole:
    """A console printing on ``stream``, without highlighting.

    On a terminal, as wide as the terminal; elsewhere ``width`` columns wide (rich's
    default when ``None``), every line without trailing spaces.
    """
    if _isatty(stream):
        return OutputConsole(file=stream, highlight=False)
    trimmed = cast("TextIO", _TrimmedLines(stream))
    return OutputConsole(file=trimmed, highlight=False, width=width)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream
        return False
