"""Tests of ``voucherify_async._decode`` on 2xx answers: strictness of decoding.

Whatever a 2xx body holds, ``decode_page`` and ``decode_details`` return a model or
raise :class:`InvalidResponseError` (a :class:`VoucherifyError`) whose message names
the JSON path of the bad value, the HTTP status and the request id; never a
``KeyError``, ``ValueError``, ``TypeError`` or a cattrs exception. Table-driven tests
pin each malformed payload; hypothesis throws arbitrary JSON and bytes at both.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC
from pathlib import Path
from typing import Any, TypeVar

import cattrs
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from voucherify_async._decode import (
    RawResponse,
    decode_details,
    decode_page,
    parse_json,
)
from voucherify_async._exceptions import InvalidResponseError, VoucherifyError
from voucherify_async._models import AsyncAction, AsyncActionDetails, AsyncActionsPage

FIXTURES = Path(__file__).parent / "fixtures"
LIST_EXAMPLE: dict[str, Any] = json.loads(
    (FIXTURES / "examples.list-async-actions.200.json").read_text("utf-8")
)["List Async Actions"]["value"]
GET_EXAMPLE: dict[str, Any] = json.loads(
    (FIXTURES / "examples.get-async-action.200.json").read_text("utf-8")
)["VOUCHERS.BULK_UPDATE"]["value"]

URL = "https://api.voucherify.io/v1/async-actions"
REQUEST_ID = "v-0c54493e444b0f61a6"


def answer(body: bytes, *, status: int = 200, headers: dict[str, str] | None = None) -> RawResponse:
    """A raw answer to ``GET /v1/async-actions``."""
    return RawResponse(
        status=status,
        headers={"Content-Type": "application/json"} if headers is None else headers,
        body=body,
        method="GET",
        url=URL,
    )


def dumps(payload: Any) -> bytes:
    return json.dumps(payload).encode()


def with_action_field(index: int, field: str, value: Any) -> bytes:
    """The list example with ``async_actions[index][field]`` set (``...`` deletes it)."""
    items = [dict(item) for item in LIST_EXAMPLE["async_actions"]]
    if value is ...:
        del items[index][field]
    else:
        items[index][field] = value
    return dumps({**LIST_EXAMPLE, "async_actions": items})


def with_field(field: str, value: Any) -> bytes:
    """The VOUCHERS.BULK_UPDATE get example with ``field`` set (``...`` deletes it)."""
    payload = dict(GET_EXAMPLE)
    if value is ...:
        del payload[field]
    else:
        payload[field] = value
    return dumps(payload)


def read_page(response: RawResponse) -> object:
    return decode_page(response, limit=10)


def read_details(response: RawResponse) -> object:
    return decode_details(response)


# (id, decoder, body, JSON path named in the message, or None when the body is not JSON)
MALFORMED: list[tuple[str, Callable[[RawResponse], object], bytes, str | None]] = [
    ("details: id as int", read_details, with_field("id", 5), "$.id"),
    ("details: id missing", read_details, with_field("id", ...), "$.id"),
    ("details: created_at missing", read_details, with_field("created_at", ...), "$.created_at"),
    (
        "details: created_at not ISO",
        read_details,
        with_field("created_at", "5 Sep"),
        "$.created_at",
    ),
    (
        "details: created_at a number",
        read_details,
        with_field("created_at", 1662378017),
        "$.created_at",
    ),
    ("details: created_at null", read_details, with_field("created_at", None), "$.created_at"),
    ("details: updated_at not ISO", read_details, with_field("updated_at", "soon"), "$.updated_at"),
    ("details: progress as '5'", read_details, with_field("progress", "5"), "$.progress"),
    ("details: progress as True", read_details, with_field("progress", True), "$.progress"),
    (
        "details: processing_time float",
        read_details,
        with_field("processing_time", 1.5),
        "$.processing_time",
    ),
    ("details: type as 5", read_details, with_field("type", 5), "$.type"),
    ("details: status as list", read_details, with_field("status", ["DONE"]), "$.status"),
    ("details: result as list", read_details, with_field("result", []), "$.result"),
    (
        "details: result.done_count str",
        read_details,
        with_field("result", {"done_count": "3"}),
        "$.result",
    ),
    ("details: result.failed str", read_details, with_field("result", {"failed": "x"}), "$.result"),
    (
        "details: result.reports ints",
        read_details,
        with_field("result", {"reports": [1]}),
        "$.result",
    ),
    (
        "details: reports_available_till bad",
        read_details,
        with_field("result", {"reports_available_till": "x"}),
        "$.result",
    ),
    ("details: body a JSON list", read_details, b"[]", "$"),
    ("details: body null", read_details, b"null", "$"),
    ("details: body a string", read_details, b'"aa_1"', "$"),
    ("page: has_more 'yes'", read_page, dumps({**LIST_EXAMPLE, "has_more": "yes"}), "$.has_more"),
    ("page: has_more 1", read_page, dumps({**LIST_EXAMPLE, "has_more": 1}), "$.has_more"),
    ("page: async_actions missing", read_page, dumps({"object": "list"}), "$.async_actions"),
    ("page: async_actions null", read_page, dumps({"async_actions": None}), "$.async_actions"),
    ("page: async_actions an object", read_page, dumps({"async_actions": {}}), "$.async_actions"),
    ("page: async_actions a string", read_page, dumps({"async_actions": "[]"}), "$.async_actions"),
    ("page: item not an object", read_page, dumps({"async_actions": [5]}), "$.async_actions[0]"),
    (
        "page: [1].created_at missing",
        read_page,
        with_action_field(1, "created_at", ...),
        "$.async_actions[1].created_at",
    ),
    (
        "page: [1].created_at a number",
        read_page,
        with_action_field(1, "created_at", 0),
        "$.async_actions[1].created_at",
    ),
    ("page: [0].id as int", read_page, with_action_field(0, "id", 7), "$.async_actions[0].id"),
    (
        "page: [1].progress as '5'",
        read_page,
        with_action_field(1, "progress", "5"),
        "$.async_actions[1].progress",
    ),
    ("page: body a JSON list", read_page, b"[]", "$"),
    ("page: body null", read_page, b"null", "$"),
    ("page: empty body", read_page, b"", None),
    ("page: HTML body", read_page, b"<html><body>Bad Gateway</body></html>", None),
    ("page: truncated JSON", read_page, dumps(LIST_EXAMPLE)[:-20], None),
    ("page: invalid UTF-8", read_page, b'{"async_actions": ["\xff\xfe"]}', None),
    ("details: empty body", read_details, b"", None),
    ("details: HTML body", read_details, b"<!DOCTYPE html><html>oops</html>", None),
    ("details: truncated JSON", read_details, dumps(GET_EXAMPLE)[:40], None),
    ("details: invalid UTF-8", read_details, b'{"id": "\xc3\x28"}', None),
    ("details: only whitespace", read_details, b"  \n ", None),
]


@pytest.mark.parametrize(
    ("decoder", "body", "field"),
    [pytest.param(decoder, body, field, id=name) for name, decoder, body, field in MALFORMED],
)
def test_malformed_body_raises_invalid_response_error_naming_the_field(
    decoder: Callable[[RawResponse], object], body: bytes, field: str | None
) -> None:
    """Each malformed 2xx body raises exactly ``InvalidResponseError``, a
    ``VoucherifyError``, with ``field`` set to the JSON path (``None`` when the body is
    not JSON at all) and a ``str()`` naming that path and the HTTP status."""
    with pytest.raises(InvalidResponseError) as caught:
        decoder(answer(body))
    error = caught.value
    assert type(error) is InvalidResponseError
    assert isinstance(error, VoucherifyError)
    assert error.status == 200
    assert error.field == field
    text = str(error)
    assert "200" in text
    if field is not None:
        assert field in text
    else:
        assert "not JSON" in text
    assert repr(error).startswith("InvalidResponseError(")


@pytest.mark.parametrize("header", ["X-Request-Id", "x-request-id", "X-REQUEST-ID", "x-Request-ID"])
@pytest.mark.parametrize(
    ("decoder", "body"),
    [
        pytest.param(read_page, with_action_field(1, "created_at", ...), id="page: bad field"),
        pytest.param(read_details, with_field("id", 5), id="details: bad field"),
        pytest.param(read_details, b"[]", id="details: not an object"),
        pytest.param(read_page, b"<html>", id="page: not JSON"),
    ],
)
def test_invalid_response_error_names_the_request_id_in_any_header_case(
    header: str, decoder: Callable[[RawResponse], object], body: bytes
) -> None:
    """The ``X-Request-Id`` header, whatever the case of its name, becomes
    ``request_id`` and appears in ``str()``."""
    with pytest.raises(InvalidResponseError) as caught:
        decoder(answer(body, headers={header: REQUEST_ID}))
    assert caught.value.request_id == REQUEST_ID
    assert REQUEST_ID in str(caught.value)


def test_invalid_response_error_without_request_id_header_has_none() -> None:
    """Without the header, ``request_id`` is ``None`` and ``str()`` does not invent one."""
    with pytest.raises(InvalidResponseError) as caught:
        decode_details(answer(with_field("id", 5), headers={}))
    assert caught.value.request_id is None
    assert "request id" not in str(caught.value)


def test_invalid_response_error_carries_the_status_it_came_with() -> None:
    """A 201 (any 2xx) with a bad payload says ``HTTP 201``, and names the request."""
    with pytest.raises(InvalidResponseError) as caught:
        decode_details(answer(b"[]", status=201))
    assert caught.value.status == 201
    assert "HTTP 201" in str(caught.value)
    assert URL in str(caught.value)


def test_the_first_of_several_problems_is_named_and_the_rest_counted() -> None:
    """Two bad actions: the message names one path and says more problems exist."""
    items = [{**item, "created_at": 0} for item in LIST_EXAMPLE["async_actions"]]
    with pytest.raises(InvalidResponseError) as caught:
        decode_page(answer(dumps({"async_actions": items})), limit=10)
    assert caught.value.field in {"$.async_actions[0].created_at", "$.async_actions[1].created_at"}
    assert "more problem" in str(caught.value)


def test_a_non_json_body_quotes_its_start_and_its_content_type() -> None:
    """An HTML page is reported with its content type and the start of the body."""
    html = b"<html><head><title>502 Bad Gateway</title></head>" + b"x" * 5000
    with pytest.raises(InvalidResponseError) as caught:
        parse_json(answer(html, headers={"Content-Type": "text/html"}))
    text = str(caught.value)
    assert "text/html" in text
    assert "<html><head><title>502 Bad Gateway" in text
    assert caught.value.excerpt is not None
    assert caught.value.excerpt.startswith("<html>")
    assert len(text) < 1000


@pytest.mark.parametrize(
    ("decoder", "body"),
    [
        pytest.param(read_page, b"[" * 100_000, id="page: nested arrays"),
        pytest.param(read_details, b'{"a":' * 100_000, id="details: nested objects"),
    ],
)
def test_deeply_nested_json_raises_invalid_response_error(
    decoder: Callable[[RawResponse], object], body: bytes
) -> None:
    """A body nested deeper than the JSON parser's recursion limit (a broken proxy, a
    hostile server) is an ``InvalidResponseError``, not a ``RecursionError``."""
    with pytest.raises(InvalidResponseError):
        decoder(answer(body))


def test_valid_answers_still_decode() -> None:
    """Control for the table above: the unmodified examples decode."""
    assert isinstance(decode_page(answer(dumps(LIST_EXAMPLE)), limit=10), AsyncActionsPage)
    assert isinstance(decode_details(answer(dumps(GET_EXAMPLE))), AsyncActionDetails)
    assert decode_details(answer(dumps(GET_EXAMPLE))).created_at.tzinfo is UTC


# --- hypothesis: nothing but InvalidResponseError escapes ----------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
timestamps = st.sampled_from(
    [
        "2022-09-05T11:40:17.098Z",
        "2022-09-05T11:40:17",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        "2022-02-30T00:00:00Z",
        "",
    ]
)
action_fields = st.sampled_from(
    [
        "id",
        "created_at",
        "updated_at",
        "type",
        "status",
        "operation_status",
        "request_id",
        "processing_time",
        "progress",
        "object",
        "result",
    ]
)
result_fields = st.sampled_from(
    [
        "message",
        "done_count",
        "failed_count",
        "failed",
        "errors",
        "reports",
        "reports_available_till",
    ]
)


@st.composite
def mangled_actions(draw: st.DrawFn) -> dict[str, Any]:
    """The get example with some fields (of the action and of its result) replaced by
    arbitrary JSON values or odd timestamps, or deleted."""
    action: dict[str, Any] = dict(GET_EXAMPLE)
    result: dict[str, Any] = dict(action["result"])
    for name in draw(st.lists(action_fields, max_size=3)):
        choice = draw(st.sampled_from(["delete", "value", "timestamp"]))
        if choice == "delete":
            action.pop(name, None)
        else:
            action[name] = draw(json_values if choice == "value" else timestamps)
    for name in draw(st.lists(result_fields, max_size=3)):
        result[name] = draw(json_values | timestamps)
    if isinstance(action.get("result"), dict):
        action["result"] = result
    return action


_T = TypeVar("_T")


def outcome(call: Callable[[], _T]) -> _T | InvalidResponseError:
    """What ``call`` returns, or the ``InvalidResponseError`` it raises; any other
    exception propagates and fails the test."""
    try:
        return call()
    except InvalidResponseError as error:
        return error


def check_only_invalid_response_error(call: Callable[[], object]) -> None:
    """``call`` returns, or raises exactly ``InvalidResponseError`` (never a cattrs
    exception) with the status and a non-empty message."""
    result = outcome(call)
    if isinstance(result, InvalidResponseError):
        assert type(result) is InvalidResponseError
        assert not isinstance(result, cattrs.BaseValidationError)
        assert result.status == 200
        assert str(result)


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(payload=json_values, limit=st.none() | st.integers(1, 100))
@example(payload={"async_actions": [None]}, limit=1)
@example(payload={"async_actions": [], "has_more": None}, limit=None)
def test_decode_page_of_any_json_returns_a_page_or_raises_invalid_response_error(
    payload: Any, limit: int | None
) -> None:
    """Any JSON value as a list body: a page, or ``InvalidResponseError``, nothing else."""
    check_only_invalid_response_error(lambda: decode_page(answer(dumps(payload)), limit=limit))
    page = outcome(lambda: decode_page(answer(dumps(payload)), limit=limit))
    if not isinstance(page, InvalidResponseError):
        assert isinstance(page.has_more, bool)
        assert all(type(action) is AsyncAction for action in page)


@FUZZ
@given(payload=json_values)
def test_decode_details_of_any_json_returns_details_or_raises_invalid_response_error(
    payload: Any,
) -> None:
    """Any JSON value as a get body: details, or ``InvalidResponseError``, nothing else."""
    check_only_invalid_response_error(lambda: decode_details(answer(dumps(payload))))


@FUZZ
@given(action=mangled_actions())
def test_decode_details_of_a_mangled_action_keeps_its_promises(action: dict[str, Any]) -> None:
    """An action with arbitrary values in its fields either decodes with ``id`` a str
    and aware-UTC ``created_at``, or raises ``InvalidResponseError`` naming a field."""
    check_only_invalid_response_error(lambda: decode_details(answer(dumps(action))))
    details = outcome(lambda: decode_details(answer(dumps(action))))
    if isinstance(details, InvalidResponseError):
        assert details.field is not None
        assert details.field.startswith("$")
        assert details.field in str(details)
    else:
        assert type(details.id) is str
        assert details.created_at.tzinfo is UTC


@FUZZ
@given(actions=st.lists(mangled_actions(), max_size=3), limit=st.none() | st.integers(1, 100))
def test_decode_page_of_mangled_actions_keeps_its_promises(
    actions: list[dict[str, Any]], limit: int | None
) -> None:
    """A page of mangled actions decodes into ``AsyncAction`` items (never details), or
    raises ``InvalidResponseError`` naming ``$.async_actions[i]...``."""
    page = outcome(lambda: decode_page(answer(dumps({"async_actions": actions})), limit=limit))
    if isinstance(page, InvalidResponseError):
        assert page.field is not None
        assert page.field.startswith("$.async_actions[")
        assert page.field in str(page)
    else:
        assert len(page) == len(actions)
        assert all(type(action) is AsyncAction for action in page)


@FUZZ
@given(body=st.binary(max_size=200))
@example(body=b"\xef\xbb\xbf{}")
@example(body=b"\x00")
@example(body=b'{"async_actions": []}')
def test_any_bytes_decode_or_raise_invalid_response_error(body: bytes) -> None:
    """Arbitrary bytes as a body, to either decoder: only ``InvalidResponseError`` escapes."""
    check_only_invalid_response_error(lambda: decode_page(answer(body), limit=None))
    check_only_invalid_response_error(lambda: decode_details(answer(body)))


# --- error answers: bounded text, the whole body kept, the server's wait ----------------

NOW = 1_700_000_000.0


def test_error_text_is_cut_to_the_limit_and_the_body_kept_whole() -> None:
    from voucherify_async._decode import TEXT_LIMIT, error_from_response

    body = dumps({"code": 400, "key": "k" * 10_000, "message": "m" * 10_000, "details": "d" * 10})
    error = error_from_response(answer(body, status=400), now=NOW)
    assert error.message.startswith("m" * TEXT_LIMIT)
    assert "(9500 more characters)" in error.message
    assert error.key is not None
    assert len(error.key) < TEXT_LIMIT + 50
    assert error.body == body
    assert len(str(error)) < 3 * TEXT_LIMIT + 300


@pytest.mark.parametrize(
    "payload",
    [{"error": "quota exceeded for edge-7"}, {"message": 42, "hint": "quota exceeded for edge-7"}],
)
def test_a_json_error_body_in_another_shape_quotes_its_start(payload: Any) -> None:
    from voucherify_async._decode import error_from_response

    error = error_from_response(answer(dumps(payload), status=500), now=NOW)
    assert "quota exceeded for edge-7" in str(error)
    assert "no message" not in str(error)


def test_an_invalid_2xx_body_keeps_the_whole_body() -> None:
    body = b"<html>" + b"x" * 10_000
    with pytest.raises(InvalidResponseError) as raised:
        parse_json(answer(body))
    assert raised.value.body == body
    assert len(str(raised.value)) < 1000


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (503, {"Retry-After": "7"}, 7.0),
        (500, {"Retry-After": "Tue, 14 Nov 2023 22:13:30 GMT"}, 10.0),
        (503, {"X-Rate-Limit-Retry": str(NOW + 30)}, None),  # a window's reset, not a wait
        (429, {"X-Rate-Limit-Retry": str(NOW + 30)}, 30.0),
        (429, {"X-Rate-Limit-Retry": str(int((NOW + 30) * 1000))}, 30.0),
        (429, {"X-Rate-Limit-Retry": "30"}, 30.0),
        (429, {"Retry-After": "2", "X-Rate-Limit-Retry": "30"}, 2.0),
        (408, {}, None),
    ],
)
def test_server_wait_is_retry_after_on_any_status_and_the_reset_on_a_429(
    status: int, headers: dict[str, str], expected: float | None
) -> None:
    from voucherify_async._decode import server_wait

    assert server_wait(answer(b"", status=status, headers=headers), now=NOW) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (str(NOW + 12), 12.0),  # epoch seconds
        (str(int((NOW + 12) * 1000)), 12.0),  # epoch milliseconds
        ("12", 12.0),  # seconds from now
        (str(NOW - 5), 0.0),  # already past
        ("-3", 0.0),
        ("nan", None),
        ("soon", None),
        (None, None),
    ],
)
def test_a_reset_is_read_liberally(value: str | None, expected: float | None) -> None:
    from voucherify_async._decode import reset_delay

    result = reset_delay(value, now=NOW)
    assert result == (pytest.approx(expected) if expected is not None else None)
