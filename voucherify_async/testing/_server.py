"""The fake Async Actions API: :class:`FakeVoucherify`, a real HTTP server on loopback.

It serves ``GET /v1/async-actions`` and ``GET /v1/async-actions/{id}`` as the
vendor's spec describes them (auth, query checks, error bodies, headers), from an
in-memory store it keeps sorted, and injects the faults queued in ``fake.faults``.
It also serves the six POSTs that start a bulk or metadata update
(``/v1/{customers,products,vouchers}/{bulk,metadata}/async``, endpoint ``"start"``),
which answer ``202 {"async_action_id": ...}`` and add an action that progresses
with the clock (see ``_lifecycle``). Each request is handled in this order:

1. route it (endpoint, and whether the method is the endpoint's); take its fault
   from ``fake.faults`` (only API requests with the right method take faults);
   count it against ``rate_limit`` (only API requests with the right method and
   no fault count); record it in ``fake.requests``;
2. wait ``latency`` (plus a ``Fault.delay``'s seconds);
3. unknown path: 404; a method the path does not serve: 405;
4. the fault's answer, if any; else 429 if over the rate limit; else check
   credentials (401), the query or body (400), and answer.

Every answer carries ``X-Request-Id`` (echoed as ``request_id`` in error bodies)
and ``X-Rate-Limit-Limit`` / ``X-Rate-Limit-Remaining``: constant without
``rate_limit``, the window's state with it (plus ``X-Rate-Limit-Retry``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import threading
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future
from http import HTTPStatus
from types import TracebackType
from typing import Any, Literal, Self

import attrs
from aiohttp import web

from voucherify_async.testing._clock import SYSTEM_CLOCK, Clock
from voucherify_async.testing._faults import Endpoint, Fault, FaultQueue
from voucherify_async.testing._lifecycle import (
    ActionOutcome,
    ActionTimeline,
    LiveAction,
    checked_duration,
    checked_outcome,
)
from voucherify_async.testing._query import InvalidQuery, parse_end_date, parse_limit
from voucherify_async.testing._rate_limit import (
    FixedWindow,
    WindowState,
    checked_rate_limit,
    epoch_text,
)
from voucherify_async.testing._store import ActionStore, list_body

__all__ = [
    "FAKE_APP_ID",
    "FAKE_APP_TOKEN",
    "FakeVoucherify",
    "Order",
    "RecordedRequest",
]

#: The ``X-App-Id`` a :class:`FakeVoucherify` accepts by default.
FAKE_APP_ID = "fake-app-id"
#: The ``X-App-Token`` a :class:`FakeVoucherify` accepts by default.
FAKE_APP_TOKEN = "fake-app-token"  # noqa: S105 - a published test credential, not a secret

Order = Literal["newest_first", "shuffled"]
_ORDERS = ("newest_first", "shuffled")

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
# The progress steps of an action started by a POST (see FakeVoucherify.start_action).
_POST_STEPS = 4
# Without rate_limit neither value is enforced: constant, high enough that no client slows down.
_RATE_LIMIT = "2000"
_RATE_LIMIT_REMAINING = "1999"
# The vendor does not document the values of X-Rate-Limit-Type; this one is made up.
_RATE_LIMIT_TYPE = "requests_per_minute"
# Backstop for aiohttp's graceful shutdown; the fake's own waits end at once on stop.
_SHUTDOWN_TIMEOUT = 1.0
_THREAD_JOIN_TIMEOUT = 30.0
_JSON = "application/json"
_HTML_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>{title}</title></head>\n"
    "<body><center><h1>{title}</h1></center><hr><center>nginx</center></body></html>\n"
)


@attrs.frozen(kw_only=True)
class RecordedRequest:
    """One request the fake received, as it arrived.

    ``query`` holds the first value of each parameter, decoded; ``headers`` has
    lower-case names (``headers["x-app-id"]``); ``body`` is the raw body (``b""``
    for a GET). ``fault`` is the fault injected into it, if any; ``rate_limited``
    is true when it was refused with 429 for exceeding ``rate_limit`` (not for a
    ``Fault.status(429)``).
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    fault: Fault | None = None
    body: bytes = b""
    rate_limited: bool = False


