"""The stream of every async action: an async iterator over the pages the time walk asks for.

The decisions live in ``_walk`` (pure); this module awaits the pages, keeps up to
``prefetch`` pages in flight ahead of the caller, and structures a page's actions
into models when the caller reaches them (a page's first action alone, then the
rest). The request for the next page goes out as soon as a page is read and fed to
the walk, so the server prepares it while the caller structures and works through
this one.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from types import TracebackType
from typing import Any, Self

import attrs

from ._decode import (
    ListedPage,
    PageEntry,
    RawResponse,
    read_page,
)
from ._exceptions import ClientClosedError, InvalidResponseError
from ._models import AsyncAction, AsyncActionsPage
from ._token import encode_token
from ._walk import PageRequest, TimeWalk, WalkPosition, position_in_page

__all__ = ["AsyncActionStream"]

FetchPage = Callable[[PageRequest], Awaitable[RawResponse]]


@attrs.frozen
class _Fetched:
    """A page fed to the walk, waiting to be yielded: its new entries, and the
    walk's positions before and after it (for tokens, and to undo it). ``listed`` is
    ``None`` for no page (the stream standing between pages)."""

    listed: ListedPage | None
    fresh: list[PageEntry]
    before: WalkPosition
    after: WalkPosition


def _nobody() -> asyncio.Task[Any] | None:
    """The task iterating a stream that no task has iterated yet: none."""
    return None


def _retrieve(task: asyncio.Future[_Fetched]) -> None:
    """Mark a prefetch's outcome as seen, so an unused failure is never logged as lost."""
    if not task.cancelled():
        task.exception()


