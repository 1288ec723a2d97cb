"""The fake, fuzzed from the vendor's own OpenAPI document with schemathesis.

Why schemathesis: it reads the vendor's OpenAPI 3.0 document as published (no
hand-written strategies to drift from it), generates both valid and invalid
requests from every parameter's schema (``limit`` out of range or not a number,
``end_date`` not a date, odd path ids, other methods, missing credentials), and
ships the checks this test needs: no 5xx, the status documented, the body and
``Content-Type`` in the documented shape. It runs on hypothesis, which the suite
already uses, so a fixed seed and no example database make it deterministic.
(The other OpenAPI-driven fuzzers are either not Python (RESTler, Dredd) or
generate valid requests only.)

The document is ``tests/fixtures/async-actions.openapi.split-by-tags.json``, a
copy of the vendor's (``tests/fixtures/SOURCES.md``). The vendor's spec has known
gaps, patched here in memory and each pinned by a test that the unpatched
document still has it:

1. ``AsyncAction.result`` is a ``oneOf`` of 22 result shapes that overlap (no
   required field, no discriminator): the vendor's own get examples each match
   several, so no real answer satisfies it. The patch drops the ``oneOf`` and
   keeps ``result`` an object; ``tests/test_fake_schema.py`` checks each result
   against its own type's shape instead.
2. The spec documents no 401, although every call needs credentials and the
   vendor answers a missing or wrong key with 401 and its error body. The patch
   documents 401 with the ``Error`` schema on both operations.

Bounded to fit the suite: a few dozen examples per operation and phase, a fixed
seed (``derandomize``), no example database written anywhere, and no deadline.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import CHECKS, response_schema_conformance, status_code_conformance

from voucherify_async.testing import FAKE_APP_ID, FAKE_APP_TOKEN, FakeVoucherify, generate_actions
from voucherify_async.testing._answers import Answerer

FIXTURES = Path(__file__).parent / "fixtures"
SPEC_PATH = FIXTURES / "async-actions.openapi.split-by-tags.json"
VENDOR_SPEC: dict[str, Any] = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
AUTH = {"X-App-Id": FAKE_APP_ID, "X-App-Token": FAKE_APP_TOKEN}
OPERATIONS = (("/v1/async-actions", "get"), ("/v1/async-actions/{asyncActionId}", "get"))
ERROR_REF = {"$ref": "#/components/schemas/Error"}


def result_schema(spec: dict[str, Any]) -> dict[str, Any]:
    """The ``result`` property of ``AsyncAction`` in ``spec``."""
    action = spec["components"]["schemas"]["AsyncAction"]
    properties: dict[str, Any] = action["allOf"][1]["properties"]
    return properties["result"]  # type: ignore[no-any-return]


def without_result_one_of(spec: dict[str, Any]) -> None:
    """Gap 1: ``result`` is any object (its ``oneOf`` matches no real example)."""
    result = result_schema(spec)
    del result["oneOf"]
    result["type"] = "object"


def with_documented_401(spec: dict[str, Any]) -> None:
    """Gap 2: both operations document the 401 the vendor sends without valid credentials."""
    for path, method in OPERATIONS:
        responses = spec["paths"][path][method]["responses"]
        responses["401"] = {
            "description": "Missing or invalid credentials.",
            "content": {"application/json": {"schema": ERROR_REF}},
        }


KNOWN_GAPS: list[Callable[[dict[str, Any]], None]] = [without_result_one_of, with_documented_401]


def patched(spec: dict[str, Any]) -> dict[str, Any]:
    fixed = copy.deepcopy(spec)
    for patch in KNOWN_GAPS:
        patch(fixed)
    return fixed


def test_the_vendor_spec_still_has_each_known_gap() -> None:
    """Each patch mends a gap that is really there (else it must go from the list)."""
    assert "oneOf" in result_schema(VENDOR_SPEC)
    assert len(result_schema(VENDOR_SPEC)["oneOf"]) == 22
    for path, method in OPERATIONS:
        assert "401" not in VENDOR_SPEC["paths"][path][method]["responses"]
    assert list(VENDOR_SPEC["paths"]) == [path for path, _ in OPERATIONS]


SCHEMA = schemathesis.openapi.from_dict(patched(VENDOR_SPEC))
# The spec is silent on query parameters it does not name; the fake ignores them, as
# most APIs do, so a request with one is not "invalid data that must be refused".
SCHEMA.config.generation.update(allow_extra_parameters=False)
UNPATCHED = schemathesis.openapi.from_dict(VENDOR_SPEC)
LIST_OPERATION = SCHEMA["/v1/async-actions"]["GET"]
FUZZ_SETTINGS = settings(
    max_examples=25,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def vendor_example_actions() -> list[dict[str, Any]]:
    """The vendor's get examples (one per type, the repeated id once), and a copy of
    one under the id the spec gives as the path parameter's example."""
    examples = json.loads((FIXTURES / "examples.get-async-action.200.json").read_text())
    actions = {entry["value"]["id"]: entry["value"] for entry in examples.values()}
    parameter = VENDOR_SPEC["components"]["schemas"]["ParameterAsyncActionId"]["example"]
    first = next(iter(actions.values()))
    actions.setdefault(parameter, {**first, "id": parameter})
    return list(actions.values())


