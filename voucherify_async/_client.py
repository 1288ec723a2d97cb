"""``VoucherifyClient``: the aiohttp session wrapper, and the only module that does I/O.

It checks arguments, sends GET requests with the credentials, retries what can be
retried, and hands each answer to ``_decode``. Pagination decisions are the
time walk's (``_walk``); this module only carries them.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import itertools
import logging
import math
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self

import aiohttp
import attrs
from yarl import URL

from ._config import RateLimit, RetryPolicy, Timeout
from ._decode import (
    PageEntry,
    RawResponse,
    decode_details,
    decode_page,
    error_from_response,
)
from ._exceptions import (
    ClientClosedError,
    RateLimitError,
    RequestTimeoutError,
    TransportError,
    VoucherifyAPIError,
    VoucherifyError,
    WaitTimeoutError,
)
from ._models import AsyncActionDetails, AsyncActionsPage, AsyncActionStatus
from ._params import (
    MAX_LIMIT,
    check_action_id,
    check_limit,
    format_end_date,
    parse_end_date,
    truncate_to_ms,
)
from ._ratelimit import RateGate
from ._scan import AsyncActionScan
from ._stream import AsyncActionStream
from ._token import decode_token, parameters_digest
from ._walk import PageRequest, TimeWalk
from ._wire import CHANNEL, LIST_PATH, resolve_connection, user_agent

__all__ = ["CHANNEL", "USER_AGENT", "VoucherifyClient", "split_range"]

logger = logging.getLogger("voucherify_async")

USER_AGENT = user_agent(aiohttp.__version__)
"""The ``User-Agent`` every request sends."""

_HEADERS = {"Accept": "application/json", "User-Agent": USER_AGENT, "X-Voucherify-Channel": CHANNEL}

_FINISHED = frozenset({AsyncActionStatus.DONE, AsyncActionStatus.FAILED})
_MAX_PARTITIONS = 64
_MAX_PREFETCH = 16
_DEFAULT_RETRY = RetryPolicy()


def _check_seconds(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number of seconds > 0, got {value}")
    return float(value)


def split_range(
    start: datetime, stop: datetime, partitions: object
) -> list[tuple[datetime, datetime]]:
    """Split ``[start, stop)`` into ``partitions`` windows of (almost) equal length,
    newest first, on whole milliseconds.

    Raises:
        TypeError, ValueError: ``partitions`` not an int in 1..64, or ``start`` not
            before ``stop``.
    """
    if isinstance(partitions, bool) or not isinstance(partitions, int):
        raise TypeError(f"partitions must be an int, not {type(partitions).__name__}")
    if not 1 <= partitions <= _MAX_PARTITIONS:
        raise ValueError(f"partitions must be from 1 to {_MAX_PARTITIONS}, got {partitions}")
    if not start < stop:
        raise ValueError(
            f"since ({start.isoformat()}) must be before end_date ({stop.isoformat()})"
        )
    span_ms = (stop - start) // timedelta(milliseconds=1)
    step = max(1, -(-span_ms // partitions))
    edges = [start + timedelta(milliseconds=step * i) for i in range(partitions)]
    bounds = [edge for edge in edges if edge < stop] + [stop]
    windows = list(itertools.pairwise(bounds))
    return windows[::-1]


@functools.lru_cache(maxsize=32)
def _client_timeout(timeout: Timeout) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=timeout.total, sock_connect=timeout.connect)


class VoucherifyClient:
    """An asyncio client for Voucherify's Async Actions API.

    Use it as ``async with VoucherifyClient(...) as client:``, or call
    :meth:`close` when done; share one client across a whole application.

    Credentials: ``app_id`` and ``app_token`` (sent as ``X-App-Id``/``X-App-Token``;
    each defaults to the environment variable ``VOUCHERIFY_APP_ID`` /
    ``VOUCHERIFY_APP_TOKEN``), or ``oauth_token`` (sent as ``Authorization:
    Bearer``). The API's host is ``https://{cluster}.voucherify.io`` (clusters
    ``api``, ``us1.api``, ``as1.api``); ``base_url`` overrides it (https, or http on
    loopback only, for the fake server). ``session`` is an ``aiohttp.ClientSession``
    you own: it is used and never closed; without it the client creates its own,
    inside the running event loop, at the first request. ``timeout`` is a
    :class:`Timeout` or seconds for each attempt; ``retry`` a :class:`RetryPolicy`,
    and ``max_retries``, when given, replaces its ``max_retries``.

    Raises:
        TypeError, ValueError: a wrong argument; nothing is sent. That includes no
            credentials at all, both kinds at once, a credential with CR/LF, and a
            plain-http ``base_url`` to a host that is not loopback.
    """

    def __init__(
        self,
        app_id: str | None = None,
        app_token: str | None = None,
        *,
        oauth_token: str | None = None,
        cluster: str | None = None,
        base_url: str | URL | None = None,
        session: aiohttp.ClientSession | None = None,
        timeout: Timeout | float = Timeout(),  # noqa: B008  # frozen value object
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        rate_limit: RateLimit | None = None,
        trace_configs: Sequence[aiohttp.TraceConfig] | None = None,
    ) -> None:
        connection = resolve_connection(
            app_id=app_id,
            app_token=app_token,
            oauth_token=oauth_token,
            cluster=cluster,
            base_url=base_url,
            environ=os.environ,
        )
        self._connection = connection
        self._headers = {**_HEADERS, **connection.auth_headers}
        self._auth_kind = connection.auth_kind
        self.base_url = connection.base_url
        """The API's root URL (no trailing slash); paths like ``/v1/async-actions`` go after it."""
        if isinstance(timeout, bool) or not isinstance(timeout, Timeout | int | float):
            raise TypeError(f"timeout must be a Timeout or seconds, not {type(timeout).__name__}")
        self.timeout = timeout if isinstance(timeout, Timeout) else Timeout(total=timeout)
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise TypeError(f"retry must be a RetryPolicy, not {type(retry).__name__}")
        retry = retry or _DEFAULT_RETRY
        self.retry = retry if max_retries is None else attrs.evolve(retry, max_retries=max_retries)
        if session is not None and not isinstance(session, aiohttp.ClientSession):
            raise TypeError(
                f"session must be an aiohttp.ClientSession, not {type(session).__name__}"
            )
        if rate_limit is not None and not isinstance(rate_limit, RateLimit):
            raise TypeError(f"rate_limit must be a RateLimit, not {type(rate_limit).__name__}")
        self._gate = RateGate(rate_limit)
        if trace_configs is not None and session is not None:
            raise ValueError("pass trace_configs to your own session, not with session=")
        self._trace_configs = list(trace_configs) if trace_configs is not None else None
        self._session = session
        self._owns_session = session is None
        self._closed = False
        self._in_flight: set[asyncio.Task[Any]] = set()
        self._client_timeout = _client_timeout(self.timeout)

    def __repr__(self) -> str:
        state = " closed" if self._closed else ""
        return f"<VoucherifyClient {str(self.base_url)!r} auth={self._auth_kind}{state}>"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the session the client created (never one you passed in). Idempotent.

        A closed client refuses new requests with :class:`RuntimeError`.
        """
        self._closed = True
        for task in list(self._in_flight):  # pages prefetched for streams left unfinished
            task.cancel()
        if self._in_flight:
            await asyncio.wait(self._in_flight)
        session, self._session = self._session, None
        if session is not None and self._owns_session:
            await session.close()

    def _get_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise ClientClosedError("this VoucherifyClient is closed; create a new one")
        if self._session is None:
            # No cookie jar: the API sets no cookie, and a client keeps no state between
            # requests but the rate limit (this also spares a jar lookup per request).
            self._session = aiohttp.ClientSession(
                cookie_jar=aiohttp.DummyCookieJar(), trace_configs=self._trace_configs
            )
        return self._session

    async def _get(self, path: str, params: Mapping[str, str] | None = None) -> RawResponse:
        """Send one GET (retrying per the policy) and return a 2xx answer.

        Raises:
            VoucherifyAPIError: a non-2xx answer, after retries where they apply.
            TransportError: no answer, after retries.
        """
        url = self._connection.url(path, params)
        shown = str(url)
        attempt = 0
        while True:
            session = self._get_session()
            pause = self._rate_limit_wait(path)
            if pause > 0:
                logger.debug("waiting %.2f s for the rate limit before GET %s", pause, path)
                await asyncio.sleep(pause)
            failure: VoucherifyError
            try:
                async with session.get(
                    url,
                    headers=self._headers,
                    allow_redirects=False,
                    timeout=self._client_timeout,
                ) as answer:
                    self._gate.observe(answer.status, answer.headers, wall=time.time())
                    body = await answer.read()
                    response = RawResponse(
                        status=answer.status,
                        headers=answer.headers,
                        body=body,
                        method="GET",
                        url=shown,
                    )
            except TimeoutError as exc:
                failure = RequestTimeoutError(
                    f"no answer within the timeout ({self.timeout.total} s total)",
                    method="GET",
                    url=shown,
                )
                failure.__cause__ = exc
            except aiohttp.ClientError as exc:
                failure = TransportError(
                    f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__,
                    method="GET",
                    url=shown,
                )
                failure.__cause__ = exc
            else:
                if 200 <= response.status < 300:
                    return response
                failure = error_from_response(response)
            wait = self.retry.decide(
                attempt,
                status=failure.status if isinstance(failure, VoucherifyAPIError) else None,
                retry_after=getattr(failure, "retry_after", None),
            )
            if wait is None:
                raise failure
            attempt += 1
            logger.warning(
                "retrying GET %s in %.2f s (retry %d of %d) after: %s",
                path,
                wait,
                attempt,
                self.retry.max_retries,
                failure,
                extra={"request_id": failure.request_id, "attempt": attempt, "wait": wait},
            )
            await asyncio.sleep(wait)

    def _rate_limit_wait(self, path: str) -> float:
        """Seconds to wait before the next request, as the API's rate-limit headers and
        the client's pacing require (0: send now).

        Raises:
            RateLimitError: the API said no request may be sent for longer than
                ``retry.max_wait``; nothing is sent.
        """
        wall = time.time()
        blocked = self._gate.blocked_until
        if blocked is not None and blocked - wall > self.retry.max_wait:
            wait = blocked - wall
            raise RateLimitError(
                f"the API's rate limit is used up for {wait:.1f} s more, longer than "
                f"max_wait ({self.retry.max_wait:g} s); nothing was sent",
                retry_after=wait,
                status=429,
                method="GET",
                url=str(self.base_url) + path,
            )
        return self._gate.reserve(monotonic=time.monotonic(), wall=wall)

    async def list_async_actions(
        self, limit: int | None = None, end_date: Any = None
    ) -> AsyncActionsPage:
        """Fetch one page of async actions, newest first: exactly one request (plus retries).

        ``limit`` is 1..100 (``None``: the API's default). ``end_date`` limits the
        page to actions created before it: an aware ``datetime`` (converted to UTC),
        a ``date`` (midnight UTC), or an ISO-8601 string; it is sent as
        ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (below the millisecond is dropped).

        Raises:
            TypeError, ValueError: a bad argument; nothing is sent.
            VoucherifyError: the API refused, did not answer, or answered with
                something that is not a page (see the error tree).
        """
        params: dict[str, str] = {}
        if limit is not None:
            params["limit"] = str(check_limit(limit))
        if end_date is not None:
            params["end_date"] = format_end_date(truncate_to_ms(parse_end_date(end_date)))
        response = await self._get(LIST_PATH, params)
        return decode_page(response, limit=limit)

    def iter_async_actions(
        self,
        *,
        page_size: int = MAX_LIMIT,
        end_date: Any = None,
        since: Any = None,
        cursor: str | None = None,
        prefetch: int = 1,
    ) -> AsyncActionStream:
        """Stream every async action, newest first, each exactly once.

        Walks the list back in time page by page (``page_size`` 1..100 new actions
        a page). Correct whether the API reads ``end_date`` as inclusive or
        exclusive, with any number (below 100) of actions sharing one millisecond,
        and with or without ``has_more``.

        - ``end_date`` (same forms as :meth:`list_async_actions`): only actions
          created strictly before it.
        - ``since`` (same forms): only actions created at or after it (inclusive),
          and the walk stops at the first page that reaches past it, without
          fetching the older history: "everything new since last time".
        - ``cursor``: a token from :attr:`AsyncActionStream.cursor` of an earlier
          stream with the same ``end_date`` and ``since``: go on right after the
          last action it yielded, with nothing lost or repeated.
        - ``prefetch`` (0..16, default 1): how many pages to fetch ahead while the
          caller works on the current one; 0 turns that off. At most that many
          pages are fetched that the caller never sees (after a ``break``).

        Returns an :class:`AsyncActionStream`: ``async for action in ...``; nothing
        is sent until the first action is awaited.

        Raises:
            TypeError, ValueError: a bad argument, or a cursor token that is damaged
                or belongs to other parameters, at once; nothing is sent.
        """
        stop = parse_end_date(end_date) if end_date is not None else None
        start = parse_end_date(since, name="since") if since is not None else None
        if isinstance(prefetch, bool) or not isinstance(prefetch, int):
            raise TypeError(f"prefetch must be an int, not {type(prefetch).__name__}")
        if not 0 <= prefetch <= _MAX_PREFETCH:
            raise ValueError(f"prefetch must be from 0 to {_MAX_PREFETCH} pages, got {prefetch}")
        walk: TimeWalk[PageEntry] = TimeWalk(page_size=page_size, end_date=stop, since=start)
        parameters = parameters_digest(stop, start)
        if cursor is not None:
            walk.restore(decode_token(cursor, parameters))
        return AsyncActionStream(
            self._fetch_list_response,
            walk,
            prefetch=prefetch,
            in_flight=self._in_flight,
            parameters=parameters,
            client_closed=lambda: self._closed,
        )

    def scan_async_actions(
        self,
        *,
        since: Any,
        end_date: Any = None,
        partitions: int = 8,
        page_size: int = MAX_LIMIT,
    ) -> AsyncActionScan:
        """Walk a long time range in parallel: every action in ``[since, end_date)`` exactly once.

        The range (``end_date`` defaults to now) is split into ``partitions``
        windows of equal length, and each window is streamed like
        :meth:`iter_async_actions`, all at once: the windows do not overlap
        (``since`` is inclusive, ``end_date`` exclusive), so each action comes once.
        **Order**: within a window newest first; windows interleave as their pages
        arrive, so there is no global order (sort afterwards if you need one). At
        most ``partitions`` pages wait in memory. The requests share this client's
        retries and rate limit.

        Returns an :class:`AsyncActionScan` (``async for``, ``aclose()``, ``async with``).

        Raises:
            TypeError, ValueError: a bad argument (``partitions`` not an int in
                1..64, ``since`` not before ``end_date``), at once; nothing is sent.
        """
        start = parse_end_date(since, name="since")
        stop = parse_end_date(end_date) if end_date is not None else datetime.now(UTC)
        check_limit(page_size, name="page_size")
        windows = split_range(start, stop, partitions)
        return AsyncActionScan(
            [
                self.iter_async_actions(page_size=page_size, since=low, end_date=high)
                for low, high in windows
            ],
            background=self._in_flight,
        )

    async def _fetch_list_response(self, request: PageRequest) -> RawResponse:
        return await self._get(LIST_PATH, request.params())

    async def watch_async_action(
        self,
        async_action_id: str,
        *,
        timeout: float | None = 300.0,  # noqa: ASYNC109  # the whole wait's deadline
        poll_interval: float = 0.5,
        max_poll_interval: float = 10.0,
    ) -> AsyncIterator[AsyncActionDetails]:
        """Yield an action's state each time it changes, until it is ``DONE`` or ``FAILED``.

        Polls :meth:`get_async_action` (with its retries): first after
        ``poll_interval`` seconds, then twice as long each time up to
        ``max_poll_interval``. The first state is yielded at once; the last one
        yielded is the finished action (with its ``result``).

        Raises:
            TypeError, ValueError: a bad argument; nothing is sent.
            WaitTimeoutError: ``timeout`` seconds passed first; it carries the last
                state seen.
            VoucherifyError: a poll failed (after retries), e.g. ``NotFoundError``.
        """
        action_id = check_action_id(async_action_id)
        _check_seconds("poll_interval", poll_interval)
        _check_seconds("max_poll_interval", max_poll_interval)
        if timeout is not None:
            _check_seconds("timeout", timeout)
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        interval = poll_interval
        last: AsyncActionDetails | None = None
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    details = await self.get_async_action(action_id)
            except TimeoutError:
                raise self._wait_timeout(action_id, timeout, last) from None
            if last is None or (details.status, details.progress) != (last.status, last.progress):
                yield details
            last = details
            if details.status in _FINISHED:
                return
            if deadline is not None and loop.time() + interval >= deadline:
                await asyncio.sleep(max(0.0, deadline - loop.time()))
                raise self._wait_timeout(action_id, timeout, last)
            await asyncio.sleep(interval)
            interval = min(interval * 2, max_poll_interval)

    @staticmethod
    def _wait_timeout(
        action_id: str, timeout: float | None, last: AsyncActionDetails | None
    ) -> WaitTimeoutError:
        state = f"{last.status}, {last.progress}%" if last is not None else "no answer yet"
        return WaitTimeoutError(
            f"async action {action_id} did not finish within {timeout} s (last seen: {state})",
            async_action_id=action_id,
            last=last,
        )

    async def wait_for_async_action(
        self,
        async_action_id: str,
        *,
        timeout: float | None = 300.0,  # noqa: ASYNC109  # the whole wait's deadline
        poll_interval: float = 0.5,
        max_poll_interval: float = 10.0,
        on_progress: Callable[[AsyncActionDetails], object] | None = None,
    ) -> AsyncActionDetails:
        """Wait until an action is ``DONE`` or ``FAILED``; return it with its ``result``.

        Polls like :meth:`watch_async_action` (quick first, backing off to
        ``max_poll_interval``) and calls ``on_progress`` (a function or a coroutine
        function) with each new state.

        A ``FAILED`` action is **returned, not raised**: the job ran and finished,
        and its ``result`` (``failed``, ``errors``, ``failed_count``) says what went
        wrong, just as a ``DONE`` import can still have failed rows. Check
        ``details.status``; raising would hide that result behind an exception.

        Raises:
            TypeError, ValueError: a bad argument; nothing is sent.
            WaitTimeoutError: ``timeout`` seconds passed first (``.last`` is the last
                state seen).
            VoucherifyError: a poll failed (after retries).
        """
        last: AsyncActionDetails | None = None
        async for details in self.watch_async_action(
            async_action_id,
            timeout=timeout,
            poll_interval=poll_interval,
            max_poll_interval=max_poll_interval,
        ):
            last = details
            if on_progress is not None:
                outcome = on_progress(details)
                if inspect.isawaitable(outcome):
                    await outcome
        assert last is not None  # watch_async_action yields at least once or raises
        return last

    async def get_async_action(self, async_action_id: str) -> AsyncActionDetails:
        """Fetch one async action with its ``result`` (what it did).

        Raises:
            TypeError, ValueError: ``async_action_id`` is not an id (only letters,
                digits, ``_`` and ``-``); nothing is sent.
            NotFoundError: no action with this id.
            VoucherifyError: any other failure (see the error tree).
        """
        action_id = check_action_id(async_action_id)
        response = await self._get(f"{LIST_PATH}/{action_id}")
        return decode_details(response)
