"""Tests of ``voucherify_async._walk``: the time walk yields every action exactly once.

The API leaves two things undocumented (its documentation of the list call): whether
``end_date`` is inclusive or exclusive, and the order of a page. It may also leave
``has_more`` out. The walk claims to be exact under every combination, with up to
99 actions sharing one millisecond, and to raise :class:`PaginationError` instead of
looping or skipping when it truly cannot advance.

The claim is tested against a *model server* (pure Python, no HTTP) that answers
``limit``/``end_date`` queries under a chosen reading, page order, tie order
(random afresh on every request, or stable, which shows a cut tie group's same
part again: the worst case for repeats) and ``has_more`` mode:

- hypothesis properties over random datasets with tie groups, every ``page_size``
  and optional caller ``end_date``: exactly the expected actions, once each, newest
  first, within a request bound, every request and page audited (``WalkAudit``);
- a hypothesis state machine that fetches page by page, changing the page order,
  tie order and ``has_more`` mode on every request, and checks the walk's state
  after each;
- table-driven tests pinning the request shapes, the stop conditions and the
  :class:`PaginationError` cases.

Request bound (asserted for every valid walk): ``requests <= N + 2`` for ``N``
actions yielded. A request either yields at least one action, or yields none; a
request that yields none is either the last one (the walk stops on it), or
"stuck" (nothing new, but more to come). A stuck request is retried with a
different request only (the module docstring), and with fewer than 100 actions per
millisecond a stuck page happens at most once in a walk: either the first pages,
under an inclusive reading, are filled with actions at the caller's ``end_date``
(the retry asks for ``limit=100``, which reaches past them), or a page at
``floor + 1 ms`` is filled with actions already yielded at that millisecond (it
shows the reading is inclusive; the retry asks for ``end_date = floor``). Both
cases reveal the inclusive reading, which happens once. So at most ``N`` yielding
requests, one stuck, one last.
"""

from __future__ import annotations

import bisect
import enum
import itertools
import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone

import attrs
import pytest
from hypothesis import example, given, settings, target
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from voucherify_async._exceptions import PaginationError
from voucherify_async._walk import (
    PageRequest,
    TimeWalk,
    WalkPosition,
    position_in_page,
)

EPOCH = datetime(2022, 9, 5, 11, 40, 17, tzinfo=UTC)
"""Millisecond 0 of every dataset here: ``2022-09-05T11:40:17.000Z``."""

ONE_MS = timedelta(milliseconds=1)
ONE_US = timedelta(microseconds=1)
MAX_GROUP = 99
"""The largest tie group (actions sharing one millisecond) the walk must get through."""


def at_ms(ms: int) -> datetime:
    """The moment ``ms`` milliseconds after (or before) :data:`EPOCH`."""
    return EPOCH + ms * ONE_MS


# --- the model server -----------------------------------------------------------------


@attrs.frozen
class Action:
    """The two fields the walk reads; ``created_at`` is aware UTC, millisecond precision."""

    id: str
    created_at: datetime


class Reading(enum.Enum):
    """How the server reads ``end_date`` (the API does not document it)."""

    INCLUSIVE = "created_at <= end_date"
    EXCLUSIVE = "created_at < end_date"


class PageOrder(enum.Enum):
    """The order of the actions within a page (the API does not document it)."""

    NEWEST_FIRST = "newest first"
    OLDEST_FIRST = "oldest first"
    SHUFFLED = "shuffled"


class TieOrder(enum.Enum):
    """How the server orders actions created in the same millisecond (undocumented too)."""

    RANDOM = "random, afresh on every request"
    STABLE = "the same on every request (by id): a cut group shows the same part again"


Answer = tuple[list[Action], bool | None]


def _micros(moment: datetime) -> int:
    return (moment - EPOCH) // ONE_US


@attrs.define
class ModelServer:
    """``GET /v1/async-actions`` as a pure function of its query string.

    ``answer`` returns the newest ``limit`` actions matching ``end_date`` under
    ``reading``, breaking ties within a millisecond by ``ties`` (so a page boundary
    can cut a tie group differently on each request, or always the same way). The
    page is then put in ``order``. ``has_more`` is true iff more matching actions
    exist beyond the page, or ``None`` when the server leaves it out.
    ``ignores_end_date`` models a server that answers every query as if no
    ``end_date`` had been sent. ``rng`` drives every random choice.
    """

    actions: Sequence[Action]
    reading: Reading
    order: PageOrder = PageOrder.NEWEST_FIRST
    reports_has_more: bool = True
    rng: random.Random = attrs.field(factory=lambda: random.Random(0))
    ties: TieOrder = TieOrder.RANDOM
    ignores_end_date: bool = False
    queries: list[dict[str, str]] = attrs.field(factory=list)
    _newest_first: list[Action] = attrs.field(init=False)
    _keys: list[int] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._newest_first = sorted(self.actions, key=lambda a: (-_micros(a.created_at), a.id))
        # Ascending keys for bisect: minus the microseconds since EPOCH.
        self._keys = [-_micros(action.created_at) for action in self._newest_first]

    def _first_matching(self, end_date: str | None) -> int:
        if end_date is None or self.ignores_end_date:
            return 0
        # The wire format, as the API writes it; anything else would be a 400.
        assert len(end_date) == len("2022-09-05T11:40:17.098Z"), end_date
        assert end_date.endswith("Z"), end_date
        key = -_micros(datetime.fromisoformat(end_date))
        if self.reading is Reading.INCLUSIVE:
            return bisect.bisect_left(self._keys, key)  # first created_at <= end_date
        return bisect.bisect_right(self._keys, key)  # first created_at < end_date

    def answer(
        self,
        query: Mapping[str, str],
        *,
        order: PageOrder | None = None,
        ties: TieOrder | None = None,
        reports_has_more: bool | None = None,
    ) -> Answer:
        """The page and ``has_more`` for one query; the keywords override the server's modes."""
        self.queries.append(dict(query))
        assert set(query) <= {"limit", "end_date"}, query
        limit = int(query["limit"])
        assert 1 <= limit <= 100, f"the API refuses limit={limit}"
        start = self._first_matching(query.get("end_date"))
        total = len(self._newest_first)
        # Take the whole tie group that the page boundary may cut, then break its ties.
        stop = min(start + limit, total)
        while start < stop < total and self._keys[stop] == self._keys[stop - 1]:
            stop += 1
        candidates = self._newest_first[start:stop]  # newest first, ties by id
        if (ties or self.ties) is TieOrder.RANDOM:
            tie_breaker = {action.id: self.rng.random() for action in candidates}
            candidates.sort(key=lambda a: (-_micros(a.created_at), tie_breaker[a.id]))
        page = candidates[:limit]
        has_more = total - start > len(page)
        match order or self.order:
            case PageOrder.OLDEST_FIRST:
                page.reverse()
            case PageOrder.SHUFFLED:
                self.rng.shuffle(page)
            case PageOrder.NEWEST_FIRST:
                pass
        reports = self.reports_has_more if reports_has_more is None else reports_has_more
        return page, (has_more if reports else None)


