"""Odd and hostile requests get the vendor's JSON error, never a 500 nor aiohttp's text.

Over real HTTP on loopback, with raw sockets where an HTTP client would refuse to
send the request: each answer is checked whole (status, ``Content-Type``, the body
against the vendor's ``Error`` schema from ``tests/fixtures/``, and ``request_id``
equal to the ``X-Request-Id`` header).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import http.client
import json
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import attrs
import jsonschema
import pytest
import pytest_asyncio
from hypothesis import given, settings
from hypothesis import strategies as st

from voucherify_async.testing import FAKE_APP_ID, FAKE_APP_TOKEN, FakeVoucherify, generate_actions
from voucherify_async.testing._answers import Answerer

SCHEMAS = json.loads((Path(__file__).parent / "fixtures/schemas.async-actions.json").read_text())
ERROR_SCHEMA = jsonschema.Draft202012Validator(
    {"$ref": "#/components/schemas/Error", "components": {"schemas": SCHEMAS}}
)
AUTH = {"X-App-Id": FAKE_APP_ID, "X-App-Token": FAKE_APP_TOKEN}
AUTH_LINES = f"X-App-Id: {FAKE_APP_ID}\r\nX-App-Token: {FAKE_APP_TOKEN}\r\n".encode()
# Generous: a busy machine must never make these tests fail.
TIMEOUT = 30.0


@attrs.frozen
class Reply:
    version: str
    status: int
    headers: dict[str, str]
    body: bytes

    def vendor_error(self) -> dict[str, Any]:
        """The body, checked to be the vendor's error for this status, with its request id."""
        assert self.headers["content-type"] == "application/json; charset=utf-8"
        error = json.loads(self.body)
        ERROR_SCHEMA.validate(error)
        assert set(error) >= {"code", "key", "message", "details", "request_id"}
        assert error["code"] == self.status
        assert error["request_id"] == self.headers["x-request-id"]
        assert error["request_id"].startswith("v-")
        return error


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeVoucherify]:
    async with FakeVoucherify(actions=generate_actions(20, seed=3)) as served:
        yield served


async def exchange(fake: FakeVoucherify, *parts: bytes, pause: float = 0.0) -> Reply:
    """Send ``parts`` on a new connection (``pause`` seconds apart); read one answer."""
    host, port = fake.base_url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        for index, part in enumerate(parts):
            if index and pause:
                await asyncio.sleep(pause)
            writer.write(part)
            await writer.drain()
        async with asyncio.timeout(TIMEOUT):
            head = await reader.readuntil(b"\r\n\r\n")
            status_line, *lines = head.decode("latin-1").split("\r\n")[:-2]
            headers = dict(line.split(": ", 1) for line in lines)
            headers = {name.lower(): value for name, value in headers.items()}
            body = await reader.readexactly(int(headers["content-length"]))
        version, status = status_line.split(" ")[:2]
        return Reply(version, int(status), headers, body)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def get(target: bytes, extra: bytes = b"") -> bytes:
    return b"GET " + target + b" HTTP/1.1\r\nHost: fake\r\n" + AUTH_LINES + extra + b"\r\n"


def post(path: bytes, body: bytes) -> bytes:
    head = f"POST {path.decode()} HTTP/1.1\r\nHost: fake\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + AUTH_LINES + b"Content-Type: application/json\r\n\r\n" + body


# -- refused inside the handler --------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("digits", ["9" * 5_000, "1" + "0" * 4_999, "7" * 4_301])
async def test_a_limit_of_thousands_of_digits_is_the_vendors_400(
    fake: FakeVoucherify, digits: str
) -> None:
    """More digits than ``int()`` takes (4,300) is a limit over 100, not a crash."""
    reply = await exchange(fake, get(f"/v1/async-actions?limit={digits}".encode()))
    assert reply.status == 400
    error = reply.vendor_error()
    assert (error["key"], error["details"]) == (
        "invalid_query_params",
        "Property .limit should be <= 100",
    )


