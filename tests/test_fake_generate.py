"""The fake's pure parts: the action generator, timestamp reading/writing, page selection.

No HTTP here: these pin down what the server builds on, with plain and
property-based (hypothesis) tests.
"""

from __future__ import annotations

import functools
import itertools
import random
import re
import time
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voucherify_async._models import AsyncActionStatus, AsyncActionType
from voucherify_async.testing import generate_actions
from voucherify_async.testing._generate import IMPORT_TYPES, MESSAGE_TYPES, UPDATE_TYPES
from voucherify_async.testing._store import ActionStore, list_body
from voucherify_async.testing._timestamps import (
    Timestamp,
    format_timestamp,
    parse_timestamp,
    timestamp_ms,
)

API_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MS = timedelta(milliseconds=1)


def ms_of(text: str) -> int:
    return (datetime.fromisoformat(text) - EPOCH) // ONE_MS


@pytest.fixture(scope="module")
def sample() -> list[dict[str, Any]]:
    return generate_actions(3_000, seed=11)


# -- generate_actions ----------------------------------------------------------------------


def test_generator_is_deterministic_per_seed() -> None:
    """Same arguments, same list; another seed, another list."""
    assert generate_actions(400, seed=3) == generate_actions(400, seed=3)
    assert generate_actions(400, seed=3) != generate_actions(400, seed=4)
    assert generate_actions(0) == []


def test_generator_covers_every_type_and_status(sample: list[dict[str, Any]]) -> None:
    """All 22 documented types and all 4 statuses occur; DONE dominates, FAILED next."""
    assert {a["type"] for a in sample} == {t.value for t in AsyncActionType}
    statuses = Counter(a["status"] for a in sample)
    assert set(statuses) == {s.value for s in AsyncActionStatus}
    assert statuses["DONE"] > statuses["FAILED"] > statuses["IN_PROGRESS"] > 0
    assert statuses["DONE"] / len(sample) > 0.8
    assert statuses["ENQUEUED"] > 0


def test_generator_ids_timestamps_and_request_ids_look_like_the_api(
    sample: list[dict[str, Any]],
) -> None:
    """Unique ``aa_`` + 18 hex ids, ``v-`` + 18 hex request ids, millisecond ``Z``
    timestamps, newest first starting at ``newest``, ``object: async_action``."""
    ids = [a["id"] for a in sample]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"aa_[0-9a-f]{18}", i) for i in ids)
    assert all(re.fullmatch(r"v-[0-9a-f]{18}", a["request_id"]) for a in sample)
    assert all(API_TIMESTAMP.fullmatch(a["created_at"]) for a in sample)
    assert all(API_TIMESTAMP.fullmatch(a["updated_at"]) for a in sample)
    created = [a["created_at"] for a in sample]
    assert created == sorted(created, reverse=True)
    assert created[0] == "2026-01-01T00:00:00.000Z"
    assert {a["object"] for a in sample} == {"async_action"}


def test_generator_makes_one_millisecond_tie_groups_of_2_to_max_tie() -> None:
    """Ties exist and no group exceeds ``max_tie``; ``tie_rate=0`` makes none."""
    actions = generate_actions(2_000, seed=1, tie_rate=0.3, max_tie=4)
    sizes = Counter(
        len(list(group)) for _, group in itertools.groupby(a["created_at"] for a in actions)
    )
    assert {size for size in sizes if size > 1} == {2, 3, 4}
    untied = generate_actions(2_000, seed=1, tie_rate=0.0)
    assert len({a["created_at"] for a in untied}) == 2_000


def test_generator_newest_is_honoured_in_any_timezone() -> None:
    """The newest action is created at ``newest``, written in UTC."""
    newest = datetime(2024, 3, 1, 12, 0, 0, 250_000, tzinfo=timezone(timedelta(hours=2)))
    assert generate_actions(1, newest=newest)[0]["created_at"] == "2024-03-01T10:00:00.250Z"


def test_generator_progress_processing_time_and_result_follow_the_status(
    sample: list[dict[str, Any]],
) -> None:
    """Finished actions: progress 100, processing_time = updated_at - created_at, a result.
    ENQUEUED: progress 0, nothing processed; IN_PROGRESS: 1..99; neither has a result."""
    for a in sample:
        elapsed = ms_of(a["updated_at"]) - ms_of(a["created_at"])
        if a["status"] in ("DONE", "FAILED"):
            assert a["progress"] == 100
            assert a["processing_time"] == elapsed > 0
            assert isinstance(a["result"], dict)
        else:
            assert "result" not in a
            assert "processing_time" not in a
            if a["status"] == "ENQUEUED":
                assert (a["progress"], elapsed) == (0, 0)
            else:
                assert 1 <= a["progress"] <= 99
                assert elapsed >= 0