# --- the driver -----------------------------------------------------------------------


@attrs.frozen
class WalkResult:
    """What a walk produced: the actions yielded, the requests made, the error it ended on."""

    yielded: list[Action]
    requests: list[PageRequest]
    error: PaginationError | None


def ceil_ms(moment: datetime) -> datetime:
    """``moment`` rounded up to a whole millisecond (the test's own oracle)."""
    rest = moment.microsecond % 1000
    return moment if rest == 0 else moment + (1000 - rest) * ONE_US


@attrs.define
class WalkAudit:
    """Checks every request of a walk against a valid server, from the outside.

    What the walk remembers is derived from what it yielded: ``floor`` is the
    oldest ``created_at`` yielded, ``repeats`` the number yielded at ``floor``. Then:

    - ``end_date`` is the caller's rounded up to the ms before anything was yielded,
      then ``floor + 1 ms``, or ``floor`` once a page held an action created exactly
      at the ``end_date`` sent (an inclusive reading revealed);
    - ``limit`` is ``min(100, page_size + repeats)``, or 100 for one retry right after
      a page that brought nothing new;
    - a page brings at least ``min(limit - repeats, remaining)`` new actions (all the
      repeats plus as many new ones as fit), except pages that hold actions at the
      ``end_date`` sent while it is above ``floor``: under an inclusive reading, the
      page that reveals it and the retry at ``limit=100`` after it; never under an
      exclusive reading;
    - no request follows ``has_more: false``.
    """

    page_size: int
    reading: Reading
    end_date: datetime | None
    expected: Sequence[Action]
    yielded: list[Action] = attrs.field(factory=list)
    revealed_inclusive: bool = False
    last_brought_nothing: bool = False
    retries_at_100: int = 0
    short_pages: int = 0
    ended: bool = False

    @property
    def floor(self) -> datetime | None:
        return self.yielded[-1].created_at if self.yielded else None

    @property
    def repeats(self) -> int:
        floor = self.floor
        return sum(1 for action in self.yielded if action.created_at == floor)

    def check_request(self, request: PageRequest) -> None:
        """The request the walk is about to send is the one its algorithm prescribes."""
        assert not self.ended, "a request after has_more: false"
        floor = self.floor
        if floor is None:
            end_date = None if self.end_date is None else ceil_ms(self.end_date)
        else:
            end_date = floor if self.revealed_inclusive else floor + ONE_MS
        assert request.end_date == end_date, (request, self.floor, self.revealed_inclusive)
        limit = min(100, self.page_size + self.repeats)
        if request.limit != limit:
            assert request.limit == 100, (request, limit)
            assert self.last_brought_nothing, "limit=100 without a stuck page before it"
            self.retries_at_100 += 1
            assert self.retries_at_100 <= 1, "more than one retry at limit=100"

    def record(
        self,
        request: PageRequest,
        page: Sequence[Action],
        has_more: bool | None,
        fresh: Sequence[Action],
    ) -> None:
        """Take one answered request; check the page brought what it must."""
        due = min(request.limit - self.repeats, len(self.expected) - len(self.yielded))
        if len(fresh) < due:
            self.short_pages += 1
            if self.reading is Reading.EXCLUSIVE:
                pytest.fail(f"{request} brought {len(fresh)} new actions, not {due}")
            assert self.short_pages <= 2, f"{request} is the 3rd short page"
        if any(action.created_at == request.end_date for action in page):
            self.revealed_inclusive = True
        self.yielded.extend(fresh)
        self.last_brought_nothing = not fresh
        self.ended = has_more is False


def walk_to_end(
    walk: TimeWalk[Action],
    answer: Callable[[Mapping[str, str]], Answer],
    *,
    max_requests: int,
    audit: WalkAudit | None = None,
) -> WalkResult:
    """Drive ``walk`` against ``answer`` until it is done or raises PaginationError.

    Fails the test when the walk makes more than ``max_requests`` requests (an
    endless loop), when one call to ``feed`` returns actions not newest first, or
    when ``audit`` (for a valid server) finds a request or page out of shape.
    """
    yielded: list[Action] = []
    requests: list[PageRequest] = []
    while (request := walk.next_request()) is not None:
        if len(requests) >= max_requests:
            pytest.fail(
                f"no end after {len(requests)} requests ({len(yielded)} actions yielded); "
                f"last requests: {requests[-3:]}"
            )
        if audit is not None:
            audit.check_request(request)
        requests.append(request)
        page, has_more = answer(request.params())
        try:
            fresh = walk.feed(page, has_more)
        except PaginationError as error:
            return WalkResult(yielded, requests, error)
        assert is_newest_first(fresh), fresh
        if audit is not None:
            audit.record(request, page, has_more, fresh)
        yielded.extend(fresh)
    assert walk.requests_made == len(requests)
    return WalkResult(yielded, requests, None)


def is_newest_first(actions: Sequence[Action]) -> bool:
    """Whether ``created_at`` never increases along ``actions``."""
    return all(a.created_at >= b.created_at for a, b in itertools.pairwise(actions))


def request_bound(yielded: int) -> int:
    """The most requests a valid walk may make for ``yielded`` actions (module docstring)."""
    return yielded + 2


def loop_guard(dataset_size: int) -> int:
    """A cap far above any sound bound: reaching it means the walk does not end."""
    return 5 * dataset_size + 50


def make_actions(*groups: tuple[int, int], prefix: str = "aa") -> tuple[Action, ...]:
    """Actions in tie groups: ``(ms, size)`` makes ``size`` actions created at ``at_ms(ms)``."""
    return tuple(
        Action(f"{prefix}_{ms}_{index}", at_ms(ms)) for ms, size in groups for index in range(size)
    )


def expected_actions(actions: Sequence[Action], end_date: datetime | None) -> list[Action]:
    """The actions a walk must yield: created strictly before ``end_date``, newest first
    (order within a millisecond unspecified)."""
    kept = [a for a in actions if end_date is None or a.created_at < end_date]
    return sorted(kept, key=lambda a: a.created_at, reverse=True)


def assert_exact_walk(result: WalkResult, expected: Sequence[Action]) -> None:
    """Every expected action exactly once, newest first, within the request bound."""
    assert result.error is None, result.error
    ids = [action.id for action in result.yielded]
    assert len(ids) == len(set(ids)), "an action was yielded twice"
    assert Counter(ids) == Counter(action.id for action in expected)
    assert result.yielded == sorted(result.yielded, key=lambda a: a.created_at, reverse=True)
    assert len(result.requests) <= request_bound(len(expected)), result.requests


# --- strategies -----------------------------------------------------------------------


@attrs.frozen
class Scenario:
    """A dataset and the caller's ``end_date`` (``None``: not given)."""

    actions: tuple[Action, ...]
    end_date: datetime | None = None

    def expected(self) -> list[Action]:
        return expected_actions(self.actions, self.end_date)


