"""Splitting a scan's time range among its walks: every decision of ``scan_async_actions``.

Pure: imports neither aiohttp nor asyncio, so that all of it is tested with plain
sync asserts and hypothesis; ``_scan`` only carries it out.

The model is Apache Beam's splittable source (``RangeTracker.try_claim`` /
``try_split``, "dynamic work rebalancing"):

- A scan is a set of **walks**, each over a disjoint range ``[since, end)`` of
  creation times (``since`` inclusive, ``end`` exclusive; ``None``: unbounded).
  A walk goes back in time page by page (a ``TimeWalk``).
- A walk **claims** a position when a page is fed to its time walk: everything at or
  after the walk's ``floor`` is the walk's for good. A **split** at ``at`` hands
  over only unclaimed range: the walk keeps ``[at, end)`` (it narrows its
  ``since``), a new walk takes ``[since, at)``. Claimed plus handed over is always
  the range before the split, so every action is walked exactly once, ties at
  ``at`` included (they stay with the walk: ``since`` is inclusive).
- Which walk to split, and where (:func:`plan_split`): the one with the most work
  left, judged from its pages (how much time one page covered, :class:`WalkProgress`),
  at the millisecond that halves that work.
- Where the history begins, when the caller gave no ``since``
  (:class:`HistoryStart`): ``limit=1`` requests narrowing on ``end_date``, in
  parallel rounds, never a walk.
- Where the scan stands (:func:`encode_scan_token`,
  :func:`decode_scan_token`): per walk, its range and the walk's position right
  after the last action the scan yielded from it.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import attrs

from ._token import seal, unseal
from ._walk import WalkPosition

__all__ = [
    "HistoryStart",
    "ScanState",
    "WalkProgress",
    "WalkRange",
    "decode_scan_token",
    "encode_scan_token",
    "first_walks",
    "fresh_position",
    "plan_split",
    "scan_digest",
    "split_evenly",
]

_ONE_MS = timedelta(milliseconds=1)
SCAN_TOKEN_VERSION = "scan1"  # noqa: S105  # a format version, not a secret
# The earliest moment the history can begin at, for the range finder (before the API).
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


class _Action(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def created_at(self) -> datetime: ...


def _ms(delta: timedelta) -> int:
    return delta // _ONE_MS


def _floor_ms(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond - moment.microsecond % 1000)


def fresh_position(inclusive: bool | None = None) -> WalkPosition:
    """The position of a walk that has claimed nothing yet."""
    return WalkPosition(None, frozenset(), inclusive, False, 0, False)


@attrs.frozen
class WalkRange:
    """One walk of a scan: its range ``[since, end)`` and where it stands in it."""

    since: datetime | None
    end: datetime | None
    position: WalkPosition


@attrs.define(eq=False)
class WalkProgress:
    """What the scan knows of one walk's progress, to decide splits.

    ``top``: the newest moment not yet claimed for certain (the walk's floor as last
    seen, else ``end``; ``None``: not known yet). ``ms_per_page``: how much time one
    page covered, from the walk's last page (or the walk it was split from).
    """

    since: datetime | None
    end: datetime | None
    top: datetime | None = None
    ms_per_page: float | None = None
    done: bool = False
    pages: int = 0

    def __attrs_post_init__(self) -> None:
        if self.top is None:
            self.top = self.end

    def saw_page(
        self,
        *,
        newest: datetime,
        oldest: datetime,
        count: int,
        previous_floor: datetime | None,
        page_size: int,
    ) -> None:
        """Take a page of ``count`` new actions from ``newest`` down to ``oldest`` into
        account: the walk has claimed down to ``oldest``, and one page covers about
        that much time."""
        self.top = oldest
        self.pages += 1
        upper = previous_floor if previous_floor is not None else newest
        if count >= 2 or previous_floor is not None:
            spread = max(1, _ms(upper - oldest))
            self.ms_per_page = spread * page_size / max(1, count - (previous_floor is None))


def _work(walk: WalkProgress, lower: datetime | None) -> float | None:
    """The pages left in ``walk``'s unclaimed range; ``None`` when it cannot be split (over,
    shorter than 2 ms, or no page has shown how much time a page covers: neither its own
    nor those of the walk it was split from)."""
    since = walk.since if walk.since is not None else lower
    if walk.done or walk.top is None or since is None or not walk.ms_per_page:
        return None
    span = _ms(walk.top - since)
    if span < 2:
        return None
    return span / walk.ms_per_page


def plan_split(
    walks: Sequence[WalkProgress],
    *,
    lower: datetime | None = None,
    min_pages: float = 1.5,
) -> tuple[int, datetime] | None:
    """Which walk to split, and where: ``(index, at)``, or ``None`` when no split pays.

    The walk with the most pages left in its unclaimed range ``[since, top)``
    (``lower`` stands for a ``since`` of ``None``: no action is older), judged from
    how much time one of its pages covered (for a walk that has shown no page yet, one
    of the walk it was split from; a walk of the first plan with no page is not split).
    It is split at the whole millisecond
    halving its time left, strictly inside it, when it has at least ``min_pages``
    pages left.
    """
    best: tuple[float, int] | None = None
    for index, walk in enumerate(walks):
        work = _work(walk, lower)
        if work is not None and (best is None or work > best[0]):
            best = (work, index)
    if best is None:
        return None
    work, index = best
    if work < min_pages:
        return None
    walk = walks[index]
    since = walk.since if walk.since is not None else lower
    assert since is not None
    assert walk.top is not None
    at = _floor_ms(since + (walk.top - since) / 2)
    if not since < at:
        at = _floor_ms(since) + _ONE_MS
    if not (since < at < walk.top):
        return None
    return index, at


def first_walks(
    since: datetime | None, end: datetime | None, parts: int, *, now: datetime
) -> list[WalkRange]:
    """The walks a new scan of ``[since, end)`` starts with, newest first: with ``since``,
    ``parts`` ranges of equal length up to ``end`` (or ``now``), the oldest open-ended
    when there is no ``end`` (the walks that find their part empty split the others
    later); without ``since``, one walk over everything (the history's start is found
    while it walks)."""
    if since is None:
        return [WalkRange(since, end, fresh_position())]
    top = end if end is not None else now
    cuts = split_evenly(since, top, parts) if since < top else []
    edges = [since, *cuts, end]
    return [
        WalkRange(low, high, fresh_position())
        for low, high in reversed(list(itertools.pairwise(edges)))
    ]


def split_evenly(since: datetime, end: datetime, parts: int) -> list[datetime]:
    """The whole milliseconds that cut ``[since, end)`` into ``parts`` ranges of (almost)
    equal length, oldest first; fewer when the range is shorter than ``parts`` ms."""
    span = _ms(end - since)
    step = max(1, -(-span // parts))
    start = _floor_ms(since)
    # Offsets, not cuts, are compared with the span: a cut past the end may be past year 9999.
    offsets = (_ONE_MS * (step * i) for i in range(1, parts))
    cuts = [start + offset for offset in offsets if offset < end - start]
    return [cut for cut in cuts if since < cut < end]


# --- where the history begins ---------------------------------------------------------


class HistoryStart:
    """Finds where the history begins with ``limit=1`` requests, in parallel rounds.

    A probe ``end_date=X, limit=1`` answers the newest action before ``X``, or
    nothing: then no action is older than ``X``. The first round probes moments
    back from ``top`` at geometric distances (an hour, 8 hours, ... 2000), all at
    once; later rounds probe evenly inside the bracket found, until it is narrower
    than ``1 / resolution`` (16) of the history's length (or after ``max_rounds``).
    :attr:`low` is then a moment no action is older than: a scan can start there.

    Usage::

        finder = HistoryStart(top)
        while (probes := finder.probes()):
            finder.feed({x: newest_before(x) for x in probes})   # None: nothing before x
        since = finder.low
    """

    def __init__(
        self,
        top: datetime,
        *,
        per_round: int = 8,
        resolution: int = 16,
        max_rounds: int = 3,
        earliest: datetime = _EPOCH,
    ) -> None:
        self.top = _floor_ms(top)
        self.low = min(_floor_ms(earliest), self.top)
        """No action is older than this (as far as the probes so far show)."""
        self.oldest_seen: datetime | None = None
        """The oldest action any probe returned: the history begins at or before it."""
        self.newest_seen: datetime | None = None
        self.rounds = 0
        self.requests = 0
        self._per_round = per_round
        self._resolution = resolution
        self._max_rounds = max_rounds
        self._empty_top = False  # nothing at all before ``top``

    @property
    def settled(self) -> bool:
        """``True`` once :attr:`low` is close enough to the oldest action (or there is none)."""
        if self._empty_top or self.rounds >= self._max_rounds:
            return True
        if self.oldest_seen is None or self.newest_seen is None:
            return False
        span = max(1, _ms(self.newest_seen - self.low))
        return _ms(self.oldest_seen - self.low) * self._resolution <= span

    def probes(self) -> list[datetime]:
        """The ``end_date`` of each probe of the next round (empty: done), newest first."""
        if self.settled:
            return []
        if self.rounds == 0:
            points = [self.top]
            distance = timedelta(hours=1)
            while self.top - distance > self.low:
                points.append(self.top - distance)
                distance *= 8
            points.append(self.low)
            return points
        assert self.oldest_seen is not None  # not settled after a round: something was found
        span = _ms(self.oldest_seen - self.low)
        step = max(1, span // (self._per_round + 1))
        points = [self.low + _ONE_MS * (step * i) for i in range(1, self._per_round + 1)]
        return sorted({p for p in points if self.low < p < self.oldest_seen}, reverse=True)

    def feed(self, answers: dict[datetime, datetime | None]) -> None:
        """Take a round's answers: for each probe, the newest action before it, or ``None``."""
        self.rounds += 1
        self.requests += len(answers)
        for point, found in answers.items():
            if found is None:
                if point >= self.top:
                    self._empty_top = True
                self.low = max(self.low, point)
            else:
                if self.oldest_seen is None or found < self.oldest_seen:
                    self.oldest_seen = found
                if self.newest_seen is None or found > self.newest_seen:
                    self.newest_seen = found
        if not any(p for p in answers if p > self.low and answers[p] is not None):
            # Every probe above low was empty: nothing at all, as far as we can tell.
            self._empty_top = self._empty_top or self.oldest_seen is None


