"""Benchmark: the stream's early first action, on against off, in one run.

Run from the repository root::

    python docs/benchmarks/first_action.py                # 201 trials each, 0 and 20 ms
    python docs/benchmarks/first_action.py --trials 51 --latency 0.02

"On" is the stream as it is: its first page hands over its first action before
the rest of the page is decoded (``AsyncActionStream._first_page``). "Off" makes
``_first_page`` read the page whole, as every other page is read. Each trial
creates a new client (so a new connection), streams with the default prefetch,
and times from creating the client to having the first action. On and off
alternate, the order flipping each trial, against one fake server in a child
process (``serve_fake.py``) that waits ``latency`` seconds before each answer.
It prints a Markdown table: median (min-max) milliseconds, and on/off of the
medians and of the minimums.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import statistics
import time
from collections.abc import Iterator, Sequence

from serve_fake import ServerProcess  # this script's neighbour: its directory is on sys.path

from voucherify_async import VoucherifyClient
from voucherify_async._decode import read_page
from voucherify_async._stream import AsyncActionStream
from voucherify_async.testing import FAKE_APP_ID, FAKE_APP_TOKEN

_EARLY = AsyncActionStream._first_page


def _whole(self: AsyncActionStream, raw: object) -> object:
    return self._feed(read_page(raw))  # type: ignore[arg-type]


@contextlib.contextmanager
def _early(on: bool) -> Iterator[None]:
    AsyncActionStream._first_page = _EARLY if on else _whole  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        AsyncActionStream._first_page = _EARLY  # type: ignore[method-assign]


async def _first_action(base_url: str, on: bool) -> float:
    start = time.perf_counter()
    client = VoucherifyClient(FAKE_APP_ID, FAKE_APP_TOKEN, base_url=base_url)
    async with client, client.iter_async_actions(page_size=100) as stream:
        await anext(stream)
        elapsed = time.perf_counter() - start
        if (stream._early is not None) != on:  # the switch did not switch
            raise RuntimeError(f"early first action {'on' if on else 'off'} did not hold")
    return elapsed


async def _trials(base_url: str, trials: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"on": [], "off": []}
    for name in ("on", "off"):  # warm-up, untimed
        with _early(name == "on"):
            await _first_action(base_url, name == "on")
    for trial in range(trials):
        for name in ("on", "off") if trial % 2 == 0 else ("off", "on"):
            gc.collect()
            with _early(name == "on"):
                times[name].append(await _first_action(base_url, name == "on"))
    return times


def _span(values: Sequence[float]) -> str:
    ms = [value * 1e3 for value in values]
    return f"{statistics.median(ms):.2f} ({min(ms):.2f}-{max(ms):.2f})"


def main(argv: Sequence[str] | None = None) -> None:
    """Measure, and print the table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--trials", type=int, default=201, help="trials of each (201)")
    parser.add_argument(
        "--latency",
        type=float,
        action="append",
        help="server latency in seconds; repeat for several (default: 0 and 0.02)",
    )
    args = parser.parse_args(argv)
    latencies = args.latency or [0.0, 0.02]
    rows = []
    with ServerProcess() as server:
        server.command("actions 10000")
        for latency in latencies:
            server.command(f"latency {latency}")
            times = asyncio.run(_trials(server.base_url, args.trials))
            on, off = times["on"], times["off"]
            median = statistics.median(on) / statistics.median(off)
            least = min(on) / min(off)
            rows.append(
                f"| {latency * 1e3:.0f} ms | {_span(on)} | {_span(off)} "
                f"| {median:.3f} | {least:.3f} |"
            )
    print(f"Time to first action, {args.trials} alternating trials each, new client each:\n")
    print("| latency | on, ms | off, ms | on/off medians | on/off minimums |")
    print("|---|---:|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
