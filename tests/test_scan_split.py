"""The scan's splitting logic, pure: walks that split while their requests are in flight
still yield every action exactly once; the range finder; the scan token."""

from __future__ import annotations

import base64
import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voucherify_async._split import (
    HistoryStart,
    ScanState,
    WalkProgress,
    WalkRange,
    decode_scan_token,
    encode_scan_token,
    fresh_position,
    plan_split,
    scan_digest,
    split_evenly,
)
from voucherify_async._walk import PageRequest, TimeWalk, WalkPosition

T0 = datetime(2025, 6, 1, tzinfo=UTC)
MS = timedelta(milliseconds=1)


@dataclass(frozen=True)
class Action:
    id: str
    created_at: datetime


def at(ms: int) -> datetime:
    return T0 + MS * ms


@st.composite
def histories(draw: st.DrawFn) -> list[Action]:
    """Newest first: bursts (many actions a millisecond apart), empty stretches, ties."""
    moments: list[int] = []
    clock = 0
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(["burst", "sparse", "gap", "tie"]))
        if kind == "gap":
            clock += draw(st.integers(1_000, 10_000_000))
        elif kind == "tie":
            moments += [clock] * draw(st.integers(2, 30))
            clock += 1
        else:
            step = 1 if kind == "burst" else 5_000
            for _ in range(draw(st.integers(1, 120))):
                moments.append(clock)
                clock += draw(st.integers(1, step))
    moments.sort(reverse=True)
    return [Action(f"aa_{i:05d}", at(ms)) for i, ms in enumerate(moments)]


def answer(
    history: list[Action], request: PageRequest, inclusive: bool
) -> tuple[list[Action], bool]:
    """What the API returns: the newest ``limit`` actions before ``end_date``, and has_more."""
    bound = request.end_date
    matching = [
        a
        for a in history
        if bound is None or a.created_at < bound or (inclusive and a.created_at == bound)
    ]
    return matching[: request.limit], len(matching) > request.limit


@dataclass
class SimWalk:
    cursor: TimeWalk[Action]
    progress: WalkProgress
    in_flight: PageRequest | None = None
    yielded: list[str] = field(default_factory=list)


def new_walk(since: datetime | None, end: datetime | None, page_size: int) -> SimWalk:
    cursor: TimeWalk[Action] = TimeWalk(page_size=page_size, end_date=end, since=since)
    return SimWalk(cursor, WalkProgress(since, end))


def split(walks: list[SimWalk], index: int, moment: datetime, page_size: int) -> bool:
    """What the scan does: narrow the walk's since, and a new walk takes the older part."""
    walk = walks[index]
    old_since = walk.cursor.since
    if not walk.cursor.try_split(moment):
        return False
    walk.progress.since = moment
    new = new_walk(old_since, moment, page_size)
    new.progress.ms_per_page = walk.progress.ms_per_page
    walks.append(new)
    return True


