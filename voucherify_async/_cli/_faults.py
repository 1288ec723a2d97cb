"""The ``--faults`` syntax of ``fake-server`` and ``demo``: random faults by kind and rate.

``--faults`` is a comma-separated list of ``KIND:RATE``: each request meets that
fault with probability ``RATE`` (the rates add up to at most 1), drawn from the
``--seed``, so the same requests meet the same faults::

    503:0.1,drop:0.05,429:0.05

Kinds: an HTTP status from 400 to 599 (the API's JSON error body; a 429 carries
``Retry-After: 1``), ``NNN-html`` (that status with a proxy's HTML page),
``drop`` (the connection closes unanswered), ``html`` (200 with an HTML page),
``truncated`` (the real answer cut in half), ``delay=SECONDS`` (the real answer,
late).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from voucherify_async.testing import FakeVoucherify, Fault

__all__ = [
    "FaultSpec",
    "describe_faults",
    "fault_name",
    "inject_faults",
    "parse_faults",
    "weighted_faults",
]

# Rates are kept to this resolution when several kinds share one random draw.
_RATE_STEPS = 1000
_STATUS = re.compile(r"([1-9][0-9]{2})(-html)?")

FaultSpec = tuple[Fault, float]


def _fault(kind: str) -> Fault:
    """The :class:`Fault` a kind names (see the module docstring).

    Raises:
        ValueError: an unknown kind, a status outside 400..599, a bad delay.
    """
    if kind == "drop":
        return Fault.drop()
    if kind == "html":
        return Fault.html()
    if kind == "truncated":
        return Fault.truncated()
    if kind.startswith("delay="):
        try:
            seconds = float(kind.removeprefix("delay="))
        except ValueError:
            raise ValueError(f"{kind!r}: the delay must be seconds, as in delay=2.5") from None
        if not (math.isfinite(seconds) and seconds >= 0):
            raise ValueError(f"{kind!r}: the delay must be 0 seconds or more")
        return Fault.delay(seconds)
    status = _STATUS.fullmatch(kind)
    if status is None:
        raise ValueError(
            f"unknown fault {kind!r}: use a status (503), NNN-html, drop, html, "
            "truncated or delay=SECONDS"
        )
    code = int(status.group(1))
    if not 400 <= code <= 599:
        raise ValueError(f"{kind!r}: a fault's status must be from 400 to 599")
    return Fault.status(code, html=status.group(2) is not None)


def parse_faults(text: str) -> list[FaultSpec]:
    """Read ``--faults``: ``KIND:RATE[,KIND:RATE...]`` into ``(Fault, rate)`` pairs.

    An empty string or ``none`` means no fault.

    Raises:
        ValueError: a malformed item, an unknown kind, a rate outside (0, 1] or
            finer than 0.001, or rates adding up to more than 1.
    """
    text = text.strip()
    if text in ("", "none"):
        return []
    specs: list[FaultSpec] = []
    for item in text.split(","):
        kind, colon, rate_text = item.strip().rpartition(":")
        if not colon or not kind:
            raise ValueError(f"{item.strip()!r}: write each fault as KIND:RATE, as in 503:0.1")
        try:
            rate = float(rate_text)
        except ValueError:
            raise ValueError(f"{item.strip()!r}: the rate must be a number from 0 to 1") from None
        if not (0 < rate <= 1):
            raise ValueError(f"{item.strip()!r}: the rate must be more than 0 and at most 1")
        if round(rate * _RATE_STEPS) == 0:
            raise ValueError(f"{item.strip()!r}: the smallest rate is {1 / _RATE_STEPS}")
        specs.append((_fault(kind.strip()), rate))
    if sum(rate for _, rate in specs) > 1 + 1e-9:
        raise ValueError(f"the fault rates add up to more than 1: {text!r}")
    return specs


def weighted_faults(specs: Sequence[FaultSpec]) -> tuple[float, list[Fault]]:
    """The total rate, and the kinds repeated in proportion to their rates.

    :meth:`FaultQueue.random` draws one rate and then a kind uniformly; repeating
    each kind by its share (at a resolution of 0.001) gives each its own rate.
    """
    steps = [round(rate * _RATE_STEPS) for _, rate in specs]
    common = math.gcd(*steps) if steps else 1
    kinds = [
        fault for (fault, _), step in zip(specs, steps, strict=True) for _ in range(step // common)
    ]
    return sum(steps) / _RATE_STEPS, kinds


def describe_faults(specs: Sequence[FaultSpec]) -> str:
    """``503 10%, drop 5%`` (``none`` for no fault), for people."""
    if not specs:
        return "none"
    return ", ".join(
        f"{_fault_name(fault)} {rate:.1%}".replace(".0%", "%") for fault, rate in specs
    )


def _fault_name(fault: Fault) -> str:
    if fault.kind == "status":
        return f"{fault.code}-html" if fault.as_html else str(fault.code)
    if fault.kind == "delay":
        return f"delay={fault.seconds:g}"
    return fault.kind


def fault_name(fault: Fault | None) -> str:
    """The ``--faults`` kind that names ``fault`` (``""`` for none)."""
    return "" if fault is None else _fault_name(fault)


def inject_faults(fake: FakeVoucherify, specs: Sequence[FaultSpec], seed: int) -> None:
    """Make ``fake`` meet the faults ``specs`` describe at random, drawn from ``seed``."""
    if specs:
        rate, kinds = weighted_faults(specs)
        fake.faults.random(rate, kinds, seed=seed)
