"""``voucherify-async fake-server``: the fake API standalone, and the ``--faults`` syntax.

The fake (:class:`voucherify_async.testing.FakeVoucherify`) serves until SIGINT
(Ctrl-C) or SIGTERM, so that any client, the vendor's own SDK included, can be
pointed at it. Its URL is the first line on stdout, flushed at once; what it
serves and the requests it receives are logged on stderr.

``--faults`` (also taken by ``demo``) is a comma-separated list of ``KIND:RATE``:
each request meets that fault with probability ``RATE`` (the rates add up to at
most 1), drawn from the ``--seed``, so the same requests meet the same faults::

    503:0.1,drop:0.05,429:0.05

Kinds: an HTTP status from 400 to 599 (the API's JSON error body; a 429 carries
``Retry-After: 1``), ``NNN-html`` (that status with a proxy's HTML page),
``drop`` (the connection closes unanswered), ``html`` (200 with an HTML page),
``truncated`` (the real answer cut in half), ``delay=SECONDS`` (the real answer,
late).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import re
import signal
from collections.abc import Iterator, Sequence
from typing import TextIO

from ._cli_output import CommandError
from .testing import FakeVoucherify, Fault, generate_actions

__all__ = [
    "FaultSpec",
    "describe_faults",
    "fault_name",
    "parse_faults",
    "run_fake_server",
    "weighted_faults",
]

# Rates are kept to this resolution when several kinds share one random draw.
_RATE_STEPS = 1000
_STATUS = re.compile(r"([1-9][0-9]{2})(-html)?")
_REQUEST_LOG_INTERVAL = 0.2

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


@contextlib.contextmanager
def _stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    """Set ``stop`` on SIGINT and SIGTERM while the block runs (where the loop supports it)."""
    loop = asyncio.get_running_loop()
    installed = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, stop.set)
        except (NotImplementedError, RuntimeError):  # Windows, or not the main thread
            continue
        installed.append(signum)
    try:
        yield
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)


def _log_requests(fake: FakeVoucherify, stderr: TextIO | None) -> None:
    """Write each request the fake received as one line on ``stderr`` (``None``: drop them).

    The fake's request log is emptied, so that memory stays flat however long the
    server runs.
    """
    received, fake.requests = fake.requests, []
    if stderr is None or not received:
        return
    for request in received:
        query = "&".join(f"{name}={value}" for name, value in request.query.items())
        query = f"?{query}" if query else ""
        note = f"  [fault: {fault_name(request.fault)}]" if request.fault else ""
        if request.rate_limited:
            note = "  [429: over --rate-limit]"
        stderr.write(f"{request.method} {request.path}{query}{note}\n")
    stderr.flush()


async def _serve_until(stop: asyncio.Event, fake: FakeVoucherify, log: TextIO | None) -> None:
    """Log the requests as they come, until ``stop`` is set, then the last ones."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_REQUEST_LOG_INTERVAL):
                await stop.wait()
        _log_requests(fake, log)


async def run_fake_server(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> None:
    """Serve the fake as the parsed ``fake-server`` arguments say, until SIGINT or SIGTERM.

    Raises:
        CommandError: the address cannot be bound (the port is taken), or a chosen
            ``--host``/``--port`` the fake cannot bind here.
    """
    faults: list[FaultSpec] = args.faults
    fake = FakeVoucherify(
        actions=generate_actions(args.actions, seed=args.seed),
        app_id=args.app_id,
        app_token=args.app_token,
        oauth_token=args.oauth_token,
        end_date_inclusive=args.inclusive,
        send_has_more=not args.no_has_more,
        shuffle_ties=args.shuffle_ties,
        latency=args.latency,
        rate_limit=args.rate_limit,
        seed=args.seed,
    )
    if faults:
        rate, kinds = weighted_faults(faults)
        fake.faults.random(rate, kinds, seed=args.seed)
    stop = asyncio.Event()
    with _stop_on_signals(stop):
        try:
            await fake.start(host=args.host, port=args.port)
        except OSError as error:
            raise CommandError(
                f"cannot serve on {args.host} port {args.port}: {error.strerror or error}"
            ) from None
        try:
            stdout.write(f"{fake.base_url}\n")
            stdout.flush()
            if args.app_id is None:
                auth, app_id, app_token = "any non-empty X-App-Id / X-App-Token", "any", "any"
            else:
                auth, app_id, app_token = (
                    "the --app-id / --app-token given",
                    args.app_id,
                    args.app_token,
                )
            if args.oauth_token is not None:
                auth += ", or the --oauth-token as a bearer token"
            elif args.app_id is None:
                auth += ", or any bearer token"
            reading = "inclusive" if args.inclusive else "exclusive"
            limit = (
                "none"
                if args.rate_limit is None
                else "{} requests / {:g} s".format(*args.rate_limit)
            )
            stderr.write(
                f"fake Voucherify Async Actions API at {fake.base_url}\n"
                f"  {args.actions} actions (seed {args.seed}); end_date {reading}; "
                f"faults: {describe_faults(faults)}; rate limit: {limit}\n"
                f"  accepts {auth}\n"
                f"  try: curl -H 'X-App-Id: {app_id}' -H 'X-App-Token: {app_token}' "
                f"'{fake.base_url}/v1/async-actions?limit=3'\n"
                "  Ctrl-C to stop\n"
            )
            stderr.flush()
            await _serve_until(stop, fake, None if args.quiet else stderr)
        finally:
            await fake.stop()
    stderr.write("fake server stopped\n")
    stderr.flush()