tie_group_sizes = st.one_of(
    st.integers(1, 3),
    st.integers(1, MAX_GROUP),
    st.sampled_from([MAX_GROUP - 1, MAX_GROUP]),
)
page_sizes = st.one_of(st.integers(1, 5), st.integers(1, 100), st.sampled_from([1, 2, 50, 99, 100]))
seeds = st.integers(0, 2**32 - 1)
"""Seeds of the server's tie breaks and shuffles (one draw, not one per tie broken)."""


@st.composite
def tie_groups(
    draw: st.DrawFn, *, max_groups: int, sizes: st.SearchStrategy[int] = tie_group_sizes
) -> list[tuple[int, int]]:
    """``(ms, size)`` pairs, newest first, 1 to 3 ms apart (often adjacent milliseconds)."""
    count = draw(st.integers(0, max_groups))
    groups: list[tuple[int, int]] = []
    ms = draw(st.integers(-5, 5))
    for _ in range(count):
        groups.append((ms, draw(sizes)))
        ms -= draw(st.one_of(st.just(1), st.integers(1, 3)))
    return groups


@st.composite
def caller_end_dates(draw: st.DrawFn, times_ms: Sequence[int]) -> datetime:
    """A caller ``end_date``: often exactly a tie group's time, often just off it by
    microseconds, sometimes anywhere around the dataset."""
    at_a_group: bool = draw(st.booleans())
    if times_ms and at_a_group:
        ms = draw(st.sampled_from(times_ms))
    else:
        low, high = (min(times_ms), max(times_ms)) if times_ms else (0, 0)
        ms = draw(st.integers(low - 2, high + 2))
    micros = draw(st.one_of(st.just(0), st.sampled_from([-1, 1, 500, 999]), st.integers(0, 999)))
    return at_ms(ms) + micros * ONE_US


@st.composite
def scenarios(draw: st.DrawFn, *, max_groups: int = 6) -> Scenario:
    """A dataset of tie groups, and, half the time, a caller ``end_date`` near it."""
    groups = draw(tie_groups(max_groups=max_groups))
    actions = list(make_actions(*groups))
    random.Random(draw(seeds)).shuffle(actions)  # the server sorts
    times = [ms for ms, _ in groups]
    end_date = draw(st.one_of(st.none(), caller_end_dates(times)))
    return Scenario(tuple(actions), end_date)


# --- properties -----------------------------------------------------------------------

BOTH_READINGS = [Reading.INCLUSIVE, Reading.EXCLUSIVE]


def _nasty(
    groups: Sequence[tuple[int, int]],
    reading: Reading,
    *,
    page_size: int = 1,
    end_date: datetime | None = None,
    order: PageOrder = PageOrder.SHUFFLED,
    reports_has_more: bool = False,
) -> list[dict[str, object]]:
    """The keyword arguments of an ``@example``, once per tie order."""
    return [
        {
            "scenario": Scenario(make_actions(*groups), end_date),
            "reading": reading,
            "order": order,
            "ties": ties,
            "reports_has_more": reports_has_more,
            "page_size": page_size,
            "seed": 0,
        }
        for ties in TieOrder
    ]


_NASTY_CASES: list[list[dict[str, object]]] = [
    # A tie group of 99 cut by a page boundary, one action per page, both readings.
    *(_nasty([(1, 1), (0, 99), (-1, 1)], r) for r in BOTH_READINGS),
    *(_nasty([(0, 99), (-5, 1)], r, reports_has_more=True) for r in BOTH_READINGS),
    *(_nasty([(0, 1), (-1, 99)], r, page_size=2) for r in BOTH_READINGS),
    # Two adjacent milliseconds of 99 each, inclusive reading: floor + 1 ms holds 99 repeats.
    _nasty([(0, 99), (-1, 99)], Reading.INCLUSIVE),
    _nasty([(0, 99), (-1, 99)], Reading.INCLUSIVE, page_size=100),
    _nasty([(0, 99), (-1, 99), (-2, 99)], Reading.INCLUSIVE, page_size=50),
    # The caller's end_date exactly at a tie group's time (that group is excluded) ...
    *(_nasty([(1, 5), (0, 99), (-1, 3)], r, end_date=at_ms(0)) for r in BOTH_READINGS),
    _nasty([(0, 99), (-1, 1)], Reading.INCLUSIVE, page_size=100, end_date=at_ms(0)),
    _nasty([(0, 99)], Reading.INCLUSIVE, end_date=at_ms(0)),
    # ... and just off it: one microsecond after includes it, one before excludes it.
    *(_nasty([(0, 99), (-1, 2)], r, end_date=at_ms(0) + ONE_US) for r in BOTH_READINGS),
    *(_nasty([(0, 99), (-1, 2)], r, end_date=at_ms(0) - ONE_US) for r in BOTH_READINGS),
]
_NASTY_EXAMPLES = list(itertools.chain.from_iterable(_NASTY_CASES))


