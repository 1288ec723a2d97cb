"""The list call's query parameters, checked as the API checks them. Pure.

``limit`` must be an integer 1..100 written in plain digits; ``end_date`` any form
:func:`~voucherify_async.testing._timestamps.parse_timestamp` reads. A bad value
raises :class:`InvalidQuery` whose ``details`` is the text of the API's 400 answer
(``Property .end_date cannot be recognized as a ISO-8601 compliant date``).
"""

from __future__ import annotations

from voucherify_async.testing._timestamps import Timestamp, parse_timestamp

__all__ = ["InvalidQuery", "parse_end_date", "parse_limit"]

MAX_LIMIT = 100


class InvalidQuery(ValueError):
    """A query parameter the API would refuse; ``details`` says which and why."""

    def __init__(self, details: str) -> None:
        super().__init__(details)
        self.details = details


def parse_limit(raw: str | None, *, default: int) -> int:
    """The page size asked for, or ``default`` when the query has no ``limit``.

    Raises:
        InvalidQuery: ``raw`` is not plain ASCII digits, or is outside 1..100 (any
            number of digits, leading zeros allowed).
    """
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()):
        raise InvalidQuery("Property .limit should be integer")
    # Past three significant digits the value is over the maximum: never hand int()
    # thousands of digits (it refuses more than 4300).
    significant = raw.lstrip("0")
    if len(significant) > len(str(MAX_LIMIT)):
        raise InvalidQuery(f"Property .limit should be <= {MAX_LIMIT}")
    limit = int(significant or "0")
    if limit < 1:
        raise InvalidQuery("Property .limit should be >= 1")
    if limit > MAX_LIMIT:
        raise InvalidQuery(f"Property .limit should be <= {MAX_LIMIT}")
    return limit


def parse_end_date(raw: str | None) -> Timestamp | None:
    """The ``end_date`` asked for, or ``None`` when the query has none.

    Raises:
        InvalidQuery: ``raw`` is not an ISO-8601 date or date-time (an empty value
            included).
    """
    if raw is None:
        return None
    try:
        return parse_timestamp(raw)
    except ValueError:
        raise InvalidQuery(
            "Property .end_date cannot be recognized as a ISO-8601 compliant date"
        ) from None
