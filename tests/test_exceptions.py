"""Tests of the exception tree (``_exceptions``) and of the errors built from non-2xx
answers (``_decode.error_from_response``, ``_decode.retry_after_seconds``).

The tree drawn in ``_exceptions``' docstring is parsed and compared with the classes,
so the documentation and the code cannot drift apart. The vendor's 400 and 404
examples (``tests/fixtures/examples.errors.json``) must fill every attribute.
"""

from __future__ import annotations

import inspect
import json
import math
import re
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import voucherify_async
from voucherify_async import _exceptions
from voucherify_async._decode import RawResponse, error_from_response, retry_after_seconds
from voucherify_async._exceptions import (
    AuthenticationError,
    BadRequestError,
    InvalidResponseError,
    NotFoundError,
    PaginationError,
    RateLimitError,
    RequestTimeoutError,
    ServerError,
    TransportError,
    VoucherifyAPIError,
    VoucherifyError,
)

FIXTURES = Path(__file__).parent / "fixtures"
ERROR_EXAMPLES: dict[str, Any] = json.loads((FIXTURES / "examples.errors.json").read_text("utf-8"))
LIST_400: dict[str, Any] = ERROR_EXAMPLES["list_400"]["Invalid Query Parameters"]["value"]
GET_404: dict[str, Any] = ERROR_EXAMPLES["get_404"]["Async-Action-Not-Found"]["value"]

URL = "https://api.voucherify.io/v1/async-actions"
NOW = 1_700_000_000.0


