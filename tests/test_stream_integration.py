"""Streams over real loopback HTTP against the fake server: every action exactly once."""

from __future__ import annotations

import asyncio
import itertools
import logging
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from voucherify_async import (
    AsyncAction,
    AsyncActionsPage,
    AsyncActionStream,
    InvalidResponseError,
    PaginationError,
    RetryPolicy,
    ServerError,
    VoucherifyClient,
)
from voucherify_async.testing import (
    FAKE_APP_ID,
    FAKE_APP_TOKEN,
    FakeVoucherify,
    Fault,
    generate_actions,
)

# 1,200 actions with many one-millisecond ties (up to 12 actions in one millisecond).
ACTIONS = generate_actions(1_200, seed=11, tie_rate=0.5, max_tie=12)


def expected_ids(actions: list[dict[str, Any]], before: datetime | None = None) -> list[str]:
    def created(action: dict[str, Any]) -> datetime:
        return datetime.fromisoformat(action["created_at"])

    kept = [a for a in actions if before is None or created(a) < before]
    return [a["id"] for a in sorted(kept, key=created, reverse=True)]


def client_for(fake: FakeVoucherify, **kwargs: Any) -> VoucherifyClient:
    kwargs.setdefault("retry", RetryPolicy.instant(max_retries=5))
    return VoucherifyClient(FAKE_APP_ID, FAKE_APP_TOKEN, base_url=fake.base_url, **kwargs)


async def drain(stream: AsyncActionStream) -> list[AsyncAction]:
    return [action async for action in stream]


def assert_exactly_once_newest_first(got: list[AsyncAction], expected: list[str]) -> None:
    ids = [action.id for action in got]
    assert len(ids) == len(set(ids)), "an action was yielded twice"
    assert sorted(ids) == sorted(expected), "an action was lost"
    times = [action.created_at for action in got]
    assert times == sorted(times, reverse=True), "not newest first"


@pytest.mark.asyncio
@pytest.mark.parametrize("inclusive", [False, True], ids=["exclusive", "inclusive"])
@pytest.mark.parametrize("send_has_more", [True, False], ids=["has_more", "no_has_more"])
@pytest.mark.parametrize("order", ["newest_first", "shuffled"])
@pytest.mark.parametrize("page_size", [1, 7, 100])
async def test_every_action_exactly_once_under_both_readings(
    inclusive: bool, send_has_more: bool, order: str, page_size: int
) -> None:
    prefetch = {1: 0, 7: 1, 100: 3}[page_size]
    actions = ACTIONS if page_size > 1 else ACTIONS[:300]
    fake = FakeVoucherify(
        actions=actions,
        end_date_inclusive=inclusive,
        send_has_more=send_has_more,
        order=order,
        shuffle_ties=True,
    )
    async with fake, client_for(fake) as client:
        got = await drain(client.iter_async_actions(page_size=page_size, prefetch=prefetch))
    assert_exactly_once_newest_first(got, expected_ids(actions))


@pytest.mark.asyncio
@pytest.mark.parametrize("inclusive", [False, True], ids=["exclusive", "inclusive"])
async def test_callers_end_date_is_strict_whatever_the_servers_reading(inclusive: bool) -> None:
    """Only actions created strictly before end_date, even one equal to a tie group's time."""
    tie_time = next(
        a["created_at"]
        for a, b in itertools.pairwise(ACTIONS)
        if a["created_at"] == b["created_at"]
    )
    stop = datetime.fromisoformat(tie_time)
    fake = FakeVoucherify(actions=ACTIONS, end_date_inclusive=inclusive)
    async with fake, client_for(fake) as client:
        got = await drain(client.iter_async_actions(page_size=10, end_date=stop))
    assert_exactly_once_newest_first(got, expected_ids(ACTIONS, before=stop))
    assert all(action.created_at < stop for action in got)


