"""Staying under the API's rate limit: what the client waits before each request.

Pure: imports neither aiohttp nor asyncio; the caller passes the clocks in. The
gate combines two things, and the client waits for the later of the two:

- **the API's word**: after a response with ``X-Rate-Limit-Remaining: 0``, no
  request is sent before ``X-Rate-Limit-Retry`` (epoch seconds; epoch milliseconds
  and seconds from now are understood too), so the next request waits for the reset
  instead of collecting a 429. A block is never remembered for longer than the
  retry policy's ``max_wait``: during that time a request that would have to wait
  longer than ``max_wait`` is refused at once, after it the block is forgotten and
  the API has its say again (an absurd reset, years ahead, cannot stop a client
  for good);
- **client-side pacing** (optional :class:`RateLimit`): requests are spaced
  ``RateLimit.interval`` apart, whichever task sends them;
- **the requests in flight** (several tasks at once, as a scan's walks): the
  ``X-Rate-Limit-Remaining`` of an answer does not count the requests sent before
  it came back. The gate keeps the lowest ``Remaining`` seen in the current window
  (the one closing at ``X-Rate-Limit-Retry``), and when the requests in flight
  would use it up, the next request waits for the window to close instead of
  collecting a 429.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Mapping

from ._config import RateLimit
from ._decode import header, header_number, reset_delay, retry_after_seconds

__all__ = ["RateGate"]

# A request sent this long ago without an answer seen (a dropped connection, a
# cancellation) no longer counts as in flight.
_IN_FLIGHT_HORIZON = 30.0
# Two X-Rate-Limit-Retry values this close name the same window.
_SAME_WINDOW = 0.05


class RateGate:
    """Decides how long to wait before each request (see the module docstring).

    ``reserve`` must be called once per request attempt, just before sending it;
    ``observe`` with the headers of every response.
    """

    def __init__(self, rate_limit: RateLimit | None = None) -> None:
        self.rate_limit = rate_limit
        self.blocked_until: float | None = None
        """Epoch seconds before which the API said no request may be sent."""
        self._forget_at = math.inf
        self._next_slot = -math.inf
        self._window: tuple[float, float] | None = None  # (closes at, lowest Remaining seen)
        self._in_flight: collections.deque[float] = collections.deque()  # when each was sent

    def observe(
        self,
        status: int,
        headers: Mapping[str, str],
        *,
        wall: float,
        max_wait: float = math.inf,
    ) -> None:
        """Take the rate-limit headers of a response into account.

        A 429 blocks for the wait it names (``Retry-After`` first, as the retry
        does); any other answer blocks until ``X-Rate-Limit-Retry`` when it says
        ``X-Rate-Limit-Remaining: 0``, and unblocks when something remains. The
        block is forgotten ``max_wait`` seconds after ``wall``, however far it reaches.
        """
        self._answered(headers, wall=wall, max_wait=max_wait)
        if status == 429:
            wait = retry_after_seconds(headers, now=wall)
        else:
            remaining = header_number(header(headers, "X-Rate-Limit-Remaining"))
            if remaining is None:
                return
            wait = (
                reset_delay(header(headers, "X-Rate-Limit-Retry"), now=wall)
                if remaining <= 0
                else None
            )
        self.blocked_until = wall + wait if wait else None
        self._forget_at = wall + max_wait

    def blocked_for(self, *, wall: float) -> float:
        """Seconds the API still forbids sending, 0 when it does not (or no longer
        does, or the block was observed more than ``max_wait`` ago: it is forgotten)."""
        if self.blocked_until is None:
            return 0.0
        if wall >= self._forget_at or wall >= self.blocked_until:
            self.blocked_until = None
            return 0.0
        return self.blocked_until - wall

    def reserve(self, *, monotonic: float, wall: float) -> float:
        """Seconds to wait before sending the next request (0 when it may go now).

        ``monotonic`` is a monotonic clock's reading, ``wall`` the epoch time. The
        pacing slot is taken by this call, so concurrent callers queue up.
        """
        wait = self.blocked_for(wall=wall)
        if self.rate_limit is not None:
            slot = max(monotonic + wait, self._next_slot)
            self._next_slot = slot + self.rate_limit.interval
            wait = slot - monotonic
        wait = max(wait, self._window_wait(wall))
        self._in_flight.append(wall + wait)
        return wait

    def _answered(self, headers: Mapping[str, str], *, wall: float, max_wait: float) -> None:
        """An answer came back: one request less in flight, and what it says of the window
        (its reset read liberally, as a block's; never closing later than ``max_wait``
        from now, so that an absurd reset cannot hold the client)."""
        if self._in_flight:
            self._in_flight.popleft()
        remaining = header_number(header(headers, "X-Rate-Limit-Remaining"))
        delay = reset_delay(header(headers, "X-Rate-Limit-Retry"), now=wall)
        if remaining is None or delay is None:
            return
        closes = wall + min(delay, max_wait)
        window = self._window
        if window is None or closes > window[0] + _SAME_WINDOW:
            self._window = (closes, remaining)  # a newer window
        elif closes >= window[0] - _SAME_WINDOW:
            self._window = (window[0], min(window[1], remaining))
        # else: the answer of a request counted in an older window; nothing to learn

    def _window_wait(self, wall: float) -> float:
        """Seconds until the current window closes when the requests in flight would use up
        what remains of it (0: send now)."""
        window = self._window
        if window is None:
            return 0.0
        closes, remaining = window
        if wall >= closes:
            self._window = None  # a new window: nothing known of it yet
            return 0.0
        in_flight = self._in_flight
        while in_flight and in_flight[0] < wall - _IN_FLIGHT_HORIZON:
            in_flight.popleft()
        return closes - wall if remaining - len(in_flight) <= 0 else 0.0