def answer(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> RawResponse:
    """A raw non-2xx answer to ``GET /v1/async-actions``."""
    return RawResponse(
        status=status,
        headers={"Content-Type": "application/json"} if headers is None else headers,
        body=body,
        method="GET",
        url=URL,
    )


# --- the tree -------------------------------------------------------------------------

_TREE_LINE = re.compile(r"^(?P<indent>[ │├└─]*)(?P<name>[A-Z][A-Za-z]*Error)\b(?P<rest>.*)$")


def tree_block(text: str) -> list[str]:
    """The lines of the first fenced block (Markdown) or literal block (after ``::``)."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("```"):
            rest = lines[i + 1 :]
            return rest[: next(j for j, tail in enumerate(rest) if tail.startswith("```"))]
        if line.rstrip().endswith("::"):
            block: list[str] = []
            for tail in lines[i + 1 :]:
                if tail.strip() and not tail[0].isspace() and block:
                    break
                block.append(tail)
            return block
    raise AssertionError("no tree drawn")


def parse_tree(text: str) -> dict[str, tuple[str | None, str]]:
    """``{class name: (parent name or None, description)}`` from a drawn tree, where a
    class's parent is the nearest class above it drawn further left."""
    tree: dict[str, tuple[str | None, str]] = {}
    stack: list[tuple[int, str]] = []
    for line in tree_block(text):
        match = _TREE_LINE.match(line)
        if match is None:
            continue
        column = len(match["indent"])
        while stack and stack[-1][0] >= column:
            stack.pop()
        tree[match["name"]] = (stack[-1][1] if stack else None, match["rest"].strip())
        stack.append((column, match["name"]))
    return tree


DOCSTRING_TREE = parse_tree(inspect.getdoc(_exceptions) or "")
ERROR_CLASSES: dict[str, type[BaseException]] = {
    name: getattr(_exceptions, name) for name in _exceptions.__all__
}


def test_the_docstring_tree_parses_into_fifteen_classes_under_one_root() -> None:
    """Sanity of the parser: the drawn tree has one root and every class once."""
    roots = [name for name, (parent, _) in DOCSTRING_TREE.items() if parent is None]
    assert roots == ["VoucherifyError"]
    assert len(DOCSTRING_TREE) == 15


def test_the_docstring_tree_names_exactly_the_exported_errors() -> None:
    """Every class in ``_exceptions.__all__`` is drawn in the tree, and nothing else."""
    assert set(DOCSTRING_TREE) == set(ERROR_CLASSES)


@pytest.mark.parametrize("name", sorted(DOCSTRING_TREE))
def test_each_class_derives_from_the_parent_drawn_in_the_docstring(name: str) -> None:
    """The class's only base is the class drawn above it (``Exception`` for the root);
    ``ClientClosedError`` is also a ``RuntimeError``, as its line in the tree says."""
    parent, _ = DOCSTRING_TREE[name]
    expected = Exception if parent is None else ERROR_CLASSES[parent]
    extra = (RuntimeError,) if name == "ClientClosedError" else ()
    assert ERROR_CLASSES[name].__bases__ == (expected, *extra)


def test_the_tree_literally() -> None:
    """The tree, written out: parent of each class."""
    assert {name: parent for name, (parent, _) in DOCSTRING_TREE.items()} == {
        "VoucherifyError": None,
        "VoucherifyAPIError": "VoucherifyError",
        "BadRequestError": "VoucherifyAPIError",
        "AuthenticationError": "VoucherifyAPIError",
        "NotFoundError": "VoucherifyAPIError",
        "RateLimitError": "VoucherifyAPIError",
        "ServerError": "VoucherifyAPIError",
        "TransportError": "VoucherifyError",
        "RequestTimeoutError": "TransportError",
        "CertificateError": "TransportError",
        "InvalidResponseError": "VoucherifyError",
        "ResponseTooLargeError": "InvalidResponseError",
        "PaginationError": "VoucherifyError",
        "ClientClosedError": "VoucherifyError",
        "WaitTimeoutError": "VoucherifyError",
    }


def test_docs_errors_md_draws_the_same_tree() -> None:
    """``docs/errors.md``, which the docstring says draws the same tree, does."""
    page = Path(__file__).parent.parent / "docs" / "errors.md"
    if not page.exists():
        pytest.skip("docs/errors.md is not written yet")
    drawn = parse_tree(page.read_text("utf-8"))
    assert {name: parent for name, (parent, _) in drawn.items()} == {
        name: parent for name, (parent, _) in DOCSTRING_TREE.items()
    }


@pytest.mark.parametrize(
    "name",
    sorted(name for name, (parent, _) in DOCSTRING_TREE.items() if parent == "VoucherifyAPIError"),
)
def test_statuses_drawn_in_the_tree_map_to_that_class(name: str) -> None:
    """The statuses written next to each API error in the tree (``400, 422``, ``5xx``)
    are statuses ``error_from_response`` maps to exactly that class."""
    _, description = DOCSTRING_TREE[name]
    head = description.split(":", 1)[0]
    statuses = [int(code) for code in re.findall(r"\b(\d{3})\b", head)]
    if "5xx" in head:
        statuses += [500, 501, 502, 503, 504, 520, 599]
    assert statuses, f"no status drawn for {name}: {description!r}"
    for status in statuses:
        assert type(error_from_response(answer(status), now=NOW)) is ERROR_CLASSES[name], status


def test_every_exported_error_of_the_package_is_a_voucherify_error() -> None:
    """Every exception class in ``voucherify_async.__all__`` subclasses ``VoucherifyError``,
    and they are exactly the classes of the tree."""
    exported = {
        name: value
        for name in voucherify_async.__all__
        if isinstance(value := getattr(voucherify_async, name), type)
        and issubclass(value, BaseException)
    }
    assert set(exported) == set(DOCSTRING_TREE)
    for value in exported.values():
        assert issubclass(value, VoucherifyError)


ERROR_INSTANCES: list[VoucherifyError] = [
    VoucherifyError("root problem", request_id="v-1"),
    VoucherifyAPIError("teapot", status=418),
    BadRequestError("Invalid query params", status=400, key="invalid_query_params", details="d"),
    AuthenticationError("Unauthorized", status=401, method="GET", url=URL),
    NotFoundError("Resource not found", status=404, resource_id="aa_1"),
    RateLimitError("Too many", status=429, retry_after=7.0),
    RateLimitError("Too many", status=429),
    ServerError("Bad gateway", status=502),
    TransportError("connection refused", method="GET", url=URL),
    RequestTimeoutError("no answer within 5 s"),
    InvalidResponseError("bad", status=200, field="$.id", excerpt="{}", request_id="v-2"),
    InvalidResponseError("bad"),
    PaginationError("stuck", end_date="2022-09-05T11:40:17.098Z"),
]


@pytest.mark.parametrize("error", ERROR_INSTANCES, ids=lambda e: type(e).__name__)
def test_repr_and_str_work_and_name_the_class_and_message(error: VoucherifyError) -> None:
    """``repr()`` names the class and ``str()`` carries the message, for every class."""
    assert repr(error).startswith(f"{type(error).__name__}(")
    assert error.message in str(error)
    assert error.message in repr(error)


def test_str_of_an_api_error_names_status_key_details_request_and_request_id() -> None:
    """``str()`` gathers everything support needs in one line."""
    error = BadRequestError(
        "Invalid query params",
        status=400,
        key="invalid_query_params",
        details="Property .end_date cannot be recognized",
        request_id="v-9",
        method="GET",
        url=URL,
    )
    text = str(error)
    for part in (
        "HTTP 400",
        "invalid_query_params",
        "Invalid query params",
        ".end_date",
        URL,
        "v-9",
    ):
        assert part in text


def test_rate_limit_error_says_how_long_to_wait() -> None:
    """``retry_after`` is kept and shown."""
    error = RateLimitError("Too many", status=429, retry_after=7.0)
    assert error.retry_after == 7.0
    assert "retry after 7 s" in str(error)
    assert RateLimitError("x", status=429).retry_after is None


def test_pagination_error_keeps_the_end_date() -> None:
    """``PaginationError.end_date`` is the bound the stream was stuck at."""
    assert PaginationError("stuck", end_date="2022-09-05").end_date == "2022-09-05"


# --- errors built from responses --------------------------------------------------------------


def test_vendor_400_example_becomes_a_bad_request_error_with_every_field() -> None:
    """The documented 400 (bad ``end_date``) fills ``code``, ``key``, ``message``,
    ``details`` and ``request_id``; ``str()`` names status, key, details, request id."""
    error = error_from_response(answer(400, json.dumps(LIST_400).encode()), now=NOW)
    assert type(error) is BadRequestError
    assert error.status == 400
    assert error.code == 400
    assert error.key == "invalid_query_params"
    assert error.message == "Invalid query params"
    assert error.details == LIST_400["details"]
    assert error.request_id == "v-0c54493e444b0f61a6"
    assert error.resource_id is None
    assert error.resource_type is None
    assert (error.method, error.url) == ("GET", URL)
    text = str(error)
    for part in ("400", "invalid_query_params", LIST_400["details"], "v-0c54493e444b0f61a6"):
        assert part in text


def test_vendor_404_example_becomes_a_not_found_error_with_every_field() -> None:
    """The documented 404 fills every attribute, ``resource_id`` and ``resource_type`` too."""
    error = error_from_response(answer(404, json.dumps(GET_404).encode()), now=NOW)
    assert type(error) is NotFoundError
    assert error.status == 404
    assert error.code == 404
    assert error.key == "not_found"
    assert error.message == "Resource not found"
    assert error.details == "Cannot find async_action with id aa_0aeb82bd55d5beffb"
    assert error.request_id == "v-0aeb88df54c82af560"
    assert error.resource_id == "aa_0aeb82bd55d5beffb"
    assert error.resource_type == "async_action"
    text = str(error)
    for part in ("404", "not_found", error.details, "v-0aeb88df54c82af560"):
        assert part in text


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (300, VoucherifyAPIError),
        (304, VoucherifyAPIError),
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, AuthenticationError),
        (404, NotFoundError),
        (405, VoucherifyAPIError),
        (408, VoucherifyAPIError),
        (409, VoucherifyAPIError),
        (418, VoucherifyAPIError),
        (422, BadRequestError),
        (429, RateLimitError),
        (500, ServerError),
        (501, ServerError),
        (502, ServerError),
        (503, ServerError),
        (504, ServerError),
        (599, ServerError),
    ],
)
@pytest.mark.parametrize(
    "body",
    [b"", b'{"code": 1, "message": "m"}', b"<html>proxy</html>"],
    ids=["empty", "json", "html"],
)
def test_status_decides_the_exception_class(
    status: int, expected: type[VoucherifyAPIError], body: bytes
) -> None:
    """The class is chosen by status alone (418 and other unmapped 4xx: the plain
    ``VoucherifyAPIError``), whatever the body; ``status`` is kept."""
    error = error_from_response(answer(status, body), now=NOW)
    assert type(error) is expected
    assert isinstance(error, VoucherifyError)
    assert error.status == status
    assert str(status) in str(error)