def _with_examples(
    examples: Sequence[dict[str, object]],
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    def decorate(test: Callable[..., None]) -> Callable[..., None]:
        for kwargs in reversed(examples):
            test = example(**kwargs)(test)
        return test

    return decorate


WALKS: dict[str, st.SearchStrategy[object]] = {
    "scenario": scenarios(),
    "reading": st.sampled_from(Reading),
    "order": st.sampled_from(PageOrder),
    "ties": st.sampled_from(TieOrder),
    "reports_has_more": st.booleans(),
    "page_size": page_sizes,
    "seed": seeds,
}
"""The arguments of a walk against the model server, for ``@given``."""


@settings(max_examples=500, deadline=None)
@given(**WALKS)
@_with_examples(_NASTY_EXAMPLES)
def test_walk_yields_every_action_exactly_once_newest_first(
    scenario: Scenario,
    reading: Reading,
    order: PageOrder,
    ties: TieOrder,
    reports_has_more: bool,
    page_size: int,
    seed: int,
) -> None:
    """Whatever the reading, page order, ``has_more`` mode, page size, tie groups (< 100)
    and caller ``end_date``: every action created before the caller's ``end_date``
    exactly once, newest first, in at most N + 2 requests."""
    server = ModelServer(
        scenario.actions, reading, order, reports_has_more, random.Random(seed), ties
    )
    walk: TimeWalk[Action] = TimeWalk(page_size=page_size, end_date=scenario.end_date)
    expected = scenario.expected()
    audit = WalkAudit(page_size, reading, scenario.end_date, expected)
    result = walk_to_end(
        walk, server.answer, max_requests=loop_guard(len(scenario.actions)), audit=audit
    )
    # Steer generation towards walks with many requests that yield nothing.
    target(len(result.requests) - len(expected), label="requests beyond N")
    assert_exact_walk(result, expected)
    assert walk.done
    assert walk.next_request() is None
    assert len(walk.seen) <= MAX_GROUP
    # The server got the wire format only: every query a page_size..100 limit.
    assert all(page_size <= int(q["limit"]) <= 100 for q in server.queries)


@settings(max_examples=50, deadline=None)
@given(
    newer=tie_groups(max_groups=3),
    big=st.integers(101, 150),
    older=st.integers(1, 20),
    reading=st.sampled_from(Reading),
    order=st.sampled_from(PageOrder),
    ties=st.sampled_from(TieOrder),
    reports_has_more=st.booleans(),
    page_size=page_sizes,
    seed=seeds,
)
def test_tie_group_over_100_raises_pagination_error_without_skipping(
    newer: list[tuple[int, int]],
    big: int,
    older: int,
    reading: Reading,
    order: PageOrder,
    ties: TieOrder,
    reports_has_more: bool,
    page_size: int,
    seed: int,
) -> None:
    """More than 100 actions in one millisecond cannot be paged past: the walk raises
    PaginationError, after yielding everything newer, some of the group, nothing older,
    each once, newest first."""
    big_ms = min((ms for ms, _ in newer), default=0) - 1
    actions = make_actions(*newer, (big_ms, big), (big_ms - 1, older))
    server = ModelServer(actions, reading, order, reports_has_more, random.Random(seed), ties)
    walk: TimeWalk[Action] = TimeWalk(page_size=page_size)
    result = walk_to_end(walk, server.answer, max_requests=loop_guard(len(actions)))
    assert isinstance(result.error, PaginationError)
    assert_no_skip_before_error(result, actions, stuck_at=at_ms(big_ms))
    assert walk.done
    assert walk.next_request() is None


def assert_no_skip_before_error(
    result: WalkResult, actions: Sequence[Action], stuck_at: datetime
) -> None:
    """What a failed walk yielded is a prefix of the exact walk: every action newer than
    ``stuck_at``, some at it, none older; each once, newest first; and the walk ended
    within ``2 * yielded + 3`` requests (each yielding request may be followed by one
    stuck retry, plus one inclusive-reading retry and the last request)."""
    ids = [action.id for action in result.yielded]
    assert len(ids) == len(set(ids)), "an action was yielded twice"
    assert is_newest_first(result.yielded)
    assert {a.id for a in actions if a.created_at > stuck_at} <= set(ids)
    assert all(action.created_at >= stuck_at for action in result.yielded)
    assert len(result.requests) <= 2 * len(result.yielded) + 3, result.requests


@pytest.mark.parametrize("reports_has_more", [True, False])
@pytest.mark.parametrize("reading", BOTH_READINGS)
@pytest.mark.parametrize("page_size", [1, 10, 100])
@pytest.mark.parametrize(
    "groups",
    [
        pytest.param([(ms, 1) for ms in range(0, -150, -1)], id="150-distinct-ms"),
        pytest.param([(ms, 3) for ms in range(0, -120, -2)], id="60-groups-of-3"),
    ],
)
def test_server_ignoring_end_date_raises_pagination_error_without_skipping(
    groups: list[tuple[int, int]], page_size: int, reading: Reading, reports_has_more: bool
) -> None:
    """A server that answers every query from the newest action (over 100 of them) cannot
    be paged: PaginationError, after a duplicate-free newest-first prefix."""
    actions = make_actions(*groups)
    server = ModelServer(actions, reading, reports_has_more=reports_has_more, ignores_end_date=True)
    walk: TimeWalk[Action] = TimeWalk(page_size=page_size)
    result = walk_to_end(walk, server.answer, max_requests=loop_guard(len(actions)))
    assert isinstance(result.error, PaginationError)
    assert result.yielded, "the first page is new"
    assert_no_skip_before_error(result, actions, stuck_at=result.yielded[-1].created_at)
    assert result.error.end_date is not None
    assert "cannot advance" in str(result.error)


# --- the state machine ----------------------------------------------------------------


class CursorWalkMachine(RuleBasedStateMachine):
    """Fetches page by page, with the page order and ``has_more`` mode of each response
    drawn afresh, and checks the walk's state between pages."""

    def __init__(self) -> None:
        super().__init__()
        self.walk: TimeWalk[Action] | None = None
        self.server = ModelServer((), Reading.EXCLUSIVE)
        self.expected: list[Action] = []
        self.audit = WalkAudit(1, Reading.EXCLUSIVE, None, [])
        self.yielded: list[Action] = []
        self.largest_group = 0

    @initialize(
        scenario=scenarios(max_groups=4),
        reading=st.sampled_from(Reading),
        page_size=page_sizes,
        seed=seeds,
    )
    def start(self, scenario: Scenario, reading: Reading, page_size: int, seed: int) -> None:
        self.server = ModelServer(scenario.actions, reading, rng=random.Random(seed))
        self.walk = TimeWalk(page_size=page_size, end_date=scenario.end_date)
        self.expected = scenario.expected()
        self.audit = WalkAudit(page_size, reading, scenario.end_date, self.expected)
        self.largest_group = max(
            Counter(a.created_at for a in scenario.actions).values(), default=0
        )

    def _walk(self) -> TimeWalk[Action]:
        assert self.walk is not None
        return self.walk

    def _fetch(self, order: PageOrder, ties: TieOrder, reports_has_more: bool) -> None:
        walk = self._walk()
        request = walk.next_request()
        assert request is not None
        self.audit.check_request(request)
        page, has_more = self.server.answer(
            request.params(), order=order, ties=ties, reports_has_more=reports_has_more
        )
        fresh = walk.feed(page, has_more)
        assert is_newest_first(fresh)
        self.audit.record(request, page, has_more, fresh)
        self.yielded.extend(fresh)

    @precondition(lambda self: self.walk is not None and not self.walk.done)
    @rule(
        order=st.sampled_from(PageOrder),
        ties=st.sampled_from(TieOrder),
        reports_has_more=st.booleans(),
    )
    def fetch_next_page(self, order: PageOrder, ties: TieOrder, reports_has_more: bool) -> None:
        """One request and its answer, in the drawn orders and ``has_more`` mode."""
        self._fetch(order, ties, reports_has_more)

    @rule()
    def plan_twice(self) -> None:
        """Asking for the next request twice (no answer in between) gives the same request
        (``None`` once done) and changes nothing."""
        walk = self._walk()
        state = (walk.floor, set(walk.seen), walk.inclusive, walk.requests_made)
        first, second = walk.next_request(), walk.next_request()
        assert first == second
        assert (walk.floor, walk.seen, walk.inclusive, walk.requests_made) == state

    @precondition(lambda self: self.walk is not None and not self.walk.done)
    @rule(
        order=st.sampled_from(PageOrder),
        ties=st.sampled_from(TieOrder),
        reports_has_more=st.booleans(),
    )
    def walk_to_the_end(self, order: PageOrder, ties: TieOrder, reports_has_more: bool) -> None:
        """The remaining pages, all in the same orders and ``has_more`` mode."""
        for _ in range(loop_guard(len(self.server.actions))):
            if self._walk().done:
                return
            self._fetch(order, ties, reports_has_more)
        pytest.fail("the walk does not end")

    @precondition(lambda self: self.walk is not None and self.walk.done)
    @rule()
    def ask_after_the_end(self) -> None:
        """Once done, the walk asks for nothing more."""
        assert self._walk().next_request() is None

    @invariant()
    def never_yields_an_action_twice(self) -> None:
        ids = [action.id for action in self.yielded]
        assert len(ids) == len(set(ids))

    @invariant()
    def yields_newest_first(self) -> None:
        assert is_newest_first(self.yielded)

    @invariant()
    def floor_is_the_oldest_yielded_and_seen_its_ids(self) -> None:
        """``floor`` is the last (oldest) ``created_at`` yielded, and ``seen`` holds exactly
        the ids yielded at ``floor``: nothing older is remembered."""
        if self.walk is None:
            return
        if not self.yielded:
            assert self.walk.floor is None
            assert not self.walk.seen
            return
        floor = self.yielded[-1].created_at
        assert self.walk.floor == floor
        assert self.walk.seen == {a.id for a in self.yielded if a.created_at == floor}

    @invariant()
    def memory_is_bounded_by_the_largest_tie_group(self) -> None:
        if self.walk is not None:
            assert len(self.walk.seen) <= self.largest_group
            assert len(self.walk.seen) < 100

    @invariant()
    def never_skips(self) -> None:
        """What was yielded is exactly every expected action newer than ``floor``, plus
        those yielded at ``floor``: a newest-first prefix of the exact walk."""
        if self.walk is None or self.walk.floor is None:
            assert not self.yielded
            return
        floor = self.walk.floor
        newer = {a.id for a in self.expected if a.created_at > floor}
        assert {a.id for a in self.yielded} == newer | self.walk.seen
        stop = self.walk.end_date
        assert stop is None or all(a.created_at < stop for a in self.yielded)

    @invariant()
    def requests_within_the_bound(self) -> None:
        if self.walk is not None:
            assert self.walk.requests_made <= request_bound(len(self.yielded))

    @invariant()
    def done_means_everything_yielded(self) -> None:
        if self.walk is not None and self.walk.done:
            assert Counter(a.id for a in self.yielded) == Counter(a.id for a in self.expected)


TestCursorWalkMachine = CursorWalkMachine.TestCase
TestCursorWalkMachine.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)


