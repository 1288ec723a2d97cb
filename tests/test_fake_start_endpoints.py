"""The POSTs that start an action: ``/v1/{customers,products,vouchers}/{bulk,metadata}/async``.

Over real loopback HTTP with a plain ``aiohttp.ClientSession`` and a ``ManualClock``.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncIterator, Mapping
from typing import Any, NamedTuple

import aiohttp
import pytest
from multidict import CIMultiDictProxy

from voucherify_async.testing import (
    FAKE_APP_ID,
    FAKE_APP_TOKEN,
    FakeVoucherify,
    Fault,
    ManualClock,
    generate_actions,
)

AUTH = {"X-App-Id": FAKE_APP_ID, "X-App-Token": FAKE_APP_TOKEN}
LIST = "/v1/async-actions"
ACTION_ID = re.compile(r"aa_[0-9a-f]{18}")
#: Each start path, the type of the action it starts, and a body of the vendor's shape.
START_PATHS = [
    ("/v1/customers/bulk/async", "CUSTOMERS.BULK_UPDATE", [{"source_id": "c1", "name": "Ann"}]),
    (
        "/v1/customers/metadata/async",
        "CUSTOMERS.METADATA_UPDATE",
        {"source_ids": ["c1", "c2"], "metadata": {"tier": "gold"}},
    ),
    ("/v1/products/bulk/async", "PRODUCTS.BULK_UPDATE", [{"source_id": "p1", "price": 100}]),
    (
        "/v1/products/metadata/async",
        "PRODUCTS.METADATA_UPDATE",
        {"source_ids": ["p1"], "metadata": {"color": "red"}},
    ),
    ("/v1/vouchers/bulk/async", "VOUCHERS.BULK_UPDATE", [{"code": "X1", "metadata": {"a": 1}}]),
    (
        "/v1/vouchers/metadata/async",
        "VOUCHERS.METADATA_UPDATE",
        {"codes": ["X1", "X2"], "metadata": {"lang": "en"}},
    ),
]
METADATA = "/v1/customers/metadata/async"
BULK = "/v1/customers/bulk/async"


class Reply(NamedTuple):
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def post(
    session: aiohttp.ClientSession,
    path: str,
    body: Any = None,
    *,
    data: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    method: str = "POST",
) -> Reply:
    async with session.request(
        method,
        path,
        json=body if data is None else None,
        data=data,
        headers=AUTH if headers is None else headers,
    ) as response:
        return Reply(response.status, response.headers, await response.read())


@contextlib.asynccontextmanager
async def serve(
    **knobs: Any,
) -> AsyncIterator[tuple[FakeVoucherify, aiohttp.ClientSession, ManualClock]]:
    clock = ManualClock()
    fake = FakeVoucherify(actions=generate_actions(10, seed=1), clock=clock, **knobs)
    async with fake, aiohttp.ClientSession(fake.base_url) as session:
        yield fake, session, clock


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("path", "action_type", "body"), START_PATHS, ids=[p for p, _, _ in START_PATHS]
)
async def test_each_start_post_answers_202_with_the_id_of_a_new_action_of_its_type(
    path: str, action_type: str, body: Any
) -> None:
    """202 ``{"async_action_id": "aa_..."}``; the action is listed first, ENQUEUED, of the
    path's type, with the POST's request id, and finishes after ``action_duration``."""
    async with serve(action_duration=2.0) as (fake, session, clock):
        reply = await post(session, path, body)
        async with session.get(LIST, params={"limit": 1}, headers=AUTH) as response:
            newest = (await response.json())["async_actions"][0]
        clock.advance(2.0)
        async with session.get(f"{LIST}/{newest['id']}", headers=AUTH) as response:
            finished = await response.json()
    assert reply.status == 202
    assert reply.headers["Content-Type"].startswith("application/json")
    assert list(reply.json()) == ["async_action_id"]
    assert ACTION_ID.fullmatch(reply.json()["async_action_id"])
    assert newest["id"] == reply.json()["async_action_id"]
    assert (newest["type"], newest["status"], newest["progress"]) == (action_type, "ENQUEUED", 0)
    assert newest["request_id"] == reply.headers["X-Request-Id"]
    assert (finished["status"], finished["operation_status"]) == ("DONE", "SUCCESS")
    assert finished["processing_time"] == 2_000
    assert fake.requests[0].body == json.dumps(body).encode()


@pytest.mark.asyncio
async def test_action_outcome_failed_makes_posted_actions_fail() -> None:
    async with serve(action_outcome="FAILED", action_duration=0.0) as (fake, session, _):
        reply = await post(session, METADATA, {"source_ids": ["c1"], "metadata": {}})
        action = fake.actions[0]
    assert action["id"] == reply.json()["async_action_id"]
    assert (action["status"], action["operation_status"]) == ("FAILED", "FAILED")
    assert action["result"]["failed_count"] >= 1


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "headers",
    [{}, {"X-App-Id": FAKE_APP_ID, "X-App-Token": "wrong"}, {"Authorization": "Bearer nope"}],
    ids=["none", "wrong-token", "bearer-unconfigured"],
)
async def test_start_post_without_valid_credentials_is_the_vendor_401_and_starts_nothing(
    headers: dict[str, str],
) -> None:
    async with serve() as (fake, session, _):
        reply = await post(session, METADATA, {"metadata": {}}, headers=headers)
    assert reply.status == 401
    assert reply.json() == {
        "code": 401,
        "key": "unauthorized",
        "message": "Unauthorized",
        "details": reply.json()["details"],
        "request_id": reply.headers["X-Request-Id"],
    }
    assert len(fake.actions) == 10


@pytest.mark.asyncio
async def test_start_post_accepts_the_oauth_bearer_token_when_configured() -> None:
    async with serve(oauth_token="tok") as (_, session, _clock):
        reply = await post(session, METADATA, {}, headers={"Authorization": "Bearer tok"})
    assert reply.status == 202


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("path", "data", "details"),
    [
        (METADATA, b"{", "The request body is not valid JSON"),
        (METADATA, b"", "The request body is not valid JSON"),
        (METADATA, b"\xff\xfe", "The request body is not valid JSON"),
        (METADATA, b"[]", "The request body must be an object"),
        (METADATA, b'"text"', "The request body must be an object"),
        (BULK, b'{"source_id": "c1"}', "The request body must be an array of objects"),
        (BULK, b"[1, 2]", "The request body must be an array of objects"),
        (BULK, b"not json", "The request body is not valid JSON"),
    ],
)
async def test_a_body_that_is_not_json_of_the_documented_type_is_400_and_starts_nothing(
    path: str, data: bytes, details: str
) -> None:
    """400 ``invalid_payload`` in the vendor's error shape; the store is unchanged."""
    async with serve() as (fake, session, _):
        reply = await post(session, path, data=data)
    assert reply.status == 400
    assert reply.json() == {
        "code": 400,
        "key": "invalid_payload",
        "message": "Invalid payload",
        "details": details,
        "request_id": reply.headers["X-Request-Id"],
    }
    assert len(fake.actions) == 10