@pytest.mark.parametrize("header", ["X-Request-Id", "x-request-id", "X-REQUEST-ID"])
@pytest.mark.parametrize(
    "body", [b"", b"<html></html>", b'{"message": "m"}'], ids=["empty", "html", "json"]
)
def test_request_id_comes_from_the_header_when_the_body_has_none(header: str, body: bytes) -> None:
    """Without ``request_id`` in the body, the ``X-Request-Id`` header (any case) fills it."""
    error = error_from_response(answer(500, body, {header: "v-header"}), now=NOW)
    assert error.request_id == "v-header"
    assert "v-header" in str(error)


def test_a_non_json_body_leaves_api_fields_none() -> None:
    """Without the API's JSON, ``code``/``key``/``details``/``resource_*`` are ``None``."""
    error = error_from_response(answer(400, b"<html></html>", {}), now=NOW)
    assert (error.code, error.key, error.details, error.request_id) == (None,) * 4
    assert (error.resource_id, error.resource_type) == (None, None)


def test_html_502_becomes_a_server_error_quoting_the_start_of_the_page() -> None:
    """A proxy's HTML 502 is a ``ServerError`` whose message quotes the page's start
    (not the whole page) and names the content type."""
    page = b"<html><head><title>502 Bad Gateway</title></head><body>" + b"x" * 10_000
    error = error_from_response(answer(502, page, {"Content-Type": "text/html"}), now=NOW)
    assert type(error) is ServerError
    assert "<html><head><title>502 Bad Gateway</title>" in error.message
    assert "text/html" in error.message
    assert "<html><head><title>502 Bad Gateway</title>" in str(error)
    assert len(str(error)) < 1000


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirect_is_an_error_that_does_not_leak_the_location_query(status: int) -> None:
    """A redirect is not followed: the error says so and names the target without its
    query (which may carry tokens), in ``message``, ``str()`` and ``repr()``."""
    location = "https://elsewhere.example/v1/async-actions?token=s3cr3t&x=1"
    error = error_from_response(
        answer(status, b"", {"Location": location, "X-Request-Id": "v-r"}), now=NOW
    )
    assert type(error) is VoucherifyAPIError
    assert "redirect" in error.message
    assert "not followed" in error.message
    assert "https://elsewhere.example/v1/async-actions" in error.message
    for text in (error.message, str(error), repr(error)):
        assert "s3cr3t" not in text
        assert "token=" not in text
    assert error.request_id == "v-r"


