"""Every error the library raises for API, network and payload problems.

The tree (``docs/errors.md`` draws the same one)::

    VoucherifyError                  root: catch this to catch everything below
    ├── VoucherifyAPIError           the API answered with an error status
    │   ├── BadRequestError          400, 422: the request was refused as invalid
    │   ├── AuthenticationError      401, 403: credentials missing, wrong, or not allowed
    │   ├── NotFoundError            404: no such async action
    │   ├── RateLimitError           429: too many requests; carries ``retry_after``
    │   └── ServerError              5xx: the API (or a proxy in front of it) failed
    ├── TransportError               no usable answer: connection failed or dropped
    │   ├── RequestTimeoutError      no answer within the timeout
    │   └── CertificateError         the server's TLS certificate was refused (not retried)
    ├── InvalidResponseError         an answer that is not what the API documents
    │   │                            (not JSON, truncated, missing or mistyped fields)
    │   └── ResponseTooLargeError    the body is larger than ``max_response_size``
    ├── PaginationError              a stream cannot advance without losing actions
    ├── ClientClosedError            the client was closed while a call, stream or scan
    │                                was using it (also a ``RuntimeError``)
    └── WaitTimeoutError             an action did not finish before the deadline

Invalid arguments are not API problems: they raise :class:`ValueError` or
:class:`TypeError` before any request is sent.

Lower-level exceptions (aiohttp, :mod:`json`) are translated at the edge and kept
as ``__cause__``; a payload that cannot be structured is explained by the JSON path
of the bad field instead of cattrs' own exception. No message here ever contains a
credential. Every error pickles (for process pools and task queues).

This module imports neither aiohttp nor asyncio.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypedDict, Unpack

if TYPE_CHECKING:
    from ._models import AsyncActionDetails

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "CertificateError",
    "ClientClosedError",
    "InvalidResponseError",
    "NotFoundError",
    "PaginationError",
    "RateLimitError",
    "RequestTimeoutError",
    "ResponseTooLargeError",
    "ServerError",
    "TransportError",
    "VoucherifyAPIError",
    "VoucherifyError",
    "WaitTimeoutError",
]


class _APIErrorFields(TypedDict, total=False):
    status: int
    code: int | None
    key: str | None
    details: str | None
    request_id: str | None
    resource_id: str | None
    resource_type: str | None
    method: str | None
    url: str | None
    body: bytes | None


def _rebuild(cls: type[VoucherifyError], message: str, state: dict[str, Any]) -> VoucherifyError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


def _join(parts: list[str]) -> str:
    return "; ".join(part for part in parts if part)


class VoucherifyError(Exception):
    """Root of everything this library raises for API, network or payload problems.

    ``request_id`` is the API's id for the request when one is known (from the
    error body or the ``X-Request-Id`` header): quote it to Voucherify's support.
    ``method`` and ``url`` name the request (the URL never carries credentials).
    """

    def __init__(
        self,
        message: str,
        *,
        request_id: str | None = None,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.request_id = request_id
        self.method = method
        self.url = url

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.message, dict(self.__dict__)))

    def _summary(self) -> str:
        """What happened, without the request context (subclasses add their fields)."""
        return self.message

    def __str__(self) -> str:
        where = " ".join(part for part in (self.method, self.url) if part)
        return _join(
            [
                self._summary(),
                where and f"request: {where}",
                f"request id: {self.request_id}" if self.request_id else "",
            ]
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class VoucherifyAPIError(VoucherifyError):
    """The API answered with an error status (any status that is not 2xx).

    Attributes mirror the API's error body: ``status`` (HTTP status), ``code``,
    ``key`` (``"invalid_query_params"``, ``"not_found"`` ...), ``message``,
    ``details``, ``request_id``, ``resource_id``, ``resource_type``. Fields the body
    leaves out are ``None``; a body that is not the API's JSON (a proxy's HTML
    page) leaves all of them ``None`` but ``status`` and a ``message`` that
    describes the body. Text copied from the body is cut to 500 characters;
    ``body`` holds the whole body as bytes (at most the client's
    ``max_response_size``), ``None`` when the error was not built from an answer.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        code: int | None = None,
        key: str | None = None,
        details: str | None = None,
        request_id: str | None = None,
        resource_id: str | None = None,
        resource_type: str | None = None,
        method: str | None = None,
        url: str | None = None,
        body: bytes | None = None,
    ) -> None:
        super().__init__(message, request_id=request_id, method=method, url=url)
        self.body = body
        self.status = status
        self.code = code
        self.key = key
        self.details = details
        self.resource_id = resource_id
        self.resource_type = resource_type

    def _summary(self) -> str:
        head = f"HTTP {self.status} {self.key}" if self.key else f"HTTP {self.status}"
        return _join([f"{head}: {self.message}", self.details or ""])


