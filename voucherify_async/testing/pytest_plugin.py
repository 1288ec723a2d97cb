"""The ``fake_voucherify`` pytest fixture: a :class:`FakeVoucherify` serving for one test.

Enable it in your ``conftest.py``::

    pytest_plugins = ["voucherify_async.testing.pytest_plugin"]

The fake runs in a background thread (:meth:`FakeVoucherify.run_in_thread`), so
the fixture is synchronous and works in sync tests and in async tests under any
event loop or plugin.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from voucherify_async.testing._generate import generate_actions
from voucherify_async.testing._server import FakeVoucherify

__all__ = ["fake_voucherify"]


@pytest.fixture
def fake_voucherify() -> Iterator[FakeVoucherify]:
    """A serving :class:`FakeVoucherify` with 250 generated actions (``seed=0``).

    It accepts ``FAKE_APP_ID`` / ``FAKE_APP_TOKEN``; change its knobs, store and
    faults freely: every test gets a fresh one, stopped when the test ends.
    """
    fake = FakeVoucherify(actions=generate_actions(250, seed=0))
    with fake.run_in_thread():
        yield fake
