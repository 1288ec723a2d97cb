"""The client against hostile and broken servers, over real HTTP on loopback.

Each test runs a small aiohttp server in the test (``Hostile``: one handler answers
every request, at the low level, so that no router touches the path) or the
project's fake, and pins one promise of ``docs/errors.md`` / ``docs/retries.md``:
bounded memory, bounded waits, the right error every time. No assertion is about
how fast the machine is: bounds are generous, and counts are asserted instead.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import ssl
import threading
import time
import tracemalloc
import zlib
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from email.utils import formatdate
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from voucherify_async import (
    BadRequestError,
    CertificateError,
    ClientClosedError,
    InvalidResponseError,
    RateLimitError,
    RequestTimeoutError,
    ResponseTooLargeError,
    RetryPolicy,
    ServerError,
    TransportError,
    VoucherifyAPIError,
    VoucherifyClient,
)
from voucherify_async.testing import (
    FAKE_APP_ID,
    FAKE_APP_TOKEN,
    FakeVoucherify,
    Fault,
    generate_actions,
)

MiB = 1 << 20
CERTIFICATE = Path(__file__).parent / "fixtures" / "self-signed-localhost.pem"
EMPTY_PAGE = b'{"object": "list", "async_actions": [], "has_more": false}'
NO_BACKOFF = {"backoff_initial": 0.0, "backoff_max": 0.0}
WAIT = 60  # seconds: a bound against hanging, not a claim about speed

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


class Hostile:
    """A loopback HTTP(S) server whose ``handler`` answers every request.

    ``requests`` records each request's raw target (path and query exactly as
    sent) and headers; ``arrived`` is set when a request arrives, ``done`` each
    time a handler returns.
    """

    def __init__(self, handler: Handler, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self._handler = handler
        self._ssl = ssl_context
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.arrived = asyncio.Event()
        self.done = asyncio.Event()
        self._runner: web.ServerRunner | None = None
        self.port = 0

    async def _serve(self, request: web.BaseRequest) -> web.StreamResponse:
        self.requests.append((request.raw_path, dict(request.headers)))
        self.arrived.set()
        try:
            return await self._handler(request)
        finally:
            self.done.set()

    @property
    def base_url(self) -> str:
        return f"{'https' if self._ssl else 'http'}://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Hostile:
        self._runner = web.ServerRunner(web.Server(self._serve), handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self._ssl)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


def client_for(base_url: str, **kwargs: Any) -> VoucherifyClient:
    kwargs.setdefault("retry", RetryPolicy.instant(max_retries=3))
    return VoucherifyClient(FAKE_APP_ID, FAKE_APP_TOKEN, base_url=base_url, **kwargs)


def answer(
    status: int = 200, body: bytes = EMPTY_PAGE, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status, body=body, headers={"Content-Type": "application/json", **(headers or {})}
    )


def answers(*replies: Callable[[], web.StreamResponse]) -> Handler:
    """A handler that gives ``replies`` in turn, then the last one again and again."""
    queue = list(replies)

    async def handler(_: web.BaseRequest) -> web.StreamResponse:
        return (queue.pop(0) if len(queue) > 1 else queue[0])()

    return handler


# --- memory is bounded by the client -------------------------------------------------

LIMIT = 1 * MiB
SLACK = 24 * MiB  # the constant: aiohttp's buffers, a chunk in flight, the test's own data
ZEROS = bytes(MiB)


def gzip_of_zeros(size: int) -> bytes:
    """``size`` zero bytes, gzipped (about 1,000 to 1): a decompression bomb."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [compressor.compress(ZEROS) for _ in range(size // MiB)]
    return b"".join([*parts, compressor.flush()])


BOMB = gzip_of_zeros(200 * MiB)


