"""FakeVoucherify over real loopback HTTP: auth, query checks, paging, get, faults, serving.

Every test talks to the fake with a plain ``aiohttp.ClientSession`` (or, for the
synchronous cases, ``http.client``), never through the client library.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import math
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import aiohttp
import attrs
import pytest
from multidict import CIMultiDictProxy

import voucherify_async.testing
from voucherify_async.testing import (
    FAKE_APP_ID,
    FAKE_APP_TOKEN,
    FakeVoucherify,
    Fault,
    FaultQueue,
    ManualClock,
    RecordedRequest,
    generate_actions,
)

AUTH = {"X-App-Id": FAKE_APP_ID, "X-App-Token": FAKE_APP_TOKEN}
LIST = "/v1/async-actions"
REQUEST_ID = re.compile(r"v-[0-9a-f]{18}")
DOCUMENTED_END_DATE_400 = {
    "code": 400,
    "key": "invalid_query_params",
    "message": "Invalid query params",
    "details": "Property .end_date cannot be recognized as a ISO-8601 compliant date",
}


class Reply(NamedTuple):
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def ids(self) -> list[str]:
        return [item["id"] for item in self.json()["async_actions"]]


async def call(
    session: aiohttp.ClientSession,
    path: str = LIST,
    *,
    params: Mapping[str, str | int] | None = None,
    headers: Mapping[str, str] | None = None,
    method: str = "GET",
) -> Reply:
    async with session.request(
        method, path, params=params, headers=AUTH if headers is None else headers
    ) as response:
        return Reply(response.status, response.headers, await response.read())


@contextlib.asynccontextmanager
async def serve(**knobs: Any) -> AsyncIterator[tuple[FakeVoucherify, aiohttp.ClientSession]]:
    async with FakeVoucherify(**knobs) as fake, aiohttp.ClientSession(fake.base_url) as session:
        yield fake, session


def stamp(moment: datetime) -> str:
    """``moment`` the way the API writes it: UTC, milliseconds, ``Z``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def action(action_id: str, created_at: str | datetime, **fields: Any) -> dict[str, Any]:
    if isinstance(created_at, datetime):
        created_at = stamp(created_at)
    return {
        "id": action_id,
        "type": "CUSTOMERS.BULK_UPDATE",
        "status": "DONE",
        "created_at": created_at,
        "object": "async_action",
        **fields,
    }


def spaced(
    count: int, *, newest: datetime = datetime(2024, 5, 1, tzinfo=UTC)
) -> list[dict[str, Any]]:
    """``count`` actions one second apart, newest first, ids ``a00``, ``a01``, ..."""
    return [action(f"a{i:02d}", newest - timedelta(seconds=i)) for i in range(count)]


# -- public surface ------------------------------------------------------------------


def test_public_surface_is_explicit_and_sorted() -> None:
    """``voucherify_async.testing`` exports exactly the documented names, sorted the way
    ruff's RUF022 sorts them: constants, then classes, then functions."""
    exported = voucherify_async.testing.__all__

    def isort_style(name: str) -> tuple[int, str]:
        return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)

    assert exported == sorted(exported, key=isort_style)
    assert set(exported) == {
        "FAKE_APP_ID",
        "FAKE_APP_TOKEN",
        "ActionOutcome",
        "Clock",
        "Endpoint",
        "FakeVoucherify",
        "Fault",
        "FaultKind",
        "FaultQueue",
        "ManualClock",
        "Order",
        "RecordedRequest",
        "generate_actions",
    }
    for name in exported:
        assert getattr(voucherify_async.testing, name) is not None


# -- authentication --------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-App-Id": FAKE_APP_ID},
        {"X-App-Token": FAKE_APP_TOKEN},
        {"X-App-Id": FAKE_APP_ID, "X-App-Token": "wrong"},
        {"X-App-Id": "wrong", "X-App-Token": FAKE_APP_TOKEN},
        {"Authorization": "Bearer anything"},
    ],
    ids=["none", "id-only", "token-only", "wrong-token", "wrong-id", "bearer-unconfigured"],
)
@pytest.mark.parametrize("path", [LIST, f"{LIST}/a00"])
async def test_missing_or_wrong_credentials_get_the_vendor_401(
    headers: dict[str, str], path: str
) -> None:
    """Both endpoints answer 401 ``unauthorized`` with the request id of the response."""
    async with serve(actions=spaced(1)) as (_, session):
        reply = await call(session, path, headers=headers)
    assert reply.status == 401
    body = reply.json()
    assert body == {
        "code": 401,
        "key": "unauthorized",
        "message": "Unauthorized",
        "details": body["details"],
        "request_id": reply.headers["X-Request-Id"],
    }
    assert body["details"]


@pytest.mark.asyncio
async def test_bearer_token_is_accepted_only_when_it_matches_oauth_token() -> None:
    """``Authorization: Bearer <oauth_token>`` works alongside the app keys, another token not."""
    async with serve(actions=spaced(1), oauth_token="tok-1") as (fake, session):
        assert (await call(session, headers={"Authorization": "Bearer tok-1"})).status == 200
        assert (await call(session, headers={"Authorization": "Bearer tok-2"})).status == 401
        assert (await call(session)).status == 200
        fake.oauth_token = None
        assert (await call(session, headers={"Authorization": "Bearer tok-1"})).status == 401