def test_redirect_without_location_is_still_an_error() -> None:
    """A 302 without ``Location`` still says the redirect was not followed."""
    error = error_from_response(answer(302, b"", {}), now=NOW)
    assert type(error) is VoucherifyAPIError
    assert "not followed" in error.message


WRONG_TYPES = {
    "code": "400",
    "key": 5,
    "message": 7,
    "details": ["a"],
    "request_id": 1,
    "resource_id": {"id": "x"},
    "resource_type": True,
}


@pytest.mark.parametrize("status", [400, 404, 429, 500])
def test_json_error_body_with_wrong_types_leaves_those_fields_none(status: int) -> None:
    """Mistyped fields of an error body are dropped (``None``), never a crash, and the
    message says the body had none."""
    error = error_from_response(answer(status, json.dumps(WRONG_TYPES).encode(), {}), now=NOW)
    assert error.status == status
    assert (error.code, error.key, error.details, error.request_id) == (None,) * 4
    assert (error.resource_id, error.resource_type) == (None, None)
    assert error.message
    assert str(status) in str(error)


@pytest.mark.parametrize("code", [True, 400.0, None, [400]])
def test_error_code_must_be_an_int(code: object) -> None:
    """``code`` is kept only when it is an ``int`` (a ``bool`` is not)."""
    body = json.dumps({"code": code, "message": "m"}).encode()
    assert error_from_response(answer(400, body), now=NOW).code is None