class FakeVoucherify:
    """A fake Voucherify Async Actions API, served over real HTTP on ``127.0.0.1``.

    Usage::

        async with FakeVoucherify(actions=generate_actions(1_000, seed=7)) as fake:
            ...  # point the client at fake.base_url

    Knobs (plain attributes, changeable while serving):

    - ``app_id`` / ``app_token``: the accepted ``X-App-Id`` / ``X-App-Token``;
      ``None`` accepts any non-empty value. ``oauth_token``: when set,
      ``Authorization: Bearer <oauth_token>`` is accepted too; when ``None`` and
      both ``app_id`` and ``app_token`` are ``None``, any non-empty bearer token is.
    - ``end_date_inclusive``: list actions created at or before ``end_date``
      (``True``) or strictly before it (``False``, the default). The API does not
      document which.
    - ``send_has_more``: ``False`` leaves ``has_more`` out of list answers, as older
      API versions did.
    - ``order``: ``"newest_first"``, or ``"shuffled"`` (the items of each page in a
      seeded random order; which items are on the page does not change).
    - ``shuffle_ties``: actions created in the same millisecond come in a different
      order on each request, so a page boundary inside such a tie returns a random
      subset of it (the default keeps ties in a stable order).
    - ``latency``: seconds to wait before every answer.
    - ``default_limit``: the page size when the query has no ``limit``. The API
      does not document its default; 10 is an assumption.
    - ``rate_limit``: ``(requests, per_seconds)`` enforces that many API requests
      per fixed window (shared by all credentials, like a project's limit) and
      sends the window's ``X-Rate-Limit-*`` headers; a request beyond it gets 429.
      ``None`` (the default) enforces nothing. Setting it starts a fresh window.
    - ``action_duration`` / ``action_outcome``: how long an action started by a
      POST takes to finish (seconds, default 1.0), and how it ends (``"DONE"`` or
      ``"FAILED"``).

    ``seed`` fixes every random choice the fake makes (request ids, shuffles, the
    ids and results of started actions). ``clock`` (read-only) is where the fake
    reads time: the system's by default, a :class:`ManualClock` for tests that
    must not sleep.
    """

    def __init__(
        self,
        *,
        actions: Iterable[Mapping[str, Any]] = (),
        app_id: str | None = FAKE_APP_ID,
        app_token: str | None = FAKE_APP_TOKEN,
        oauth_token: str | None = None,
        end_date_inclusive: bool = False,
        send_has_more: bool = True,
        order: Order = "newest_first",
        shuffle_ties: bool = False,
        latency: float = 0.0,
        default_limit: int = 10,
        rate_limit: tuple[int, float] | None = None,
        action_duration: float = 1.0,
        action_outcome: ActionOutcome = "DONE",
        clock: Clock = SYSTEM_CLOCK,
        seed: int = 0,
    ) -> None:
        """Make a fake holding ``actions`` (get bodies, with ``result``); it serves once started.

        Raises:
            TypeError, ValueError: as :meth:`set_actions`, or a knob out of range
                (``order`` unknown, ``latency`` < 0, ``default_limit`` < 1,
                ``rate_limit`` not ``None`` nor ``(int >= 1, seconds > 0)``,
                ``action_duration`` < 0, ``action_outcome`` unknown).
        """
        self._clock = clock
        self._limiter: FixedWindow | None = None
        self.app_id = app_id
        self.app_token = app_token
        self.oauth_token = oauth_token
        self.end_date_inclusive = end_date_inclusive
        self.send_has_more = send_has_more
        self.order = order
        self.shuffle_ties = shuffle_ties
        self.latency = latency
        self.default_limit = default_limit
        self.rate_limit = rate_limit
        self.action_duration = action_duration
        self.action_outcome = action_outcome
        #: Every request received, oldest first; clear it at will.
        self.requests: list[RecordedRequest] = []
        #: The faults to inject: ``fake.faults.push(Fault.status(503))``.
        self.faults = FaultQueue()
        self._seed = seed
        # Seeded on purpose (noqa: S311): the same seed makes the same ids and shuffles.
        self._request_ids = random.Random(f"request-ids:{seed}")  # noqa: S311
        self._shuffles = random.Random(f"shuffles:{seed}")  # noqa: S311
        self._started_actions = random.Random(f"started-actions:{seed}")  # noqa: S311
        self._store_lock = threading.Lock()
        self._store = ActionStore.build(actions)
        self._runner: web.AppRunner | None = None
        self._stopping: asyncio.Event | None = None
        self._base_url: str | None = None
        self._thread: threading.Thread | None = None

    # -- knobs that need checking -------------------------------------------------

    @property
    def order(self) -> Order:
        """``"newest_first"`` or ``"shuffled"``; setting another value raises ValueError."""
        return self._order

    @order.setter
    def order(self, value: Order) -> None:
        if value not in _ORDERS:
            raise ValueError(f"order must be 'newest_first' or 'shuffled', not {value!r}")
        self._order = value

    @property
    def latency(self) -> float:
        """Seconds added before every answer; setting a negative value raises ValueError."""
        return self._latency

    @latency.setter
    def latency(self, value: float) -> None:
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"latency must be finite and >= 0, not {value}")
        self._latency = value

    @property
    def default_limit(self) -> int:
        """The page size without ``limit`` in the query; setting a value < 1 raises ValueError."""
        return self._default_limit

    @default_limit.setter
    def default_limit(self, value: int) -> None:
        if value < 1:
            raise ValueError(f"default_limit must be >= 1, not {value}")
        self._default_limit = value

    @property
    def rate_limit(self) -> tuple[int, float] | None:
        """``(requests, per_seconds)`` enforced per fixed window, or ``None`` for no limit.

        Setting it (even to the same value) starts a fresh window; setting a value
        that is not ``None`` nor ``(int >= 1, finite seconds > 0)`` raises
        TypeError or ValueError.
        """
        limiter = self._limiter
        return None if limiter is None else (limiter.limit, limiter.per_seconds)

    @rate_limit.setter
    def rate_limit(self, value: tuple[int, float] | None) -> None:
        checked = checked_rate_limit(value)
        self._limiter = None if checked is None else FixedWindow(*checked)

    @property
    def action_duration(self) -> float:
        """Seconds an action started by a POST takes to finish; negative raises ValueError."""
        return self._action_duration

    @action_duration.setter
    def action_duration(self, value: float) -> None:
        self._action_duration = checked_duration(value)

    @property
    def action_outcome(self) -> ActionOutcome:
        """How an action started by a POST ends: ``"DONE"`` or ``"FAILED"`` (else ValueError)."""
        return self._action_outcome

    @action_outcome.setter
    def action_outcome(self, value: ActionOutcome) -> None:
        self._action_outcome = checked_outcome(value)

    @property
    def clock(self) -> Clock:
        """Where the fake reads time (read-only): given at construction."""
        return self._clock

    @property
    def seed(self) -> int:
        """The seed given at construction (read-only)."""
        return self._seed

    # -- the store ----------------------------------------------------------------

    @property
    def actions(self) -> list[Mapping[str, Any]]:
        """A new list of the stored actions, newest first (ties in the order given).

        Started actions (:meth:`start_action`, start POSTs) appear as a new dict of
        their state now.
        """
        now = self._clock.monotonic()
        return [_current(action, now) for action in self._store.newest_first()]

    def set_actions(self, actions: Iterable[Mapping[str, Any]]) -> None:
        """Replace the stored actions (get bodies; list answers leave ``result`` out).

        The mappings are kept, not copied: do not change them while they are served.

        Raises:
            TypeError: an action is not a mapping, or its ``id`` / ``created_at`` is
                not a string.
            ValueError: an ``id`` is repeated, or a ``created_at`` is not an ISO-8601
                timestamp of at most millisecond precision.
        """
        store = ActionStore.build(actions)
        with self._store_lock:
            self._store = store

    def add_actions(self, actions: Iterable[Mapping[str, Any]]) -> None:
        """Add actions to the store (for example ones "created" while a client pages).

        Raises:
            TypeError: as :meth:`set_actions`.
            ValueError: as :meth:`set_actions`, also for an ``id`` already stored.
        """
        with self._store_lock:
            self._store = self._store.merged(actions)

    def start_action(
        self,
        type: str = "CUSTOMERS.METADATA_UPDATE",
        *,
        duration: float | None = None,
        outcome: ActionOutcome = "DONE",
        result: Mapping[str, Any] | None = None,
        steps: int = 4,
    ) -> str:
        """Add an action created now, which progresses with the clock; return its id.

        It is ``ENQUEUED`` (progress 0) for the first of ``steps + 1`` equal slots of
        ``duration`` seconds (``action_duration`` when ``None``), ``IN_PROGRESS``
        with rising ``progress`` in the next ``steps`` slots, and ``outcome`` with
        progress 100, ``processing_time`` and ``result`` once ``duration`` has
        passed. ``updated_at`` follows each change; ``operation_status`` (bulk and
        metadata updates) is ``UNKNOWN`` until the end. ``result`` ``None`` makes a
        realistic one for ``type`` (as :func:`generate_actions` does, seeded).

        Raises:
            TypeError: ``type`` is not a string, ``steps`` not an int, ``result`` not
                a mapping.
            ValueError: ``type`` is empty, or unknown while ``result`` is ``None``;
                ``duration`` < 0 or not finite; ``steps`` < 0; ``outcome`` is not
                ``"DONE"`` or ``"FAILED"``.
        """
        return self._start(
            type,
            request_id=None,
            duration=self.action_duration if duration is None else duration,
            outcome=outcome,
            result=result,
            steps=steps,
        )

    def _start(
        self,
        action_type: str,
        *,
        request_id: str | None,
        duration: float,
        outcome: str,
        result: Mapping[str, Any] | None,
        steps: int,
    ) -> str:
        """Add a started action (``request_id``: of the POST that started it, else drawn)."""
        clock = self._clock
        with self._store_lock:
            rng = self._started_actions
            if request_id is None:
                request_id = f"v-{rng.getrandbits(72):018x}"
            action_id = f"aa_{rng.getrandbits(72):018x}"
            while self._store.get(action_id) is not None:  # pragma: no cover - 1 in 2**72
                action_id = f"aa_{rng.getrandbits(72):018x}"
            started = clock.monotonic()
            timeline = ActionTimeline.start(
                rng,
                action_id=action_id,
                action_type=action_type,
                request_id=request_id,
                created_ms=math.floor(clock.time() * 1000),
                duration=duration,
                steps=steps,
                outcome=outcome,
                result=result,
            )
            self._store = self._store.merged(
                [LiveAction(timeline, clock, started)], before_ties=True
            )
        return action_id

    # -- serving ------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``: no trailing slash, no ``/v1``.

        Raises:
            RuntimeError: the fake is not serving.
        """
        if self._base_url is None:
            raise RuntimeError("FakeVoucherify is not serving: use 'async with' or run_in_thread()")
        return self._base_url

    async def start(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        """Serve from the running event loop, on ``host`` (loopback by default) and
        ``port`` (0: a free one; ``base_url`` says which).

        Raises:
            RuntimeError: the fake is already serving.
            OSError: the address could not be bound (taken, or not this machine's).
        """
        if self._runner is not None:
            raise RuntimeError("FakeVoucherify is already serving")
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=_SHUTDOWN_TIMEOUT
        )
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except BaseException:
            await runner.cleanup()
            raise
        bound_host, bound_port = runner.addresses[0][:2]
        self._stopping = asyncio.Event()
        self._runner = runner
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        self._base_url = f"http://{shown}:{bound_port}"

    async def stop(self) -> None:
        """Stop serving, at once: the port closes, and pending waits (``latency``,
        ``Fault.delay``) are cut short so their requests get answered now.

        Call it from the loop that started the fake. Does nothing when not serving.
        """
        runner = self._runner
        if runner is None:
            return
        assert self._stopping is not None  # set together with _runner
        self._runner = None
        self._base_url = None
        # Refuse new connections first, so that no client reconnects into the
        # closing server, then end the waits, then close the open connections.
        for site in runner.sites:
            await site.stop()
        self._stopping.set()
        await runner.cleanup()

    async def __aenter__(self) -> Self:
        """Start serving (see :meth:`start`)."""
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop serving (see :meth:`stop`)."""
        await self.stop()

    @contextlib.contextmanager
    def run_in_thread(self) -> Iterator[Self]:
        """Serve from a background thread with its own event loop, for the ``with`` block.

        For synchronous code, code on another event loop, or a CLI under test.
        Knobs, faults and the store may be changed from any thread meanwhile.

        Raises:
            RuntimeError: the fake is already serving, or its thread did not stop.
            OSError: no port could be bound.
        """
        if self._runner is not None or self._thread is not None:
            raise RuntimeError("FakeVoucherify is already serving")
        ready: Future[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = Future()
        thread = threading.Thread(target=self._thread_main, args=(ready,), name="FakeVoucherify")
        self._thread = thread
        thread.start()
        try:
            loop, done = ready.result()
        except BaseException:
            thread.join()
            self._thread = None
            raise
        try:
            yield self
        finally:
            loop.call_soon_threadsafe(done.set)
            thread.join(_THREAD_JOIN_TIMEOUT)
            self._thread = None
            if thread.is_alive():  # pragma: no cover - stop() ends every wait at once
                raise RuntimeError("FakeVoucherify's thread did not stop")

    def _thread_main(self, ready: Future[tuple[asyncio.AbstractEventLoop, asyncio.Event]]) -> None:
        try:
            asyncio.run(self._serve_until_stopped(ready))
        except BaseException as exc:
            if ready.done():  # a failure while stopping: let threading report it
                raise
            ready.set_exception(exc)  # a failure to start: run_in_thread() raises it

    async def _serve_until_stopped(
        self, ready: Future[tuple[asyncio.AbstractEventLoop, asyncio.Event]]
    ) -> None:
        await self.start()
        done = asyncio.Event()
        ready.set_result((asyncio.get_running_loop(), done))
        try:
            await done.wait()
        finally:
            await self.stop()

    def __repr__(self) -> str:
        where = self._base_url or "not serving"
        return f"<FakeVoucherify {where}, {len(self._store)} actions>"

    # -- answering ----------------------------------------------------------------

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        body = await request.read()
        # From here to the record, nothing awaits: requests take faults, count against
        # the rate limit and are recorded in one order.
        request_id = f"v-{self._request_ids.getrandbits(72):018x}"
        endpoint, action_id = _route(request.path)
        served = endpoint is not None and request.method == _METHOD_OF[endpoint]
        fault = None
        if served:
            assert endpoint is not None  # served implies routed
            fault = self.faults.take(endpoint)
        clock = self._clock
        monotonic_now, epoch_now = clock.monotonic(), clock.time()
        limiter = self._limiter
        window: WindowState | None = None
        if limiter is not None:
            counted = served and fault is None
            window = limiter.take(monotonic_now) if counted else limiter.peek(monotonic_now)
        rate_limited = window is not None and not window.allowed
        self.requests.append(
            RecordedRequest(
                method=request.method,
                path=request.path,
                query=dict(request.query),
                headers={name.lower(): value for name, value in request.headers.items()},
                fault=fault,
                body=body,
                rate_limited=rate_limited,
            )
        )
        wait = self.latency + (fault.seconds if fault is not None else 0.0)
        if wait:
            await self._wait(wait)

        headers = {"X-Request-Id": request_id}
        if window is None:
            headers["X-Rate-Limit-Limit"] = _RATE_LIMIT
            headers["X-Rate-Limit-Remaining"] = _RATE_LIMIT_REMAINING
        else:
            headers.update(window.headers(monotonic_now=monotonic_now, epoch_now=epoch_now))
        if endpoint is None:
            details = f"Cannot {request.method} {request.path}"
            missing = _error(404, "not_found", "Resource not found", details, request_id)
            return _json(404, missing, headers)
        if not served:
            details = f"{request.method} is not allowed on {request.path}"
            refusal = _error(405, "method_not_allowed", "Method not allowed", details, request_id)
            headers["Allow"] = _METHOD_OF[endpoint]
            return _json(405, refusal, headers)
        if fault is not None and fault.kind not in ("delay", "truncated"):
            return _fault_response(request, fault, request_id, headers, epoch_now)
        if rate_limited:
            assert limiter is not None  # rate_limited implies a window
            return _json(429, _too_many_requests(limiter, request_id), headers)

        if endpoint == "start":
            status, answer = self._answer_start(request, body, request_id)
        else:
            status, answer = self._answer(request, endpoint, action_id, request_id)
        truncated = fault is not None and fault.kind == "truncated"
        return _json(status, answer, headers, truncated=truncated)

    async def _wait(self, seconds: float) -> None:
        """Sleep ``seconds``, or less if the fake starts stopping meanwhile."""
        stopping = self._stopping
        assert stopping is not None  # requests only arrive while serving
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await stopping.wait()

    def _answer(
        self, request: web.BaseRequest, endpoint: Endpoint, action_id: str, request_id: str
    ) -> tuple[int, Mapping[str, Any]]:
        if not self._authorized(request.headers):
            return 401, _unauthorized(request_id)
        store = self._store
        now = self._clock.monotonic()
        if endpoint == "get":
            action = store.get(action_id)
            if action is None:
                body = _error(
                    404,
                    "not_found",
                    "Resource not found",
                    f"Cannot find async_action with id {action_id}",
                    request_id,
                )
                body["resource_id"] = action_id
                body["resource_type"] = "async_action"
                return 404, body
            return 200, _current(action, now)

        query = request.query
        try:
            limit = parse_limit(query.get("limit"), default=self.default_limit)
            end_date = parse_end_date(query.get("end_date"))
        except InvalidQuery as exc:
            return 400, _error(
                400, "invalid_query_params", "Invalid query params", exc.details, request_id
            )
        page = store.page(
            limit=limit,
            before_ms=None
            if end_date is None
            else end_date.first_ms_after(inclusive=self.end_date_inclusive),
            shuffle_ties=self._shuffles if self.shuffle_ties else None,
        )
        actions = [_current(action, now) for action in page.actions]
        if self.order == "shuffled":
            self._shuffles.shuffle(actions)
        return 200, list_body(actions, page.has_more if self.send_has_more else None)

    def _answer_start(
        self, request: web.BaseRequest, body: bytes, request_id: str
    ) -> tuple[int, Mapping[str, Any]]:
        """Check credentials and the body, start the path's action: 202 with its id."""
        if not self._authorized(request.headers):
            return 401, _unauthorized(request_id)
        problem = _body_problem(request.path, body)
        if problem is not None:
            return 400, _error(400, "invalid_payload", "Invalid payload", problem, request_id)
        action_id = self._start(
            _START_PATHS[request.path],
            request_id=request_id,
            duration=self.action_duration,
            outcome=self.action_outcome,
            result=None,
            steps=_POST_STEPS,
        )
        return 202, {"async_action_id": action_id}

    def _authorized(self, headers: Mapping[str, str]) -> bool:
        app_id = headers.get("X-App-Id")
        app_token = headers.get("X-App-Token")
        if (
            app_id
            and app_token
            and self.app_id in (None, app_id)
            and self.app_token in (None, app_token)
        ):
            return True
        authorization = headers.get("Authorization") or ""
        if self.oauth_token is not None:
            return authorization == f"Bearer {self.oauth_token}"
        # Accepting any key pair (app_id and app_token None): any bearer token too.
        bearer = authorization.removeprefix("Bearer ")
        return (
            self.app_id is None
            and self.app_token is None
            and bearer != authorization
            and bool(bearer.strip())
        )


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


def _error(code: int, key: str, message: str, details: str, request_id: str) -> dict[str, Any]:
    """The vendor's error body."""
    return {
        "code": code,
        "key": key,
        "message": message,
        "details": details,
        "request_id": request_id,
    }


def _current(action: Mapping[str, Any], monotonic_now: float) -> Mapping[str, Any]:
    """A started action's state at ``monotonic_now``; any other action as stored."""
    if isinstance(action, LiveAction):
        return action.at(monotonic_now)
    return action


def _unauthorized(request_id: str) -> dict[str, Any]:
    return _error(
        401,
        "unauthorized",
        "Unauthorized",
        "Missing or invalid credentials: send X-App-Id and X-App-Token",
        request_id,
    )


def _too_many_requests(limiter: FixedWindow, request_id: str) -> dict[str, Any]:
    details = f"Rate limit of {limiter.limit} requests per {limiter.per_seconds:g} seconds exceeded"
    return _error(429, "too_many_requests", "Too Many Requests", details, request_id)


def _body_problem(path: str, body: bytes) -> str | None:
    """Why the start POST's ``body`` is refused, or ``None`` when it is accepted.

    Only its JSON type is checked, as the vendor documents each body: an object
    for the metadata updates (``{"source_ids" or "codes": [...], "metadata":
    {...}}``), an array of objects for the bulk updates.
    """
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
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
    """A JSON answer; ``truncated`` keeps only the first half of the encoded body."""
    encoded = json.dumps(body, separators=(",", ":")).encode()
    if truncated:
        encoded = encoded[: len(encoded) // 2]
    return web.Response(
        status=status,
        body=encoded,
        content_type=_JSON,
        charset="utf-8",
        headers=headers,
    )


def _fault_response(
    request: web.BaseRequest,
    fault: Fault,
    request_id: str,
    headers: dict[str, str],
    epoch_now: float,
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
    try:
        phrase = HTTPStatus(fault.code).phrase
        key = HTTPStatus(fault.code).name.lower()
    except ValueError:
        phrase, key = "Error", "error"
    if fault.kind == "html":
        return web.Response(
            status=fault.code,
            text=_HTML_PAGE.format(title="Service Notice"),
            content_type="text/html",
            headers=headers,
        )
    # A status fault.
    if fault.retry_after is not None:
        headers["Retry-After"] = str(fault.retry_after)
    if fault.code == 429:
        assert fault.retry_after is not None  # Fault.status() sets it for 429
        headers["X-Rate-Limit-Type"] = _RATE_LIMIT_TYPE
        headers["X-Rate-Limit-Remaining"] = "0"
        headers["X-Rate-Limit-Retry"] = epoch_text(math.ceil(epoch_now) + fault.retry_after)
    if fault.as_html:
        return web.Response(
            status=fault.code,
            text=_HTML_PAGE.format(title=f"{fault.code} {phrase}"),
            content_type="text/html",
            headers=headers,
        )
    body = _error(fault.code, key, phrase, f"{phrase} (injected by FakeVoucherify)", request_id)
    return _json(fault.code, body, headers)


def _drop(request: web.BaseRequest) -> web.StreamResponse:
    """Close the connection; aiohttp then gives up writing the response it is handed."""
    transport = request.transport
    if transport is not None:
        transport.close()
    return web.Response()
