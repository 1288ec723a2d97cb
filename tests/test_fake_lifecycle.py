"""Actions that progress with the clock: the timeline, ``fake.start_action()``, ``ManualClock``.

The timeline is a pure function of elapsed time, checked with sync asserts; the
fake's answers over real loopback HTTP with a plain ``aiohttp.ClientSession`` and
a ``ManualClock`` (no sleeping).
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from voucherify_async.testing import (
    FAKE_APP_ID,
    FAKE_APP_TOKEN,
    FakeVoucherify,
    ManualClock,
    generate_actions,
)
from voucherify_async.testing._generate import IMPORT_TYPES, MESSAGE_TYPES, UPDATE_TYPES
from voucherify_async.testing._lifecycle import ActionTimeline
from voucherify_async.testing._timestamps import timestamp_ms

AUTH = {"X-App-Id": FAKE_APP_ID, "X-App-Token": FAKE_APP_TOKEN}
LIST = "/v1/async-actions"
T0 = datetime(2026, 1, 2, tzinfo=UTC)
ALL_TYPES = sorted({*MESSAGE_TYPES, *IMPORT_TYPES, *UPDATE_TYPES})


def timeline(**overrides: Any) -> ActionTimeline:
    fields: dict[str, Any] = {
        "action_id": "aa_1",
        "action_type": "CUSTOMERS.METADATA_UPDATE",
        "request_id": "v-1",
        "created_ms": 1_000_000,
        "duration": 10.0,
        "steps": 4,
        "outcome": "DONE",
        "result": None,
        **overrides,
    }
    return ActionTimeline.start(random.Random(0), **fields)


@contextlib.asynccontextmanager
async def serve(
    **knobs: Any,
) -> AsyncIterator[tuple[FakeVoucherify, aiohttp.ClientSession, ManualClock]]:
    clock = ManualClock()
    fake = FakeVoucherify(clock=clock, **knobs)
    async with fake, aiohttp.ClientSession(fake.base_url, headers=AUTH) as session:
        yield fake, session, clock


async def get(session: aiohttp.ClientSession, action_id: str) -> dict[str, Any]:
    async with session.get(f"{LIST}/{action_id}") as response:
        assert response.status == 200
        body: dict[str, Any] = await response.json()
        return body


async def first_listed(session: aiohttp.ClientSession) -> dict[str, Any]:
    async with session.get(LIST, params={"limit": 1}) as response:
        assert response.status == 200
        body: dict[str, Any] = (await response.json())["async_actions"][0]
        return body


# -- the timeline, without HTTP ------------------------------------------------------------


@pytest.mark.parametrize(
    ("elapsed", "status", "progress", "updated_after_ms"),
    [
        (0.0, "ENQUEUED", 0, 0),
        (1.999, "ENQUEUED", 0, 0),
        (2.0, "IN_PROGRESS", 20, 2_000),
        (5.5, "IN_PROGRESS", 40, 4_000),
        (6.0, "IN_PROGRESS", 60, 6_000),
        (9.999, "IN_PROGRESS", 80, 8_000),
        (10.0, "DONE", 100, 10_000),
        (3_600.0, "DONE", 100, 10_000),
    ],
)
def test_timeline_goes_enqueued_in_progress_done_in_equal_slots(
    elapsed: float, status: str, progress: int, updated_after_ms: int
) -> None:
    """10 s in 4 steps: ENQUEUED for 2 s, then progress 20, 40, 60, 80 every 2 s, DONE at
    10 s; ``updated_at`` is the start of the current slot."""
    state = timeline().at(elapsed)
    assert (state["status"], state["progress"]) == (status, progress)
    assert timestamp_ms(state["updated_at"]) - timestamp_ms(state["created_at"]) == updated_after_ms


def test_timeline_fields_while_running_and_once_finished() -> None:
    """Running: operation_status UNKNOWN, no processing_time, no result. Finished: SUCCESS,
    processing_time = updated_at - created_at = duration, and the result. Keys in the
    vendor examples' (and the generator's) order."""
    line = timeline()
    running, done = line.at(4.0), line.at(10.0)
    assert list(running) == [
        "id",
        "type",
        "status",
        "operation_status",
        "created_at",
        "updated_at",
        "request_id",
        "progress",
        "object",
    ]
    assert running["operation_status"] == "UNKNOWN"
    assert (running["id"], running["request_id"], running["object"]) == (
        "aa_1",
        "v-1",
        "async_action",
    )
    assert running["created_at"] == "1970-01-01T00:16:40.000Z"
    assert list(done) == [
        "id",
        "type",
        "status",
        "operation_status",
        "result",
        "created_at",
        "updated_at",
        "request_id",
        "progress",
        "processing_time",
        "object",
    ]
    assert done["operation_status"] == "SUCCESS"
    assert done["processing_time"] == 10_000
    assert timestamp_ms(done["updated_at"]) - timestamp_ms(done["created_at"]) == 10_000
    assert done["result"] is line.result


def test_failed_outcome_ends_failed_with_a_failure_result() -> None:
    """FAILED: status and operation_status FAILED, and the result reports failures."""
    done = timeline(outcome="FAILED").at(10.0)
    assert (done["status"], done["operation_status"]) == ("FAILED", "FAILED")
    assert done["result"]["done_count"] == 0
    assert done["result"]["failed_count"] >= 1
    assert len(done["result"]["errors"]) == done["result"]["failed_count"]


def test_every_type_gets_its_family_result_for_either_outcome() -> None:
    """Message types: message + done_count; imports: failed[] and counts; updates:
    reports, errors and counts, with operation_status. Others have no operation_status.
    A FAILED action did nothing (done_count 0)."""
    assert len(ALL_TYPES) == 22
    for action_type in ALL_TYPES:
        for outcome in ("DONE", "FAILED"):
            done = timeline(action_type=action_type, outcome=outcome).at(10.0)
            result = done["result"]
            if action_type in MESSAGE_TYPES:
                assert list(result) == ["message", "done_count"]
            elif action_type in IMPORT_TYPES:
                assert list(result) == ["message", "failed", "done_count", "failed_count"]
                assert len(result["failed"]) == result["failed_count"]
            else:
                assert list(result) == [
                    "done_count",
                    "failed_count",
                    "reports",
                    "reports_available_till",
                    "errors",
                ]
            assert ("operation_status" in done) is (action_type in UPDATE_TYPES), action_type
            if outcome == "FAILED":
                assert result["done_count"] == 0, action_type


def test_zero_steps_and_zero_duration() -> None:
    """``steps=0``: ENQUEUED until the end. ``duration=0``: finished from the start."""
    assert timeline(steps=0).at(9.99)["status"] == "ENQUEUED"
    instant = timeline(duration=0.0).at(0.0)
    assert (instant["status"], instant["progress"], instant["processing_time"]) == ("DONE", 100, 0)


def test_an_explicit_result_is_served_as_given_even_for_an_unknown_type() -> None:
    """``result=`` is kept (not copied); an undocumented type works with one, not without."""
    result = {"anything": [1, 2]}
    done = timeline(action_type="LOYALTY.POINTS_IMPORT", result=result).at(10.0)
    assert done["result"] is result
    assert "operation_status" not in done
    with pytest.raises(ValueError, match="no result shape"):
        timeline(action_type="LOYALTY.POINTS_IMPORT")


@pytest.mark.parametrize(
    ("overrides", "error", "match"),
    [
        ({"action_type": ""}, ValueError, "type"),
        ({"action_type": 5}, TypeError, "type"),
        ({"duration": -1.0}, ValueError, "duration"),
        ({"duration": float("nan")}, ValueError, "duration"),
        ({"steps": -1}, ValueError, "steps"),
        ({"steps": 2.5}, TypeError, "steps"),
        ({"outcome": "SUCCESS"}, ValueError, "outcome"),
        ({"result": ["not", "a", "mapping"]}, TypeError, "result"),
    ],
)
def test_timeline_arguments_are_checked(
    overrides: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        timeline(**overrides)


# -- ManualClock ------------------------------------------------------------------------------


def test_manual_clock_moves_only_when_advanced_both_readings_together() -> None:
    clock = ManualClock(datetime(2030, 5, 6, 7, 8, 9, tzinfo=UTC))
    assert (clock.monotonic(), clock.time()) == (
        0.0,
        datetime(2030, 5, 6, 7, 8, 9, tzinfo=UTC).timestamp(),
    )
    clock.advance(1.5)
    clock.advance(0)
    assert clock.monotonic() == 1.5
    assert clock.now() == datetime(2030, 5, 6, 7, 8, 10, 500_000, tzinfo=UTC)
    assert "2030-05-06T07:08:10.500" in repr(clock)
    assert ManualClock().now() == T0
    with pytest.raises(ValueError, match="seconds"):
        clock.advance(-1.0)
    with pytest.raises(ValueError, match="seconds"):
        clock.advance(float("inf"))
    with pytest.raises(ValueError, match="aware"):
        ManualClock(datetime(2030, 1, 1))


# -- start_action over HTTP -------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_started_action_progresses_with_the_clock_in_list_and_get() -> None:
    """ENQUEUED, then IN_PROGRESS 20..80, then DONE with the result, as the clock advances;
    the list shows the same state without ``result``."""
    async with serve(actions=generate_actions(50, seed=2)) as (fake, session, clock):
        action_id = fake.start_action("VOUCHERS.BULK_UPDATE", duration=10.0)
        seen = []
        for _ in range(6):
            details = await get(session, action_id)
            listed = await first_listed(session)
            assert listed["id"] == action_id
            assert listed == {k: v for k, v in details.items() if k != "result"}
            seen.append((details["status"], details["progress"], "result" in details))
            clock.advance(2.0)
    assert seen == [
        ("ENQUEUED", 0, False),
        ("IN_PROGRESS", 20, False),
        ("IN_PROGRESS", 40, False),
        ("IN_PROGRESS", 60, False),
        ("IN_PROGRESS", 80, False),
        ("DONE", 100, True),
    ]
    assert details["operation_status"] == "SUCCESS"
    assert details["processing_time"] == 10_000
    assert details["created_at"] == "2026-01-02T00:00:00.000Z"
    assert details["updated_at"] == "2026-01-02T00:00:10.000Z"


@pytest.mark.asyncio
async def test_a_failed_action_is_listed_failed_and_its_result_lists_failures() -> None:
    async with serve() as (fake, session, clock):
        action_id = fake.start_action("VOUCHERS.IMPORT", duration=1.0, outcome="FAILED")
        clock.advance(1.0)
        details = await get(session, action_id)
    assert details["status"] == "FAILED"
    assert details["result"]["failed_count"] == len(details["result"]["failed"]) >= 1
    assert details["result"]["done_count"] == 0


@pytest.mark.asyncio
async def test_the_newest_started_action_is_listed_first_above_generated_ones() -> None:
    """Started actions are created at the clock's time: newest first, later ones above."""
    async with serve(actions=generate_actions(30, seed=4)) as (fake, session, clock):
        first = fake.start_action()
        clock.advance(0.001)
        second = fake.start_action("PRODUCTS.METADATA_UPDATE")
        async with session.get(LIST, params={"limit": 3}) as response:
            page = await response.json()
    listed = [a["id"] for a in page["async_actions"]]
    assert listed[:2] == [second, first]
    assert listed[2] == generate_actions(1, seed=4)[0]["id"]
    assert page["async_actions"][0]["created_at"] == "2026-01-02T00:00:00.001Z"
    assert [a["id"] for a in fake.actions][:2] == [second, first]