@pytest.mark.parametrize("body", [b"[1, 2]", b'"text"', b"null", b"42", b"\xff\xfe"])
def test_error_body_that_is_json_but_not_an_object_gives_a_message(body: bytes) -> None:
    """A JSON array, string, number, null or non-UTF-8 bytes as an error body: the
    error still builds, its message describing the body."""
    error = error_from_response(answer(503, body), now=NOW)
    assert type(error) is ServerError
    assert error.key is None
    assert error.message


def test_deeply_nested_error_body_still_gives_an_error() -> None:
    """An error body nested deeper than the JSON parser allows still yields the error
    for its status (a ``ServerError`` here), not a ``RecursionError``."""
    error = error_from_response(answer(502, b"[" * 100_000), now=NOW)
    assert type(error) is ServerError


@settings(max_examples=200, deadline=None)
@given(
    status=st.integers(300, 599),
    body=st.binary(max_size=100)
    | st.dictionaries(
        st.sampled_from(["code", "key", "message", "details", "request_id", "resource_id"]),
        st.none() | st.booleans() | st.integers() | st.text() | st.lists(st.integers()),
    ).map(lambda d: json.dumps(d).encode()),
    headers=st.dictionaries(
        st.sampled_from(["Retry-After", "X-Rate-Limit-Retry", "X-Request-Id", "Location"]),
        st.text(),
    ),
)
def test_any_error_answer_gives_an_api_error_and_never_raises(
    status: int, body: bytes, headers: dict[str, str]
) -> None:
    """Whatever the status (3xx-5xx), body and headers, ``error_from_response`` returns
    a ``VoucherifyAPIError`` with that status, whose ``str()`` and ``repr()`` work."""
    error = error_from_response(answer(status, body, headers), now=NOW)
    assert isinstance(error, VoucherifyAPIError)
    assert error.status == status
    assert str(status) in str(error)
    assert repr(error)
    assert error.code is None or type(error.code) is int
    assert error.key is None or type(error.key) is str


# --- 429 and how long to wait --------------------------------------------------------------


def http_date(epoch: float) -> str:
    return format_datetime(datetime.fromtimestamp(epoch, UTC), usegmt=True)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param({"Retry-After": "7"}, 7.0, id="Retry-After seconds"),
        pytest.param({"retry-after": " 7 "}, 7.0, id="any case, spaces"),
        pytest.param({"Retry-After": "0"}, 0.0, id="zero"),
        pytest.param({"Retry-After": http_date(NOW + 30)}, 30.0, id="HTTP date in 30 s"),
        pytest.param({"Retry-After": http_date(NOW - 30)}, 0.0, id="HTTP date in the past: 0"),
        pytest.param({"X-Rate-Limit-Retry": str(int(NOW) + 12)}, 12.0, id="epoch seconds"),
        pytest.param({"x-rate-limit-retry": str(int(NOW) - 5)}, 0.0, id="epoch in the past: 0"),
        pytest.param(
            {"Retry-After": "3", "X-Rate-Limit-Retry": str(int(NOW) + 50)},
            3.0,
            id="Retry-After wins",
        ),
        pytest.param(
            {"Retry-After": "soon", "X-Rate-Limit-Retry": str(int(NOW) + 50)},
            50.0,
            id="unusable Retry-After: X-Rate-Limit-Retry",
        ),
        pytest.param({}, None, id="absent"),
        pytest.param({"X-Rate-Limit-Remaining": "0"}, None, id="only other headers"),
        pytest.param({"Retry-After": "soon"}, None, id="garbage"),
        pytest.param({"Retry-After": ""}, None, id="empty"),
        pytest.param({"Retry-After": "Wed, 99 Foo 2015"}, None, id="broken date"),
        pytest.param({"X-Rate-Limit-Retry": "tomorrow"}, None, id="garbage epoch"),
    ],
)
def test_retry_after_seconds(headers: dict[str, str], expected: float | None) -> None:
    """``Retry-After`` (seconds or HTTP date), else ``X-Rate-Limit-Retry`` (epoch
    seconds) relative to ``now``; never negative; ``None`` when absent or unusable."""
    result = retry_after_seconds(headers, now=NOW)
    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected, abs=1e-6)


