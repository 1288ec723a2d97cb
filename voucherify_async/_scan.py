"""Walking a time range with several walks at once, kept busy by splitting: the iterator
behind ``scan_async_actions``.

The decisions (which walk to split and where, where the history begins, what the
scan's token holds) are ``_split``'s, pure; this module runs them: one task per
walk in progress, each walking an :class:`AsyncActionStream` and handing its pages
over a queue that holds at most ``partitions`` pages, and a task for the range
finder's probes.

The tasks never hold the :class:`AsyncActionScan` itself, only its engine
(``ScanEngine``): when a scan is dropped without :meth:`AsyncActionScan.aclose`,
a ``weakref.finalize`` cancels them and drops the pages waiting.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import weakref
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self

import attrs

from ._exceptions import ClientClosedError
from ._models import AsyncAction
from ._split import (
    HistoryStart,
    ScanState,
    WalkProgress,
    WalkRange,
    encode_scan_token,
    fresh_position,
    plan_split,
)
from ._stream import AsyncActionStream
from ._walk import WalkPosition, position_in_page

__all__ = ["AsyncActionScan", "ScanEngine"]

OpenStream = Callable[[datetime | None, datetime | None, WalkPosition], AsyncActionStream]
"""Opens a stream over ``[since, end)`` standing at a position."""
Probe = Callable[[datetime], Awaitable[datetime | None]]
"""The creation time of the newest action before a moment (one ``limit=1`` request), or ``None``."""

_ONE_MS = timedelta(milliseconds=1)
_END = object()
_CLOSED = "the client was closed while this scan was running"


@attrs.define(eq=False)
class _Walk:
    """One walk: its range (``since`` narrows when it is split), its progress, and where
    the scan's consumer stands in it."""

    since: datetime | None
    end: datetime | None
    start: WalkPosition
    progress: WalkProgress
    yielded: WalkPosition  # right after the last action the consumer took (whole pages)
    stream: AsyncActionStream | None = None
    requests: int = 0
    walked: bool = False  # its stream is over
    outstanding: int = 0  # its pages queued or being yielded


@attrs.frozen
class _Page:
    walk: _Walk
    actions: Sequence[AsyncAction]
    before: WalkPosition
    after: WalkPosition


