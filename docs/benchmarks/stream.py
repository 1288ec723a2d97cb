"""Benchmark: stream every async action with this client, a raw aiohttp loop, the vendor's SDK.

Run from the repository root (needs the ``bench`` and ``cli`` extras)::

    python docs/benchmarks/stream.py            # the full run: 1.5 to 3 minutes on 2 cores
    python docs/benchmarks/stream.py --quick    # tiny sizes, seconds: checks the script works
    python docs/benchmarks/stream.py --render docs/performance.json   # redraw, measure nothing

The fake server (:class:`~voucherify_async.testing.FakeVoucherify`) runs in a child
process (``serve_fake.py``), so this process's CPU time and memory are the client
side's alone. One run measures, against it:

1. **stream**: ``--actions`` actions (50,000), page size 100, by

   - ``raw``: a hand-written aiohttp loop that ``json``-decodes each page into dicts
     and moves ``end_date`` back to the page's oldest ``created_at`` (naive: under
     the fake's exclusive ``end_date`` it skips the rest of a tie cut by a page
     boundary, so it yields a few fewer actions); the limit of this stack;
   - ``client``: ``VoucherifyClient.iter_async_actions(page_size=100)``, full models,
     with ``prefetch=N`` when the client takes that keyword, and then also with
     ``prefetch=0``;
   - ``vendor``: the synchronous ``voucherify`` SDK, paging with ``end_date`` like
     ``raw``;

   alternating (the order rotates each round), ``--runs`` rounds after one untimed
   warm-up each: wall time, this process's CPU time per action, the server
   process's CPU time, and, in one more untimed run each, the peak of Python
   allocations (``tracemalloc``; RSS is not used: it moves by whole pages and
   keeps the interpreter's high-water mark);
2. **time to first action**: the client's first action against one raw page
   fetch and ``json`` decode, each from a new session (so a new connection),
   alternating;
3. **prefetch**: 20 ms of server latency and a consumer that awaits 20 ms after
   each 100 actions, with and without prefetch. The consumer's work is an
   ``await`` (I/O-bound work, such as one bulk write per page), because that is
   what prefetch can overlap: a CPU-bound consumer (a busy loop) never gives the
   event loop back, so nothing can run beside it in one thread. It is one
   ``asyncio.sleep`` a page, not one per action, because the event loop's timer
   rounds each sleep up to a whole millisecond;
4. **memory flatness**: the client's ``tracemalloc`` peak streaming 500,000
   actions against streaming 10,000.

It prints the tables, writes ``performance.json`` (every number) and
``performance.png`` (time per 10,000 actions) into ``--out`` (default ``docs/``;
with ``--quick``, a temporary folder), rewrites the tables of the
``performance.md`` it finds there, and always stops the server process. The
objects left by the imports (the vendor's SDK: some 340,000) are frozen out of the
garbage collector first, so that a 0.4 s full collection cannot land in someone
else's run.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import inspect
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import aiohttp
import attrs
from serve_fake import ServerProcess  # this script's neighbour: its directory is on sys.path

from voucherify_async import VoucherifyClient
from voucherify_async.testing import FAKE_APP_ID, FAKE_APP_TOKEN

_EXTRAS = "pip install -e '.[bench,cli]'"
try:
    import matplotlib
    from rich.console import Console
    from rich.table import Table
except ImportError as exc:  # pragma: no cover - depends on the environment
    sys.exit(f"the benchmark needs the bench and cli extras ({exc.name} is missing): {_EXTRAS}")

matplotlib.use("Agg")  # a file, never a window
from matplotlib import pyplot as plt  # noqa: E402  # after choosing the backend

__all__ = ["Plan", "Sample", "main", "ratios", "run_benchmark"]

PAGE_SIZE = 100
LIST_PATH = "/v1/async-actions"
HEADERS = {"X-App-Id": FAKE_APP_ID, "X-App-Token": FAKE_APP_TOKEN, "Accept": "application/json"}
DEFAULT_OUT = Path(__file__).resolve().parent.parent
QUICK_OUT = Path(tempfile.gettempdir()) / "voucherify-async-benchmark"
PREFETCH_SUPPORTED = "prefetch" in inspect.signature(VoucherifyClient.iter_async_actions).parameters
"""Whether this version of the client takes ``iter_async_actions(prefetch=N)``."""


@attrs.frozen
class Target:
    """A target ratio: met when at most ``at_most`` and at least ``at_least``; ``goal``, when
    set, is a stricter upper bound still to reach beyond ``at_most``."""

    text: str
    at_most: float | None = None
    at_least: float | None = None
    goal: float | None = None

    def met(self, value: float) -> bool:
        """Whether ``value`` meets this target (not necessarily its goal)."""
        return (self.at_most is None or value <= self.at_most) and (
            self.at_least is None or value >= self.at_least
        )

    def status(self, value: float) -> str:
        """``met``, ``not met``, or, between the target and the goal, which one is met."""
        if not self.met(value):
            return "not met"
        if self.goal is not None and value > self.goal:
            return f"<= {self.at_most} met, goal {self.goal} not yet"
        return "met"


TARGETS = {
    "client/raw wall time": Target("<= 1.0 goal, <= 1.2 to resolve", at_most=1.2, goal=1.0),
    "vendor/client wall time": Target(">= 1.7", at_least=1.7),
    "memory 500k/10k (client)": Target("<= 1.10", at_most=1.10),
    "time to first action client/raw": Target("<= 1.05", at_most=1.05),
    "prefetch on/off wall time": Target("<= 0.6", at_most=0.6),
}


# -- the plan -----------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Plan:
    """What one run measures; :meth:`full` and :meth:`quick` are the two presets."""

    actions: int
    """Actions served for the stream comparison and the time to first action."""
    runs: int
    """Timed rounds of the stream comparison and of the prefetch comparison."""
    prefetch: int
    """The ``prefetch`` the client streams with, when it takes the keyword."""
    warmup_actions: int
    """Actions each contender streams once, untimed, before the rounds."""
    ttfa_trials: int
    """Time-to-first-action measurements of each side."""
    prefetch_pages: int
    """Pages the consumer reads in the prefetch comparison."""
    latency: float
    """Server latency (seconds) in the prefetch comparison."""
    page_work: float
    """Seconds the consumer awaits after each page in the prefetch comparison."""
    small: int
    """The short stream of the memory flatness check."""
    large: int
    """The long stream of the memory flatness check."""

    @classmethod
    def full(cls, *, actions: int = 50_000, runs: int = 7, prefetch: int = 1) -> Plan:
        """The published run: 50,000 actions, 7 rounds, 10,000 against 500,000 for memory."""
        return cls(
            actions=actions,
            runs=runs,
            prefetch=prefetch,
            warmup_actions=min(actions, 2_000),
            ttfa_trials=151,
            prefetch_pages=40,
            latency=0.02,
            page_work=0.02,
            small=10_000,
            large=500_000,
        )

    @classmethod
    def quick(cls, *, actions: int = 500, runs: int = 2, prefetch: int = 1) -> Plan:
        """Tiny sizes, for the smoke test: the numbers mean nothing."""
        return cls(
            actions=actions,
            runs=runs,
            prefetch=prefetch,
            warmup_actions=min(actions, 100),
            ttfa_trials=2,
            prefetch_pages=3,
            latency=0.002,
            page_work=0.002,
            small=200,
            large=1_000,
        )


# -- the contenders -----------------------------------------------------------------


@attrs.frozen
class Sample:
    """One timed run: ``wall`` and ``cpu`` (this process) seconds, ``actions`` yielded,
    and the server process's CPU seconds meanwhile (``None``: not measured)."""

    wall: float
    cpu: float
    actions: int
    server_cpu: float | None = None