@pytest.mark.asyncio
async def test_a_limit_with_thousands_of_leading_zeros_is_still_its_value(
    fake: FakeVoucherify,
) -> None:
    """``000...05`` is 5, however many zeros lead; ``000...0`` is 0 (below the minimum)."""
    five = await exchange(fake, get(("/v1/async-actions?limit=" + "0" * 5_000 + "5").encode()))
    assert five.status == 200
    assert len(json.loads(five.body)["async_actions"]) == 5
    zero = await exchange(fake, get(("/v1/async-actions?limit=" + "0" * 5_000).encode()))
    assert zero.status == 400
    assert zero.vendor_error()["details"] == "Property .limit should be >= 1"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("path", "body"),
    [
        (b"/v1/customers/bulk/async", b"[" * 5_000 + b"]" * 5_000),
        (b"/v1/customers/metadata/async", b'{"a":' * 5_000 + b"1" + b"}" * 5_000),
    ],
    ids=["arrays", "objects"],
)
async def test_a_body_nested_5000_deep_is_the_vendors_400(
    fake: FakeVoucherify, path: bytes, body: bytes
) -> None:
    reply = await exchange(fake, post(path, body))
    assert reply.status == 400
    error = reply.vendor_error()
    assert (error["key"], error["details"]) == (
        "invalid_payload",
        "The request body is nested too deeply",
    )
    assert len(fake.actions) == 20  # nothing started


@pytest.mark.asyncio
async def test_a_body_holding_an_integer_of_5000_digits_is_the_vendors_400(
    fake: FakeVoucherify,
) -> None:
    """Python's JSON decoder refuses integers over 4,300 digits with a bare ValueError."""
    body = b'{"metadata": {"n": ' + b"1" * 5_000 + b"}}"
    reply = await exchange(fake, post(b"/v1/customers/metadata/async", body))
    assert reply.status == 400
    error = reply.vendor_error()
    assert (error["key"], error["details"]) == (
        "invalid_payload",
        "The request body is not valid JSON",
    )


@pytest.mark.asyncio
async def test_a_path_with_bytes_that_are_not_utf8_is_a_json_404(fake: FakeVoucherify) -> None:
    reply = await exchange(fake, get(b"/v1/async-actions/%ff%fe"))
    assert reply.status == 404
    assert reply.vendor_error()["key"] == "not_found"


@pytest.mark.asyncio
async def test_a_body_over_one_mebibyte_is_the_vendors_413_and_is_recorded_empty(
    fake: FakeVoucherify,
) -> None:
    """The body is refused once past ``client_max_size`` (1 MiB): 413, no action started."""
    head = (
        b"POST /v1/customers/metadata/async HTTP/1.1\r\nHost: fake\r\n"
        + AUTH_LINES
        + b"Content-Length: 2000000\r\n\r\n"
    )
    reply = await exchange(fake, head + b"a" * (1024**2 + 1))
    chunked = await exchange(
        fake,
        b"POST /v1/customers/metadata/async HTTP/1.1\r\nHost: fake\r\n"
        + AUTH_LINES
        + b"Transfer-Encoding: chunked\r\n\r\n"
        + b"10000\r\n"
        + b"a" * 0x10000
        + b"\r\n",
        *[b"10000\r\n" + b"a" * 0x10000 + b"\r\n"] * 16,
    )
    assert chunked.status == 413
    assert chunked.vendor_error()["key"] == "request_entity_too_large"
    assert reply.status == 413
    error = reply.vendor_error()
    assert error["key"] == "request_entity_too_large"
    assert error["details"] == "The request body is larger than 1048576 bytes"
    assert reply.headers["connection"] == "close"
    assert [(r.method, r.body, r.fault) for r in fake.requests] == [("POST", b"", None)] * 2
    assert len(fake.actions) == 20