def test_generator_operation_status_only_on_bulk_and_metadata_updates(
    sample: list[dict[str, Any]],
) -> None:
    """``operation_status`` appears exactly on the six update types: SUCCESS when DONE,
    FAILED when FAILED, UNKNOWN while running."""
    expected = {
        "DONE": "SUCCESS",
        "FAILED": "FAILED",
        "IN_PROGRESS": "UNKNOWN",
        "ENQUEUED": "UNKNOWN",
    }
    for a in sample:
        if a["type"] in UPDATE_TYPES:
            assert a["operation_status"] == expected[a["status"]]
        else:
            assert "operation_status" not in a


def test_generator_results_take_their_family_shape_and_failures_show(
    sample: list[dict[str, Any]],
) -> None:
    """Message types: message + done_count. Imports: message, failed[] (one item per
    failure), done_count, failed_count. Updates: done_count, failed_count, reports,
    reports_available_till, errors[]. FAILED actions report failures (message types: 0 done).
    Every family occurs with both DONE and FAILED."""
    seen: set[tuple[str, str]] = set()
    for a in sample:
        result = a.get("result")
        if result is None:
            continue
        failed = a["status"] == "FAILED"
        if a["type"] in MESSAGE_TYPES:
            family = "message"
            assert list(result) == ["message", "done_count"]
            assert f" {result['done_count']} " in result["message"]
            if failed:
                assert result["done_count"] == 0
        elif a["type"] in IMPORT_TYPES:
            family = "import"
            assert list(result) == ["message", "failed", "done_count", "failed_count"]
            assert len(result["failed"]) == result["failed_count"]
            assert result["message"].startswith(f"{result['done_count']} ")
            if failed:
                assert result["failed_count"] > 0
                assert result["done_count"] == 0
        else:
            family = "update"
            assert list(result) == [
                "done_count",
                "failed_count",
                "reports",
                "reports_available_till",
                "errors",
            ]
            assert len(result["errors"]) == result["failed_count"]
            assert API_TIMESTAMP.fullmatch(result["reports_available_till"])
            assert all(url.startswith("https://") for url in result["reports"])
            if failed:
                assert result["failed_count"] > 0
                assert result["errors"]
        seen.add((family, a["status"]))
    assert seen == {(f, s) for f in ("message", "import", "update") for s in ("DONE", "FAILED")}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"count": -1},
        {"count": 1, "tie_rate": 1.5},
        {"count": 1, "tie_rate": -0.1},
        {"count": 1, "max_tie": 1},
        {"count": 1, "max_tie": 100},
        {"count": 1, "newest": datetime(2026, 1, 1)},  # naive
    ],
)
def test_generator_refuses_arguments_out_of_range(kwargs: dict[str, Any]) -> None:
    """Negative counts, rates outside 0..1, max_tie outside 2..99, naive ``newest``."""
    with pytest.raises(ValueError, match=r"."):
        generate_actions(**kwargs)


def test_generator_is_fast() -> None:
    """20,000 actions in well under two seconds (it scales linearly: 500,000 in seconds)."""
    started = time.process_time()
    generate_actions(20_000, seed=9)
    assert time.process_time() - started < 2.0


# -- timestamps ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2016-11-16", "2016-11-16T00:00:00.000Z"),
        ("2016-11-16T14:14:31Z", "2016-11-16T14:14:31.000Z"),
        ("2016-11-16T14:14Z", "2016-11-16T14:14:00.000Z"),
        ("2022-09-05T11:40:17.098Z", "2022-09-05T11:40:17.098Z"),
        ("2022-09-05T11:40:17.1Z", "2022-09-05T11:40:17.100Z"),
        ("2022-09-05T13:40:17.098+02:00", "2022-09-05T11:40:17.098Z"),
        ("2022-09-06T00:00:00.000000+0000", "2022-09-06T00:00:00.000Z"),
        ("2022-09-05T23:00:00-0100", "2022-09-06T00:00:00.000Z"),
        ("2022-09-05T12:40:17,098+01", "2022-09-05T11:40:17.098Z"),
        ("2022-09-05T11:40:17.098", "2022-09-05T11:40:17.098Z"),
    ],
)
def test_parse_timestamp_reads_every_documented_and_sent_form_exactly(
    text: str, expected: str
) -> None:
    """Each form names the instant shown, to the millisecond, with nothing left over."""
    assert parse_timestamp(text) == Timestamp(ms_of(expected), exact=True)