@pytest.mark.asyncio
async def test_app_id_and_token_none_accept_any_non_empty_pair() -> None:
    """With ``app_id=None, app_token=None`` any non-empty pair passes; an empty one does not."""
    async with serve(actions=spaced(1), app_id=None, app_token=None) as (_, session):
        pair = {"X-App-Id": "someone", "X-App-Token": "something"}
        assert (await call(session, headers=pair)).status == 200
        empty = {"X-App-Id": "someone", "X-App-Token": ""}
        assert (await call(session, headers=empty)).status == 401


# -- limit -------------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("limit", "details"),
    [
        ("0", "Property .limit should be >= 1"),
        ("101", "Property .limit should be <= 100"),
        ("abc", "Property .limit should be integer"),
        ("-1", "Property .limit should be integer"),
        ("1.5", "Property .limit should be integer"),
        ("", "Property .limit should be integer"),
        ("\u0661", "Property .limit should be integer"),  # an Arabic-Indic digit one
    ],
)
async def test_limit_outside_1_to_100_or_not_an_integer_is_400(limit: str, details: str) -> None:
    """A bad ``limit`` is refused with ``invalid_query_params`` naming ``.limit``."""
    async with serve(actions=spaced(3)) as (_, session):
        reply = await call(session, params={"limit": limit})
    assert reply.status == 400
    assert reply.json() == {
        "code": 400,
        "key": "invalid_query_params",
        "message": "Invalid query params",
        "details": details,
        "request_id": reply.headers["X-Request-Id"],
    }


@pytest.mark.asyncio
async def test_limit_bounds_1_and_100_are_accepted_and_default_limit_applies_without_one() -> None:
    """``limit=1`` and ``limit=100`` are valid; no ``limit`` means ``default_limit``."""
    async with serve(actions=spaced(150)) as (fake, session):
        assert len((await call(session, params={"limit": 1})).ids()) == 1
        assert len((await call(session, params={"limit": 100})).ids()) == 100
        assert len((await call(session)).ids()) == 10
        fake.default_limit = 42
        assert len((await call(session)).ids()) == 42


# -- end_date ----------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "end_date",
    [
        "yesterday",
        "2016-13-01",
        "2016-02-30",
        "2016-11-16T25:00:00Z",
        "2016-11-16T14:14:31+02:75",
        "16-11-2016",
        "",
        # '+' not percent-encoded reads as a space (form encoding): refused.
        "2022-09-06T00:00:00.000000 0000",
    ],
)
async def test_unparseable_end_date_gets_exactly_the_documented_400(end_date: str) -> None:
    """The body is the vendor's documented example, with this response's request id."""
    async with serve(actions=spaced(3)) as (_, session):
        reply = await call(session, params={"end_date": end_date})
    assert reply.status == 400
    assert reply.json() == {**DOCUMENTED_END_DATE_400, "request_id": reply.headers["X-Request-Id"]}


@pytest.mark.asyncio
async def test_unencoded_plus_in_end_date_is_refused_like_a_space() -> None:
    """A client that forgets to percent-encode ``+`` in an offset gets the 400, not a page."""
    async with serve(actions=spaced(3)) as (fake, session):
        async with session.get(
            f"{fake.base_url}{LIST}?end_date=2024-05-01T00:00:00.000000+0000", headers=AUTH
        ) as response:
            assert response.status == 400
        assert fake.requests[-1].query == {"end_date": "2024-05-01T00:00:00.000000 0000"}


INSTANT = "2016-11-16T14:14:31.000Z"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("end_date", "instant"),
    [
        ("2016-11-16T14:14:31Z", INSTANT),
        ("2016-11-16T14:14:31.000Z", INSTANT),
        ("2016-11-16T14:14:31.0Z", INSTANT),
        ("2016-11-16T14:14:31.000000000Z", INSTANT),
        ("2016-11-16T16:14:31+02:00", INSTANT),
        ("2016-11-16T14:14:31+0000", INSTANT),
        ("2016-11-16T09:14:31.000000-0500", INSTANT),
        ("2016-11-16T15:14:31+01", INSTANT),
        ("2016-11-16T14:14:31", INSTANT),
        ("2016-11-16T14:14Z", "2016-11-16T14:14:00.000Z"),
        ("2022-09-05T11:40:17.098Z", "2022-09-05T11:40:17.098Z"),
        ("2022-09-06T00:00:00.000000+0000", "2022-09-06T00:00:00.000Z"),
        ("2016-11-16", "2016-11-16T00:00:00.000Z"),
    ],
)
@pytest.mark.parametrize("inclusive", [False, True], ids=["exclusive", "inclusive"])
async def test_every_end_date_form_filters_at_its_instant(
    end_date: str, instant: str, inclusive: bool
) -> None:
    """Actions 1 ms before / at / after the instant: exclusive keeps only the one before,
    inclusive also the one at it; never the one after."""
    at = datetime.fromisoformat(instant)
    one_ms = timedelta(milliseconds=1)
    actions = [action("after", at + one_ms), action("at", at), action("before", at - one_ms)]
    async with serve(actions=actions, end_date_inclusive=inclusive) as (_, session):
        reply = await call(session, params={"end_date": end_date})
    assert reply.status == 200
    assert reply.ids() == (["at", "before"] if inclusive else ["before"])


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("end_date", "expected"),
    [
        ("2016-11-16T14:14:31.0005Z", ["at", "before"]),
        ("2016-11-16T14:14:30.9995Z", ["before"]),
    ],
)
@pytest.mark.parametrize("inclusive", [False, True], ids=["exclusive", "inclusive"])
async def test_end_date_finer_than_a_millisecond_compares_exactly(
    end_date: str, expected: list[str], inclusive: bool
) -> None:
    """Between two milliseconds, both readings agree: everything strictly earlier passes."""
    at = datetime.fromisoformat(INSTANT)
    one_ms = timedelta(milliseconds=1)
    actions = [action("after", at + one_ms), action("at", at), action("before", at - one_ms)]
    async with serve(actions=actions, end_date_inclusive=inclusive) as (_, session):
        assert (await call(session, params={"end_date": end_date})).ids() == expected


