"""``voucherify-async list``: one page of async actions, or ``--all`` of them."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Self, TextIO

from voucherify_async._client import VoucherifyClient
from voucherify_async._params import MAX_LIMIT

from . import _values
from ._connection import ENVIRONMENT, log_lines_on, make_client
from ._errors import PROG, usage_error
from ._output import (
    FORMATS,
    ActionWriter,
    ConsoleSink,
    Sink,
    StreamSink,
    count,
    iso_utc,
    make_writer,
    require_rich,
)

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

__all__ = ["add_list_parser"]

_DEFAULT_LIMIT = 10

_EPILOG = f"""\
examples:
  {PROG} list                                   # the newest 10, as a table
  {PROG} list --limit 100 --end-date 2024-06-01 --format json
  {PROG} list --all --format jsonl | jq -r 'select(.status == "FAILED") | .id'
  {PROG} list --all --limit 5000 --format csv > actions.csv
  {PROG} list --all --since 2024-06-01 --format jsonl   # everything since June

Without --all: one request, one page (--limit 1 to 100, default 10). With --all:
every action, newest first, each exactly once, page after page (--page-size), up
to --limit actions if given. A progress line shows on stderr when it is a
terminal; stdout carries only the output. Datetimes are UTC, ISO-8601, with
milliseconds and Z.

{ENVIRONMENT}"""


def add_list_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    connection: argparse.ArgumentParser,
) -> None:
    """Add the ``list`` command, with the ``connection`` options, to ``commands``."""
    parser = commands.add_parser(
        "list",
        parents=[connection],
        help="list async actions: one page, or --all of them",
        description="List async actions, newest first: one page, or every one with --all.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add(
        "--limit",
        type=_values.int_between(1),
        metavar="N",
        help=f"one page of N actions, 1 to 100 (default: {_DEFAULT_LIMIT}); "
        "with --all, stop after N actions",
    )
    add(
        "--end-date",
        type=_values.moment,
        metavar="D",
        help="only actions created before D: a date (2024-06-01) or a date-time with "
        "its zone (2024-06-01T12:00:00Z)",
    )
    add(
        "--since",
        type=_values.moment,
        metavar="D",
        help="with --all: only actions created at or after D (same forms as --end-date); "
        "the walk stops there",
    )
    add("--all", action="store_true", help="stream every action, page after page")
    add(
        "--page-size",
        type=_values.int_between(1, MAX_LIMIT),
        metavar="N",
        help="with --all: new actions a request, 1 to 100 (default: 100)",
    )
    add("--format", choices=FORMATS, default="table", help="the output format (default: table)")
    parser.set_defaults(run=_run_list)


def _check_combination(args: argparse.Namespace) -> None:
    """Refuse options that do not go together (exit code 2), before any request."""
    for flag, value in (("--page-size", args.page_size), ("--since", args.since)):
        if value is not None and not args.all:
            raise usage_error(f"{flag} goes with --all")
    if not args.all and args.limit is not None and args.limit > MAX_LIMIT:
        raise usage_error(
            f"--limit is 1 to {MAX_LIMIT} for one page (with --all, it stops the stream "
            "after that many actions)"
        )
    since: datetime | None = args.since
    end_date: datetime | None = args.end_date
    if since is not None and end_date is not None and since > end_date:
        raise usage_error(
            f"--since {iso_utc(since)} is later than --end-date {iso_utc(end_date)}: "
            "no action can be in between"
        )


def _run_list(args: argparse.Namespace) -> int:
    _check_combination(args)
    if args.format == "table":
        require_rich()
    client = make_client(args)
    asyncio.run(_list(args, client, sys.stdout, sys.stderr))
    return 0


async def _list(
    args: argparse.Namespace, client: VoucherifyClient, stdout: TextIO, stderr: TextIO
) -> None:
    with _StreamProgress(stderr if args.all else None) as progress:
        # When stdout is the same terminal, rows go above the progress line.
        if progress.console is not None and _isatty(stdout):
            out: Sink = ConsoleSink(progress.console)
        else:
            out = StreamSink(stdout)
        err = ConsoleSink(progress.console) if progress.console else StreamSink(stderr)
        writer = make_writer(out, args.format)
        with log_lines_on(err):
            async with client:
                if args.all:
                    await _write_every_action(args, client, writer, progress)
                else:
                    await _write_one_page(args, client, writer)


async def _write_one_page(
    args: argparse.Namespace, client: VoucherifyClient, writer: ActionWriter
) -> None:
    limit = args.limit or _DEFAULT_LIMIT
    page = await client.list_async_actions(limit=limit, end_date=args.end_date)
    writer.write(page.async_actions)
    caption = f"{count(len(page), 'action')}, newest first"
    if page.has_more:
        caption += "; more exist: --all streams every one"
    writer.close(caption=caption)


async def _write_every_action(
    args: argparse.Namespace,
    client: VoucherifyClient,
    writer: ActionWriter,
    progress: _StreamProgress,
) -> None:
    limit: int | None = args.limit
    page_size: int = args.page_size or MAX_LIMIT
    if limit is not None:
        page_size = min(page_size, limit)
    stream = client.iter_async_actions(
        page_size=page_size,
        end_date=args.end_date,
        since=args.since,
        # One page holds them all: nothing to request ahead.
        prefetch=0 if limit is not None and limit <= page_size else 1,
    )
    async with stream:  # closing the stream ends its pages() too
        async for page in stream.pages():
            actions = page.async_actions
            if limit is not None:
                actions = actions[: limit - writer.written]
            writer.write(actions)
            progress.update(writer.written, stream.requests_made)
            if limit is not None and writer.written >= limit:
                break
    requests = count(stream.requests_made, "request")
    writer.close(caption=f"{count(writer.written, 'action')} in {requests}")


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream
        return False


class _StreamProgress:
    """The progress line of ``list --all``: rich, on stderr, only when it is a terminal.

    Inactive (every method a no-op, :attr:`console` ``None``) when stderr is not a
    terminal or rich is not installed: progress is a nicety, never a reason to fail.
    """

    def __init__(self, stderr: TextIO | None) -> None:
        self.console: Console | None = None
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        if stderr is None or not _isatty(stderr):
            return
        try:
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            from ._console import output_console  # rich: the optional extra
        except ImportError:
            return
        self.console = output_console(stderr)
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.completed:>9,.0f} actions"),
            TextColumn("{task.fields[requests]:>5,} requests"),
            TextColumn("{task.fields[rate]:>8,.0f} actions/s"),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
        )

    def __enter__(self) -> Self:
        if self._progress is not None:
            self._task = self._progress.add_task("list", total=None, requests=0, rate=0.0)
            self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    def update(self, actions: int, requests: int) -> None:
        """Show ``actions`` streamed in ``requests`` requests so far."""
        if self._progress is None or self._task is None:
            return
        elapsed = self._progress.tasks[0].elapsed or 0.0
        rate = actions / elapsed if elapsed > 0 else 0.0
        self._progress.update(self._task, completed=actions, requests=requests, rate=rate)
        self._progress.refresh()  # once a page, however fast the pages come
