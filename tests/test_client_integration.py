"""The client over real loopback HTTP against the fake server: errors, retries, sessions."""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
from typing import Any

import aiohttp
import pytest

from voucherify_async import (
    AsyncActionStatus,
    AsyncActionType,
    AuthenticationError,
    NotFoundError,
    RateLimitError,
    RequestTimeoutError,
    RetryPolicy,
    ServerError,
    Timeout,
    TransportError,
    VoucherifyClient,
)
from voucherify_async.testing import (
    FAKE_APP_ID,
    FAKE_APP_TOKEN,
    FakeVoucherify,
    Fault,
    generate_actions,
)

ACTIONS = generate_actions(60, seed=3)


def client_for(fake: FakeVoucherify, **kwargs: Any) -> VoucherifyClient:
    kwargs.setdefault("retry", RetryPolicy.instant(max_retries=3))
    return VoucherifyClient(FAKE_APP_ID, FAKE_APP_TOKEN, base_url=fake.base_url, **kwargs)


@pytest.mark.asyncio
async def test_list_returns_the_newest_page_with_typed_actions() -> None:
    fake = FakeVoucherify(actions=ACTIONS)
    async with fake, client_for(fake) as client:
        page = await client.list_async_actions(limit=10)
    assert [a.id for a in page] == [a["id"] for a in ACTIONS[:10]]
    assert page.has_more is True
    first = page.async_actions[0]
    assert isinstance(first.status, AsyncActionStatus)
    assert isinstance(first.type, AsyncActionType)
    assert first.created_at.tzinfo is not None


@pytest.mark.asyncio
async def test_the_fake_receives_our_headers() -> None:
    fake = FakeVoucherify(actions=ACTIONS)
    async with fake, client_for(fake) as client:
        await client.list_async_actions(limit=1)
    headers = {k.lower(): v for k, v in fake.requests[-1].headers.items()}
    assert headers["x-app-id"] == FAKE_APP_ID
    assert headers["x-app-token"] == FAKE_APP_TOKEN
    assert headers["x-voucherify-channel"] == "voucherify-async"
    assert headers["user-agent"].startswith("voucherify-async/")


@pytest.mark.asyncio
async def test_get_returns_the_action_with_its_result() -> None:
    failed = next(a for a in ACTIONS if a["status"] == "FAILED" and a.get("result"))
    fake = FakeVoucherify(actions=ACTIONS)
    async with fake, client_for(fake) as client:
        details = await client.get_async_action(failed["id"])
    assert details.id == failed["id"]
    assert details.status == "FAILED"
    assert details.result is not None
    assert dict(details.result) == failed["result"]


@pytest.mark.asyncio
async def test_an_unknown_id_raises_not_found_with_the_vendor_fields() -> None:
    fake = FakeVoucherify(actions=ACTIONS)
    async with fake, client_for(fake) as client:
        with pytest.raises(NotFoundError) as raised:
            await client.get_async_action("aa_doesnotexist000")
    error = raised.value
    assert (error.status, error.code, error.key) == (404, 404, "not_found")
    assert error.resource_id == "aa_doesnotexist000"
    assert error.resource_type == "async_action"
    assert error.request_id is not None
    assert error.request_id in str(error)
    assert len(fake.requests) == 1, "a 404 is not retried"


@pytest.mark.asyncio
async def test_wrong_credentials_raise_authentication_error_at_once() -> None:
    fake = FakeVoucherify(actions=ACTIONS)
    async with fake, VoucherifyClient("someone", "wrong", base_url=fake.base_url) as client:
        with pytest.raises(AuthenticationError) as raised:
            await client.list_async_actions()
    assert raised.value.status == 401
    assert "wrong" not in str(raised.value)
    assert len(fake.requests) == 1


