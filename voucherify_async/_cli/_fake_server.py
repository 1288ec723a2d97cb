"""``voucherify-async fake-server``: the fake API standalone, for any client.

The fake (:class:`voucherify_async.testing.FakeVoucherify`) serves until SIGINT
(Ctrl-C) or SIGTERM, so that any client, the vendor's own SDK included, can be
pointed at it. Its URL is the first line on stdout, flushed at once; what it
serves and the requests it receives are logged on stderr. ``--faults`` is read
by :mod:`._faults`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Iterator
from typing import TextIO

from voucherify_async.testing import FakeVoucherify, generate_actions

from . import _values
from ._errors import PROG, CommandError, usage_error
from ._faults import FaultSpec, describe_faults, fault_name, inject_faults

__all__ = ["add_fake_server_parser"]

_REQUEST_LOG_INTERVAL = 0.2

_EPILOG = f"""\
examples:
  {PROG} fake-server --port 8080
  {PROG} fake-server --actions 50000 --faults 503:0.1,drop:0.05,429:0.05 --seed 7
  {PROG} fake-server --app-id my-id --app-token my-token --inclusive
  {PROG} fake-server --rate-limit 100/60     # the vendor's 429s and X-Rate-Limit-*

then point any client at the printed URL, e.g.:
  VOUCHERIFY_API_URL=http://127.0.0.1:8080 VOUCHERIFY_APP_ID=x VOUCHERIFY_APP_TOKEN=y \\
      {PROG} list --all --format jsonl

--faults: comma-separated KIND:RATE, drawn from --seed; the rates add up to at
most 1. KIND is a status from 400 to 599 (503, 429 with Retry-After: 1),
NNN-html (that status as a proxy's HTML page), drop (the connection closes),
html (200 with an HTML page), truncated (half the JSON), or delay=SECONDS.

The URL is the first line on stdout; the requests received are logged on stderr
(--quiet: not). Ctrl-C or SIGTERM stops it (exit code 0).
"""


def add_fake_server_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``fake-server`` command to ``commands``."""
    parser = commands.add_parser(
        "fake-server",
        help="serve the fake Async Actions API for any client",
        description="Serve the fake Voucherify Async Actions API (both endpoints, "
        "authentication, the vendor's errors) until Ctrl-C, for any client: this "
        "library, the vendor's SDK, curl.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="the address to bind (default: 127.0.0.1)")
    add(
        "--port",
        type=_values.int_between(0, 65535),
        default=0,
        metavar="N",
        help="the port (default: 0, any free port)",
    )
    add(
        "--actions",
        type=_values.int_between(0, 5_000_000),
        default=1_000,
        metavar="N",
        help="how many generated actions to serve (default: 1000)",
    )
    add("--seed", type=int, default=0, help="the seed of the data and faults")
    _add_behaviour_options(parser)
    add("--app-id", metavar="ID", help="accept only this X-App-Id (default: any non-empty)")
    add(
        "--app-token",
        metavar="TOKEN",
        help="accept only this X-App-Token (default: any non-empty)",
    )
    add("--oauth-token", metavar="TOKEN", help="accept this bearer token too")
    add("--quiet", action="store_true", help="do not log the requests")
    parser.set_defaults(run=_run_fake_server)


def _add_behaviour_options(parser: argparse.ArgumentParser) -> None:
    """How the fake answers: end_date's reading, has_more, ties, latency, limits, faults."""
    add = parser.add_argument
    add(
        "--inclusive",
        action="store_true",
        help="read end_date as inclusive (at or before); the default is exclusive",
    )
    add("--no-has-more", action="store_true", help="leave has_more out, as older API versions")
    add(
        "--shuffle-ties",
        action="store_true",
        help="actions of one millisecond in a new order on every request",
    )
    add(
        "--latency",
        type=_values.seconds,
        default=0.0,
        metavar="SECONDS",
        help="wait before every answer (default: 0)",
    )
    add(
        "--rate-limit",
        type=_values.rate_limit,
        metavar="N/SECONDS",
        help="enforce N requests per window of SECONDS (default 60) with the vendor's "
        "X-Rate-Limit-* headers and 429 (default: no limit)",
    )
    add(
        "--faults",
        type=_values.faults,
        default=[],
        metavar="SPEC",
        help="random faults, e.g. 503:0.1,drop:0.05,429:0.05 (see below)",
    )


def _run_fake_server(args: argparse.Namespace) -> int:
    if (args.app_id is None) != (args.app_token is None):
        raise usage_error("--app-id and --app-token go together")
    asyncio.run(run_fake_server(args, sys.stdout, sys.stderr))
    return 0


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


def _fake(args: argparse.Namespace) -> FakeVoucherify:
    """The fake the ``fake-server`` arguments describe, faults included."""
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
    inject_faults(fake, args.faults, args.seed)
    return fake


def _banner(args: argparse.Namespace, base_url: str) -> str:
    """What the fake serves, what it accepts, and a ``curl`` to try, for stderr."""
    if args.app_id is None:
        auth, app_id, app_token = "any non-empty X-App-Id / X-App-Token", "any", "any"
    else:
        auth, app_id, app_token = "the --app-id / --app-token given", args.app_id, args.app_token
    if args.oauth_token is not None:
        auth += ", or the --oauth-token as a bearer token"
    elif args.app_id is None:
        auth += ", or any bearer token"
    reading = "inclusive" if args.inclusive else "exclusive"
    limit = "none" if args.rate_limit is None else "{} requests / {:g} s".format(*args.rate_limit)
    faults: list[FaultSpec] = args.faults
    return (
        f"fake Voucherify Async Actions API at {base_url}\n"
        f"  {args.actions} actions (seed {args.seed}); end_date {reading}; "
        f"faults: {describe_faults(faults)}; rate limit: {limit}\n"
        f"  accepts {auth}\n"
        f"  try: curl -H 'X-App-Id: {app_id}' -H 'X-App-Token: {app_token}' "
        f"'{base_url}/v1/async-actions?limit=3'\n"
        "  Ctrl-C to stop\n"
    )


async def run_fake_server(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> None:
    """Serve the fake as the parsed ``fake-server`` arguments say, until SIGINT or SIGTERM.

    Raises:
        CommandError: the address cannot be bound (the port is taken), or a chosen
            ``--host``/``--port`` the fake cannot bind here.
    """
    fake = _fake(args)
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
            stderr.write(_banner(args, fake.base_url))
            stderr.flush()
            await _serve_until(stop, fake, None if args.quiet else stderr)
        finally:
            await fake.stop()
    stderr.write("fake server stopped\n")
    stderr.flush()
