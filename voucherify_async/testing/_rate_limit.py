"""The fake's rate limit: a fixed-window counter and the headers it writes. Pure.

This module owns the state machine of ``FakeVoucherify(rate_limit=(requests,
per_seconds))``; times are plain floats handed in, so it is tested with sync
asserts and no clock.

- A window opens with the first request counted after the previous one closed,
  and lasts ``per_seconds`` (it is not aligned to the clock's minutes).
- Within a window, the first ``requests`` requests pass; later ones are refused
  (and do not count) until the window closes.
- Every answer tells ``X-Rate-Limit-Limit``, ``X-Rate-Limit-Remaining`` (after
  this request) and ``X-Rate-Limit-Retry``: the epoch second at which the window
  closes, a whole number rounded up (when no window is open, the close of one
  opening now). A refusal adds
  ``Retry-After`` (whole seconds until then, rounded up) and ``X-Rate-Limit-Type``.
"""

from __future__ import annotations

import math
import threading

import attrs

__all__ = ["FixedWindow", "WindowState", "checked_rate_limit", "epoch_text"]

# The vendor does not document the values of X-Rate-Limit-Type; these are made up.
_TYPE_NAMES = {1.0: "second", 60.0: "minute", 3600.0: "hour", 86400.0: "day"}


def checked_rate_limit(value: object) -> tuple[int, float] | None:
    """``value`` as ``(requests, per_seconds)``, or ``None``.

    Raises:
        TypeError: ``value`` is not ``None`` nor a pair of numbers, or ``requests``
            is not an integer.
        ValueError: ``requests`` < 1, or ``per_seconds`` not finite and > 0.
    """
    if value is None:
        return None
    if not isinstance(value, tuple) or len(value) != 2:
        raise TypeError(f"rate_limit must be (requests, per_seconds) or None, not {value!r}")
    requests, per_seconds = value
    if isinstance(requests, bool) or not isinstance(requests, int):
        raise TypeError(f"rate_limit requests must be an int, not {requests!r}")
    if isinstance(per_seconds, bool) or not isinstance(per_seconds, int | float):
        raise TypeError(f"rate_limit per_seconds must be a number, not {per_seconds!r}")
    if requests < 1:
        raise ValueError(f"rate_limit requests must be >= 1, not {requests}")
    if not (math.isfinite(per_seconds) and per_seconds > 0):
        raise ValueError(f"rate_limit per_seconds must be finite and > 0, not {per_seconds}")
    return requests, float(per_seconds)


@attrs.frozen
class WindowState:
    """Where a request leaves the window: the values of the rate-limit headers.

    ``resets_at`` is on the monotonic clock the window was fed with.
    """

    allowed: bool
    limit: int
    remaining: int
    resets_at: float
    per_seconds: float

    def headers(self, *, monotonic_now: float, epoch_now: float) -> dict[str, str]:
        """The ``X-Rate-Limit-*`` headers (and, when refused, ``Retry-After``)."""
        seconds_left = max(0.0, self.resets_at - monotonic_now)
        headers = {
            "X-Rate-Limit-Limit": str(self.limit),
            "X-Rate-Limit-Remaining": str(self.remaining),
            "X-Rate-Limit-Retry": epoch_text(epoch_now + seconds_left),
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, math.ceil(round(seconds_left, 6))))
            headers["X-Rate-Limit-Type"] = self.type_name
        return headers

    @property
    def type_name(self) -> str:
        """``requests_per_minute`` and the like (the vendor documents no values)."""
        unit = _TYPE_NAMES.get(self.per_seconds)
        if unit is not None:
            return f"requests_per_{unit}"
        return f"requests_per_{self.per_seconds:g}_seconds"


class FixedWindow:
    """``limit`` requests per ``per_seconds``, counted in fixed windows (thread-safe)."""

    def __init__(self, limit: int, per_seconds: float) -> None:
        self.limit = limit
        self.per_seconds = per_seconds
        self._lock = threading.Lock()
        self._resets_at = -math.inf
        self._used = 0

    def take(self, now: float) -> WindowState:
        """Count a request arriving at ``now`` if the window has room; say what it left."""
        with self._lock:
            self._roll(now)
            allowed = self._used < self.limit
            if allowed:
                self._used += 1
            return self._state(allowed)

    def peek(self, now: float) -> WindowState:
        """The state at ``now``, counting nothing (for answers that do not count)."""
        with self._lock:
            if now >= self._resets_at:  # no window open: one would open now, empty
                resets_at = now + self.per_seconds
                return WindowState(True, self.limit, self.limit, resets_at, self.per_seconds)
            return self._state(True)

    def _roll(self, now: float) -> None:
        if now >= self._resets_at:
            self._resets_at = now + self.per_seconds
            self._used = 0

    def _state(self, allowed: bool) -> WindowState:
        return WindowState(
            allowed, self.limit, self.limit - self._used, self._resets_at, self.per_seconds
        )


def epoch_text(seconds: float) -> str:
    """Epoch seconds as the vendor documents ``X-Rate-Limit-Retry``: a whole number.

    Rounded up (never earlier than the reset): ``1767225660.25`` gives
    ``1767225661``. Float noise below a microsecond is ignored first, so an exact
    reset such as ``1767225600 + 60`` stays ``1767225660``.
    """
    return str(math.ceil(round(seconds, 6)))