@pytest.mark.asyncio
async def test_a_bad_end_date_reaching_the_api_raises_bad_request() -> None:
    """The fake answers 400 like the vendor when end_date is not ISO-8601 (sent by hand here)."""
    fake = FakeVoucherify(actions=ACTIONS)
    async with fake, aiohttp.ClientSession() as session:
        url = f"{fake.base_url}/v1/async-actions?end_date=yesterday"
        headers = {"X-App-Id": FAKE_APP_ID, "X-App-Token": FAKE_APP_TOKEN}
        async with session.get(url, headers=headers) as response:
            body = await response.json()
    assert response.status == 400
    assert body["key"] == "invalid_query_params"


@pytest.mark.asyncio
async def test_retry_after_is_honoured_and_logged_with_the_wait(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeVoucherify(actions=ACTIONS)
    fake.faults.push(Fault.status(429, retry_after=1), endpoint="list")
    caplog.set_level(logging.WARNING, logger="voucherify_async")
    async with fake, client_for(fake, retry=RetryPolicy(max_retries=2, max_wait=5)) as client:
        page = await client.list_async_actions(limit=5)
    assert len(page) == 5
    assert len(fake.requests) == 2
    (record,) = [r for r in caplog.records if r.name == "voucherify_async"]
    assert record.wait == 1.0  # type: ignore[attr-defined]
    assert record.attempt == 1  # type: ignore[attr-defined]
    assert record.request_id.startswith("v-")  # type: ignore[attr-defined]


@pytest.mark.asyncio
async def test_a_wait_beyond_max_wait_raises_rate_limit_error_at_once() -> None:
    fake = FakeVoucherify(actions=ACTIONS)
    fake.faults.push(Fault.status(429, retry_after=120), endpoint="list")
    async with fake, client_for(fake, retry=RetryPolicy(max_retries=3, max_wait=60)) as client:
        with pytest.raises(RateLimitError) as raised:
            await client.list_async_actions()
    assert raised.value.retry_after == 120
    assert "retry after 120 s" in str(raised.value)
    assert len(fake.requests) == 1


@pytest.mark.asyncio
async def test_server_errors_are_retried_then_raised() -> None:
    fake = FakeVoucherify(actions=ACTIONS)
    fake.faults.push(Fault.status(502, html=True), times=3, endpoint="list")
    async with fake, client_for(fake, retry=RetryPolicy.instant(max_retries=2)) as client:
        with pytest.raises(ServerError) as raised:
            await client.list_async_actions()
    assert raised.value.status == 502
    assert "html" in str(raised.value).lower()
    assert len(fake.requests) == 3


@pytest.mark.asyncio
async def test_a_dropped_connection_is_retried() -> None:
    fake = FakeVoucherify(actions=ACTIONS)
    fake.faults.push(Fault.drop(), times=2, endpoint="get")
    async with fake, client_for(fake) as client:
        details = await client.get_async_action(ACTIONS[0]["id"])
    assert details.id == ACTIONS[0]["id"]
    assert len(fake.requests) == 3


@pytest.mark.asyncio
async def test_a_dropped_connection_without_retries_raises_transport_error() -> None:
    """aiohttp itself re-sends an idempotent request once when the connection drops
    before any answer (RFC 9112, 9.3.1); ``max_retries`` counts our retries on top."""
    fake = FakeVoucherify(actions=ACTIONS)
    fake.faults.push(Fault.drop(), times=2, endpoint="list")
    async with fake, client_for(fake, max_retries=0) as client:
        with pytest.raises(TransportError) as raised:
            await client.list_async_actions()
    assert isinstance(raised.value.__cause__, aiohttp.ClientError)
    assert len(fake.requests) == 2


@pytest.mark.asyncio
async def test_a_slow_answer_raises_timeout_error_instead_of_hanging() -> None:
    """For web handlers: the call is bounded by the timeout, even if the server stalls."""
    fake = FakeVoucherify(actions=ACTIONS)
    fake.faults.push(Fault.delay(30.0), endpoint="list")
    async with fake, client_for(fake, timeout=Timeout(total=0.3), max_retries=0) as client:
        with pytest.raises(RequestTimeoutError):
            await client.list_async_actions()


@pytest.mark.asyncio
async def test_a_timeout_is_retried() -> None:
    fake = FakeVoucherify(actions=ACTIONS)
    fake.faults.push(Fault.delay(30.0), endpoint="list")
    # Long enough for the retried request to be answered in time on a busy machine.
    async with fake, client_for(fake, timeout=1.0) as client:
        page = await client.list_async_actions(limit=2)
    assert len(page) == 2
    assert len(fake.requests) == 2


@pytest.mark.asyncio
async def test_nothing_listening_raises_transport_error_after_retries() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = VoucherifyClient(
        "a", "b", base_url=f"http://127.0.0.1:{port}", retry=RetryPolicy.instant(max_retries=1)
    )
    async with client:
        with pytest.raises(TransportError, match=r"127\.0\.0\.1"):
            await client.list_async_actions()


@pytest.mark.asyncio
async def test_unknown_values_and_fields_from_the_api_are_kept_or_ignored() -> None:
    fake = FakeVoucherify(actions=ACTIONS)
    fake.faults.push(
        Fault.payload(
            {
                "object": "list",
                "async_actions": [
                    {
                        "id": "aa_new",
                        "created_at": "2026-01-01T00:00:00.000Z",
                        "type": "LOYALTIES.SOMETHING_NEW",
                        "status": "PAUSED",
                        "brand_new_field": {"x": 1},
                    }
                ],
                "has_more": False,
            }
        ),
        endpoint="list",
    )
    async with fake, client_for(fake) as client:
        (action,) = (await client.list_async_actions(limit=1)).async_actions
    assert action.type == "LOYALTIES.SOMETHING_NEW"
    assert action.status == "PAUSED"
    assert action.updated_at is None


@pytest.mark.asyncio
async def test_a_callers_session_is_used_and_never_closed() -> None:
    fake = FakeVoucherify(actions=ACTIONS)
    async with fake, aiohttp.ClientSession() as session:
        async with client_for(fake, session=session) as client:
            await client.list_async_actions(limit=1)
        assert not session.closed
        async with session.get(f"{fake.base_url}/v1/async-actions") as response:
            assert response.status == 401  # the session still works (and carries no credentials)


def test_a_client_made_outside_a_loop_creates_its_session_inside_one() -> None:
    with FakeVoucherify(actions=ACTIONS).run_in_thread() as fake:
        client = client_for(fake)

        async def use() -> int:
            async with client:
                return len(await client.list_async_actions(limit=3))

        assert asyncio.run(use()) == 3


@pytest.mark.asyncio
async def test_a_closed_client_refuses_requests_and_close_is_idempotent() -> None:
    fake = FakeVoucherify(actions=ACTIONS)
    async with fake:
        client = client_for(fake)
        await client.list_async_actions(limit=1)
        await client.close()
        await client.close()
        with pytest.raises(RuntimeError, match="closed"):
            await client.list_async_actions(limit=1)
        assert "closed" in repr(client)


@pytest.mark.asyncio
async def test_concurrent_calls_share_one_client() -> None:
    fake = FakeVoucherify(actions=ACTIONS, latency=0.02)
    async with fake, client_for(fake) as client:
        pages = await asyncio.gather(*(client.list_async_actions(limit=5) for _ in range(10)))
    assert {tuple(a.id for a in page) for page in pages} == {tuple(a["id"] for a in ACTIONS[:5])}


def _leak_a_session() -> None:
    async def leak() -> None:
        client = VoucherifyClient("a", "b", base_url="http://127.0.0.1:9")
        client._get_session()  # create the session, then forget to close it

    asyncio.run(leak())
    gc.collect()


def test_a_leaked_session_is_caught_by_the_hygiene_check() -> None:
    """Proves the suite's hygiene check can fail: an unclosed session warns when collected."""
    with pytest.warns(ResourceWarning, match=r"Unclosed client session"):
        _leak_a_session()