def test_actions_started_in_the_same_millisecond_list_the_later_one_first() -> None:
    """Newest first holds within a tie too, whichever way the store grows meanwhile."""
    fake = FakeVoucherify(clock=ManualClock())
    first = fake.start_action()
    fake.add_actions([{"id": "aa_added", "created_at": "2026-01-02T00:00:00.000Z"}])
    second = fake.start_action()
    assert [a["id"] for a in fake.actions] == [second, first, "aa_added"]


@pytest.mark.asyncio
async def test_duration_defaults_to_the_action_duration_knob() -> None:
    async with serve(action_duration=3.0) as (fake, session, clock):
        action_id = fake.start_action()
        clock.advance(2.999)
        assert (await get(session, action_id))["status"] == "IN_PROGRESS"
        clock.advance(0.001)
        assert (await get(session, action_id))["status"] == "DONE"


@pytest.mark.asyncio
async def test_fake_actions_shows_a_started_action_as_it_stands_now() -> None:
    async with serve() as (fake, _, clock):
        action_id = fake.start_action(duration=1.0, result={"done_count": 7})
        assert fake.actions[0]["status"] == "ENQUEUED"
        clock.advance(1.0)
        now = fake.actions[0]
        assert (now["id"], now["status"], now["result"]) == (action_id, "DONE", {"done_count": 7})