async def _timed(work: Awaitable[int]) -> Sample:
    wall, cpu = time.perf_counter(), time.process_time()
    count = await work
    return Sample(time.perf_counter() - wall, time.process_time() - cpu, count)


def _timed_sync(work: Callable[[], int]) -> Sample:
    wall, cpu = time.perf_counter(), time.process_time()
    count = work()
    return Sample(time.perf_counter() - wall, time.process_time() - cpu, count)


async def _stream_raw(base_url: str, limit: int | None) -> int:
    """The hand-written loop: pages of dicts, ``end_date`` = the oldest ``created_at``."""
    count = 0
    params = {"limit": str(PAGE_SIZE)}
    async with aiohttp.ClientSession(headers=HEADERS) as session:
        while True:
            async with session.get(base_url + LIST_PATH, params=params) as response:
                response.raise_for_status()
                body = json.loads(await response.read())
            items = body["async_actions"]
            for _item in items:
                count += 1
                if count == limit:
                    return count
            if not items or not body.get("has_more"):
                return count
            params = {"limit": str(PAGE_SIZE), "end_date": items[-1]["created_at"]}


def _client_options(prefetch: int | None) -> dict[str, Any]:
    return {} if prefetch is None or not PREFETCH_SUPPORTED else {"prefetch": prefetch}


