"""How a stream stops: the client closed under it, two tasks at once, a stream left behind.

Over real HTTP on loopback against the fake server. Every wait is bounded by
``asyncio.timeout(30)`` so that a hang fails the test instead of blocking the suite.
"""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import AsyncIterator
from typing import Any

import pytest

from voucherify_async import (
    AsyncAction,
    AsyncActionStream,
    ClientClosedError,
    RetryPolicy,
    VoucherifyClient,
    VoucherifyError,
)
from voucherify_async._decode import ListedPage
from voucherify_async.testing import FAKE_APP_ID, FAKE_APP_TOKEN, FakeVoucherify, generate_actions

ACTIONS = generate_actions(300, seed=7, tie_rate=0.3, max_tie=5)
EXPECTED = [
    action["id"]
    for action in sorted(ACTIONS, key=lambda action: str(action["created_at"]), reverse=True)
]
LONG = 30.0  # seconds: only ever reached when something hangs


def client_for(fake: FakeVoucherify, **kwargs: Any) -> VoucherifyClient:
    kwargs.setdefault("retry", RetryPolicy.instant(max_retries=2))
    return VoucherifyClient(FAKE_APP_ID, FAKE_APP_TOKEN, base_url=fake.base_url, **kwargs)


def assert_each_once(ids: list[str]) -> None:
    assert len(ids) == len(set(ids)), "an action was yielded twice"
    assert sorted(ids) == sorted(EXPECTED), "an action was lost"


async def _wait_for(condition: Any) -> None:
    """Poll ``condition`` (state of other tasks and of the client, with no event to wait on)."""
    while not condition():  # noqa: ASYNC110  # nothing to wait on but the state itself
        await asyncio.sleep(0.005)


# --- client.close() while another task consumes ----------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("prefetch", [0, 1, 3])
@pytest.mark.parametrize("by_pages", [False, True], ids=["actions", "pages"])
async def test_closing_the_client_ends_a_consumer_in_another_task_with_client_closed_error(
    prefetch: int, by_pages: bool
) -> None:
    """The consumer waits for a page (its own request with ``prefetch=0``, a prefetched
    one otherwise) when another task closes the client: it gets ClientClosedError,
    promptly, never a CancelledError it did not ask for (which ``asyncio.timeout`` and
    ``TaskGroup`` would read as a cancellation)."""
    fake = FakeVoucherify(actions=ACTIONS, latency=0.5)
    got: list[str] = []
    async with fake:
        client = client_for(fake)
        stream = client.iter_async_actions(page_size=10, prefetch=prefetch)

        async def consume() -> None:
            async with asyncio.timeout(LONG):  # would turn a stray cancellation into TimeoutError
                if by_pages:
                    async for page in stream.pages():
                        got.extend(action.id for action in page)
                else:
                    async for action in stream:
                        got.append(action.id)

        consumer = asyncio.create_task(consume())
        async with asyncio.timeout(LONG):
            await _wait_for(lambda: len(got) >= 10)  # page 1 is out; page 2 is awaited
            await asyncio.sleep(0.05)
            assert not consumer.done()
            await client.close()
            done, _ = await asyncio.wait([consumer], timeout=5)
        assert consumer in done, "the consumer did not end promptly after close()"
        assert not consumer.cancelled(), "the consumer got a CancelledError"
        error = consumer.exception()
        assert isinstance(error, ClientClosedError), repr(error)
        assert isinstance(error, VoucherifyError)
        assert "closed" in str(error)
    assert got == EXPECTED[: len(got)]


@pytest.mark.asyncio
async def test_a_consumer_cancelled_itself_still_gets_cancelled_error_when_the_client_closes() -> (
    None
):
    """Only a cancellation nobody asked for becomes ClientClosedError: a consumer task
    that is cancelled (here by its own timeout) still sees its cancellation."""
    fake = FakeVoucherify(actions=ACTIONS, latency=2.0)
    async with fake, client_for(fake) as client:
        stream = client.iter_async_actions(page_size=10)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await anext(stream)
        assert not client._in_flight
        assert len(fake.requests) == 1
        fake.latency = 0.0
        async with asyncio.timeout(LONG):
            got = [action.id async for action in stream]  # nothing was lost
    assert got == EXPECTED


@pytest.mark.asyncio
async def test_a_stream_of_a_closed_client_raises_client_closed_error_and_sends_nothing() -> None:
    fake = FakeVoucherify(actions=ACTIONS)
    async with fake:
        client = client_for(fake)
        stream = client.iter_async_actions(page_size=10)
        await client.close()
        async with asyncio.timeout(LONG):
            with pytest.raises(ClientClosedError):
                await anext(stream)
    assert fake.requests == []