def test_non_finite_numbers_are_garbage_not_a_wait() -> None:
    """``nan``/``inf`` are not seconds (RFC 9110: ``delay-seconds = 1*DIGIT``): in either
    header they are unusable, ``None``, not a wait of 0 s (retry at once) or forever."""
    results = {
        (header, value): retry_after_seconds({header: value}, now=NOW)
        for header in ("Retry-After", "X-Rate-Limit-Retry")
        for value in ("nan", "NaN", "inf", "-inf", "Infinity")
    }
    assert results == dict.fromkeys(results)


@pytest.mark.parametrize("header", ["Retry-After", "X-Rate-Limit-Retry"])
def test_negative_numbers_are_never_a_negative_wait(header: str) -> None:
    """A negative number gives 0 or ``None``, never a negative wait."""
    result = retry_after_seconds({header: "-5"}, now=NOW)
    assert result is None or result == 0


def test_retry_after_seconds_defaults_now_to_the_clock() -> None:
    """Without ``now``, an epoch in ``X-Rate-Limit-Retry`` is measured from the clock."""
    future = datetime.now(UTC).timestamp() + 100
    result = retry_after_seconds({"X-Rate-Limit-Retry": str(future)})
    assert result is not None
    assert 90 < result <= 100


@given(
    retry_after=st.none() | st.text(max_size=40),
    reset=st.none() | st.text(max_size=40) | st.floats(0, 4e9).map(str),
    now=st.floats(0, 4e9),
)
def test_retry_after_seconds_is_never_negative_nor_nan(
    retry_after: str | None, reset: str | None, now: float
) -> None:
    """Whatever the headers say, the result is ``None`` or a wait of 0 s or more."""
    headers = {}
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    if reset is not None:
        headers["X-Rate-Limit-Retry"] = reset
    result = retry_after_seconds(headers, now=now)
    assert result is None or (result >= 0 and not math.isnan(result))


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param({"Retry-After": "7"}, 7.0, id="Retry-After: 7"),
        pytest.param({"Retry-After": http_date(NOW + 20)}, 20.0, id="HTTP date"),
        pytest.param({"X-Rate-Limit-Retry": str(int(NOW) + 9)}, 9.0, id="X-Rate-Limit-Retry"),
        pytest.param({"X-Rate-Limit-Retry": str(int(NOW) - 9)}, 0.0, id="past: 0, not negative"),
        pytest.param({}, None, id="absent"),
        pytest.param({"Retry-After": "later"}, None, id="garbage"),
    ],
)
def test_429_becomes_a_rate_limit_error_with_retry_after(
    headers: dict[str, str], expected: float | None
) -> None:
    """A 429 is a ``RateLimitError`` whose ``retry_after`` is what the headers ask."""
    body = b'{"code": 429, "key": "too_many_requests", "message": "Too many requests"}'
    error = error_from_response(answer(429, body, headers), now=NOW)
    assert type(error) is RateLimitError
    assert error.key == "too_many_requests"
    if expected is None:
        assert error.retry_after is None
        assert "retry after" not in str(error)
    else:
        assert error.retry_after == pytest.approx(expected, abs=1e-6)
        assert f"retry after {expected:g} s" in str(error)
