"""Worker features over real HTTP (and aioresponses where the request sequence is the point)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aioresponses import aioresponses

from voucherify_async import (
    AsyncAction,
    AsyncActionDetails,
    NotFoundError,
    RateLimit,
    RateLimitError,
    RetryPolicy,
    ServerError,
    VoucherifyClient,
    VoucherifyError,
    WaitTimeoutError,
)
from voucherify_async.testing import (
    FAKE_APP_ID,
    FAKE_APP_TOKEN,
    FakeVoucherify,
    Fault,
    generate_actions,
)

ACTIONS = generate_actions(900, seed=21, tie_rate=0.5, max_tie=9)


def created(action: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(action["created_at"])


def ids_between(low: datetime | None, high: datetime | None) -> set[str]:
    return {
        a["id"]
        for a in ACTIONS
        if (low is None or created(a) >= low) and (high is None or created(a) < high)
    }


def client_for(fake: FakeVoucherify, **kwargs: Any) -> VoucherifyClient:
    kwargs.setdefault("retry", RetryPolicy.instant(max_retries=3))
    return VoucherifyClient(FAKE_APP_ID, FAKE_APP_TOKEN, base_url=fake.base_url, **kwargs)


# --- since ---------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("inclusive", [False, True], ids=["exclusive", "inclusive"])
async def test_since_yields_actions_at_or_after_it_and_stops_early(inclusive: bool) -> None:
    tie = next(a for a, b in itertools.pairwise(ACTIONS[40:]) if a["created_at"] == b["created_at"])
    since = created(tie)
    fake = FakeVoucherify(actions=ACTIONS, end_date_inclusive=inclusive)
    async with fake, client_for(fake) as client:
        got = [a.id async for a in client.iter_async_actions(page_size=100, since=since)]
    assert len(got) == len(set(got))
    assert set(got) == ids_between(since, None)
    assert tie["id"] in got, "since is inclusive"
    assert len(fake.requests) <= 2, "the older history is not fetched"


# --- cursor tokens -------------------------------------------------------------------


async def _take(stream: Any, count: int) -> list[AsyncAction]:
    taken: list[AsyncAction] = []
    async for action in stream:
        taken.append(action)
        if len(taken) == count:
            break
    return taken


@pytest.mark.asyncio
@pytest.mark.parametrize("inclusive", [False, True], ids=["exclusive", "inclusive"])
@pytest.mark.parametrize("stop_after", [0, 1, 37, 99, 100, 101, 450, 899, 900])
async def test_a_cursor_resumes_right_after_the_last_yielded_action(
    inclusive: bool, stop_after: int
) -> None:
    """A crash after any action: a new client (another process) goes on with no loss or repeat."""
    fake = FakeVoucherify(actions=ACTIONS, end_date_inclusive=inclusive, shuffle_ties=True)
    async with fake:
        async with client_for(fake) as first:
            stream = first.iter_async_actions(page_size=50, prefetch=stop_after % 3)
            before = await _take(stream, stop_after) if stop_after else []
            token = stream.cursor
        async with client_for(fake) as second:
            after = [a async for a in second.iter_async_actions(page_size=30, cursor=token)]
    ids = [a.id for a in before + after]
    assert len(ids) == len(set(ids)), "an action was repeated across the restart"
    assert set(ids) == ids_between(None, None), "an action was lost across the restart"


@pytest.mark.asyncio
async def test_a_cursor_taken_in_a_chain_of_restarts_loses_nothing() -> None:
    fake = FakeVoucherify(actions=ACTIONS, shuffle_ties=True)
    seen: list[str] = []
    token: str | None = None
    async with fake:
        for step in range(40):
            async with client_for(fake) as client:
                stream = client.iter_async_actions(page_size=17, cursor=token)
                seen += [a.id for a in await _take(stream, 23 + step)]
                token = stream.cursor
        async with client_for(fake) as client:
            seen += [a.id async for a in client.iter_async_actions(cursor=token)]
    assert len(seen) == len(set(seen))
    assert set(seen) == ids_between(None, None)


@pytest.mark.asyncio
async def test_a_cursor_with_end_date_must_be_resumed_with_the_same_end_date() -> None:
    stop = created(ACTIONS[100])
    fake = FakeVoucherify(actions=ACTIONS)
    async with fake, client_for(fake) as client:
        stream = client.iter_async_actions(end_date=stop)
        part = await _take(stream, 10)
        token = stream.cursor
        with pytest.raises(ValueError, match="other parameters"):
            client.iter_async_actions(cursor=token)
        requests_before = len(fake.requests)
        rest = [a async for a in client.iter_async_actions(end_date=stop, cursor=token)]
    assert requests_before >= 1
    assert {a.id for a in part + rest} == ids_between(None, stop)


@pytest.mark.asyncio
async def test_a_cursor_of_a_finished_stream_resumes_to_nothing() -> None:
    fake = FakeVoucherify(actions=ACTIONS[:40])
    async with fake, client_for(fake) as client:
        stream = client.iter_async_actions()
        assert len([a async for a in stream]) == 40
        rest = [a async for a in client.iter_async_actions(cursor=stream.cursor)]
    assert rest == []


@pytest.mark.asyncio
async def test_a_damaged_cursor_is_refused_before_any_request(mock_api: aioresponses) -> None:
    async with VoucherifyClient("a", "b") as client:
        with pytest.raises(ValueError, match="cursor"):
            client.iter_async_actions(cursor="v1.eyJ4IjoxfQ.AAAA")
    assert not mock_api.requests


# --- scan ----------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("partitions", [1, 3, 8])
@pytest.mark.parametrize("inclusive", [False, True], ids=["exclusive", "inclusive"])
async def test_scan_yields_every_action_in_the_range_exactly_once(
    partitions: int, inclusive: bool
) -> None:
    since, stop = created(ACTIONS[-50]), created(ACTIONS[25])
    fake = FakeVoucherify(actions=ACTIONS, end_date_inclusive=inclusive, shuffle_ties=True)
    async with (
        fake,
        client_for(fake) as client,
        client.scan_async_actions(
            since=since, end_date=stop, partitions=partitions, page_size=40
        ) as scan,
    ):
        got = [a.id async for a in scan]
    assert len(got) == len(set(got))
    assert set(got) == ids_between(since, stop)
    assert scan.partitions == partitions


@pytest.mark.asyncio
async def test_scan_raises_the_first_error_and_stops_the_other_walks() -> None:
    fake = FakeVoucherify(actions=ACTIONS)
    fake.faults.push(Fault.status(503), times=50, endpoint="list")
    async with fake, client_for(fake, max_retries=0) as client:
        scan = client.scan_async_actions(
            since=created(ACTIONS[-1]), end_date=created(ACTIONS[0]), partitions=4
        )
        with pytest.raises(ServerError):
            [a async for a in scan]
        assert not client._in_flight


@pytest.mark.asyncio
async def test_scan_can_be_closed_midway() -> None:
    fake = FakeVoucherify(actions=ACTIONS, latency=0.01)
    async with fake, client_for(fake) as client:
        scan = client.scan_async_actions(
            since=created(ACTIONS[-1]), end_date=created(ACTIONS[0]), partitions=4, page_size=10
        )
        await _take(scan, 25)
        await scan.aclose()
        assert [a async for a in scan] == []
        assert not client._in_flight


@pytest.mark.asyncio
async def test_scan_checks_its_arguments_before_any_request(mock_api: aioresponses) -> None:
    async with VoucherifyClient("a", "b") as client:
        with pytest.raises(ValueError, match="partitions"):
            client.scan_async_actions(since="2025-01-01", partitions=0)
        with pytest.raises(ValueError, match="before"):
            client.scan_async_actions(since="2025-01-02", end_date="2025-01-01")
        with pytest.raises(ValueError, match="page_size"):
            client.scan_async_actions(since="2025-01-01", page_size=500)
    assert not mock_api.requests


# --- wait_for_async_action -----------------------------------------------------------

ACTION_URL = re.compile(r"^https://api\.voucherify\.io/v1/async-actions/aa_job$")


def job(status: str, progress: int, result: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "aa_job",
        "type": "CUSTOMERS.METADATA_UPDATE",
        "status": status,
        "progress": progress,
        "created_at": "2025-06-01T12:00:00.000Z",
    }
    if result is not None:
        body["result"] = result
    return body


@pytest.mark.asyncio
async def test_wait_returns_the_finished_action_and_reports_each_new_state(
    mock_api: aioresponses,
) -> None:
    for body in [
        job("ENQUEUED", 0),
        job("IN_PROGRESS", 40),
        job("IN_PROGRESS", 40),
        job("IN_PROGRESS", 80),
        job("DONE", 100, {"done_count": 3, "failed_count": 0}),
    ]:
        mock_api.get(ACTION_URL, payload=body)
    states: list[tuple[str, int | None]] = []
    async with VoucherifyClient("a", "b") as client:
        details = await client.wait_for_async_action(
            "aa_job",
            poll_interval=0.001,
            max_poll_interval=0.004,
            on_progress=lambda d: states.append((str(d.status), d.progress)),
        )
    assert details.status == "DONE"
    assert details.result is not None
    assert details.result.done_count == 3
    assert states == [("ENQUEUED", 0), ("IN_PROGRESS", 40), ("IN_PROGRESS", 80), ("DONE", 100)]


@pytest.mark.asyncio
async def test_a_failed_action_is_returned_not_raised(mock_api: aioresponses) -> None:
    mock_api.get(ACTION_URL, payload=job("IN_PROGRESS", 10))
    mock_api.get(ACTION_URL, payload=job("FAILED", 100, {"message": "0 imported, 2 failed."}))
    seen: list[AsyncActionDetails] = []

    async def record(details: AsyncActionDetails) -> None:
        seen.append(details)

    async with VoucherifyClient("a", "b") as client:
        details = await client.wait_for_async_action(
            "aa_job", poll_interval=0.001, on_progress=record
        )
    assert details.status == "FAILED"
    assert details.result is not None
    assert details.result.message == "0 imported, 2 failed."
    assert [d.status for d in seen] == ["IN_PROGRESS", "FAILED"]


@pytest.mark.asyncio
async def test_the_deadline_raises_wait_timeout_with_the_last_state(mock_api: aioresponses) -> None:
    mock_api.get(ACTION_URL, payload=job("IN_PROGRESS", 30), repeat=True)
    async with VoucherifyClient("a", "b") as client:
        with pytest.raises(WaitTimeoutError) as raised:
            await client.wait_for_async_action("aa_job", timeout=0.05, poll_interval=0.01)
    error = raised.value
    assert error.async_action_id == "aa_job"
    assert error.last is not None
    assert error.last.progress == 30
    assert "IN_PROGRESS, 30%" in str(error)


@pytest.mark.asyncio
async def test_watch_yields_states_until_finished(mock_api: aioresponses) -> None:
    mock_api.get(ACTION_URL, payload=job("ENQUEUED", 0))
    mock_api.get(ACTION_URL, payload=job("DONE", 100, {"done_count": 1}))
    async with VoucherifyClient("a", "b") as client:
        states = [d.status async for d in client.watch_async_action("aa_job", poll_interval=0.001)]
    assert states == ["ENQUEUED", "DONE"]


@pytest.mark.asyncio
async def test_waiting_for_an_unknown_action_raises_not_found(mock_api: aioresponses) -> None:
    mock_api.get(ACTION_URL, status=404, payload={"code": 404, "key": "not_found", "message": "x"})
    async with VoucherifyClient("a", "b") as client:
        with pytest.raises(NotFoundError):
            await client.wait_for_async_action("aa_job")


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"timeout": 0}, ValueError),
        ({"timeout": -1}, ValueError),
        ({"poll_interval": 0}, ValueError),
        ({"max_poll_interval": float("nan")}, ValueError),
        ({"poll_interval": "1"}, TypeError),
    ],
)
async def test_wait_checks_its_arguments_before_any_request(
    mock_api: aioresponses, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    async with VoucherifyClient("a", "b") as client:
        with pytest.raises(error):
            await client.wait_for_async_action("aa_job", **kwargs)
        with pytest.raises(ValueError, match="async action id"):
            await client.wait_for_async_action("../x")
    assert not mock_api.requests


# --- rate limits ---------------------------------------------------------------------

LIST = re.compile(r"^https://api\.voucherify\.io/v1/async-actions(\?.*)?$")
EMPTY = {"async_actions": [], "has_more": False}


@pytest.mark.asyncio
async def test_nothing_remaining_makes_the_next_request_wait_for_the_reset(
    mock_api: aioresponses, caplog: pytest.LogCaptureFixture
) -> None:
    reset = time.time() + 0.3
    headers = {"X-Rate-Limit-Remaining": "0", "X-Rate-Limit-Retry": f"{reset:.3f}"}
    mock_api.get(LIST, payload=EMPTY, headers=headers)
    mock_api.get(LIST, payload=EMPTY)
    caplog.set_level(logging.DEBUG, logger="voucherify_async")
    async with VoucherifyClient("a", "b") as client:
        await client.list_async_actions()
        await client.list_async_actions()
    assert time.time() >= reset  # waited, instead of collecting a 429
    waits = [r for r in caplog.records if "for the rate limit" in r.getMessage()]
    assert len(waits) == 1


@pytest.mark.asyncio
async def test_a_reset_beyond_max_wait_raises_rate_limit_error_without_sending(
    mock_api: aioresponses,
) -> None:
    headers = {"X-Rate-Limit-Remaining": "0", "X-Rate-Limit-Retry": f"{time.time() + 3600:.0f}"}
    mock_api.get(LIST, payload=EMPTY, headers=headers)
    async with VoucherifyClient("a", "b", retry=RetryPolicy(max_wait=30)) as client:
        await client.list_async_actions()
        with pytest.raises(RateLimitError, match="nothing was sent") as raised:
            await client.list_async_actions()
    assert raised.value.retry_after is not None
    assert raised.value.retry_after > 3000
    assert sum(len(calls) for calls in mock_api.requests.values()) == 1


@pytest.mark.asyncio
async def test_client_side_pacing_is_shared_by_concurrent_tasks(
    mock_api: aioresponses, caplog: pytest.LogCaptureFixture
) -> None:
    mock_api.get(LIST, payload=EMPTY, repeat=True)
    caplog.set_level(logging.DEBUG, logger="voucherify_async")
    async with VoucherifyClient("a", "b", rate_limit=RateLimit(requests=50, per=1.0)) as client:
        await asyncio.gather(*(client.list_async_actions() for _ in range(5)))
    waits = sorted(
        float(m.group(1))
        for r in caplog.records
        if (m := re.search(r"waiting ([0-9.]+) s for the rate limit", r.getMessage()))
    )
    assert len(waits) == 4  # the first goes at once, the others queue 20 ms apart
    assert waits == pytest.approx([0.02, 0.04, 0.06, 0.08], abs=0.015)


@pytest.mark.asyncio
async def test_rate_limit_must_be_a_rate_limit() -> None:
    with pytest.raises(TypeError, match="RateLimit"):
        VoucherifyClient("a", "b", rate_limit=5)  # type: ignore[arg-type]


# --- observability -------------------------------------------------------------------


@pytest.mark.asyncio
async def test_trace_configs_pass_through_to_the_session() -> None:
    started: list[str] = []

    async def on_request_start(
        session: aiohttp.ClientSession, context: Any, params: aiohttp.TraceRequestStartParams
    ) -> None:
        started.append(params.url.path)

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_request_start)
    fake = FakeVoucherify(actions=ACTIONS[:5])
    async with fake, client_for(fake, trace_configs=[trace]) as client:
        await client.list_async_actions(limit=1)
    assert started == ["/v1/async-actions"]


def test_trace_configs_cannot_be_combined_with_a_callers_session() -> None:
    async def build() -> None:
        async with aiohttp.ClientSession() as session:
            with pytest.raises(ValueError, match="trace_configs"):
                VoucherifyClient("a", "b", session=session, trace_configs=[aiohttp.TraceConfig()])

    asyncio.run(build())


def test_since_with_end_date_windows_are_checked_at_once() -> None:
    client = VoucherifyClient("a", "b")
    with pytest.raises(ValueError, match="since"):
        client.iter_async_actions(since="not a date")
    assert client.iter_async_actions(since=datetime.now(UTC) - timedelta(days=1)) is not None


# --- against the fake's own lifecycle and rate limit, over HTTP -----------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("outcome", ["DONE", "FAILED"])
async def test_wait_follows_a_started_action_to_its_outcome(outcome: str) -> None:
    fake = FakeVoucherify(actions=ACTIONS[:10])
    async with fake, client_for(fake) as client:
        action_id = fake.start_action(
            "CUSTOMERS.METADATA_UPDATE",
            duration=0.3,
            outcome=outcome,  # type: ignore[arg-type]
        )
        states: list[str] = []
        details = await client.wait_for_async_action(
            action_id,
            poll_interval=0.01,
            max_poll_interval=0.05,
            on_progress=lambda d: states.append(str(d.status)),
        )
    assert details.status == outcome
    assert details.result is not None
    assert states[0] in {"ENQUEUED", "IN_PROGRESS"}
    assert states[-1] == outcome
    assert "IN_PROGRESS" in states


@pytest.mark.asyncio
async def test_the_client_waits_for_the_fakes_window_instead_of_collecting_429s() -> None:
    """12 requests against a limit of 5 a second: the client waits for each reset."""
    fake = FakeVoucherify(actions=ACTIONS, rate_limit=(5, 1.0))
    async with fake, client_for(fake, retry=RetryPolicy(max_retries=0, max_wait=5)) as client:
        for _ in range(12):
            await client.list_async_actions(limit=1)
    assert len(fake.requests) == 12
    assert not [r for r in fake.requests if r.rate_limited], "a request collected a 429"


@pytest.mark.asyncio
async def test_concurrent_workers_with_pacing_never_trip_the_fakes_limit() -> None:
    """Paced a little under the fake's limit (exactly at it, a request can reach the server
    a hair before its window closes)."""
    fake = FakeVoucherify(actions=ACTIONS, rate_limit=(10, 1.0))
    async with fake, client_for(fake, rate_limit=RateLimit(requests=8, per=1.0)) as client:
        await asyncio.gather(*(client.list_async_actions(limit=1) for _ in range(15)))
    assert not [r for r in fake.requests if r.rate_limited]


@pytest.mark.asyncio
@pytest.mark.parametrize("seed", range(24))
async def test_random_crashes_faults_and_restarts_never_lose_or_repeat_an_action(
    seed: int,
) -> None:
    """A worker that restarts from the stored cursor at random points, under random
    faults (503, drops, 429, truncated bodies), page sizes, prefetch and both readings,
    sees every action exactly once in the end."""
    rng = random.Random(seed)
    actions = generate_actions(
        rng.randint(0, 600), seed=seed, tie_rate=rng.random(), max_tie=rng.choice([2, 9, 40, 99])
    )
    fake = FakeVoucherify(
        actions=actions,
        end_date_inclusive=rng.random() < 0.5,
        send_has_more=rng.random() < 0.5,
        order=rng.choice(["newest_first", "shuffled"]),
        shuffle_ties=rng.random() < 0.5,
    )
    kinds = [Fault.status(503), Fault.drop(), Fault.status(429, retry_after=0), Fault.truncated()]
    fake.faults.random(rate=rng.choice([0.0, 0.1, 0.3]), kinds=kinds, seed=seed)
    seen: list[str] = []
    token: str | None = None
    async with fake:
        for _restart in range(300):
            retry = RetryPolicy.instant(max_retries=rng.randint(0, 3))
            async with client_for(fake, retry=retry) as client:
                stream = client.iter_async_actions(
                    page_size=rng.randint(1, 100), prefetch=rng.randint(0, 3), cursor=token
                )
                budget = rng.randint(1, 300)
                with contextlib.suppress(VoucherifyError):  # a crash: restart from the cursor
                    async for action in stream:
                        seen.append(action.id)
                        budget -= 1
                        if budget == 0:
                            break
                token = stream.cursor
                if stream.exhausted and budget > 0:
                    break
        fake.faults.clear()
        async with client_for(fake) as client:
            seen += [action.id async for action in client.iter_async_actions(cursor=token)]
    assert len(seen) == len(set(seen)), "an action was repeated"
    assert set(seen) == {action["id"] for action in actions}, "an action was lost"
