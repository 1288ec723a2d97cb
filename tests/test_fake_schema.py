"""The fake's answers validate against the vendor's own JSON schemas (tests/fixtures/).

The schemas are the async-actions ``components.schemas`` of the vendor's OpenAPI
description (see ``tests/fixtures/SOURCES.md``); ``#/components/schemas/...``
references resolve inside that document. Two deviations of the vendor's schema
from the vendor's own examples are patched here, and each is pinned by a test
showing the unpatched schema rejects the vendor's example:

1. ``AsyncAction.result`` is a ``oneOf`` of 22 result shapes that overlap (no
   required fields, no discriminator), so almost every result matches several and
   ``oneOf`` fails. The patched schema leaves ``result`` to a second step, which
   validates it against the schema of its action's ``type`` (matched by title).
2. ``ORDERS.IMPORT`` and ``VOUCHERS.IMPORT`` type ``failed`` as one object, while
   the examples (and every other import) show an array of such objects; the
   ``ORDERS.IMPORT`` example also has ``"source_id": null`` where the schema says
   string. The patch makes ``failed`` an array of those items and allows the null.

The validator is shown to work on the vendor's examples (all pass) and on broken
variants of them (each fails).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema
import pytest
import pytest_asyncio

from voucherify_async.testing import (
    FAKE_APP_ID,
    FAKE_APP_TOKEN,
    FakeVoucherify,
    Fault,
    ManualClock,
    generate_actions,
)
from voucherify_async.testing._generate import IMPORT_TYPES, UPDATE_TYPES

FIXTURES = Path(__file__).parent / "fixtures"
AUTH = {"X-App-Id": FAKE_APP_ID, "X-App-Token": FAKE_APP_TOKEN}
LIST = "/v1/async-actions"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


VENDOR_SCHEMAS: dict[str, Any] = load("schemas.async-actions.json")
GET_EXAMPLES: dict[str, dict[str, Any]] = {
    key: entry["value"] for key, entry in load("examples.get-async-action.200.json").items()
}
LIST_EXAMPLE: dict[str, Any] = load("examples.list-async-actions.200.json")["List Async Actions"][
    "value"
]
ERROR_EXAMPLES: list[dict[str, Any]] = [
    example["value"]
    for group in load("examples.errors.json").values()
    for example in group.values()
]
#: Each action type's result schema, found by the schema's title (``"ORDERS.IMPORT"``).
RESULT_SCHEMA_OF_TYPE: dict[str, str] = {
    schema["title"]: name
    for name, schema in VENDOR_SCHEMAS.items()
    if re.fullmatch(r"[A-Z]+\.[A-Z_]+", schema.get("title", ""))
}

RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")
FORMATS = jsonschema.FormatChecker(formats=())


@FORMATS.checks("date-time", raises=ValueError)
def is_date_time(value: object) -> bool:
    """RFC 3339 date-time (jsonschema checks it only with an optional extra installed)."""
    if not isinstance(value, str):
        return True
    if not RFC3339.fullmatch(value):
        return False
    datetime.fromisoformat(value)  # a real date and time, else ValueError
    return True


def patched(schemas: dict[str, Any]) -> dict[str, Any]:
    """The vendor's schemas with the two documented deviations fixed (see module docstring)."""
    fixed = copy.deepcopy(schemas)
    result = fixed["AsyncAction"]["allOf"][1]["properties"]["result"]
    del result["oneOf"]
    result["type"] = "object"
    for title in ("ORDERS.IMPORT", "VOUCHERS.IMPORT"):
        properties = fixed[RESULT_SCHEMA_OF_TYPE[title]]["properties"]
        item = properties["failed"]
        assert item["type"] == "object"  # the deviation is still there
        properties["failed"] = {"type": "array", "items": item}
    orders = fixed[RESULT_SCHEMA_OF_TYPE["ORDERS.IMPORT"]]["properties"]
    orders["failed"]["items"]["properties"]["source_id"]["type"] = ["string", "null"]
    return fixed


def validator(schemas: dict[str, Any], name: str) -> jsonschema.Draft202012Validator:
    """A validator for ``#/components/schemas/<name>`` with every reference resolvable."""
    document = {"$ref": f"#/components/schemas/{name}", "components": {"schemas": schemas}}
    return jsonschema.Draft202012Validator(document, format_checker=FORMATS)