@pytest.mark.asyncio
async def test_end_date_at_a_tie_drops_or_keeps_the_whole_tie_group() -> None:
    """Exclusive: none of the actions sharing the end_date millisecond; inclusive: all of
    them, in the order given; the knob can flip while serving."""
    at = datetime.fromisoformat(INSTANT)
    one_ms = timedelta(milliseconds=1)
    actions = [
        action("after", at + one_ms),
        action("tie-1", at),
        action("tie-2", at),
        action("tie-3", at),
        action("before", at - one_ms),
    ]
    async with serve(actions=actions) as (fake, session):
        assert (await call(session, params={"end_date": INSTANT})).ids() == ["before"]
        fake.end_date_inclusive = True
        assert (await call(session, params={"end_date": INSTANT})).ids() == [
            "tie-1",
            "tie-2",
            "tie-3",
            "before",
        ]


# -- list order and has_more -----------------------------------------------------------


@pytest.mark.asyncio
async def test_list_is_newest_first_without_result_and_ties_keep_a_stable_order() -> None:
    """Whatever order actions are given in, pages come newest first; tied actions keep
    their given order on every request; list items carry no ``result``."""
    generated = generate_actions(300, seed=5, tie_rate=0.5)
    async with serve(actions=list(reversed(generated))) as (_, session):
        first = (await call(session, params={"limit": 100})).json()
        again = (await call(session, params={"limit": 100})).json()
    items = first["async_actions"]
    assert first == again
    created = [item["created_at"] for item in items]
    assert created == sorted(created, reverse=True)
    assert len(set(created)) < len(created)  # ties were served
    assert all("result" not in item for item in items)
    # Reversed input, stable sort: each tie group is reversed relative to generation.
    by_instant: dict[str, list[str]] = {}
    for item in generated:
        by_instant.setdefault(item["created_at"], []).insert(0, item["id"])
    checked = 0
    for instant, ids in by_instant.items():
        served = [item["id"] for item in items if item["created_at"] == instant]
        if len(ids) > 1 and len(served) == len(ids):
            assert served == ids
            checked += 1
    assert checked >= 5


@pytest.mark.asyncio
async def test_has_more_is_true_exactly_while_more_matching_actions_remain() -> None:
    """Paging back with end_date: has_more stays true until the page that ends the store,
    also when that last page is exactly full."""
    async with serve(actions=spaced(30)) as (_, session):
        pages: list[dict[str, Any]] = []
        params: dict[str, str | int] = {"limit": 10}
        while True:
            body = (await call(session, params=params)).json()
            pages.append(body)
            if not body["has_more"]:
                break
            params["end_date"] = body["async_actions"][-1]["created_at"]
    assert [len(page["async_actions"]) for page in pages] == [10, 10, 10]
    assert [page["has_more"] for page in pages] == [True, True, False]
    ids = [item["id"] for page in pages for item in page["async_actions"]]
    assert ids == [f"a{i:02d}" for i in range(30)]


@pytest.mark.asyncio
async def test_has_more_counts_only_actions_before_end_date() -> None:
    """Newer actions excluded by end_date do not make has_more true; a short page is last."""
    async with serve(actions=spaced(25)) as (_, session):
        end_date = stamp(datetime(2024, 5, 1, tzinfo=UTC) - timedelta(seconds=19))
        body = (await call(session, params={"limit": 10, "end_date": end_date})).json()
        assert [item["id"] for item in body["async_actions"]] == [f"a{i}" for i in range(20, 25)]
        assert body["has_more"] is False
        body = (await call(session, params={"limit": 4, "end_date": end_date})).json()
        assert body["has_more"] is True


@pytest.mark.asyncio
async def test_send_has_more_false_leaves_the_field_out() -> None:
    """Like older API versions: no ``has_more`` key at all, the rest unchanged."""
    async with serve(actions=spaced(5), send_has_more=False) as (fake, session):
        body = (await call(session, params={"limit": 2})).json()
        assert set(body) == {"object", "data_ref", "async_actions"}
        assert (body["object"], body["data_ref"]) == ("list", "async_actions")
        fake.send_has_more = True
        assert (await call(session, params={"limit": 2})).json()["has_more"] is True


@pytest.mark.asyncio
async def test_order_shuffled_permutes_each_page_but_keeps_its_members() -> None:
    """``order="shuffled"`` returns the same actions per page, not newest first."""
    async with serve(actions=spaced(40)) as (fake, session):
        expected = (await call(session, params={"limit": 20})).ids()
        fake.order = "shuffled"
        pages = [(await call(session, params={"limit": 20})).ids() for _ in range(3)]
    assert all(sorted(page) == sorted(expected) for page in pages)
    assert all(page != expected for page in pages)


@pytest.mark.asyncio
async def test_shuffle_ties_varies_order_and_subset_of_a_tie_cut_by_the_page_end() -> None:
    """With ``shuffle_ties``, a page ending inside a tie gets a varying part of it, still
    after the newer actions; without it, the same part every time."""
    at = datetime.fromisoformat(INSTANT)
    ties = [action(f"tie-{i}", at) for i in range(6)]
    actions = [action("newest", at + timedelta(seconds=1)), *ties]
    actions.append(action("oldest", at - timedelta(seconds=1)))
    async with serve(actions=actions) as (fake, session):
        stable = {tuple((await call(session, params={"limit": 4})).ids()) for _ in range(5)}
        assert stable == {("newest", "tie-0", "tie-1", "tie-2")}
        fake.shuffle_ties = True
        pages = [tuple((await call(session, params={"limit": 4})).ids()) for _ in range(10)]
        full = (await call(session, params={"limit": 100})).ids()
    assert all(page[0] == "newest" and set(page[1:]) <= {a["id"] for a in ties} for page in pages)
    assert len({frozenset(page) for page in pages}) > 1
    assert full[0] == "newest"
    assert full[-1] == "oldest"


