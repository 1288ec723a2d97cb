"""Profile the client's stream: where its CPU time goes, per page and per action.

Run from the repository root::

    python docs/benchmarks/profile_stream.py                  # cProfile, 50,000 actions
    python docs/benchmarks/profile_stream.py --prefetch 0     # without prefetch
    python docs/benchmarks/profile_stream.py --pyinstrument   # a sampled call tree instead
    py-spy record -o profile.svg -- python docs/benchmarks/profile_stream.py --bare --repeat 20

The fake server runs in a child process (``serve_fake.py``), so only the client's
work is profiled. The stream runs once to warm up, then once under the profiler.

The report groups the client's time by area (aiohttp, json, cattrs, each module
of the client, ...), then lists the costliest functions. Time spent waiting for
the server (in ``epoll``) is shown apart, not counted as the client's. cProfile
makes every Python call slower, so code with many small calls (the converter)
looks bigger than it is: read the areas as shares, and time a suspect without the
profiler before optimising it. (A CPU clock would leave out the waits by itself,
but reading one costs a system call, twice for every Python call, which distorts
far more.) pyinstrument (``pip install pyinstrument``) samples instead and shows
the call tree, with its own, smaller distortion.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import inspect
import pstats
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from serve_fake import ServerProcess  # this script's neighbour: its directory is on sys.path

from voucherify_async import VoucherifyClient
from voucherify_async.testing import FAKE_APP_ID, FAKE_APP_TOKEN

__all__ = ["area", "main", "stream_once"]

PAGE_SIZE = 100
WAITING = "waiting for the server (epoll)"
SOCKET = "socket send/recv (kernel)"
_APART = {
    "<method 'poll' of 'select.epoll' objects>": WAITING,
    "<method 'select' of 'select.poll' objects>": WAITING,
    "<method 'send' of '_socket.socket' objects>": SOCKET,
    "<method 'recv' of '_socket.socket' objects>": SOCKET,
    "<method 'recv_into' of '_socket.socket' objects>": SOCKET,
}
_PREFETCH = "prefetch" in inspect.signature(VoucherifyClient.iter_async_actions).parameters


async def stream_once(base_url: str, prefetch: int) -> tuple[int, int]:
    """Stream every action the server holds, as a caller would: ``(actions, requests)``."""
    options: dict[str, Any] = {"prefetch": prefetch} if _PREFETCH else {}
    count = 0
    async with VoucherifyClient(FAKE_APP_ID, FAKE_APP_TOKEN, base_url=base_url) as client:
        stream = client.iter_async_actions(page_size=PAGE_SIZE, **options)
        async for _action in stream:
            count += 1
        return count, stream.requests_made


def area(filename: str, function: str) -> str:
    """The area a profiled function belongs to, from its file (``~`` is a builtin)."""
    if filename == "~" and function in _APART:
        return _APART[function]
    if filename == "~":
        return f"builtin {function.strip('<>')}"
    parts = Path(filename).parts
    if "voucherify_async" in parts:
        return f"voucherify_async {Path(filename).stem}"
    if filename.startswith(("<attrs generated", "<cattrs generated")):
        return "cattrs/attrs generated code"
    for package in ("aiohttp", "yarl", "multidict", "cattrs", "attrs", "json", "asyncio"):
        if package in parts:
            return package
    return Path(filename).name


def _report(stats: pstats.Stats, actions: int, pages: int, top: int) -> None:
    entries: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]  # pstats keeps it untyped
    areas: defaultdict[str, float] = defaultdict(float)
    functions: list[tuple[float, int, str]] = []
    for (filename, line, function), (_, calls, own, _, _) in entries.items():
        areas[area(filename, function)] += own
        place = f"{Path(filename).name}:{line}" if filename != "~" else "builtin"
        kind = area(filename, function)
        label = kind if kind in (WAITING, SOCKET) else f"{function} ({place})"
        functions.append((own, calls, label))
    waiting, sending = areas.pop(WAITING, 0.0), areas.pop(SOCKET, 0.0)
    total = sum(areas.values())
    print(
        f"\nthe client's own time under cProfile: {total:.3f} s for {actions:,} actions in "
        f"{pages} requests: {total / pages * 1e6:,.0f} µs a page, "
        f"{total / actions * 1e6:.2f} µs an action.\nApart: {waiting:.3f} s waiting for the "
        f"server, {sending:.3f} s in socket calls (loopback delivery runs in the kernel "
        "during send; on a busy machine the server may run there too).\n"
    )
    print(f"{'area':<44}{'s':>8}{'share':>8}{'µs/page':>10}{'µs/action':>11}")
    for name, seconds in sorted(areas.items(), key=lambda item: item[1], reverse=True):
        if seconds / total < 0.002:
            break
        print(
            f"{name:<44}{seconds:>8.3f}{seconds / total:>8.1%}"
            f"{seconds / pages * 1e6:>10.1f}{seconds / actions * 1e6:>11.3f}"
        )
    print(f"\n{'function (own time)':<70}{'calls':>9}{'s':>8}{'share':>8}")
    chosen = [row for row in sorted(functions, reverse=True) if row[2] not in (WAITING, SOCKET)]
    for seconds, calls, name in chosen[:top]:
        print(f"{name[:69]:<70}{calls:>9,}{seconds:>8.3f}{seconds / total:>8.1%}")


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the options, start the server process, profile one stream, print the report."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--actions", type=int, default=50_000, help="actions to stream (50,000)")
    parser.add_argument("--prefetch", type=int, default=1, help="the client's prefetch (1)")
    parser.add_argument("--top", type=int, default=25, help="functions to list (25)")
    parser.add_argument(
        "--pyinstrument", action="store_true", help="sample with pyinstrument instead"
    )
    parser.add_argument(
        "--bare",
        action="store_true",
        help="no profiler: stream and print the time, for an outside sampler such as py-spy",
    )
    parser.add_argument("--repeat", type=int, default=1, help="streams to run with --bare (1)")
    args = parser.parse_args(argv)
    if args.actions < 1 or args.prefetch < 0 or args.repeat < 1:
        parser.error("--actions and --repeat must be >= 1, --prefetch >= 0")
    with ServerProcess() as server:
        server.command(f"actions {args.actions}")
        asyncio.run(stream_once(server.base_url, args.prefetch))  # warm-up
        gc.collect()
        if args.bare:
            start = time.perf_counter()
            for _ in range(args.repeat):
                actions, pages = asyncio.run(stream_once(server.base_url, args.prefetch))
            each = (time.perf_counter() - start) / args.repeat
            streams = f"{args.repeat} stream(s) of {actions:,} actions in {pages} requests"
            print(f"{streams}: {each:.3f} s each")
            return
        if args.pyinstrument:
            try:
                from pyinstrument import Profiler
            except ImportError:
                sys.exit("--pyinstrument needs pyinstrument: pip install pyinstrument")
            sampler = Profiler(interval=0.0005, async_mode="disabled")
            with sampler:
                asyncio.run(stream_once(server.base_url, args.prefetch))
            print(sampler.output_text(unicode=True, color=False))
            return
        profiler = cProfile.Profile()
        server_before = server.cpu_time()
        profiler.enable()
        try:
            actions, pages = asyncio.run(stream_once(server.base_url, args.prefetch))
        finally:
            profiler.disable()
        server_cpu = server.cpu_time() - server_before
    _report(pstats.Stats(profiler), actions, pages, args.top)
    per_page = server_cpu / pages * 1e6
    print(f"\nthe server process's CPU meanwhile: {server_cpu:.3f} s ({per_page:,.0f} µs a page)")


if __name__ == "__main__":
    main()
