"""FakeVoucherify(rate_limit=...): the fixed window, its headers, and the 429 beyond it.

The window's state machine is checked with plain sync asserts; the HTTP behaviour
over real loopback with a plain ``aiohttp.ClientSession`` and a ``ManualClock``,
so no assertion depends on how long anything takes.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import time
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple
from urllib.parse import urlsplit

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
from voucherify_async.testing._rate_limit import FixedWindow, checked_rate_limit, epoch_text

AUTH = {"X-App-Id": FAKE_APP_ID, "X-App-Token": FAKE_APP_TOKEN}
LIST = "/v1/async-actions"
START = "/v1/customers/metadata/async"
#: 2026-01-02T00:00:00Z, where a fresh ManualClock starts.
T0 = int(datetime(2026, 1, 2, tzinfo=UTC).timestamp())
RATE_HEADERS = ("X-Rate-Limit-Limit", "X-Rate-Limit-Remaining", "X-Rate-Limit-Retry")


class Reply(NamedTuple):
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def remaining(self) -> int:
        return int(self.headers["X-Rate-Limit-Remaining"])

    @property
    def retry(self) -> int:
        """``X-Rate-Limit-Retry``, which must be whole epoch seconds (int() refuses "1.5")."""
        return int(self.headers["X-Rate-Limit-Retry"])


async def call(
    session: aiohttp.ClientSession,
    path: str = LIST,
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    json_body: Any = None,
) -> Reply:
    async with session.request(
        method, path, headers=AUTH if headers is None else headers, json=json_body
    ) as response:
        return Reply(response.status, response.headers, await response.read())


@contextlib.asynccontextmanager
async def serve(
    **knobs: Any,
) -> AsyncIterator[tuple[FakeVoucherify, aiohttp.ClientSession, ManualClock]]:
    clock = ManualClock()
    fake = FakeVoucherify(actions=generate_actions(20, seed=5), clock=clock, **knobs)
    async with fake, aiohttp.ClientSession(fake.base_url) as session:
        yield fake, session, clock


# -- the window, without HTTP ------------------------------------------------------------


def test_fixed_window_counts_down_refuses_beyond_and_reopens_after_per_seconds() -> None:
    """Three per 10 s: the window opens at the first request; the fourth is refused and not
    counted; at +10 s a new window opens with the next request."""
    window = FixedWindow(3, 10.0)
    states = [window.take(now) for now in (100.0, 101.0, 105.0, 109.9)]
    assert [(s.allowed, s.remaining, s.resets_at) for s in states] == [
        (True, 2, 110.0),
        (True, 1, 110.0),
        (True, 0, 110.0),
        (False, 0, 110.0),
    ]
    reopened = window.take(110.0)
    assert (reopened.allowed, reopened.remaining, reopened.resets_at) == (True, 2, 120.0)
    later = window.take(500.0)  # a long pause: the window opens at the request, not aligned
    assert (later.remaining, later.resets_at) == (2, 510.0)


def test_fixed_window_peek_counts_nothing() -> None:
    """``peek`` shows the open window's state, or an empty window opening now."""
    window = FixedWindow(2, 60.0)
    empty = window.peek(5.0)
    assert (empty.allowed, empty.remaining, empty.resets_at) == (True, 2, 65.0)
    window.take(10.0)
    window.take(11.0)
    full = window.peek(12.0)
    assert (full.allowed, full.remaining, full.resets_at) == (True, 0, 70.0)
    assert window.take(13.0).allowed is False


@pytest.mark.parametrize(
    ("left", "retry_after"),
    [(60.0, "60"), (59.2, "60"), (0.3, "1"), (0.000_000_1, "1"), (1.000_000_000_1, "1")],
)
def test_refusal_headers_round_retry_after_up_to_whole_seconds(
    left: float, retry_after: str
) -> None:
    """``Retry-After`` is the time left in whole seconds, rounded up, never 0."""
    window = FixedWindow(1, 60.0)
    window.take(0.0)
    refused = window.take(60.0 - left)
    headers = refused.headers(monotonic_now=60.0 - left, epoch_now=1_000.0)
    assert headers["Retry-After"] == retry_after
    assert headers["X-Rate-Limit-Remaining"] == "0"
    assert headers["X-Rate-Limit-Type"] == "requests_per_minute"