async def _stream_client(
    base_url: str,
    limit: int | None,
    prefetch: int | None,
    page_work: float = 0.0,
) -> int:
    """This client's stream; with ``page_work``, await that long after each 100 actions."""
    count = 0
    async with VoucherifyClient(FAKE_APP_ID, FAKE_APP_TOKEN, base_url=base_url) as client:
        stream = client.iter_async_actions(page_size=PAGE_SIZE, **_client_options(prefetch))
        async with stream:
            async for _action in stream:
                count += 1
                if page_work and count % PAGE_SIZE == 0:
                    await asyncio.sleep(page_work)
                if count == limit:
                    break
    return count


def import_vendor_sdk() -> None:
    """Import the vendor's SDK: seconds, and 340,000 objects (not at the top, so that
    ``--render`` does not wait for it).

    Raises:
        SystemExit: it is not installed.
    """
    try:
        import voucherify.api.async_actions_api  # noqa: F401  # loaded for _stream_vendor
    except ImportError as exc:  # pragma: no cover - depends on the environment
        sys.exit(f"the benchmark needs the vendor's SDK ({exc.name} is missing): {_EXTRAS}")


def _stream_vendor(base_url: str, limit: int | None) -> int:
    """The vendor's SDK, paging with ``end_date`` = the oldest ``created_at`` (naive)."""
    from voucherify.api.async_actions_api import AsyncActionsApi
    from voucherify.api_client import ApiClient
    from voucherify.configuration import Configuration

    configuration = Configuration(
        host=base_url, api_key={"X-App-Id": FAKE_APP_ID, "X-App-Token": FAKE_APP_TOKEN}
    )
    api_client = ApiClient(configuration)
    try:
        api = AsyncActionsApi(api_client)
        count = 0
        end_date: datetime | None = None
        while True:
            page = api.list_async_actions(limit=PAGE_SIZE, end_date=end_date)
            items = page.async_actions or []
            for _item in items:
                count += 1
                if count == limit:
                    return count
            if not items or not page.has_more:
                return count
            end_date = items[-1].created_at
    finally:
        api_client.rest_client.pool_manager.clear()  # ApiClient.__exit__ closes nothing


@attrs.frozen
class Contender:
    """One way to stream the actions: ``run(base_url, limit)`` times one stream."""

    name: str
    label: str
    run: Callable[[str, int | None], Sample]


def _run_raw(base_url: str, limit: int | None) -> Sample:
    return asyncio.run(_timed(_stream_raw(base_url, limit)))


def _run_client(prefetch: int | None, base_url: str, limit: int | None) -> Sample:
    return asyncio.run(_timed(_stream_client(base_url, limit, prefetch)))


def _run_vendor(base_url: str, limit: int | None) -> Sample:
    return _timed_sync(functools.partial(_stream_vendor, base_url, limit))


def contenders(prefetch: int) -> list[Contender]:
    """raw, client (and the client with ``prefetch=0`` when that differs), vendor."""
    found = [Contender("raw", "raw aiohttp+json", _run_raw)]
    if PREFETCH_SUPPORTED:
        run = functools.partial(_run_client, prefetch)
        found.append(Contender("client", f"client, prefetch={prefetch}", run))
        if prefetch != 0:
            run = functools.partial(_run_client, 0)
            found.append(Contender("client_no_prefetch", "client, prefetch=0", run))
    else:
        run = functools.partial(_run_client, None)
        found.append(Contender("client", "client", run))
    found.append(Contender("vendor", "vendor SDK", _run_vendor))
    return found


def traced_peak(run: Callable[[], object]) -> int:
    """The peak, in bytes, of Python allocations made while ``run()`` runs (tracemalloc)."""
    gc.collect()
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# -- the measurements ---------------------------------------------------------------


def _rotations(items: Sequence[Contender], rounds: int) -> Iterator[list[Contender]]:
    for index in range(rounds):
        shift = index % len(items)
        yield [*items[shift:], *items[:shift]]


