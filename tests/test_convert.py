"""Tests of the models (``_models``) and the converter that builds them (``_convert``).

Every vendor example (copied into ``tests/fixtures`` from the vendor's public OpenAPI
description, see ``tests/fixtures/SOURCES.md`` when present) must decode into typed
models whose fields match the raw JSON. Table-driven tests pin the converter's rules
(datetimes, lenient enums, unknown keys, missing fields); hypothesis pins the
datetime and enum rules over arbitrary values.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, MutableMapping
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import attrs
import cattrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from voucherify_async._convert import make_converter, parse_timestamp
from voucherify_async._decode import RawResponse, decode_details, decode_page
from voucherify_async._models import (
    AsyncAction,
    AsyncActionDetails,
    AsyncActionResult,
    AsyncActionsPage,
    AsyncActionStatus,
    AsyncActionType,
    OperationStatus,
)

FIXTURES = Path(__file__).parent / "fixtures"
GET_EXAMPLES: dict[str, Any] = {
    key: entry["value"]
    for key, entry in json.loads(
        (FIXTURES / "examples.get-async-action.200.json").read_text("utf-8")
    ).items()
}
LIST_EXAMPLE: dict[str, Any] = json.loads(
    (FIXTURES / "examples.list-async-actions.200.json").read_text("utf-8")
)["List Async Actions"]["value"]

MINIMAL_ACTION: dict[str, Any] = {"id": "aa_1", "created_at": "2022-09-05T11:40:17.098Z"}


def ok(payload: Any) -> RawResponse:
    """A 200 answer whose body is ``payload`` as JSON."""
    return RawResponse(
        status=200,
        headers={"Content-Type": "application/json"},
        body=json.dumps(payload).encode(),
        method="GET",
        url="https://api.voucherify.io/v1/async-actions",
    )


def utc(text: str) -> datetime:
    """The API's ``2022-09-05T11:40:17.098Z`` parsed independently of the code under test."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z").astimezone(UTC)


def test_fixtures_hold_one_get_example_per_documented_type() -> None:
    """The 22 get examples are keyed by exactly the 22 documented types, and the
    enum lists exactly those: no documented type is missing from the model."""
    assert len(GET_EXAMPLES) == 22
    assert set(GET_EXAMPLES) == {member.value for member in AsyncActionType}


# --- every vendor example decodes --------------------------------------------------


@pytest.mark.parametrize("key", sorted(GET_EXAMPLES))
def test_every_get_example_decodes_with_fields_matching_the_raw_json(key: str) -> None:
    """Each vendor get example becomes an ``AsyncActionDetails`` whose fields equal the
    JSON's, with documented enum values as enum members and datetimes aware UTC."""
    raw = GET_EXAMPLES[key]
    details = decode_details(ok(raw))

    assert type(details) is AsyncActionDetails
    assert details.id == raw["id"]
    assert isinstance(details.type, AsyncActionType)
    assert details.type == raw["type"]
    assert isinstance(details.status, AsyncActionStatus)
    assert details.status == raw["status"]
    if "operation_status" in raw:
        assert isinstance(details.operation_status, OperationStatus)
        assert details.operation_status == raw["operation_status"]
    else:
        assert details.operation_status is None
    assert details.created_at == utc(raw["created_at"])
    assert details.created_at.utcoffset() == timedelta(0)
    assert details.updated_at == utc(raw["updated_at"])
    assert details.updated_at is not None
    assert details.updated_at.utcoffset() == timedelta(0)
    assert details.request_id == raw["request_id"]
    assert details.progress == raw["progress"]
    assert details.processing_time == raw["processing_time"]
    assert details.object == raw["object"]


