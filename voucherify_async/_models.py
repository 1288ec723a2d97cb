"""The data the Async Actions API returns, as frozen, slotted attrs classes.

Documented ``type``/``status``/``operation_status`` values are :class:`enum.StrEnum`
members; a value the API adds later is kept verbatim as a plain ``str``. Either way
it compares equal to its string: ``action.status == "DONE"``.

Instances are built by the converter in ``_convert`` (never by hand from JSON).
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

import attrs

__all__ = [
    "AsyncAction",
    "AsyncActionDetails",
    "AsyncActionResult",
    "AsyncActionStatus",
    "AsyncActionType",
    "AsyncActionsPage",
    "OperationStatus",
]


class AsyncActionType(enum.StrEnum):
    """The 22 documented async action types (``CUSTOMERS.IMPORT_CSV`` ...)."""

    CAMPAIGN_VOUCHERS_IMPORT = "CAMPAIGN.VOUCHERS_IMPORT"
    CAMPAIGN_VOUCHERS_IMPORT_CSV = "CAMPAIGN.VOUCHERS_IMPORT_CSV"
    CAMPAIGN_VOUCHERS_UPDATE = "CAMPAIGN.VOUCHERS_UPDATE"
    CAMPAIGN_VOUCHERS_DELETE = "CAMPAIGN.VOUCHERS_DELETE"
    CAMPAIGN_VOUCHERS_GENERATE = "CAMPAIGN.VOUCHERS_GENERATE"
    CAMPAIGNS_METADATA_KEY_PURGE = "CAMPAIGNS.METADATA_KEY_PURGE"
    CUSTOMERS_IMPORT_CSV = "CUSTOMERS.IMPORT_CSV"
    CUSTOMERS_BULK_UPDATE = "CUSTOMERS.BULK_UPDATE"
    CUSTOMERS_METADATA_UPDATE = "CUSTOMERS.METADATA_UPDATE"
    CUSTOMERS_METADATA_KEY_PURGE = "CUSTOMERS.METADATA_KEY_PURGE"
    PRODUCTS_BULK_UPDATE = "PRODUCTS.BULK_UPDATE"
    PRODUCTS_METADATA_UPDATE = "PRODUCTS.METADATA_UPDATE"
    PRODUCTS_METADATA_KEY_PURGE = "PRODUCTS.METADATA_KEY_PURGE"
    PRODUCTS_IMPORT_CSV = "PRODUCTS.IMPORT_CSV"
    SKUS_IMPORT_CSV = "SKUS.IMPORT_CSV"
    VOUCHERS_IMPORT = "VOUCHERS.IMPORT"
    VOUCHERS_IMPORT_CSV = "VOUCHERS.IMPORT_CSV"
    VOUCHERS_BULK_UPDATE = "VOUCHERS.BULK_UPDATE"
    VOUCHERS_METADATA_UPDATE = "VOUCHERS.METADATA_UPDATE"
    VOUCHERS_METADATA_KEY_PURGE = "VOUCHERS.METADATA_KEY_PURGE"
    ORDERS_IMPORT = "ORDERS.IMPORT"
    ORDERS_METADATA_KEY_PURGE = "ORDERS.METADATA_KEY_PURGE"


class AsyncActionStatus(enum.StrEnum):
    """Whether the action has finished: ``DONE``, ``ENQUEUED``, ``FAILED``, ``IN_PROGRESS``."""

    DONE = "DONE"
    ENQUEUED = "ENQUEUED"
    FAILED = "FAILED"
    IN_PROGRESS = "IN_PROGRESS"


class OperationStatus(enum.StrEnum):
    """How processing went, on some types only: ``FAILED``, ``SUCCESS``, ``UNKNOWN``."""

    FAILED = "FAILED"
    SUCCESS = "SUCCESS"
    UNKNOWN = "UNKNOWN"


@attrs.frozen(kw_only=True)
class AsyncAction:
    """One async action as the list call returns it (newest first in a stream).

    ``id`` and ``created_at`` are always present; every other field is ``None``
    when the API leaves it out. ``type``, ``status`` and ``operation_status`` are
    enum members when documented, else the API's string, verbatim.
    Datetimes are aware, in UTC. ``processing_time`` is in milliseconds,
    ``progress`` in percent (0..100).
    """

    id: str
    created_at: datetime
    type: AsyncActionType | str | None = None
    status: AsyncActionStatus | str | None = None
    operation_status: OperationStatus | str | None = None
    updated_at: datetime | None = None
    request_id: str | None = None
    processing_time: int | None = None
    progress: int | None = None
    object: str = "async_action"


@attrs.frozen(kw_only=True)
class AsyncActionsPage:
    """One page of ``GET /v1/async-actions``.

    ``has_more`` is the API's flag when it sends one; when it leaves the flag out,
    the page counts as "maybe more" (``True``) exactly when it is full: as many
    actions as the ``limit`` asked for (or, with no ``limit`` sent, any action at
    all). ``has_more_reported`` keeps what the API said: ``True``, ``False`` or
    ``None`` when it said nothing.
    """

    async_actions: tuple[AsyncAction, ...]
    has_more: bool
    has_more_reported: bool | None = None

    def __iter__(self) -> Iterator[AsyncAction]:
        return iter(self.async_actions)

    def __len__(self) -> int:
        return len(self.async_actions)


@attrs.frozen(kw_only=True, eq=False)  # equality is the Mapping's: equal to its raw dict
class AsyncActionResult(Mapping[str, Any]):
    """What an action did: the raw ``result`` mapping, with typed access to the common fields.

    It is a read-only mapping over the JSON the API sent (``result["done_count"]``,
    ``dict(result)``), and the fields shared by the 22 documented shapes are
    attributes, ``None`` when that shape has no such field:

    - ``message``: the human-readable summary (imports, deletes, purges);
    - ``done_count`` / ``failed_count``: how many items succeeded / failed;
    - ``failed``: the items that failed (their keys differ by type: ``code``,
      ``source_id``, ``row``, ``reason`` ...); always a tuple of mappings, also when
      the API sends a single object;
    - ``errors``, ``reports`` (report URLs) and ``reports_available_till``:
      bulk and metadata updates.
    """

    raw: Mapping[str, Any] = attrs.field(repr=False)
    message: str | None = None
    done_count: int | None = None
    failed_count: int | None = None
    failed: tuple[Mapping[str, Any], ...] | None = None
    errors: tuple[Any, ...] | None = None
    reports: tuple[str, ...] | None = None
    reports_available_till: datetime | None = None

    def __getitem__(self, key: str) -> Any:
        return self.raw[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.raw)

    def __len__(self) -> int:
        return len(self.raw)


@attrs.frozen(kw_only=True)
class AsyncActionDetails(AsyncAction):
    """One action as the get call returns it: the list fields plus ``result``.

    ``result`` is ``None`` while the action has no result yet (``ENQUEUED``,
    ``IN_PROGRESS``) or when the API sends none.
    """

    result: AsyncActionResult | None = None
