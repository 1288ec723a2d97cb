"""The client's settings as frozen, keyword-only value objects: timeouts and retries.

Pure: imports neither aiohttp nor asyncio. ``RetryPolicy.decide`` is where every
retry decision is made, so that it is tested with plain sync asserts.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

import attrs

__all__ = ["RETRYABLE_STATUSES", "RateLimit", "RetryPolicy", "Timeout"]

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
"""The statuses retried by default: timeouts, rate limits and server failures."""


def _positive_or_none(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{attribute.name} must be a number of seconds or None")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{attribute.name} must be a finite number of seconds > 0, got {value}")


def _non_negative(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{attribute.name} must be a number of seconds")
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{attribute.name} must be a finite number of seconds, 0 or more")


def _retry_count(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{attribute.name} must be an int")
    if value < 0:
        raise ValueError(f"{attribute.name} must be 0 or more, got {value}")


@attrs.frozen(kw_only=True)
class Timeout:
    """Time limits for one attempt of a request, in seconds (``None``: no limit).

    ``total`` bounds the whole attempt (connect, send, wait, read the body);
    ``connect`` bounds getting a connection. Retries get a fresh budget each; the
    whole call, retries and waits included, is bounded by
    ``RetryPolicy.max_time`` (120 s by default). For a web handler that must
    answer quickly, lower ``total`` and ``max_retries``::

        client = VoucherifyClient(timeout=Timeout(total=5, connect=2), max_retries=1)
    """

    total: float | None = attrs.field(default=30.0, validator=_positive_or_none)
    connect: float | None = attrs.field(default=10.0, validator=_positive_or_none)


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """When and how long to wait before retrying a failed GET (all API calls are GETs).

    Retried: the ``statuses`` (408, 429, 500, 502, 503, 504 by default), failed or
    dropped connections and timeouts, up to ``max_retries`` times. Never retried:
    any other status (a 400, 401, 404 is final). The wait is the server's when it
    names one (``Retry-After``, seconds or an HTTP date, or ``X-Rate-Limit-Retry``);
    otherwise exponential backoff with full jitter: a random time between 0 and
    ``min(backoff_max, backoff_initial * 2 ** attempt)``. A wait the server asks for
    that is longer than ``max_wait`` is not waited: the error is raised at once,
    carrying ``retry_after``, so that the caller decides.

    ``max_time`` (120 s by default; ``None``: no cap) bounds one whole call: every
    attempt, every wait before a retry and for the rate limit. An attempt gets no
    more than the time left, and a wait that would end past ``max_time`` is not
    started: the last error is raised at once (``RequestTimeoutError`` when the
    time ran out during an attempt). This is stamina's ``timeout``; the default is
    four attempts of the default 30 s ``Timeout``, so that it only cuts calls
    that are failing anyway::

        client = VoucherifyClient(retry=RetryPolicy(max_retries=5, max_wait=10))
        web = VoucherifyClient(retry=RetryPolicy(max_time=5))
        fast_tests = VoucherifyClient(retry=RetryPolicy.instant())
    """

    max_retries: int = attrs.field(default=3, validator=_retry_count)
    backoff_initial: float = attrs.field(default=0.5, validator=_non_negative)
    backoff_max: float = attrs.field(default=8.0, validator=_non_negative)
    max_wait: float = attrs.field(default=60.0, validator=_non_negative)
    max_time: float | None = attrs.field(default=120.0, validator=_positive_or_none)
    statuses: frozenset[int] = attrs.field(default=RETRYABLE_STATUSES, converter=frozenset)

    @classmethod
    def instant(cls, max_retries: int = 3) -> RetryPolicy:
        """A policy that retries without backoff (for tests); a wait the server asks
        for is still honoured up to ``max_wait``, here 0: such answers raise at once
        unless their wait is 0."""
        return cls(max_retries=max_retries, backoff_initial=0.0, backoff_max=0.0, max_wait=0.0)

    def backoff(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """The jittered wait after failed attempt number ``attempt`` (0 for the first)."""
        ceiling = min(self.backoff_max, self.backoff_initial * 2.0 ** min(attempt, 62))
        return ceiling * rand()

    def decide(
        self,
        attempt: int,
        *,
        status: int | None,
        retry_after: float | None = None,
        time_left: float | None = None,
        rand: Callable[[], float] = random.random,
    ) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` to give up and raise.

        ``attempt`` counts the failed attempts before this one (0 for the first);
        ``status`` is the HTTP status, ``None`` for a connection failure or timeout;
        ``retry_after`` is the wait the server asked for, if any (honoured on every
        status in ``statuses``); ``time_left`` the seconds left of ``max_time``
        (``None``: no cap). A wait that does not end before ``time_left`` gives up.
        """
        if attempt >= self.max_retries:
            return None
        if status is not None and status not in self.statuses:
            return None
        if retry_after is not None:
            wait = retry_after if retry_after <= self.max_wait else None
        else:
            wait = self.backoff(attempt, rand)
        if wait is not None and time_left is not None and wait >= time_left:
            return None
        return wait


def _positive_number(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{attribute.name} must be a number")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{attribute.name} must be a finite number > 0, got {value}")


@attrs.frozen(kw_only=True)
class RateLimit:
    """Client-side pacing: at most ``requests`` requests per ``per`` seconds, evenly spaced.

    Shared by every task that uses the same client, so that a pool of workers stays
    under the project's limit instead of collecting 429s, when paced with a margin
    below it: requests are spaced when sent, the API counts them when they arrive,
    and a delay on the way or a busy event loop can bring two closer together::

        client = VoucherifyClient(rate_limit=RateLimit(requests=90, per=60))  # limit 100
        client = VoucherifyClient(rate_limit=RateLimit.per_second(5))
    """

    requests: float = attrs.field(validator=_positive_number)
    per: float = attrs.field(default=60.0, validator=_positive_number)

    @classmethod
    def per_second(cls, requests: float) -> RateLimit:
        """``requests`` a second."""
        return cls(requests=requests, per=1.0)

    @classmethod
    def per_minute(cls, requests: float) -> RateLimit:
        """``requests`` a minute."""
        return cls(requests=requests, per=60.0)

    @property
    def interval(self) -> float:
        """Seconds between two requests."""
        return self.per / self.requests