@pytest.mark.parametrize("key", sorted(GET_EXAMPLES))
def test_every_get_example_has_a_typed_result_matching_the_raw_json(key: str) -> None:
    """``result``'s typed attributes equal the raw ``result`` values: ``failed`` is
    always a tuple of the raw items (also for ORDERS.IMPORT), ``reports`` and
    ``errors`` tuples, ``reports_available_till`` aware UTC; absent ones are ``None``."""
    raw_result = GET_EXAMPLES[key]["result"]
    result = decode_details(ok(GET_EXAMPLES[key])).result

    assert isinstance(result, AsyncActionResult)
    assert result.message == raw_result.get("message")
    assert result.done_count == raw_result.get("done_count")
    assert result.failed_count == raw_result.get("failed_count")
    if "failed" in raw_result:
        assert type(result.failed) is tuple
        assert result.failed == tuple(raw_result["failed"])
    else:
        assert result.failed is None
    if "reports" in raw_result:
        assert result.reports == tuple(raw_result["reports"])
        assert result.reports_available_till == utc(raw_result["reports_available_till"])
        assert result.reports_available_till is not None
        assert result.reports_available_till.utcoffset() == timedelta(0)
    else:
        assert result.reports is None
        assert result.reports_available_till is None
    if "errors" in raw_result:
        assert result.errors == tuple(raw_result["errors"])
    else:
        assert result.errors is None


def test_orders_import_failed_is_a_tuple_of_its_items() -> None:
    """The ORDERS.IMPORT example's ``failed`` (an item with ``source_id: null``) is a tuple."""
    result = decode_details(ok(GET_EXAMPLES["ORDERS.IMPORT"])).result
    assert result is not None
    assert result.failed == ({"source_id": None, "reason": "Internal error"},)


def test_a_single_failed_object_becomes_a_one_item_tuple() -> None:
    """The schema calls some ``failed`` an object: a lone object becomes a 1-tuple."""
    payload = {**MINIMAL_ACTION, "result": {"failed": {"row": 1, "reason": "bad"}}}
    result = decode_details(ok(payload)).result
    assert result is not None
    assert result.failed == ({"row": 1, "reason": "bad"},)


@pytest.mark.parametrize("key", sorted(GET_EXAMPLES))
def test_result_is_a_read_only_mapping_over_the_raw_dict(key: str) -> None:
    """``result`` is a ``Mapping`` over the raw JSON (same keys, items and length)
    that cannot be written to."""
    raw_result = GET_EXAMPLES[key]["result"]
    result = decode_details(ok(GET_EXAMPLES[key])).result
    assert result is not None

    assert isinstance(result, Mapping)
    assert not isinstance(result, MutableMapping)
    assert dict(result) == raw_result
    assert list(result) == list(raw_result)
    assert len(result) == len(raw_result)
    assert all(result[name] == value for name, value in raw_result.items())
    assert result.get("no such key") is None
    with pytest.raises(TypeError):
        result["done_count"] = 99  # type: ignore[index]
    with pytest.raises(TypeError):
        del result["done_count"]  # type: ignore[attr-defined]


def test_result_compares_equal_to_the_raw_dict() -> None:
    """Like any ``Mapping``, ``result == raw_dict`` (and ``raw_dict == result``) holds
    when the items are equal, for every vendor example."""
    for key, raw in GET_EXAMPLES.items():
        result = decode_details(ok(raw)).result
        assert result == raw["result"], key
        assert raw["result"] == result, key
        assert result != {**raw["result"], "extra": 1}, key


# --- the list example ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "has_more"),
    [
        pytest.param(10, False, id="2 of limit 10: not full, no more"),
        pytest.param(2, True, id="2 of limit 2: full, maybe more"),
        pytest.param(None, True, id="no limit sent, non-empty: maybe more"),
    ],
)
def test_list_example_decodes_into_two_actions_newest_first(
    limit: int | None, has_more: bool
) -> None:
    """The vendor list example (no ``has_more``) is a page of two actions, newest
    first; ``has_more_reported`` is ``None`` and ``has_more`` says whether it was full."""
    page = decode_page(ok(LIST_EXAMPLE), limit=limit)

    assert type(page) is AsyncActionsPage
    assert len(page) == 2
    assert [action.id for action in page] == [item["id"] for item in LIST_EXAMPLE["async_actions"]]
    assert all(type(action) is AsyncAction for action in page)
    assert page.async_actions[0].created_at > page.async_actions[1].created_at
    assert page.async_actions[0].created_at == utc("2022-09-05T11:40:17.098Z")
    assert page.async_actions[0].type is AsyncActionType.CUSTOMERS_BULK_UPDATE
    assert page.async_actions[1].type is AsyncActionType.CUSTOMERS_METADATA_UPDATE
    assert page.has_more_reported is None
    assert page.has_more is has_more


