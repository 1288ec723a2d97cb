"""The cattrs converter that turns the API's JSON into the models of ``_models``.

Pure: imports neither aiohttp nor asyncio. Built by :func:`make_converter`, never
the global converter. The rules, all in :func:`configure_converter`:

- ``str`` fields take only strings and ``int`` fields only integers (a ``bool``
  or a numeric string is a type error, never coerced);
- datetimes are ISO-8601 strings (``2022-09-05T11:40:17.098Z``) and become aware
  UTC datetimes; a timestamp without an offset is read as UTC;
- ``type``, ``status`` and ``operation_status`` become enum members when
  documented and stay the API's string, verbatim, when not (never an error);
- unknown keys are ignored; a missing optional field is ``None``; a missing
  ``id`` or ``created_at`` is an error;
- ``result`` becomes an :class:`AsyncActionResult`: the raw mapping plus typed
  common fields (``failed`` is always a tuple, also when the API sends one object).

Errors are cattrs' own; ``_decode`` translates them into
:class:`~voucherify_async.InvalidResponseError` with the JSON path.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

import cattrs

from ._models import (
    AsyncAction,
    AsyncActionResult,
    AsyncActionStatus,
    AsyncActionType,
    OperationStatus,
)

__all__ = ["make_converter", "parse_timestamp"]

_E = TypeVar("_E", bound=enum.StrEnum)


def parse_timestamp(value: object) -> datetime:
    """Parse an API timestamp into an aware UTC datetime.

    Raises:
        TypeError: not a string.
        ValueError: not ISO-8601.
    """
    if type(value) is not str:
        if type(value) is datetime and value.tzinfo is UTC:
            return value  # already parsed (the stream reads created_at before structuring)
        raise TypeError(f"expected an ISO-8601 timestamp string, got {type(value).__name__}")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    if parsed.tzinfo is UTC:
        return parsed
    return parsed.astimezone(UTC)


def _structure_str(value: object, _: type) -> str:
    if type(value) is not str:
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _structure_int(value: object, _: type) -> int:
    if type(value) is not int:
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    return value


def _structure_datetime(value: object, _: type) -> datetime:
    return parse_timestamp(value)


# Optional fields get one hook each instead of cattrs' generic Optional handling,
# which looks the inner hook up again on every call (the hot path: per action, per field).


def _structure_optional_str(value: object, _: object) -> str | None:
    if value is None or type(value) is str:
        return value
    raise TypeError(f"expected a string, got {type(value).__name__}")


def _structure_optional_int(value: object, _: object) -> int | None:
    if value is None or type(value) is int:
        return value
    raise TypeError(f"expected an integer, got {type(value).__name__}")


def _structure_optional_datetime(value: object, _: object) -> datetime | None:
    return None if value is None else parse_timestamp(value)


def _lenient_enum(enum_type: type[_E]) -> Callable[[object, Any], _E | str | None]:
    members: dict[str, _E] = {member.value: member for member in enum_type}

    def structure(value: object, _: Any) -> _E | str | None:
        if value is None:
            return None
        if type(value) is not str:
            raise TypeError(f"expected a string, got {type(value).__name__}")
        return members.get(value, value)

    return structure


def _optional(value: Mapping[str, Any], key: str, kind: type) -> Any:
    item = value.get(key)
    if item is not None and (type(item) is not kind):
        raise TypeError(f"result.{key}: expected {kind.__name__}, got {type(item).__name__}")
    return item


def _structure_result(value: object, _: type) -> AsyncActionResult:
    if not isinstance(value, Mapping):
        raise TypeError(f"expected a JSON object, got {type(value).__name__}")
    failed = value.get("failed")
    if isinstance(failed, Mapping):
        failed = (failed,)
    elif isinstance(failed, list):
        if not all(isinstance(item, Mapping) for item in failed):
            raise TypeError("result.failed: expected a list of objects")
        failed = tuple(failed)
    elif failed is not None:
        raise TypeError(f"result.failed: expected a list, got {type(failed).__name__}")
    errors = _optional(value, "errors", list)
    reports = _optional(value, "reports", list)
    if reports is not None and not all(type(item) is str for item in reports):
        raise TypeError("result.reports: expected a list of strings")
    till = value.get("reports_available_till")
    return AsyncActionResult(
        raw=value,
        message=_optional(value, "message", str),
        done_count=_optional(value, "done_count", int),
        failed_count=_optional(value, "failed_count", int),
        failed=failed,
        errors=tuple(errors) if errors is not None else None,
        reports=tuple(reports) if reports is not None else None,
        reports_available_till=parse_timestamp(till) if till is not None else None,
    )


def _is(expected: object) -> Callable[[Any], bool]:
    def predicate(candidate: Any) -> bool:
        return bool(candidate == expected)

    return predicate


def configure_converter(converter: cattrs.Converter) -> None:
    """Register every rule listed in this module's docstring on ``converter``."""
    converter.register_structure_hook(str, _structure_str)
    converter.register_structure_hook(int, _structure_int)
    converter.register_structure_hook(datetime, _structure_datetime)
    converter.register_structure_hook_func(_is(str | None), _structure_optional_str)
    converter.register_structure_hook_func(_is(int | None), _structure_optional_int)
    converter.register_structure_hook_func(_is(datetime | None), _structure_optional_datetime)
    converter.register_structure_hook(AsyncActionResult, _structure_result)
    for enum_type in (AsyncActionType, AsyncActionStatus, OperationStatus):
        converter.register_structure_hook_func(
            _is(enum_type | str | None), _lenient_enum(enum_type)
        )


def make_converter(*, detailed_validation: bool = False) -> cattrs.Converter:
    """Build a converter for this library's models (see the module docstring for its rules).

    ``detailed_validation=True`` makes cattrs collect the path of every bad value
    (slower; used to explain a failure after the fast path raised).
    """
    converter = cattrs.Converter(
        detailed_validation=detailed_validation,
        forbid_extra_keys=False,
        prefer_attrib_converters=False,
    )
    configure_converter(converter)
    # Build the structuring functions now, so the first response pays nothing extra.
    converter.get_structure_hook(AsyncAction)
    return converter