def measure_streams(
    server: ServerProcess, plan: Plan, say: Callable[[str], None]
) -> dict[str, Any]:
    """Stream ``plan.actions`` with every contender, alternating; then one traced run each.

    Raises:
        RuntimeError: the client did not yield every action exactly once.
    """
    server.command("latency 0")
    server.command(f"actions {plan.actions}")
    field = contenders(plan.prefetch)
    for contender in field:
        say(f"warm-up: {contender.name}")
        contender.run(server.base_url, plan.warmup_actions)
    samples: dict[str, list[Sample]] = {contender.name: [] for contender in field}
    for number, order in enumerate(_rotations(field, plan.runs), start=1):
        for contender in order:
            say(f"round {number}/{plan.runs}: {contender.name}")
            gc.collect()
            server_cpu = server.cpu_time()
            sample = contender.run(server.base_url, None)
            sample = attrs.evolve(sample, server_cpu=server.cpu_time() - server_cpu)
            samples[contender.name].append(sample)
    results: dict[str, Any] = {}
    for contender in field:
        say(f"peak memory: {contender.name}")
        peak = traced_peak(functools.partial(contender.run, server.base_url, None))
        results[contender.name] = {
            "label": contender.label,
            "runs": [attrs.asdict(sample) for sample in samples[contender.name]],
            "tracemalloc_peak_bytes": peak,
        }
    for name in ("client", "client_no_prefetch"):
        counts = {run["actions"] for run in results.get(name, {"runs": []})["runs"]}
        if counts - {plan.actions}:
            raise RuntimeError(f"{name} yielded {sorted(counts)} actions, not {plan.actions}")
    return results


async def _first_raw(base_url: str) -> float:
    start = time.perf_counter()
    async with aiohttp.ClientSession(headers=HEADERS) as session:
        async with session.get(base_url + LIST_PATH, params={"limit": str(PAGE_SIZE)}) as response:
            response.raise_for_status()
            body = json.loads(await response.read())
        elapsed = time.perf_counter() - start
    if not body["async_actions"]:
        raise RuntimeError("the fake server served no action")
    return elapsed


async def _first_client(base_url: str, prefetch: int | None) -> float:
    start = time.perf_counter()
    async with VoucherifyClient(FAKE_APP_ID, FAKE_APP_TOKEN, base_url=base_url) as client:
        stream = client.iter_async_actions(page_size=PAGE_SIZE, **_client_options(prefetch))
        async with stream:
            await anext(stream)
            elapsed = time.perf_counter() - start
    return elapsed


async def _first_actions(base_url: str, plan: Plan) -> dict[str, list[float]]:
    sides: dict[str, Callable[[], Awaitable[float]]] = {
        "raw": functools.partial(_first_raw, base_url),
        "client": functools.partial(_first_client, base_url, plan.prefetch),
    }
    if PREFETCH_SUPPORTED and plan.prefetch != 0:
        sides["client_no_prefetch"] = functools.partial(_first_client, base_url, 0)
    for side in sides.values():  # warm-up, untimed
        await side()
    times: dict[str, list[float]] = {name: [] for name in sides}
    names = list(sides)
    for trial in range(plan.ttfa_trials):
        shift = trial % len(names)
        for name in [*names[shift:], *names[:shift]]:
            gc.collect()
            times[name].append(await sides[name]())
    return times


def measure_first_action(server: ServerProcess, plan: Plan) -> dict[str, list[float]]:
    """Seconds to the client's first action and to one raw page, each from a new session."""
    server.command("latency 0")
    server.command(f"actions {plan.actions}")
    return asyncio.run(_first_actions(server.base_url, plan))


def measure_prefetch(
    server: ServerProcess, plan: Plan, say: Callable[[str], None]
) -> dict[str, Any]:
    """Wall time of a slow consumer over a slow server, with and without prefetch."""
    server.command(f"actions {plan.actions}")
    server.command(f"latency {plan.latency}")
    limit = plan.prefetch_pages * PAGE_SIZE
    settings = {"on": plan.prefetch, "off": 0}
    walls: dict[str, list[float]] = {"on": [], "off": []}
    try:
        for number in range(plan.runs):
            for name in ("on", "off") if number % 2 == 0 else ("off", "on"):
                say(f"prefetch round {number + 1}/{plan.runs}: {name}")
                work = _stream_client(server.base_url, limit, settings[name], plan.page_work)
                walls[name].append(asyncio.run(_timed(work)).wall)
    finally:
        server.command("latency 0")
    return {
        "supported": PREFETCH_SUPPORTED,
        "prefetch": plan.prefetch,
        "server_latency_s": plan.latency,
        "consumer_await_per_page_s": plan.page_work,
        "pages": plan.prefetch_pages,
        "wall_s": walls,
    }


