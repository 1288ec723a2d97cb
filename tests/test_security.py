"""Credentials stay secret, and nothing unsafe is accepted at construction."""

from __future__ import annotations

import logging
import re
import traceback
from typing import Any

import aiohttp
import pytest
from aioresponses import aioresponses

from voucherify_async import RetryPolicy, VoucherifyClient, VoucherifyError

APP_TOKEN = "tok-SECRET-5f1e0c"
OAUTH_TOKEN = "oauth-SECRET-9a7b3d"
LIST = re.compile(r"^https://api\.voucherify\.io/v1/async-actions(\?.*)?$")


def _every_text(error: BaseException) -> str:
    """str, repr and the formatted traceback of an exception and its whole chain."""
    parts = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts += [
            str(current),
            repr(current),
            repr(vars(current)) if hasattr(current, "__dict__") else "",
        ]
        current = current.__cause__ or current.__context__
    parts.append("".join(traceback.format_exception(error)))
    return "\n".join(parts)


def test_repr_and_str_of_the_client_hide_the_token() -> None:
    for client in (
        VoucherifyClient("app-id", APP_TOKEN),
        VoucherifyClient(oauth_token=OAUTH_TOKEN),
    ):
        for text in (repr(client), str(client)):
            assert APP_TOKEN not in text
            assert OAUTH_TOKEN not in text
            assert "api.voucherify.io" in text


@pytest.mark.parametrize("bad", ["tok\r\nX-Evil: 1", "tok\nx", "tok\rx", "tok\x00x", "tok\x7fx"])
@pytest.mark.parametrize("field", ["app_id", "app_token", "oauth_token"])
def test_header_values_with_control_characters_are_refused_without_echoing_them(
    field: str, bad: str
) -> None:
    kwargs: dict[str, Any] = (
        {"oauth_token": bad}
        if field == "oauth_token"
        else {"app_id": "id", "app_token": "tok"} | {field: bad}
    )
    with pytest.raises(ValueError, match="control character") as raised:
        VoucherifyClient(**kwargs)
    assert bad not in str(raised.value)


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("s3cr3t\x85x", "control character"),  # NEL: a line break to some parsers
        ("s3cr3t\u2028x", "control character"),  # LINE SEPARATOR
        ("s3cr3t\u2029x", "control character"),
        ("s3cr3t\u00a0x", "control character"),  # no-break space: not printable
        ("s3cr3t\u20acx", "control character"),  # the euro sign: not Latin-1
        ("s3cr3t\tx", "control character"),
        (" s3cr3t", "whitespace"),
        ("s3cr3t ", "whitespace"),
        ("\ts3cr3t", "whitespace"),
        ("s3cr3t\u3000", "whitespace"),
    ],
)
@pytest.mark.parametrize("field", ["app_id", "app_token", "oauth_token"])
def test_a_credential_not_sendable_verbatim_is_refused_naming_the_argument(
    field: str, bad: str, why: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """aiohttp would strip the spaces silently, or send what a proxy splits: refused
    at construction instead, naming the argument and never echoing the value."""
    monkeypatch.delenv("VOUCHERIFY_APP_ID", raising=False)
    monkeypatch.delenv("VOUCHERIFY_APP_TOKEN", raising=False)
    kwargs: dict[str, Any] = (
        {"oauth_token": bad}
        if field == "oauth_token"
        else {"app_id": "id", "app_token": "tok"} | {field: bad}
    )
    with pytest.raises(ValueError, match=why) as raised:
        VoucherifyClient(**kwargs)
    assert str(raised.value).startswith(field)
    assert "s3cr3t" not in str(raised.value)


@pytest.mark.parametrize("good", ["clé-ÿ¡§", "a b", "~!@#$%^&*()_+{}|:<>?"])
def test_printable_latin_1_credentials_are_accepted(good: str) -> None:
    assert "auth=app keys" in repr(VoucherifyClient(good, good))


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"app_id": "only-id"},
        {"app_id": "id", "app_token": ""},
        {"app_id": "id", "app_token": "tok", "oauth_token": "x"},
    ],
)
def test_missing_empty_or_mixed_credentials_are_refused(
    kwargs: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VOUCHERIFY_APP_ID", raising=False)
    monkeypatch.delenv("VOUCHERIFY_APP_TOKEN", raising=False)
    with pytest.raises(ValueError, match=r"credentials|empty|not both"):
        VoucherifyClient(**kwargs)


@pytest.mark.parametrize("token", [123, b"bytes", ["x"]])
def test_credentials_of_the_wrong_type_raise_type_error(token: object) -> None:
    with pytest.raises(TypeError):
        VoucherifyClient("id", token)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "base_url",
    [
        "http://api.voucherify.io",
        "http://10.0.0.5:8080",
        "http://example.com",
        "ftp://api.voucherify.io",
        "https://user:pass@api.voucherify.io",
        "https://api.voucherify.io/?x=1",
        "api.voucherify.io",
        "https://api.voucherify.io\r\nX-Evil: 1",
    ],
)
def test_base_url_must_be_https_unless_loopback(base_url: str) -> None:
    with pytest.raises(ValueError, match="base_url"):
        VoucherifyClient("id", "tok", base_url=base_url)