@pytest.mark.parametrize(
    ("per_seconds", "name"),
    [
        (1.0, "requests_per_second"),
        (60.0, "requests_per_minute"),
        (3600.0, "requests_per_hour"),
        (86400.0, "requests_per_day"),
        (2.5, "requests_per_2.5_seconds"),
    ],
)
def test_rate_limit_type_names_the_window(per_seconds: float, name: str) -> None:
    """The vendor documents no values of ``X-Rate-Limit-Type``; the fake names the window."""
    assert FixedWindow(1, per_seconds).peek(0.0).type_name == name


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (1767225660.0, "1767225660"),
        (1767225600.0 + 60.0, "1767225660"),
        (1767225660.25, "1767225661"),
        (1767225660.1, "1767225661"),
        (1767225660.0001, "1767225661"),  # rounded up: never earlier than the reset
        (1767225660.9999, "1767225661"),
        (1767225660 + 2**-22, "1767225660"),  # float noise (0.24 us), not a later second
    ],
)
def test_epoch_text_is_whole_epoch_seconds_rounded_up(seconds: float, text: str) -> None:
    """The vendor documents ``X-Rate-Limit-Retry`` as epoch seconds: an integer, never
    earlier than the reset."""
    assert epoch_text(seconds) == text
    assert text.isdigit()


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ((0, 60.0), ValueError),
        ((5, 0.0), ValueError),
        ((5, -1.0), ValueError),
        ((5, math.inf), ValueError),
        ((5, math.nan), ValueError),
        ((5.0, 60.0), TypeError),
        ((True, 60.0), TypeError),
        ((5, "60"), TypeError),
        ([5, 60.0], TypeError),
        ((5,), TypeError),
        (100, TypeError),
    ],
)
def test_rate_limit_values_are_checked(value: object, error: type[Exception]) -> None:
    """``(int >= 1, finite seconds > 0)`` or ``None``; anything else raises, at
    construction and on set, and leaves the knob as it was."""
    with pytest.raises(error):
        checked_rate_limit(value)
    with pytest.raises(error):
        FakeVoucherify(rate_limit=value)  # type: ignore[arg-type]
    fake = FakeVoucherify(rate_limit=(5, 60))
    with pytest.raises(error):
        fake.rate_limit = value  # type: ignore[assignment]
    assert fake.rate_limit == (5, 60.0)
    assert checked_rate_limit(None) is None


# -- over HTTP -------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_without_rate_limit_the_headers_are_constant_and_nothing_is_refused() -> None:
    """The default: harmless constant Limit/Remaining, no Retry header, never a 429."""
    async with serve() as (fake, session, _):
        replies = [await call(session) for _ in range(30)]
    assert fake.rate_limit is None
    assert {(r.status, r.headers["X-Rate-Limit-Limit"], r.remaining) for r in replies} == {
        (200, "2000", 1999)
    }
    assert all("X-Rate-Limit-Retry" not in r.headers for r in replies)


@pytest.mark.asyncio
async def test_remaining_counts_down_and_retry_is_the_end_of_the_window() -> None:
    """Five per minute: Remaining 4, 3, 2, 1, 0 after each request, Limit 5, and Retry the
    epoch second at which the window (opened by the first request) closes."""
    async with serve(rate_limit=(5, 60.0)) as (_, session, clock):
        replies = []
        for _ in range(5):
            replies.append(await call(session))
            clock.advance(1.5)
    assert [r.status for r in replies] == [200] * 5
    assert [r.remaining for r in replies] == [4, 3, 2, 1, 0]
    assert {r.headers["X-Rate-Limit-Limit"] for r in replies} == {"5"}
    assert {r.headers["X-Rate-Limit-Retry"] for r in replies} == {str(T0 + 60)}