def served_actions() -> list[dict[str, Any]]:
    return generate_actions(100, seed=11) + vendor_example_actions()


def exercise(case: schemathesis.Case, base_url: str) -> None:
    """Send ``case`` with valid credentials; run every check schemathesis has.

    Raises:
        schemathesis's FailureGroup (a BaseExceptionGroup): a check failed.
    """
    case.call_and_validate(base_url=base_url, headers=AUTH, checks=list(CHECKS.get_all()))


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeVoucherify]:
    """One fake for every example, in a thread (schemathesis calls it synchronously)."""
    with FakeVoucherify(actions=served_actions()).run_in_thread() as served:
        yield served


@SCHEMA.parametrize()
@FUZZ_SETTINGS
def test_every_answer_to_a_fuzzed_request_is_documented_and_never_a_500(
    case: schemathesis.Case, fake: FakeVoucherify
) -> None:
    """Valid and invalid requests generated from the vendor's document: no 5xx, and
    status, ``Content-Type`` and body as the (patched) document says."""
    exercise(case, fake.base_url)


# -- the gaps are real, and the fuzz test can fail ----------------------------------------


def test_gap_1_a_real_get_answer_fails_the_vendors_result_one_of() -> None:
    """The fake's answer for a vendor example (its result as the vendor documents it) is
    refused by the unpatched document, and accepted by the patched one."""
    action = vendor_example_actions()[0]
    with FakeVoucherify(actions=[action]).run_in_thread() as fake:
        for schema, refused in ((UNPATCHED, True), (SCHEMA, False)):
            operation = schema["/v1/async-actions/{asyncActionId}"]["GET"]
            case = operation.Case(path_parameters={"asyncActionId": action["id"]})
            response = case.call(base_url=fake.base_url, headers=AUTH)
            assert response.status_code == 200
            check = [response_schema_conformance]
            if refused:
                with pytest.raises(BaseExceptionGroup, match="oneOf"):
                    case.validate_response(response, checks=check)
            else:
                case.validate_response(response, checks=check)


def test_gap_2_a_request_without_credentials_gets_a_401_the_vendor_spec_does_not_list() -> None:
    with FakeVoucherify().run_in_thread() as fake:
        for schema, refused in ((UNPATCHED, True), (SCHEMA, False)):
            case = schema["/v1/async-actions"]["GET"].Case()
            response = case.call(base_url=fake.base_url)
            assert response.status_code == 401
            check = [status_code_conformance, response_schema_conformance]
            if refused:
                with pytest.raises(BaseExceptionGroup, match="401"):
                    case.validate_response(response, checks=check)
            else:
                case.validate_response(response, checks=check)


def answer_500(*_args: object) -> tuple[int, Mapping[str, Any]]:
    raise KeyError("a bug in the fake")


def answer_off_shape(*_args: object) -> tuple[int, Mapping[str, Any]]:
    return 200, {"object": "list", "data_ref": "async_actions", "async_actions": "none"}


@pytest.mark.parametrize(
    ("broken", "reported"),
    [(answer_500, "Server error"), (answer_off_shape, "Response violates schema")],
    ids=["500", "off-shape"],
)
def test_control_the_fuzz_fails_against_a_fake_answering_500_or_off_shape(
    monkeypatch: pytest.MonkeyPatch,
    broken: Callable[..., tuple[int, Mapping[str, Any]]],
    reported: str,
) -> None:
    """The same checks, run against a deliberately broken fake, fail."""
    monkeypatch.setattr(Answerer, "_answer_read", broken)
    with FakeVoucherify(actions=served_actions()).run_in_thread() as fake:

        @given(case=LIST_OPERATION.as_strategy())
        @settings(FUZZ_SETTINGS, max_examples=5)
        def fuzz(case: schemathesis.Case) -> None:
            exercise(case, fake.base_url)

        with pytest.raises(BaseExceptionGroup) as failed:
            fuzz()
    assert reported in str(failed.value)
