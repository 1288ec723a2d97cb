"""The stream of every async action: an async iterator over the pages the cursor asks for.

The decisions live in ``_cursor`` (pure); this module awaits the pages, keeps up to
``prefetch`` pages in flight ahead of the caller, and structures each action into
its model when the caller asks for it, so that the first action of a page comes
out as soon as the page is read, and the server prepares the next page while the
caller works through this one.
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
    """A page fed to the cursor, waiting to be yielded: its new entries, and the
    cursor's state before and after it (for tokens, and to undo it)."""

    listed: ListedPage
    fresh: list[PageEntry]
    before: CursorState
    after: CursorState


def _retrieve(task: asyncio.Future[_Fetched]) -> None:
    """Mark a prefetch's outcome as seen, so an unused failure is never logged as lost."""
    if not task.cancelled():
        task.exception()


_NO_PAGE = _Fetched(
    listed=ListedPage(entries=[], has_more_reported=None, response=None),  # type: ignore[arg-type]
    fresh=[],
    before=CursorState(None, frozenset(), None, False, 0, False),
    after=CursorState(None, frozenset(), None, False, 0, False),
)


class AsyncActionStream(AsyncIterator[AsyncAction]):
    """Every async action, newest first, each exactly once: ``async for action in stream``.

    Returned by :meth:`VoucherifyClient.iter_async_actions`; nothing is requested
    until the first action is awaited. With ``prefetch=N`` (default 1) up to N
    pages are fetched ahead of the one being consumed: the request for the next
    page goes out right after the first action of a page is handed over, so that
    the server prepares it while the caller works through this one. Pages ahead
    are requested one after the other (each request depends on the page before
    it). ``prefetch=0`` requests each page only when the previous one is used up.
    At most N pages are held beyond the one being consumed, and at most N pages are
    fetched that the caller never sees.

    - :meth:`pages` walks the same stream page by page instead.
    - :attr:`cursor` is a token of where the stream stands, to resume from.
    - :meth:`aclose` (or ``async with``) ends it and cancels the pages in flight.
      After a ``break`` without ``aclose()``, the pages in flight complete on their
      own (or are cancelled when the client closes); nothing more is requested.
    - An error from a request (after the client's retries), or an action that
      cannot be structured, leaves the stream right after the last action it
      yielded: iterating again asks for the rest, so nothing is lost or repeated.
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
        # The page being yielded: its new entries, how many were yielded, how many may be.
        state = cursor.snapshot()
        self._current = attrs.evolve(_NO_PAGE, before=state, after=state)
        self._entries: list[PageEntry] = []
        self._index = 0
        self._limit = 0
        self._kick = False  # a prefetch was started and should be let run
        self._yielded_before_page = 0
        self._closed = False

    @property
    def actions_yielded(self) -> int:
        """How many actions this stream has yielded so far."""
        return self._yielded_before_page + self._index

    @property
    def requests_made(self) -> int:
        """How many list requests returned a page (retries count once)."""
        return self._cursor.requests_made

    @property
    def closed(self) -> bool:
        """``True`` once :meth:`aclose` was called."""
        return self._closed

    @property
    def exhausted(self) -> bool:
        """``True`` once the page being yielded is the last one (or the stream was closed)."""
        return self._closed or self._current.after.done

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
        before, after = self._current.before, self._current.after
        if self._index == len(self._entries):  # the whole page was yielded
            return after
        if self._index == 0:
            return attrs.evolve(before, inclusive=after.inclusive)
        yielded = self._entries[: self._index]
        last = yielded[-1].created_at
        seen = {entry.id for entry in yielded if entry.created_at == last}
        if before.floor == last:
            seen |= before.seen
        return CursorState(
            floor=last,
            seen=frozenset(seen),
            inclusive=after.inclusive,
            done=False,
            requests_made=after.requests_made,
            escalate=False,
        )

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> AsyncAction:
        index = self._index
        if index >= self._limit:
            if not await self._next_page():
                raise StopAsyncIteration
            index = 0
        elif self._kick:
            # The first action of this page is out: let the prefetched request go.
            self._kick = False
            await asyncio.sleep(0)
        entry = self._entries[index]
        try:
            action = self._current.listed.structure_one(entry)
        except BaseException:
            await self._rewind()
            raise
        self._index = index + 1
        return action

    def _start(self, request: PageRequest) -> None:
        task = asyncio.ensure_future(self._fetch_and_feed(request))
        task.add_done_callback(_retrieve)
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)
        self._ahead.append(task)

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

    async def _next_page(self) -> bool:
        """Move to the next page with new actions; ``False`` when the stream is over."""
        while not self._closed:
            if self._ahead:
                try:
                    fetched = await self._ahead[0]
                except BaseException:
                    await self._rewind()
                    raise
                self._ahead.popleft()
            else:
                request = self._cursor.next_request()
                if request is None:
                    return False
                fetched = await self._fetch_and_feed(request)
            if self.closed:  # closed while the request was in flight
                return False
            if self._prefetch and (not self._ahead or self._ahead[-1].done()):
                self._request_ahead()
            self._kick = bool(self._ahead) and not self._ahead[-1].done()
            self._yielded_before_page += self._index
            self._current, self._entries = fetched, fetched.fresh
            self._index, self._limit = 0, len(fetched.fresh)
            if self._limit:
                return True
        return False

    async def _rewind(self) -> None:
        """Undo everything past the last yielded action: cancel the pages ahead and put
        the cursor back there, so that iterating again asks for the rest."""
        position = self._position()
        ahead, self._ahead = list(self._ahead), collections.deque()
        for task in ahead:
            task.cancel()
        for task in ahead:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            self._in_flight.discard(task)
        self._cursor.restore(position)
        self._yielded_before_page += self._index
        self._current = attrs.evolve(_NO_PAGE, before=position, after=position)
        self._entries, self._index, self._limit, self._kick = [], 0, 0, False

    async def pages(self) -> AsyncGenerator[AsyncActionsPage, None]:
        """Yield the rest of the stream as pages of actions not yielded before, newest first.

        Actions already fetched but not yet yielded one by one come first, as a
        page of their own. A page is never empty; ``has_more`` tells whether the
        stream expects more.
        """
        while self._index < self._limit or await self._next_page():
            rest = self._entries[self._index : self._limit]
            try:
                actions = self._current.listed.structure(rest)
            except BaseException:
                await self._rewind()
                raise
            self._index = self._limit
            yield AsyncActionsPage(async_actions=tuple(actions), has_more=not self.exhausted)

    async def aclose(self) -> None:
        """End the stream: cancel the pages in flight; iteration stops at once.

        :attr:`cursor` still says where the stream stood.
        """
        self._closed = True
        self._limit = self._index
        await self._rewind()

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
        state = "closed" if self._closed else ("exhausted" if self.exhausted else "open")
        return (
            f"<AsyncActionStream {state} page_size={self._cursor.page_size} "
            f"prefetch={self._prefetch} yielded={self.actions_yielded} "
            f"requests={self.requests_made}>"
        )