# -- get, unknown paths, methods ------------------------------------------------------------


@pytest.mark.asyncio
async def test_get_returns_the_stored_action_with_its_result() -> None:
    """The get body is the stored action exactly, ``result`` included."""
    generated = generate_actions(50, seed=2)
    done = next(a for a in generated if a["status"] == "DONE")
    async with serve(actions=generated) as (_, session):
        reply = await call(session, f"{LIST}/{done['id']}")
    assert reply.status == 200
    assert reply.json() == done
    assert "result" in reply.json()


@pytest.mark.asyncio
async def test_get_unknown_id_is_the_documented_404() -> None:
    """404 ``not_found`` naming the id, as in the vendor's example."""
    async with serve(actions=spaced(2)) as (_, session):
        reply = await call(session, f"{LIST}/aa_0aeb82bd55d5beffb")
    assert reply.status == 404
    assert reply.json() == {
        "code": 404,
        "key": "not_found",
        "message": "Resource not found",
        "details": "Cannot find async_action with id aa_0aeb82bd55d5beffb",
        "request_id": reply.headers["X-Request-Id"],
        "resource_id": "aa_0aeb82bd55d5beffb",
        "resource_type": "async_action",
    }


@pytest.mark.asyncio
@pytest.mark.parametrize("path", ["/", "/v1/async-action", f"{LIST}/", f"{LIST}/a00/x", "/v2/x"])
async def test_unknown_paths_are_json_404(path: str) -> None:
    """Anything but the two endpoints is a JSON 404 (credentials or not)."""
    async with serve(actions=spaced(1)) as (_, session):
        reply = await call(session, path, headers={})
    assert reply.status == 404
    assert reply.headers["Content-Type"].startswith("application/json")
    assert reply.json()["key"] == "not_found"
    assert reply.json()["request_id"] == reply.headers["X-Request-Id"]


@pytest.mark.asyncio
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "HEAD"])
@pytest.mark.parametrize("path", [LIST, f"{LIST}/a00"])
async def test_other_methods_than_get_are_405(method: str, path: str) -> None:
    """Other methods on the endpoints: 405 with ``Allow: GET``."""
    async with serve(actions=spaced(1)) as (_, session):
        reply = await call(session, path, method=method)
    assert reply.status == 405
    assert reply.headers["Allow"] == "GET"
    if method != "HEAD":
        assert reply.json()["key"] == "method_not_allowed"


@pytest.mark.asyncio
async def test_every_response_carries_a_fresh_request_id_and_rate_limit_headers() -> None:
    """200, 400, 401, 404, 405 and fault answers all carry ``X-Request-Id: v-<18 hex>``
    (unique) and the rate-limit headers; JSON error bodies repeat the id."""
    async with serve(actions=spaced(3)) as (fake, session):
        replies = [
            await call(session),
            await call(session, f"{LIST}/a00"),
            await call(session, params={"limit": 0}),
            await call(session, headers={}),
            await call(session, f"{LIST}/nope"),
            await call(session, "/nowhere"),
            await call(session, method="POST"),
        ]
        for fault in (Fault.status(503), Fault.status(502, html=True), Fault.html()):
            fake.faults.push(fault)
            replies.append(await call(session))
    ids = [reply.headers["X-Request-Id"] for reply in replies]
    assert all(REQUEST_ID.fullmatch(request_id) for request_id in ids)
    assert len(set(ids)) == len(ids)
    for reply in replies:
        assert int(reply.headers["X-Rate-Limit-Limit"]) > 0
        assert int(reply.headers["X-Rate-Limit-Remaining"]) > 0
        if reply.status >= 400 and reply.headers["Content-Type"].startswith("application/json"):
            assert reply.json()["request_id"] == reply.headers["X-Request-Id"]


# -- faults ----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_429_fault_hits_the_next_n_list_requests_with_rate_limit_headers() -> None:
    """``push(Fault.status(429, retry_after=1), times=2, endpoint="list")``: two list calls
    get 429 with Retry-After, X-Rate-Limit-*; gets pass; the third list call is normal."""
    async with serve(actions=spaced(3)) as (fake, session):
        fake.faults.push(Fault.status(429, retry_after=1), times=2, endpoint="list")
        assert (await call(session, f"{LIST}/a00")).status == 200
        before = time.time()
        limited = [await call(session), await call(session)]
        assert (await call(session)).status == 200
    for reply in limited:
        assert reply.status == 429
        assert reply.headers["Retry-After"] == "1"
        assert reply.headers["X-Rate-Limit-Remaining"] == "0"
        assert reply.headers["X-Rate-Limit-Type"]
        retry_at = int(reply.headers["X-Rate-Limit-Retry"])
        assert before < retry_at <= time.time() + 2
        assert reply.json() == {
            "code": 429,
            "key": "too_many_requests",
            "message": "Too Many Requests",
            "details": reply.json()["details"],
            "request_id": reply.headers["X-Request-Id"],
        }