@settings(max_examples=150, deadline=None)
@given(
    history=histories(),
    inclusive=st.booleans(),
    page_size=st.integers(1, 40),
    bounds=st.tuples(st.none() | st.integers(-10, 3_000), st.none() | st.integers(0, 30_000_000)),
    steps=st.lists(
        st.tuples(
            st.sampled_from(["send", "answer", "plan", "cut"]), st.integers(0, 63), st.floats(0, 1)
        ),
        max_size=300,
    ),
)
def test_walks_split_at_any_moment_yield_every_action_exactly_once(
    history: list[Action],
    inclusive: bool,
    page_size: int,
    bounds: tuple[int | None, int | None],
    steps: list[tuple[str, int, float]],
) -> None:
    """Random histories, random interleavings of requests sent, answers fed and splits
    (by the planner, or at any millisecond): the walks yield each action of
    ``[since, end)`` once, ties at a split instant included."""
    since = at(bounds[0]) if bounds[0] is not None else None
    end = at(bounds[1]) if bounds[1] is not None else None
    if since is not None and end is not None and not since < end:
        end = None
    walks = [new_walk(since, end, page_size)]
    lower = since if since is not None else T0 - MS * 20

    def send(walk: SimWalk) -> None:
        if walk.in_flight is None:
            walk.in_flight = walk.cursor.next_request()

    def feed(walk: SimWalk) -> None:
        if walk.in_flight is None:
            return
        page, more = answer(history, walk.in_flight, inclusive)
        before = walk.cursor.floor
        fresh = walk.cursor.feed(page, more)
        walk.in_flight = None
        walk.yielded += [a.id for a in fresh]
        if fresh:
            walk.progress.saw_page(
                newest=fresh[0].created_at,
                oldest=fresh[-1].created_at,
                count=len(fresh),
                previous_floor=before,
                page_size=page_size,
            )
        walk.progress.done = walk.cursor.done

    for kind, pick, fraction in steps:
        walk = walks[pick % len(walks)]
        if kind == "send":
            send(walk)
        elif kind == "answer":
            feed(walk)
        elif kind == "plan":
            plan = plan_split([w.progress for w in walks], lower=lower)
            if plan is not None:
                index, moment = plan
                split(walks, index, moment, page_size)
        else:
            low = walk.cursor.since or lower
            newest = history[0].created_at + MS if history else low + MS * 100
            high = walk.cursor.end_date or newest  # claimed range too: refused
            moment = low + (high - low) * fraction
            moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
            split(walks, walks.index(walk), moment, page_size)
    for walk in walks:  # the rest, without more splits
        for _ in range(10_000):
            send(walk)
            if walk.in_flight is None:
                break
            feed(walk)
    got = [action for walk in walks for action in walk.yielded]
    expected = {
        a.id
        for a in history
        if (since is None or a.created_at >= since) and (end is None or a.created_at < end)
    }
    assert len(got) == len(set(got)), "an action came twice"
    assert set(got) == expected, "an action was lost"


def test_a_split_hands_over_only_unclaimed_range() -> None:
    cursor: TimeWalk[Action] = TimeWalk(page_size=2, end_date=at(100), since=at(0))
    assert not cursor.try_split(at(0)), "not strictly after since"
    assert not cursor.try_split(at(100)), "not strictly before end_date"
    cursor.next_request()
    cursor.feed([Action("b", at(60)), Action("a", at(50))], True)
    assert not cursor.try_split(at(50)), "at the floor: claimed"
    assert not cursor.try_split(at(70)), "above the floor: claimed"
    assert cursor.try_split(at(49))
    assert cursor.since == at(49)
    assert not cursor.try_split(at(49))


def test_the_planner_splits_the_walk_with_the_most_pages_left_at_the_middle() -> None:
    sparse = WalkProgress(at(0), at(1000), top=at(900), ms_per_page=100.0)  # 9 pages left
    dense = WalkProgress(at(1000), at(2000), top=at(1500), ms_per_page=10.0)  # 50 pages left
    assert plan_split([sparse, dense]) == (1, at(1250))
    assert plan_split([sparse]) == (0, at(450))


def test_the_planner_leaves_alone_walks_with_little_left_or_nothing_seen() -> None:
    assert plan_split([WalkProgress(at(0), at(1000), top=at(140), ms_per_page=100.0)]) is None
    assert plan_split([WalkProgress(at(0), at(1000))]) is None, "no page seen: no rate"
    assert plan_split([WalkProgress(at(0), at(1000), top=at(1), ms_per_page=0.1)]) is None
    done = WalkProgress(at(0), at(1000), top=at(900), ms_per_page=1.0, done=True)
    assert plan_split([done]) is None


