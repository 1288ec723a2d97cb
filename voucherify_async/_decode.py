"""Turning an HTTP answer into data or an exception, without touching the network.

Pure: imports neither aiohttp nor asyncio (the "sans-I/O" half of the client). The
transport hands over a :class:`RawResponse` (status, headers, body); this module
decides what it means: a page, an action, or a :class:`VoucherifyError` that says
what went wrong, where, and with which request id.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, NoReturn, TypeVar

import attrs
import cattrs

from ._convert import make_converter, parse_timestamp
from ._exceptions import (
    AuthenticationError,
    BadRequestError,
    InvalidResponseError,
    NotFoundError,
    RateLimitError,
    ServerError,
    VoucherifyAPIError,
    VoucherifyError,
)
from ._models import AsyncAction, AsyncActionDetails, AsyncActionsPage

__all__ = [
    "JSON_BACKEND",
    "TEXT_LIMIT",
    "ListedPage",
    "PageEntry",
    "RawResponse",
    "decode_details",
    "decode_page",
    "error_from_response",
    "header",
    "header_number",
    "parse_json",
    "read_page",
    "reset_delay",
    "retry_after_seconds",
    "server_wait",
    "shorten",
    "summary",
]


def _select_loads() -> tuple[str, Callable[[bytes], Any]]:
    """orjson when installed (the optional ``speed`` extra: it decoded these payloads 41%
    faster than json here, docs/performance.md), else the standard json module. Both
    raise a ValueError for a body that is not JSON; json also a RecursionError."""
    try:
        import orjson
    except ImportError:
        return "json", json.loads
    return "orjson", orjson.loads


JSON_BACKEND, loads = _select_loads()
"""Which JSON decoder the client uses, and the function it calls."""


_T = TypeVar("_T")
_MS_FACTOR = 500.0
_ONE_DAY = 86_400.0
_SECONDS = re.compile(r"[0-9]{1,10}(?:\.[0-9]{1,6})?")
_EXCERPT = 200
TEXT_LIMIT = 500
"""The most characters of the server's text (a message, a key, details) copied into an
error message or a log record; the whole body stays on the error as ``body``."""

_FAST = make_converter()
_DETAILED = make_converter(detailed_validation=True)
_STRUCTURE_ACTION = _FAST.get_structure_hook(AsyncAction)


_CASE_INSENSITIVE = frozenset({"CIMultiDictProxy", "CIMultiDict"})


def header(headers: Mapping[str, str], name: str) -> str | None:
    """The value of header ``name`` in ``headers``, whatever the case of its key, or ``None``."""
    value = headers.get(name)
    if value is not None or type(headers).__name__ in _CASE_INSENSITIVE:
        return value  # aiohttp's headers: ``get`` ignores case already
    lowered = name.lower()
    for key, candidate in headers.items():
        if key.lower() == lowered:
            return candidate
    return None


@attrs.frozen
class RawResponse:
    """What the transport received: ``status``, ``headers`` (looked up without regard
    to case), ``body`` bytes, and the ``method`` and ``url`` of the request."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    method: str
    url: str

    def header(self, name: str) -> str | None:
        """The value of header ``name``, whatever the case of its key, or ``None``."""
        return header(self.headers, name)

    @property
    def request_id(self) -> str | None:
        """The API's request id from the ``X-Request-Id`` header, if sent (cut to 100
        characters: it goes into messages)."""
        value = self.header("X-Request-Id")
        return shorten(value, 100) if value else None

    def excerpt(self) -> str:
        """The start of the body as text, for error messages."""
        text = self.body[:_EXCERPT].decode("utf-8", errors="replace")
        return text + ("..." if len(self.body) > _EXCERPT else "")


def shorten(text: str, limit: int = TEXT_LIMIT) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


def summary(error: VoucherifyError) -> str:
    """What went wrong, in a few words for a log record: the status and key (or the
    error's class) and the start of the message; never the details, which often
    repeat the message."""
    if isinstance(error, VoucherifyAPIError):
        head = f"HTTP {error.status} {error.key}" if error.key else f"HTTP {error.status}"
    else:
        head = type(error).__name__
    return f"{head}: {shorten(error.message, 80)}"