@pytest.mark.asyncio
@pytest.mark.parametrize("prefetch", [0, 1])
async def test_aclose_from_another_task_ends_the_stream_for_its_consumer(prefetch: int) -> None:
    """The consumer waits for a page when another task closes the stream: its loop ends
    without an error, and the token says where it stood."""
    fake = FakeVoucherify(actions=ACTIONS, latency=0.5)
    got: list[str] = []
    async with fake, client_for(fake) as client, asyncio.timeout(LONG):
        stream = client.iter_async_actions(page_size=10, prefetch=prefetch)

        async def consume() -> None:
            async for action in stream:
                got.append(action.id)

        consumer = asyncio.create_task(consume())
        await _wait_for(lambda: len(got) >= 10)
        await asyncio.sleep(0.05)
        await stream.aclose()
        await consumer  # ends, without an error
        assert not client._in_flight
        rest = [action.id async for action in client.iter_async_actions(cursor=stream.cursor)]
    assert got + rest == EXPECTED


# --- two tasks on one stream -------------------------------------------------------------


async def _drain_slowly(stream: AsyncIterator[AsyncAction], into: list[str]) -> None:
    """Iterate, giving the event loop a turn after each action (as a consumer doing
    I/O per action does)."""
    async for action in stream:
        into.append(action.id)
        await asyncio.sleep(0)


@pytest.mark.asyncio
@pytest.mark.parametrize("second_starts", ["at_once", "midway"])
async def test_a_second_task_iterating_a_stream_gets_runtime_error_and_the_first_loses_nothing(
    second_starts: str,
) -> None:
    fake = FakeVoucherify(actions=ACTIONS, latency=0.05)
    first: list[str] = []
    async with fake, client_for(fake) as client, asyncio.timeout(LONG):
        stream = client.iter_async_actions(page_size=20, prefetch=1)
        task = asyncio.create_task(_drain_slowly(stream, first))
        if second_starts == "midway":
            await _wait_for(lambda: len(first) >= 30)
        else:
            await asyncio.sleep(0)
        with pytest.raises(RuntimeError, match="another task"):
            await anext(stream)
        with pytest.raises(RuntimeError, match="another task"):
            await anext(stream.pages())
        second: list[str] = []
        with pytest.raises(RuntimeError, match="another task"):
            await _drain_slowly(stream, second)  # a loop of its own, in this task
        assert second == []
        await task
    assert_each_once(first)


@pytest.mark.asyncio
async def test_a_second_task_iterating_pages_gets_runtime_error_and_the_first_loses_nothing() -> (
    None
):
    fake = FakeVoucherify(actions=ACTIONS, latency=0.05)
    first: list[str] = []

    async def by_pages() -> None:
        async for page in stream.pages():
            first.extend(action.id for action in page)
            await asyncio.sleep(0.01)

    async with fake, client_for(fake) as client, asyncio.timeout(LONG):
        stream = client.iter_async_actions(page_size=20, prefetch=2)
        task = asyncio.create_task(by_pages())
        await _wait_for(lambda: len(first) >= 40)
        with pytest.raises(RuntimeError, match="another task"):
            await anext(stream.pages())
        with pytest.raises(RuntimeError, match="another task"):
            await anext(stream)
        await task
    assert_each_once(first)


@pytest.mark.asyncio
async def test_a_stream_goes_on_in_another_task_once_the_first_has_ended() -> None:
    """Handing a stream over is fine once the task that iterated it has finished."""
    fake = FakeVoucherify(actions=ACTIONS)
    got: list[str] = []

    async def take(count: int) -> None:
        async for action in stream:
            got.append(action.id)
            if len(got) % count == 0:
                return

    async with fake, client_for(fake) as client, asyncio.timeout(LONG):
        stream = client.iter_async_actions(page_size=20)
        await asyncio.create_task(take(25))
        await asyncio.create_task(take(10**6))
    assert got == EXPECTED


# --- a stream left behind ------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("prefetch", [1, 3])
async def test_a_stream_left_without_aclose_leaves_no_task_and_no_page(prefetch: int) -> None:
    """``break`` in a bare ``async for``: once the requests in flight have ended, no task
    runs, nothing holds the stream, and no page is kept in memory. (The fake serves from
    its own thread here, so that every task of this event loop is the client's.)"""
    fake = FakeVoucherify(actions=ACTIONS, latency=0.05)
    with fake.run_in_thread():
        await _abandon_a_stream(fake, prefetch)
    assert len(fake.requests) <= 1 + prefetch


def _pages_in_memory() -> int:
    return sum(1 for obj in gc.get_objects() if isinstance(obj, ListedPage))


async def _abandon_a_stream(fake: FakeVoucherify, prefetch: int) -> None:
    gc.collect()
    pages_before = _pages_in_memory()  # left by other tests, if any
    async with client_for(fake) as client, asyncio.timeout(LONG):
        stream: AsyncActionStream | None = client.iter_async_actions(
            page_size=10, prefetch=prefetch
        )
        assert stream is not None
        gone = weakref.ref(stream)
        async for _action in stream:
            break
        del stream, _action
        await asyncio.sleep(0)  # the prefetch planned for the event loop's next turn
        await _wait_for(lambda: not client._in_flight)
        await asyncio.sleep(0)
        gc.collect()
        assert gone() is None, gc.get_referrers(gone())
        assert asyncio.all_tasks() == {asyncio.current_task()}
        assert _pages_in_memory() <= pages_before
