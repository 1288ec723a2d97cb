"""Faults the fake can inject, and the schedule that decides which request gets one.

A :class:`Fault` is a frozen value: what goes wrong (a status, a dropped
connection, an HTML page, cut JSON, an odd payload, a delay). A
:class:`FaultQueue` (``fake.faults``) hands them out, deterministically:

1. pushed faults first, in the order pushed, each for ``times`` requests to its
   ``endpoint`` (``"list"``, ``"get"``, ``"start"`` for the POSTs that start an
   action, or ``None`` for any);
2. then, if :meth:`FaultQueue.random` was called, a seeded draw per request.

Only requests to the API endpoints take faults (not unknown paths or methods).
The queue is thread-safe: tests push from their own thread while the fake serves
from another.
"""

from __future__ import annotations

import json
import math
import random
import threading
from collections import deque
from collections.abc import Sequence
from typing import Any, Literal

import attrs

__all__ = ["Endpoint", "Fault", "FaultKind", "FaultQueue"]

Endpoint = Literal["list", "get", "start"]
FaultKind = Literal["status", "drop", "html", "truncated", "payload", "delay"]
_ENDPOINTS = ("list", "get", "start")


@attrs.frozen(kw_only=True)
class Fault:
    """One injected misbehaviour; build it with a factory, never by hand.

    ``Fault.status(429, retry_after=1)``, ``Fault.status(502, html=True)``,
    ``Fault.drop()``, ``Fault.html()``, ``Fault.truncated()``,
    ``Fault.payload({"object": "list"})``, ``Fault.delay(5.0)``.
    """

    kind: FaultKind
    #: The HTTP status answered (``status``, ``html``, ``payload``).
    code: int = 200
    #: ``Retry-After`` in seconds (``status``); always set for 429.
    retry_after: int | None = None
    #: Answer with a proxy's HTML error page instead of the JSON error (``status``).
    as_html: bool = False
    #: The body, as JSON text (``payload``).
    json_body: str | None = None
    #: How long to wait before answering (``delay``).
    seconds: float = 0.0

    @classmethod
    def status(cls, code: int, *, retry_after: int | None = None, html: bool = False) -> Fault:
        """Answer ``code`` with the API's JSON error shape (or a proxy's HTML page).

        A 429 carries ``Retry-After`` (``retry_after``, 1 when not given),
        ``X-Rate-Limit-Type``, ``X-Rate-Limit-Remaining: 0`` and
        ``X-Rate-Limit-Retry`` (epoch seconds); any other status carries
        ``Retry-After`` only when ``retry_after`` is given.

        Raises:
            ValueError: ``code`` is not within 400..599, or ``retry_after`` < 0.
        """
        if not 400 <= code <= 599:
            raise ValueError(f"a status fault needs a 4xx or 5xx code, not {code}")
        if retry_after is not None and retry_after < 0:
            raise ValueError(f"retry_after must be >= 0, not {retry_after}")
        if code == 429 and retry_after is None:
            retry_after = 1
        return cls(kind="status", code=code, retry_after=retry_after, as_html=html)

    @classmethod
    def drop(cls) -> Fault:
        """Close the connection without answering.

        The aiohttp client retries an idempotent request once on a fresh connection
        when the server disconnects: push ``times=2`` to make it give up.
        """
        return cls(kind="drop")

    @classmethod
    def html(cls, *, status: int = 200) -> Fault:
        """Answer ``status`` (200 by default) with an HTML page instead of JSON.

        Raises:
            ValueError: ``status`` is not within 200..599.
        """
        return cls(kind="html", code=_checked_status(status))

    @classmethod
    def truncated(cls) -> Fault:
        """Answer as usual, status and headers included, but with the first half of the JSON."""
        return cls(kind="truncated")

    @classmethod
    def payload(cls, body: Any, *, status: int = 200) -> Fault:
        """Answer ``status`` (200 by default) with ``body`` as JSON, whatever its shape.

        For missing fields, wrong types, unknown enum values, an unknown error
        shape. ``body`` is encoded now: changing it afterwards changes nothing.

        Raises:
            TypeError: ``body`` cannot be encoded as JSON.
            ValueError: ``body`` holds a NaN or infinity, or a circular reference; or
                ``status`` is not within 200..599.
        """
        code = _checked_status(status)
        return cls(kind="payload", code=code, json_body=json.dumps(body, allow_nan=False))

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        """Answer as usual, but only after ``seconds`` (answered at once when the fake stops).

        Raises:
            ValueError: ``seconds`` is negative or not finite.
        """
        if not (math.isfinite(seconds) and seconds >= 0):
            raise ValueError(f"seconds must be finite and >= 0, not {seconds}")
        return cls(kind="delay", seconds=seconds)


