"""Shared test configuration.

- the ``fake_voucherify`` fixture (the public pytest plugin of ``voucherify_async.testing``);
- ``mock_api``: aioresponses, for tests where the exact request shape is the point;
- a garbage collection after every test, so that an unclosed session or connector
  warns inside the test that leaked it, and ``filterwarnings = error`` fails it.
"""

from __future__ import annotations

import gc
import types
from collections.abc import Iterator
from typing import Any

import aiohttp
import aioresponses.core
import pytest
from aioresponses import aioresponses as _aioresponses
from yarl import URL

pytest_plugins = ["voucherify_async.testing.pytest_plugin"]


class _CompatResponse(aiohttp.ClientResponse):
    """aioresponses 0.7.x builds responses without the ``stream_writer`` that aiohttp 3.14
    requires (pnuckowski/aioresponses#289); give it a stand-in with the one attribute
    aiohttp reads when the request was already sent."""

    def __init__(self, method: str, url: URL, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", types.SimpleNamespace(output_size=0))
        super().__init__(method, url, **kwargs)


@pytest.fixture
def mock_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[_aioresponses]:
    """aioresponses, patched for aiohttp 3.14; no request reaches the network."""
    monkeypatch.setattr(aioresponses.core, "ClientResponse", _CompatResponse)
    with _aioresponses() as mock:
        yield mock


@pytest.fixture(autouse=True)
def _collect_garbage_after_each_test() -> Iterator[None]:
    """Unclosed sessions and connectors warn when collected: collect inside the test."""
    yield
    gc.collect()