class Streamer:
    """Handlers that send a large body, counting what the client let through."""

    def __init__(self) -> None:
        self.sent = 0

    async def _pour(self, request: web.BaseRequest, response: web.StreamResponse, n: int) -> None:
        await response.prepare(request)
        try:
            for _ in range(n):
                await response.write(ZEROS)
                self.sent += len(ZEROS)
        except (ConnectionError, RuntimeError):
            return  # the client hung up: what it should do

    async def large(self, request: web.BaseRequest) -> web.StreamResponse:
        """200 MiB with a Content-Length."""
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.content_length = 200 * MiB
        await self._pour(request, response, 200)
        return response

    async def endless(self, request: web.BaseRequest) -> web.StreamResponse:
        """A chunked body that goes on and on (it stops at 64 MiB, so that the test
        cannot take the machine down where the client is wrong)."""
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await self._pour(request, response, 64)
        return response

    async def bomb(self, request: web.BaseRequest) -> web.StreamResponse:
        """200 KiB on the wire, 200 MiB once gunzipped."""
        response = web.Response(
            body=BOMB, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}
        )
        self.sent = len(BOMB)
        return response


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["large", "endless", "bomb"])
async def test_a_body_past_max_response_size_stops_reading_within_the_limit_plus_a_constant(
    kind: str,
) -> None:
    """Peak memory (tracemalloc) stays within the limit plus a constant, whatever the
    encoding; the error says so; the connection is closed (the server could not send
    the whole body); it is not retried."""
    streamer = Streamer()
    async with Hostile(getattr(streamer, kind)) as server:
        client = client_for(server.base_url, max_response_size=LIMIT)
        async with client:
            tracemalloc.start()
            try:
                tracemalloc.reset_peak()
                with pytest.raises(ResponseTooLargeError) as raised:
                    await client.list_async_actions()
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            async with asyncio.timeout(WAIT):
                await server.done.wait()
    assert peak < LIMIT + SLACK, f"peak {peak / MiB:.1f} MiB"
    assert isinstance(raised.value, InvalidResponseError)
    assert "max_response_size" in str(raised.value)
    assert raised.value.status == 200
    assert len(server.requests) == 1, "not retried"
    if kind != "bomb":
        assert streamer.sent < 64 * MiB, "the connection was closed, not drained"


@pytest.mark.asyncio
async def test_a_body_within_max_response_size_is_read_whole_even_when_compressed() -> None:
    body = b'{"async_actions": [], "has_more": false, "pad": "' + b" " * 5000 + b'"}'
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    gzipped = compressor.compress(body) + compressor.flush()
    headers = {"Content-Encoding": "gzip"}
    async with Hostile(answers(lambda: answer(body=gzipped, headers=headers))) as server:
        async with client_for(server.base_url, max_response_size=len(body)) as client:
            page = await client.list_async_actions()
        async with client_for(server.base_url, max_response_size=len(body) - 1) as client:
            with pytest.raises(ResponseTooLargeError):
                await client.list_async_actions()
    assert page.async_actions == ()


@pytest.mark.parametrize("size", [0, -1, True, 1.5, "1"])
def test_max_response_size_must_be_a_positive_int(size: object) -> None:
    with pytest.raises((TypeError, ValueError), match="max_response_size"):
        client_for("http://127.0.0.1:9", max_response_size=size)


def test_max_response_size_defaults_to_32_mib() -> None:
    assert client_for("http://127.0.0.1:9").max_response_size == 32 * MiB


# --- a whole call has a bound ---------------------------------------------------------


@pytest.mark.asyncio
async def test_max_time_bounds_a_call_that_would_retry_for_long_and_raises_the_last_error() -> None:
    """1,000 retries allowed, 50 ms backoff at most: the call gives up when max_time
    (2 s) is used up, with the last answer's error, long before the retries are."""
    body = b'{"code": 503, "key": "down", "message": "try later"}'
    async with Hostile(answers(lambda: answer(503, body))) as server:
        policy = RetryPolicy(max_retries=1000, backoff_initial=0.05, backoff_max=0.05, max_time=2)
        async with client_for(server.base_url, retry=policy) as client:
            with pytest.raises(ServerError, match="try later"):
                await client.list_async_actions()
    assert len(server.requests) < 1000


@pytest.mark.asyncio
async def test_an_attempt_gets_no_more_than_the_time_left_of_max_time() -> None:
    release = asyncio.Event()

    async def stall(_: web.BaseRequest) -> web.StreamResponse:
        await release.wait()
        return answer()

    async with Hostile(stall) as server:
        policy = RetryPolicy(max_time=0.5)
        async with client_for(server.base_url, retry=policy, timeout=WAIT) as client:
            async with asyncio.timeout(WAIT / 2):
                with pytest.raises(RequestTimeoutError, match="max_time") as raised:
                    await client.list_async_actions()
        release.set()
    assert "0.5 s" in str(raised.value)
    assert len(server.requests) == 1