@attrs.define(eq=False)
class _Scheduled:
    fault: Fault
    left: int
    endpoint: Endpoint | None


@attrs.frozen
class _RandomFaults:
    rate: float
    kinds: tuple[Fault, ...]
    rng: random.Random = attrs.field(eq=False)
    endpoint: Endpoint | None


class FaultQueue:
    """The faults a :class:`FakeVoucherify` will inject: ``fake.faults``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scheduled: deque[_Scheduled] = deque()
        self._random: _RandomFaults | None = None

    def push(self, fault: Fault, *, times: int = 1, endpoint: Endpoint | None = None) -> None:
        """Inject ``fault`` into the next ``times`` requests to ``endpoint`` (any when ``None``).

        Faults pushed earlier are served first.

        Raises:
            ValueError: ``times`` < 1, or ``endpoint`` is not ``"list"``, ``"get"``,
                ``"start"`` or ``None``.
            TypeError: ``fault`` is not a :class:`Fault`.
        """
        if not isinstance(fault, Fault):
            raise TypeError(f"expected a Fault, not {type(fault).__name__}")
        if times < 1:
            raise ValueError(f"times must be >= 1, not {times}")
        _check_endpoint(endpoint)
        with self._lock:
            self._scheduled.append(_Scheduled(fault, times, endpoint))

    def random(
        self,
        rate: float,
        kinds: Sequence[Fault],
        *,
        seed: int = 0,
        endpoint: Endpoint | None = None,
    ) -> None:
        """From now on, inject one of ``kinds`` into each request with probability ``rate``.

        Draws come from ``random.Random(seed)``, one per request to ``endpoint``
        that no pushed fault took, so the same requests in the same order meet the
        same faults. Replaces an earlier call; ``rate=0`` turns it off.

        Raises:
            ValueError: ``rate`` outside 0..1, ``kinds`` empty, or a bad ``endpoint``.
            TypeError: an item of ``kinds`` is not a :class:`Fault`.
        """
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate must be within 0..1, not {rate}")
        if not kinds:
            raise ValueError("kinds must name at least one Fault")
        for kind in kinds:
            if not isinstance(kind, Fault):
                raise TypeError(f"expected a Fault, not {type(kind).__name__}")
        _check_endpoint(endpoint)
        rng = random.Random(seed)  # noqa: S311 - seeded on purpose: reproducible faults
        with self._lock:
            self._random = _RandomFaults(rate, tuple(kinds), rng, endpoint)

    def clear(self) -> None:
        """Forget every pushed fault and stop random faults."""
        with self._lock:
            self._scheduled.clear()
            self._random = None

    def __len__(self) -> int:
        """How many requests pushed faults are still waiting for (random ones not counted)."""
        with self._lock:
            return sum(entry.left for entry in self._scheduled)

    def take(self, endpoint: Endpoint) -> Fault | None:
        """The fault for the next request to ``endpoint``, consuming it; ``None`` for none.

        The fake calls this once per API request; it is public so that a schedule
        can be checked without any HTTP.
        """
        with self._lock:
            for entry in self._scheduled:
                if entry.endpoint is None or entry.endpoint == endpoint:
                    entry.left -= 1
                    if entry.left == 0:
                        self._scheduled.remove(entry)
                    return entry.fault
            chance = self._random
            if chance is None or chance.endpoint not in (None, endpoint):
                return None
            if chance.rng.random() < chance.rate:
                return chance.rng.choice(chance.kinds)
            return None


def _checked_status(status: int) -> int:
    if not 200 <= status <= 599:
        raise ValueError(f"status must be within 200..599, not {status}")
    return status


def _check_endpoint(endpoint: object) -> None:
    if endpoint is not None and endpoint not in _ENDPOINTS:
        raise ValueError(f"endpoint must be 'list', 'get', 'start' or None, not {endpoint!r}")
