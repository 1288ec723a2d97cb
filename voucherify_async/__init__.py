"""voucherify-async: an asyncio client for Voucherify's Async Actions API.

::

    from voucherify_async import VoucherifyClient

    async with VoucherifyClient(app_id="...", app_token="...") as client:
        page = await client.list_async_actions(limit=10)
        async for action in client.iter_async_actions(page_size=100):
            ...
        details = await client.get_async_action("aa_0ba518c55290c6fd62")

Everything public is importable from here; the modules behind it are private.
The fake server for tests is :mod:`voucherify_async.testing`.
"""

import logging

from ._client import VoucherifyClient
from ._config import RateLimit, RetryPolicy, Timeout
from ._exceptions import (
    AuthenticationError,
    BadRequestError,
    CertificateError,
    ClientClosedError,
    InvalidResponseError,
    NotFoundError,
    PaginationError,
    RateLimitError,
    RequestTimeoutError,
    ResponseTooLargeError,
    ServerError,
    TransportError,
    VoucherifyAPIError,
    VoucherifyError,
    WaitTimeoutError,
)
from ._models import (
    AsyncAction,
    AsyncActionDetails,
    AsyncActionResult,
    AsyncActionsPage,
    AsyncActionStatus,
    AsyncActionType,
    OperationStatus,
)
from ._scan import AsyncActionScan
from ._stream import AsyncActionStream
from ._version import __version__

# A library never configures logging: without the application's own handlers, its
# records go nowhere (not to Python's last-resort handler on stderr).
logging.getLogger("voucherify_async").addHandler(logging.NullHandler())

__all__ = [
    "AsyncAction",
    "AsyncActionDetails",
    "AsyncActionResult",
    "AsyncActionScan",
    "AsyncActionStatus",
    "AsyncActionStream",
    "AsyncActionType",
    "AsyncActionsPage",
    "AuthenticationError",
    "BadRequestError",
    "CertificateError",
    "ClientClosedError",
    "InvalidResponseError",
    "NotFoundError",
    "OperationStatus",
    "PaginationError",
    "RateLimit",
    "RateLimitError",
    "RequestTimeoutError",
    "ResponseTooLargeError",
    "RetryPolicy",
    "ServerError",
    "Timeout",
    "TransportError",
    "VoucherifyAPIError",
    "VoucherifyClient",
    "VoucherifyError",
    "WaitTimeoutError",
    "__version__",
]
