"""``VoucherifyClient``: the aiohttp session wrapper, and the only module that does I/O.

It keeps the session's life, sends each GET through one small adapter
(:func:`_send_once`: aiohttp in, a :class:`RawResponse` out, aiohttp's errors
translated to :class:`VoucherifyError` there), runs the retry loop, and offers the
public methods. Everything that needs no socket is pure and lives elsewhere: the
connection and headers in ``_wire``, arguments in ``_params``, what an answer means
in ``_decode``, retry decisions in ``_config``, the rate limit in ``_ratelimit``,
pagination in the time walk (``_walk``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import math
import os
import ssl
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping, Sequence
from datetime import UTC, datetime
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
    server_wait,
    shorten,
    summary,
)
from ._exceptions import (
    CertificateError,
    ClientClosedError,
    RateLimitError,
    RequestTimeoutError,
    ResponseTooLargeError,
    TransportError,
    VoucherifyError,
    WaitTimeoutError,
)
from ._models import AsyncActionDetails, AsyncActionsPage, AsyncActionStatus
from ._params import (
    MAX_LIMIT,
    check_action_id,
    check_limit,
    check_size,
    format_end_date,
    parse_moment,
    truncate_to_ms,
)
from ._ratelimit import RateGate
from ._scan import AsyncActionScan, ScanEngine
from ._split import decode_scan_token, first_walks, scan_digest
from ._stream import AsyncActionStream
from ._token import decode_token, parameters_digest
from ._walk import PageRequest, TimeWalk, WalkPosition
from ._wire import LIST_PATH, request_headers, resolve_connection

__all__ = ["VoucherifyClient"]

logger = logging.getLogger("voucherify_async")

DEFAULT_MAX_RESPONSE_SIZE = 32 * 1024 * 1024
"""The default ``max_response_size``: 32 MiB, counted after decompression."""

_READ_CHUNK = 64 * 1024
_FINAL_STATUSES = frozenset({AsyncActionStatus.DONE, AsyncActionStatus.FAILED})
_MAX_PARTITIONS = 64
_MAX_PREFETCH = 16
_DEFAULT_RETRY = RetryPolicy()


def _check_seconds(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number of seconds > 0, got {value}")
    return float(value)


def _check_partitions(partitions: object) -> int:
    if isinstance(partitions, bool) or not isinstance(partitions, int):
        raise TypeError(f"partitions must be an int, not {type(partitions).__name__}")
    if not 1 <= partitions <= _MAX_PARTITIONS:
        raise ValueError(f"partitions must be from 1 to {_MAX_PARTITIONS}, got {partitions}")
    return partitions


async def _read_body(answer: aiohttp.ClientResponse, max_size: int, url: str) -> bytes:
    """The whole body (decompressed by aiohttp, read a chunk at a time), or
    :class:`ResponseTooLargeError` as soon as it passes ``max_size`` bytes: reading
    stops there and the connection is closed, so that no more of it arrives."""
    declared = answer.content_length
    if declared is not None and declared > max_size and not answer.headers.get("Content-Encoding"):
        size_seen = declared
    else:
        chunks: list[bytes] = []
        size_seen = 0
        async for chunk in answer.content.iter_chunked(_READ_CHUNK):
            size_seen += len(chunk)
            if size_seen > max_size:
                break
            chunks.append(chunk)
        else:
            return b"".join(chunks)
        del chunks
    answer.close()
    raise ResponseTooLargeError(
        f"the body is larger than max_response_size ({max_size} bytes, counted after "
        f"decompression; {size_seen} bytes seen): reading stopped, the connection was closed",
        status=answer.status,
        request_id=shorten(answer.headers.get("X-Request-Id") or "", 100) or None,
        method="GET",
        url=url,
    )


async def _send_once(
    session: aiohttp.ClientSession,
    url: URL,
    *,
    shown: str,
    headers: Mapping[str, str],
    timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109  # aiohttp's own, per attempt
    max_size: int,
) -> RawResponse:
    """Send one GET and return what came back, whatever its status: the only place
    that touches aiohttp.

    Raises:
        RequestTimeoutError: no complete answer within ``timeout`` (the message is
            the caller's to complete).
        CertificateError: the server's TLS certificate was refused.
        TransportError: any other failure to connect, send or read.
        ResponseTooLargeError: the body passed ``max_size`` bytes.
    """
    try:
        async with session.get(
            url, headers=headers, allow_redirects=False, timeout=timeout
        ) as answer:
            body = await _read_body(answer, max_size, shown)
            return RawResponse(
                status=answer.status, headers=answer.headers, body=body, method="GET", url=shown
            )
    except TimeoutError as exc:
        raise RequestTimeoutError("no answer in time", method="GET", url=shown) from exc
    except (aiohttp.ClientConnectorCertificateError, ssl.SSLCertVerificationError) as exc:
        reason = getattr(exc, "certificate_error", exc)
        raise CertificateError(
            f"the server's TLS certificate was refused: {shorten(str(reason))}",
            method="GET",
            url=shown,
        ) from exc
    except aiohttp.ClientError as exc:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise TransportError(shorten(text), method="GET", url=shown) from exc


async def _close_when_the_loop_shuts_down(
    session: aiohttp.ClientSession,
) -> AsyncGenerator[None, None]:
    """Started once in the event loop that owns ``session``: ``asyncio.run`` (and any
    ``asyncio.Runner``) closes every unfinished async generator before it closes its
    loop, so this ``finally`` closes the session even when the client never was."""
    try:
        yield
    finally:
        await session.close()


def _time_left(deadline: float | None) -> float | None:
    """Seconds until ``deadline`` on the running loop's clock (``None``: no deadline)."""
    return None if deadline is None else deadline - asyncio.get_running_loop().time()


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
    :class:`Timeout` or seconds for each attempt; ``retry`` a :class:`RetryPolicy`
    (which also bounds a whole call: ``max_time``), and ``max_retries``, when given,
    replaces its ``max_retries``. ``max_response_size`` (bytes, default 32 MiB)
    bounds each body, counted after decompression: a larger one is not read further
    and raises ``ResponseTooLargeError``, not retried.

    Without ``base_url`` and ``cluster``, the environment variables
    ``VOUCHERIFY_API_URL`` or ``VOUCHERIFY_CLUSTER`` name the host, as on the
    command line (an empty variable counts as unset).

    A client belongs to the event loop of its first request (as its aiohttp session
    does): from any other loop it raises ``RuntimeError`` at once. The session
    it creates is closed by ``close()``, or at the latest when that loop is shut
    down by ``asyncio.run``.

    Raises:
        TypeError, ValueError: a wrong argument; nothing is sent. That includes no
            credentials at all, both kinds at once, a credential that cannot be sent
            verbatim (a control character, NEL, U+2028, leading or trailing space:
            the message names the argument and never echoes it), and a plain-http
            ``base_url`` to a host that is not loopback.
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
        max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
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
        self._headers = request_headers(connection, aiohttp.__version__)
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
        self.max_response_size = check_size(max_response_size, name="max_response_size")
        """The largest body read, in bytes after decompression."""
        self._closed = False
        self._closing = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session_closer: AsyncGenerator[None, None] | None = None
        self._in_flight: set[asyncio.Task[Any]] = set()
        self._client_timeout = aiohttp.ClientTimeout(
            total=self.timeout.total, sock_connect=self.timeout.connect
        )

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

        A closed client refuses new requests with ``ClientClosedError`` (a
        ``RuntimeError``); a request in flight, or waiting to retry, ends with it.

        Raises:
            RuntimeError: called from another event loop than the client's while
                that loop still runs (close it there).
        """
        if self._loop is not None and self._loop is not asyncio.get_running_loop():
            if not self._loop.is_closed():
                raise RuntimeError(self._other_loop_message())
            self._closed = True  # its session was closed when its loop shut down
            self._session = None
            return
        self._closed = True
        self._closing.set()
        for task in list(self._in_flight):  # pages prefetched for streams left unfinished
            task.cancel()
        if self._in_flight:
            await asyncio.wait(self._in_flight)
        session, self._session = self._session, None
        closer, self._session_closer = self._session_closer, None
        if closer is not None:
            await closer.aclose()  # closes the session
        elif session is not None and self._owns_session:
            await session.close()

    def _other_loop_message(self) -> str:
        assert self._loop is not None
        state = "closed" if self._loop.is_closed() else "still running, in another thread or task"
        return (
            f"this VoucherifyClient belongs to the event loop of its first request ({state}), "
            "and cannot be used from another one (neither can its aiohttp session): "
            "create one client per event loop"
        )

    def _check_loop(self) -> None:
        """Bind the client to the running loop at its first request; refuse any other.

        Raises:
            ClientClosedError: the client is closed.
            RuntimeError: the running loop is not the client's.
        """
        loop = asyncio.get_running_loop()
        if self._loop is None and not self._closed:
            self._loop = loop
        elif self._loop is not None and self._loop is not loop:
            if self._closed:
                raise ClientClosedError(
                    "this VoucherifyClient is closed (and belongs to another event loop); "
                    "create a new one in this loop"
                )
            raise RuntimeError(self._other_loop_message())
        if self._closed:
            raise ClientClosedError("this VoucherifyClient is closed; create a new one")

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

    async def _open_session(self) -> aiohttp.ClientSession:
        session = self._get_session()
        if self._owns_session and self._session_closer is None:
            self._session_closer = _close_when_the_loop_shuts_down(session)
            await anext(self._session_closer)
        return session

    async def _pause(self, seconds: float) -> None:
        """Sleep ``seconds``, or less if the client is closed meanwhile."""
        if seconds <= 0:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._closing.wait()

    @staticmethod
    def _closed_error() -> ClientClosedError:
        return ClientClosedError(
            "the VoucherifyClient was closed while this request was in flight or waiting"
        )

    async def _get(self, path: str, params: Mapping[str, str] | None = None) -> RawResponse:
        """Send one GET (retrying per the policy, within its ``max_time``) and return a
        2xx answer.

        Raises:
            VoucherifyAPIError: a non-2xx answer, after retries where they apply.
            TransportError: no answer, after retries; ``CertificateError`` at once.
            RequestTimeoutError: no answer within ``Timeout.total``, or ``max_time`` ran out.
            InvalidResponseError: ``ResponseTooLargeError``, at once.
            ClientClosedError: the client is closed, or was closed meanwhile.
            RuntimeError: called from another event loop than the client's.
        """
        self._check_loop()
        loop = asyncio.get_running_loop()
        deadline = None if self.retry.max_time is None else loop.time() + self.retry.max_time
        url = self._connection.url(path, params)
        attempt = 0
        last: VoucherifyError | None = None
        while True:
            session = await self._open_session()
            await self._wait_for_the_rate_limit(path, deadline, last)
            outcome = await self._attempt(session, url, attempt, deadline)
            if isinstance(outcome, RawResponse):
                return outcome
            failure, status, wanted = outcome
            last = failure
            wait = self.retry.decide(
                attempt, status=status, retry_after=wanted, time_left=_time_left(deadline)
            )
            if wait is None:
                raise failure
            attempt += 1
            logger.warning(
                "retrying GET %s in %.2f s (retry %d of %d) after %s",
                path,
                wait,
                attempt,
                self.retry.max_retries,
                summary(failure),
                extra={"request_id": failure.request_id, "attempt": attempt, "wait": wait},
            )
            await self._pause(wait)
            if self._closed:
                raise self._closed_error() from failure

    async def _attempt(
        self, session: aiohttp.ClientSession, url: URL, attempt: int, deadline: float | None
    ) -> RawResponse | tuple[VoucherifyError, int | None, float | None]:
        """One attempt: a 2xx answer, or the failure to weigh for a retry with its
        status (``None``: no answer) and the wait the server asked for.

        Raises:
            VoucherifyError: a failure no retry can mend (a refused certificate, a
                body too large, ``max_time`` run out, the client closed meanwhile).
        """
        timeout, cut = self._attempt_timeout(_time_left(deadline))
        try:
            response = await _send_once(
                session,
                url,
                shown=str(url),
                headers=self._headers,
                timeout=timeout,
                max_size=self.max_response_size,
            )
        except (TransportError, ResponseTooLargeError) as error:
            if self._closed:
                raise self._closed_error() from error.__cause__
            if isinstance(error, RequestTimeoutError):
                error.message = (
                    f"the call's max_time ({self.retry.max_time:g} s) ran out during attempt "
                    f"{attempt + 1}"
                    if cut
                    else f"no answer within the timeout ({self.timeout.total} s total)"
                )
                error.args = (error.message,)
                if cut:
                    raise  # the time is up
            if isinstance(error, CertificateError | ResponseTooLargeError):
                raise  # another attempt cannot succeed
            return error, None, None
        self._gate.observe(
            response.status, response.headers, wall=time.time(), max_wait=self.retry.max_wait
        )
        if 200 <= response.status < 300:
            return response
        return error_from_response(response), response.status, server_wait(response)

    async def _wait_for_the_rate_limit(
        self, path: str, deadline: float | None, last: VoucherifyError | None
    ) -> None:
        """Wait as long as the rate limit asks before the next attempt.

        Raises:
            RateLimitError, VoucherifyError: see :meth:`_rate_limit_wait`.
            ClientClosedError: the client was closed meanwhile.
        """
        pause = self._rate_limit_wait(path, _time_left(deadline), last)
        if pause > 0:
            logger.debug("waiting %.2f s for the rate limit before GET %s", pause, path)
            await self._pause(pause)
            if self._closed:
                raise self._closed_error() from last

    def _attempt_timeout(self, time_left: float | None) -> tuple[aiohttp.ClientTimeout, bool]:
        """The next attempt's aiohttp timeout, and whether ``max_time`` cut it short."""
        total = self.timeout.total
        if time_left is None or (total is not None and total <= time_left):
            return self._client_timeout, False
        return aiohttp.ClientTimeout(
            total=max(time_left, 0.001), sock_connect=self.timeout.connect
        ), True

    def _rate_limit_wait(
        self, path: str, time_left: float | None, last: VoucherifyError | None
    ) -> float:
        """Seconds to wait before the next request, as the API's rate-limit headers and
        the client's pacing require (0: send now).

        Raises:
            RateLimitError: the API said no request may be sent for longer than
                ``retry.max_wait``; nothing is sent.
            VoucherifyError: the wait would end past ``max_time``: the last error, or
                a ``RequestTimeoutError``; nothing is sent.
        """
        wall = time.time()
        blocked = self._gate.blocked_for(wall=wall)
        if blocked > self.retry.max_wait:
            raise RateLimitError(
                f"the API's rate limit is used up for {blocked:.1f} s more, longer than "
                f"max_wait ({self.retry.max_wait:g} s); nothing was sent",
                retry_after=blocked,
                status=429,
                method="GET",
                url=str(self.base_url) + path,
            )
        pause = self._gate.reserve(monotonic=time.monotonic(), wall=wall)
        if time_left is not None and pause > 0 and pause >= time_left:
            if last is not None:
                raise last
            raise RequestTimeoutError(
                f"the rate limit asks to wait {pause:.2f} s, past the call's max_time "
                f"({self.retry.max_time:g} s); nothing was sent",
                method="GET",
                url=str(self.base_url) + path,
            )
        return pause

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
            params["end_date"] = format_end_date(truncate_to_ms(parse_moment(end_date)))
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
        stop = parse_moment(end_date) if end_date is not None else None
        start = parse_moment(since, name="since") if since is not None else None
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
        since: Any = None,
        end_date: Any = None,
        partitions: int = 8,
        page_size: int = MAX_LIMIT,
        cursor: str | None = None,
    ) -> AsyncActionScan:
        """Walk a long time range in parallel: every action in ``[since, end_date)`` exactly once.

        ``partitions`` walks (1..64) go back in time at once, each over its own part
        of the range, and are kept busy: when one is over, the walk with the most
        work left (judged from how much time its pages covered) is split at a
        millisecond and a new walk takes the older part. The parts never overlap
        (``since`` is inclusive, ``end_date`` exclusive), so each action comes once.

        - ``since`` (same forms as ``end_date``): without it, the whole history; where
          it begins is found with a few ``limit=1`` requests, never by walking it.
        - ``end_date``: without it, up to the newest action (found by the first page).
        - ``cursor``: a token from :attr:`AsyncActionScan.cursor` of an earlier scan
          with the same ``since`` and ``end_date``: yield every action it had not
          yielded yet, exactly once (``partitions`` and ``page_size`` may differ).

        **Order**: within a walk newest first; walks interleave as their pages
        arrive, so there is no global order. At most ``partitions`` pages wait in
        memory. The requests share this client's retries and rate limit.

        Returns an :class:`AsyncActionScan` (``async for``, ``aclose()``, ``async with``).

        Raises:
            TypeError, ValueError: a bad argument (``partitions`` not an int in
                1..64, ``since`` not before ``end_date``, a cursor token that is
                damaged or belongs to other arguments), at once; nothing is sent.
        """
        start = parse_moment(since, name="since") if since is not None else None
        stop = parse_moment(end_date) if end_date is not None else None
        check_limit(page_size, name="page_size")
        _check_partitions(partitions)
        if start is not None and stop is not None and not start < stop:
            raise ValueError(
                f"since ({start.isoformat()}) must be before end_date ({stop.isoformat()})"
            )
        parameters = scan_digest(start, stop)
        if cursor is not None:
            state = decode_scan_token(cursor, parameters)
            walks, lower = list(state.walks), state.lower
        else:
            walks, lower = first_walks(start, stop, partitions, now=datetime.now(UTC)), start
        return AsyncActionScan(
            ScanEngine(
                open_stream=functools.partial(self._scan_stream, page_size),
                probe=self._newest_before,
                walks=walks,
                lower=lower,
                finder_top=stop,
                partitions=partitions,
                page_size=page_size,
                parameters=parameters,
                background=self._in_flight,
                client_closed=lambda: self._closed,
            )
        )

    def _scan_stream(
        self,
        page_size: int,
        since: datetime | None,
        end: datetime | None,
        position: WalkPosition,
    ) -> AsyncActionStream:
        """A stream over ``[since, end)`` standing at ``position``: one walk of a scan."""
        walk: TimeWalk[PageEntry] = TimeWalk(page_size=page_size, end_date=end, since=since)
        walk.restore(position)
        return AsyncActionStream(self._fetch_list_response, walk, in_flight=self._in_flight)

    async def _newest_before(self, moment: datetime) -> datetime | None:
        """When the newest action created before ``moment`` was created (``None``: none)."""
        page = await self.list_async_actions(limit=1, end_date=moment)
        return page.async_actions[0].created_at if page.async_actions else None

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
            if details.status in _FINAL_STATUSES:
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
