"""The fake's sense of time: :class:`Clock`, the system's, and :class:`ManualClock` for tests.

The fake reads two times from its clock: ``monotonic()`` for everything that
elapses (rate-limit windows, the progress of started actions) and ``time()``,
seconds since the Unix epoch, for what it writes down (``created_at``,
``X-Rate-Limit-Retry``). :class:`ManualClock` moves both together, and only when
told to, so tests of time-dependent behaviour need no sleeping.
"""

from __future__ import annotations

import math
import threading
import time
from datetime import UTC, datetime
from typing import Protocol

__all__ = ["SYSTEM_CLOCK", "Clock", "ManualClock"]


class Clock(Protocol):
    """What :class:`FakeVoucherify` reads time from (``clock=``)."""

    def time(self) -> float:
        """Seconds since the Unix epoch, as :func:`time.time`."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin that never go back, as :func:`time.monotonic`."""
        ...


class _SystemClock:
    """The real clocks: :func:`time.time` and :func:`time.monotonic`."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def __repr__(self) -> str:
        return "<system clock>"


#: The clock a :class:`FakeVoucherify` uses when given none.
SYSTEM_CLOCK: Clock = _SystemClock()

# One day after generate_actions()' default ``newest``: actions started on a fresh
# ManualClock are newer than every generated one.
_DEFAULT_START = datetime(2026, 1, 2, tzinfo=UTC)


class ManualClock:
    """A clock that stands still until :meth:`advance` moves it: deterministic tests.

    Usage::

        clock = ManualClock()
        fake = FakeVoucherify(clock=clock, rate_limit=(2, 60.0))
        ...  # two requests pass, the third gets 429
        clock.advance(60.0)  # the next window opens

    ``time()`` starts at ``start`` (2026-01-02T00:00:00Z by default, a day after
    :func:`generate_actions`' default newest action); ``monotonic()`` starts at 0.
    Both move by the same amount. Safe to advance from any thread.
    """

    def __init__(self, start: datetime = _DEFAULT_START) -> None:
        """Make a clock reading ``start``.

        Raises:
            ValueError: ``start`` is a naive datetime.
        """
        if start.utcoffset() is None:
            raise ValueError("start must be an aware datetime (for example tzinfo=UTC)")
        self._lock = threading.Lock()
        self._epoch = start.timestamp()
        self._elapsed = 0.0

    def time(self) -> float:
        """Seconds since the Unix epoch: ``start`` plus every advance."""
        with self._lock:
            return self._epoch + self._elapsed

    def monotonic(self) -> float:
        """The sum of every advance so far (0.0 at first)."""
        with self._lock:
            return self._elapsed

    def now(self) -> datetime:
        """``time()`` as an aware UTC datetime."""
        return datetime.fromtimestamp(self.time(), tz=UTC)

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``.

        Raises:
            ValueError: ``seconds`` is negative or not finite.
        """
        if not (math.isfinite(seconds) and seconds >= 0):
            raise ValueError(f"seconds must be finite and >= 0, not {seconds}")
        with self._lock:
            self._elapsed += seconds

    def __repr__(self) -> str:
        return f"<ManualClock {self.now().isoformat(timespec='milliseconds')}>"
