"""How the fake answers a request: routing, credentials, query and body checks, faults.

:class:`Answerer` serves every request of one
:class:`~voucherify_async.testing.FakeVoucherify`, in this order:

1. read the body (one that cannot be read gets 413 when over ``client_max_size``,
   1 MiB after decompression, or 400 in a broken transfer or content encoding, at
   once: no fault, not counted);
2. route it (endpoint, and whether the method is the endpoint's); take its fault
   from ``fake.faults`` (only API requests with the right method take faults);
   count it against ``rate_limit`` (only API requests with the right method and
   no fault count); record it in ``fake.requests``;
3. wait ``latency`` (plus a ``Fault.delay``'s seconds);
4. unknown path: 404; a method the path does not serve: 405;
5. the fault's answer, if any; else 429 if over the rate limit; else check
   credentials (401), the query or body (400), and answer.

Every answer carries ``X-Request-Id`` (echoed as ``request_id`` in error bodies)
and ``X-Rate-Limit-Limit`` / ``X-Rate-Limit-Remaining``: constant without
``rate_limit``, the window's state with it (plus ``X-Rate-Limit-Retry``).

A request aiohttp refuses before any handler runs (a request line or header over
its limits, a malformed request) is answered by :class:`VendorErrorServer` in
the same shape: the vendor's JSON error body and ``X-Request-Id``.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
from collections.abc import Awaitable, Callable, Mapping
from http import HTTPStatus
from typing import Any

import attrs
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from voucherify_async.testing._faults import Endpoint, Fault, FaultQueue
from voucherify_async.testing._lifecycle import LiveAction
from voucherify_async.testing._query import InvalidQuery, parse_end_date, parse_limit
from voucherify_async.testing._rate_limit import FixedWindow, WindowState, epoch_text
from voucherify_async.testing._settings import FakeSettings, rate_window
from voucherify_async.testing._store import ActionStore, list_body

__all__ = ["Answerer", "RecordedRequest", "VendorErrorServer", "current"]

_LIST_PATH = "/v1/async-actions"
_GET_PREFIX = _LIST_PATH + "/"
#: The POSTs that start an action, and the type of the action each starts. The
#: vendor's async-actions page lists these paths for these types; the answer,
#: ``202 {"async_action_id": "aa_..."}``, is the one its SDKs document.
_START_PATHS = {
    "/v1/customers/bulk/async": "CUSTOMERS.BULK_UPDATE",
    "/v1/customers/metadata/async": "CUSTOMERS.METADATA_UPDATE",
    "/v1/products/bulk/async": "PRODUCTS.BULK_UPDATE",
    "/v1/products/metadata/async": "PRODUCTS.METADATA_UPDATE",
    "/v1/vouchers/bulk/async": "VOUCHERS.BULK_UPDATE",
    "/v1/vouchers/metadata/async": "VOUCHERS.METADATA_UPDATE",
}
_METHOD_OF: dict[Endpoint, str] = {"list": "GET", "get": "GET", "start": "POST"}
# Without rate_limit neither value is enforced: constant, high enough that no client slows down.
_RATE_LIMIT = "2000"
_RATE_LIMIT_REMAINING = "1999"
# The vendor does not document the values of X-Rate-Limit-Type; this one is made up.
_RATE_LIMIT_TYPE = "requests_per_minute"
# The longest text of aiohttp's own that goes into an error's details.
_MAX_DETAILS = 200
_JSON = "application/json"
_HTML_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>{title}</title></head>\n"
    "<body><center><h1>{title}</h1></center><hr><center>nginx</center></body></html>\n"
)
# The key and message of each status the fake answers by itself (not by a fault).
_STATUS_TEXT = {
    400: ("bad_request", "Bad Request"),
    404: ("not_found", "Resource not found"),
    405: ("method_not_allowed", "Method not allowed"),
    413: ("request_entity_too_large", "Request Entity Too Large"),
    431: ("request_header_fields_too_large", "Request Header Fields Too Large"),
    500: ("internal_server_error", "Internal Server Error"),
    504: ("gateway_timeout", "Gateway Timeout"),
}


@attrs.frozen(kw_only=True)
class RecordedRequest:
    """One request the fake received, as it arrived.

    ``query`` holds the first value of each parameter, decoded; ``headers`` has
    lower-case names (``headers["x-app-id"]``); ``body`` is the body as sent,
    decompressed when it came with a ``Content-Encoding`` (``b""`` for a GET, and
    for a body the fake could not read). ``fault`` is the fault
    injected into it, if any; ``rate_limited`` is true when it was refused with 429
    for exceeding ``rate_limit`` (not for a ``Fault.status(429)``).
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    fault: Fault | None = None
    body: bytes = b""
    rate_limited: bool = False


