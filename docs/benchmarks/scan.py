"""Benchmark: scan_async_actions with 8 partitions against one sequential stream.

The fake server answers every request after 50 ms (``latency``), as a distant API
would; the client walks 20,000 actions either as one stream or as 8 windows at
once. Runs alternate, and the medians, min-max and their ratio are printed (and
written as JSON with ``--json``)::

    python docs/benchmarks/scan.py            # 20,000 actions, 50 ms, 8 partitions, 3 runs
    python docs/benchmarks/scan.py --quick    # a few seconds, for the smoke test

The server runs in a thread of its own event loop (the latency, not its CPU, is
what is measured here).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from voucherify_async import VoucherifyClient
from voucherify_async.testing import FAKE_APP_ID, FAKE_APP_TOKEN, FakeVoucherify, generate_actions


async def sequential(base_url: str) -> tuple[float, int]:
    async with VoucherifyClient(FAKE_APP_ID, FAKE_APP_TOKEN, base_url=base_url) as client:
        started = time.perf_counter()
        count = 0
        async for _action in client.iter_async_actions(page_size=100):
            count += 1
        return time.perf_counter() - started, count


async def scanned(
    base_url: str, since: datetime, end: datetime, partitions: int
) -> tuple[float, int]:
    async with VoucherifyClient(FAKE_APP_ID, FAKE_APP_TOKEN, base_url=base_url) as client:
        started = time.perf_counter()
        count = 0
        async with client.scan_async_actions(
            since=since, end_date=end, partitions=partitions, page_size=100
        ) as scan:
            async for _action in scan:
                count += 1
        return time.perf_counter() - started, count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actions", type=int, default=20_000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for the smoke test")
    parser.add_argument("--json", type=Path, help="write the measurements here")
    args = parser.parse_args(argv)
    if args.quick:
        args.actions, args.latency, args.runs = 1_000, 0.005, 1

    actions = generate_actions(args.actions, seed=1)
    newest = datetime.fromisoformat(actions[0]["created_at"])
    oldest = datetime.fromisoformat(actions[-1]["created_at"])
    end = newest + timedelta(milliseconds=1)  # the range [oldest, newest] whole
    results: dict[str, list[float]] = {"sequential": [], "scan": []}
    with FakeVoucherify(actions=actions, latency=args.latency).run_in_thread() as fake:
        for _ in range(args.runs):
            seconds, count = asyncio.run(sequential(fake.base_url))
            assert count == args.actions, (count, args.actions)
            results["sequential"].append(seconds)
            seconds, count = asyncio.run(scanned(fake.base_url, oldest, end, args.partitions))
            assert count == args.actions, (count, args.actions)
            results["scan"].append(seconds)

    median = {name: statistics.median(times) for name, times in results.items()}
    ratio = median["scan"] / median["sequential"]
    print(
        f"{args.actions:,} actions, server latency {args.latency * 1000:.0f} ms, {args.runs} runs"
    )
    for name, times in results.items():
        print(
            f"  {name:<10} median {median[name]:7.3f} s   "
            f"min {min(times):7.3f}   max {max(times):7.3f}"
        )
    print(f"  scan / sequential = {ratio:.3f}  (target <= 0.25 with 8 partitions)")
    if args.json:
        report: dict[str, Any] = {"args": vars(args) | {"json": str(args.json)}, "runs": results}
        report["median"], report["ratio"] = median, ratio
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
