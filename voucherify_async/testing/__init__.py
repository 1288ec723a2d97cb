"""A fake Voucherify Async Actions API for your tests: public, documented API.

:class:`FakeVoucherify` serves ``GET /v1/async-actions`` and
``GET /v1/async-actions/{id}`` over real HTTP on ``127.0.0.1``, from actions you
give it (:func:`generate_actions` makes realistic ones), and injects the
:class:`Fault` values you queue on ``fake.faults``. The pytest fixture
``fake_voucherify`` lives in :mod:`voucherify_async.testing.pytest_plugin`.
See ``docs/testing.md``.
"""

from voucherify_async.testing._faults import Endpoint, Fault, FaultKind, FaultQueue
from voucherify_async.testing._generate import generate_actions
from voucherify_async.testing._server import (
    FAKE_APP_ID,
    FAKE_APP_TOKEN,
    FakeVoucherify,
    Order,
    RecordedRequest,
)

__all__ = [
    "FAKE_APP_ID",
    "FAKE_APP_TOKEN",
    "Endpoint",
    "FakeVoucherify",
    "Fault",
    "FaultKind",
    "FaultQueue",
    "Order",
    "RecordedRequest",
    "generate_actions",
]