@pytest.mark.parametrize(
    ("items", "limit", "reported", "has_more"),
    [
        pytest.param(0, None, None, False, id="empty page, no limit: no more"),
        pytest.param(0, 5, None, False, id="empty page, limit 5: no more"),
        pytest.param(3, 3, False, False, id="full page, API says false: no more"),
        pytest.param(1, 3, True, True, id="short page, API says true: more"),
        pytest.param(0, None, True, True, id="empty page, API says true: more"),
    ],
)
def test_has_more_is_the_apis_flag_when_sent_else_whether_the_page_is_full(
    items: int, limit: int | None, reported: bool | None, has_more: bool
) -> None:
    """A reported ``has_more`` wins over the page size; ``has_more_reported`` keeps it."""
    body: dict[str, Any] = {
        "object": "list",
        "async_actions": [{**MINIMAL_ACTION, "id": f"aa_{n}"} for n in range(items)],
    }
    if reported is not None:
        body["has_more"] = reported
    page = decode_page(ok(body), limit=limit)
    assert len(page) == items
    assert page.has_more is has_more
    assert page.has_more_reported is reported


# --- datetimes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2022-09-05T11:40:17.098Z", datetime(2022, 9, 5, 11, 40, 17, 98000, tzinfo=UTC)),
        ("2022-09-05T11:40:17.098+00:00", datetime(2022, 9, 5, 11, 40, 17, 98000, tzinfo=UTC)),
        ("2022-09-05T13:40:17.098+02:00", datetime(2022, 9, 5, 11, 40, 17, 98000, tzinfo=UTC)),
        ("2022-09-05T06:10:17.098-05:30", datetime(2022, 9, 5, 11, 40, 17, 98000, tzinfo=UTC)),
        ("2022-09-05T00:30:00+01:00", datetime(2022, 9, 4, 23, 30, tzinfo=UTC)),
        ("2022-09-05T11:40:17.098", datetime(2022, 9, 5, 11, 40, 17, 98000, tzinfo=UTC)),
        ("2022-09-05T11:40:17", datetime(2022, 9, 5, 11, 40, 17, tzinfo=UTC)),
    ],
    ids=[
        "Z",
        "+00:00",
        "+02:00 converted",
        "-05:30 converted",
        "offset crosses a day",
        "naive",
        "naive, no ms",
    ],
)
def test_timestamps_become_aware_utc_datetimes(text: str, expected: datetime) -> None:
    """Offsets are converted to UTC and a timestamp without one is read as UTC, both
    in ``parse_timestamp`` and through ``decode_details`` (``created_at``, ``updated_at``)."""
    parsed = parse_timestamp(text)
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)
    assert parsed.tzinfo is UTC

    details = decode_details(ok({**MINIMAL_ACTION, "created_at": text, "updated_at": text}))
    assert details.created_at == expected
    assert details.created_at.tzinfo is UTC
    assert details.updated_at == expected


@given(
    st.datetimes(
        min_value=datetime(1970, 1, 2),
        max_value=datetime(9998, 12, 30),
        timezones=st.builds(
            timezone, st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda m: timedelta(minutes=m))
        ),
    )
)
def test_any_iso_timestamp_with_an_offset_is_the_same_instant_in_utc(moment: datetime) -> None:
    """Whatever the offset, the parsed datetime is the same instant, expressed in UTC."""
    parsed = parse_timestamp(moment.isoformat())
    assert parsed == moment
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize("value", [1662378017, 1662378017.098, None, True, ["2022-09-05"], {}])
def test_parse_timestamp_refuses_non_strings_with_type_error(value: object) -> None:
    """Only strings are timestamps: an epoch number is a ``TypeError``, never guessed."""
    with pytest.raises(TypeError):
        parse_timestamp(value)