@pytest.mark.asyncio
async def test_beyond_the_limit_is_429_with_every_header_in_the_vendor_error_shape() -> None:
    """The third request of two per minute, 20 s in: 429 ``too_many_requests``, Retry-After
    40, X-Rate-Limit-Type, Remaining 0, and Retry still the window's end."""
    async with serve(rate_limit=(2, 60.0)) as (fake, session, clock):
        await call(session)
        await call(session)
        clock.advance(20.0)
        refused = await call(session)
    assert refused.status == 429
    assert refused.headers["Retry-After"] == "40"
    assert refused.headers["X-Rate-Limit-Type"] == "requests_per_minute"
    assert refused.headers["X-Rate-Limit-Limit"] == "2"
    assert refused.remaining == 0
    assert refused.retry == T0 + 60
    assert refused.headers["Content-Type"].startswith("application/json")
    assert refused.json() == {
        "code": 429,
        "key": "too_many_requests",
        "message": "Too Many Requests",
        "details": "Rate limit of 2 requests per 60 seconds exceeded",
        "request_id": refused.headers["X-Request-Id"],
    }
    assert [r.rate_limited for r in fake.requests] == [False, False, True]


@pytest.mark.asyncio
async def test_the_window_resets_when_its_time_is_up() -> None:
    """Refused at 59.999 s; at 60 s a new window opens with the full allowance and a new Retry."""
    async with serve(rate_limit=(2, 60.0)) as (fake, session, clock):
        await call(session)
        await call(session)
        clock.advance(59.999)
        refused = await call(session)
        clock.advance(0.001)
        fresh = [await call(session), await call(session), await call(session)]
    assert refused.status == 429
    assert refused.headers["Retry-After"] == "1"
    assert [r.status for r in fresh] == [200, 200, 429]
    assert [r.remaining for r in fresh] == [1, 0, 0]
    assert {r.retry for r in fresh} == {T0 + 120}
    assert sum(r.rate_limited for r in fake.requests) == 2


@pytest.mark.asyncio
async def test_retry_rounds_up_to_a_whole_second_when_the_window_ends_between_seconds() -> None:
    """Three per quarter second: Retry ``<T0 + 1>`` (an integer, as the vendor documents it,
    rounded up), and Retry-After rounds up to 1."""
    async with serve(rate_limit=(3, 0.25)) as (_, session, _clock):
        replies = [await call(session) for _ in range(4)]
    assert {r.headers["X-Rate-Limit-Retry"] for r in replies} == {str(T0 + 1)}
    assert replies[-1].status == 429
    assert replies[-1].headers["Retry-After"] == "1"
    assert replies[-1].headers["X-Rate-Limit-Type"] == "requests_per_0.25_seconds"


@pytest.mark.asyncio
async def test_list_get_start_and_their_errors_all_count_against_one_window() -> None:
    """Every request with the endpoint's method counts, whatever its answer (200, 202, 400,
    401, 404 for an unknown id), and whatever its credentials: one project-wide window."""
    async with serve(rate_limit=(6, 60.0), app_id=None, app_token=None) as (fake, session, _):
        first = fake.actions[0]["id"]
        replies = [
            await call(session),
            await call(session, f"{LIST}/{first}"),
            await call(session, START, method="POST", json_body={"metadata": {}}),
            await call(session, f"{LIST}?limit=0"),
            await call(session, headers={}),
            await call(
                session, f"{LIST}/aa_missing", headers={"X-App-Id": "b", "X-App-Token": "c"}
            ),
            await call(session),
        ]
    assert [r.status for r in replies] == [200, 200, 202, 400, 401, 404, 429]
    assert [r.remaining for r in replies] == [5, 4, 3, 2, 1, 0, 0]