def gzipped_post(body: bytes) -> bytes:
    head = (
        b"POST /v1/customers/metadata/async HTTP/1.1\r\nHost: fake\r\n"
        + AUTH_LINES
        + b"Content-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    return head + body


@pytest.mark.asyncio
async def test_a_body_in_gzip_that_is_not_gzip_is_the_vendors_400(fake: FakeVoucherify) -> None:
    reply = await exchange(fake, gzipped_post(b"not gzip at all"))
    assert reply.status == 400
    error = reply.vendor_error()
    assert error["key"] == "bad_request"
    assert error["details"].startswith("The request body cannot be read")
    assert len(fake.actions) == 20


@pytest.mark.asyncio
async def test_a_gzip_body_over_one_mebibyte_once_decompressed_is_the_vendors_413(
    fake: FakeVoucherify,
) -> None:
    """5 MiB of JSON in a few KB of gzip: counted after decompression."""
    bomb = gzip.compress(b"{" + b" " * (5 * 1024**2) + b"}")
    assert len(bomb) < 20_000
    reply = await exchange(fake, gzipped_post(bomb))
    assert reply.status == 413
    assert reply.vendor_error()["key"] == "request_entity_too_large"


@pytest.mark.asyncio
async def test_a_gzip_body_is_read_decompressed(fake: FakeVoucherify) -> None:
    reply = await exchange(fake, gzipped_post(gzip.compress(b'{"metadata": {}}')))
    assert reply.status == 202
    assert fake.requests[-1].body == b'{"metadata": {}}'


# -- refused by aiohttp before any handler -------------------------------------------------


MALFORMED = {
    "request line over 8 KB": get(b"/v1/async-actions?x=" + b"a" * 9_000),
    "header over 8 KB": get(b"/v1/async-actions", b"X-Big: " + b"a" * 9_000 + b"\r\n"),
    "too many headers": get(
        b"/v1/async-actions", b"".join(b"X-H%d: v\r\n" % i for i in range(200))
    ),
    "not HTTP": b"GARBAGE\r\n\r\n",
    "unknown HTTP version": b"GET /v1/async-actions HTTP/9.9\r\nHost: fake\r\n\r\n",
    "space in a header name": get(b"/v1/async-actions", b"Bad Header: v\r\n"),
    "bad chunk size": (
        b"POST /v1/customers/metadata/async HTTP/1.1\r\nHost: fake\r\n"
        b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"
    ),
    "Content-Length and Transfer-Encoding": (
        b"POST /v1/customers/metadata/async HTTP/1.1\r\nHost: fake\r\n"
        b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    ),
    "Content-Length not a number": (
        b"POST /v1/customers/metadata/async HTTP/1.1\r\nHost: fake\r\nContent-Length: abc\r\n\r\n"
    ),
}


@pytest.mark.asyncio
@pytest.mark.parametrize("request_bytes", MALFORMED.values(), ids=MALFORMED.keys())
async def test_a_request_aiohttp_cannot_parse_gets_the_vendors_400_and_a_request_id(
    fake: FakeVoucherify, request_bytes: bytes
) -> None:
    """aiohttp answers these before any handler; the fake shapes its answer as the
    vendor's: JSON error, ``X-Request-Id``, the rate-limit headers; the connection closes."""
    reply = await exchange(fake, request_bytes)
    assert reply.status == 400
    assert reply.version == "HTTP/1.0"  # aiohttp's choice (docs/testing.md says so)
    error = reply.vendor_error()
    assert error["key"] == "bad_request"
    assert error["message"] == "Bad Request"
    assert 0 < len(error["details"]) <= 200  # aiohttp's reason, cut short
    assert reply.headers["x-rate-limit-limit"] == "2000"
    assert fake.requests == []  # never reached the fake's handler


@pytest.mark.asyncio
async def test_an_answer_aiohttp_makes_shows_the_rate_limit_window_without_counting(
    fake: FakeVoucherify,
) -> None:
    fake.rate_limit = (5, 60.0)
    reply = await exchange(fake, b"GARBAGE\r\n\r\n")
    assert reply.status == 400
    reply.vendor_error()
    assert (reply.headers["x-rate-limit-limit"], reply.headers["x-rate-limit-remaining"]) == (
        "5",
        "5",
    )
    assert reply.headers["x-rate-limit-retry"].isdigit()


@pytest.mark.asyncio
async def test_a_bug_in_the_fake_is_a_vendor_shaped_500_not_aiohttps_text(
    fake: FakeVoucherify, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The safety net behind "never a 500": an exception escaping the handler is still
    answered in the vendor's shape (and the fuzz test would flag the 500)."""

    def broken(*_args: object) -> tuple[int, dict[str, Any]]:
        raise KeyError("a bug")

    monkeypatch.setattr(Answerer, "_answer_read", broken)
    reply = await exchange(fake, get(b"/v1/async-actions"))
    assert reply.status == 500
    assert reply.vendor_error()["key"] == "internal_server_error"


@pytest.mark.asyncio
async def test_well_formed_requests_still_keep_the_connection_alive(
    fake: FakeVoucherify,
) -> None:
    """The error shaping changes nothing for a normal exchange: 200s on one connection."""
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(fake.base_url, headers=AUTH, connector=connector) as session:
        for _ in range(3):
            async with session.get("/v1/async-actions", params={"limit": 2}) as response:
                assert response.status == 200
                await response.read()
    assert len(fake.requests) == 3


@pytest.mark.asyncio
async def test_a_malformed_chunk_arriving_after_the_body_began_is_never_answered(
    fake: FakeVoucherify,
) -> None:
    """aiohttp's limit, pinned so that docs/testing.md is updated when it changes: the
    bad chunk is reported as a new request and the body being read never ends."""
    host, port = fake.base_url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(
            b"POST /v1/customers/metadata/async HTTP/1.1\r\nHost: fake\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n"
        )
        await writer.drain()
        await asyncio.sleep(0.2)  # a later packet: the handler is waiting for the body
        writer.write(b"zz\r\n")
        await writer.drain()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(1.0):
                await reader.read(1)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    assert fake.requests == []


# -- random requests beyond the vendor's document (the start POSTs, any method) --------------

START = "/v1/customers/metadata/async"
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)
BODIES = st.binary(max_size=200) | JSON_VALUES.map(lambda value: json.dumps(value).encode())
TARGETS = st.sampled_from(
    [
        "/v1/async-actions",
        "/v1/async-actions/aa_1",
        START,
        "/v1/customers/bulk/async",
        "/v1/async-actions/a/b",
        "/",
    ]
)
QUERIES = st.text(st.sampled_from("limit=end_date&%0123456789-+:TZ.aäZ\x00 "), max_size=40).map(
    lambda text: urllib.parse.quote(text, safe="=&%+:")
)


@pytest.fixture(scope="module")
def fake_in_thread() -> Iterator[FakeVoucherify]:
    with FakeVoucherify(actions=generate_actions(20, seed=3)).run_in_thread() as served:
        yield served


@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]),
    target=TARGETS,
    query=QUERIES,
    body=BODIES,
    authorized=st.booleans(),
)
@settings(max_examples=60, derandomize=True, database=None, deadline=None)
def test_random_requests_never_get_a_500_and_every_error_is_the_vendors(
    fake_in_thread: FakeVoucherify,
    method: str,
    target: str,
    query: str,
    body: bytes,
    authorized: bool,
) -> None:
    """Any method, path, query and body (JSON or not): a status below 500, and every
    error in the vendor's shape (hypothesis, seeded; the spec-driven fuzz covers the
    documented calls, this one the start POSTs the spec does not describe)."""
    host, port = fake_in_thread.base_url.removeprefix("http://").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT)
    try:
        headers = dict(AUTH) if authorized else {}
        connection.request(method, f"{target}?{query}", body=body, headers=headers)
        response = connection.getresponse()
        raw = response.read()
    finally:
        connection.close()
    assert response.status < 500
    if response.status >= 400 and method != "HEAD":
        headers = {name.lower(): value for name, value in response.headers.items()}
        Reply("HTTP/1.1", response.status, headers, raw).vendor_error()
