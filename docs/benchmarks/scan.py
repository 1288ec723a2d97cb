"""Benchmark: scan_async_actions against one sequential stream, over three histories.

The fake server runs in a process of its own (``serve_fake.py``) and answers every
request after ``--latency`` (20 ms), as a distant API would. For each history of
``--actions`` (20,000) actions, each run walks the range once as one sequential
stream and once as a scan with each number of ``--partitions`` (8 and 16), in that
order. The histories:

- ``even``: spread evenly over 30 days; ``since`` = the oldest action, ``end_date``
  right after the newest.
- ``burst``: 80% of the actions in the newest 5% of the 30 days, the rest even.
- ``stale``: even over 30 days that ended three weeks ago; ``since`` = the oldest
  action and no ``end_date`` (the range reaches to now).

With ``--model``, no server and no socket: the client's requests are answered in
the same process after exactly ``--latency`` of a virtual clock that stands still
while the CPU works, so the time measured is the chain of round trips alone (what
the ideal assumes), whatever else the machine is doing.

For each history and partition count it prints (medians over ``--runs``, each ratio
taken within one run): the scan's time over the ideal (the sequential time divided
by the partitions), its speedup over the sequential stream, and the requests it made
over the sequential stream's (every HTTP request counts, probes and retries too)::

    python docs/benchmarks/scan.py           # print the table
    python docs/benchmarks/scan.py --docs    # and write it into docs/performance.md, with
                                             # docs/performance-scan.png and .json
    python docs/benchmarks/scan.py --quick   # a few seconds, for the smoke test
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import os
import random
import selectors
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from voucherify_async import VoucherifyClient
from voucherify_async.testing import FAKE_APP_ID, FAKE_APP_TOKEN, generate_actions

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_fake import ServerProcess  # the folder is no package

HISTORIES = ("even", "burst", "stale")
DOCS = Path(__file__).resolve().parent.parent
TABLE_START = (
    "<!-- scan {}table: start (python docs/benchmarks/scan.py {}--docs rewrites this part) -->"
)
TABLE_END = "<!-- scan {}table: end -->"
_DAYS = 30


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def make_history(name: str, count: int, *, seed: int = 1) -> list[dict[str, Any]]:
    """``count`` generated actions, their creation times spread as the history ``name`` says,
    newest first (about 5% share their millisecond with the one before)."""
    rng = random.Random(seed)  # noqa: S311  # reproducible data, not secrets
    newest = datetime(2026, 1, 1, tzinfo=UTC)
    if name == "stale":
        newest = datetime.now(UTC).replace(microsecond=0) - timedelta(days=21)
    span_ms = _DAYS * 86_400_000
    if name == "burst":
        burst = int(count * 0.8)
        offsets = [rng.randrange(span_ms // 20) for _ in range(burst)]
        offsets += [rng.randrange(span_ms) for _ in range(count - burst)]
    else:
        offsets = [rng.randrange(span_ms) for _ in range(count)]
    offsets.sort()
    offsets[0] = 0
    for index in range(1, len(offsets)):
        if rng.random() < 0.05:
            offsets[index] = offsets[index - 1]  # a tie
    actions = generate_actions(count, seed=seed, newest=newest)
    for action, offset in zip(actions, offsets, strict=True):
        created = newest - timedelta(milliseconds=offset)
        action["created_at"] = _stamp(created)
        if action.get("updated_at"):
            action["updated_at"] = _stamp(created + timedelta(seconds=5))
    return actions


def _range(actions: list[dict[str, Any]], name: str) -> tuple[datetime, datetime | None]:
    oldest = datetime.fromisoformat(actions[-1]["created_at"])
    newest = datetime.fromisoformat(actions[0]["created_at"])
    return oldest, (None if name == "stale" else newest + timedelta(milliseconds=1))


def _counting() -> tuple[aiohttp.TraceConfig, list[int]]:
    sent = [0]

    async def on_request_start(*_: Any) -> None:
        sent[0] += 1

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_request_start)
    return trace, sent


async def walk(
    base_url: str, since: datetime, end: datetime | None, partitions: int | None
) -> tuple[float, int, int]:
    """Seconds, actions and HTTP requests of one walk: a stream (``partitions`` None) or a scan."""
    trace, sent = _counting()
    async with VoucherifyClient(
        FAKE_APP_ID, FAKE_APP_TOKEN, base_url=base_url, trace_configs=[trace]
    ) as client:
        started = time.perf_counter()
        count = 0
        if partitions is None:
            async for _action in client.iter_async_actions(since=since, end_date=end):
                count += 1
        else:
            async with client.scan_async_actions(
                since=since, end_date=end, partitions=partitions
            ) as scan:
                async for _action in scan:
                    count += 1
        return time.perf_counter() - started, count, sent[0]


class _VirtualSelector(selectors.DefaultSelector):
    """Never waits: a wait for the next timer moves the virtual clock there instead."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0

    def select(self, timeout: float | None = None) -> list[Any]:
        if timeout is not None and timeout > 0:
            self.now += timeout
        return super().select(0)


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock only moves when every task waits for a timer."""

    def __init__(self) -> None:
        self._virtual = _VirtualSelector()
        super().__init__(self._virtual)

    def time(self) -> float:
        return self._virtual.now


class ModelAPI:
    """The list endpoint answered in process after ``latency`` (virtual) seconds:
    the newest ``limit`` actions created before ``end_date`` (exclusive), newest first."""

    def __init__(self, actions: list[dict[str, Any]], latency: float) -> None:
        self.latency = latency
        self.keys = [-_ms(a["created_at"]) for a in actions]  # ascending
        self.encoded = [json.dumps(a).encode() for a in actions]
        self.requests = 0

    async def get(self, path: str, params: Any = None) -> Any:
        from voucherify_async._decode import RawResponse

        self.requests += 1
        await asyncio.sleep(self.latency)
        params = params or {}
        limit = int(params.get("limit", 10))
        start = 0
        if "end_date" in params:
            start = bisect.bisect_right(self.keys, -_ms(params["end_date"]))
        chosen = self.encoded[start : start + limit]
        more = b"true" if start + limit < len(self.encoded) else b"false"
        body = b'{"object":"list","data_ref":"async_actions","async_actions":['
        body += b",".join(chosen) + b'],"has_more":' + more + b"}"
        return RawResponse(200, {}, body, "GET", path)


def _ms(text: str) -> int:
    moment = datetime.fromisoformat(text)
    return int(moment.timestamp() * 1000)


async def _modelled(
    api: ModelAPI, since: datetime, end: datetime | None, partitions: int | None
) -> tuple[float, int, int]:
    client = VoucherifyClient(FAKE_APP_ID, FAKE_APP_TOKEN, base_url="http://127.0.0.1:9")
    client._get = api.get  # type: ignore[method-assign]  # the model answers, no socket
    loop = asyncio.get_running_loop()
    before, started, count = api.requests, loop.time(), 0
    if partitions is None:
        async for _action in client.iter_async_actions(since=since, end_date=end):
            count += 1
    else:
        async with client.scan_async_actions(
            since=since, end_date=end, partitions=partitions
        ) as scan:
            async for _action in scan:
                count += 1
    await client.close()
    return loop.time() - started, count, api.requests - before


def _run_model(coroutine: Any) -> Any:
    loop = VirtualClockLoop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.close()


def measure_model(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name in args.histories:
        actions = make_history(name, args.actions)
        since, end = _range(actions, name)
        api = ModelAPI(actions, args.latency)
        run: dict[str, Any] = {}
        for partitions in [None, *args.partitions]:
            cpu = time.process_time()
            seconds, count, sent = _run_model(_modelled(api, since, end, partitions))
            assert count == args.actions, (name, partitions, count)
            run[str(partitions) if partitions else "sequential"] = {
                "seconds": seconds,
                "requests": sent,
                "cpu": time.process_time() - cpu,  # the client's alone: no server here
            }
        results[name] = [run]  # deterministic: one run says it all
    return results


def measure(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with ServerProcess() as server, tempfile.TemporaryDirectory() as folder:
        server.command(f"latency {args.latency}")
        for name in args.histories:
            actions = make_history(name, args.actions)
            path = Path(folder) / f"{name}.json"
            path.write_text(json.dumps(actions), encoding="utf-8")
            server.command(f"load {path}")
            since, end = _range(actions, name)
            del actions
            runs: list[dict[str, Any]] = []
            for _ in range(args.runs):
                run: dict[str, Any] = {}
                for partitions in [None, *args.partitions]:
                    cpu, server_cpu = time.process_time(), server.cpu_time()
                    seconds, count, sent = asyncio.run(
                        walk(server.base_url, since, end, partitions)
                    )
                    assert count == args.actions, (name, partitions, count)
                    run[str(partitions) if partitions else "sequential"] = {
                        "seconds": seconds,
                        "requests": sent,
                        "cpu": time.process_time() - cpu + server.cpu_time() - server_cpu,
                    }
                runs.append(run)
            results[name] = runs
    return results


def summarize(results: dict[str, Any], partitions: list[int]) -> list[dict[str, Any]]:
    rows = []
    for name, runs in results.items():
        for count in partitions:
            key = str(count)
            over_ideal = [r[key]["seconds"] * count / r["sequential"]["seconds"] for r in runs]
            speedup = [r["sequential"]["seconds"] / r[key]["seconds"] for r in runs]
            requests = [r[key]["requests"] / r["sequential"]["requests"] for r in runs]
            rows.append(
                {
                    "history": name,
                    "partitions": count,
                    "sequential_s": statistics.median(r["sequential"]["seconds"] for r in runs),
                    "scan_s": statistics.median(r[key]["seconds"] for r in runs),
                    "over_ideal": statistics.median(over_ideal),
                    "over_ideal_max": max(over_ideal),
                    "speedup": statistics.median(speedup),
                    "requests": statistics.median(requests),
                    "cpu": statistics.median(r[key].get("cpu", 0.0) for r in runs),
                }
            )
    return rows


def table(rows: list[dict[str, Any]], cpu: str = "client + server") -> str:
    lines = [
        "| history | partitions | sequential | scan | scan / ideal (worst run) "
        f"| speedup | requests / sequential | CPU ({cpu}) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['history']} | {row['partitions']} | {row['sequential_s']:.2f} s "
            f"| {row['scan_s']:.3f} s | {row['over_ideal']:.2f} ({row['over_ideal_max']:.2f}) "
            f"| {row['speedup']:.1f}x | {row['requests']:.2f} | {row['cpu']:.2f} s |"
        )
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], path: Path, clock: str) -> None:
    import matplotlib as mpl

    mpl.use("Agg")
    import matplotlib.pyplot as plt

    histories = list(dict.fromkeys(row["history"] for row in rows))
    counts = sorted({row["partitions"] for row in rows})
    figure, axis = plt.subplots(figsize=(7, 3.6))
    width = 0.8 / len(counts)
    for offset, count in enumerate(counts):
        values = [
            next(r["over_ideal"] for r in rows if r["history"] == h and r["partitions"] == count)
            for h in histories
        ]
        positions = [i + (offset - (len(counts) - 1) / 2) * width for i in range(len(histories))]
        bars = axis.bar(positions, values, width, label=f"{count} partitions")
        axis.bar_label(bars, fmt="%.2f", fontsize=8)
    axis.axhline(1.0, color="grey", linewidth=0.8)
    axis.axhline(1.3, color="green", linestyle="--", linewidth=0.8, label="target 1.3")
    axis.axhline(1.6, color="red", linestyle=":", linewidth=0.8, label="limit 1.6")
    axis.set_xticks(range(len(histories)), histories)
    axis.set_ylabel("scan time / ideal")
    axis.set_title(f"scan_async_actions, 20 ms latency, {clock}: time over the ideal")
    axis.legend(fontsize=8, loc="upper right")
    axis.set_ylim(0, max(1.8, max(r["over_ideal"] for r in rows) * 1.15))
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actions", type=int, default=20_000)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--partitions", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--histories", nargs="+", choices=HISTORIES, default=list(HISTORIES))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for the smoke test")
    parser.add_argument(
        "--model", action="store_true", help="latency only, on a virtual clock (no server)"
    )
    parser.add_argument("--json", type=Path, help="write the measurements here")
    parser.add_argument("--plot", type=Path, help="draw the plot here (PNG)")
    parser.add_argument(
        "--docs",
        action="store_true",
        help="write the table into docs/performance.md, the plot and the JSON next to it",
    )
    args = parser.parse_args(argv)
    mode = "model " if args.model else ""
    if args.docs:
        suffix = "-model" if args.model else ""
        args.plot = args.plot or DOCS / f"performance-scan{suffix}.png"
        args.json = args.json or DOCS / f"performance-scan{suffix}.json"
    if args.quick:
        args.actions, args.latency, args.runs = 1_500, 0.002, 1

    results = measure_model(args) if args.model else measure(args)
    rows = summarize(results, args.partitions)
    print(
        f"{args.actions:,} actions, server latency {args.latency * 1000:.0f} ms, "
        f"{args.runs} runs (medians; ideal = sequential / partitions)"
    )
    printed = table(rows, "client" if args.model else "client + server")
    print(printed)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "args": vars(args) | {"json": str(args.json), "plot": str(args.plot)},
                    "runs": results,
                    "rows": rows,
                },
                indent=2,
            )
        )
    if args.plot:
        plot(rows, args.plot, "virtual clock" if args.model else "wall clock")
    if args.docs:
        page = DOCS / "performance.md"
        text = page.read_text(encoding="utf-8")
        start = TABLE_START.format(mode, "--model " if args.model else "")
        end = TABLE_END.format(mode)
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        load = "" if args.model else f"; load average {os.getloadavg()[0]:.1f} at the end"
        runs = "one run (deterministic)" if args.model else f"medians of {args.runs} runs"
        heading = (
            f"{args.actions:,} actions, {args.latency * 1000:.0f} ms latency, {runs}{load} "
            f"(`python docs/benchmarks/scan.py {'--model ' if args.model else ''}--docs`):"
        )
        block = f"{start}\n{heading}\n\n{printed}\n{end}"
        page.write_text(head + block + tail, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