@pytest.mark.asyncio
async def test_5xx_fault_has_the_json_error_shape_or_a_proxy_html_page() -> None:
    """``Fault.status(503)`` answers the vendor's error JSON; ``html=True`` an HTML page."""
    async with serve(actions=spaced(1)) as (fake, session):
        fake.faults.push(Fault.status(503, retry_after=7))
        fake.faults.push(Fault.status(502, html=True))
        unavailable = await call(session)
        gateway = await call(session)
    assert unavailable.status == 503
    assert unavailable.headers["Retry-After"] == "7"
    body = unavailable.json()
    assert (body["code"], body["key"], body["message"]) == (
        503,
        "service_unavailable",
        "Service Unavailable",
    )
    assert gateway.status == 502
    assert gateway.headers["Content-Type"].startswith("text/html")
    assert b"502 Bad Gateway" in gateway.body
    assert "Retry-After" not in gateway.headers


@pytest.mark.asyncio
async def test_status_fault_with_a_code_http_does_not_name_still_answers_json() -> None:
    """An unnamed code such as 599 gets the error shape with a generic key."""
    async with serve(actions=spaced(1)) as (fake, session):
        fake.faults.push(Fault.status(599))
        reply = await call(session)
    assert reply.status == 599
    assert reply.json()["code"] == 599
    assert reply.json()["key"] == "error"


@pytest.mark.asyncio
async def test_drop_fault_closes_the_connection_without_an_answer() -> None:
    """Two drops defeat aiohttp's single automatic retry: ServerDisconnectedError."""
    async with serve(actions=spaced(1)) as (fake, session):
        fake.faults.push(Fault.drop(), times=2)
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await call(session)
        assert [request.fault for request in fake.requests] == [Fault.drop(), Fault.drop()]
        assert (await call(session)).status == 200


@pytest.mark.asyncio
async def test_a_single_drop_is_retried_by_aiohttp_as_fault_drop_documents() -> None:
    """aiohttp resends an idempotent request once after a disconnect: one drop is invisible
    except in ``fake.requests`` (which is why the docs say ``times=2``)."""
    async with serve(actions=spaced(1)) as (fake, session):
        fake.faults.push(Fault.drop())
        assert (await call(session)).status == 200
        assert [request.fault for request in fake.requests] == [Fault.drop(), None]


@pytest.mark.asyncio
async def test_html_fault_answers_200_with_an_html_body() -> None:
    """``Fault.html()``: status 200, text/html, not JSON."""
    async with serve(actions=spaced(1)) as (fake, session):
        fake.faults.push(Fault.html())
        reply = await call(session)
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("text/html")
    with pytest.raises(json.JSONDecodeError):
        reply.json()


