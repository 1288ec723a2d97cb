"""The fake Async Actions API: :class:`FakeVoucherify`, a real HTTP server on loopback.

It serves ``GET /v1/async-actions`` and ``GET /v1/async-actions/{id}`` as the
vendor's spec describes them (auth, query checks, error bodies, headers), from an
in-memory store it keeps sorted, and injects the faults queued in ``fake.faults``.
It also serves the six POSTs that start a bulk or metadata update
(``/v1/{customers,products,vouchers}/{bulk,metadata}/async``, endpoint ``"start"``),
which answer ``202 {"async_action_id": ...}`` and add an action that progresses
with the clock (see ``_lifecycle``).

This module owns the fake's life (start, stop, a thread of its own) and its
store. Its knobs are the attrs fields of ``_settings.FakeSettings``, which it
inherits; how a request is answered is ``_answers``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import threading
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from voucherify_async.testing._answers import (
    Answerer,
    RecordedRequest,
    VendorErrorServer,
    current,
)
from voucherify_async.testing._clock import SYSTEM_CLOCK, Clock
from voucherify_async.testing._faults import FaultQueue
from voucherify_async.testing._lifecycle import ActionOutcome, ActionTimeline, LiveAction
from voucherify_async.testing._settings import FAKE_APP_ID, FAKE_APP_TOKEN, FakeSettings, Order
from voucherify_async.testing._store import ActionStore

__all__ = ["FakeVoucherify"]

# The progress steps of an action started by a POST (see FakeVoucherify.start_action).
_POST_STEPS = 4
# Backstop for aiohttp's graceful shutdown; the fake's own waits end at once on stop.
_SHUTDOWN_TIMEOUT = 1.0
_THREAD_JOIN_TIMEOUT = 30.0


class FakeVoucherify(FakeSettings):
    """A fake Voucherify Async Actions API, served over real HTTP on ``127.0.0.1``.

    Usage::

        async with FakeVoucherify(actions=generate_actions(1_000, seed=7)) as fake:
            ...  # point the client at fake.base_url

    Knobs (plain attributes, changeable while serving, and checked whenever set, as
    at construction: a bad value raises and the old one stays):

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
                ``action_duration`` < 0, ``action_outcome`` unknown, a credential
                not a string nor ``None``, a flag not a bool).
        """
        super().__init__(
            app_id=app_id,
            app_token=app_token,
            oauth_token=oauth_token,
            end_date_inclusive=end_date_inclusive,
            send_has_more=send_has_more,
            order=order,
            shuffle_ties=shuffle_ties,
            latency=latency,
            default_limit=default_limit,
            rate_limit=rate_limit,
            action_duration=action_duration,
            action_outcome=action_outcome,
            clock=clock,
            seed=seed,
        )
        #: Every request received, oldest first; clear it at will.
        self.requests: list[RecordedRequest] = []
        #: The faults to inject: ``fake.faults.push(Fault.status(503))``.
        self.faults = FaultQueue()
        # Seeded on purpose (noqa: S311): the same seed makes the same ids.
        self._started_actions = random.Random(f"started-actions:{seed}")  # noqa: S311
        self._store_lock = threading.Lock()
        self._store = ActionStore.build(actions)
        self._answerer = self._make_answerer()
        self._runner: web.BaseRunner | None = None
        self._stopping: asyncio.Event | None = None
        self._base_url: str | None = None
        self._thread: threading.Thread | None = None

    # -- the store ----------------------------------------------------------------

    @property
    def actions(self) -> list[Mapping[str, Any]]:
        """A new list of the stored actions, newest first (ties in the order given).

        Started actions (:meth:`start_action`, start POSTs) appear as a new dict of
        their state now.
        """
        now = self.clock.monotonic()
        return [current(action, now) for action in self._store.newest_first()]

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
        clock = self.clock
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
        server = VendorErrorServer(self._answerer, access_log=None)
        runner = web.ServerRunner(server, handle_signals=False, shutdown_timeout=_SHUTDOWN_TIMEOUT)
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

    # -- what the answering part is handed -----------------------------------------

    def _make_answerer(self) -> Answerer:
        return Answerer(
            settings=self,
            faults=self.faults,
            record=self._record,
            store=self._current_store,
            start=self._start_from_post,
            wait=self._wait,
        )

    def _record(self, request: RecordedRequest) -> None:
        self.requests.append(request)

    def _current_store(self) -> ActionStore:
        return self._store

    def _start_from_post(self, action_type: str, request_id: str) -> str:
        """Start the action of a start POST, with the knobs' duration and outcome."""
        return self._start(
            action_type,
            request_id=request_id,
            duration=self.action_duration,
            outcome=self.action_outcome,
            result=None,
            steps=_POST_STEPS,
        )

    async def _wait(self, seconds: float) -> None:
        """Sleep ``seconds``, or less if the fake starts stopping meanwhile."""
        stopping = self._stopping
        assert stopping is not None  # requests only arrive while serving
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await stopping.wait()