@attrs.frozen(kw_only=True)
class _Admission:
    """What was decided about a request before any wait: its id, route, fault, window."""

    request_id: str
    endpoint: Endpoint | None
    action_id: str
    served: bool
    fault: Fault | None
    window: WindowState | None
    monotonic_now: float
    epoch_now: float

    @property
    def rate_limited(self) -> bool:
        return self.window is not None and not self.window.allowed


@attrs.define(kw_only=True)
class Answerer:
    """Answers the requests of one fake, reading its knobs at each request.

    ``record`` keeps a :class:`RecordedRequest`; ``store`` is the store now;
    ``start`` adds an action of a type for the request id of the POST that started
    it and returns its id; ``wait`` sleeps, or less when the fake stops.
    """

    settings: FakeSettings
    faults: FaultQueue
    record: Callable[[RecordedRequest], None]
    store: Callable[[], ActionStore]
    start: Callable[[str, str], str]
    wait: Callable[[float], Awaitable[None]]
    # Seeded on purpose (noqa: S311): the same seed makes the same ids and shuffles.
    _request_ids: random.Random = attrs.field(
        init=False,
        default=attrs.Factory(
            lambda self: random.Random(f"request-ids:{self.settings.seed}"),  # noqa: S311
            takes_self=True,
        ),
    )
    _shuffles: random.Random = attrs.field(
        init=False,
        default=attrs.Factory(
            lambda self: random.Random(f"shuffles:{self.settings.seed}"),  # noqa: S311
            takes_self=True,
        ),
    )

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        """The answer to ``request`` (see the module docstring for the order of checks)."""
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            details = f"The request body is larger than {request.client_max_size} bytes"
            return self._unreadable(request, 413, details)
        except (HttpProcessingError, web.RequestPayloadError) as exc:
            # A broken transfer or content encoding (gzip that is not gzip, say).
            return self._unreadable(request, 400, f"The request body cannot be read: {exc}")
        # From here to the record, nothing awaits: requests take faults, count against
        # the rate limit and are recorded in one order.
        admission = self._admit(request, body)
        fault = admission.fault
        wait = self.settings.latency + (fault.seconds if fault is not None else 0.0)
        if wait:
            await self.wait(wait)
        headers = _headers(
            admission.request_id,
            admission.window,
            monotonic_now=admission.monotonic_now,
            epoch_now=admission.epoch_now,
        )
        if fault is not None and fault.kind not in ("delay", "truncated"):
            return _fault_response(request, fault, admission, headers)  # fault: served
        refusal = self._refusal(request, admission, headers)
        if refusal is not None:
            return refusal
        if admission.endpoint == "start":
            status, answer = self._answer_start(request, body, admission.request_id)
        else:
            status, answer = self._answer_read(request, admission)
        truncated = fault is not None and fault.kind == "truncated"
        return _json(status, answer, headers, truncated=truncated)

    def new_request_id(self) -> str:
        """A fresh ``X-Request-Id``, drawn from the fake's seed."""
        return f"v-{self._request_ids.getrandbits(72):018x}"

    def error_response(self, status: int, details: str, *, close: bool = False) -> web.Response:
        """The vendor's error body for ``status``, with a new request id and the rate headers.

        The rate headers show the window without counting anything. ``close`` asks
        aiohttp to close the connection after the answer.
        """
        request_id = self.new_request_id()
        key, message = _STATUS_TEXT.get(status, ("error", "Error"))
        body = _error(status, key, message, _excerpt(details), request_id)
        clock = self.settings.clock
        monotonic_now, epoch_now = clock.monotonic(), clock.time()
        limiter = rate_window(self.settings)
        window = None if limiter is None else limiter.peek(monotonic_now)
        headers = _headers(request_id, window, monotonic_now=monotonic_now, epoch_now=epoch_now)
        response = _json(status, body, headers)
        if close:
            response.force_close()
        return response

    def _unreadable(self, request: web.BaseRequest, status: int, details: str) -> web.Response:
        """Record a request whose body could not be read; answer ``status``, closing."""
        self.record(_recorded(request, body=b"", fault=None, rate_limited=False))
        return self.error_response(status, details, close=True)

    def _admit(self, request: web.BaseRequest, body: bytes) -> _Admission:
        """Draw the request's id, route it, take its fault, count it, record it."""
        request_id = self.new_request_id()
        endpoint, action_id = _route(request.path)
        served = endpoint is not None and request.method == _METHOD_OF[endpoint]
        fault = self.faults.take(endpoint) if served and endpoint is not None else None
        clock = self.settings.clock
        monotonic_now, epoch_now = clock.monotonic(), clock.time()
        limiter = rate_window(self.settings)
        window: WindowState | None = None
        if limiter is not None:
            counted = served and fault is None
            window = limiter.take(monotonic_now) if counted else limiter.peek(monotonic_now)
        admission = _Admission(
            request_id=request_id,
            endpoint=endpoint,
            action_id=action_id,
            served=served,
            fault=fault,
            window=window,
            monotonic_now=monotonic_now,
            epoch_now=epoch_now,
        )
        self.record(_recorded(request, body=body, fault=fault, rate_limited=admission.rate_limited))
        return admission

    def _refusal(
        self, request: web.BaseRequest, admission: _Admission, headers: dict[str, str]
    ) -> web.Response | None:
        """404 for an unknown path, 405 for a wrong method, 429 over the rate limit."""
        if admission.endpoint is None:
            details = f"Cannot {request.method} {request.path}"
            return _json(404, _error_for(404, details, admission.request_id), headers)
        if not admission.served:
            details = f"{request.method} is not allowed on {request.path}"
            headers["Allow"] = _METHOD_OF[admission.endpoint]
            return _json(405, _error_for(405, details, admission.request_id), headers)
        if admission.rate_limited:
            limiter = rate_window(self.settings)
            assert limiter is not None  # rate_limited implies a window
            return _json(429, _too_many_requests(limiter, admission.request_id), headers)
        return None

    def _answer_read(
        self, request: web.BaseRequest, admission: _Admission
    ) -> tuple[int, Mapping[str, Any]]:
        """The answer of the list or get call, after the credentials check."""
        request_id = admission.request_id
        if not _authorized(self.settings, request.headers):
            return 401, _unauthorized(request_id)
        now = self.settings.clock.monotonic()
        if admission.endpoint == "get":
            action = self.store().get(admission.action_id)
            if action is None:
                return 404, _action_not_found(admission.action_id, request_id)
            return 200, current(action, now)
        try:
            limit = parse_limit(request.query.get("limit"), default=self.settings.default_limit)
            end_date = parse_end_date(request.query.get("end_date"))
        except InvalidQuery as exc:
            message = "Invalid query params"
            return 400, _error(400, "invalid_query_params", message, exc.details, request_id)
        before_ms = None
        if end_date is not None:
            before_ms = end_date.first_ms_after(inclusive=self.settings.end_date_inclusive)
        shuffles = self._shuffles if self.settings.shuffle_ties else None
        page = self.store().page(limit=limit, before_ms=before_ms, shuffle_ties=shuffles)
        actions = [current(action, now) for action in page.actions]
        if self.settings.order == "shuffled":
            self._shuffles.shuffle(actions)
        has_more = page.has_more if self.settings.send_has_more else None
        return 200, list_body(actions, has_more)

    def _answer_start(
        self, request: web.BaseRequest, body: bytes, request_id: str
    ) -> tuple[int, Mapping[str, Any]]:
        """Check credentials and the body, start the path's action: 202 with its id."""
        if not _authorized(self.settings, request.headers):
            return 401, _unauthorized(request_id)
        problem = _body_problem(request.path, body)
        if problem is not None:
            return 400, _error(400, "invalid_payload", "Invalid payload", problem, request_id)
        action_id = self.start(_START_PATHS[request.path], request_id)
        return 202, {"async_action_id": action_id}