@pytest.mark.asyncio
@pytest.mark.parametrize("path", [LIST, f"{LIST}/a00"])
async def test_truncated_fault_sends_the_first_half_of_the_real_json(path: str) -> None:
    """Status 200 and JSON content type, but the body is the real body cut in half."""
    async with serve(actions=spaced(5)) as (fake, session):
        fake.faults.push(Fault.truncated())
        cut = await call(session, path)
        whole = await call(session, path)
    assert cut.status == 200
    assert cut.headers["Content-Type"].startswith("application/json")
    assert cut.body == whole.body[: len(whole.body) // 2]
    with pytest.raises(json.JSONDecodeError):
        cut.json()


@pytest.mark.asyncio
async def test_payload_fault_answers_exactly_the_given_json_as_of_push_time() -> None:
    """``Fault.payload(body)``: that JSON, encoded when the fault was made."""
    odd = {"object": "list", "async_actions": [{"id": 5, "status": "PAUSED"}], "has_more": "no"}
    fault = Fault.payload(odd)
    odd["object"] = "changed later"
    async with serve(actions=spaced(1)) as (fake, session):
        fake.faults.push(fault)
        fake.faults.push(Fault.payload({"weird": True}, status=404), endpoint="get")
        reply = await call(session)
        missing = await call(session, f"{LIST}/a00")
    assert reply.status == 200
    assert reply.json() == {**odd, "object": "list"}
    assert (missing.status, missing.json()) == (404, {"weird": True})


@pytest.mark.asyncio
async def test_delay_fault_trips_a_client_timeout_and_the_fake_still_stops_at_once() -> None:
    """A 60 s delay outlasts a 0.2 s client timeout; leaving the fake cuts the wait short
    (the bounds are far apart: a busy machine is slow, not wrong)."""
    fake = FakeVoucherify(actions=spaced(1))
    async with aiohttp.ClientSession() as session:
        async with fake:
            fake.faults.push(Fault.delay(60.0))
            with pytest.raises(TimeoutError):
                async with session.get(
                    f"{fake.base_url}{LIST}", headers=AUTH, timeout=aiohttp.ClientTimeout(0.2)
                ):
                    pass  # pragma: no cover - the answer comes too late
            started = time.monotonic()
        assert time.monotonic() - started < 20.0


@pytest.mark.asyncio
async def test_delay_fault_answers_normally_after_the_delay() -> None:
    """``Fault.delay(s)`` answers the real response, no sooner than ``s`` seconds."""
    async with serve(actions=spaced(2)) as (fake, session):
        fake.faults.push(Fault.delay(0.2))
        started = time.monotonic()
        reply = await call(session)
        assert time.monotonic() - started >= 0.2
    assert reply.ids() == ["a00", "a01"]


@pytest.mark.asyncio
async def test_stopping_answers_a_pending_delayed_request_at_once() -> None:
    """A request still waiting on ``Fault.delay`` when the fake stops gets its answer now."""
    async with aiohttp.ClientSession() as session:
        async with FakeVoucherify(actions=spaced(1)) as fake:
            fake.faults.push(Fault.delay(60.0))
            pending = asyncio.create_task(call(session, f"{fake.base_url}{LIST}"))
            for _ in range(3000):  # bounded: the request arrives within milliseconds
                if fake.requests:
                    break
                await asyncio.sleep(0.01)
            started = time.monotonic()
        assert time.monotonic() - started < 20.0
        assert (await pending).status == 200


@pytest.mark.asyncio
async def test_latency_delays_every_answer() -> None:
    """``latency`` is added before each response, errors included."""
    async with serve(actions=spaced(1), latency=0.15) as (_, session):
        for headers in (AUTH, {}):
            started = time.monotonic()
            await call(session, headers=headers)
            assert time.monotonic() - started >= 0.15


@pytest.mark.asyncio
async def test_a_fault_consumes_the_request_is_recorded_and_leaves_the_store_alone() -> None:
    """The faulted request is recorded with its fault; the store answers the next one."""
    async with serve(actions=spaced(3)) as (fake, session):
        fake.faults.push(Fault.status(500))
        await call(session, params={"limit": 2})
        reply = await call(session, params={"limit": 2})
        assert len(fake.actions) == 3
    assert reply.ids() == ["a00", "a01"]
    first, second = fake.requests
    assert first.fault == Fault.status(500)
    assert second.fault is None
    assert first.query == {"limit": "2"}


@pytest.mark.asyncio
async def test_random_faults_are_seeded_and_repeat_for_the_same_requests() -> None:
    """Same seed, same requests: the same statuses; ``rate`` 1 faults all, 0 none."""

    async def statuses(seed: int, rate: float) -> list[int]:
        async with serve(actions=spaced(1)) as (fake, session):
            fake.faults.random(rate=rate, kinds=[Fault.status(503), Fault.status(500)], seed=seed)
            return [(await call(session)).status for _ in range(30)]

    first = await statuses(1, 0.5)
    assert first == await statuses(1, 0.5)
    assert {200, 500, 503} == set(first)
    assert first != await statuses(2, 0.5)
    assert set(await statuses(1, 1.0)) == {500, 503}
    assert set(await statuses(1, 0.0)) == {200}


@pytest.mark.asyncio
async def test_random_faults_respect_endpoint_and_clear_stops_everything() -> None:
    """``endpoint="get"`` leaves list calls alone; ``clear()`` drops pushed and random faults."""
    async with serve(actions=spaced(1)) as (fake, session):
        fake.faults.random(rate=1.0, kinds=[Fault.status(503)], endpoint="get")
        assert (await call(session)).status == 200
        assert (await call(session, f"{LIST}/a00")).status == 503
        fake.faults.push(Fault.status(500), times=3)
        fake.faults.clear()
        assert len(fake.faults) == 0
        assert (await call(session, f"{LIST}/a00")).status == 200


def test_fault_queue_serves_pushed_faults_in_order_per_endpoint() -> None:
    """Earlier pushes first; an endpoint-bound fault waits for its endpoint; ``times``
    counts down; ``len`` is what is left."""
    queue = FaultQueue()
    a, b, c = Fault.status(500), Fault.status(503), Fault.drop()
    queue.push(a, times=2, endpoint="list")
    queue.push(b, endpoint="get")
    queue.push(c)
    assert len(queue) == 4
    assert [queue.take("get"), queue.take("get"), queue.take("get")] == [b, c, None]
    assert [queue.take("list"), queue.take("list"), queue.take("list")] == [a, a, None]
    assert len(queue) == 0


def test_fault_factories_validate_and_make_frozen_comparable_values() -> None:
    """Factories check their arguments; equal arguments make equal, immutable faults."""
    assert Fault.status(429).retry_after == 1
    assert Fault.status(503).retry_after is None
    assert Fault.status(503) == Fault.status(503) != Fault.status(502)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        Fault.drop().kind = "html"  # type: ignore[misc]
    bad_calls: list[Callable[[], Fault]] = [
        lambda: Fault.status(200),
        lambda: Fault.status(600),
        lambda: Fault.status(503, retry_after=-1),
        lambda: Fault.delay(-1.0),
        lambda: Fault.delay(float("inf")),
        lambda: Fault.html(status=100),
        lambda: Fault.payload({"x": float("nan")}),
    ]
    for bad in bad_calls:
        with pytest.raises(ValueError, match=r"."):
            bad()
    with pytest.raises(TypeError):
        Fault.payload({"when": datetime.now(UTC)})
    queue = FaultQueue()
    with pytest.raises(TypeError):
        queue.push("503")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        queue.random(rate=0.5, kinds=[503])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="times"):
        queue.push(Fault.drop(), times=0)
    with pytest.raises(ValueError, match="endpoint"):
        queue.push(Fault.drop(), endpoint="put")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rate"):
        queue.random(rate=1.5, kinds=[Fault.drop()])
    with pytest.raises(ValueError, match="kinds"):
        queue.random(rate=0.5, kinds=[])


# -- store, knobs, recording -------------------------------------------------------------


@pytest.mark.asyncio
async def test_add_actions_while_serving_puts_newer_actions_first() -> None:
    """An action added mid-paging shows on the next first page; older pages are unaffected."""
    async with serve(actions=spaced(5)) as (fake, session):
        assert (await call(session, params={"limit": 2})).ids() == ["a00", "a01"]
        fake.add_actions([action("fresh", datetime(2024, 6, 1, tzinfo=UTC))])
        assert (await call(session, params={"limit": 2})).ids() == ["fresh", "a00"]
        fake.set_actions(spaced(1))
        assert (await call(session)).ids() == ["a00"]
    assert [a["id"] for a in fake.actions] == ["a00"]


