"""The stream of every async action: an async iterator over the pages the cursor asks for.

The decisions live in ``_cursor`` (pure); this module awaits the pages, keeps one
page in flight ahead of the caller (prefetch), and structures each page into
models while the server already works on the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Self

import attrs

from ._cursor import CursorState, PageRequest, PaginationCursor
from ._decode import ListedPage, PageEntry
from ._models import AsyncAction, AsyncActionsPage
from ._token import encode_token

__all__ = ["AsyncActionStream"]

FetchPage = Callable[[PageRequest], Awaitable[ListedPage]]


def _retrieve(task: asyncio.Future[ListedPage]) -> None:
    """Mark a prefetch's outcome as seen, so an unused failure is never logged as lost."""
    if not task.cancelled():
        task.exception()


class AsyncActionStream(AsyncIterator[AsyncAction]):
    """Every async action, newest first, each exactly once: ``async for action in stream``.

    Returned by :meth:`VoucherifyClient.iter_async_actions`; nothing is requested
    until the first action is awaited. With ``prefetch=1`` (the default) the
    request for the next page is sent as soon as a page arrives, so that the
    server prepares it while this page is structured and consumed; ``prefetch=0``
    requests each page only when the previous one is used up. Either way at most
    one page is held beyond the one being consumed, and at most one page is
    fetched that the caller never sees.

    - :meth:`pages` walks the same stream page by page instead.
    - :meth:`aclose` (or ``async with``) ends it and cancels the page in flight.
      After a ``break`` without ``aclose()``, the page in flight completes on its
      own (or is cancelled when the client closes); nothing more is requested.
    - An error from a request (after the client's retries), or a page that cannot
      be structured, leaves the stream where it was: iterating again asks for the
      same page, so nothing is lost or repeated.
    - :class:`~voucherify_async.PaginationError` is final.
    """

    def __init__(
        self,
        fetch_page: FetchPage,
        cursor: PaginationCursor[PageEntry],
        *,
        prefetch: int = 1,
        in_flight: set[asyncio.Task[ListedPage]] | None = None,
        parameters: str = "",
    ) -> None:
        self._fetch_page = fetch_page
        self._cursor = cursor
        self._prefetch = prefetch
        self._in_flight = in_flight if in_flight is not None else set()
        self._parameters = parameters
        self._ahead: asyncio.Task[ListedPage] | None = None
        # The page being yielded, how much of it was yielded, and the cursor before it.
        self._page: list[AsyncAction] = []
        self._index = 0
        self._limit = 0  # how far into the page may be yielded (less once closed)
        self._before = cursor.snapshot()
        self._yielded_before_page = 0
        self._closed = False

    @property
    def actions_yielded(self) -> int:
        """How many actions this stream has yielded so far."""
        return self._yielded_before_page + self._index

    @property
    def cursor(self) -> str:
        """Where this stream stands: right after the last action it yielded.

        An opaque, versioned, URL-safe string; store it, and pass it to
        ``iter_async_actions(cursor=...)`` (with the same ``end_date`` and ``since``)
        to go on from here in another stream, process or day: no action is lost or
        repeated.
        """
        return encode_token(self._position(), self._parameters)

    def _position(self) -> CursorState:
        after = self._cursor.snapshot()
        done = self._index == len(self._page)
        if done:  # the whole page was yielded: the cursor's own state is the position
            return after
        if self._index == 0:
            return attrs.evolve(self._before, inclusive=after.inclusive)
        last = self._page[self._index - 1].created_at
        seen = {a.id for a in self._page[: self._index] if a.created_at == last}
        if self._before.floor == last:
            seen |= self._before.seen
        return CursorState(
            floor=last,
            seen=frozenset(seen),
            inclusive=after.inclusive,
            done=False,
            requests_made=after.requests_made,
            escalate=False,
        )

    @property
    def requests_made(self) -> int:
        """How many list requests returned a page the stream used (retries count once)."""
        return self._cursor.requests_made

    @property
    def exhausted(self) -> bool:
        """``True`` once the last page has been received (or the stream was closed)."""
        return self._closed or self._cursor.done

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> AsyncAction:
        index = self._index
        if index < self._limit:
            self._index = index + 1
            return self._page[index]
        while (actions := await self._next_page()) is not None:
            if actions:
                self._index = 1
                return actions[0]
        raise StopAsyncIteration

    def _start(self, request: PageRequest) -> asyncio.Task[ListedPage]:
        task = asyncio.ensure_future(self._fetch_page(request))
        task.add_done_callback(_retrieve)
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)
        return task

    async def _next_page(self) -> list[AsyncAction] | None:
        """The next page's new actions (maybe none); ``None`` when the stream is over."""
        if self._closed:
            return None
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            listed = await ahead
        else:
            request = self._cursor.next_request()
            if request is None:
                return None
            listed = await self._fetch_page(request)
        if self.exhausted:  # closed while the request was in flight
            return None
        before = self._cursor.snapshot()
        fresh = self._cursor.feed(listed.entries, listed.has_more_reported)
        if self._prefetch and (request := self._cursor.next_request()) is not None:
            self._ahead = self._start(request)
            await asyncio.sleep(0)  # let it send the request before the CPU work below
        try:
            actions = listed.structure(fresh)
        except BaseException:
            await self._cancel_ahead()
            self._cursor.restore(before)
            raise
        self._yielded_before_page += self._index
        self._page, self._index, self._limit, self._before = actions, 0, len(actions), before
        return actions

    async def _cancel_ahead(self) -> None:
        ahead, self._ahead = self._ahead, None
        if ahead is not None and not ahead.done():
            ahead.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await ahead
        if ahead is not None:
            self._in_flight.discard(ahead)

    async def pages(self) -> AsyncGenerator[AsyncActionsPage, None]:
        """Yield the rest of the stream as pages of actions not yielded before, newest first.

        Actions already fetched but not yet yielded one by one come first, as a
        page of their own. A page is never empty; ``has_more`` tells whether the
        stream expects more.
        """
        rest = tuple(self._page[self._index : self._limit])
        self._index = self._limit
        if rest:
            yield AsyncActionsPage(async_actions=rest, has_more=not self.exhausted)
        while (actions := await self._next_page()) is not None:
            self._index = len(actions)
            if actions:
                yield AsyncActionsPage(async_actions=tuple(actions), has_more=not self.exhausted)

    async def aclose(self) -> None:
        """End the stream: cancel the page in flight; iteration stops at once."""
        self._closed = True
        self._limit = self._index
        await self._cancel_ahead()

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
            f"prefetch={self._prefetch} yielded={self.actions_yielded} "
            f"requests={self.requests_made}>"
        )