# --- table-driven: request shapes -----------------------------------------------------


def act(name: str, ms: int) -> Action:
    """An action named ``aa_<name>`` created at ``at_ms(ms)``."""
    return Action(f"aa_{name}", at_ms(ms))


def start_walk(page_size: int, end_date: datetime | None = None) -> TimeWalk[Action]:
    return TimeWalk(page_size=page_size, end_date=end_date)


@pytest.mark.parametrize("page_size", [1, 7, 100])
def test_first_request_asks_for_page_size_without_end_date(page_size: int) -> None:
    """With no caller ``end_date``, the first request is ``limit=page_size`` and no end_date."""
    request = start_walk(page_size).next_request()
    assert request == PageRequest(limit=page_size, end_date=None)
    assert request.params() == {"limit": str(page_size)}


def test_default_page_size_is_100() -> None:
    """Without ``page_size``, pages are as large as the API allows."""
    assert TimeWalk[Action]().next_request() == PageRequest(limit=100, end_date=None)


PLUS_2 = timezone(timedelta(hours=2))


@pytest.mark.parametrize(
    ("end_date", "sent"),
    [
        pytest.param(at_ms(0), "2022-09-05T11:40:17.000Z", id="whole-ms-unchanged"),
        pytest.param(at_ms(98), "2022-09-05T11:40:17.098Z", id="whole-ms-098"),
        pytest.param(at_ms(0) + ONE_US, "2022-09-05T11:40:17.001Z", id="1us-rounds-up"),
        pytest.param(at_ms(0) + 999 * ONE_US, "2022-09-05T11:40:17.001Z", id="999us-rounds-up"),
        pytest.param(at_ms(999) + ONE_US, "2022-09-05T11:40:18.000Z", id="carries-into-second"),
        pytest.param(
            datetime(2022, 9, 5, 13, 40, 17, 98_500, tzinfo=PLUS_2),
            "2022-09-05T11:40:17.099Z",
            id="offset-sent-as-utc",
        ),
    ],
)
def test_first_request_sends_caller_end_date_rounded_up_to_the_ms(
    end_date: datetime, sent: str
) -> None:
    """The caller's ``end_date`` goes out rounded up to the millisecond (the API's
    precision), so no action created before it is cut off; ``limit`` is ``page_size``."""
    request = start_walk(10, end_date).next_request()
    assert request is not None
    assert request.limit == 10
    assert request.end_date is not None
    assert request.end_date >= end_date
    assert request.end_date - end_date < ONE_MS
    assert request.params() == {"limit": "10", "end_date": sent}


@pytest.mark.parametrize(
    ("end_date", "expected"),
    [
        pytest.param(datetime(2022, 9, 5, 11, 40, 17, 98_765, tzinfo=UTC), "17.098Z", id="sub-ms"),
        pytest.param(datetime(2022, 9, 5, 11, 40, 17, tzinfo=UTC), "17.000Z", id="whole-second"),
        pytest.param(datetime(2022, 9, 5, 13, 40, 17, 5_000, tzinfo=PLUS_2), "17.005Z", id="+02"),
    ],
)
def test_page_request_params_format_end_date_as_utc_milliseconds_z(
    end_date: datetime, expected: str
) -> None:
    """``params()`` writes ``end_date`` as ``YYYY-MM-DDTHH:MM:SS.mmmZ`` in UTC."""
    assert PageRequest(limit=5, end_date=end_date).params() == {
        "limit": "5",
        "end_date": f"2022-09-05T11:40:{expected}",
    }


def test_page_request_params_leave_out_an_absent_end_date() -> None:
    """No ``end_date`` key at all when there is none (not ``"None"``, not empty)."""
    assert PageRequest(limit=42, end_date=None).params() == {"limit": "42"}


def test_next_request_is_floor_plus_1ms_while_the_reading_is_unknown() -> None:
    """After a page, the walk asks for ``end_date = floor + 1 ms`` (right under an
    exclusive reading) and ``limit = page_size + len(seen)``."""
    walk = start_walk(3)
    assert walk.next_request() == PageRequest(limit=3, end_date=None)
    walk.feed([act("a", 10), act("b", 9), act("c", 9)], True)
    assert walk.floor == at_ms(9)
    assert walk.seen == {"aa_b", "aa_c"}
    assert walk.inclusive is None
    assert walk.next_request() == PageRequest(limit=5, end_date=at_ms(10))


def test_next_request_is_floor_once_an_action_at_the_sent_end_date_shows_inclusive() -> None:
    """An action created exactly at the ``end_date`` sent proves the reading inclusive:
    from then on the walk asks for ``end_date = floor``."""
    walk = start_walk(2)
    walk.next_request()
    walk.feed([act("a", 6), act("b", 5)], True)
    assert walk.next_request() == PageRequest(limit=3, end_date=at_ms(6))
    # a (at 6, the end_date sent) comes back: the server reads end_date inclusively.
    assert walk.feed([act("a", 6), act("b", 5), act("c", 4)], True) == [act("c", 4)]
    assert walk.inclusive is True
    assert walk.next_request() == PageRequest(limit=3, end_date=at_ms(4))