@pytest.mark.parametrize("value", ["", "yesterday", "2022-13-05T11:40:17Z", "05/09/2022 11:40"])
def test_parse_timestamp_refuses_non_iso_strings_with_value_error(value: str) -> None:
    """A string that is not ISO-8601 is a ``ValueError``."""
    with pytest.raises(ValueError):  # noqa: PT011  # the message is the stdlib's
        parse_timestamp(value)


# --- lenient enums ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "enum_type"),
    [
        *[("type", member.value, AsyncActionType) for member in AsyncActionType],
        *[("status", member.value, AsyncActionStatus) for member in AsyncActionStatus],
        *[("operation_status", member.value, OperationStatus) for member in OperationStatus],
    ],
)
def test_documented_enum_values_become_members_equal_to_their_string(
    field: str, value: str, enum_type: type
) -> None:
    """A documented ``type``/``status``/``operation_status`` is the enum member, and
    it still compares equal to the API's string."""
    decoded = getattr(decode_details(ok({**MINIMAL_ACTION, field: value})), field)
    assert isinstance(decoded, enum_type)
    assert decoded is enum_type(value)
    assert decoded == value


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("type", "CAMPAIGNS.NEW_THING"),
        ("type", "customers.import_csv"),
        ("type", ""),
        ("status", "CANCELLED"),
        ("status", "done"),
        ("status", " DONE"),
        ("operation_status", "PARTIAL"),
        ("operation_status", "Ünknown ✓"),
    ],
)
def test_unknown_enum_values_are_kept_verbatim_as_str(field: str, value: str) -> None:
    """A value the API adds later (or spells differently) is not an error: it stays
    the API's string, verbatim, as a plain ``str``."""
    decoded = getattr(decode_details(ok({**MINIMAL_ACTION, field: value})), field)
    assert type(decoded) is str
    assert decoded == value


@given(
    field=st.sampled_from(["type", "status", "operation_status"]),
    value=st.text(),
)
def test_any_string_enum_value_decodes_and_equals_its_string(field: str, value: str) -> None:
    """Every string decodes: the enum member when documented, else the same ``str``."""
    decoded = getattr(decode_details(ok({**MINIMAL_ACTION, field: value})), field)
    assert decoded == value
    assert isinstance(decoded, str)


# --- unknown and missing fields ------------------------------------------------------------


def test_unknown_fields_are_ignored() -> None:
    """Keys the models do not know (new API fields, at any level) change nothing."""
    base = GET_EXAMPLES["VOUCHERS.BULK_UPDATE"]
    extended = {
        **base,
        "brand_new_field": {"nested": [1, 2, 3]},
        "data_ref": "x",
        "result": {**base["result"], "future_counter": 7},
    }
    plain, extra = decode_details(ok(base)), decode_details(ok(extended))
    assert attrs.evolve(extra, result=None) == attrs.evolve(plain, result=None)
    assert extra.result is not None
    assert extra.result.done_count == 3
    assert extra.result["future_counter"] == 7


def test_unknown_page_fields_are_ignored() -> None:
    """Unknown keys of the list body and of its items are ignored too."""
    body = {
        **LIST_EXAMPLE,
        "total": 2,
        "async_actions": [{**item, "new": True} for item in LIST_EXAMPLE["async_actions"]],
    }
    assert decode_page(ok(body), limit=10) == decode_page(ok(LIST_EXAMPLE), limit=10)


OPTIONAL_FIELDS = [
    "type",
    "status",
    "operation_status",
    "updated_at",
    "request_id",
    "processing_time",
    "progress",
    "result",
]


def test_absent_optional_fields_are_none() -> None:
    """With only ``id`` and ``created_at``, every other documented field is ``None``."""
    details = decode_details(ok(MINIMAL_ACTION))
    assert details.id == "aa_1"
    for name in OPTIONAL_FIELDS:
        assert getattr(details, name) is None, name