@pytest.mark.asyncio
async def test_a_stream_survives_faults_midway_without_loss_or_duplicates(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeVoucherify(actions=ACTIONS, shuffle_ties=True)
    fake.faults.random(
        rate=0.3,
        kinds=[
            Fault.status(429, retry_after=0),
            Fault.status(503),
            Fault.status(502, html=True),
            Fault.drop(),
        ],
        seed=5,
    )
    caplog.set_level(logging.WARNING, logger="voucherify_async")
    async with fake, client_for(fake, retry=RetryPolicy.instant(max_retries=10)) as client:
        got = await drain(client.iter_async_actions(page_size=50, prefetch=2))
    assert_exactly_once_newest_first(got, expected_ids(ACTIONS))
    retries = [r for r in caplog.records if r.name == "voucherify_async"]
    assert retries, "faults were injected, so retries must have been logged"
    assert all(hasattr(r, "attempt") and hasattr(r, "wait") for r in retries)


@pytest.mark.asyncio
async def test_after_a_failed_page_iterating_again_resumes_without_loss() -> None:
    """An error that survives the retries leaves the stream where it was."""
    fake = FakeVoucherify(actions=ACTIONS[:250])
    async with fake, client_for(fake, retry=RetryPolicy.instant(max_retries=0)) as client:
        stream = client.iter_async_actions(page_size=100)
        got: list[AsyncAction] = []
        async for action in stream:
            got.append(action)
            if len(got) == 100:
                fake.faults.push(Fault.status(503), endpoint="list")
                break
        with pytest.raises(ServerError):
            await drain(stream)
        got += await drain(stream)
    assert_exactly_once_newest_first(got, expected_ids(ACTIONS[:250]))


@pytest.mark.asyncio
async def test_a_truncated_page_raises_invalid_response_with_the_request_id() -> None:
    fake = FakeVoucherify(actions=ACTIONS[:10])
    fake.faults.push(Fault.truncated(), endpoint="list")
    async with fake, client_for(fake) as client:
        with pytest.raises(InvalidResponseError) as raised:
            await client.list_async_actions(limit=10)
    error = raised.value
    assert error.status == 200
    assert error.request_id is not None
    assert error.request_id.startswith("v-")
    assert error.request_id in str(error)
    assert "/v1/async-actions" in str(error)


@pytest.mark.asyncio
@pytest.mark.parametrize("prefetch", [0, 1, 3])
async def test_breaking_out_early_stops_the_requests(prefetch: int) -> None:
    """At most ``prefetch`` pages are fetched beyond what the caller saw."""
    fake = FakeVoucherify(actions=ACTIONS)
    async with fake, client_for(fake) as client:
        async for _action in client.iter_async_actions(page_size=10, prefetch=prefetch):
            break
        await _wait_for_requests(fake, 1 + prefetch, seconds=30)  # a busy machine is slow
        await asyncio.sleep(0.1)
        assert len(fake.requests) == 1 + prefetch


@pytest.mark.asyncio
async def test_pages_yields_new_actions_page_by_page() -> None:
    fake = FakeVoucherify(actions=ACTIONS[:95])
    async with fake, client_for(fake) as client:
        stream = client.iter_async_actions(page_size=30)
        first = await anext(stream)
        pages: list[AsyncActionsPage] = [page async for page in stream.pages()]
    ids = [first.id] + [action.id for page in pages for action in page]
    assert ids == expected_ids(ACTIONS[:95])
    assert all(len(page) > 0 for page in pages)
    assert pages[-1].has_more is False
    assert all(page.has_more for page in pages[:-1])


@pytest.mark.asyncio
async def test_aclose_and_async_with_end_the_stream() -> None:
    fake = FakeVoucherify(actions=ACTIONS[:50], latency=0.2)
    async with fake, client_for(fake) as client:
        async with client.iter_async_actions(page_size=10) as stream:
            assert (await anext(stream)).id == expected_ids(ACTIONS[:50])[0]
        # The prefetched second page was cancelled in flight: no prefetch task is left.
        assert not client._in_flight
        assert await drain(stream) == []
        other = client.iter_async_actions(page_size=10)
        await other.aclose()
        assert await drain(other) == []
    assert len(fake.requests) <= 2


@pytest.mark.asyncio
async def test_cancelling_the_consuming_task_midstream_is_clean() -> None:
    """Cancelled while a page request is in flight: no error but CancelledError, no warning."""
    fake = FakeVoucherify(actions=ACTIONS, latency=0.05)
    got: list[AsyncAction] = []
    async with fake, client_for(fake) as client:
        midway = asyncio.Event()

        async def consume() -> None:
            async for action in client.iter_async_actions(page_size=10):
                got.append(action)
                if len(got) == 15:
                    midway.set()

        task = asyncio.create_task(consume())
        await midway.wait()
        await asyncio.sleep(0.01)  # let the task start the next page request
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The client stays usable after a cancellation.
        page = await client.list_async_actions(limit=1)
    assert page.async_actions[0].id == expected_ids(ACTIONS)[0]


@pytest.mark.asyncio
async def test_a_tie_group_of_more_than_100_raises_pagination_error() -> None:
    """Raised, not looped on and not skipped: 150 actions in one millisecond cannot be paged."""
    moment = "2025-06-01T12:00:00.000Z"
    crowd = [
        {"id": f"aa_{i:018x}", "created_at": moment, "type": "VOUCHERS.IMPORT", "status": "DONE"}
        for i in range(150)
    ]
    fake = FakeVoucherify(actions=crowd)
    async with fake, client_for(fake) as client:
        stream = client.iter_async_actions(page_size=100)
        with pytest.raises(PaginationError, match="cannot advance"):
            await drain(stream)
    assert len(fake.requests) <= 4


@pytest.mark.asyncio
async def test_created_at_is_aware_utc() -> None:
    fake = FakeVoucherify(actions=ACTIONS[:5])
    async with fake, client_for(fake) as client:
        page = await client.list_async_actions(limit=5)
    assert all(action.created_at.tzinfo is UTC for action in page)


async def _wait_for_requests(fake: FakeVoucherify, count: int, seconds: float) -> bool:
    for _ in range(int(seconds / 0.01)):
        if len(fake.requests) >= count:
            return True
        await asyncio.sleep(0.01)
    return len(fake.requests) >= count


@pytest.mark.asyncio
@pytest.mark.parametrize("prefetch", [1, 2, 5])
async def test_prefetch_requests_pages_ahead_while_the_caller_is_on_this_one(
    prefetch: int,
) -> None:
    fake = FakeVoucherify(actions=ACTIONS)
    async with fake, client_for(fake) as client:
        stream = client.iter_async_actions(page_size=10, prefetch=prefetch)
        await anext(stream)  # the caller holds page 1 and does not ask for more
        assert await _wait_for_requests(fake, 1 + prefetch, seconds=30)
        await asyncio.sleep(0.1)
        assert len(fake.requests) == 1 + prefetch, "no more than prefetch pages ahead"
        await stream.aclose()
        assert not client._in_flight


@pytest.mark.asyncio
async def test_prefetch_0_requests_a_page_only_when_the_previous_is_used_up() -> None:
    fake = FakeVoucherify(actions=ACTIONS)
    async with fake, client_for(fake) as client:
        stream = client.iter_async_actions(page_size=10, prefetch=0)
        await anext(stream)
        assert not await _wait_for_requests(fake, 2, seconds=0.3)
        await stream.aclose()


@pytest.mark.asyncio
@pytest.mark.parametrize("prefetch", [0, 1, 4])
async def test_a_page_that_cannot_be_structured_raises_and_the_stream_resumes(
    prefetch: int,
) -> None:
    """The cursor is put back: iterating again asks for the same page, nothing lost or doubled."""
    bad = {
        "async_actions": [
            {"id": "aa_bad", "created_at": "2027-01-01T00:00:00.000Z", "progress": "half"},
        ],
        "has_more": True,
    }
    fake = FakeVoucherify(actions=ACTIONS[:120])
    fake.faults.push(Fault.payload(bad), endpoint="list")
    async with fake, client_for(fake) as client:
        stream = client.iter_async_actions(page_size=50, prefetch=prefetch)
        with pytest.raises(InvalidResponseError, match=r"async_actions\[0\]\.progress"):
            await anext(stream)
        got = await drain(stream)
    assert_exactly_once_newest_first(got, expected_ids(ACTIONS[:120]))


@pytest.mark.asyncio
@pytest.mark.parametrize("prefetch", [0, 1])
async def test_the_next_page_is_requested_before_the_caller_gets_this_one(prefetch: int) -> None:
    """With prefetch, the request for page 2 has been sent (its headers written) by the
    time the caller holds page 1's first action, with no await in between: the server
    prepares it while the caller structures and works through page 1."""
    sent: list[str] = []

    async def headers_sent(*_: object) -> None:
        sent.append("request")

    trace = aiohttp.TraceConfig()
    trace.on_request_headers_sent.append(headers_sent)
    fake = FakeVoucherify(actions=ACTIONS[:50], latency=0.05)
    async with fake, client_for(fake, trace_configs=[trace]) as client:
        stream = client.iter_async_actions(page_size=20, prefetch=prefetch)
        await anext(stream)
        assert len(sent) == 1 + prefetch
        assert stream.requests_made == 1  # page 2 is on its way, not fed yet
        await stream.aclose()


@pytest.mark.asyncio
async def test_closing_the_client_cancels_a_page_prefetched_for_an_abandoned_stream() -> None:
    fake = FakeVoucherify(actions=ACTIONS, latency=0.3)
    async with fake:
        async with client_for(fake) as client:
            async for _action in client.iter_async_actions(page_size=10):
                break
            await asyncio.sleep(0)  # the caller gets back to the event loop: prefetch starts
            assert len(client._in_flight) == 1
        assert not client._in_flight
        assert len(fake.requests) <= 2


@pytest.mark.asyncio
async def test_a_stream_abandoned_as_the_client_closes_sends_nothing_more() -> None:
    """Broken out of, then the client closed at once: the prefetched page's request
    (sent before the first action was handed over) is cancelled, and nothing more is
    sent, however long the event loop runs on."""
    fake = FakeVoucherify(actions=ACTIONS, latency=0.2)
    async with fake:
        async with client_for(fake) as client:
            stream = client.iter_async_actions(page_size=10)
            async for _action in stream:
                break
            assert len(client._in_flight) == 1  # the prefetch: page 2
        assert not client._in_flight
        for _ in range(5):
            await asyncio.sleep(0)
        await asyncio.sleep(0.5)  # longer than the server takes to answer
        assert stream.requests_made == 1  # page 2 was never fed
        assert not client._in_flight
    assert len(fake.requests) <= 2


@pytest.mark.asyncio
async def test_prefetch_must_be_an_int_from_0_to_16() -> None:
    async with VoucherifyClient("a", "b") as client:
        with pytest.raises(ValueError, match="prefetch"):
            client.iter_async_actions(prefetch=17)
        with pytest.raises(TypeError, match="prefetch"):
            client.iter_async_actions(prefetch=True)


@pytest.mark.asyncio
@pytest.mark.parametrize("prefetch", [0, 2])
@pytest.mark.parametrize("by_pages", [False, True], ids=["actions", "pages"])
async def test_a_bad_action_midpage_comes_after_the_good_ones_and_the_stream_resumes(
    prefetch: int, by_pages: bool
) -> None:
    """The actions before the bad one are yielded; the error comes where the bad one
    stands; iterating again continues right after the last action yielded."""
    good = {"id": "aa_newest", "created_at": "2027-01-01T00:00:00.002Z", "status": "DONE"}
    bad = {"id": "aa_bad", "created_at": "2027-01-01T00:00:00.001Z", "progress": "half"}
    fake = FakeVoucherify(actions=ACTIONS[:80])
    fake.faults.push(
        Fault.payload({"async_actions": [good, bad], "has_more": True}), endpoint="list"
    )
    got: list[str] = []

    async def consume(stream: AsyncActionStream) -> None:
        if by_pages:
            async for page in stream.pages():
                got.extend(action.id for action in page)
        else:
            async for action in stream:
                got.append(action.id)

    async with fake, client_for(fake) as client:
        stream = client.iter_async_actions(page_size=40, prefetch=prefetch)
        with pytest.raises(InvalidResponseError, match=r"async_actions\[1\]\.progress"):
            await consume(stream)
        assert got == ["aa_newest"]
        got += [action.id async for action in stream]
    assert got == ["aa_newest", *expected_ids(ACTIONS[:80])]


@pytest.mark.asyncio
@pytest.mark.parametrize("prefetch", [0, 1, 3])
async def test_pagination_error_is_final(prefetch: int) -> None:
    """After PaginationError, iterating again ends at once, with no further request."""
    moment = "2025-06-01T12:00:00.000Z"
    crowd = [{"id": f"aa_{i:018x}", "created_at": moment} for i in range(150)]
    fake = FakeVoucherify(actions=crowd)
    async with fake, client_for(fake) as client:
        stream = client.iter_async_actions(page_size=100, prefetch=prefetch)
        with pytest.raises(PaginationError):
            await drain(stream)
        requests = len(fake.requests)
        assert await drain(stream) == []
        assert len(fake.requests) == requests
        assert stream.exhausted


# --- prefetch: the same requests, sent earlier ---------------------------------------


def queries(fake: FakeVoucherify) -> list[dict[str, str]]:
    return [request.query for request in fake.requests if request.path == "/v1/async-actions"]


@pytest.mark.asyncio
@pytest.mark.parametrize("inclusive", [False, True], ids=["exclusive", "inclusive"])
@pytest.mark.parametrize("send_has_more", [True, False], ids=["has_more", "no_has_more"])
@pytest.mark.parametrize("page_size", [7, 100])
async def test_prefetch_sends_exactly_the_requests_a_stream_without_it_sends(
    inclusive: bool, send_has_more: bool, page_size: int
) -> None:
    """With ties cut by page boundaries, under either reading: prefetch changes when
    the requests go out, never which."""
    made: dict[int, list[dict[str, str]]] = {}
    for prefetch in (0, 1, 3):
        fake = FakeVoucherify(
            actions=ACTIONS,
            end_date_inclusive=inclusive,
            send_has_more=send_has_more,
            shuffle_ties=True,
        )
        async with fake, client_for(fake) as client:
            got = await drain(client.iter_async_actions(page_size=page_size, prefetch=prefetch))
        assert_exactly_once_newest_first(got, expected_ids(ACTIONS))
        made[prefetch] = queries(fake)
    assert made[1] == made[0]
    assert made[3] == made[0]


@pytest.mark.asyncio
async def test_a_prefetched_page_that_fails_to_decode_raises_after_the_page_before() -> None:
    """The prefetched page 2 cannot be read: the error reaches the caller after the
    last action of page 1, nothing is left running, and iterating again loses nothing."""
    actions = ACTIONS[:100]
    newest = expected_ids(actions)
    fake = FakeVoucherify(actions=actions)
    broken = {
        "async_actions": [
            {"created_at": "2020-01-01T00:00:00.000Z"},  # no id
            {"id": "aa_tail", "created_at": "2020-01-01T00:00:00.000Z"},
        ],
        "has_more": True,
    }
    async with fake, client_for(fake) as client:
        stream = client.iter_async_actions(page_size=10, prefetch=1)
        got = [await anext(stream)]
        fake.faults.push(Fault.payload(broken), endpoint="list")  # the prefetched page 2
        got += [await anext(stream) for _ in range(9)]  # the rest of page 1
        with pytest.raises(InvalidResponseError, match=r"async_actions\[0\]\.id"):
            await anext(stream)
        assert [action.id for action in got] == newest[:10]
        assert not client._in_flight, "a request was left running"
        got += await drain(stream)
    assert_exactly_once_newest_first(got, newest)


# --- the first action and the token ---------------------------------------------------


@pytest.mark.asyncio
async def test_a_token_taken_after_the_first_action_resumes_after_it() -> None:
    fake = FakeVoucherify(actions=ACTIONS[:50])
    async with fake, client_for(fake) as client:
        stream = client.iter_async_actions(page_size=20)
        first = await anext(stream)
        assert stream.requests_made == 1
        token = stream.cursor
        rest = await drain(stream)
        resumed = await drain(client.iter_async_actions(page_size=20, cursor=token))
    assert_exactly_once_newest_first([first, *rest], expected_ids(ACTIONS[:50]))
    assert [action.id for action in resumed] == [action.id for action in rest]


@pytest.mark.asyncio
@pytest.mark.parametrize("prefetch", [0, 1])
async def test_a_first_page_broken_after_its_first_action_raises_and_the_stream_resumes(
    prefetch: int,
) -> None:
    """A first page with an action without an id raises at once (no action of it is
    yielded), and iterating again asks for that page again: nothing lost, nothing twice."""
    actions = ACTIONS[:30]
    newest = expected_ids(actions)
    good = [dict(action) for action in actions[:3]]
    good.sort(key=lambda action: str(action["created_at"]), reverse=True)
    broken = {"async_actions": [good[0], {"created_at": good[1]["created_at"]}], "has_more": True}
    fake = FakeVoucherify(actions=actions)
    fake.faults.push(Fault.payload(broken), endpoint="list")
    async with fake, client_for(fake) as client:
        stream = client.iter_async_actions(page_size=10, prefetch=prefetch)
        with pytest.raises(InvalidResponseError, match=r"async_actions\[1\]\.id"):
            await anext(stream)
        got = await drain(stream)
        assert not client._in_flight
    assert_exactly_once_newest_first(got, newest)


@pytest.mark.asyncio
async def test_a_stream_leaves_nothing_per_page_in_yarls_url_caches() -> None:
    """yarl keeps the URLs it parses from strings in global caches (128 each): a URL
    a page there would make a stream's memory grow for its first 128 pages (the
    benchmark's memory check caught it)."""
    from yarl import _url

    caches = [_url.encode_url, _url.pre_encoded_url]
    for cache in caches:
        cache.cache_clear()
    fake = FakeVoucherify(actions=ACTIONS[:400])
    async with fake, client_for(fake) as client:
        got = await drain(client.iter_async_actions(page_size=10))
    assert len(got) == 400
    assert all(cache.cache_info().currsize <= 3 for cache in caches), [
        cache.cache_info() for cache in caches
    ]
