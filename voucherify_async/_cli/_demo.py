"""``voucherify-async demo``: the client's main job, end to end, on an embedded fake.

It serves a few thousand generated actions from :class:`FakeVoucherify` in this
process (every type and status, failures with results, actions sharing one
millisecond, tie order shuffled on every request, and by default a few 503s and
dropped connections), streams all of them with the real :class:`VoucherifyClient`
over loopback HTTP behind a rich progress bar, checks that each came exactly
once, fetches the most recent failure with ``get_async_action``, and ends by
pointing to the quickstart. No credentials, no network.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter
from typing import TYPE_CHECKING

import attrs

from voucherify_async._client import VoucherifyClient
from voucherify_async._config import RetryPolicy
from voucherify_async._models import (
    AsyncAction,
    AsyncActionDetails,
    AsyncActionStatus,
    AsyncActionType,
)
from voucherify_async.testing import FakeVoucherify, generate_actions

from . import _values
from ._errors import EXIT_FAILURE, PROG
from ._faults import describe_faults, fault_name, inject_faults
from ._output import count, details_renderables, iso_utc, require_rich, status_style

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from voucherify_async._stream import AsyncActionStream

__all__ = ["NEXT_STEP", "add_demo_parser"]

NEXT_STEP = "next: the quickstart (docs/quickstart.md) makes these calls from your own code"
"""The demo's last line."""

_EPILOG = f"""\
example:
  {PROG} demo
  {PROG} demo --actions 20000 --faults 503:0.1,429:0.02 --inclusive

The fake serves generated actions (every type and status, failures with results,
ties at one millisecond shuffled on every request) and, by default, answers some
requests with 503 or drops the connection: the client sends those requests again.
The demo checks that every action came exactly once (exit code 1 if not).
"""

# A share of instants shared by several actions, and the largest such group: plenty
# of page boundaries fall inside a tie.
_TIE_RATE = 0.2
_MAX_TIE = 8
# Retries of the injected faults need not wait long against a loopback server.
_DEMO_RETRY = RetryPolicy(max_retries=5, backoff_initial=0.01, backoff_max=0.1)
# Columns of the counts table: finished first, then still running.
_STATUSES = [
    AsyncActionStatus.DONE.value,
    AsyncActionStatus.FAILED.value,
    AsyncActionStatus.IN_PROGRESS.value,
    AsyncActionStatus.ENQUEUED.value,
]
_TYPES = [action_type.value for action_type in AsyncActionType]