SCHEMAS = patched(VENDOR_SCHEMAS)
LIST_BODY = validator(SCHEMAS, "AsyncActionsListResponseBody")
GET_BODY = validator(SCHEMAS, "AsyncActionGetResponseBody")
ERROR_BODY = validator(SCHEMAS, "Error")
RESULTS = {kind: validator(SCHEMAS, name) for kind, name in RESULT_SCHEMA_OF_TYPE.items()}


def validate_get(body: dict[str, Any]) -> None:
    """The action against the get schema, then its result against its type's schema."""
    GET_BODY.validate(body)
    if "result" in body:
        RESULTS[body["type"]].validate(body["result"])


def validate_list(body: dict[str, Any]) -> None:
    LIST_BODY.validate(body)
    for item in body["async_actions"]:
        assert "result" not in item


# -- the validator itself -----------------------------------------------------------------


def test_every_action_type_has_exactly_one_result_schema() -> None:
    """The title lookup finds the 22 documented types, one schema each."""
    assert len(RESULT_SCHEMA_OF_TYPE) == 22
    assert set(RESULT_SCHEMA_OF_TYPE) == {example["type"] for example in GET_EXAMPLES.values()} | {
        "CAMPAIGN.VOUCHERS_IMPORT_CSV"
    }


@pytest.mark.parametrize("key", sorted(GET_EXAMPLES))
def test_validator_accepts_every_vendor_get_example(key: str) -> None:
    """Each of the vendor's get examples validates (by its own ``type``: the example keyed
    CAMPAIGN.VOUCHERS_IMPORT_CSV is a CUSTOMERS.IMPORT_CSV action)."""
    validate_get(GET_EXAMPLES[key])


def test_validator_accepts_the_vendor_list_and_error_examples() -> None:
    """The documented list page, 400 and 404 bodies validate."""
    validate_list(LIST_EXAMPLE)
    assert len(ERROR_EXAMPLES) == 2
    for example in ERROR_EXAMPLES:
        ERROR_BODY.validate(example)