class AsyncActionStream(AsyncIterator[AsyncAction]):
    """Every async action, newest first, each exactly once: ``async for action in stream``.

    Returned by :meth:`VoucherifyClient.iter_async_actions`; nothing is requested
    until the first action is awaited. With ``prefetch=N`` (default 1) up to N
    pages are fetched ahead of the one being consumed: the request for the next
    page goes out as soon as a page is read, before the caller gets it, so that
    the server prepares it while the caller works through this one. Pages ahead
    are requested one after the other (each request depends on the page before
    it). ``prefetch=0`` requests each page only when the previous one is used up.
    At most N pages are held beyond the one being consumed, and at most N pages are
    fetched that the caller never sees.

    - :meth:`pages` walks the same stream page by page instead.
    - :attr:`cursor` is a token of where the stream stands, to resume from.
    - :meth:`aclose` (or ``async with``) ends it and cancels the pages in flight.
      After a ``break`` without ``aclose()``, the pages in flight complete on their
      own (or are cancelled when the client closes); nothing more is requested, and
      once they have, nothing holds the stream or its pages.
    - One task at a time: while a task iterates the stream (it has taken an action or
      a page from it and has not finished), another task asking for an action or a
      page gets a :class:`RuntimeError`, and takes nothing. Once that task has
      finished, another may go on with the stream.
    - Closing the client while a task waits for a page of the stream ends that wait
      with :class:`~voucherify_async.ClientClosedError`.
    - An error from a request (after the client's retries), or an action that
      cannot be structured, leaves the stream right after the last action it
      yielded: iterating again asks for the rest, so nothing is lost or repeated.
    - :class:`~voucherify_async.PaginationError` is final.
    """

    def __init__(
        self,
        fetch_page: FetchPage,
        walk: TimeWalk[PageEntry],
        *,
        prefetch: int = 1,
        in_flight: set[asyncio.Task[Any]] | None = None,
        parameters: str = "",
        client_closed: Callable[[], bool] = lambda: False,  # whether the client was closed
    ) -> None:
        self._fetch_page = fetch_page
        self._client_closed = client_closed
        self._walk = walk
        self._prefetch = prefetch
        self._in_flight = in_flight if in_flight is not None else set()
        self._parameters = parameters
        self._ahead: collections.deque[asyncio.Task[_Fetched]] = collections.deque()
        self._awaited: asyncio.Task[_Fetched] | None = None  # the page the caller waits for
        # The page being yielded: its new entries, how many were yielded, how many may be.
        self._current: _Fetched
        self._entries: list[PageEntry]
        self._actions: list[AsyncAction]  # the page's entries structured so far
        self._ready: int  # len(self._actions), or less once closed
        self._failure: InvalidResponseError | None
        self._index = 0
        self._limit: int
        self._yielded_before_page = 0
        self._stand_at(walk.snapshot())
        self._closed = False
        # The task iterating the stream (see ``_claim``), weakly: a finished task is let go;
        # and what it iterates with: an ``async for`` loop (``_Loop``), or the stream itself.
        self._owner: Callable[[], asyncio.Task[Any] | None] = _nobody
        self._holder: object = None

    @property
    def actions_yielded(self) -> int:
        """How many actions this stream has yielded so far."""
        return self._yielded_before_page + self._index

    @property
    def requests_made(self) -> int:
        """How many list requests returned a page (retries count once)."""
        return self._walk.requests_made

    @property
    def closed(self) -> bool:
        """``True`` once :meth:`aclose` was called."""
        return self._closed

    @property
    def exhausted(self) -> bool:
        """``True`` once the page being yielded is the last one, or the stream cannot go
        on (closed, or after a :class:`~voucherify_async.PaginationError`)."""
        if self._closed or self._current.after.done:
            return True
        return self._walk.done and not self._ahead and self._index >= self._limit

    @property
    def cursor(self) -> str:
        """Where this stream stands: right after the last action it yielded.

        An opaque, versioned, URL-safe string; store it, and pass it to
        ``iter_async_actions(cursor=...)`` (with the same ``end_date`` and ``since``)
        to go on from here in another stream, process or day: no action is lost or
        repeated.
        """
        return encode_token(self._position(), self._parameters)

    @property
    def position(self) -> WalkPosition:
        """The walk's position right after the last action yielded (what :attr:`cursor` encodes)."""
        return self._position()

    def try_split(self, at: datetime) -> bool:
        """Hand over the range older than ``at`` (see ``TimeWalk.try_split``): narrow the
        walk's ``since`` to ``at`` when ``at`` lies strictly inside the part of its range
        not claimed yet; return whether it did."""
        if self._closed:
            return False
        return self._walk.try_split(at)

    def _position(self) -> WalkPosition:
        current = self._current
        return position_in_page(current.before, current.after, self._entries, self._index)

    def __aiter__(self) -> AsyncIterator[AsyncAction]:
        """An iterator over the rest of the stream, for one ``async for`` in one task."""
        return _Loop(self)

    async def __anext__(self) -> AsyncAction:
        index = self._index
        if index < self._ready and self._holder is self and self._owner() is asyncio.current_task():
            self._index = index + 1
            return self._actions[index]
        return await self._advance(self)

    def _claim(self, holder: object) -> None:
        """Make the current task, iterating with ``holder``, the one iterating the stream.

        Raises:
            RuntimeError: another task iterates it, and has not finished.
        """
        task, owner = asyncio.current_task(), self._owner()
        if owner is not task:
            if owner is not None and not owner.done():
                raise RuntimeError(
                    "anext(): this AsyncActionStream is already being iterated by another "
                    f"task ({owner.get_name()}); iterate a stream from one task at a time"
                )
            self._owner = _nobody if task is None else weakref.ref(task)
        self._holder = holder

    async def _advance(self, holder: object) -> AsyncAction:
        """Everything but the hot path: the next page, structuring, and errors."""
        self._claim(holder)
        index = self._index
        if index >= self._limit:
            if not await self._next_page():
                raise StopAsyncIteration
            index = 0
        if index >= self._ready:
            self._structure_from(index)
        if index >= self._ready:  # the action at ``index`` cannot be structured
            error = self._failure
            await self._rewind()
            assert error is not None  # set by _structure_from when it stops short
            raise error
        self._index = index + 1
        return self._actions[index]

    def _structure_from(self, index: int) -> None:
        """Structure the page from ``index``: the first action alone (to hand it over at
        once), then the rest in one go. Stops before an action that cannot be
        structured, keeping its error for when the caller reaches it."""
        stop = index + 1 if index == 0 else self._limit
        listed, entries = self._current.listed, self._entries
        assert listed is not None  # called only with actions left on a page
        if stop > index + 1:
            try:
                self._actions.extend(listed.structure(entries[index:stop]))
            except InvalidResponseError:
                pass  # one by one below, to stop right before the bad one
            else:
                self._ready = stop
                return
        for position in range(index, stop):  # also one action alone: the converter's hook
            try:
                self._actions.append(listed.structure_one(entries[position]))
            except InvalidResponseError as error:
                self._failure = error
                self._ready = position
                return
        self._ready = stop

    def _start(self, request: PageRequest) -> None:
        task = asyncio.ensure_future(self._fetch_and_feed(request))
        task.add_done_callback(_retrieve)
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)
        self._ahead.append(task)

    def _request_ahead(self) -> bool:
        """Start fetching the next page if fewer than ``prefetch`` are ahead (the page the
        caller waits for is not ahead: it is the next one consumed); ``True`` if it did."""
        ahead = len(self._ahead)
        if ahead and self._awaited is self._ahead[0]:
            ahead -= 1
        if self._closed or ahead >= self._prefetch or self._client_closed():
            return False
        request = self._walk.next_request()
        if request is None:
            return False
        self._start(request)
        return True

    async def _fetch_and_feed(self, request: PageRequest) -> _Fetched:
        """Fetch one page and feed it to the walk; then start the next fetch if the
        prefetch allows, before the caller gets this page: the server prepares it while
        the caller structures and works through this one."""
        fetched = self._feed(read_page(await self._fetch_page(request)))
        self._request_ahead()
        return fetched

    def _feed(self, listed: ListedPage) -> _Fetched:
        """Feed a page to the walk."""
        before = self._walk.snapshot()
        fresh = self._walk.feed(listed.entries, listed.has_more_reported)
        return _Fetched(listed, fresh, before, self._walk.snapshot())

    async def _next_page(self) -> bool:
        """Move to the next page with new actions; ``False`` when the stream is over."""
        if self._limit and self._index >= self._limit:  # let the page used up go first
            self._stand_at(self._current.after)
        while not self._closed:
            if not self._ahead:
                request = self._walk.next_request()
                if request is None:
                    return False
                self._start(request)
            fetched = await self._take_ahead()
            if fetched is None:  # closed while the request was in flight
                return False
            self._yielded_before_page += self._index
            self._current, self._entries = fetched, fetched.fresh
            self._actions, self._ready, self._failure = [], 0, None
            self._index, self._limit = 0, len(fetched.fresh)
            # Unless it is on its way already (chained), the next page is requested now,
            # and goes out before this page is structured: the server prepares it meanwhile.
            if (not self._ahead or self._ahead[-1].done()) and self._request_ahead():
                await asyncio.sleep(0)
            if self._limit:
                return True
        return False

    async def _take_ahead(self) -> _Fetched | None:
        """Wait for the page at the head of ``_ahead`` and take it; ``None`` if the stream
        was closed meanwhile. On any error, the stream is rewound first.

        Raises:
            ClientClosedError: the client was closed meanwhile (its ``close()`` cancelled
                the request this task waited for).
            asyncio.CancelledError: this task is cancelled.
            VoucherifyError: the request failed, or its page cannot be read.
        """
        task = self._awaited = self._ahead[0]
        try:
            fetched = await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            cancelled_here = current is not None and current.cancelling() > 0
            if self._closed and not cancelled_here:
                return None  # aclose() in another task cancelled the request
            await self._rewind()
            if cancelled_here or not self._client_closed():
                raise
            raise ClientClosedError(
                "the VoucherifyClient was closed while this stream waited for a page"
            ) from None
        except BaseException:
            await self._rewind()
            raise
        finally:
            self._awaited = None
        if self._closed:
            return None
        self._ahead.popleft()
        return fetched

    async def _rewind(self) -> None:
        """Undo everything past the last yielded action: cancel the pages ahead and put
        the walk back there, so that iterating again asks for the rest."""
        position = self._position()
        ahead, self._ahead = list(self._ahead), collections.deque()
        for task in ahead:
            task.cancel()
        for task in ahead:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            self._in_flight.discard(task)
        self._walk.restore(position)
        self._stand_at(position)

    def _stand_at(self, position: WalkPosition) -> None:
        """Hold no page, right after the actions yielded so far, the walk at ``position``."""
        self._yielded_before_page += self._index
        self._current = _Fetched(None, [], position, position)
        self._entries, self._actions, self._failure = [], [], None
        self._index = self._limit = self._ready = 0

    def pages(self) -> AsyncIterator[AsyncActionsPage]:
        """Iterate the rest of the stream as pages of actions not yielded before, newest first.

        Actions already fetched but not yet yielded one by one come first, as a
        page of their own. A page is never empty; ``has_more`` tells whether the
        stream expects more. One task at a time, as for the actions.
        """
        return _Pages(self)

    async def _next_batch(self) -> AsyncActionsPage:
        """The rest of the page being yielded, or of the next one; see :meth:`pages`.

        Raises:
            StopAsyncIteration: the stream is over.
        """
        self._claim(None)
        if not (self._index < self._limit or await self._next_page()):
            raise StopAsyncIteration
        start = self._index
        if self._ready == 0:
            self._structure_from(0)  # the first action alone
        if 0 < self._ready < self._limit and self._failure is None:
            self._structure_from(self._ready)  # the rest of the page
        if self._ready == start:  # the first action left cannot be structured
            error = self._failure
            await self._rewind()
            assert error is not None  # set by _structure_from when it stops short
            raise error
        self._index = self._ready
        actions = tuple(self._actions[start : self._ready])
        return AsyncActionsPage(async_actions=actions, has_more=not self.exhausted)

    async def aclose(self) -> None:
        """End the stream: cancel the pages in flight; iteration stops at once.

        :attr:`cursor` still says where the stream stood.
        """
        self._closed = True
        self._limit = self._ready = self._index
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
            f"<AsyncActionStream {state} page_size={self._walk.page_size} "
            f"prefetch={self._prefetch} yielded={self.actions_yielded} "
            f"requests={self.requests_made}>"
        )


class _Pages(AsyncIterator[AsyncActionsPage]):
    """What :meth:`AsyncActionStream.pages` returns: each ``anext`` takes the next page."""

    __slots__ = ("_stream",)

    def __init__(self, stream: AsyncActionStream) -> None:
        self._stream = stream

    async def __anext__(self) -> AsyncActionsPage:
        return await self._stream._next_batch()


class _Loop(AsyncIterator[AsyncAction]):
    """One ``async for`` over a stream, what :meth:`AsyncActionStream.__aiter__` returns.

    Its hot path (an action already structured) checks no task: only the loop that
    last went through the stream's checks (``_claim``) takes actions that way; any
    other loop, or a direct ``anext(stream)``, goes through them first.
    """

    __slots__ = ("_stream",)

    def __init__(self, stream: AsyncActionStream) -> None:
        self._stream = stream

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> AsyncAction:
        stream = self._stream
        index = stream._index
        if index < stream._ready and stream._holder is self:
            stream._index = index + 1  # the hot path
            return stream._actions[index]
        return await stream._advance(self)