class ScanEngine:
    """The walks, their tasks and the queue: everything the tasks touch (never the scan)."""

    def __init__(
        self,
        *,
        open_stream: OpenStream,
        probe: Probe,
        walks: Sequence[WalkRange],
        lower: datetime | None,
        finder_top: datetime | None,
        partitions: int,
        page_size: int,
        parameters: str,
        background: set[asyncio.Task[Any]],
        client_closed: Callable[[], bool] = lambda: False,
    ) -> None:
        self.open_stream = open_stream
        self.client_closed = client_closed
        self.probe = probe
        self.partitions = partitions
        self.page_size = page_size
        self.parameters = parameters
        self.background = background
        self.lower = lower
        self.finder_top = finder_top
        self.walks: list[_Walk] = []
        for walk in walks:
            self.walks.append(self._new_walk(walk.since, walk.end, walk.position, None))
        self.pending = collections.deque(self.walks)
        self.queue: asyncio.Queue[_Page | BaseException | object] | None = None
        self.space: asyncio.Semaphore | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.running = 0
        self.closing = False
        self.probe_requests = 0
        self.splits = 0

    @staticmethod
    def _new_walk(
        since: datetime | None, end: datetime | None, start: WalkPosition, rate: float | None
    ) -> _Walk:
        top = start.floor if start.floor is not None else end
        progress = WalkProgress(since, end, top=top, ms_per_page=rate)
        return _Walk(since, end, start, progress, yielded=start)

    # --- tasks -------------------------------------------------------------------------

    def start(self) -> None:
        self.queue = asyncio.Queue()
        self.space = asyncio.Semaphore(max(1, self.partitions))
        if (
            self.partitions > 1
            and self.lower is None
            and any(walk.since is None for walk in self.walks)
        ):  # where the history begins, to split it (one walk alone needs no split)
            self._spawn(self._find_start(HistoryStart(self.finder_top or _now_floor())))
        self.fill()
        if not self.tasks:
            self.queue.put_nowait(_END)

    def _spawn(self, coroutine: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coroutine)
        self.tasks.add(task)
        self.background.add(task)
        task.add_done_callback(self.tasks.discard)
        task.add_done_callback(self.background.discard)

    def fill(self) -> None:
        """Start a walk for every idle slot: a range not started, or a split."""
        while not self.closing and self.running < self.partitions:
            walk = self._next_walk()
            if walk is None:
                return
            self.running += 1
            self._spawn(self._walker(walk))

    def _next_walk(self) -> _Walk | None:
        if self.pending:
            return self.pending.popleft()
        return self._split()

    def _split(self) -> _Walk | None:
        """Split the walk with the most work left (``plan_split``); the new walk, or ``None``."""
        active = [w for w in self.walks if w.stream is not None and not w.progress.done]
        for _attempt in range(4):
            plan = plan_split([walk.progress for walk in active], lower=self.lower)
            if plan is None:
                return None
            index, at = plan
            victim = active[index]
            assert victim.stream is not None  # active
            if not victim.stream.try_split(at):
                # It claimed past ``at`` since its last page reached us, or it is over.
                victim.progress.top = at
                continue
            new = self._new_walk(
                victim.since,
                at,
                fresh_position(victim.stream.position.inclusive),
                victim.progress.ms_per_page,
            )
            victim.since = victim.progress.since = at
            self.walks.append(new)
            self.splits += 1
            return new
        return None

    async def _walker(self, first: _Walk) -> None:
        walk: _Walk | None = first
        try:
            while walk is not None:
                await self._walk(walk)
                walk = None if self.closing else self._next_walk()
        except asyncio.CancelledError:
            if not self.closing:  # nobody but the client cancels these tasks
                self.post(ClientClosedError(_CLOSED))
            raise
        except Exception as exc:  # noqa: BLE001  # handed to the consumer, raised there
            self.post(exc)
        finally:
            self.running -= 1
            if self.running == 0 and not self.pending and not self.closing:
                self._finish()

    def _finish(self) -> None:
        """Every walk is over: the scan ends (and the range finder, if still probing, stops)."""
        assert self.queue is not None  # started
        self.queue.put_nowait(_END)
        self.closing = True
        for task in list(self.tasks):
            if task is not asyncio.current_task():
                task.cancel()

    async def _walk(self, walk: _Walk) -> None:
        stream = self.open_stream(walk.since, walk.end, walk.start)
        walk.stream = stream
        before = stream.position
        pages = stream.pages()
        assert self.queue is not None
        assert self.space is not None
        try:
            async for page in pages:
                after = stream.position
                actions = page.async_actions
                if walk.end is None:  # the newest action: the range need not reach to now
                    walk.end = walk.progress.end = actions[0].created_at + _ONE_MS
                walk.progress.saw_page(
                    newest=actions[0].created_at,
                    oldest=actions[-1].created_at,
                    count=len(actions),
                    previous_floor=before.floor,
                    page_size=self.page_size,
                )
                walk.outstanding += 1
                await self.space.acquire()
                self.queue.put_nowait(_Page(walk, actions, before, after))
                before = after
                self.fill()
        finally:
            await stream.aclose()
            walk.requests += stream.requests_made
            walk.stream = None
        walk.walked = walk.progress.done = True

    async def _find_start(self, finder: HistoryStart) -> None:
        try:
            while probes := finder.probes():
                answers = await asyncio.gather(*(self.probe(point) for point in probes))
                self.probe_requests += len(probes)
                finder.feed(dict(zip(probes, answers, strict=True)))
        except asyncio.CancelledError:
            if not self.closing:
                self.post(ClientClosedError(_CLOSED))
            raise
        except Exception as exc:  # noqa: BLE001  # handed to the consumer, raised there
            self.post(exc)
            return
        self.lower = finder.low
        self.fill()

    def post(self, item: BaseException | object) -> None:
        if self.queue is not None and not self.closing:
            self.queue.put_nowait(item)

    def abandon(self) -> None:
        """Cancel every task and drop the pages waiting (the scan is gone or closing)."""
        self.closing = True
        for task in list(self.tasks):
            with contextlib.suppress(RuntimeError):  # the event loop is closed already
                task.cancel()
        if self.queue is not None:
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(_END)  # wakes a consumer waiting for a page

    # --- bookkeeping ---------------------------------------------------------------------

    @property
    def requests_made(self) -> int:
        made = self.probe_requests
        for walk in self.walks:
            made += walk.requests + (walk.stream.requests_made if walk.stream is not None else 0)
        return made


def _now_floor() -> datetime:
    return datetime.now(UTC)