@pytest.mark.asyncio
async def test_a_wait_that_would_end_past_max_time_is_not_started() -> None:
    """The server asks for 5 s (within max_wait); 2 s are left: the error comes at once."""
    reply = answer(503, b'{"message": "busy"}', {"Retry-After": "5"})
    async with Hostile(answers(lambda: reply)) as server:
        policy = RetryPolicy(max_wait=60, max_time=2)
        async with client_for(server.base_url, retry=policy) as client:
            with pytest.raises(ServerError, match="busy"):
                await client.list_async_actions()
    assert len(server.requests) == 1


@pytest.mark.parametrize("value", [0, -1, float("inf"), True])
def test_max_time_must_be_a_finite_positive_number_or_none(value: object) -> None:
    with pytest.raises((TypeError, ValueError), match="max_time"):
        RetryPolicy(max_time=value)  # type: ignore[arg-type]


def test_max_time_defaults_to_120_seconds_and_none_means_no_cap() -> None:
    assert RetryPolicy().max_time == 120
    assert RetryPolicy(max_time=None).decide(0, status=503, time_left=None) is not None


# --- Retry-After on every retryable status --------------------------------------------


def _retry_waits(caplog: pytest.LogCaptureFixture) -> list[float]:
    return [r.wait for r in caplog.records if hasattr(r, "wait")]  # type: ignore[attr-defined]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "retry_after",
    ["1", "HTTP-DATE"],
)
async def test_retry_after_on_a_503_is_the_wait(
    retry_after: str, caplog: pytest.LogCaptureFixture
) -> None:
    if retry_after == "HTTP-DATE":
        retry_after = formatdate(time.time() + 3, usegmt=True)
    caplog.set_level(logging.WARNING, logger="voucherify_async")
    busy = answer(503, b'{"message": "busy"}', {"Retry-After": retry_after})
    async with Hostile(answers(lambda: busy, answer)) as server:
        policy = RetryPolicy(max_wait=10, **NO_BACKOFF)
        async with client_for(server.base_url, retry=policy) as client:
            await client.list_async_actions()
    (wait,) = _retry_waits(caplog)
    assert 0 < wait <= 4
    assert len(server.requests) == 2


@pytest.mark.asyncio
@pytest.mark.parametrize("status", [408, 500, 502, 503, 504])
@pytest.mark.parametrize("form", ["seconds", "date"])
async def test_a_retry_after_beyond_max_wait_raises_at_once_on_every_retryable_status(
    status: int, form: str
) -> None:
    value = "120" if form == "seconds" else formatdate(time.time() + 120, usegmt=True)
    reply = answer(status, b'{"message": "later"}', {"Retry-After": value})
    async with Hostile(answers(lambda: reply, answer)) as server:
        policy = RetryPolicy(max_retries=3, max_wait=60)
        async with client_for(server.base_url, retry=policy) as client:
            with pytest.raises(VoucherifyAPIError) as raised:
                await client.list_async_actions()
    assert raised.value.status == status
    assert len(server.requests) == 1


# --- a rate-limit block is never longer than max_wait, and it clears -------------------


@pytest.mark.asyncio
async def test_an_absurd_retry_after_blocks_no_longer_than_max_wait() -> None:
    """``Retry-After: 9999999999`` on a 429: that call raises at once; later calls
    within max_wait are refused without sending; after max_wait the client sends."""
    limited = answer(429, b'{"message": "slow down"}', {"Retry-After": "9999999999"})
    async with (
        Hostile(answers(lambda: limited, answer)) as server,
        client_for(server.base_url, retry=RetryPolicy(max_wait=1.0)) as client,
    ):
        with pytest.raises(RateLimitError):
            await client.list_async_actions()
        with pytest.raises(RateLimitError, match="nothing was sent"):
            await client.list_async_actions()
        await asyncio.sleep(1.5)
        page = await client.list_async_actions()
    assert page.async_actions == ()
    assert len(server.requests) == 2


def _reset_in_ms() -> web.Response:
    return answer(
        headers={
            "X-Rate-Limit-Remaining": "0",
            "X-Rate-Limit-Retry": str(int((time.time() + 2) * 1000)),
        }
    )


def _reset_as_delay() -> web.Response:
    return answer(headers={"X-Rate-Limit-Remaining": "0", "X-Rate-Limit-Retry": "2"})


def _reset_far_away() -> web.Response:
    return answer(
        headers={"X-Rate-Limit-Remaining": "0", "X-Rate-Limit-Retry": str(int(time.time() + 1e9))}
    )