def test_null_optional_fields_are_none() -> None:
    """An explicit JSON ``null`` for an optional field reads like an absent one."""
    details = decode_details(ok({**MINIMAL_ACTION, **dict.fromkeys(OPTIONAL_FIELDS)}))
    for name in OPTIONAL_FIELDS:
        assert getattr(details, name) is None, name


def test_result_without_common_fields_has_them_as_none() -> None:
    """A ``result`` of an unknown shape keeps its raw keys; the typed fields are ``None``."""
    result = decode_details(ok({**MINIMAL_ACTION, "result": {"weird": [1]}})).result
    assert result is not None
    assert dict(result) == {"weird": [1]}
    assert (result.message, result.done_count, result.failed_count, result.failed) == (None,) * 4
    assert (result.errors, result.reports, result.reports_available_till) == (None,) * 3


# --- the converter itself ------------------------------------------------------------


def test_make_converter_builds_a_fresh_converter_never_the_global_one() -> None:
    """Each call returns a new converter, distinct from cattrs' global converter."""
    first, second = make_converter(), make_converter()
    assert first is not second
    assert first is not cattrs.global_converter
    assert make_converter(detailed_validation=True) is not cattrs.global_converter


@pytest.mark.parametrize("detailed", [False, True])
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id", 5),
        ("id", True),
        ("request_id", 1.5),
        ("progress", "5"),
        ("progress", True),
        ("progress", 5.0),
        ("processing_time", "100"),
        ("type", 5),
        ("status", ["DONE"]),
        ("created_at", 1662378017),
        ("updated_at", "not a date"),
    ],
)
def test_converter_never_coerces_wrong_types(detailed: bool, field: str, value: object) -> None:
    """``str`` fields take only strings, ``int`` fields only integers (no bools, no
    numeric strings, no floats), enums only strings, datetimes only ISO strings."""
    converter = make_converter(detailed_validation=detailed)
    with pytest.raises(Exception):  # noqa: B017, PT011  # cattrs' own error types, by design
        converter.structure({**MINIMAL_ACTION, field: value}, AsyncAction)


def test_converter_structures_a_minimal_action() -> None:
    """The converter alone turns the JSON of an action into an ``AsyncAction``."""
    action = make_converter().structure(dict(MINIMAL_ACTION), AsyncAction)
    assert action == AsyncAction(id="aa_1", created_at=utc("2022-09-05T11:40:17.098Z"))


# --- frozen, slotted models -------------------------------------------------------------


def _instances() -> list[tuple[object, str]]:
    details = decode_details(ok(GET_EXAMPLES["VOUCHERS.BULK_UPDATE"]))
    page = decode_page(ok(LIST_EXAMPLE), limit=10)
    assert details.result is not None
    return [
        (page.async_actions[0], "id"),
        (page.async_actions[0], "status"),
        (details, "created_at"),
        (details, "result"),
        (details.result, "done_count"),
        (details.result, "raw"),
        (page, "has_more"),
        (page, "async_actions"),
    ]


@pytest.mark.parametrize(
    ("instance", "attribute"),
    _instances(),
    ids=lambda value: type(value).__name__ if not isinstance(value, str) else value,
)
def test_models_are_frozen(instance: object, attribute: str) -> None:
    """Assigning any field of a decoded model raises ``FrozenInstanceError``."""
    before = getattr(instance, attribute)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        setattr(instance, attribute, None)
    assert getattr(instance, attribute) is before


@pytest.mark.parametrize(
    "model", [AsyncAction, AsyncActionDetails, AsyncActionResult, AsyncActionsPage]
)
def test_models_are_slotted_attrs_classes(model: type) -> None:
    """Every model is an attrs class with ``__slots__`` and no per-instance ``__dict__``."""
    assert attrs.has(model)
    assert "__slots__" in vars(model)
    assert "__dict__" not in dir(model)


def test_decoded_instances_have_no_instance_dict() -> None:
    """No new attribute can be attached to a decoded model."""
    for instance, _ in _instances():
        assert not hasattr(instance, "__dict__"), type(instance).__name__
        with pytest.raises((AttributeError, attrs.exceptions.FrozenInstanceError)):
            instance.brand_new_attribute = 1  # type: ignore[attr-defined]