@pytest.mark.asyncio
async def test_credentials_are_checked_before_the_body() -> None:
    async with serve() as (_, session, _clock):
        assert (await post(session, METADATA, data=b"{", headers={})).status == 401


@pytest.mark.asyncio
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
async def test_other_methods_than_post_on_a_start_path_are_405_allow_post(method: str) -> None:
    async with serve() as (fake, session, _):
        reply = await post(session, METADATA, method=method)
    assert reply.status == 405
    assert reply.headers["Allow"] == "POST"
    assert reply.json()["key"] == "method_not_allowed"
    assert len(fake.actions) == 10


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "path", ["/v1/orders/metadata/async", "/v1/customers/metadata", "/v1/customers/async"]
)
async def test_paths_the_fake_does_not_start_from_are_404(path: str) -> None:
    async with serve() as (_, session, _clock):
        assert (await post(session, path, {})).status == 404


@pytest.mark.asyncio
async def test_start_faults_hit_posts_only_and_take_the_whole_request() -> None:
    """``endpoint="start"`` faults skip GETs; a status fault starts nothing; ``None`` faults
    hit the next API request whatever its endpoint."""
    async with serve() as (fake, session, _):
        fake.faults.push(Fault.status(503), endpoint="start")
        async with session.get(LIST, headers=AUTH) as response:
            assert response.status == 200
        failed = await post(session, METADATA, {})
        fake.faults.push(Fault.status(500))
        also_failed = await post(session, BULK, [])
        fine = await post(session, METADATA, {})
    assert (failed.status, also_failed.status, fine.status) == (503, 500, 202)
    assert fake.actions[0]["id"] == fine.json()["async_action_id"]
    assert len(fake.actions) == 11
    assert [r.fault for r in fake.requests] == [None, Fault.status(503), Fault.status(500), None]


@pytest.mark.asyncio
async def test_truncated_and_delayed_posts_still_start_their_action() -> None:
    """Like the GETs, ``Fault.truncated()`` and ``Fault.delay()`` answer the real response
    (cut, or late): the action is started."""
    async with serve() as (fake, session, _):
        fake.faults.push(Fault.truncated(), endpoint="start")
        cut = await post(session, METADATA, {})
        fake.faults.push(Fault.delay(0.01), endpoint="start")
        late = await post(session, METADATA, {})
    assert (cut.status, late.status) == (202, 202)
    with pytest.raises(json.JSONDecodeError):
        cut.json()
    assert len(fake.actions) == 12
    assert fake.actions[0]["id"] == late.json()["async_action_id"]


@pytest.mark.asyncio
async def test_a_single_drop_fails_a_post_since_aiohttp_does_not_resend_it() -> None:
    """POST is not idempotent: one ``Fault.drop()`` is enough for ServerDisconnectedError."""
    async with serve() as (fake, session, _):
        fake.faults.push(Fault.drop(), endpoint="start")
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await post(session, METADATA, {})
        assert (await post(session, METADATA, {})).status == 202
    assert len(fake.actions) == 11