def test_a_page_shows_how_much_time_one_page_covers() -> None:
    walk = WalkProgress(at(0), at(10_000))
    walk.saw_page(newest=at(9_000), oldest=at(8_010), count=100, previous_floor=None, page_size=100)
    assert walk.ms_per_page == pytest.approx(1000.0)
    walk.saw_page(
        newest=at(8_000), oldest=at(7_510), count=50, previous_floor=at(8_010), page_size=100
    )
    assert walk.ms_per_page == pytest.approx(1000.0)
    assert walk.top == at(7_510)


@given(start=st.integers(0, 10**10), span=st.integers(1, 10**9), parts=st.integers(1, 64))
def test_split_evenly_cuts_inside_the_range_in_order(start: int, span: int, parts: int) -> None:
    cuts = split_evenly(at(start), at(start + span), parts)
    assert len(cuts) <= parts - 1
    edges = [at(start), *cuts, at(start + span)]
    assert all(a < b for a, b in itertools.pairwise(edges))


# --- the range finder ---------------------------------------------------------------


def newest_before(history: list[Action], moment: datetime) -> datetime | None:
    return next((a.created_at for a in history if a.created_at < moment), None)


@settings(max_examples=200, deadline=None)
@given(
    oldest_days=st.floats(0.001, 5000),
    length_days=st.floats(0.0001, 3000),
    gap_days=st.floats(0, 400),
)
def test_the_range_finder_brackets_the_oldest_action_with_few_requests(
    oldest_days: float, length_days: float, gap_days: float
) -> None:
    """``low`` is never after the oldest action, and close to it: within a 16th of the
    history's length (or the probes ran out of rounds), in at most 3 parallel rounds."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    newest = now - timedelta(days=gap_days)
    oldest = newest - timedelta(days=length_days)
    if oldest < datetime(2000, 1, 2, tzinfo=UTC):
        oldest = datetime(2000, 1, 2, tzinfo=UTC)
    history = [Action("n", newest), Action("o", oldest)]
    history = [a for a in history if a.created_at < now]
    finder = HistoryStart(now)
    while probes := finder.probes():
        finder.feed({p: newest_before(history, p) for p in probes})
    assert finder.low <= oldest
    assert finder.rounds <= 3
    assert finder.requests <= 30
    if finder.rounds < 3:
        assert (oldest - finder.low) * 16 <= max(newest - finder.low, MS * 16)


def test_the_range_finder_stops_at_once_on_an_empty_history() -> None:
    finder = HistoryStart(T0)
    probes = finder.probes()
    finder.feed(dict.fromkeys(probes))
    assert finder.probes() == []
    assert finder.low == T0


# --- the token ----------------------------------------------------------------------


def test_a_scan_token_round_trips_its_walks() -> None:
    params = scan_digest(at(0), None)
    walks = (
        WalkRange(
            at(500), None, WalkPosition(at(900), frozenset({"a", "b"}), True, False, 0, False)
        ),
        WalkRange(at(0), at(500), fresh_position()),
        WalkRange(None, at(0), fresh_position(False)),
    )
    state = ScanState(walks=walks, lower=at(-5), parameters=params)
    token = encode_scan_token(state)
    assert token.startswith("scan1.")
    assert decode_scan_token(token, params) == state


def test_a_scan_token_of_other_arguments_or_edited_or_of_a_stream_is_refused() -> None:
    token = encode_scan_token(ScanState(walks=(), lower=None, parameters=scan_digest(at(0), None)))
    with pytest.raises(ValueError, match="other arguments"):
        decode_scan_token(token, scan_digest(at(1), None))
    version, body, check = token.split(".")
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).replace(b'"w"', b'"x"')
    edited = ".".join([version, base64.urlsafe_b64encode(raw).rstrip(b"=").decode(), check])
    with pytest.raises(ValueError, match="damaged or was edited"):
        decode_scan_token(edited, scan_digest(at(0), None))
    with pytest.raises(ValueError, match="scan cursor"):
        decode_scan_token("v1.abc.def", scan_digest(at(0), None))
    with pytest.raises(TypeError):
        decode_scan_token(3, scan_digest(at(0), None))
