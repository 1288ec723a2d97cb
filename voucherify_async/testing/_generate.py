"""Realistic, deterministic async actions for the fake to serve: :func:`generate_actions`.

Everything here is pure and seeded: the same arguments give the same list, on every
platform. The shapes follow the vendor's get examples, one per type, in its OpenAPI
description (voucherifyio/voucherify-openapi; the test suite holds a copy).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from voucherify_async._models import AsyncActionStatus, AsyncActionType, OperationStatus
from voucherify_async.testing._timestamps import format_timestamp

__all__ = [
    "IMPORT_TYPES",
    "MESSAGE_TYPES",
    "UPDATE_TYPES",
    "generate_actions",
    "make_result",
]

_T = AsyncActionType

#: Types whose result is ``{"message", "done_count"}``: type -> (verb, plural noun).
MESSAGE_TYPES: dict[str, tuple[str, str]] = {
    _T.CAMPAIGN_VOUCHERS_UPDATE.value: ("Updated", "vouchers"),
    _T.CAMPAIGN_VOUCHERS_DELETE.value: ("Deleted", "vouchers"),
    _T.CAMPAIGN_VOUCHERS_GENERATE.value: ("Generated", "vouchers"),
    _T.CAMPAIGNS_METADATA_KEY_PURGE.value: ("Updated", "campaigns"),
    _T.CUSTOMERS_METADATA_KEY_PURGE.value: ("Updated", "customers"),
    _T.PRODUCTS_METADATA_KEY_PURGE.value: ("Updated", "products"),
    _T.VOUCHERS_METADATA_KEY_PURGE.value: ("Updated", "vouchers"),
    _T.ORDERS_METADATA_KEY_PURGE.value: ("Updated", "orders"),
}

#: Imports, result ``{"message", "failed": [...], "done_count", "failed_count"}``:
#: type -> (singular noun, the keys of each ``failed`` item, as in the vendor's examples).
IMPORT_TYPES: dict[str, tuple[str, tuple[str, ...]]] = {
    _T.CAMPAIGN_VOUCHERS_IMPORT.value: ("voucher", ("code", "reason")),
    _T.CAMPAIGN_VOUCHERS_IMPORT_CSV.value: ("voucher", ("code", "row", "reason")),
    _T.CUSTOMERS_IMPORT_CSV.value: ("customer", ("source_id", "row", "reason")),
    _T.PRODUCTS_IMPORT_CSV.value: ("product", ("row", "reason")),
    _T.SKUS_IMPORT_CSV.value: ("sku", ("row", "reason")),
    _T.VOUCHERS_IMPORT.value: ("voucher", ("code", "reason")),
    _T.VOUCHERS_IMPORT_CSV.value: ("voucher", ("code", "row", "reason")),
    _T.ORDERS_IMPORT.value: ("order", ("source_id", "reason")),
}

#: Bulk and metadata updates, result ``{"done_count", "failed_count", "reports",
#: "reports_available_till", "errors"}``, with ``operation_status`` on the action:
#: type -> the keys of each ``errors`` item (as the vendor's schema requires them).
UPDATE_TYPES: dict[str, tuple[str, ...]] = {
    _T.CUSTOMERS_BULK_UPDATE.value: ("message", "details", "key", "source_id"),
    _T.CUSTOMERS_METADATA_UPDATE.value: ("message", "details", "key"),
    _T.PRODUCTS_BULK_UPDATE.value: ("message", "details", "key", "source_id"),
    _T.PRODUCTS_METADATA_UPDATE.value: ("message", "details", "key"),
    _T.VOUCHERS_BULK_UPDATE.value: ("message", "details", "key", "code"),
    _T.VOUCHERS_METADATA_UPDATE.value: ("message", "details", "key"),
}

if set(MESSAGE_TYPES) | set(IMPORT_TYPES) | set(UPDATE_TYPES) != {t.value for t in _T} or (
    len(MESSAGE_TYPES) + len(IMPORT_TYPES) + len(UPDATE_TYPES) != len(_T)
):  # pragma: no cover - a guard for whoever edits AsyncActionType
    raise AssertionError("every AsyncActionType must belong to exactly one result family")

_TYPES: tuple[str, ...] = tuple(t.value for t in _T)
_TYPE_SET = frozenset(_TYPES)
_DONE = AsyncActionStatus.DONE.value
_FAILED = AsyncActionStatus.FAILED.value
_IN_PROGRESS = AsyncActionStatus.IN_PROGRESS.value
_ENQUEUED = AsyncActionStatus.ENQUEUED.value
_ORDERS_IMPORT = _T.ORDERS_IMPORT.value
_OPERATION_STATUS = {
    _DONE: OperationStatus.SUCCESS.value,
    _FAILED: OperationStatus.FAILED.value,
    _IN_PROGRESS: OperationStatus.UNKNOWN.value,
    _ENQUEUED: OperationStatus.UNKNOWN.value,
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_IMPORT_REASONS = (
    "unit: must be a number, property is required (actual value is 'EUR')",
    "Voucher Type is required",
    "acquisition_channel: must be a string, must be equal to one of Facebook,Twitter,Website",
    "vendor: must be a string, property is required",
    "Resource sku with id size-small is in use by products with ids [prod_0b0e3441c2462eff2c]",
    "Duplicate code",
    "Internal error",
)
_ERROR_KINDS = (
    ("Resource not found", "Cannot find the resource with the given id", "not_found"),
    ("Invalid payload", "Property metadata.tier: must be a string", "invalid_payload"),
    ("Duplicate resource", "A resource with the same id already exists", "duplicate_found"),
)
_REPORTS_KEPT = timedelta(days=30) // timedelta(milliseconds=1)
# Spreads sequence numbers over 32 bits (an odd multiplier is a bijection mod 2**32),
# so ids are unique by construction yet look random.
_SPREAD = 0x9E3779B1


def generate_actions(
    count: int,
    *,
    seed: int = 0,
    newest: datetime = datetime(2026, 1, 1, tzinfo=UTC),
    tie_rate: float = 0.1,
    max_tie: int = 5,
) -> list[dict[str, Any]]:
    """Make ``count`` realistic async actions, newest first, as JSON-ready get bodies.

    Deterministic for a given ``seed``. The newest action is created at ``newest``
    (to the millisecond); each older one some random gap earlier (mostly seconds,
    now and then hours). With probability ``tie_rate`` a creation instant is shared
    by a group of 2..``max_tie`` actions (a one-millisecond tie).

    Each action has ``id`` (``aa_`` + 18 hex, unique), ``type`` (all 22 documented
    types, evenly), ``status`` (about 90% DONE, 7% FAILED, 2% IN_PROGRESS, 1%
    ENQUEUED), ``operation_status`` (bulk and metadata updates only), ``created_at``,
    ``updated_at``, ``request_id``, ``progress``, ``processing_time`` (finished
    actions only, equal to ``updated_at - created_at``), ``object`` and, once
    finished, ``result`` in its type's shape; a FAILED action's result lists its
    failures (message-only types report ``done_count`` 0).

    Raises:
        ValueError: ``count`` < 0, ``tie_rate`` outside 0..1, ``max_tie`` outside
            2..99 (a tie group must fit in one page of 100), or ``newest`` naive.
    """
    _check_generate_args(count, tie_rate, max_tie, newest)

    rng = random.Random(seed)  # noqa: S311 - seeded on purpose: reproducible data
    bits = rng.getrandbits
    rand = rng.random
    created_ms = (newest - _EPOCH) // timedelta(milliseconds=1)
    created_at = ""
    actions: list[dict[str, Any]] = []
    left_in_group = 0
    for index in range(count):
        if left_in_group == 0:
            if index:
                # Mostly seconds apart, one in sixteen up to a couple of hours.
                created_ms -= 1 + (bits(23) if bits(4) == 0 else bits(16))
            left_in_group = 2 + bits(16) % (max_tie - 1) if rand() < tie_rate else 1
            created_at = format_timestamp(created_ms)
        left_in_group -= 1
        actions.append(_action(rng, index, created_ms, created_at))
    return actions


def _check_generate_args(count: int, tie_rate: float, max_tie: int, newest: datetime) -> None:
    """Raise ValueError for the arguments :func:`generate_actions` refuses."""
    if count < 0:
        raise ValueError(f"count must be >= 0, not {count}")
    if not 0.0 <= tie_rate <= 1.0:
        raise ValueError(f"tie_rate must be within 0..1, not {tie_rate}")
    if not 2 <= max_tie <= 99:
        raise ValueError(f"max_tie must be within 2..99, not {max_tie}")
    if newest.utcoffset() is None:
        raise ValueError("newest must be an aware datetime (for example tzinfo=UTC)")


def _action(rng: random.Random, index: int, created_ms: int, created_at: str) -> dict[str, Any]:
    """The ``index``-th generated action, created at ``created_ms`` (drawn from ``rng``)."""
    bits = rng.getrandbits
    draw = bits(32)
    action_type = _TYPES[(draw & 0xFFFF) % len(_TYPES)]
    roll = draw >> 22  # 0..1023
    status = (
        _DONE
        if roll < 922
        else _FAILED
        if roll < 994
        else _IN_PROGRESS
        if roll < 1014
        else _ENQUEUED
    )
    action: dict[str, Any] = {
        "id": f"aa_{(bits(40) << 32) | ((index * _SPREAD) & 0xFFFFFFFF):018x}",
        "type": action_type,
        "status": status,
    }
    if action_type in UPDATE_TYPES:
        action["operation_status"] = _OPERATION_STATUS[status]
    if status in (_DONE, _FAILED):
        processing_time = 50 + bits(11)
        updated_ms = created_ms + processing_time
        action["result"] = _result(rng, action_type, status == _FAILED, updated_ms)
        progress = 100
    elif status == _IN_PROGRESS:
        processing_time = 0
        updated_ms = created_ms + bits(10)
        progress = 1 + bits(10) % 99
    else:
        processing_time = progress = 0
        updated_ms = created_ms
    action["created_at"] = created_at
    action["updated_at"] = format_timestamp(updated_ms)
    action["request_id"] = f"v-{bits(72):018x}"
    action["progress"] = progress
    if processing_time:
        action["processing_time"] = processing_time
    action["object"] = "async_action"
    return action


def make_result(
    rng: random.Random, action_type: str, *, failed: bool, finished_ms: int
) -> dict[str, Any]:
    """A realistic ``result`` for an action of ``action_type`` finished at ``finished_ms``.

    The same shapes :func:`generate_actions` makes (drawn from ``rng``); a failed
    action's result lists its failures.

    Raises:
        ValueError: ``action_type`` is not one of the 22 documented types.
    """
    if action_type not in _TYPE_SET:
        raise ValueError(f"no result shape is known for type {action_type!r}: pass one")
    return _result(rng, action_type, failed, finished_ms)


def _result(rng: random.Random, action_type: str, failed: bool, now: int) -> dict[str, Any]:
    """The ``result`` of a finished action of ``action_type``, in its family's shape."""
    bits = rng.getrandbits
    draw = bits(16)
    if failed:
        done = 0
        failed_count = 1 + (draw & 3)
    else:
        done = 1 + bits((draw >> 2) % 13)
        failed_count = 1 + (draw & 3) if draw >> 13 == 0 else 0

    shape = MESSAGE_TYPES.get(action_type)
    if shape is not None:
        return {"message": f"{shape[0]} {done} {shape[1]}.", "done_count": done}

    import_shape = IMPORT_TYPES.get(action_type)
    if import_shape is not None:
        noun, keys = import_shape
        nullable_source = action_type == _ORDERS_IMPORT
        return {
            "message": f"{done} {noun}(s) imported successfully, {failed_count} failed.",
            "failed": [
                _failed_item(rng, keys, row, nullable_source=nullable_source)
                for row in range(1, failed_count + 1)
            ],
            "done_count": done,
            "failed_count": failed_count,
        }

    error_keys = UPDATE_TYPES[action_type]
    return {
        "done_count": done,
        "failed_count": failed_count,
        # The vendor's examples show a placeholder: these URLs are made up (and unserved).
        "reports": [f"https://download.voucherify.io/v1/reports/rpt_{bits(72):018x}.csv"],
        "reports_available_till": format_timestamp(now + _REPORTS_KEPT),
        "errors": [_error_item(rng, error_keys) for _ in range(failed_count)],
    }


def _failed_item(
    rng: random.Random, keys: tuple[str, ...], row: int, *, nullable_source: bool
) -> dict[str, Any]:
    item: dict[str, Any] = {}
    for key in keys:
        if key == "code":
            item[key] = f"PROMO-{rng.getrandbits(24):06X}"
        elif key == "row":
            item[key] = row
        elif key == "source_id":
            # As in the vendor's examples: ORDERS.IMPORT may say null, CUSTOMERS.IMPORT_CSV "".
            item[key] = (
                (None if nullable_source else "")
                if rng.getrandbits(2) == 0
                else f"src-{rng.getrandbits(32):08x}"
            )
        else:
            item[key] = rng.choice(_IMPORT_REASONS)
    return item


def _error_item(rng: random.Random, keys: tuple[str, ...]) -> dict[str, Any]:
    message, details, key = rng.choice(_ERROR_KINDS)
    item: dict[str, Any] = {"message": message, "details": details, "key": key}
    if "source_id" in keys:
        item["source_id"] = f"src-{rng.getrandbits(32):08x}"
    if "code" in keys:
        item["code"] = f"PROMO-{rng.getrandbits(24):06X}"
    return item
