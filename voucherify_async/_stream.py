"""The stream of every async action: an async iterator over pages the cursor asks for.

The decisions live in ``_cursor`` (pure); this module only awaits the pages.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from types import TracebackType
from typing import Self

from ._cursor import PageRequest, PaginationCursor
from ._models import AsyncAction, AsyncActionsPage

__all__ = ["AsyncActionStream"]

FetchPage = Callable[[PageRequest], Awaitable[AsyncActionsPage]]


class AsyncActionStream(AsyncIterator[AsyncAction]):
    """Every async action, newest first, each exactly once: ``async for action in stream``.

    Returned by :meth:`VoucherifyClient.iter_async_actions`; nothing is requested
    until the first action is awaited, and one page is requested at a time, when
    the previous one is used up, so breaking out early stops the requests. At most
    one page is held in memory.

    - :meth:`pages` walks the same stream page by page instead.
    - :meth:`aclose` (or ``async with``) ends it: later iteration stops at once.
    - An error from a request (after the client's retries) leaves the stream where
      it was: iterating again asks for the same page, so nothing is lost or repeated.
    - :class:`~voucherify_async.PaginationError` is final.
    """

    def __init__(self, fetch_page: FetchPage, cursor: PaginationCursor[AsyncAction]) -> None:
        self._fetch_page = fetch_page
        self._cursor = cursor
        self._buffer: Iterator[AsyncAction] = iter(())
        self._closed = False
        self.actions_yielded = 0
        """How many actions this stream has yielded so far."""

    @property
    def requests_made(self) -> int:
        """How many list requests returned a page (retries of one request count once)."""
        return self._cursor.requests_made

    @property
    def exhausted(self) -> bool:
        """``True`` once the last page has been received (or the stream was closed)."""
        return self._closed or self._cursor.done

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> AsyncAction:
        for action in self._buffer:
            self.actions_yielded += 1
            return action
        while True:
            page = await self._next_page()
            if page is None:
                raise StopAsyncIteration
            if page.async_actions:
                self._buffer = iter(page.async_actions[1:])
                self.actions_yielded += 1
                return page.async_actions[0]

    async def _next_page(self) -> AsyncActionsPage | None:
        """Fetch until a page brings something new; ``None`` when the stream is over."""
        if self._closed:
            return None
        request = self._cursor.next_request()
        if request is None:
            return None
        page = await self._fetch_page(request)
        if self.exhausted:  # closed while the request was in flight
            return None
        fresh = self._cursor.feed(page.async_actions, page.has_more_reported)
        return AsyncActionsPage(
            async_actions=tuple(fresh),
            has_more=not self._cursor.done,
            has_more_reported=page.has_more_reported,
        )

    async def pages(self) -> AsyncIterator[AsyncActionsPage]:
        """Yield the rest of the stream as pages of actions not yielded before, newest first.

        Actions already fetched but not yet yielded one by one come first, as a
        page of their own. A page is never empty; ``has_more`` tells whether the
        stream expects more.
        """
        rest = tuple(self._buffer)
        if rest:
            self.actions_yielded += len(rest)
            yield AsyncActionsPage(async_actions=rest, has_more=not self.exhausted)
        while (page := await self._next_page()) is not None:
            if page.async_actions:
                self.actions_yielded += len(page.async_actions)
                yield page

    async def aclose(self) -> None:
        """End the stream: no more requests; iteration stops at once."""
        self._closed = True
        self._buffer = iter(())

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
        state = "closed" if self._closed else ("exhausted" if self._cursor.done else "open")
        return (
            f"<AsyncActionStream {state} page_size={self._cursor.page_size} "
            f"yielded={self.actions_yielded} requests={self.requests_made}>"
        )
