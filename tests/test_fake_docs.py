"""docs/testing.md shows every part of the fake: the fixture, serving, faults, the generator.

tests/test_docs.py runs each of its examples as a program (the fixture example
with pytest), as it runs every example of the documentation.
"""

from __future__ import annotations

import re
from pathlib import Path

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
