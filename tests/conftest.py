"""Shared test configuration.

- the ``fake_voucherify`` fixture (the public pytest plugin of ``voucherify_async.testing``);
- ``mock_api``: aioresponses, for tests where the exact request shape is the point;
- a garbage collection after every test, so that an unclosed session or connector
  warns inside the test that leaked it, and ``filterwarnings = error`` fails it. It
  is cheap because what lives for the whole run (the imported modules, the test
  modules' data) is frozen out of the collector's reach (``gc.freeze()``) once the
  tests are collected, and again at the end of each test module: a full collection
  then only walks what the current module made. Measured: about 1 ms of CPU per
  test instead of 45 ms (70,000 objects) to 300 ms (with the vendor's SDK imported);
  the whole suite went from 616 s to 52 s of CPU time;
- the Hypothesis profiles: ``ci`` (the default) draws the same examples on every run
  and never fails on timing; ``explore`` draws new ones each run (choose it with
  ``--hypothesis-profile=explore`` or ``HYPOTHESIS_PROFILE=explore``).
"""

from __future__ import annotations

import gc
import os
import types
from collections.abc import Generator, Iterator
from typing import Any

import aiohttp
import aioresponses.core
import pytest
from aioresponses import aioresponses as _aioresponses
from hypothesis import HealthCheck, settings
from yarl import URL

pytest_plugins = ["voucherify_async.testing.pytest_plugin"]

# Hypothesis: no timing in any verdict (a busy machine is slow, not wrong): no
# per-example deadline, no "too slow" health check. ``ci`` derandomizes, so that
# a run fails or passes the same way on every machine and every rerun (a failure
# is reproducible from the test's name alone); ``explore`` is the one that hunts
# for new counterexamples, with a database to replay them.
_NO_TIMING = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
settings.register_profile("ci", derandomize=True, database=None, print_blob=True, **_NO_TIMING)
settings.register_profile("explore", max_examples=500, print_blob=True, **_NO_TIMING)
# Loaded here, before the test modules are imported: a test's own ``@settings(...)``
# inherits from the profile that is loaded when its module is imported.
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


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


def _freeze_what_lives_on() -> None:
    """Collect, then move every surviving object to the permanent generation, which
    later collections skip; objects made later (by the tests) are still collected."""
    gc.collect()
    gc.freeze()


def pytest_collection_finish(session: pytest.Session) -> None:
    """The imported modules and the test modules' data live for the whole run."""
    _freeze_what_lives_on()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(
    item: pytest.Item, nextitem: pytest.Item | None
) -> Generator[None, object, object]:
    """After the last test of a module (and its module fixtures' teardown), what the
    module imported or cached lives on: freeze it too."""
    result = yield
    if nextitem is not None and nextitem.path != item.path:
        _freeze_what_lives_on()
    return result


@pytest.fixture(autouse=True)
def _collect_garbage_after_each_test() -> Iterator[None]:
    """Unclosed sessions and connectors warn when collected: collect inside the test."""
    yield
    gc.collect()