# --- where the scan stands ------------------------------------------------------------


@attrs.frozen
class ScanState:
    """A scan's position: the walks left (their ranges and positions), where the history
    begins (``lower``, when found), and a digest of the scan's arguments."""

    walks: tuple[WalkRange, ...]
    lower: datetime | None
    parameters: str


def scan_digest(since: datetime | None, end_date: datetime | None) -> str:
    """A short digest of the arguments a scan token belongs to (``since``, ``end_date``)."""
    parts = [moment.isoformat() if moment is not None else "" for moment in (since, end_date)]
    text = "scan;since={};end_date={}".format(*parts)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _moment(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _read_moment(value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError("a moment must be a string")
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError("a moment must be aware")
    return moment


def encode_scan_token(state: ScanState) -> str:
    """The opaque, versioned, URL-safe token of ``state``: ``scan1.<base64 JSON>.<checksum>``."""
    payload = {
        "p": state.parameters,
        "l": _moment(state.lower),
        "w": [
            [
                _moment(walk.since),
                _moment(walk.end),
                _moment(walk.position.floor),
                sorted(walk.position.seen),
                walk.position.inclusive,
            ]
            for walk in state.walks
        ],
    }
    return seal(SCAN_TOKEN_VERSION, payload)


def decode_scan_token(token: object, parameters: str) -> ScanState:
    """Read a token made by :func:`encode_scan_token` for a scan with the same arguments.

    Raises:
        TypeError: ``token`` is not a string.
        ValueError: not a scan token of this library (damaged, edited, another
            version, a stream's token), or made by a scan with other ``since`` or
            ``end_date``.
    """
    payload = unseal(
        token,
        SCAN_TOKEN_VERSION,
        "cursor is not a scan cursor token of voucherify-async (it starts with {start}; "
        f"a scan's token starts with {SCAN_TOKEN_VERSION!r})",
    )
    try:
        made_for = payload["p"]
        lower = _read_moment(payload["l"])
        walks = []
        for since, end, floor, seen, inclusive in payload["w"]:
            if not all(isinstance(item, str) for item in seen):
                raise TypeError("ids must be strings")
            position = WalkPosition(
                floor=_read_moment(floor),
                seen=frozenset(seen),
                inclusive=inclusive if isinstance(inclusive, bool) else None,
                done=False,
                requests_made=0,
                escalate=False,
            )
            walks.append(WalkRange(_read_moment(since), _read_moment(end), position))
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"cursor token is not readable: {exc}") from None
    if made_for != parameters:
        raise ValueError(
            "cursor token belongs to a scan with other arguments (since, end_date): "
            "resume with the same since and end_date it was made with"
        )
    return ScanState(walks=tuple(walks), lower=lower, parameters=made_for)