def test_parse_timestamp_keeps_what_is_finer_than_a_millisecond() -> None:
    """Digits past the millisecond make the instant inexact (floor kept); zeros do not."""
    base = ms_of("2022-09-05T11:40:17.098Z")
    assert parse_timestamp("2022-09-05T11:40:17.0985Z") == Timestamp(base, exact=False)
    assert parse_timestamp("2022-09-05T11:40:17.098000000Z") == Timestamp(base, exact=True)
    assert parse_timestamp("2022-09-05T11:40:17.098000001Z") == Timestamp(base, exact=False)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2016",
        "2016-11",
        "20161116",
        "2016-11-16T",
        "2016-11-16T14",
        "2016-11-16 14:14:31Z",
        "2016-11-16T14:14:31.Z",
        "2016-11-16T24:00:00Z",
        "2016-11-16T14:60:00Z",
        "2016-11-31",
        "2016-11-16T14:14:31+24:00",
        "2016-11-16T14:14:31+02:60",
        "2016-11-16T14:14:31 Z",
        "0000-01-01",
        "\u0662016-11-16",  # a non-ASCII digit
    ],
)
def test_parse_timestamp_refuses_everything_else(text: str) -> None:
    """Not ISO-8601, or not a real date, time or offset: ValueError."""
    with pytest.raises(ValueError, match=r"."):
        parse_timestamp(text)


MIN_MS = ms_of("0001-01-01T00:00:00.000Z")
MAX_MS = ms_of("9999-12-31T23:59:59.999Z")


@given(st.integers(MIN_MS, MAX_MS))
def test_format_timestamp_round_trips_through_both_readers(ms: int) -> None:
    """Any millisecond in years 1..9999 formats in the API's form and reads back."""
    text = format_timestamp(ms)
    assert API_TIMESTAMP.fullmatch(text)
    assert text == datetime.fromtimestamp(0, UTC).__add__(ms * ONE_MS).isoformat(
        timespec="milliseconds"
    ).replace("+00:00", "Z")
    assert timestamp_ms(text) == ms
    assert parse_timestamp(text) == Timestamp(ms, exact=True)


OFFSETS = st.sampled_from(
    [UTC, timezone(timedelta(hours=2)), timezone(-timedelta(hours=5, minutes=30))]
)


@given(
    st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1), timezones=OFFSETS),
    st.integers(-2, 2),
)
def test_first_ms_after_splits_millisecond_timestamps_exactly(moment: datetime, step: int) -> None:
    """For any instant with microseconds and any offset, a millisecond timestamp ``t``
    passes the exclusive filter iff ``t < instant`` and the inclusive one iff ``t <= instant``."""
    stamp = parse_timestamp(moment.isoformat())
    instant_us = (moment - EPOCH) // timedelta(microseconds=1)
    t = stamp.floor_ms + step
    assert (t < stamp.first_ms_after(inclusive=False)) == (t * 1000 < instant_us)
    assert (t < stamp.first_ms_after(inclusive=True)) == (t * 1000 <= instant_us)


def test_timestamp_ms_refuses_sub_millisecond_and_non_timestamps() -> None:
    """Stored ``created_at`` values must be real instants of millisecond precision."""
    assert timestamp_ms("2016-11-16") == ms_of("2016-11-16T00:00:00.000Z")
    for text in (
        "2016-11-16T14:14:31.0001Z",
        "2016-02-30T00:00:00.000Z",
        "2016-11-16T24:00:00.000Z",
        "soon",
    ):
        with pytest.raises(ValueError, match=r"."):
            timestamp_ms(text)


# -- page selection -------------------------------------------------------------------------


@functools.cache
def _tied_actions(seed: int) -> list[dict[str, Any]]:
    return generate_actions(600, seed=seed, tie_rate=0.4)


def _naive_page(
    actions: list[dict[str, Any]], limit: int, before_ms: int | None
) -> tuple[list[str], bool]:
    """What ``ActionStore.page`` must return, by filtering and a stable sort."""
    ordered = sorted(actions, key=lambda a: -ms_of(a["created_at"]))
    matching = [a for a in ordered if before_ms is None or ms_of(a["created_at"]) < before_ms]
    return [a["id"] for a in matching[:limit]], len(matching) > limit