def parse_json(response: RawResponse) -> Any:
    """Decode a 2xx body as JSON.

    Raises:
        InvalidResponseError: the body is empty, not UTF-8 JSON, or cut short.
    """
    try:
        return loads(response.body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        content_type = response.header("Content-Type") or "no content type"
        raise InvalidResponseError(
            shorten(f"the body is not JSON ({shorten(content_type, 100)}): {exc}"),
            status=response.status,
            excerpt=response.excerpt(),
            request_id=response.request_id,
            method=response.method,
            url=response.url,
            body=response.body,
        ) from exc


def _text(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    return shorten(value) if isinstance(value, str) else None


def error_from_response(response: RawResponse, *, now: float | None = None) -> VoucherifyAPIError:
    """Build the exception for a non-2xx answer, of the class its status calls for.

    The API's JSON error body fills ``code``, ``key``, ``message``, ``details``,
    ``request_id``, ``resource_id`` and ``resource_type``, each cut to
    :data:`TEXT_LIMIT` characters; any other body (a proxy's HTML page, JSON in
    another shape) gives a message that quotes its start. The whole body is the
    error's ``body``. A 429 gets ``retry_after``. Redirects are errors too: the
    client does not follow them, so that the credentials never reach another origin.
    """
    status = response.status
    body: Any = None
    with contextlib.suppress(ValueError, UnicodeDecodeError, RecursionError):
        body = loads(response.body)
    if isinstance(body, Mapping):
        code = body.get("code")
        fields: dict[str, Any] = {
            "code": code if isinstance(code, int) and not isinstance(code, bool) else None,
            "key": _text(body, "key"),
            "details": _text(body, "details"),
            "resource_id": _text(body, "resource_id"),
            "resource_type": _text(body, "resource_type"),
        }
        message = _text(body, "message") or (
            f"the error body is not in the API's shape: {response.excerpt()!r}"
        )
        request_id = _text(body, "request_id") or response.request_id
    else:
        fields = {}
        content_type = shorten(response.header("Content-Type") or "no content type", 100)
        message = f"the error body is not the API's JSON ({content_type}): {response.excerpt()!r}"
        request_id = response.request_id
    if 300 <= status < 400:
        location = shorten(_without_secrets(response.header("Location")), 200)
        message = f"unexpected redirect to {location}; redirects are not followed"
    common: dict[str, Any] = {
        "status": status,
        "body": response.body,
        "request_id": request_id,
        "method": response.method,
        "url": response.url,
        **fields,
    }
    if status == 429:
        return RateLimitError(message, retry_after=server_wait(response, now=now), **common)
    return _ERROR_CLASSES.get(status, ServerError if status >= 500 else VoucherifyAPIError)(
        message, **common
    )


def _without_secrets(location: str | None) -> str:
    """The origin and path of a redirect target, without user info, query or fragment."""
    if not location:
        return "nowhere"
    path = location.split("?", 1)[0].split("#", 1)[0]
    scheme, sep, rest = path.partition("://")
    if sep:
        authority, slash, tail = rest.partition("/")
        path = f"{scheme}://{authority.rpartition('@')[2]}{slash}{tail}"
    return path


_ERROR_CLASSES: dict[int, type[VoucherifyAPIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: AuthenticationError,
    404: NotFoundError,
    422: BadRequestError,
}


def header_number(value: str | None) -> float | None:
    """A header's value as a finite number, surrounding whitespace ignored; ``None``
    when it is missing or not one."""
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def reset_delay(value: str | None, *, now: float) -> float | None:
    """Seconds until a rate-limit reset such as ``X-Rate-Limit-Retry``, read liberally
    against ``now`` (epoch seconds): epoch milliseconds (500 times ``now`` or more),
    epoch seconds (from a day before ``now``), else seconds from now. Never negative;
    ``None`` when it is not a number."""
    number = header_number(value)
    if number is None:
        return None
    if now > 0 and number >= now * _MS_FACTOR:
        number = number / 1000.0 - now
    elif number >= now - _ONE_DAY:
        number -= now
    return max(0.0, number)


def retry_after_seconds(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """How long the ``Retry-After`` header asks to wait (seconds or an HTTP date), else
    ``X-Rate-Limit-Retry`` (see :func:`reset_delay`); ``None`` if neither is usable.

    Never negative. ``now`` is the current epoch time (default: ``time.time()``).
    """
    current = time.time() if now is None else now
    wait = _retry_after(headers, current)
    return (
        wait
        if wait is not None
        else reset_delay(header(headers, "X-Rate-Limit-Retry"), now=current)
    )


def _retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """The ``Retry-After`` header in seconds (RFC 9110: digits, or an HTTP date)."""
    retry_after = header(headers, "Retry-After")
    if retry_after is None:
        return None
    text = retry_after.strip()
    if _SECONDS.fullmatch(text):  # RFC 9110 says digits; a fraction is tolerated
        return float(text)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:
        return None
    return max(0.0, moment.timestamp() - now)


def server_wait(response: RawResponse, *, now: float | None = None) -> float | None:
    """The wait the server asks for before a retry: ``Retry-After`` on any status, and
    for a 429 without it ``X-Rate-Limit-Retry`` (which every answer carries, so that
    on other statuses it only says when the rate-limit window resets)."""
    current = time.time() if now is None else now
    if response.status == 429:
        return retry_after_seconds(response.headers, now=current)
    return _retry_after(response.headers, current)


def _format_structure_error(exc: BaseException, _type: Any) -> str:
    if isinstance(exc, KeyError):
        return "required field missing"
    return f"invalid value ({exc})"


def _structure(payload: Any, model: type[_T], *, path: str, response: RawResponse) -> _T:
    try:
        return _FAST.structure(payload, model)
    except Exception:  # noqa: BLE001  # any failure is explained by the detailed pass
        _explain(payload, model, path=path, response=response)


def _explain(payload: Any, model: Any, *, path: str, response: RawResponse) -> NoReturn:
    """Raise the :class:`InvalidResponseError` that says which field of ``payload`` is bad."""
    try:
        _DETAILED.structure(payload, model)
    except cattrs.BaseValidationError as exc:
        problems = cattrs.transform_error(exc, path=path, format_exception=_format_structure_error)
    except Exception as exc:  # noqa: BLE001  # a hook failing outside cattrs' bookkeeping
        problems = [f"{_format_structure_error(exc, model)} @ {path}"]
    else:  # pragma: no cover  # only reached if the fast and detailed converters disagree
        problems = [f"cannot structure the payload @ {path}"]
    message, _, field = problems[0].rpartition(" @ ")
    more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
    error = _invalid(f"the payload cannot be read: {message}{more}", field, response)
    error.excerpt = None  # the field path says more than the start of the body
    raise error


def _invalid(message: str, field: str, response: RawResponse) -> InvalidResponseError:
    return InvalidResponseError(
        shorten(message),
        status=response.status,
        field=shorten(field, 200),
        excerpt=response.excerpt(),
        body=response.body,
        request_id=response.request_id,
        method=response.method,
        url=response.url,
    )


def _object(payload: Any, response: RawResponse) -> Mapping[str, Any]:
    if not isinstance(payload, Mapping):
        raise _invalid(f"expected a JSON object, got {type(payload).__name__}", "$", response)
    return payload


class PageEntry:
    """One action of a list page before it is structured: its ``id``, its
    ``created_at`` (aware UTC) and the raw JSON ``item``; what the cursor needs."""

    __slots__ = ("created_at", "id", "item")

    def __init__(self, id: str, created_at: datetime, item: Mapping[str, Any]) -> None:
        self.id = id
        self.created_at = created_at
        self.item = item


@attrs.frozen
class ListedPage:
    """A list answer, checked but not yet structured into models.

    ``entries`` are the page's actions in the API's order; ``has_more_reported`` is
    the API's flag (``None`` when left out).
    """

    entries: list[PageEntry]
    has_more_reported: bool | None
    response: RawResponse

    def has_more(self, limit: int | None) -> bool:
        """The API's ``has_more``, or, when it left it out, whether the page is full."""
        if self.has_more_reported is not None:
            return self.has_more_reported
        return len(self.entries) >= limit if limit is not None else bool(self.entries)

    def structure_one(self, entry: PageEntry) -> AsyncAction:
        """Structure one entry of this page into an :class:`AsyncAction`.

        Raises:
            InvalidResponseError: it cannot be structured; the message names the
                field by its path in the whole page.
        """
        action = structure_action(entry.item)
        if action is None:  # explained against the whole page, for its indices
            self._explain()
        return action

    def structure(self, entries: list[PageEntry] | None = None) -> list[AsyncAction]:
        """Structure ``entries`` (default: all of the page) into :class:`AsyncAction` models.

        Raises:
            InvalidResponseError: an action cannot be structured; the message names
                the field by its path in the whole page (``$.async_actions[3].progress``).
        """
        chosen = self.entries if entries is None else entries
        try:
            return _FAST.structure([entry.item for entry in chosen], list[AsyncAction])
        except Exception:  # noqa: BLE001  # explained against the whole page, for its indices
            self._explain()

    def _explain(self) -> NoReturn:
        """Raise the error that names the first bad field, by its path in the whole page."""
        items = [entry.item for entry in self.entries]
        _explain(items, list[AsyncAction], path="$.async_actions", response=self.response)


def read_page(response: RawResponse) -> ListedPage:
    """Check a 2xx list answer and read each action's ``id`` and ``created_at``.

    Raises:
        InvalidResponseError: not JSON, not an object, ``async_actions`` missing or
            not a list, ``has_more`` not a boolean, or an action without a string
            ``id`` or an ISO-8601 ``created_at`` (the message names the field).
    """
    body = _object(parse_json(response), response)
    items = body.get("async_actions")
    if not isinstance(items, list):
        problem = "required field missing" if items is None else "expected a list"
        raise _invalid(f"async_actions: {problem}", "$.async_actions", response)
    reported = body.get("has_more")
    if reported is not None and not isinstance(reported, bool):
        problem = f"expected a boolean, got {type(reported).__name__}"
        raise _invalid(f"has_more: {problem}", "$.has_more", response)
    entries: list[PageEntry] = []
    add = entries.append
    try:
        for item in items:
            action_id = item["id"]
            if type(action_id) is not str:
                raise TypeError(f"expected a string, got {type(action_id).__name__}")
            created_at = item["created_at"] = parse_timestamp(item["created_at"])  # parsed once
            add(PageEntry(action_id, created_at, item))
    except Exception:  # noqa: BLE001  # explained field by field below
        _explain(items, list[AsyncAction], path="$.async_actions", response=response)
    return ListedPage(entries=entries, has_more_reported=reported, response=response)


def structure_action(item: Any) -> AsyncAction | None:
    """``item`` structured into an :class:`AsyncAction`, or ``None`` if it cannot be
    (``ListedPage.structure_one`` then says why, by the item's path in its page)."""
    try:
        action: AsyncAction = _STRUCTURE_ACTION(item, AsyncAction)
    except Exception:  # noqa: BLE001  # explained by the caller's ordinary path
        return None
    return action


def decode_page(response: RawResponse, *, limit: int | None) -> AsyncActionsPage:
    """Read a 2xx list answer into an :class:`AsyncActionsPage`.

    ``limit`` is the limit the request sent (``None``: none sent); when the answer
    leaves ``has_more`` out, the page has more exactly when it is full.

    Raises:
        InvalidResponseError: not JSON, not an object, ``async_actions`` missing or
            not a list, ``has_more`` not a boolean, or an action that cannot be
            structured (the message names the field, e.g.
            ``$.async_actions[3].created_at``).
    """
    page = read_page(response)
    return AsyncActionsPage(
        async_actions=tuple(page.structure()),
        has_more=page.has_more(limit),
        has_more_reported=page.has_more_reported,
    )


def decode_details(response: RawResponse) -> AsyncActionDetails:
    """Read a 2xx get answer into an :class:`AsyncActionDetails`.

    Raises:
        InvalidResponseError: not JSON, not an object, or a field that cannot be
            structured (the message names it).
    """
    body = _object(parse_json(response), response)
    return _structure(body, AsyncActionDetails, path="$", response=response)
