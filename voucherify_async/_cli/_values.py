"""The command line's argument types: text in, a value out, or one clear line.

Each function here is an argparse ``type=``: it raises
:class:`argparse.ArgumentTypeError`, whose message argparse prints after
``argument --flag:``, in the command line's own words (flags, not Python
parameters; no Python exception text appended).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

# The library's one reading of a date, and of an action id.
from voucherify_async._params import check_action_id
from voucherify_async._params import parse_moment as _parse_moment

if TYPE_CHECKING:
    from ._faults import FaultSpec

__all__ = [
    "action_id",
    "faults",
    "int_between",
    "moment",
    "positive_seconds",
    "rate_limit",
    "seconds",
]

_MOMENT_FORMS = "a date (2024-06-01) or a date-time with its zone (2024-06-01T12:00:00Z)"


def int_between(low: int, high: int | None = None) -> Callable[[str], int]:
    """A whole number from ``low`` to ``high`` (no upper bound when ``None``)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < low or (high is not None and value > high):
            bounds = f"from {low} to {high}" if high is not None else f"{low} or more"
            raise argparse.ArgumentTypeError(f"must be {bounds}, not {value}")
        return value

    return parse


def _number_of_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds, not {text!r}")
    return value


def seconds(text: str) -> float:
    """Seconds, 0 or more (``--latency``)."""
    value = _number_of_seconds(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 seconds or more, not {text}")
    return value


def positive_seconds(text: str) -> float:
    """Seconds, more than 0 (``--timeout``)."""
    value = _number_of_seconds(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, not {text}")
    return value


def moment(text: str) -> datetime:
    """``--end-date`` and ``--since``: a date (midnight UTC) or a date-time with its zone."""
    try:
        return _parse_moment(text)
    except ValueError:
        pass
    try:
        naive = datetime.fromisoformat(text.strip()).tzinfo is None
    except ValueError:
        naive = False
    if naive:
        raise argparse.ArgumentTypeError(
            f"{text!r} has no time zone: add Z for UTC or an offset, as in "
            f"{text.strip()}Z or {text.strip()}+02:00"
        )
    raise argparse.ArgumentTypeError(f"{text!r} is not {_MOMENT_FORMS}")


def rate_limit(text: str) -> tuple[int, float]:
    """``N/SECONDS`` (``SECONDS`` 60 when left out): at least 1 request per finite window."""
    count, _, window = text.partition("/")
    try:
        limit = (int(count), float(window or "60"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not REQUESTS/SECONDS, as in 100/60: {text!r}") from None
    if limit[0] < 1 or not (0 < limit[1] < math.inf):
        raise argparse.ArgumentTypeError(f"needs 1 request or more per some seconds: {text!r}")
    return limit


def action_id(text: str) -> str:
    """An async action's id, as the library accepts it."""
    try:
        return check_action_id(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text[:140]!r} is not an async action id (letters, digits, _ and -, "
            "as in aa_0ba518c55290c6fd62)"
        ) from None


def faults(text: str) -> list[FaultSpec]:
    """``--faults``: ``KIND:RATE[,KIND:RATE...]`` (see :mod:`._faults`)."""
    from ._faults import parse_faults  # the fake server: only for demo and fake-server

    try:
        return parse_faults(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