def test_store_refuses_duplicate_ids_bad_timestamps_and_non_mappings() -> None:
    """``set_actions`` / ``add_actions`` check ids and ``created_at`` and keep the old store."""
    fake = FakeVoucherify(actions=spaced(2))
    with pytest.raises(ValueError, match="duplicate"):
        fake.add_actions([action("a00", "2030-01-01T00:00:00.000Z")])
    with pytest.raises(ValueError, match="duplicate"):
        fake.set_actions([action("x", "2030-01-01"), action("x", "2030-01-02")])
    with pytest.raises(ValueError, match="created_at"):
        fake.set_actions([action("x", "last tuesday")])
    with pytest.raises(ValueError, match="created_at"):
        fake.set_actions([action("x", "2030-01-01T00:00:00.0001Z")])
    with pytest.raises(TypeError):
        fake.set_actions([{"id": 1, "created_at": "2030-01-01"}])
    with pytest.raises(TypeError):
        fake.set_actions(["aa_1"])  # type: ignore[list-item]
    assert [a["id"] for a in fake.actions] == ["a00", "a01"]


def test_knobs_refuse_values_out_of_range() -> None:
    """``order``, ``latency`` and ``default_limit`` are checked on construction and on set."""
    with pytest.raises(ValueError, match="order"):
        FakeVoucherify(order="oldest_first")  # type: ignore[arg-type]
    fake = FakeVoucherify()
    with pytest.raises(ValueError, match="latency"):
        fake.latency = -0.1
    with pytest.raises(ValueError, match="default_limit"):
        fake.default_limit = 0
    assert (fake.order, fake.latency, fake.default_limit, fake.seed) == ("newest_first", 0.0, 10, 0)


@pytest.mark.parametrize(
    ("knob", "bad", "error"),
    [
        ("order", "oldest_first", ValueError),
        ("latency", math.inf, ValueError),
        ("latency", math.nan, ValueError),
        ("default_limit", 2.5, TypeError),
        ("default_limit", True, TypeError),
        ("rate_limit", (0, 60.0), ValueError),
        ("rate_limit", (5, "60"), TypeError),
        ("action_duration", -1.0, ValueError),
        ("action_outcome", "SUCCESS", ValueError),
        ("app_id", 42, TypeError),
        ("app_token", b"token", TypeError),
        ("oauth_token", 1, TypeError),
        ("end_date_inclusive", "yes", TypeError),
        ("send_has_more", 1, TypeError),
        ("shuffle_ties", None, TypeError),
    ],
)
def test_every_knob_is_checked_when_set_and_keeps_its_value_when_refused(
    knob: str, bad: object, error: type[Exception]
) -> None:
    """The knobs are attrs fields validated on construction and on every assignment."""
    fake = FakeVoucherify(rate_limit=(3, 1.0), action_duration=2.0, oauth_token="t")
    before = getattr(fake, knob)
    with pytest.raises(error, match=knob.split("_")[0]):
        setattr(fake, knob, bad)
    assert getattr(fake, knob) == before
    with pytest.raises(error):
        FakeVoucherify(**{knob: bad})  # type: ignore[arg-type]


def test_clock_and_seed_are_read_only() -> None:
    fake = FakeVoucherify(seed=4)
    with pytest.raises(AttributeError):
        fake.clock = ManualClock()  # type: ignore[misc]
    with pytest.raises(AttributeError):
        fake.seed = 5  # type: ignore[misc]
    assert fake.seed == 4


def test_knobs_that_convert_store_the_converted_value() -> None:
    """``rate_limit`` seconds become a float (``(5, 60)`` reads back as ``(5, 60.0)``)."""
    fake = FakeVoucherify(rate_limit=(5, 60), action_duration=1)
    assert fake.rate_limit == (5, 60.0)
    assert isinstance(fake.rate_limit[1], float)
    assert isinstance(fake.action_duration, float)
    fake.rate_limit = (7, 2)
    assert fake.rate_limit == (7, 2.0)


@pytest.mark.asyncio
async def test_requests_are_recorded_with_method_path_query_and_lowercase_headers() -> None:
    """``fake.requests`` keeps each request as it arrived, unknown paths included."""
    async with serve(actions=spaced(1)) as (fake, session):
        await call(session, params={"limit": 5, "end_date": "2016-11-16"})
        await call(session, "/elsewhere", method="DELETE", headers={"X-Extra": "1"})
    listed, elsewhere = fake.requests
    assert isinstance(listed, RecordedRequest)
    assert (listed.method, listed.path) == ("GET", LIST)
    assert listed.query == {"limit": "5", "end_date": "2016-11-16"}
    assert listed.headers["x-app-id"] == FAKE_APP_ID
    assert listed.headers["x-app-token"] == FAKE_APP_TOKEN
    assert (elsewhere.method, elsewhere.path, elsewhere.headers["x-extra"]) == (
        "DELETE",
        "/elsewhere",
        "1",
    )


# -- serving ---------------------------------------------------------------------------------


def _sync_get(base_url: str, path: str, headers: Mapping[str, str]) -> tuple[int, Any]:
    parts = urlsplit(base_url)
    assert parts.hostname is not None
    assert parts.port is not None
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.request("GET", path, headers=dict(headers))
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def _fake_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "FakeVoucherify"]