def _set(path: tuple[str | int, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(body: dict[str, Any]) -> None:
        target: Any = body
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value

    return mutate


def _drop(path: tuple[str | int, ...]) -> Callable[[dict[str, Any]], None]:
    def mutate(body: dict[str, Any]) -> None:
        target: Any = body
        for step in path[:-1]:
            target = target[step]
        del target[path[-1]]

    return mutate


@pytest.mark.parametrize(
    ("example", "mutate"),
    [
        ("CUSTOMERS.BULK_UPDATE", _set(("status",), "PAUSED")),
        ("CUSTOMERS.BULK_UPDATE", _set(("operation_status",), "MAYBE")),
        ("CUSTOMERS.BULK_UPDATE", _set(("progress",), 101)),
        ("CUSTOMERS.BULK_UPDATE", _set(("object",), "list")),
        ("CUSTOMERS.BULK_UPDATE", _set(("created_at",), "yesterday")),
        ("CUSTOMERS.BULK_UPDATE", _set(("updated_at",), "2023-01-20 07:58:25")),
        ("CUSTOMERS.BULK_UPDATE", _drop(("result", "reports"))),
        ("CUSTOMERS.BULK_UPDATE", _set(("result", "done_count"), "3")),
        ("CUSTOMERS.BULK_UPDATE", _set(("result", "errors"), [{"message": "x"}])),
        ("VOUCHERS.IMPORT_CSV", _set(("result", "failed", 0, "row"), "1")),
        ("ORDERS.IMPORT", _set(("result", "failed"), {"source_id": None})),
        ("CAMPAIGN.VOUCHERS_DELETE", _set(("result", "message"), 2)),
        ("CAMPAIGN.VOUCHERS_DELETE", _set(("processing_time",), 1.5)),
        ("CAMPAIGN.VOUCHERS_DELETE", _set(("result",), "Deleted 2 vouchers.")),
    ],
)
def test_validator_rejects_broken_get_bodies(
    example: str, mutate: Callable[[dict[str, Any]], None]
) -> None:
    """Wrong enums, ranges, formats, types and missing required fields all fail."""
    body = copy.deepcopy(GET_EXAMPLES[example])
    mutate(body)
    with pytest.raises(jsonschema.ValidationError):
        validate_get(body)


@pytest.mark.parametrize(
    ("schema", "body"),
    [
        (LIST_BODY, {**LIST_EXAMPLE, "has_more": "no"}),
        (LIST_BODY, {**LIST_EXAMPLE, "object": "async_action"}),
        (LIST_BODY, {**LIST_EXAMPLE, "async_actions": [{"id": 5}]}),
        (ERROR_BODY, {"message": "no code"}),
        (ERROR_BODY, {"code": "400", "message": "code as a string"}),
    ],
)
def test_validator_rejects_broken_list_and_error_bodies(
    schema: jsonschema.Draft202012Validator, body: dict[str, Any]
) -> None:
    """A string has_more, a wrong object, a numeric id, an error without or with a
    string code all fail."""
    with pytest.raises(jsonschema.ValidationError):
        schema.validate(body)


def test_unpatched_schema_rejects_vendor_examples_hence_the_patch() -> None:
    """Pins the deviations documented above: the raw ``oneOf`` refuses a plain result
    (it matches several shapes), and the raw ORDERS.IMPORT schema refuses its example."""
    raw_get = validator(VENDOR_SCHEMAS, "AsyncActionGetResponseBody")
    with pytest.raises(jsonschema.ValidationError, match="valid under each of"):
        raw_get.validate(GET_EXAMPLES["CAMPAIGN.VOUCHERS_DELETE"])
    for title in ("ORDERS.IMPORT", "VOUCHERS.IMPORT"):
        raw_result = validator(VENDOR_SCHEMAS, RESULT_SCHEMA_OF_TYPE[title])
        with pytest.raises(jsonschema.ValidationError, match="is not of type 'object'"):
            raw_result.validate(GET_EXAMPLES[title]["result"])


# -- the generator's shapes against the vendor's examples --------------------------------------


def _example_of_type(action_type: str) -> dict[str, Any] | None:
    """The vendor's get example whose body has this ``type`` (CAMPAIGN.VOUCHERS_IMPORT_CSV
    has none: its entry holds another type)."""
    for example in GET_EXAMPLES.values():
        if example["type"] == action_type:
            return example
    return None


def _error_item_keys(result_schema: dict[str, Any]) -> tuple[str, ...]:
    """The keys the schema requires of an ``errors`` item (in any ``allOf`` part)."""
    for part in result_schema.get("allOf", [result_schema]):
        errors = part.get("properties", {}).get("errors")
        if errors is not None:
            return tuple(errors["items"]["required"])
    raise AssertionError("no errors property")


def test_generated_actions_have_the_keys_of_the_vendor_example_of_their_type() -> None:
    """A finished generated action has the example's top-level keys in the example's
    order, its result the example's keys, and import failures the example's item keys
    (or the schema's, where the example shows none)."""
    generated = generate_actions(3_000, seed=21)
    checked: set[str] = set()
    for action in generated:
        if action["status"] != "DONE" or action["type"] in checked:
            continue
        example = _example_of_type(action["type"])
        result_schema = SCHEMAS[RESULT_SCHEMA_OF_TYPE[action["type"]]]
        if example is not None:
            assert list(action) == list(example)
            assert list(action["result"]) == list(example["result"])
        if action["type"] in IMPORT_TYPES:
            failed = example["result"]["failed"] if example is not None else []
            expected = (
                list(failed[0])
                if failed
                else list(result_schema["properties"]["failed"]["items"]["properties"])
            )
            assert IMPORT_TYPES[action["type"]][1] == tuple(expected)
        if action["type"] in UPDATE_TYPES:
            assert UPDATE_TYPES[action["type"]] == _error_item_keys(result_schema)
        checked.add(action["type"])
    assert len(checked) == 22


# -- the fake's answers over HTTP ----------------------------------------------------------------


@pytest_asyncio.fixture
async def fake_and_session() -> AsyncIterator[tuple[FakeVoucherify, aiohttp.ClientSession]]:
    fake = FakeVoucherify(actions=generate_actions(2_000, seed=13))
    async with fake, aiohttp.ClientSession(fake.base_url, headers=AUTH) as session:
        yield fake, session


async def _get_json(
    session: aiohttp.ClientSession, path: str, **params: str | int
) -> tuple[int, Any]:
    async with session.get(path, params=params) as response:
        return response.status, await response.json()


@pytest.mark.asyncio
async def test_every_list_page_of_the_fake_matches_the_list_schema(
    fake_and_session: tuple[FakeVoucherify, aiohttp.ClientSession],
) -> None:
    """Paging through 2,000 actions, every page validates (with and without has_more)."""
    fake, session = fake_and_session
    for send_has_more in (True, False):
        fake.send_has_more = send_has_more
        params: dict[str, str | int] = {"limit": 100}
        seen = 0
        while True:
            status, body = await _get_json(session, LIST, **params)
            assert status == 200
            validate_list(body)
            seen += len(body["async_actions"])
            if len(body["async_actions"]) < 100 or seen >= 2_000:
                break
            params["end_date"] = body["async_actions"][-1]["created_at"]
        assert ("has_more" in body) is send_has_more


@pytest.mark.asyncio
async def test_every_get_of_the_fake_matches_its_type_schema(
    fake_and_session: tuple[FakeVoucherify, aiohttp.ClientSession],
) -> None:
    """One action of every (type, status) pair in the store, fetched and validated."""
    fake, session = fake_and_session
    firsts: dict[tuple[str, str], str] = {}
    for action in fake.actions:
        firsts.setdefault((action["type"], action["status"]), action["id"])
    assert {kind for kind, _ in firsts} == set(RESULT_SCHEMA_OF_TYPE)
    for action_id in firsts.values():
        status, body = await _get_json(session, f"{LIST}/{action_id}")
        assert status == 200
        validate_get(body)


@pytest.mark.asyncio
async def test_every_error_body_of_the_fake_matches_the_error_schema(
    fake_and_session: tuple[FakeVoucherify, aiohttp.ClientSession],
) -> None:
    """400 (limit, end_date), 401, 404 (id, path), 405 and JSON fault bodies validate."""
    fake, session = fake_and_session
    bodies = [
        await _get_json(session, LIST, limit=0),
        await _get_json(session, LIST, end_date="soon"),
        await _get_json(session, f"{LIST}/aa_missing"),
        await _get_json(session, "/v1/elsewhere"),
    ]
    async with session.get(LIST, headers={"X-App-Token": "wrong"}) as response:
        bodies.append((response.status, await response.json()))
    async with session.delete(LIST) as response:
        bodies.append((response.status, await response.json()))
    for fault in (Fault.status(429), Fault.status(500), Fault.status(503)):
        fake.faults.push(fault)
        bodies.append(await _get_json(session, LIST))
    assert [status for status, _ in bodies] == [400, 400, 404, 404, 401, 405, 429, 500, 503]
    for status, body in bodies:
        ERROR_BODY.validate(body)
        assert body["code"] == status


@pytest.mark.asyncio
async def test_started_actions_match_their_type_schema_at_every_stage() -> None:
    """One started action per (type, outcome), listed and fetched while ENQUEUED, IN_PROGRESS
    and finished: every list page and get body validates, and a finished one has the keys of
    the vendor's example of its type, in the example's order."""
    clock = ManualClock()
    fake = FakeVoucherify(actions=generate_actions(20, seed=3), clock=clock)
    started = {
        (kind, outcome): fake.start_action(kind, duration=10.0, outcome=outcome)
        for kind in sorted(RESULT_SCHEMA_OF_TYPE)
        for outcome in ("DONE", "FAILED")
    }
    async with fake, aiohttp.ClientSession(fake.base_url, headers=AUTH) as session:
        for elapsed, status in ((0.0, "ENQUEUED"), (4.0, "IN_PROGRESS"), (10.0, None)):
            clock.advance(elapsed - clock.monotonic())
            code, page = await _get_json(session, LIST, limit=100)
            assert code == 200
            validate_list(page)
            for (kind, outcome), action_id in started.items():
                code, body = await _get_json(session, f"{LIST}/{action_id}")
                assert code == 200
                validate_get(body)
                assert body["status"] == (status or outcome)
                example = _example_of_type(kind)
                if status is None and example is not None:
                    assert list(body) == list(example), kind
                    assert list(body["result"]) == list(example["result"]), kind


@pytest.mark.asyncio
async def test_rate_limit_and_start_post_error_bodies_match_the_error_schema() -> None:
    """The 429 beyond ``rate_limit``, and a start POST's 401 and 400, validate."""
    fake = FakeVoucherify(clock=ManualClock(), rate_limit=(3, 60.0))
    async with fake, aiohttp.ClientSession(fake.base_url) as session:
        bodies = []
        for headers, data in (({}, b"{}"), (AUTH, b"{"), (AUTH, b"{}"), (AUTH, b"{}")):
            async with session.post(
                "/v1/customers/metadata/async", data=data, headers=headers
            ) as response:
                bodies.append((response.status, await response.json()))
    assert [status for status, _ in bodies] == [401, 400, 202, 429]
    for status, body in bodies:
        if status != 202:
            ERROR_BODY.validate(body)
            assert body["code"] == status