def test_reading_stays_unknown_when_no_action_sits_at_the_sent_end_date() -> None:
    """Repeats at ``floor`` prove nothing: the walk keeps asking for ``floor + 1 ms``."""
    walk = start_walk(2)
    walk.next_request()
    walk.feed([act("a", 6), act("b", 5)], True)
    walk.next_request()
    assert walk.feed([act("b", 5), act("c", 5), act("d", 3)], True) == [
        act("c", 5),
        act("d", 3),
    ]
    assert walk.inclusive is None
    assert walk.next_request() == PageRequest(limit=3, end_date=at_ms(4))


@pytest.mark.parametrize(
    ("page_size", "ties_at_floor", "limit"),
    [
        (1, 1, 2),
        (10, 1, 11),
        (10, 5, 15),
        (10, 10, 20),
        (60, 40, 100),
        (50, 50, 100),
        (98, 5, 100),
        (100, 1, 100),
        (100, 99, 100),
    ],
)
def test_limit_is_page_size_plus_seen_at_most_100(
    page_size: int, ties_at_floor: int, limit: int
) -> None:
    """``limit = min(100, page_size + len(seen))``: the repeats at ``floor`` that the next
    page brings back are paid for, up to the API's maximum."""
    newer = [act(f"n{i}", 100 + i) for i in range(page_size - ties_at_floor)]
    at_floor = [act(f"f{i}", 0) for i in range(ties_at_floor)]
    walk = start_walk(page_size)
    walk.next_request()
    walk.feed(newer + at_floor, True)
    assert len(walk.seen) == ties_at_floor
    assert walk.next_request() == PageRequest(limit=limit, end_date=at_ms(1))


def test_seen_grows_page_by_page_within_one_millisecond() -> None:
    """Pages that stay in one millisecond add to ``seen``, and ``limit`` grows with it."""
    group = [act(f"t{i}", 0) for i in range(5)]
    walk = start_walk(1)
    limits = []
    for count in range(1, 5):
        request = walk.next_request()
        assert request is not None
        limits.append(request.limit)
        # The server returns the first `limit` of the group, repeats first.
        page = group[: request.limit]
        assert walk.feed(page, True) == [group[count - 1]]
    assert limits == [1, 2, 3, 4]
    assert walk.seen == {a.id for a in group[:4]}
    assert walk.next_request() == PageRequest(limit=5, end_date=at_ms(1))


@attrs.frozen
class Step:
    """One request the walk must make, the server's answer, and what the walk yields."""

    request: PageRequest
    page: list[Action]
    has_more: bool | None
    fresh: list[Action]


def run_steps(walk: TimeWalk[Action], steps: Sequence[Step]) -> None:
    """Assert the walk makes exactly ``steps``' requests, yields their ``fresh``, then stops."""
    for number, step in enumerate(steps, 1):
        assert walk.next_request() == step.request, f"request {number}"
        assert walk.feed(step.page, step.has_more) == step.fresh, f"page {number}"
    assert walk.done
    assert walk.next_request() is None


def test_request_sequence_under_an_inclusive_server() -> None:
    """A whole walk against an inclusive server: floor + 1 ms until the reading shows,
    then floor; the last page is short and has_more is absent."""
    a, b, c, d, e = act("a", 5), act("b", 4), act("c", 4), act("d", 3), act("e", 2)
    run_steps(
        start_walk(2),
        [
            Step(PageRequest(2, None), [a, b], True, [a, b]),
            Step(PageRequest(3, at_ms(5)), [a, b, c], True, [c]),
            Step(PageRequest(4, at_ms(4)), [b, c, d, e], True, [d, e]),
            Step(PageRequest(3, at_ms(2)), [e], None, []),
        ],
    )


def test_stuck_page_of_repeats_at_floor_plus_1ms_is_retried_with_end_date_floor() -> None:
    """Under an inclusive reading, a page at ``floor + 1 ms`` can hold only actions yielded
    already; it reveals the reading, and the retry asks for ``end_date = floor`` with the
    same limit (not a PaginationError, not a skip)."""
    a1, a2, a3 = act("a1", 6), act("a2", 6), act("a3", 6)
    d, e = act("d", 5), act("e", 5)
    run_steps(
        start_walk(1),
        [
            Step(PageRequest(1, None), [a1], True, [a1]),
            Step(PageRequest(2, at_ms(7)), [a2, a1], True, [a2]),
            Step(PageRequest(3, at_ms(7)), [a3, a1, a2], True, [a3]),
            Step(PageRequest(4, at_ms(7)), [d, a1, a2, a3], True, [d]),
            Step(PageRequest(2, at_ms(6)), [a3, a1], True, []),  # stuck, inclusive shown
            Step(PageRequest(2, at_ms(5)), [e, d], False, [e]),
        ],
    )


def test_pages_filled_with_actions_at_the_caller_end_date_escalate_to_limit_100() -> None:
    """Under an inclusive reading, actions created exactly at the caller's ``end_date``
    (excluded) can fill a page: the walk retries once with ``limit=100`` and the same
    end_date, then goes back to ``page_size + len(seen)``."""
    x, y = act("x", 5), act("y", 5)
    z, w = act("z", 4), act("w", 3)
    run_steps(
        start_walk(1, end_date=at_ms(5)),
        [
            Step(PageRequest(1, at_ms(5)), [x], True, []),
            Step(PageRequest(100, at_ms(5)), [y, z, x], True, [z]),
            Step(PageRequest(2, at_ms(4)), [z, w], False, [w]),
        ],
    )


def test_feed_returns_new_actions_newest_first_whatever_the_page_order() -> None:
    """A page in any order comes back newest first, without the repeats at ``floor`` and
    without anything newer than ``floor``."""
    walk = start_walk(3)
    walk.next_request()
    assert walk.feed([act("c", 1), act("a", 3), act("b", 2)], True) == [
        act("a", 3),
        act("b", 2),
        act("c", 1),
    ]
    walk.next_request()
    page = [act("e", 0), act("b", 2), act("c", 1), act("d", 1)]
    assert walk.feed(page, True) == [act("d", 1), act("e", 0)]


def test_caller_end_date_filters_out_actions_at_or_after_it() -> None:
    """An action created at or after the caller's ``end_date`` is never yielded, even when
    an inclusive server returns it."""
    walk = start_walk(5, end_date=at_ms(3) + ONE_US)
    walk.next_request()
    page = [act("at-ceil", 4), act("at", 3), act("before", 2)]
    assert walk.feed(page, False) == [act("at", 3), act("before", 2)]
    assert walk.inclusive is True  # at-ceil was created at the end_date sent (4 ms)