class BadRequestError(VoucherifyAPIError):
    """400 or 422: the API refused the request as invalid (``key`` says why)."""


class AuthenticationError(VoucherifyAPIError):
    """401 or 403: credentials are missing, wrong, or lack the scope for this call."""


class NotFoundError(VoucherifyAPIError):
    """404: the async action (or path) does not exist."""


class RateLimitError(VoucherifyAPIError):
    """429: the project's rate limit was hit.

    ``retry_after`` is how many seconds the API asked to wait (from
    ``Retry-After`` or ``X-Rate-Limit-Retry``), or ``None`` when it did not say.
    It is raised once retries are used up, or at once when the asked wait is
    longer than the retry policy's ``max_wait``, so that the caller decides.
    """

    def __init__(
        self, message: str, *, retry_after: float | None = None, **fields: Unpack[_APIErrorFields]
    ) -> None:
        super().__init__(message, **fields)
        self.retry_after = retry_after

    def _summary(self) -> str:
        wait = f"retry after {self.retry_after:g} s" if self.retry_after is not None else ""
        return _join([super()._summary(), wait])


class ServerError(VoucherifyAPIError):
    """5xx: the API, or a proxy in front of it, failed to answer properly."""


class TransportError(VoucherifyError):
    """No usable answer: the connection could not be made, or it dropped mid-answer."""


class RequestTimeoutError(TransportError):
    """No complete answer within the client's timeout."""


class CertificateError(TransportError):
    """The server's TLS certificate was refused (expired, self-signed, wrong host).

    Never retried: it cannot succeed on retry. The ssl error is the ``__cause__``.
    """


class InvalidResponseError(VoucherifyError):
    """The API answered 2xx, but not with what it documents.

    The body is not JSON (an HTML page, a truncated document), or its payload
    cannot be structured (a missing ``id``/``created_at``, a wrong type). ``status``
    is the HTTP status, ``field`` the JSON path of the bad value when known
    (``$.async_actions[3].created_at``), ``excerpt`` the start of the body, ``body``
    the whole body as bytes when it was read (``None`` otherwise).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        field: str | None = None,
        excerpt: str | None = None,
        request_id: str | None = None,
        method: str | None = None,
        url: str | None = None,
        body: bytes | None = None,
    ) -> None:
        super().__init__(message, request_id=request_id, method=method, url=url)
        self.body = body
        self.status = status
        self.field = field
        self.excerpt = excerpt

    def _summary(self) -> str:
        head = f"HTTP {self.status}: " if self.status is not None else ""
        where = f" (at {self.field})" if self.field else ""
        body = f"; body starts: {self.excerpt!r}" if self.excerpt else ""
        return f"{head}{self.message}{where}{body}"


class ResponseTooLargeError(InvalidResponseError):
    """The body (counted after decompression) is larger than the client's
    ``max_response_size``: reading stopped there and the connection was closed.
    Never retried."""


class PaginationError(VoucherifyError):
    """A stream cannot advance without losing or repeating actions.

    Raised instead of looping forever or skipping silently: for example when a
    full page (``limit=100``) holds only actions already yielded, which means more
    than 100 actions share one millisecond, or the server ignores ``end_date``.
    ``end_date`` is the bound the stream was stuck at.
    """

    def __init__(self, message: str, *, end_date: str | None = None) -> None:
        super().__init__(message)
        self.end_date = end_date


class ClientClosedError(VoucherifyError, RuntimeError):
    """The client was closed while a call, a stream or a scan was using it, or is
    used after :meth:`~voucherify_async.VoucherifyClient.close`.

    Also a :class:`RuntimeError`, so code written for a closed client's earlier
    ``RuntimeError`` still catches it. It is not a cancellation: ``asyncio.timeout``,
    ``TaskGroup`` and ``gather`` see an ordinary error.
    """


class WaitTimeoutError(VoucherifyError):
    """``wait_for_async_action`` reached its deadline before the action finished.

    ``async_action_id`` names the action; ``last`` is the last state seen (an
    :class:`~voucherify_async.AsyncActionDetails`, or ``None`` if no poll answered
    in time), so that the caller can report its status and progress.
    """

    def __init__(
        self, message: str, *, async_action_id: str, last: AsyncActionDetails | None
    ) -> None:
        super().__init__(message)
        self.async_action_id = async_action_id
        self.last = last