class VendorErrorServer(web.Server):
    """aiohttp's low-level server, whose own error answers are in the vendor's shape.

    aiohttp answers a request it cannot parse (a request line or a header over
    8190 bytes, a malformed request line or header, a bad chunk size) without
    calling any handler, with a plain-text body; here that answer is the vendor's
    JSON error body with a new ``X-Request-Id`` (still closing the connection, as
    aiohttp always does after such an error). An exception escaping the handler
    (a bug of the fake) is answered the same way, as 500.
    """

    def __init__(self, answerer: Answerer, **kwargs: Any) -> None:
        """Serve ``answerer.handle``; ``kwargs`` go to each connection's handler (as
        for :class:`aiohttp.web.Server`)."""
        super().__init__(answerer.handle, **kwargs)
        self.answerer = answerer
        self._handler_kwargs = kwargs

    def __call__(self) -> web.RequestHandler:
        """The protocol of one new connection (aiohttp calls this per connection)."""
        loop = asyncio.get_running_loop()
        return _VendorErrorHandler(self, self.answerer, loop=loop, **self._handler_kwargs)


class _VendorErrorHandler(web.RequestHandler):
    """aiohttp's connection protocol, with :meth:`handle_error` answering as the vendor."""

    def __init__(self, server: web.Server, answerer: Answerer, **kwargs: Any) -> None:
        super().__init__(server, **kwargs)
        self._answerer = answerer

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """The vendor's error body for ``status``, ``message`` (aiohttp's reason) as details.

        Raises:
            ConnectionError: an answer was already started (aiohttp's own rule: then
                nothing more can be sent).
        """
        # aiohttp's own logs the error and raises when an answer was already started.
        super().handle_error(request, status, exc, message)
        details = message or HTTPStatus(status).phrase
        return self._answerer.error_response(status, details, close=True)