@pytest.mark.asyncio
@pytest.mark.parametrize("reply", [_reset_in_ms, _reset_as_delay], ids=["epoch-ms", "delay"])
async def test_a_reset_is_read_liberally_and_waited(
    reply: Callable[[], web.Response], caplog: pytest.LogCaptureFixture
) -> None:
    """``X-Rate-Limit-Retry`` in epoch milliseconds or in seconds from now: the next
    request waits (about 2 s, never more), and goes."""
    caplog.set_level(logging.DEBUG, logger="voucherify_async")
    async with (
        Hostile(answers(reply, answer)) as server,
        client_for(server.base_url, retry=RetryPolicy(max_wait=60)) as client,
    ):
        await client.list_async_actions()
        await client.list_async_actions()
    waits = [
        float(record.args[0])  # type: ignore[index]
        for record in caplog.records
        if "for the rate limit" in record.getMessage()
    ]
    assert len(waits) == 1
    assert 0 < waits[0] <= 2
    assert len(server.requests) == 2


@pytest.mark.asyncio
async def test_a_reset_in_a_thousand_years_is_forgotten_after_max_wait() -> None:
    async with (
        Hostile(answers(_reset_far_away, answer)) as server,
        client_for(server.base_url, retry=RetryPolicy(max_wait=1.0)) as client,
    ):
        await client.list_async_actions()
        with pytest.raises(RateLimitError, match="nothing was sent"):
            await client.list_async_actions()
        await asyncio.sleep(1.5)
        await client.list_async_actions()
    assert len(server.requests) == 2


# --- error text is bounded --------------------------------------------------------------

HUGE = 1_000_000


@pytest.mark.asyncio
async def test_a_huge_error_message_is_cut_in_the_error_and_the_body_kept_whole() -> None:
    body = (
        b'{"code": 400, "key": "bad", "message": "'
        + b"m" * HUGE
        + b'", "details": "'
        + b"d" * HUGE
        + b'"}'
    )
    async with (
        Hostile(answers(lambda: answer(400, body))) as server,
        client_for(server.base_url) as client,
    ):
        with pytest.raises(BadRequestError) as raised:
            await client.list_async_actions()
    assert len(str(raised.value)) < 2000
    assert len(repr(raised.value)) < 2100
    assert raised.value.body == body
    assert "more characters" in str(raised.value)


@pytest.mark.asyncio
async def test_retry_log_records_are_short_whatever_the_body(
    caplog: pytest.LogCaptureFixture,
) -> None:
    body = b'{"code": 503, "message": "' + b"m" * HUGE + b'", "details": "' + b"d" * HUGE + b'"}'
    caplog.set_level(logging.DEBUG, logger="voucherify_async")
    async with (
        Hostile(answers(lambda: answer(503, body), lambda: answer(503, body), answer)) as s,
        client_for(s.base_url) as client,
    ):
        await client.list_async_actions()
    records = [r.getMessage() for r in caplog.records if r.name == "voucherify_async"]
    assert len(records) == 2
    assert all(len(message) < 300 for message in records), records