@pytest.mark.parametrize(
    "base_url",
    [
        "https://api.voucherify.io",
        "http://127.0.0.1:8080",
        "http://127.5.6.7",
        "http://localhost:9000/",
        "http://[::1]:8080",
    ],
)
def test_https_and_loopback_http_base_urls_are_accepted(base_url: str) -> None:
    assert str(VoucherifyClient("id", "tok", base_url=base_url).base_url).startswith(
        base_url.rstrip("/")
    )


@pytest.mark.parametrize("cluster", ["api/../x", "evil.com/", "", "api?x", "API"])
def test_cluster_must_be_a_plain_host_label(cluster: str) -> None:
    with pytest.raises(ValueError, match="cluster"):
        VoucherifyClient("id", "tok", cluster=cluster)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "failure",
    [
        {"status": 401, "payload": {"code": 401, "key": "unauthorized", "message": "Unauthorized"}},
        {"status": 500, "body": "<html>boom</html>"},
        {"status": 200, "body": "{not json"},
        {"status": 200, "payload": {"async_actions": [{"id": 1}]}},
        {"exception": aiohttp.ClientConnectionError("connection reset")},
        {"exception": TimeoutError()},
    ],
)
async def test_no_error_or_log_line_carries_a_credential(
    mock_api: aioresponses, caplog: pytest.LogCaptureFixture, failure: dict[str, Any]
) -> None:
    """Exceptions (with their causes and tracebacks) and retry log records never show a token."""
    mock_api.get(LIST, repeat=True, **failure)
    caplog.set_level(logging.DEBUG)
    for client in (
        VoucherifyClient("app-id", APP_TOKEN, retry=RetryPolicy.instant(max_retries=2)),
        VoucherifyClient(oauth_token=OAUTH_TOKEN, retry=RetryPolicy.instant(max_retries=2)),
    ):
        async with client:
            with pytest.raises(VoucherifyError) as raised:
                await client.list_async_actions(limit=5)
        text = _every_text(raised.value)
        assert APP_TOKEN not in text
        assert OAUTH_TOKEN not in text
    logged = "\n".join(record.getMessage() + repr(vars(record)) for record in caplog.records)
    assert APP_TOKEN not in logged
    assert OAUTH_TOKEN not in logged


@pytest.mark.asyncio
async def test_a_cookie_set_by_the_server_is_never_sent_back() -> None:
    """The client keeps no cookie jar: nothing a response sets (a proxy's session
    cookie, say) rides along on later requests, which carry the credentials only."""
    from aiohttp import web

    cookies_received: list[str | None] = []

    async def handler(request: web.Request) -> web.Response:
        cookies_received.append(request.headers.get("Cookie"))
        response = web.json_response({"async_actions": [], "has_more": False})
        response.set_cookie("session", "tracking-value")
        return response

    app = web.Application()
    app.router.add_get("/v1/async-actions", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        # A host name: aiohttp's default jar would refuse cookies from an IP address.
        base_url = f"http://localhost:{port}"
        async with VoucherifyClient("app-id", "app-token", base_url=base_url) as client:
            await client.list_async_actions(limit=1)
            await client.list_async_actions(limit=1)
    finally:
        await runner.cleanup()
    assert cookies_received == [None, None]
