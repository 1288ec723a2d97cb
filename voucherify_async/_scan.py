"""Walking several time windows at once: the iterator behind ``scan_async_actions``."""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from typing import Any, Self

from ._models import AsyncAction
from ._stream import AsyncActionStream

__all__ = ["AsyncActionScan"]

_FINISHED = object()


class AsyncActionScan:
    """Every action of several disjoint streams, as their pages arrive: ``async for``.

    Returned by :meth:`VoucherifyClient.scan_async_actions`. Nothing is requested
    until the first action is awaited; then one task a window walks its stream and
    hands its pages over a queue that holds at most one page a window. Within a
    window actions come newest first; windows interleave. :meth:`aclose` (or
    ``async with``) cancels the walks; so does closing the client. The first error
    of any window is raised here, and the other walks are cancelled.
    """

    def __init__(
        self,
        streams: list[AsyncActionStream],
        *,
        background: set[asyncio.Task[Any]] | None = None,
    ) -> None:
        self._streams = streams
        self._background = background if background is not None else set()
        self._queue: asyncio.Queue[list[AsyncAction] | BaseException | object] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._running = 0
        self._page: list[AsyncAction] = []
        self._index = 0
        self._closed = False
        self.actions_yielded = 0
        """How many actions the scan has yielded so far."""

    @property
    def partitions(self) -> int:
        """How many windows the range was split into."""
        return len(self._streams)

    @property
    def requests_made(self) -> int:
        """How many list requests returned a page, over all windows."""
        return sum(stream.requests_made for stream in self._streams)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> AsyncAction:
        while self._index >= len(self._page):
            if self._closed:
                raise StopAsyncIteration
            if self._queue is None:
                self._start()
            if self._running == 0 and self._queue is not None and self._queue.empty():
                raise StopAsyncIteration
            assert self._queue is not None
            item = await self._queue.get()
            if item is _FINISHED:
                self._running -= 1
                continue
            if isinstance(item, BaseException):
                await self.aclose()
                raise item
            self._page, self._index = item, 0  # type: ignore[assignment]  # a page by elimination
        action = self._page[self._index]
        self._index += 1
        self.actions_yielded += 1
        return action

    def _start(self) -> None:
        self._queue = asyncio.Queue(maxsize=max(1, len(self._streams)))
        self._running = len(self._streams)
        for stream in self._streams:
            task = asyncio.ensure_future(self._walk(stream, self._queue))
            self._tasks.append(task)
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    @staticmethod
    async def _walk(
        stream: AsyncActionStream,
        queue: asyncio.Queue[list[AsyncAction] | BaseException | object],
    ) -> None:
        try:
            async with stream:
                async for page in stream.pages():
                    await queue.put(list(page.async_actions))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001  # handed to the consumer, raised there
            await queue.put(exc)
        await queue.put(_FINISHED)

    async def aclose(self) -> None:
        """Stop every walk (cancelling requests in flight); iteration stops at once."""
        self._closed = True
        self._page, self._index = [], 0
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            self._background.discard(task)

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