@pytest.mark.asyncio
async def test_a_retry_log_record_does_not_repeat_the_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The fake's 503 says "Service Unavailable" in its message and again in its
    details: the log record says it once."""
    fake = FakeVoucherify()
    fake.faults.push(Fault.status(503))
    caplog.set_level(logging.WARNING, logger="voucherify_async")
    async with fake, client_for(fake.base_url) as client:
        await client.list_async_actions()
    (record,) = [r.getMessage() for r in caplog.records if r.name == "voucherify_async"]
    assert record.count("Service Unavailable") == 1, record
    assert "HTTP 503" in record


@pytest.mark.asyncio
async def test_a_json_error_body_in_another_shape_is_quoted_in_the_message() -> None:
    body = b'{"error": {"reason": "upstream timed out", "proxy": "edge-7"}}'
    async with (
        Hostile(answers(lambda: answer(502, body))) as server,
        client_for(server.base_url, max_retries=0) as client,
    ):
        with pytest.raises(ServerError) as raised:
            await client.list_async_actions()
    assert "upstream timed out" in str(raised.value)
    assert "no message" not in str(raised.value)
    assert raised.value.body == body


# --- base_url is sent as given ------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("segment", ["a%3Fb", "c%20d", "e%2Ff", "g%0D%0Ah", "%23frag", "x;y=1"])
async def test_the_base_url_path_reaches_the_server_exactly_as_written(segment: str) -> None:
    async with Hostile(answers(answer)) as server:
        base_url = f"{server.base_url}/{segment}/proxy"
        async with client_for(base_url) as client:
            await client.list_async_actions(limit=5)
    ((target, _),) = server.requests
    assert target == f"/{segment}/proxy/v1/async-actions?limit=5"


@pytest.mark.parametrize(
    "suffix", ["/a b", "/a\r\nb", "/a?b", "/a#b", "/a%zz", "/a%0", "/é", "/a\x00"]
)
def test_a_base_url_path_that_cannot_be_sent_as_written_is_refused(suffix: str) -> None:
    with pytest.raises(ValueError, match="base_url"):
        client_for(f"http://127.0.0.1:8080{suffix}")


# --- dates near the edges -----------------------------------------------------------------

EDGES: list[object] = [
    "0001-01-01T00:00:00+05:00",
    "9999-12-31T23:00:00-05:00",
    datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))),
    datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5))),
    datetime.max.replace(tzinfo=UTC),
]


async def _list(client: VoucherifyClient, value: object) -> None:
    await client.list_async_actions(end_date=value)


async def _called(make: Callable[[], object]) -> None:
    make()  # iter_ and scan_ check their arguments when called, before any await


CALLS: dict[str, Callable[[VoucherifyClient, object], Awaitable[None]]] = {
    "list end_date": _list,
    "iter end_date": lambda c, v: _called(lambda: c.iter_async_actions(end_date=v)),
    "iter since": lambda c, v: _called(lambda: c.iter_async_actions(since=v)),
    "scan since": lambda c, v: _called(lambda: c.scan_async_actions(since=v)),
    "scan end_date": lambda c, v: _called(
        lambda: c.scan_async_actions(since="2020-01-01", end_date=v)
    ),
}


@pytest.mark.asyncio
@pytest.mark.parametrize("value", EDGES, ids=repr)
@pytest.mark.parametrize("call", list(CALLS))
async def test_dates_past_the_edges_raise_value_error_never_overflow(
    call: str, value: object
) -> None:
    async with Hostile(answers(answer)) as server, client_for(server.base_url) as client:
        with pytest.raises(ValueError, match=r"outside") as raised:
            await CALLS[call](client, value)
    assert not isinstance(raised.value, OverflowError)
    assert server.requests == []


@pytest.mark.asyncio
async def test_the_widest_range_still_streams() -> None:
    fake = FakeVoucherify(actions=generate_actions(30, seed=5))
    async with fake, client_for(fake.base_url) as client:
        stream = client.iter_async_actions(
            since="0001-01-01T00:00:00Z", end_date="9999-12-31T23:59:59.999Z", page_size=7
        )
        ids = [action.id async for action in stream]
        scan = client.scan_async_actions(
            since="0001-01-01T00:00:00Z", end_date="9999-12-31T23:59:59.999Z", partitions=4
        )
        scanned = {action.id async for action in scan}
    assert len(ids) == 30
    assert scanned == set(ids)


@pytest.mark.asyncio
async def test_a_scan_of_the_last_milliseconds_splits_without_overflow() -> None:
    """Fewer milliseconds than partitions, at the very end of the range: the windows
    are not pushed past year 9999."""
    fake = FakeVoucherify(actions=generate_actions(5, seed=5))
    async with fake, client_for(fake.base_url) as client:
        scan = client.scan_async_actions(
            since="9999-12-31T23:59:59.997Z", end_date="9999-12-31T23:59:59.999Z", partitions=8
        )
        assert [action async for action in scan] == []


# --- one event loop ---------------------------------------------------------------------

ONE_LOOP = r"belongs to the event loop of its first request .*one client per event loop"


def test_a_client_used_after_its_loop_closed_raises_at_once_without_leaking() -> None:
    """Never closed by the caller: its session is closed when ``asyncio.run`` shuts
    the loop down, so nothing leaks (warnings are errors here), and a second loop
    gets a RuntimeError that says what is wrong."""
    with FakeVoucherify(actions=generate_actions(5)).run_in_thread() as fake:
        client = client_for(fake.base_url)

        async def one() -> int:
            return len(await client.list_async_actions(limit=2))

        assert asyncio.run(one()) == 2
        with pytest.raises(RuntimeError, match=ONE_LOOP):
            asyncio.run(one())
        assert len(fake.requests) == 1
        asyncio.run(client.close())
        gc.collect()


def test_a_client_used_from_another_thread_at_the_same_time_raises_at_once() -> None:
    with FakeVoucherify(actions=generate_actions(5)).run_in_thread() as fake:
        client = client_for(fake.base_url)
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever)
        thread.start()
        try:
            first = asyncio.run_coroutine_threadsafe(client.list_async_actions(limit=1), loop)
            assert len(first.result(WAIT)) == 1

            async def elsewhere() -> None:
                with pytest.raises(RuntimeError, match=ONE_LOOP + r"|still running"):
                    await client.list_async_actions(limit=1)
                with pytest.raises(RuntimeError, match="still running"):
                    await client.close()

            asyncio.run(elsewhere())
            asyncio.run_coroutine_threadsafe(client.close(), loop).result(WAIT)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(WAIT)
            loop.close()
        assert len(fake.requests) == 1


# --- a certificate failure is not retried -----------------------------------------------


@pytest.mark.asyncio
async def test_a_refused_certificate_raises_certificate_error_at_once() -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(CERTIFICATE)
    connections: list[object] = []

    async def on_connect(*_: object) -> None:
        connections.append(_)

    trace = aiohttp.TraceConfig()
    trace.on_connection_create_start.append(on_connect)
    async with Hostile(answers(answer), ssl_context=context) as server:
        client = client_for(
            server.base_url, retry=RetryPolicy.instant(max_retries=3), trace_configs=[trace]
        )
        async with client:
            with pytest.raises(CertificateError) as raised:
                await client.list_async_actions()
    assert isinstance(raised.value, TransportError)
    assert isinstance(raised.value.__cause__, aiohttp.ClientConnectorCertificateError)
    assert isinstance(raised.value.__cause__.certificate_error, ssl.SSLCertVerificationError)
    assert "certificate" in str(raised.value)
    assert len(connections) == 1, "not retried"


# --- credentials are sent verbatim ------------------------------------------------------


@pytest.mark.asyncio
async def test_printable_latin_1_credentials_arrive_verbatim() -> None:
    app_id, app_token = "clé-ÿ¡§", "tok·Ø~»"
    async with (
        Hostile(answers(answer)) as server,
        VoucherifyClient(app_id, app_token, base_url=server.base_url) as client,
    ):
        await client.list_async_actions()
    ((_, headers),) = server.requests
    assert (headers["X-App-Id"], headers["X-App-Token"]) == (app_id, app_token)


# --- a closed client ---------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_request_after_close_raises_client_closed_error_and_sends_nothing() -> None:
    async with Hostile(answers(answer)) as server:
        client = client_for(server.base_url)
        await client.list_async_actions()
        await client.close()
        with pytest.raises(ClientClosedError):
            await client.list_async_actions()
        with pytest.raises(ClientClosedError):
            [action async for action in client.iter_async_actions()]
    assert len(server.requests) == 1


@pytest.mark.asyncio
async def test_a_request_in_flight_when_close_runs_ends_in_client_closed_error() -> None:
    release = asyncio.Event()

    async def stall(_: web.BaseRequest) -> web.StreamResponse:
        await release.wait()
        return answer()

    async with Hostile(stall) as server:
        client = client_for(server.base_url, max_retries=0)
        call = asyncio.create_task(client.list_async_actions())
        async with asyncio.timeout(WAIT):
            await server.arrived.wait()
        await client.close()
        async with asyncio.timeout(WAIT):
            with pytest.raises(ClientClosedError) as raised:
                await call
        release.set()
    assert isinstance(raised.value, RuntimeError)


@pytest.mark.asyncio
async def test_a_call_waiting_to_retry_when_close_runs_ends_at_once() -> None:
    busy = answer(429, b'{"message": "busy"}', {"Retry-After": "50"})
    async with Hostile(answers(lambda: busy)) as server:
        client = client_for(server.base_url, retry=RetryPolicy(max_wait=60))
        call = asyncio.create_task(client.list_async_actions())
        async with asyncio.timeout(WAIT):
            await server.arrived.wait()
        await asyncio.sleep(0.1)  # the answer arrives; the call starts its wait
        await client.close()
        async with asyncio.timeout(20):  # far less than the 50 s the server asked for
            with pytest.raises(ClientClosedError):
                await call
    assert len(server.requests) == 1


@pytest.fixture(autouse=True)
def _no_stray_tracemalloc() -> Iterator[None]:
    yield
    assert not tracemalloc.is_tracing()