def test_start_action_works_on_a_fake_that_is_not_serving_and_with_the_system_clock() -> None:
    """Ids are ``aa_`` + 18 hex and seeded; a zero duration is DONE at once, a long one is
    still ENQUEUED (no sleeping needed to tell)."""
    fake = FakeVoucherify(seed=3)
    done = fake.start_action(duration=0.0)
    waiting = fake.start_action(duration=3_600.0)
    states = {a["id"]: a for a in fake.actions}
    assert states[done]["status"] == "DONE"
    assert states[waiting]["status"] == "ENQUEUED"
    assert (
        abs(timestamp_ms(states[waiting]["created_at"]) / 1000 - datetime.now(UTC).timestamp()) < 60
    )
    assert FakeVoucherify(seed=3).start_action(duration=0.0) == done
    assert len(done) == 21
    assert done.startswith("aa_")


def test_start_action_refuses_bad_arguments_and_stores_nothing() -> None:
    fake = FakeVoucherify(clock=ManualClock())
    with pytest.raises(ValueError, match="no result shape"):
        fake.start_action("SOMETHING.NEW")
    with pytest.raises(ValueError, match="outcome"):
        fake.start_action(outcome="DONE!")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="duration"):
        fake.start_action(duration=-1)
    with pytest.raises(ValueError, match="steps"):
        fake.start_action(steps=-1)
    assert fake.actions == []


