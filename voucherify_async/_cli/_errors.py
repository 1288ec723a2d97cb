"""The command's name, its exit codes, and :class:`CommandError`, the one-line failure."""

from __future__ import annotations

__all__ = [
    "EXIT_BROKEN_PIPE",
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_USAGE",
    "PROG",
    "CommandError",
    "usage_error",
]

PROG = "voucherify-async"
"""The command's name, in messages and help."""

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141


class CommandError(Exception):
    """A failure the command line reports as one line on stderr, with ``exit_code``.

    1 for a failure (a missing extra, a port already taken); 2 for a usage problem
    found after parsing (no credentials, a bad ``--base-url``, ``--since`` after
    ``--end-date``).
    """

    def __init__(self, message: str, *, exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def usage_error(message: str) -> CommandError:
    """A :class:`CommandError` with exit code 2 (``voucherify-async COMMAND: error: ...``)."""
    return CommandError(message, exit_code=EXIT_USAGE)
