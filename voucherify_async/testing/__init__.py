"""A fake Voucherify Async Actions API for your tests: public, documented API.

:class:`FakeVoucherify` serves ``GET /v1/async-actions`` and
``GET /v1/async-actions/{id}`` over real HTTP on ``127.0.0.1``, from actions you
give it (:func:`generate_actions` makes realistic ones), and injects the
:class:`Fault` values you queue on ``fake.faults``. It can enforce a rate limit
with the vendor's headers (``rate_limit=``), and start actions that progress with
its clock (``fake.start_action()``, or the POSTs that start bulk and metadata
updates); a :class:`ManualClock` makes both deterministic. The pytest fixture
``fake_voucherify`` lives in :mod:`voucherify_async.testing.pytest_plugin`.
See ``docs/testing.md``.
"""

from voucherify_async.testing._answers import RecordedRequest
from voucherify_async.testing._clock import Clock, ManualClock
from voucherify_async.testing._faults import Endpoint, Fault, FaultKind, FaultQueue
from voucherify_async.testing._generate import generate_actions
from voucherify_async.testing._lifecycle import ActionOutcome
from voucherify_async.testing._server import FakeVoucherify
from voucherify_async.testing._settings import FAKE_APP_ID, FAKE_APP_TOKEN, Order

__all__ = [
    "FAKE_APP_ID",
    "FAKE_APP_TOKEN",
    "ActionOutcome",
    "Clock",
    "Endpoint",
    "FakeVoucherify",
    "Fault",
    "FaultKind",
    "FaultQueue",
    "ManualClock",
    "Order",
    "RecordedRequest",
    "generate_actions",
]
