"""orjson (the ``speed`` extra) and the standard json module: same results, same errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from voucherify_async import InvalidResponseError, _decode
from voucherify_async._decode import RawResponse, decode_page, error_from_response

ACTION = {"id": "aa_1", "created_at": "2022-09-05T11:40:17.098Z", "status": "DONE", "progress": 100}


def _backends() -> list[Any]:
    backends: list[Any] = [pytest.param(json.loads, id="json")]
    try:
        import orjson
    except ImportError:  # pragma: no cover  # the dev extra installs it
        backends.append(pytest.param(None, id="orjson", marks=pytest.mark.skip("no orjson")))
    else:
        backends.append(pytest.param(orjson.loads, id="orjson"))
    return backends


@pytest.fixture(params=_backends())
def backend(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Callable[[bytes], Any]:
    monkeypatch.setattr(_decode, "loads", request.param)
    loads: Callable[[bytes], Any] = request.param
    return loads


def response(body: bytes, status: int = 200) -> RawResponse:
    return RawResponse(
        status=status, headers={"X-Request-Id": "v-1"}, body=body, method="GET", url="u"
    )


def test_the_dev_install_uses_orjson() -> None:
    """The ``speed`` extra is part of ``dev``, so the tests run the fast path by default."""
    assert _decode.JSON_BACKEND == "orjson"


def test_a_page_decodes_the_same(backend: Callable[[bytes], Any]) -> None:
    body = json.dumps({"async_actions": [ACTION], "has_more": False}).encode()
    page = decode_page(response(body), limit=10)
    assert [a.id for a in page] == ["aa_1"]
    assert page.async_actions[0].progress == 100


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<html>502</html>",
        b'{"async_actions": [',
        b"\xff\xfe",
        b"[" * 100_000,
        b"NaN",
        b"{1: 2}",
    ],
)
def test_bad_bodies_raise_invalid_response_either_way(
    backend: Callable[[bytes], Any], body: bytes
) -> None:
    with pytest.raises(InvalidResponseError) as raised:
        decode_page(response(body), limit=10)
    assert "v-1" in str(raised.value)


def test_error_bodies_are_read_either_way(backend: Callable[[bytes], Any]) -> None:
    body = json.dumps({"code": 404, "key": "not_found", "message": "Resource not found"}).encode()
    error = error_from_response(response(body, status=404))
    assert (error.key, error.message) == ("not_found", "Resource not found")
    deep = error_from_response(response(b"[" * 100_000, status=502))
    assert deep.status == 502
