"""The time walk: the state machine that pages ``GET /v1/async-actions`` back in time.

This module owns every decision of a stream and all of its state: what to ask for
next, which actions were already yielded, when the walk is over, when it cannot
advance, and where a stream stands in the middle of a page (:func:`position_in_page`,
what a resume token keeps). It is pure (no aiohttp, no asyncio) so that all of it is
tested with plain sync asserts and hypothesis; ``_stream`` only carries its
requests over HTTP.

How the walk stays exact, whatever the API's undocumented choices:

- The API's ``end_date`` may be inclusive or exclusive, and several actions can
  share one millisecond. The walk keeps ``floor``, the oldest ``created_at``
  yielded so far, and the ids of the actions yielded *at* ``floor`` (``seen``).
  The next request must return every action created at or before ``floor``: it
  sends ``end_date = floor + 1 ms`` (right under an exclusive reading, and under an
  inclusive one it only adds actions already yielded), or ``end_date = floor``
  once a response has shown the reading is inclusive (an action created exactly
  at the ``end_date`` sent).
- From each page it keeps the actions not yet yielded: created at or before
  ``floor`` and not in ``seen``, and, when the caller gave an ``end_date``,
  created strictly before it. Everything newer than ``floor`` was yielded already:
  a page is the newest ``limit`` actions of its range, so all actions of the range
  newer than the page's oldest are in it.
- It asks for ``page_size + len(seen)`` actions (at most 100), so that a page
  still brings ``page_size`` new ones after the repeats at ``floor``.
- A page with nothing new that says there is more is "stuck": the walk retries
  once with a request it has not made yet (the inclusive bound, or ``limit=100``),
  and when even that brings nothing new it raises :class:`PaginationError`
  (more than 100 actions in one millisecond, or a server ignoring ``end_date``),
  which is final. Every request either yields an action or changes the request,
  so the walk always ends.
- The walk is over when the API says ``has_more: false``, or, when it leaves
  ``has_more`` out, when a page is not full.

Only the current page's ids at ``floor`` are kept, so memory does not grow with
the stream. (The resume token a user sees, ``AsyncActionStream.cursor``, is a
:class:`WalkPosition` written by ``_token``.)
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

import attrs

from ._exceptions import PaginationError
from ._params import MAX_LIMIT, ceil_to_ms, check_limit, format_end_date, truncate_to_ms

__all__ = ["PageRequest", "TimeWalk", "WalkPosition", "position_in_page"]

_ONE_MS = timedelta(milliseconds=1)
_CREATED_AT = operator.attrgetter("created_at")


class _Action(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def created_at(self) -> datetime: ...


_A = TypeVar("_A", bound=_Action)


@attrs.frozen
class PageRequest:
    """The query of the next list request: ``limit`` and ``end_date`` (``None``: not sent)."""

    limit: int
    end_date: datetime | None

    def params(self) -> dict[str, str]:
        """The query string parameters, as the API expects them."""
        query = {"limit": str(self.limit)}
        if self.end_date is not None:
            query["end_date"] = format_end_date(self.end_date)
        return query


@attrs.frozen
class WalkPosition:
    """Where a :class:`TimeWalk` stands: a snapshot to ``restore`` (see ``snapshot``)."""

    floor: datetime | None
    seen: frozenset[str]
    inclusive: bool | None
    done: bool
    requests_made: int
    escalate: bool

    def portable(self) -> dict[str, Any]:
        """What a resume token keeps of this position, JSON-ready: ``floor``, ``seen``,
        ``inclusive`` and ``done`` (the rest starts afresh in a resumed walk)."""
        return {
            "f": self.floor.isoformat() if self.floor is not None else None,
            "s": sorted(self.seen),
            "i": self.inclusive,
            "d": self.done,
        }

    @classmethod
    def from_portable(cls, payload: Mapping[str, Any]) -> WalkPosition:
        """The position :meth:`portable` wrote.

        Raises:
            ValueError, KeyError, TypeError: ``payload`` is not such a position.
        """
        floor = datetime.fromisoformat(payload["f"]) if payload["f"] is not None else None
        seen = frozenset(payload["s"])
        inclusive, done = payload["i"], payload["d"]
        if not all(isinstance(item, str) for item in seen) or not isinstance(done, bool):
            raise TypeError("ids must be strings and done a boolean")
        return cls(
            floor=floor,
            seen=seen,
            inclusive=inclusive if isinstance(inclusive, bool) else None,
            done=done,
            requests_made=0,
            escalate=False,
        )


def position_in_page(
    before: WalkPosition, after: WalkPosition, fresh: Sequence[_Action], yielded: int
) -> WalkPosition:
    """Where a walk stands once the first ``yielded`` of ``fresh`` are yielded.

    ``fresh`` is what one :meth:`TimeWalk.feed` returned (newest first),
    ``before`` and ``after`` the walk's snapshots around that feed. A walk
    restored to the result goes on with the rest of ``fresh`` and then the rest of
    the walk: nothing lost, nothing twice.
    """
    if yielded >= len(fresh):
        return after
    if yielded <= 0:
        return attrs.evolve(before, inclusive=after.inclusive)
    last = fresh[yielded - 1].created_at
    seen = {action.id for action in fresh[:yielded] if action.created_at == last}
    if before.floor == last:
        seen |= before.seen
    return WalkPosition(
        floor=last,
        seen=frozenset(seen),
        inclusive=after.inclusive,
        done=False,
        requests_made=after.requests_made,
        escalate=False,
    )


class TimeWalk(Generic[_A]):
    """Walks the list back in time, yielding each action exactly once (see the module docstring).

    Usage, with any transport::

        walk = TimeWalk(page_size=100)
        while (request := walk.next_request()) is not None:
            page = fetch(request.limit, request.end_date)   # one list call
            for action in walk.feed(page.async_actions, page.has_more_reported):
                ...

    Raises:
        TypeError, ValueError: ``page_size`` not an int in 1..100.
    """

    def __init__(
        self,
        *,
        page_size: int = MAX_LIMIT,
        end_date: datetime | None = None,
        since: datetime | None = None,
    ) -> None:
        self.page_size = check_limit(page_size, name="page_size")
        self.end_date = end_date
        """Yield only actions created strictly before this (aware UTC), or ``None``."""
        self.since = since
        """Yield only actions created at or after this (aware UTC), and stop at the
        first page that reaches past it; ``None``: walk the whole history."""
        self.floor: datetime | None = None
        """The oldest ``created_at`` yielded so far."""
        self.seen: set[str] = set()
        """The ids yielded whose ``created_at`` is exactly ``floor``."""
        self.inclusive: bool | None = None
        """``True`` once the API has shown that ``end_date`` is inclusive."""
        self.done = False
        self.requests_made = 0
        self._pending: PageRequest | None = None
        self._escalate = False
        self._stuck = False  # a PaginationError was raised: the walk is over for good

    def snapshot(self) -> WalkPosition:
        """The walk's whole state, to :meth:`restore` if what follows a :meth:`feed` fails."""
        return WalkPosition(
            floor=self.floor,
            seen=frozenset(self.seen),
            inclusive=self.inclusive,
            done=self.done,
            requests_made=self.requests_made,
            escalate=self._escalate,
        )

    def restore(self, state: WalkPosition) -> None:
        """Go back to a :meth:`snapshot`: the next request is the one it would have made.

        A :class:`PaginationError` is final: after one, the walk stays over.
        """
        self.floor = state.floor
        self.seen = set(state.seen)
        self.inclusive = state.inclusive
        self.done = state.done or self._stuck
        self.requests_made = state.requests_made
        self._escalate = state.escalate
        self._pending = None

    def try_split(self, at: datetime) -> bool:
        """Hand over the range older than ``at``: narrow ``since`` to ``at`` when ``at`` lies
        strictly inside the part of the range not claimed yet (after ``since``, before
        ``floor``, or before ``end_date`` when no page was fed); return whether it did.

        What was claimed (every page fed so far) stays this walk's; actions created
        exactly at ``at`` stay too (``since`` is inclusive). A page in flight is
        filtered by the new ``since`` when it is fed.
        """
        if self.done or (self.since is not None and not self.since < at):
            return False
        top = self.floor if self.floor is not None else self.end_date
        if top is None or not at < top:
            return False
        self.since = at
        return True

    def _plan(self) -> PageRequest:
        if self.floor is None:
            bound = None if self.end_date is None else _upper_bound(self.end_date, False)
        else:
            bound = _upper_bound(self.floor, not self.inclusive)
        limit = MAX_LIMIT if self._escalate else self._limit(len(self.seen))
        return PageRequest(limit=limit, end_date=bound)

    def _limit(self, repeats: int) -> int:
        """Enough for ``page_size`` new actions after ``repeats`` already yielded, at most 100."""
        return min(MAX_LIMIT, self.page_size + repeats)

    def next_request(self) -> PageRequest | None:
        """The request to make next, or ``None`` when the walk is over."""
        if self.done:
            return None
        self._pending = self._plan()
        return self._pending

    def feed(self, actions: Sequence[_A], has_more: bool | None) -> list[_A]:
        """Take the answer to the last :meth:`next_request`; return its new actions, newest first.

        ``has_more`` is the API's flag, ``None`` when the response left it out.

        Raises:
            PaginationError: the page brought nothing new, says there is more, and
                no other request can make progress.
            RuntimeError: no request is pending (a bug in the caller).
        """
        request = self._pending
        if request is None:
            raise RuntimeError("feed() called without a pending next_request()")
        self._pending = None
        self.requests_made += 1
        bound, floor, seen, stop = request.end_date, self.floor, self.seen, self.end_date
        since = self.since

        fresh: list[_A] = []
        reached_since = False
        for action in sorted(actions, key=_CREATED_AT, reverse=True):
            created = action.created_at
            if created == bound:
                self.inclusive = True
            if (stop is not None and created >= stop) or (floor is not None and created > floor):
                continue
            if since is not None and created < since:
                reached_since = True  # everything from here on is older: the walk is over
                break
            if action.id in seen:
                continue
            seen.add(action.id)  # at floor, or dropped below when the floor moves
            fresh.append(action)

        exhausted = reached_since or (
            len(actions) < request.limit if has_more is None else not has_more
        )
        if fresh:
            self._escalate = False
            oldest = fresh[-1].created_at
            if floor is None or oldest < floor:
                self.floor = oldest
                self.seen = {action.id for action in fresh if action.created_at == oldest}
            self.done = exhausted
            return fresh
        if exhausted:
            self.done = True
            return fresh
        self._unstick(request, len(actions))
        return fresh

    def _unstick(self, request: PageRequest, answered: int) -> None:
        """A page of ``answered`` actions brought nothing new, but there is more to come:
        plan a request not made yet, or, when there is none, end the walk for good.

        Raises:
            PaginationError: no other request can make progress.
        """
        if self._plan() != request:
            return  # what this page taught (an inclusive end_date) changes the question
        if request.limit < MAX_LIMIT:
            self._escalate = True
            return
        self.done = self._stuck = True
        bound = request.end_date
        where = format_end_date(bound) if bound is not None else None
        raise PaginationError(
            f"cannot advance: a page of {answered} action(s) (limit={request.limit}, "
            f"end_date={where or 'not sent'}) brought no action not yielded yet, "
            "though the API says there are more: more than 100 actions may share one "
            "millisecond, or the server ignores end_date",
            end_date=where,
        )


def _upper_bound(moment: datetime, exclusive: bool) -> datetime | None:
    """The ``end_date`` (whole milliseconds) that selects every action created at or
    before ``moment``: the first millisecond after it for an exclusive reading, ``moment``
    rounded up for an inclusive one. ``None`` (send no ``end_date``) past the end of the
    datetime range, where every action qualifies anyway."""
    try:
        return truncate_to_ms(moment) + _ONE_MS if exclusive else ceil_to_ms(moment)
    except OverflowError:
        return None
