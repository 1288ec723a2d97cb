"""``voucherify-async demo``: the client's main job, end to end, on an embedded fake.

It serves a few thousand generated actions from :class:`FakeVoucherify` in this
process (every type and status, failures with results, actions sharing one
millisecond, tie order shuffled on every request, and by default a few 503s and
dropped connections), streams all of them with the real :class:`VoucherifyClient`
over loopback HTTP behind a rich progress bar, checks that each came exactly
once, and fetches the most recent failure with ``get_async_action``. No
credentials, no network.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING

import attrs

from ._cli_fake import describe_faults, fault_name, weighted_faults
from ._cli_output import details_renderables, iso_utc, status_style
from ._client import VoucherifyClient
from ._config import RetryPolicy
from ._models import AsyncAction, AsyncActionDetails, AsyncActionStatus, AsyncActionType
from .testing import FakeVoucherify, generate_actions

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.table import Table

__all__ = ["DemoReport", "render_report", "run_demo"]

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


@attrs.define
class DemoReport:
    """What the demo measured: the counts and timings its summary shows."""

    served: int
    seconds: float
    requests_made: int
    list_requests: int
    retries: int
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


class _RetryCounter(logging.Handler):
    """Counts the client's retry log records, and keeps them off the screen."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


@contextlib.contextmanager
def _counting_retries() -> Iterator[_RetryCounter]:
    logger = logging.getLogger("voucherify_async")
    counter = _RetryCounter()
    logger.addHandler(counter)
    try:
        yield counter
    finally:
        logger.removeHandler(counter)


async def run_demo(args: argparse.Namespace, console: Console) -> DemoReport:
    """Run the demo the parsed ``demo`` arguments describe, drawing on ``console``.

    Returns the measurements; :func:`render_report` prints them.

    Raises:
        VoucherifyError: the client gave up (only with fault rates far above the
            defaults).
    """
    from rich.progress import (  # rich: the optional extra
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    actions = generate_actions(args.actions, seed=args.seed, tie_rate=_TIE_RATE, max_tie=_MAX_TIE)
    served_ids = {action["id"] for action in actions}
    fake = FakeVoucherify(
        actions=actions,
        app_id=None,
        app_token=None,
        end_date_inclusive=args.inclusive,
        shuffle_ties=True,
        seed=args.seed,
    )
    if args.faults:
        rate, kinds = weighted_faults(args.faults)
        fake.faults.random(rate, kinds, seed=args.seed)
    console.print(
        f"[bold]voucherify-async demo[/]: {len(actions):,} actions served by the embedded "
        f"fake API (seed {args.seed}), streamed with the real client over loopback HTTP"
    )
    by_type_and_status: Counter[tuple[str, str]] = Counter()
    distinct: set[str] = set()
    per_instant: Counter[object] = Counter()
    most_recent_failure: AsyncAction | None = None
    with _counting_retries() as retries:
        async with (
            fake,
            VoucherifyClient("demo", "demo", base_url=fake.base_url, retry=_DEMO_RETRY) as client,
        ):
            stream = client.iter_async_actions(page_size=args.page_size)
            progress = Progress(
                SpinnerColumn(),
                TextColumn("streaming"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]:>8,.0f} actions/s"),
                TextColumn("{task.fields[requests]:>4} requests"),
                TimeElapsedColumn(),
                console=console,
            )
            started = time.perf_counter()
            with progress:
                task = progress.add_task("streaming", total=len(actions), rate=0.0, requests=0)
                async for page in stream.pages():
                    for action in page:
                        by_type_and_status[str(action.type), str(action.status)] += 1
                        distinct.add(action.id)
                        per_instant[action.created_at] += 1
                        if most_recent_failure is None and action.status == "FAILED":
                            most_recent_failure = action
                    elapsed = time.perf_counter() - started
                    progress.update(
                        task,
                        completed=stream.actions_yielded,
                        rate=stream.actions_yielded / elapsed if elapsed > 0 else 0.0,
                        requests=stream.requests_made,
                    )
            seconds = time.perf_counter() - started
            list_requests = [r for r in fake.requests if r.path == "/v1/async-actions"]
            details = None
            if most_recent_failure is not None:
                details = await client.get_async_action(most_recent_failure.id)
    ties = [count for count in per_instant.values() if count > 1]
    return DemoReport(
        served=len(actions),
        seconds=seconds,
        requests_made=stream.requests_made,
        list_requests=len(list_requests),
        retries=retries.count,
        faults=Counter(fault_name(r.fault) for r in list_requests if r.fault is not None),
        inclusive=args.inclusive,
        fault_specs=describe_faults(args.faults),
        by_type_and_status=by_type_and_status,
        yielded=stream.actions_yielded,
        distinct=len(distinct),
        missing=len(served_ids - distinct),
        tied_actions=sum(ties),
        tie_groups=len(ties),
        largest_tie=max(ties, default=1),
        most_recent_failure=details,
    )


