"""ISO-8601 timestamps as the fake reads and writes them: pure functions, no I/O.

The fake keeps every ``created_at`` as an integer count of milliseconds since the
Unix epoch (the API's precision), formats it back as ``YYYY-MM-DDTHH:MM:SS.mmmZ``,
and reads ``end_date`` in every form the API documents or real clients send:

- a date, ``2016-11-16`` (midnight UTC);
- a date-time with ``Z`` or an offset ``+02:00`` / ``+0200`` / ``+02``
  (``2016-11-16T14:14:31Z``, ``2022-09-06T00:00:00.000000+0000``);
- seconds optional (``2016-11-16T14:14Z``), any number of fractional digits;
- no offset at all, read as UTC.

An ``end_date`` may be finer than a millisecond, so :func:`parse_timestamp`
returns the millisecond floor and whether anything was left below it: that is
enough to compare it exactly with millisecond timestamps.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, date, datetime, timedelta, timezone

import attrs

__all__ = ["Timestamp", "format_timestamp", "parse_timestamp", "timestamp_ms"]

_MS_PER_DAY = 86_400_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = _EPOCH.toordinal()
_ONE_MS = timedelta(milliseconds=1)

_ISO_8601 = re.compile(
    r"""
    (?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})
    (?:
        T(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2})
        (?::(?P<second>[0-9]{2})(?:[.,](?P<fraction>[0-9]+))?)?
        (?P<zone>Z|[+-][0-9]{2}(?::?[0-9]{2})?)?
    )?
    """,
    re.VERBOSE | re.ASCII,
)


@attrs.frozen
class Timestamp:
    """An instant read from text: ``floor_ms`` plus whether a sub-millisecond rest remains.

    The instant is ``floor_ms`` milliseconds after the epoch when ``exact``, and a
    little later (less than one millisecond) otherwise.
    """

    floor_ms: int
    exact: bool

    def first_ms_after(self, *, inclusive: bool) -> int:
        """The smallest millisecond timestamp that is *not* before this instant.

        A millisecond timestamp ``t`` passes an exclusive filter (``t < self``)
        exactly when ``t < first_ms_after(inclusive=False)``, and an inclusive one
        (``t <= self``) exactly when ``t < first_ms_after(inclusive=True)``.
        """
        if inclusive or not self.exact:
            return self.floor_ms + 1
        return self.floor_ms


def parse_timestamp(text: str) -> Timestamp:
    """Read an ISO-8601 date or date-time (see the module docstring for the forms).

    Raises:
        ValueError: ``text`` is not one of those forms, or names no real instant
            (``2016-02-30``, hour 24, offset beyond +-23:59).
    """
    match = _ISO_8601.fullmatch(text)
    if match is None:
        raise ValueError(f"not an ISO-8601 date or date-time: {text!r}")
    parts = match.groupdict()
    zone = parts["zone"]
    offset = timedelta(0)
    if zone is not None and zone != "Z":
        digits = zone[1:].replace(":", "")
        if int(digits[2:] or 0) >= 60:
            raise ValueError(f"not a valid UTC offset: {text!r}")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0))
        if zone[0] == "-":
            offset = -offset
    fraction = parts["fraction"] or ""
    try:
        moment = datetime(
            int(parts["year"]),
            int(parts["month"]),
            int(parts["day"]),
            int(parts["hour"] or 0),
            int(parts["minute"] or 0),
            int(parts["second"] or 0),
            tzinfo=timezone(offset),
        )
    except ValueError as exc:
        raise ValueError(f"not a valid date or time: {text!r} ({exc})") from exc
    whole_seconds = (moment - _EPOCH) // timedelta(seconds=1)
    millis = int(fraction[:3].ljust(3, "0"))
    return Timestamp(
        floor_ms=whole_seconds * 1000 + millis,
        exact=fraction[3:].strip("0") == "",
    )


def timestamp_ms(text: str) -> int:
    """Milliseconds since the epoch of a stored timestamp such as ``2022-09-05T11:40:17.098Z``.

    The API's own form is read on a fast path; any other form :func:`parse_timestamp`
    reads is accepted too.

    Raises:
        ValueError: ``text`` is not a timestamp, or is finer than a millisecond.
    """
    if len(text) == 24 and text[10] == "T" and text[23] == "Z":
        # Most likely the API's form: datetime reads it several times faster.
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            pass
        else:
            if moment.microsecond % 1000 == 0:
                return (moment - _EPOCH) // _ONE_MS
    stamp = parse_timestamp(text)
    if not stamp.exact:
        raise ValueError(f"timestamp finer than a millisecond: {text!r}")
    return stamp.floor_ms


def format_timestamp(ms: int) -> str:
    """Format milliseconds since the epoch the way the API does: ``2022-09-05T11:40:17.098Z``."""
    days, rest = divmod(ms, _MS_PER_DAY)
    minute, rest = divmod(rest, 60_000)
    second, millis = divmod(rest, 1000)
    return f"{_day_text(days)}T{_CLOCK[minute]}{_TWO_DIGITS[second]}.{_THREE_DIGITS[millis]}Z"


# Lookup tables instead of format specs: formatting is on the generator's hot path.
_TWO_DIGITS = tuple(f"{n:02d}" for n in range(60))
_THREE_DIGITS = tuple(f"{n:03d}" for n in range(1000))
_CLOCK = tuple(f"{hour:02d}:{minute:02d}:" for hour in range(24) for minute in range(60))


@functools.lru_cache(maxsize=1024)
def _day_text(days: int) -> str:
    """``YYYY-MM-DD`` for a count of days since the epoch."""
    return date.fromordinal(_EPOCH_ORDINAL + days).isoformat()
