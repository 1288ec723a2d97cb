"""The stream of every async action: an async iterator over the pages the cursor asks for.

The decisions live in ``_cursor`` (pure); this module awaits the pages, keeps one
page in flight ahead of the caller (prefetch), and structures each page into
models while the server already works on the next one.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Any, Self

import attrs

from ._cursor import CursorState, PageRequest, PaginationCursor
from ._decode import ListedPage, PageEntry
from ._models import AsyncAction, AsyncActionsPage
from ._token import encode_token

__all__ = ["AsyncActionStream"]

FetchPage = Callable[[PageRequest], Awaitable[ListedPage]]


@attrs.frozen
class _Fetched:
    """A page fed to the cursor, waiting to be structured: its new entries, and the
    cursor's state before and after it (for tokens, and to undo it)."""

    listed: ListedPage
    fresh: list[PageEntry]
    before: CursorState
    after: CursorState


def _retrieve(task: asyncio.Future[_Fetched]) -> None:
    """Mark a prefetch's outcome as seen, so an unused failure is never logged as lost."""
    if not task.cancelled():
        task.exception()


class AsyncActionStream(AsyncIterator[AsyncAction]):
    """Every async action, newest first, each exactly once: ``async for action in stream``.

    Returned by :meth:`VoucherifyClient.iter_async_actions`; nothing is requested
    until the first action is awaited. With ``prefetch=N`` (default 1) up to N
    pages are fetched ahead of the one being consumed: the request for the next
    page goes out as soon as a page arrives, so that the server prepares it while
    this page is structured and consumed. Pages ahead are requested one after the
    other (each request depends on the page before it). ``prefetch=0`` requests
    each page only when the previous one is used up. At most N pages are held
    beyond the one being consumed, and at most N pages are fetched that the caller
    never sees.

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
        in_flight: set[asyncio.Task[Any]] | None = None,
        parameters: str = "",
    ) -> None:
        self._fetch_page = fetch_page
        self._cursor = cursor
        self._prefetch = prefetch
        self._in_flight = in_flight if in_flight is not None else set()
        self._parameters = parameters
        self._ahead: collections.deque[asyncio.Task[_Fetched]] = collections.deque()
        # The page being yielded, how much of it was yielded, and the cursor before it.
        self._page: list[AsyncAction] = []
        self._index = 0
        self._limit = 0  # how far into the page may be yielded (less once closed)
        self._before = self._after = cursor.snapshot()
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
        after = self._after
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
    def closed(self) -> bool:
        """``True`` once :meth:`aclose` was called."""
        return self._closed

    @property
    def exhausted(self) -> bool:
        """``True`` once the page being yielded is the last one (or the stream was closed)."""
        return self._closed or self._after.done

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

    def _start(self, request: PageRequest) -> asyncio.Task[_Fetched]:
        task = asyncio.ensure_future(self._fetch_and_feed(request))
        task.add_done_callback(_retrieve)
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)
        self._ahead.append(task)
        return task

    def _request_ahead(self) -> bool:
        """Start fetching the next page if fewer than ``prefetch`` are ahead; ``True`` if it did."""
        if self._closed or len(self._ahead) >= self._prefetch:
            return False
        request = self._cursor.next_request()
        if request is None:
            return False
        self._start(request)
        return True

    async def _fetch_and_feed(self, request: PageRequest) -> _Fetched:
        """Fetch one page and feed it to the cursor; then chain the next fetch if allowed."""
        listed = await self._fetch_page(request)
        before = self._cursor.snapshot()
        fresh = self._cursor.feed(listed.entries, listed.has_more_reported)
        fetched = _Fetched(listed, fresh, before, self._cursor.snapshot())
        self._request_ahead()
        return fetched

    async def _next_page(self) -> list[AsyncAction] | None:
        """The next page's new actions (maybe none); ``None`` when the stream is over."""
        if self._closed:
            return None
        if self._ahead:
            task = self._ahead[0]
            try:
                fetched = await task
            except BaseException:
                await self._cancel_ahead()
                raise
            self._ahead.popleft()
        else:
            request = self._cursor.next_request()
            if request is None:
                return None
            fetched = await self._fetch_and_feed(request)
        if self.closed:  # closed while the request was in flight
            return None
        if self._prefetch:
            if not self._ahead or self._ahead[-1].done():
                self._request_ahead()
            if self._ahead and not self._ahead[-1].done():
                await asyncio.sleep(0)  # let it send its request before the CPU work below
        try:
            actions = fetched.listed.structure(fetched.fresh)
        except BaseException:
            await self._cancel_ahead()
            self._cursor.restore(fetched.before)
            raise
        self._yielded_before_page += self._index
        self._page, self._index, self._limit = actions, 0, len(actions)
        self._before, self._after = fetched.before, fetched.after
        return actions

    async def _cancel_ahead(self) -> None:
        """Cancel every page fetched ahead, and put the cursor back before the first of them."""
        ahead, self._ahead = list(self._ahead), collections.deque()
        for task in ahead:
            task.cancel()
        for task in ahead:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            self._in_flight.discard(task)
        self._cursor.restore(self._after)

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
        state = "closed" if self._closed else ("exhausted" if self._after.done else "open")
        return (
            f"<AsyncActionStream {state} page_size={self._cursor.page_size} "
            f"prefetch={self._prefetch} yielded={self.actions_yielded} "
            f"requests={self.requests_made}>"
        )