def add_demo_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``demo`` command to ``commands``."""
    parser = commands.add_parser(
        "demo",
        help="stream thousands of actions from an embedded fake API, with a summary",
        description="Serve generated actions from the fake API in this process, stream "
        "them all with the real client, and summarise. No credentials, no network.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add(
        "--actions",
        type=_values.int_between(1, 1_000_000),
        default=5_000,
        metavar="N",
        help="how many actions the fake serves (default: 5000)",
    )
    add("--seed", type=int, default=0, help="the seed of the data and faults")
    add(
        "--page-size",
        type=_values.int_between(1, 100),
        default=100,
        metavar="N",
        help="actions a page, 1 to 100 (default: 100)",
    )
    add(
        "--faults",
        type=_values.faults,
        default="503:0.05,drop:0.02",  # a string: argparse passes it through type=
        metavar="SPEC",
        help="faults the fake injects, as for fake-server (default: 503:0.05,drop:0.02; "
        "'none' for none)",
    )
    add("--inclusive", action="store_true", help="the fake reads end_date as inclusive")
    parser.set_defaults(run=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    require_rich()
    from ._console import output_console  # rich: the optional extra

    console = output_console(sys.stdout)
    report = asyncio.run(run_demo(args, console))
    render_report(report, console)
    return 0 if report.exactly_once else EXIT_FAILURE


@attrs.define
class DemoReport:
    """What the demo measured: the counts and timings its summary shows."""

    served: int
    seconds: float
    pages: int
    list_requests: int
    faults: Counter[str]
    inclusive: bool
    fault_specs: str
    by_type_and_status: Counter[tuple[str, str]] = attrs.Factory(Counter)
    yielded: int = 0
    distinct: int = 0
    missing: int = 0
    tied_actions: int = 0
    tie_groups: int = 0
    largest_tie: int = 0
    most_recent_failure: AsyncActionDetails | None = None

    @property
    def exactly_once(self) -> bool:
        """Every action served was yielded, and none twice."""
        return self.yielded == self.distinct == self.served and self.missing == 0

    @property
    def actions_per_second(self) -> float:
        """Actions streamed per second of wall time (0 when nothing was timed)."""
        return self.yielded / self.seconds if self.seconds > 0 else 0.0


@attrs.define
class _Tally:
    """What the demo counts of the actions as they stream by."""

    by_type_and_status: Counter[tuple[str, str]] = attrs.Factory(Counter)
    distinct: set[str] = attrs.Factory(set)
    per_instant: Counter[object] = attrs.Factory(Counter)
    most_recent_failure: AsyncAction | None = None

    def add(self, action: AsyncAction) -> None:
        """Count one action (the stream yields the newest first)."""
        self.by_type_and_status[str(action.type), str(action.status)] += 1
        self.distinct.add(action.id)
        self.per_instant[action.created_at] += 1
        if self.most_recent_failure is None and action.status == "FAILED":
            self.most_recent_failure = action


def _demo_fake(args: argparse.Namespace) -> FakeVoucherify:
    """The fake the ``demo`` arguments describe: generated actions, ties, faults."""
    actions = generate_actions(args.actions, seed=args.seed, tie_rate=_TIE_RATE, max_tie=_MAX_TIE)
    fake = FakeVoucherify(
        actions=actions,
        app_id=None,
        app_token=None,
        end_date_inclusive=args.inclusive,
        shuffle_ties=True,
        seed=args.seed,
    )
    inject_faults(fake, args.faults, args.seed)
    return fake


def _progress_bar(console: Console) -> Progress:
    from rich.progress import (  # rich: the optional extra
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(
        SpinnerColumn(),
        TextColumn("streaming"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>8,.0f} actions/s"),
        TextColumn("{task.fields[pages]:>4} pages"),
        TimeElapsedColumn(),
        console=console,
    )


async def _stream_all(
    stream: AsyncActionStream, tally: _Tally, progress: Progress, total: int
) -> float:
    """Stream every action into ``tally``, showing ``progress`` out of ``total``.

    Returns the seconds it took.
    """
    started = time.perf_counter()
    with progress:
        task = progress.add_task("streaming", total=total, rate=0.0, pages=0)
        async for page in stream.pages():
            for action in page:
                tally.add(action)
            elapsed = time.perf_counter() - started
            progress.update(
                task,
                completed=stream.actions_yielded,
                rate=stream.actions_yielded / elapsed if elapsed > 0 else 0.0,
                pages=stream.requests_made,
            )
    return time.perf_counter() - started


async def run_demo(args: argparse.Namespace, console: Console) -> DemoReport:
    """Run the demo the parsed ``demo`` arguments describe, drawing on ``console``.

    Returns the measurements; :func:`render_report` prints them.

    Raises:
        VoucherifyError: the client gave up (only with fault rates far above the
            defaults).
    """
    fake = _demo_fake(args)
    served = len(fake.actions)
    console.print(
        f"[bold]{PROG} demo[/]: {served:,} actions served by the embedded fake API "
        f"(seed {args.seed}), streamed with the real client over loopback HTTP"
    )
    tally = _Tally()
    async with (
        fake,
        VoucherifyClient("demo", "demo", base_url=fake.base_url, retry=_DEMO_RETRY) as client,
    ):
        stream = client.iter_async_actions(page_size=args.page_size)
        seconds = await _stream_all(stream, tally, _progress_bar(console), served)
        list_requests = [r for r in fake.requests if r.path == "/v1/async-actions"]
        details = None
        if tally.most_recent_failure is not None:
            details = await client.get_async_action(tally.most_recent_failure.id)
    ties = [n for n in tally.per_instant.values() if n > 1]
    return DemoReport(
        served=served,
        seconds=seconds,
        pages=stream.requests_made,
        list_requests=len(list_requests),
        faults=Counter(fault_name(r.fault) for r in list_requests if r.fault is not None),
        inclusive=args.inclusive,
        fault_specs=describe_faults(args.faults),
        by_type_and_status=tally.by_type_and_status,
        yielded=stream.actions_yielded,
        distinct=len(tally.distinct),
        missing=len({a["id"] for a in fake.actions} - tally.distinct),
        tied_actions=sum(ties),
        tie_groups=len(ties),
        largest_tie=max(ties, default=1),
        most_recent_failure=details,
    )


def render_report(report: DemoReport, console: Console) -> None:
    """Print the demo's summary: counts by type and status, the walk, the latest
    failure, and the next step."""
    console.print(_counts_table(report))
    console.print(_facts_table(report))
    console.print()
    details = report.most_recent_failure
    if details is None:
        console.print("no failed action among them")
    else:
        console.print(
            f"[bold]most recent failed action[/], fetched with get_async_action: "
            f"{details.id} ({details.type}, created {iso_utc(details.created_at)})"
        )
        for renderable in details_renderables(details):
            console.print(renderable)
    console.print()
    console.print(NEXT_STEP)


def _facts_table(report: DemoReport) -> Table:
    from rich.table import Table  # rich: the optional extra

    verdict = (
        "[green]each exactly once[/]" if report.exactly_once else "[bold red]NOT exactly once[/]"
    )
    resent = report.list_requests - report.pages
    faults = ", ".join(f"{name} x{n}" for name, n in sorted(report.faults.items()))
    facts = Table(show_header=False, box=None, pad_edge=False)
    facts.add_column(style="bold", no_wrap=True)
    facts.add_column()
    facts.add_row(
        "streamed",
        f"{count(report.yielded, 'action')}, {verdict} ({report.distinct:,} distinct "
        f"of {report.served:,} served, {report.missing:,} missing)",
    )
    facts.add_row(
        "speed",
        f"{report.actions_per_second:,.0f} actions/s ({report.seconds:.2f} s, "
        "server and client in this one process)",
    )
    facts.add_row(
        "requests",
        f"{count(report.list_requests, 'request')} for {count(report.pages, 'page')}"
        + (f" ({resent:,} sent again after a fault)" if resent > 0 else ""),
    )
    facts.add_row(
        "faults",
        f"{report.fault_specs}: {sum(report.faults.values()):,} injected"
        + (f" ({faults})" if faults else ""),
    )
    facts.add_row(
        "ties",
        f"{count(report.tied_actions, 'action')} share their millisecond with another "
        f"({count(report.tie_groups, 'group')}, up to {report.largest_tie}), in a new "
        "order on every request",
    )
    facts.add_row(
        "end_date",
        f"read as {'inclusive' if report.inclusive else 'exclusive'} by the fake "
        "(--inclusive for the other reading: the result is the same)",
    )
    return facts


def _counts_table(report: DemoReport) -> Table:
    from rich import box  # rich: the optional extra
    from rich.table import Table
    from rich.text import Text

    statuses = list(_STATUSES)
    statuses += sorted({s for _, s in report.by_type_and_status} - set(statuses))
    types = [t for t in _TYPES if any(t == k for k, _ in report.by_type_and_status)]
    types += sorted({t for t, _ in report.by_type_and_status} - set(_TYPES))
    per_status = Counter[str]()
    for (_, status), n in report.by_type_and_status.items():
        per_status[status] += n
    table = Table(
        title="actions by type and status",
        show_footer=True,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    table.add_column("type", footer="total", no_wrap=True)
    for status in statuses:
        table.add_column(
            Text(status, style=status_style(status)),
            justify="right",
            footer=f"{per_status[status]:,}",
        )
    table.add_column("total", justify="right", footer=f"{sum(per_status.values()):,}")
    for action_type in types:
        cells = [report.by_type_and_status[action_type, status] for status in statuses]
        table.add_row(action_type, *(f"{n:,}" if n else "" for n in cells), f"{sum(cells):,}")
    return table