def test_run_in_thread_serves_synchronous_code_and_stops_cleanly() -> None:
    """Inside ``run_in_thread()`` a blocking client works; after it the thread is gone and
    ``base_url`` raises."""
    fake = FakeVoucherify(actions=spaced(3))
    with fake.run_in_thread() as served:
        assert served is fake
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", fake.base_url)
        status, body = _sync_get(fake.base_url, f"{LIST}?limit=2", AUTH)
        assert (status, [a["id"] for a in body["async_actions"]]) == (200, ["a00", "a01"])
        assert len(_fake_threads()) == 1
    assert _fake_threads() == []
    with pytest.raises(RuntimeError, match="not serving"):
        _ = fake.base_url


def test_run_in_thread_stops_at_once_with_a_delayed_request_pending() -> None:
    """Leaving the block does not wait for a pending ``Fault.delay``."""
    fake = FakeVoucherify(actions=spaced(1))
    with fake.run_in_thread():
        fake.faults.push(Fault.delay(60.0))
        client = threading.Thread(target=_sync_get, args=(fake.base_url, LIST, AUTH))
        client.start()
        for _ in range(3000):  # bounded: the request arrives within milliseconds
            if fake.requests:
                break
            time.sleep(0.01)
        started = time.monotonic()
    assert time.monotonic() - started < 20.0
    client.join(30)
    assert not client.is_alive()


@pytest.mark.asyncio
async def test_run_in_thread_serves_a_client_on_another_running_loop() -> None:
    """The threaded fake answers an aiohttp client on the test's own loop."""
    fake = FakeVoucherify(actions=spaced(2))
    with fake.run_in_thread():
        async with aiohttp.ClientSession(fake.base_url) as session:
            assert (await call(session)).ids() == ["a00", "a01"]


@pytest.mark.asyncio
async def test_a_fake_serves_once_at_a_time_and_can_serve_again_after_stopping() -> None:
    """Starting a serving fake raises RuntimeError; after stop it can start afresh."""
    fake = FakeVoucherify(actions=spaced(1))
    async with fake:
        with pytest.raises(RuntimeError, match="already serving"):
            await fake.start()
        with pytest.raises(RuntimeError, match="already serving"), fake.run_in_thread():
            pass  # pragma: no cover - never entered
    await fake.stop()  # a second stop is a no-op
    async with fake, aiohttp.ClientSession(fake.base_url) as session:
        assert (await call(session)).status == 200


@pytest.fixture
def no_free_port(monkeypatch: pytest.MonkeyPatch) -> None:
    async def refuse(self: aiohttp.web.TCPSite) -> None:
        raise OSError("no port for you")

    monkeypatch.setattr(aiohttp.web.TCPSite, "start", refuse)


@pytest.mark.asyncio
@pytest.mark.usefixtures("no_free_port")
async def test_a_failure_to_bind_is_raised_by_start_and_leaves_nothing_running() -> None:
    """``start()`` raises the OSError; the fake is not serving and holds no runner."""
    fake = FakeVoucherify()
    with pytest.raises(OSError, match="no port"):
        await fake.start()
    with pytest.raises(RuntimeError, match="not serving"):
        _ = fake.base_url
    await fake.stop()


@pytest.mark.usefixtures("no_free_port")
def test_a_failure_to_bind_is_raised_by_run_in_thread_and_its_thread_ends() -> None:
    """``run_in_thread()`` raises the thread's OSError in the caller; no thread is left."""
    fake = FakeVoucherify()
    with pytest.raises(OSError, match="no port"), fake.run_in_thread():
        pass  # pragma: no cover - never entered
    assert _fake_threads() == []


# -- the pytest fixture ------------------------------------------------------------------------


def test_fixture_serves_250_generated_actions_to_sync_code(fake_voucherify: FakeVoucherify) -> None:
    """``fake_voucherify`` is already serving the default credentials and 250 actions."""
    assert len(fake_voucherify.actions) == 250
    assert fake_voucherify.actions == generate_actions(250, seed=0)
    status, body = _sync_get(fake_voucherify.base_url, f"{LIST}?limit=100", AUTH)
    assert status == 200
    assert body["has_more"] is True


@pytest.mark.asyncio
async def test_fixture_works_in_async_tests(fake_voucherify: FakeVoucherify) -> None:
    """The sync fixture serves an aiohttp client on the test's event loop; knobs apply."""
    fake_voucherify.faults.push(Fault.status(503))
    async with aiohttp.ClientSession(fake_voucherify.base_url) as session:
        assert (await call(session)).status == 503
        assert len((await call(session, params={"limit": 100})).ids()) == 100


# -- permissive auth and chosen addresses ------------------------------------------------


@pytest.mark.asyncio
async def test_a_permissive_fake_accepts_any_bearer_token_and_a_strict_one_does_not() -> None:
    """With app_id and app_token None and no oauth_token, any non-empty bearer passes."""
    permissive = FakeVoucherify(app_id=None, app_token=None, actions=generate_actions(3))
    strict = FakeVoucherify(actions=generate_actions(3))
    async with permissive, strict, aiohttp.ClientSession() as session:
        for fake, token, expected in [
            (permissive, "anything", 200),
            (permissive, " ", 401),
            (strict, "anything", 401),
        ]:
            headers = {"Authorization": f"Bearer {token}"}
            async with session.get(f"{fake.base_url}/v1/async-actions", headers=headers) as r:
                assert r.status == expected, (fake, token)


@pytest.mark.asyncio
async def test_start_serves_on_the_host_and_port_asked() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    fake = FakeVoucherify(actions=generate_actions(3))
    await fake.start(host="127.0.0.1", port=port)
    try:
        assert fake.base_url == f"http://127.0.0.1:{port}"
    finally:
        await fake.stop()