@pytest.mark.parametrize(
    ("end_date", "names"),
    [
        pytest.param(None, ["p", "q1", "q2", "r"], id="no-end-date"),
        pytest.param(at_ms(2), ["r"], id="at-group-time-excludes-it"),
        pytest.param(at_ms(2) - ONE_US, ["r"], id="1us-before-excludes-it"),
        pytest.param(at_ms(2) + ONE_US, ["q1", "q2", "r"], id="1us-after-includes-it"),
        pytest.param(at_ms(4), ["p", "q1", "q2", "r"], id="after-everything"),
        pytest.param(at_ms(0), [], id="at-the-oldest-excludes-all"),
    ],
)
@pytest.mark.parametrize("reading", BOTH_READINGS)
@pytest.mark.parametrize("page_size", [1, 2, 100])
def test_walk_yields_actions_strictly_before_the_caller_end_date(
    end_date: datetime | None, names: list[str], reading: Reading, page_size: int
) -> None:
    """Only actions created strictly before the caller's ``end_date``, under either reading."""
    actions = [act("p", 3), act("q1", 2), act("q2", 2), act("r", 0)]
    server = ModelServer(actions, reading, reports_has_more=False)
    expected = [a for a in actions if a.id[3:] in names]
    audit = WalkAudit(page_size, reading, end_date, expected)
    result = walk_to_end(
        start_walk(page_size, end_date),
        server.answer,
        max_requests=loop_guard(len(actions)),
        audit=audit,
    )
    assert_exact_walk(result, expected)


# --- table-driven: stop conditions and misuse -----------------------------------------


@pytest.mark.parametrize("page_length", [0, 1, 3])
def test_has_more_false_ends_the_walk_even_after_a_full_page(page_length: int) -> None:
    """``has_more: false`` is final, whatever the page's length."""
    walk = start_walk(3)
    walk.next_request()
    page = [act(f"x{i}", -i) for i in range(page_length)]
    assert walk.feed(page, False) == page
    assert walk.done
    assert walk.next_request() is None


@pytest.mark.parametrize(("page_length", "done"), [(0, True), (2, True), (3, False)])
def test_absent_has_more_ends_the_walk_on_a_page_shorter_than_limit(
    page_length: int, done: bool
) -> None:
    """With ``has_more`` absent, a full page means "maybe more"; a shorter one is the end."""
    walk = start_walk(3)
    walk.next_request()
    walk.feed([act(f"x{i}", -i) for i in range(page_length)], None)
    assert walk.done is done
    assert (walk.next_request() is None) is done


def test_has_more_true_is_trusted_for_a_short_page() -> None:
    """``has_more: true`` continues the walk even when the page is shorter than ``limit``."""
    walk = start_walk(3)
    walk.next_request()
    walk.feed([act("x", 0)], True)
    assert not walk.done
    assert walk.next_request() == PageRequest(limit=4, end_date=at_ms(1))


def test_feed_without_a_pending_request_raises_runtime_error() -> None:
    """``feed`` before any ``next_request``, or twice for one request, is a caller bug."""
    walk = start_walk(3)
    with pytest.raises(RuntimeError, match="without a pending next_request"):
        walk.feed([], None)
    walk.next_request()
    walk.feed([act("x", 0)], True)
    with pytest.raises(RuntimeError, match="without a pending next_request"):
        walk.feed([act("y", -1)], True)
    assert walk.requests_made == 1
    assert walk.floor == at_ms(0)


@pytest.mark.parametrize(
    ("page_size", "error"),
    [(0, ValueError), (101, ValueError), (-1, ValueError), (True, TypeError), ("10", TypeError)],
)
def test_page_size_outside_1_to_100_is_refused(page_size: object, error: type[Exception]) -> None:
    """``page_size`` is checked like ``limit``: an int in 1..100."""
    with pytest.raises(error, match="page_size"):
        TimeWalk[Action](page_size=page_size)  # type: ignore[arg-type]


# --- table-driven: PaginationError ----------------------------------------------------


def test_empty_page_with_has_more_raises_after_one_retry_at_limit_100() -> None:
    """``has_more: true`` with an empty page: one retry with ``limit=100``, then
    PaginationError (not an endless loop); the walk is done afterwards."""
    walk = start_walk(10)
    assert walk.next_request() == PageRequest(limit=10, end_date=None)
    assert walk.feed([], True) == []
    assert walk.next_request() == PageRequest(limit=100, end_date=None)
    with pytest.raises(PaginationError, match="cannot advance") as info:
        walk.feed([], True)
    assert info.value.end_date is None
    assert "end_date=not sent" in str(info.value)
    assert walk.done
    assert walk.next_request() is None


def test_empty_page_with_has_more_at_limit_100_raises_at_once() -> None:
    """At ``limit=100`` there is no larger request to try: PaginationError on the first."""
    walk = start_walk(100)
    walk.next_request()
    with pytest.raises(PaginationError):
        walk.feed([], True)


def test_empty_page_with_has_more_mid_walk_names_the_end_date_it_was_stuck_at() -> None:
    """Mid-walk, the error carries the ``end_date`` sent, in the wire format."""
    walk = start_walk(5)
    walk.next_request()
    walk.feed([act("x", 7)], True)
    assert walk.next_request() == PageRequest(limit=6, end_date=at_ms(8))
    assert walk.feed([], True) == []
    assert walk.next_request() == PageRequest(limit=100, end_date=at_ms(8))
    with pytest.raises(PaginationError) as info:
        walk.feed([], True)
    assert info.value.end_date == "2022-09-05T11:40:17.008Z"


@pytest.mark.parametrize("reports_has_more", [True, False])
@pytest.mark.parametrize("reading", BOTH_READINGS)
@pytest.mark.parametrize("page_size", [1, 37, 100])
@pytest.mark.parametrize("big", [101, 150])
def test_tie_group_over_100_raises_pagination_error(
    big: int, page_size: int, reading: Reading, reports_has_more: bool
) -> None:
    """More than 100 actions in one millisecond, with older actions behind them:
    PaginationError after a duplicate-free prefix, never a silent skip."""
    actions = make_actions((1, 3), (0, big), (-1, 5))
    server = ModelServer(
        actions, reading, PageOrder.SHUFFLED, reports_has_more, random.Random(big + page_size)
    )
    walk = start_walk(page_size)
    result = walk_to_end(walk, server.answer, max_requests=loop_guard(len(actions)))
    assert isinstance(result.error, PaginationError)
    assert_no_skip_before_error(result, actions, stuck_at=at_ms(0))


def test_caller_end_date_at_the_end_of_the_datetime_range_is_usable() -> None:
    """An ``end_date`` of ``datetime.max`` (aware) means "everything": the walk must not
    crash rounding it up to the millisecond."""
    actions = make_actions((0, 3), (-1, 2))
    server = ModelServer(actions, Reading.EXCLUSIVE)
    walk = start_walk(2, end_date=datetime.max.replace(tzinfo=UTC))
    result = walk_to_end(walk, server.answer, max_requests=loop_guard(len(actions)))
    assert_exact_walk(result, expected_actions(actions, None))


LAST_MS = datetime.max.replace(microsecond=999_000, tzinfo=UTC)
"""The last whole millisecond a datetime can hold: ``9999-12-31T23:59:59.999Z``."""


@pytest.mark.parametrize("end_date", [None, datetime.max.replace(tzinfo=UTC)])
@pytest.mark.parametrize("reading", BOTH_READINGS)
def test_tie_group_in_the_last_millisecond_of_the_datetime_range_is_walked_whole(
    reading: Reading, end_date: datetime | None
) -> None:
    """Actions created at ``9999-12-31T23:59:59.999Z`` are before ``datetime.max``: all of
    them are yielded, one page at a time, under either reading (no silent skip where
    ``floor + 1 ms`` does not exist)."""
    actions = [Action(f"aa_last_{i}", LAST_MS) for i in range(3)]
    actions.append(Action("aa_before", LAST_MS - ONE_MS))
    server = ModelServer(actions, reading, ties=TieOrder.STABLE)
    walk = start_walk(1, end_date)
    result = walk_to_end(walk, server.answer, max_requests=loop_guard(len(actions)))
    assert_exact_walk(result, expected_actions(actions, end_date))