class AsyncActionScan:
    """Every action of a time range exactly once, walked by several walks at once: ``async for``.

    Returned by :meth:`VoucherifyClient.scan_async_actions`. Nothing is requested
    until the first action is awaited. Then ``partitions`` walks go back in time at
    once, each over its own part of the range, and stay busy: when one is over, the
    walk with the most work left (judged from how much time its pages covered) is
    split at a millisecond, and the older half goes to a new walk. Within a walk
    actions come newest first; walks interleave as their pages arrive. At most
    ``partitions`` pages wait in memory.

    - :attr:`cursor` is a token of where the scan stands, right after the last
      action it yielded, to resume from in another process.
    - :meth:`aclose` (or ``async with``) cancels the walks. A scan dropped without
      it (a ``break``, then no reference left) cancels them too, and holds no page.
    - The first error of any walk is raised here, and the other walks are
      cancelled; :attr:`cursor` still says where the scan stood.
    - :class:`~voucherify_async.ClientClosedError`: the client was closed while the
      scan was running.
    - Two tasks iterating one scan at once: the second gets a :class:`RuntimeError`.
    """

    def __init__(self, engine: ScanEngine) -> None:
        self._engine = engine
        self._finalizer = weakref.finalize(self, engine.abandon)
        self._finalizer.atexit = False  # at exit the event loop is gone: nothing to cancel
        self._page: Sequence[AsyncAction] = ()
        self._current: _Page | None = None
        self._index = 0
        self._limit = 0  # how many actions of the page may be yielded (fewer once closed)
        self._started = False
        self._closed = False
        self._busy = False
        self.actions_yielded = 0
        """How many actions the scan has yielded so far."""

    @property
    def partitions(self) -> int:
        """How many walks go at once."""
        return self._engine.partitions

    @property
    def requests_made(self) -> int:
        """How many list requests returned an answer, over all walks and probes."""
        return self._engine.requests_made

    @property
    def splits(self) -> int:
        """How many times a walk's range was split to keep the walks busy."""
        return self._engine.splits

    @property
    def cursor(self) -> str:
        """Where this scan stands: right after the last action it yielded.

        An opaque, versioned, URL-safe string; pass it to
        ``scan_async_actions(cursor=...)`` (with the same ``since`` and ``end_date``)
        to go on from here in another scan, process or day: every action not yet
        yielded comes once, whatever was in flight.
        """
        engine = self._engine
        current = self._current
        walks = []
        for walk in engine.walks:
            if walk.walked and walk.outstanding == 0:
                continue
            if current is not None and current.walk is walk:
                position = position_in_page(current.before, current.after, self._page, self._index)
                if position.done and walk.outstanding <= 1 and walk.walked:
                    continue
            else:
                position = walk.yielded
            walks.append(WalkRange(walk.since, walk.end, position))
        state = ScanState(walks=tuple(walks), lower=engine.lower, parameters=engine.parameters)
        return encode_scan_token(state)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> AsyncAction:
        index = self._index
        if index < self._limit:
            self._index = index + 1
            self.actions_yielded += 1
            return self._page[index]
        return await self._next_page()

    async def _next_page(self) -> AsyncAction:
        if self._busy:
            raise RuntimeError("this scan is being iterated by another task already")
        self._busy = True
        try:
            engine = self._engine
            while True:
                if self._closed:
                    raise StopAsyncIteration
                self._finish_page()
                if engine.client_closed():  # also when every page was fetched already
                    await self.aclose()
                    raise ClientClosedError(_CLOSED)
                if not self._started:
                    self._started = True
                    engine.start()
                assert engine.queue is not None
                assert engine.space is not None
                item = await engine.queue.get()
                if item is _END:
                    self._closed = True
                    raise StopAsyncIteration
                if isinstance(item, BaseException):
                    await self.aclose()
                    raise item
                assert isinstance(item, _Page)
                engine.space.release()
                self._current, self._page = item, item.actions
                self._index, self._limit = 1, len(item.actions)
                self.actions_yielded += 1
                return item.actions[0]  # a page is never empty
        finally:
            self._busy = False

    def _finish_page(self) -> None:
        """The page being yielded is used up: its walk stands after its last action."""
        current = self._current
        if current is not None:
            current.walk.yielded = current.after
            current.walk.outstanding -= 1
            self._current, self._page, self._index, self._limit = None, (), 0, 0

    async def aclose(self) -> None:
        """Stop every walk (cancelling requests in flight); iteration stops at once.

        :attr:`cursor` still says where the scan stood.
        """
        self._closed = True
        self._limit = self._index
        engine = self._engine
        tasks = list(engine.tasks)
        self._finalizer()  # engine.abandon(), once
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            engine.tasks.discard(task)
            engine.background.discard(task)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return (
            f"<AsyncActionScan partitions={self.partitions} yielded={self.actions_yielded} "
            f"requests={self.requests_made}{' closed' if self._closed else ''}>"
        )