@pytest.mark.asyncio
async def test_unknown_paths_wrong_methods_and_faults_do_not_count_but_carry_the_headers() -> None:
    """404 paths, 405 methods and faulted requests leave the window alone and report it."""
    async with serve(rate_limit=(2, 60.0)) as (fake, session, _):
        await call(session)
        fake.faults.push(Fault.status(503))
        fake.faults.push(Fault.status(429, retry_after=7))
        others = [
            await call(session, "/v1/nowhere"),
            await call(session, method="DELETE"),
            await call(session, START),  # GET on a start path: 405
            await call(session),  # the 503 fault
            await call(session),  # the 429 fault
        ]
        last = await call(session)
        refused = await call(session)
    assert [r.status for r in others] == [404, 405, 405, 503, 429]
    assert [r.remaining for r in others[:4]] == [1, 1, 1, 1]
    for reply in others:
        assert all(name in reply.headers for name in RATE_HEADERS)
    injected = others[-1]  # a 429 fault keeps its own Retry-After
    assert (injected.headers["Retry-After"], injected.remaining) == ("7", 0)
    assert injected.retry == T0 + 7
    assert (last.status, last.remaining) == (200, 0)
    assert refused.status == 429
    assert [r.rate_limited for r in fake.requests] == [False] * 7 + [True]


@pytest.mark.asyncio
async def test_rate_limit_knob_changes_while_serving_each_set_starting_a_fresh_window() -> None:
    """None -> (1, 10) enforces at once; (3, 10) replaces it with a fresh window; None turns
    enforcement and the window's headers off again."""
    async with serve() as (fake, session, _):
        assert (await call(session)).remaining == 1999
        fake.rate_limit = (1, 10)
        assert [(await call(session)).status for _ in range(2)] == [200, 429]
        fake.rate_limit = (3, 10)
        assert [(await call(session)).remaining for _ in range(4)] == [2, 1, 0, 0]
        fake.rate_limit = None
        after = [await call(session) for _ in range(5)]
    assert {(r.status, r.remaining) for r in after} == {(200, 1999)}
    assert sum(r.rate_limited for r in fake.requests) == 2


@pytest.mark.asyncio
async def test_rate_limited_requests_take_no_action_and_are_not_started() -> None:
    """A refused POST starts nothing; a refused GET is recorded like any other request."""
    async with serve(rate_limit=(1, 60.0)) as (fake, session, _):
        accepted = await call(session, START, method="POST", json_body={"metadata": {}})
        refused = await call(session, START, method="POST", json_body={"metadata": {}})
    assert (accepted.status, refused.status) == (202, 429)
    started = [a for a in fake.actions if a["type"] == "CUSTOMERS.METADATA_UPDATE"]
    assert [a["id"] for a in started if a["request_id"] == accepted.headers["X-Request-Id"]] == [
        accepted.json()["async_action_id"]
    ]
    assert not any(a["request_id"] == refused.headers["X-Request-Id"] for a in fake.actions)
    assert [(r.method, r.rate_limited) for r in fake.requests] == [("POST", False), ("POST", True)]


@pytest.mark.asyncio
async def test_with_the_system_clock_retry_is_a_real_epoch_time() -> None:
    """Without an injected clock, Retry is whole epoch seconds, between now + the window and
    one second later (rounded up)."""
    before = time.time()
    async with (
        FakeVoucherify(rate_limit=(1, 30.0)) as fake,
        aiohttp.ClientSession(fake.base_url) as session,
    ):
        reply = await call(session)
        refused = await call(session)
    after = time.time()
    assert reply.headers["X-Rate-Limit-Retry"].isdigit()
    assert before + 30 <= reply.retry <= after + 30 + 1
    assert refused.retry == reply.retry
    assert 1 <= int(refused.headers["Retry-After"]) <= 30


def test_rate_limit_can_be_set_from_another_thread_while_serving_in_a_thread() -> None:
    """With ``run_in_thread()``, the knob set from the test's thread applies at once."""
    fake = FakeVoucherify(clock=ManualClock())
    with fake.run_in_thread():
        netloc = urlsplit(fake.base_url).netloc
        statuses = []
        for limit in (None, (1, 60.0)):
            fake.rate_limit = limit
            for _ in range(2):
                connection = http.client.HTTPConnection(netloc, timeout=5)
                try:
                    connection.request("GET", LIST, headers=AUTH)
                    statuses.append(connection.getresponse().status)
                finally:
                    connection.close()
    assert statuses == [200, 200, 200, 429]