@given(st.integers(0, 10_000), st.integers(1, 100), st.integers(-5, 605), st.booleans())
def test_store_page_matches_a_naive_filter_and_sort(
    seed: int, limit: int, cut: int, unbounded: bool
) -> None:
    """Bisection gives the same page and ``has_more`` as filtering everything, at any cut,
    including cuts inside tie groups and before/after the whole store."""
    actions = _tied_actions(seed % 7)
    shuffled = random.Random(seed).sample(actions, len(actions))
    store = ActionStore.build(shuffled)
    newest = ms_of(actions[0]["created_at"])
    cut_index = min(max(cut, 0), len(actions) - 1)
    before_ms = None if unbounded else ms_of(actions[cut_index]["created_at"]) + (cut % 2)
    if cut < 0:
        before_ms = newest + 10
    page = store.page(limit=limit, before_ms=before_ms)
    assert ([a["id"] for a in page.actions], page.has_more) == _naive_page(
        shuffled, limit, before_ms
    )


@given(st.integers(0, 10_000), st.integers(0, 200))
def test_store_merged_equals_building_everything_at_once(seed: int, extra: int) -> None:
    """Adding actions (a few: inserted; many: sorted again) gives the same order as one
    build of old + new: newest first, stored ties before added ones."""
    actions = random.Random(seed).sample(_tied_actions(seed % 7), 600)
    base, added = actions[extra:], actions[:extra]
    merged = ActionStore.build(base).merged(added)
    expected = ActionStore.build(base + added)
    assert [a["id"] for a in merged.newest_first()] == [a["id"] for a in expected.newest_first()]
    assert all(merged.get(a["id"]) is a for a in actions)


def test_store_page_with_shuffled_ties_keeps_newest_first_and_complete_inner_groups() -> None:
    """Shuffling ties reorders only within a millisecond: the page is still newest first,
    every tie group but the last is complete, and the last holds members of its group."""
    actions = generate_actions(2_000, seed=4, tie_rate=0.6, max_tie=9)
    store = ActionStore.build(actions)
    groups: dict[str, set[str]] = {}
    for a in actions:
        groups.setdefault(a["created_at"], set()).add(a["id"])
    rng = random.Random(0)
    reordered = 0
    for start in range(0, 1_500, 37):
        before = ms_of(actions[start]["created_at"])
        page = store.page(limit=50, before_ms=before, shuffle_ties=rng).actions
        plain = store.page(limit=50, before_ms=before).actions
        assert len(page) == len(plain)
        created = [a["created_at"] for a in page]
        assert created == [a["created_at"] for a in plain]
        for instant, members in itertools.groupby(page, key=lambda a: a["created_at"]):
            ids = {a["id"] for a in members}
            if instant != created[-1]:
                assert ids == groups[instant]
            assert ids <= groups[instant]
        reordered += tuple(a["id"] for a in page) != tuple(a["id"] for a in plain)
    assert reordered > 0


class CountingAction(dict[str, Any]):
    """An action that counts how often its contents are read (``reads``, shared)."""

    reads: ClassVar[Counter[str]] = Counter()

    def items(self) -> Any:
        CountingAction.reads[self["id"]] += 1
        return super().items()

    def __iter__(self) -> Any:
        CountingAction.reads[dict.__getitem__(self, "id")] += 1
        return super().__iter__()


def test_store_serves_a_page_of_100_from_50_000_actions_reading_only_those_100() -> None:
    """Bisect + slice + dropping ``result`` (all the Python a list request runs besides
    JSON encoding) reads the page's 100 actions once each and no other: the cost of a
    page does not grow with the store (counted, not timed, so a busy machine cannot
    fail it)."""
    actions = [CountingAction(action) for action in generate_actions(50_000, seed=8)]
    store = ActionStore.build(actions)
    cuts = [ms_of(a["created_at"]) for a in random.Random(1).sample(actions, 50)]
    for before_ms in cuts:
        CountingAction.reads.clear()
        page = store.page(limit=100, before_ms=before_ms)
        body = list_body(page.actions, page.has_more)
        served = [action["id"] for action in body["async_actions"]]
        assert 0 < len(served) <= 100
        assert CountingAction.reads == Counter(served)
