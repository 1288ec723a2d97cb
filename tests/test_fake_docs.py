"""Every Python example in docs/testing.md runs as printed.

Each ```python block is executed on its own, in a fresh namespace. A block that
defines ``test_*`` functions (the fixture example) has them called with the
real ``fake_voucherify`` fixture, awaited on a new event loop when async.
"""

from __future__ import annotations

import asyncio
import inspect
import re
from pathlib import Path
from typing import Any

import pytest

from voucherify_async.testing import FakeVoucherify

DOCS = Path(__file__).parent.parent / "docs" / "testing.md"
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.DOTALL | re.MULTILINE)
EXAMPLES = PYTHON_BLOCK.findall(DOCS.read_text(encoding="utf-8"))


def test_the_page_has_examples_for_fixture_serving_faults_and_generator() -> None:
    """The page shows the fixture, both ways of serving, faults, the generator, the rate
    limit, started actions (by call and by POST) and the manual clock."""
    text = "\n".join(EXAMPLES)
    assert len(EXAMPLES) >= 10
    for needle in (
        "voucherify_async.testing.pytest_plugin",
        "fake_voucherify",
        "async with FakeVoucherify(",
        ".run_in_thread()",
        "faults.push(",
        "faults.random(",
        "generate_actions(",
        "rate_limit=(",
        "X-Rate-Limit-Retry",
        ".start_action(",
        'session.post("/v1/customers/metadata/async"',
        "ManualClock(",
        "clock.advance(",
    ):
        assert needle in text


@pytest.mark.parametrize("index", range(len(EXAMPLES)), ids=lambda i: f"example-{i}")
def test_docs_example_runs(index: int, fake_voucherify: FakeVoucherify) -> None:
    """The example finishes without error (its own asserts included)."""
    namespace: dict[str, Any] = {"__name__": f"docs_testing_example_{index}"}
    code = compile(EXAMPLES[index], f"docs/testing.md (example {index})", "exec")
    exec(code, namespace)  # noqa: S102 - running our own documentation is the point
    for name, value in namespace.items():
        if name.startswith("test_") and inspect.isfunction(value):
            outcome = value(fake_voucherify)
            if inspect.iscoroutine(outcome):
                asyncio.run(outcome)