def measure_flatness(
    server: ServerProcess, plan: Plan, say: Callable[[str], None]
) -> dict[str, Any]:
    """The client's tracemalloc peak over a short and a long stream."""
    server.command("latency 0")
    peaks: dict[str, int] = {}
    for size in (plan.small, plan.large):
        say(f"memory flatness: generating and streaming {size:,} actions")
        server.command(f"actions {size}")
        run = functools.partial(_run_client, plan.prefetch, server.base_url, None)
        peaks[str(size)] = traced_peak(run)
    return {"small": plan.small, "large": plan.large, "tracemalloc_peak_bytes": peaks}


# -- the report ---------------------------------------------------------------------


def _median(values: Sequence[float]) -> float:
    return statistics.median(values)


def _walls(result: Mapping[str, Any]) -> list[float]:
    return [run["wall"] for run in result["runs"]]


def _per_10k(result: Mapping[str, Any], key: str = "wall") -> list[float]:
    """Milliseconds of ``key`` (``wall``, ``cpu``) per 10,000 actions, one value per run."""
    return [run[key] / run["actions"] * 10_000 * 1_000 for run in result["runs"]]


def _per_action(result: Mapping[str, Any], key: str) -> list[float]:
    """Microseconds of ``key`` (``cpu``, ``server_cpu``) per action, one value per run."""
    return [run[key] / run["actions"] * 1e6 for run in result["runs"]]