# --- since, and resuming from a saved position ------------------------------------------


def walk_plain(walk: TimeWalk[Action], server: ModelServer, *, max_requests: int) -> list[Action]:
    """WalkResult to the end without an audit; fail on a PaginationError or an endless walk."""
    result = walk_to_end(walk, server.answer, max_requests=max_requests)
    assert result.error is None, result.error
    return result.yielded


@settings(max_examples=300, deadline=None)
@given(
    scenario=scenarios(),
    since_ms=st.integers(-25, 8),
    since_micros=st.sampled_from([0, 1, 999]),
    reading=st.sampled_from(Reading),
    order=st.sampled_from(PageOrder),
    ties=st.sampled_from(TieOrder),
    reports_has_more=st.booleans(),
    page_size=page_sizes,
    seed=seeds,
)
def test_since_yields_exactly_the_actions_at_or_after_it_and_stops_there(
    scenario: Scenario,
    since_ms: int,
    since_micros: int,
    reading: Reading,
    order: PageOrder,
    ties: TieOrder,
    reports_has_more: bool,
    page_size: int,
    seed: int,
) -> None:
    """``since`` is inclusive; nothing older is yielded; the walk asks for no page once a
    page reached past ``since`` (so at most one request beyond the wanted actions)."""
    since = at_ms(since_ms) + since_micros * ONE_US
    server = ModelServer(
        scenario.actions, reading, order, reports_has_more, random.Random(seed), ties
    )
    walk: TimeWalk[Action] = TimeWalk(page_size=page_size, end_date=scenario.end_date, since=since)
    yielded = walk_plain(walk, server, max_requests=loop_guard(len(scenario.actions)))
    expected = [a for a in scenario.expected() if a.created_at >= since]
    assert Counter(a.id for a in yielded) == Counter(a.id for a in expected)
    assert is_newest_first(yielded)
    assert len(server.queries) <= request_bound(len(expected))


@settings(max_examples=300, deadline=None)
@given(
    scenario=scenarios(),
    reading=st.sampled_from(Reading),
    order=st.sampled_from(PageOrder),
    ties=st.sampled_from(TieOrder),
    reports_has_more=st.booleans(),
    page_size=page_sizes,
    cut=st.integers(0, 10_000),
    seed=seeds,
)
def test_resuming_from_any_position_of_a_page_loses_and_repeats_nothing(
    scenario: Scenario,
    reading: Reading,
    order: PageOrder,
    ties: TieOrder,
    reports_has_more: bool,
    page_size: int,
    cut: int,
    seed: int,
) -> None:
    """``position_in_page`` after any yielded action of any page (what a stream's resume
    token holds), restored into a fresh walk, yields exactly the rest."""
    server = ModelServer(
        scenario.actions, reading, order, reports_has_more, random.Random(seed), ties
    )
    first: TimeWalk[Action] = TimeWalk(page_size=page_size, end_date=scenario.end_date)
    expected = scenario.expected()
    stop_after = cut % (len(expected) + 1)
    yielded: list[Action] = []
    state = first.snapshot()
    while (request := first.next_request()) is not None:
        page, has_more = server.answer(request.params())
        before = first.snapshot()
        fresh = first.feed(page, has_more)
        taken = min(len(fresh), stop_after - len(yielded))
        yielded += fresh[:taken]
        state = position_in_page(before, first.snapshot(), fresh, taken)
        if (len(yielded) == stop_after and taken < len(fresh)) or first.done:
            break
    second: TimeWalk[Action] = TimeWalk(page_size=page_size, end_date=scenario.end_date)
    second.restore(WalkPosition.from_portable(state.portable()))  # as a token keeps it
    rest = walk_plain(second, server, max_requests=loop_guard(len(scenario.actions)))
    ids = [a.id for a in yielded + rest]
    assert len(ids) == len(set(ids)), "an action was repeated across the resume"
    assert Counter(ids) == Counter(a.id for a in expected), "an action was lost"


def test_a_position_in_a_page_counts_the_ties_yielded_before_the_page() -> None:
    """Stopped after the first action of a page whose newest action shares the floor's
    millisecond: the position's ids at the floor include those yielded before."""
    walk = start_walk(2)
    assert walk.next_request() is not None
    walk.feed([act("a", 10), act("b", 9)], True)
    before = walk.snapshot()
    assert walk.next_request() is not None
    fresh = walk.feed([act("b", 9), act("c", 9), act("d", 8)], True)
    assert [action.id for action in fresh] == ["aa_c", "aa_d"]
    after = walk.snapshot()
    assert position_in_page(before, after, fresh, 0) == before
    assert position_in_page(before, after, fresh, 2) == after
    middle = position_in_page(before, after, fresh, 1)
    assert (middle.floor, middle.seen, middle.done) == (at_ms(9), {"aa_b", "aa_c"}, False)


def test_a_pagination_error_is_final_even_after_a_restore() -> None:
    """The stream puts the walk back after any error; after a PaginationError the walk
    must stay over, or iterating again would ask the server the same in vain."""
    walk = start_walk(100)
    crowd = [act(f"x{i}", 5) for i in range(100)]
    assert walk.next_request() is not None
    walk.feed(crowd, True)
    saved = walk.snapshot()
    assert walk.next_request() == PageRequest(limit=100, end_date=at_ms(5) + ONE_MS)
    with pytest.raises(PaginationError):
        walk.feed(crowd, True)  # nothing new, and no other request to try
    walk.restore(saved)
    assert walk.done
    assert walk.next_request() is None


def test_snapshot_and_restore_undo_a_feed() -> None:
    """What the stream does when a page cannot be structured: the next request is the
    one that fetched that page."""
    actions = make_actions((0, 3), (-1, 3), (-2, 3))
    server = ModelServer(actions, Reading.EXCLUSIVE)
    walk = start_walk(2)
    request = walk.next_request()
    assert request is not None
    walk.feed(*server.answer(request.params()))
    second = walk.next_request()
    saved = walk.snapshot()
    walk.feed(*server.answer(second.params() if second else {}))
    walk.restore(saved)
    assert walk.next_request() == second


@pytest.mark.parametrize("floor_set", [False, True], ids=["first_page", "later_page"])
def test_an_action_sent_twice_in_one_page_is_yielded_once(floor_set: bool) -> None:
    walk = start_walk(3)
    assert walk.next_request() is not None
    if floor_set:
        walk.feed([act("a", 20), act("b", 19), act("c", 18)], True)
        assert walk.next_request() is not None
    page = [act("x", 10), act("y", 9), act("x", 10)]
    assert [action.id for action in walk.feed(page, True)] == ["aa_x", "aa_y"]
