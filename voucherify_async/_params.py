"""Checking and encoding the arguments of a request, before anything is sent.

Pure: imports neither aiohttp nor asyncio. Every function raises :class:`TypeError`
for a value of the wrong type and :class:`ValueError` for a value out of range.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta

__all__ = [
    "MAX_LIMIT",
    "ceil_to_ms",
    "check_action_id",
    "check_limit",
    "check_size",
    "format_end_date",
    "parse_moment",
    "truncate_to_ms",
]

MAX_LIMIT = 100
"""The largest ``limit`` the API accepts."""

_ONE_MS = timedelta(milliseconds=1)
_DATE_ONLY_LENGTH = len("2016-11-16")
_ACTION_ID = re.compile(r"[A-Za-z0-9_\-]{1,128}")
_EARLIEST = datetime.min.replace(tzinfo=UTC)
_LATEST = datetime.max.replace(microsecond=999000, tzinfo=UTC)


def check_limit(value: object, *, name: str = "limit") -> int:
    """Return ``value`` if it is an ``int`` in 1..100.

    Raises:
        TypeError: not an ``int`` (a ``bool`` is not an int here).
        ValueError: outside 1..100.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int from 1 to {MAX_LIMIT}, not {type(value).__name__}")
    if not 1 <= value <= MAX_LIMIT:
        raise ValueError(f"{name} must be from 1 to {MAX_LIMIT}, got {value}")
    return value


def check_size(value: object, *, name: str) -> int:
    """Return ``value`` if it is a number of bytes: an ``int`` of 1 or more.

    Raises:
        TypeError: not an ``int`` (a ``bool`` is not an int here).
        ValueError: less than 1.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int (bytes), not {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be 1 byte or more, got {value}")
    return value


def parse_moment(value: object, *, name: str = "end_date") -> datetime:
    """Turn an ``end_date`` or ``since`` argument into an aware UTC datetime.

    ``name`` is the argument's name in error messages. Accepts an aware
    :class:`~datetime.datetime` (converted to UTC), a
    :class:`~datetime.date` (midnight UTC), or an ISO-8601 string: a date
    (``"2016-11-16"``) or a date-time with a UTC offset or ``Z``
    (``"2016-11-16T14:14:31Z"``). The moment, in UTC, must lie within
    ``0001-01-01T00:00:00.000Z`` .. ``9999-12-31T23:59:59.999Z`` (what the API's
    format can write, with room to round up to the millisecond).

    Raises:
        TypeError: any other type.
        ValueError: a naive datetime (no timezone: it is ambiguous), a string that
            is not an ISO-8601 date or date-time or names an impossible date, or a
            moment outside the range above (``0001-01-01T00:00:00+05:00`` is in the
            year 0 in UTC): never an ``OverflowError``.
    """
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                f"{name} must be timezone-aware, got the naive datetime {value.isoformat()}; "
                "use datetime(..., tzinfo=datetime.UTC)"
            )
        return _in_range(value, name)
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=UTC)
    if isinstance(value, str):
        return _parse_moment_string(value, name)
    raise TypeError(
        f"{name} must be an aware datetime, a date or an ISO-8601 string, "
        f"not {type(value).__name__}"
    )


def _in_range(moment: datetime, name: str) -> datetime:
    """``moment`` in UTC, if it lies within the range :func:`parse_moment` names."""
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or utc > _LATEST:
        raise ValueError(
            f"{name} {moment.isoformat()} is outside the dates the API can be asked about "
            f"(in UTC: {_EARLIEST:%Y-%m-%dT%H:%M:%SZ} to 9999-12-31T23:59:59.999Z)"
        )
    return utc


def _parse_moment_string(text: str, name: str) -> datetime:
    stripped = text.strip()
    try:
        if len(stripped) == _DATE_ONLY_LENGTH:
            return datetime.combine(date.fromisoformat(stripped), time(), tzinfo=UTC)
        parsed = datetime.fromisoformat(stripped)
    except ValueError as exc:
        raise ValueError(
            f"{name} {text[:100]!r} is not an ISO-8601 date (2016-11-16) or date-time "
            f"(2016-11-16T14:14:31Z): {exc}"
        ) from None
    if parsed.tzinfo is None:
        raise ValueError(
            f"{name} {text[:100]!r} has no timezone; add 'Z' for UTC or an offset like '+02:00'"
        )
    return _in_range(parsed, name)


def truncate_to_ms(moment: datetime) -> datetime:
    """Drop everything below the millisecond."""
    return moment.replace(microsecond=moment.microsecond - moment.microsecond % 1000)


def ceil_to_ms(moment: datetime) -> datetime:
    """Round up to the next whole millisecond (unchanged if already whole).

    Raises:
        OverflowError: past the end of the datetime range (year 9999).
    """
    truncated = truncate_to_ms(moment)
    return truncated if truncated == moment else truncated + _ONE_MS


def format_end_date(moment: datetime) -> str:
    """Format an aware datetime the way the API writes timestamps: ``2022-09-05T11:40:17.098Z``.

    The datetime is converted to UTC; precision below the millisecond is dropped.
    """
    utc = moment.astimezone(UTC)
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T"
        f"{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}.{utc.microsecond // 1000:03d}Z"
    )


def check_action_id(value: object) -> str:
    """Return ``value`` if it is a plausible async action id (``aa_0ba518c55290c6fd62``).

    Only letters, digits, ``_`` and ``-`` (1 to 128 of them) pass, so that no id
    can change the request's path or add a query.

    Raises:
        TypeError: not a ``str``.
        ValueError: empty, too long, or with any other character.
    """
    if not isinstance(value, str):
        raise TypeError(f"async_action_id must be a str, not {type(value).__name__}")
    if not _ACTION_ID.fullmatch(value):
        raise ValueError(
            f"async_action_id {value[:140]!r} is not an async action id "
            "(letters, digits, '_' and '-', like 'aa_0ba518c55290c6fd62')"
        )
    return value