def _excerpt(text: str) -> str:
    """``text`` cut to ``_MAX_DETAILS`` characters (aiohttp's messages quote the request)."""
    if len(text) <= _MAX_DETAILS:
        return text
    return text[: _MAX_DETAILS - 3] + "..."


def _recorded(
    request: web.BaseRequest, *, body: bytes, fault: Fault | None, rate_limited: bool
) -> RecordedRequest:
    return RecordedRequest(
        method=request.method,
        path=request.path,
        query=dict(request.query),
        headers={name.lower(): value for name, value in request.headers.items()},
        fault=fault,
        body=body,
        rate_limited=rate_limited,
    )


def _headers(
    request_id: str, window: WindowState | None, *, monotonic_now: float, epoch_now: float
) -> dict[str, str]:
    """``X-Request-Id`` and the rate-limit headers: the window's, or the constants."""
    headers = {"X-Request-Id": request_id}
    if window is None:
        headers["X-Rate-Limit-Limit"] = _RATE_LIMIT
        headers["X-Rate-Limit-Remaining"] = _RATE_LIMIT_REMAINING
    else:
        headers.update(window.headers(monotonic_now=monotonic_now, epoch_now=epoch_now))
    return headers


def _route(path: str) -> tuple[Endpoint | None, str]:
    """Which endpoint ``path`` names, and the action id for ``"get"`` (else ``""``)."""
    if path == _LIST_PATH:
        return "list", ""
    if path in _START_PATHS:
        return "start", ""
    if path.startswith(_GET_PREFIX):
        action_id = path[len(_GET_PREFIX) :]
        if action_id and "/" not in action_id:
            return "get", action_id
    return None, ""


def _authorized(settings: FakeSettings, headers: Mapping[str, str]) -> bool:
    """Whether the key pair, or the bearer token, is one the fake accepts."""
    app_id = headers.get("X-App-Id")
    app_token = headers.get("X-App-Token")
    if (
        app_id
        and app_token
        and settings.app_id in (None, app_id)
        and settings.app_token in (None, app_token)
    ):
        return True
    authorization = headers.get("Authorization") or ""
    if settings.oauth_token is not None:
        return authorization == f"Bearer {settings.oauth_token}"
    # Accepting any key pair (app_id and app_token None): any bearer token too.
    bearer = authorization.removeprefix("Bearer ")
    return (
        settings.app_id is None
        and settings.app_token is None
        and bearer != authorization
        and bool(bearer.strip())
    )


def current(action: Mapping[str, Any], monotonic_now: float) -> Mapping[str, Any]:
    """A started action's state at ``monotonic_now``; any other action as stored."""
    if isinstance(action, LiveAction):
        return action.at(monotonic_now)
    return action


def _error(code: int, key: str, message: str, details: str, request_id: str) -> dict[str, Any]:
    """The vendor's error body."""
    return {
        "code": code,
        "key": key,
        "message": message,
        "details": details,
        "request_id": request_id,
    }


def _error_for(status: int, details: str, request_id: str) -> dict[str, Any]:
    """The vendor's error body with the key and message the fake uses for ``status``."""
    key, message = _STATUS_TEXT[status]
    return _error(status, key, message, details, request_id)