def test_action_knobs_are_checked_on_construction_and_on_set() -> None:
    with pytest.raises(ValueError, match="duration"):
        FakeVoucherify(action_duration=-0.5)
    with pytest.raises(ValueError, match="outcome"):
        FakeVoucherify(action_outcome="PENDING")  # type: ignore[arg-type]
    fake = FakeVoucherify()
    with pytest.raises(ValueError, match="duration"):
        fake.action_duration = float("inf")
    with pytest.raises(ValueError, match="outcome"):
        fake.action_outcome = "done"  # type: ignore[assignment]
    assert (fake.action_duration, fake.action_outcome) == (1.0, "DONE")
    fake.action_outcome = "FAILED"
    assert fake.action_outcome == "FAILED"


@pytest.mark.asyncio
async def test_started_actions_page_correctly_by_end_date_like_stored_ones() -> None:
    """Paging by end_date sees each started action once, among generated ones."""
    newest = T0 - timedelta(seconds=1)
    async with serve(actions=generate_actions(40, seed=9, newest=newest, tie_rate=0.0)) as (
        fake,
        session,
        clock,
    ):
        started = []
        for _ in range(5):
            started.append(fake.start_action())
            clock.advance(0.5)
        seen: list[str] = []
        params: dict[str, str | int] = {"limit": 7}
        while True:
            async with session.get(LIST, params=params) as response:
                page = await response.json()
            seen += [a["id"] for a in page["async_actions"]]
            if not page["has_more"]:
                break
            params["end_date"] = page["async_actions"][-1]["created_at"]
    assert seen[:5] == started[::-1]
    assert len(seen) == len(set(seen)) == 45