def render_report(report: DemoReport, console: Console) -> None:
    """Print the demo's summary: counts by type and status, the walk, the latest failure."""
    from rich.table import Table  # rich: the optional extra

    console.print(_counts_table(report))

    verdict = (
        "[green]each exactly once[/]" if report.exactly_once else "[bold red]NOT exactly once[/]"
    )
    faults = ", ".join(f"{name} x{count}" for name, count in sorted(report.faults.items()))
    retried = f"{report.retries} {'retry' if report.retries == 1 else 'retries'} by the client"
    if report.faults.get("drop"):
        retried += " (aiohttp itself re-sends a request once when its connection drops)"
    facts = Table(show_header=False, box=None, pad_edge=False)
    facts.add_column(style="bold", no_wrap=True)
    facts.add_column()
    facts.add_row(
        "streamed",
        f"{report.yielded:,} actions, {verdict} "
        f"({report.distinct:,} distinct of {report.served:,} served, {report.missing:,} missing)",
    )
    facts.add_row(
        "speed",
        f"{report.actions_per_second:,.0f} actions/s ({report.seconds:.2f} s, "
        "server and client in this one process)",
    )
    facts.add_row(
        "requests made",
        f"{report.requests_made:,} pages (stream.requests_made); the fake received "
        f"{report.list_requests:,} list requests",
    )
    facts.add_row(
        "faults",
        f"{report.fault_specs}: {sum(report.faults.values())} injected"
        + (f" ({faults})" if faults else "")
        + f"; {retried}",
    )
    facts.add_row(
        "ties",
        f"{report.tied_actions:,} actions share their millisecond with another "
        f"({report.tie_groups:,} groups, up to {report.largest_tie}); tie order shuffled "
        "on every request",
    )
    facts.add_row(
        "end_date",
        f"read as {'inclusive' if report.inclusive else 'exclusive'} by the fake "
        "(--inclusive for the other reading: the result is the same)",
    )
    console.print(facts)
    console.print()
    details = report.most_recent_failure
    if details is None:
        console.print("no failed action among them")
        return
    console.print(
        f"[bold]most recent failed action[/], fetched with get_async_action: "
        f"{details.id} ({details.type}, created {iso_utc(details.created_at)})"
    )
    renderables: list[RenderableType] = details_renderables(details)
    for renderable in renderables:
        console.print(renderable)


def _counts_table(report: DemoReport) -> Table:
    from rich import box  # rich: the optional extra
    from rich.table import Table
    from rich.text import Text

    statuses = list(_STATUSES)
    statuses += sorted({s for _, s in report.by_type_and_status} - set(statuses))
    types = [t for t in _TYPES if any(t == k for k, _ in report.by_type_and_status)]
    types += sorted({t for t, _ in report.by_type_and_status} - set(_TYPES))
    per_status = Counter[str]()
    for (_, status), count in report.by_type_and_status.items():
        per_status[status] += count
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
        table.add_row(
            action_type, *(f"{count:,}" if count else "" for count in cells), f"{sum(cells):,}"
        )
    return table