def _action_not_found(action_id: str, request_id: str) -> dict[str, Any]:
    details = f"Cannot find async_action with id {action_id}"
    body = _error_for(404, details, request_id)
    body["resource_id"] = action_id
    body["resource_type"] = "async_action"
    return body


def _unauthorized(request_id: str) -> dict[str, Any]:
    details = "Missing or invalid credentials: send X-App-Id and X-App-Token"
    return _error(401, "unauthorized", "Unauthorized", details, request_id)


def _too_many_requests(limiter: FixedWindow, request_id: str) -> dict[str, Any]:
    details = f"Rate limit of {limiter.limit} requests per {limiter.per_seconds:g} seconds exceeded"
    return _error(429, "too_many_requests", "Too Many Requests", details, request_id)


def _body_problem(path: str, body: bytes) -> str | None:
    """Why the start POST's ``body`` is refused, or ``None`` when it is accepted.

    Only its JSON type is checked, as the vendor documents each body: an object
    for the metadata updates (``{"source_ids" or "codes": [...], "metadata":
    {...}}``), an array of objects for the bulk updates. JSON nested deeper than
    Python's recursion limit, or holding an integer longer than ``int()`` reads
    (4,300 digits), is refused too.
    """
    try:
        payload = json.loads(body)
    except RecursionError:
        return "The request body is nested too deeply"
    except ValueError:  # not JSON, not UTF-8, or an integer of over 4,300 digits
        return "The request body is not valid JSON"
    if path.endswith("/bulk/async"):
        if not isinstance(payload, list) or not all(isinstance(item, dict) for item in payload):
            return "The request body must be an array of objects"
    elif not isinstance(payload, dict):
        return "The request body must be an object"
    return None


def _json(
    status: int, body: Mapping[str, Any], headers: dict[str, str], *, truncated: bool = False
) -> web.Response:
    """A JSON answer; ``truncated`` keeps only the first half of the encoded body.

    Text that cannot be encoded as UTF-8 (a lone surrogate decoded from the
    request's path) is escaped as JSON allows, never an error.
    """
    encoded = json.dumps(body, separators=(",", ":")).encode()
    if truncated:
        encoded = encoded[: len(encoded) // 2]
    return web.Response(
        status=status, body=encoded, content_type=_JSON, charset="utf-8", headers=headers
    )


def _fault_response(
    request: web.BaseRequest, fault: Fault, admission: _Admission, headers: dict[str, str]
) -> web.StreamResponse:
    """The answer to a request that ``fault`` (not a delay, not a truncation) took."""
    if fault.kind == "drop":
        return _drop(request)
    if fault.kind == "payload":
        assert fault.json_body is not None  # Fault.payload() always sets it
        return web.Response(
            status=fault.code,
            text=fault.json_body,
            content_type=_JSON,
            charset="utf-8",
            headers=headers,
        )
    if fault.kind == "html":
        return _html(fault.code, "Service Notice", headers)
    return _status_fault(fault, admission, headers)


def _status_fault(
    fault: Fault, admission: _Admission, headers: dict[str, str]
) -> web.StreamResponse:
    """The answer of ``Fault.status``: the vendor's JSON error (or a proxy's HTML page)."""
    try:
        phrase = HTTPStatus(fault.code).phrase
        key = HTTPStatus(fault.code).name.lower()
    except ValueError:
        phrase, key = "Error", "error"
    if fault.retry_after is not None:
        headers["Retry-After"] = str(fault.retry_after)
    if fault.code == 429:
        assert fault.retry_after is not None  # Fault.status() sets it for 429
        headers["X-Rate-Limit-Type"] = _RATE_LIMIT_TYPE
        headers["X-Rate-Limit-Remaining"] = "0"
        retry_at = math.ceil(admission.epoch_now) + fault.retry_after
        headers["X-Rate-Limit-Retry"] = epoch_text(retry_at)
    if fault.as_html:
        return _html(fault.code, f"{fault.code} {phrase}", headers)
    details = f"{phrase} (injected by FakeVoucherify)"
    body = _error(fault.code, key, phrase, details, admission.request_id)
    return _json(fault.code, body, headers)


def _html(status: int, title: str, headers: dict[str, str]) -> web.Response:
    return web.Response(
        status=status,
        text=_HTML_PAGE.format(title=title),
        content_type="text/html",
        headers=headers,
    )


def _drop(request: web.BaseRequest) -> web.StreamResponse:
    """Close the connection; aiohttp then gives up writing the response it is handed."""
    transport = request.transport
    if transport is not None:
        transport.close()
    return web.Response()