def ratios(report: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Each ratio from this one run's medians, and from its minimums (the least disturbed runs)."""
    streams = report["streams"]
    pairs: dict[str, tuple[Sequence[float], Sequence[float]]] = {
        "client/raw wall time": (_walls(streams["client"]), _walls(streams["raw"])),
        "vendor/client wall time": (_walls(streams["vendor"]), _walls(streams["client"])),
    }
    if "client_no_prefetch" in streams:
        pairs["client prefetch=0/raw wall time"] = (
            _walls(streams["client_no_prefetch"]),
            _walls(streams["raw"]),
        )
    pairs["client/raw CPU per action"] = (
        _per_action(streams["client"], "cpu"),
        _per_action(streams["raw"], "cpu"),
    )
    flat = report["flatness"]
    peaks = flat["tracemalloc_peak_bytes"]
    pairs["memory 500k/10k (client)"] = ([peaks[str(flat["large"])]], [peaks[str(flat["small"])]])
    ttfa = report["first_action"]
    pairs["time to first action client/raw"] = (ttfa["client"], ttfa["raw"])
    if "client_no_prefetch" in ttfa:
        pairs["time to first action client prefetch=0/raw"] = (
            ttfa["client_no_prefetch"],
            ttfa["raw"],
        )
    walls = report["prefetch"]["wall_s"]
    pairs["prefetch on/off wall time"] = (walls["on"], walls["off"])
    found: dict[str, dict[str, Any]] = {}
    for name, (top, bottom) in pairs.items():
        value = _median(top) / _median(bottom)
        target = TARGETS.get(name)
        found[name] = {
            "median": value,
            "min": min(top) / min(bottom),
            "target": target.text if target else None,
            "met": target.met(value) if target else None,
            "status": target.status(value) if target else "",
        }
    return found


def _span(values: Sequence[float], fmt: str) -> str:
    return f"{_median(values):{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"


def print_report(report: Mapping[str, Any], console: Console) -> None:
    """The stream table, the other measurements, and the target ratios."""
    plan = report["plan"]
    table = Table(
        title=f"Streaming {plan['actions']:,} actions, page size {PAGE_SIZE}, "
        f"{plan['runs']} alternating runs each: median (min-max)"
    )
    table.add_column("contender")
    for column in (
        "wall s",
        "ms / 10k actions",
        "CPU µs / action",
        "server CPU µs / action",
        "tracemalloc peak",
        "actions",
    ):
        table.add_column(column, justify="right")
    for result in report["streams"].values():
        table.add_row(
            result["label"],
            _span(_walls(result), ".3f"),
            _span(_per_10k(result), ".0f"),
            _span(_per_action(result, "cpu"), ".1f"),
            _span(_per_action(result, "server_cpu"), ".1f"),
            f"{result['tracemalloc_peak_bytes'] / 1024:,.0f} KiB",
            f"{result['runs'][0]['actions']:,}",
        )
    console.print(table)

    other = Table(title="Time to first action, prefetch, memory flatness: median (min-max)")
    other.add_column("measurement")
    other.add_column("value", justify="right")
    for name, values in report["first_action"].items():
        scaled = [value * 1e3 for value in values]
        other.add_row(f"first action, {name} (new session)", _span(scaled, ".2f") + " ms")
    prefetch = report["prefetch"]
    for name in ("off", "on"):
        setting = (0 if name == "off" else prefetch["prefetch"]) if prefetch["supported"] else "-"
        other.add_row(
            f"{prefetch['pages']} pages, server latency "
            f"{prefetch['server_latency_s'] * 1e3:.0f} ms, consumer awaits "
            f"{prefetch['consumer_await_per_page_s'] * 1e3:.0f} ms a page, prefetch={setting}",
            _span(prefetch["wall_s"][name], ".3f") + " s",
        )
    flat = report["flatness"]
    for size, peak in flat["tracemalloc_peak_bytes"].items():
        other.add_row(f"client tracemalloc peak, {int(size):,} actions", f"{peak / 1024:,.0f} KiB")
    console.print(other)

    targets = Table(title="Ratios, each from this run: of medians, and of minimums")
    targets.add_column("ratio")
    for column in ("medians", "minimums", "target", ""):
        targets.add_column(column, justify="right")
    for name, ratio in report["ratios"].items():
        colour = {True: "green", False: "red", None: "default"}[ratio["met"]]
        met = f"[{colour}]{ratio['status']}[/]" if ratio["status"] else ""
        targets.add_row(
            name, f"{ratio['median']:.2f}", f"{ratio['min']:.2f}", ratio["target"] or "", met
        )
    console.print(targets)
    if not prefetch["supported"]:
        console.print("This client has no prefetch keyword: both prefetch runs stream alike.")


def plot(report: Mapping[str, Any], path: Path) -> None:
    """Bars of milliseconds per 10,000 actions: wall time (median, min-max whiskers), and
    the client process's CPU time beside it."""
    results = list(report["streams"].values())
    walls = [_per_10k(result) for result in results]
    cpus = [_median(_per_10k(result, "cpu")) for result in results]
    medians = [_median(values) for values in walls]
    whiskers = [
        [median - min(values) for median, values in zip(medians, walls, strict=True)],
        [max(values) - median for median, values in zip(medians, walls, strict=True)],
    ]
    positions = list(range(len(results)))
    figure, axes = plt.subplots(figsize=(8, 4.4))
    try:
        bars = axes.bar(
            [x - 0.18 for x in positions],
            medians,
            width=0.36,
            yerr=whiskers,
            capsize=5,
            color="#1f77b4",
            label="wall time (median; whiskers: min-max)",
        )
        axes.bar_label(bars, labels=[f"{m:.0f}" for m in medians], label_type="center", color="w")
        cpu_bars = axes.bar(
            [x + 0.18 for x in positions],
            cpus,
            width=0.36,
            color="#ff7f0e",
            label="client process CPU time (median)",
        )
        axes.bar_label(cpu_bars, labels=[f"{c:.0f}" for c in cpus], label_type="center")
        axes.set_xticks(positions, [result["label"] for result in results])
        axes.set_ylabel("ms per 10,000 actions (lower is better)")
        meta, plan = report["meta"], report["plan"]
        axes.set_title(
            f"Streaming {plan['actions']:,} async actions, page size {PAGE_SIZE}, "
            f"{plan['runs']} alternating runs\n{meta['cpus']} CPUs ({meta['processor']}), "
            f"Python {meta['python']}, {meta['date'][:10]}",
            fontsize=9,
        )
        axes.legend(fontsize=8, loc="upper left")
        axes.margins(y=0.2)
        figure.tight_layout()
        figure.savefig(path, dpi=110)
    finally:
        plt.close(figure)


TABLES_START = "<!-- tables: start (python docs/benchmarks/stream.py rewrites this part) -->"
TABLES_END = "<!-- tables: end -->"


def render_markdown(report: Mapping[str, Any]) -> str:
    """The report's tables in Markdown, with a line that says where and when they were measured."""
    meta, plan = report["meta"], report["plan"]
    load = meta["load_average"]
    busy = (
        f"; load average {load['before']:.1f} before the run, {load['after']:.1f} after"
        if load["before"] is not None and load["after"] is not None
        else ""
    )
    lines = [
        f"Measured {meta['date'][:10]}, voucherify-async {meta['revision']}, on "
        f"{meta['cpus']} CPUs ({meta['processor']}){busy}; Python {meta['python']}, "
        f"aiohttp {meta['versions']['aiohttp']}, cattrs {meta['versions']['cattrs']}, "
        f"voucherify {meta['versions']['voucherify']}. Each cell: median (min-max) of "
        f"{plan['runs']} alternating runs.",
        "",
        f"**Streaming {plan['actions']:,} actions**, page size {PAGE_SIZE}:",
        "",
        "| | wall s | ms / 10k actions | client CPU µs / action "
        "| server CPU µs / action | peak memory | actions |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for result in report["streams"].values():
        lines.append(
            f"| {result['label']} | {_span(_walls(result), '.3f')} "
            f"| {_span(_per_10k(result), '.0f')} | {_span(_per_action(result, 'cpu'), '.1f')} "
            f"| {_span(_per_action(result, 'server_cpu'), '.1f')} "
            f"| {result['tracemalloc_peak_bytes'] / 1024:,.0f} KiB "
            f"| {result['runs'][0]['actions']:,} |"
        )
    lines += ["", "**Ratios**, each from this one run:", ""]
    lines += ["| ratio | of medians | of minimums | target | |", "|---|---:|---:|---|---|"]
    for name, ratio in report["ratios"].items():
        met = f"**{ratio['status']}**" if ratio["met"] is False else ratio["status"]
        lines.append(
            f"| {name} | {ratio['median']:.2f} | {ratio['min']:.2f} "
            f"| {ratio['target'] or 'for information'} | {met} |"
        )
    lines += ["", "**The other measurements:**", "", "| measurement | median (min-max) |"]
    lines.append("|---|---:|")
    for name, values in report["first_action"].items():
        lines.append(
            f"| first action, {name.replace('_', ' ')} (new session) "
            f"| {_span([v * 1e3 for v in values], '.2f')} ms |"
        )
    prefetch = report["prefetch"]
    for name in ("off", "on"):
        setting = (0 if name == "off" else prefetch["prefetch"]) if prefetch["supported"] else "-"
        lines.append(
            f"| {prefetch['pages']} pages, server latency {prefetch['server_latency_s'] * 1e3:.0f}"
            f" ms, consumer awaits {prefetch['consumer_await_per_page_s'] * 1e3:.0f} ms a page,"
            f" prefetch={setting} | {_span(prefetch['wall_s'][name], '.3f')} s |"
        )
    for size, peak in report["flatness"]["tracemalloc_peak_bytes"].items():
        lines.append(f"| client peak memory, {int(size):,} actions | {peak / 1024:,.0f} KiB |")
    return "\n".join(lines) + "\n"


def update_document(path: Path, report: Mapping[str, Any]) -> bool:
    """Replace the tables between the markers of ``path`` with this report's.

    Returns ``False`` (and changes nothing) when ``path`` does not exist or lacks
    the markers.
    """
    if not path.exists():
        return False
    text = path.read_text(encoding="utf-8")
    start, end = text.find(TABLES_START), text.find(TABLES_END)
    if start < 0 or end < start:
        return False
    head, tail = text[: start + len(TABLES_START)], text[end:]
    path.write_text(f"{head}\n{render_markdown(report)}{tail}", encoding="utf-8")
    return True


def _versions() -> dict[str, str]:
    found = {}
    for name in ("voucherify-async", "aiohttp", "attrs", "cattrs", "voucherify", "pydantic"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def _git(*arguments: str) -> str:
    """The output of ``git ARGUMENTS`` in this repository.

    Raises:
        OSError: no git; subprocess.CalledProcessError: not a git checkout.
    """
    root = Path(__file__).resolve().parent.parent.parent
    command = ["git", *arguments]  # git from PATH, as a developer runs it
    return subprocess.run(  # noqa: S603  # fixed arguments, no shell
        command, cwd=root, capture_output=True, text=True, check=True
    ).stdout.strip()


def _revision() -> str:
    """The commit measured, ``+ uncommitted changes`` when the package differs from it."""
    try:
        commit = _git("rev-parse", "--short", "HEAD")
        changes = _git("status", "--porcelain", "--", "voucherify_async")
    except (OSError, subprocess.CalledProcessError):
        return "(not a git checkout)"
    return f"{commit} + uncommitted changes" if changes else commit


def _load_average() -> float | None:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def _processor() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run_benchmark(plan: Plan, *, say: Callable[[str], None]) -> dict[str, Any]:
    """Measure everything against one server process; return the report as plain data.

    Raises:
        RuntimeError: the server process failed, or the client lost actions.
    """
    started, load_before = time.perf_counter(), _load_average()
    # The vendor's SDK leaves some 340,000 objects from its import: a full garbage
    # collection then takes 0.4 s, and would land in whichever run triggers it.
    # Frozen, they are never scanned again; each run's own garbage still is.
    import_vendor_sdk()
    gc.collect()
    gc.freeze()
    try:
        with ServerProcess() as server:
            streams = measure_streams(server, plan, say)
            say("time to first action")
            first_action = measure_first_action(server, plan)
            prefetch = measure_prefetch(server, plan, say)
            flatness = measure_flatness(server, plan, say)
    finally:
        gc.unfreeze()
    report: dict[str, Any] = {
        "meta": {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "processor": _processor(),
            "cpus": os.cpu_count(),
            "load_average": {"before": load_before, "after": _load_average()},
            "revision": _revision(),
            "versions": _versions(),
            "prefetch_supported": PREFETCH_SUPPORTED,
            "cpu": "process CPU time (time.process_time) of the client process; "
            "server_cpu: of the server process",
            "memory": "tracemalloc peak of the Python allocations made during the run",
        },
        "plan": attrs.asdict(plan),
        "streams": streams,
        "first_action": first_action,
        "prefetch": prefetch,
        "flatness": flatness,
    }
    report["ratios"] = ratios(report)
    report["meta"]["duration_s"] = round(time.perf_counter() - started, 1)
    return report


@contextmanager
def _progress(console: Console) -> Iterator[Callable[[str], None]]:
    with console.status("starting the server process") as status:
        yield status.update


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the options, run, print; write ``performance.json`` and ``performance.png``, and
    update the tables of ``performance.md`` when ``--out`` holds one (``docs/`` does)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--actions", type=int, help="actions to stream (default 50,000)")
    parser.add_argument("--runs", type=int, help="alternating timed rounds (default 7)")
    parser.add_argument(
        "--prefetch", type=int, default=1, help="the client's prefetch, if it takes one (1)"
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the script")
    parser.add_argument(
        "--render",
        type=Path,
        metavar="JSON",
        help="measure nothing: redo the ratios, plot and tables from a performance.json",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="where to write performance.json and .png, and to update performance.md's tables "
        f"(default: docs/; with --quick: {QUICK_OUT})",
    )
    args = parser.parse_args(argv)
    sizes = {n: getattr(args, n) for n in ("actions", "runs") if getattr(args, n) is not None}
    if any(value < 1 for value in sizes.values()) or args.prefetch < 0:
        parser.error("--actions and --runs must be >= 1, --prefetch >= 0")
    console = Console()
    if not console.is_terminal:  # a file or a pipe: wide enough for the tables
        console = Console(width=132)
    if args.render:
        report = json.loads(args.render.read_text(encoding="utf-8"))
        report["ratios"] = ratios(report)
    else:
        plan = (Plan.quick if args.quick else Plan.full)(prefetch=args.prefetch, **sizes)
        if not PREFETCH_SUPPORTED:
            console.print("note: iter_async_actions() takes no prefetch keyword; measuring without")
        with _progress(console) as say:
            report = run_benchmark(plan, say=say)
    print_report(report, console)
    out: Path = args.out or (QUICK_OUT if args.quick else DEFAULT_OUT)
    out.mkdir(parents=True, exist_ok=True)
    data, image, document = (
        out / "performance.json",
        out / "performance.png",
        out / "performance.md",
    )
    data.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    plot(report, image)
    written = [data, image, *([document] if update_document(document, report) else [])]
    took = report["meta"]["duration_s"]
    console.print(f"wrote {', '.join(map(str, written))} (the measurements took {took} s)")


if __name__ == "__main__":
    main()
