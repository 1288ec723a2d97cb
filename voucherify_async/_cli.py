"""The ``voucherify-async`` command line (also ``python -m voucherify_async``).

Commands:

- ``demo``: the fake API in this process, streamed whole by the real client, with
  a summary (no credentials, no network);
- ``list``: one page of async actions, or ``--all`` of them, as a table, JSON,
  JSON Lines or CSV;
- ``get ID``: one action with its result;
- ``fake-server``: the fake API standalone, for any client.

Credentials and the API's place come from flags or the environment
(``VOUCHERIFY_APP_ID``, ``VOUCHERIFY_APP_TOKEN``, ``VOUCHERIFY_CLUSTER`` or
``VOUCHERIFY_API_URL``); flags win.

Exit codes: 0 done; 1 the API refused, the network failed, the answer was not
what the API documents, or an optional extra is missing (one line on stderr, with
the status, key, message and request id when there are some); 2 a usage error;
130 interrupted (Ctrl-C); 141 stdout was closed by its reader (``| head``). A
``fake-server`` stopped by Ctrl-C or SIGTERM exits 0: that is how it ends.

argparse parses; rich, the optional ``cli`` extra, draws tables and progress.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Self, TextIO

from ._cli_output import (
    FORMATS,
    ActionWriter,
    CommandError,
    ConsoleSink,
    Sink,
    StreamSink,
    action_to_json,
    details_renderables,
    make_writer,
    require_rich,
)
from ._client import VoucherifyClient
from ._config import RateLimit, Timeout
from ._exceptions import VoucherifyError
from ._models import AsyncActionDetails
from ._params import MAX_LIMIT, check_action_id, parse_moment
from ._version import __version__
from ._wire import resolve_connection

if TYPE_CHECKING:
    from datetime import datetime

    from rich.console import Console
    from rich.progress import Progress, TaskID

    from ._cli_fake import FaultSpec

__all__ = ["PROG", "build_parser", "main"]

PROG = "voucherify-async"
"""The command's name, in messages and help."""

_EXIT_FAILURE = 1
_EXIT_USAGE = 2
_EXIT_INTERRUPTED = 130
_EXIT_BROKEN_PIPE = 141
_DEFAULT_LIMIT = 10
_DEFAULT_TIMEOUT = 30.0
_CONNECT_TIMEOUT = 10.0

_ENVIRONMENT = """\
environment:
  VOUCHERIFY_APP_ID, VOUCHERIFY_APP_TOKEN  the app keys (or --app-id, --app-token)
  VOUCHERIFY_CLUSTER                       api (Europe, the default), us1.api, as1.api
  VOUCHERIFY_API_URL                       any other root URL, e.g. a dedicated host
"""

_MAIN_EPILOG = f"""\
examples:
  {PROG} demo                                   # no account, no network
  {PROG} list --limit 20                        # the newest 20, as a table
  {PROG} list --all --format jsonl > actions.jsonl
  {PROG} get aa_0ba518c55290c6fd62
  {PROG} fake-server --port 8080 --faults 503:0.1,drop:0.05

{_ENVIRONMENT}
exit codes: 0 done, 1 API or network error, 2 usage error, 130 interrupted (Ctrl-C),
141 stdout closed by its reader
"""

_DEMO_EPILOG = f"""\
example:
  {PROG} demo
  {PROG} demo --actions 20000 --faults 503:0.1,429:0.02 --inclusive

The fake serves generated actions (every type and status, failures with results,
ties at one millisecond shuffled on every request) and, by default, answers some
requests with 503 or drops the connection: the client retries them. The demo
checks that every action came exactly once (exit code 1 if not).
"""

_LIST_EPILOG = f"""\
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

{_ENVIRONMENT}"""

_GET_EPILOG = f"""\
examples:
  {PROG} get aa_0ba518c55290c6fd62
  {PROG} get aa_0ba518c55290c6fd62 --format json | jq .result

{_ENVIRONMENT}"""

_FAKE_EPILOG = f"""\
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


def _int_between(low: int, high: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < low or (high is not None and value > high):
            bounds = f"from {low} to {high}" if high is not None else f"{low} or more"
            raise argparse.ArgumentTypeError(f"must be {bounds}, not {value}")
        return value

    return parse


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not (0 <= value < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds, not {text!r}")
    return value


def _positive_seconds(text: str) -> float:
    value = _seconds(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be more than 0 seconds")
    return value


def _end_date(text: str) -> datetime:
    try:
        return parse_moment(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _since(text: str) -> datetime:
    try:
        return parse_moment(text, name="since")
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _rate_limit(text: str) -> tuple[int, float]:
    count, _, seconds = text.partition("/")
    try:
        limit = (int(count), float(seconds or "60"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not REQUESTS/SECONDS, as in 100/60: {text!r}") from None
    if limit[0] < 1 or not (0 < limit[1] < float("inf")):
        raise argparse.ArgumentTypeError(f"needs 1 request or more per some seconds: {text!r}")
    return limit


def _action_id(text: str) -> str:
    try:
        return check_action_id(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _faults(text: str) -> list[FaultSpec]:
    from ._cli_fake import parse_faults  # the fake server: only for demo and fake-server

    try:
        return parse_faults(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _connection_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group(
        "connection",
        "Flags win over the environment. Prefer the environment for secrets: "
        "flags show in the process list.",
    )
    group.add_argument("--app-id", metavar="ID", help="X-App-Id (default: $VOUCHERIFY_APP_ID)")
    group.add_argument(
        "--app-token", metavar="TOKEN", help="X-App-Token (default: $VOUCHERIFY_APP_TOKEN)"
    )
    group.add_argument(
        "--oauth-token", metavar="TOKEN", help="an OAuth access token, sent instead of app keys"
    )
    group.add_argument(
        "--cluster",
        help="the API's region: api (Europe, the default), us1.api, as1.api "
        "(default: $VOUCHERIFY_CLUSTER)",
    )
    group.add_argument(
        "--base-url",
        metavar="URL",
        help="the API's root URL, for a dedicated host or a fake server "
        "(default: $VOUCHERIFY_API_URL)",
    )
    group.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=_DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"time limit of each attempt of a request (default: {_DEFAULT_TIMEOUT:g})",
    )
    group.add_argument(
        "--max-retries",
        type=_int_between(0),
        default=3,
        metavar="N",
        help="retries of a 408/429/5xx answer, a dropped connection or a timeout (default: 3)",
    )
    group.add_argument(
        "--rate-limit",
        type=_rate_limit,
        metavar="N/SECONDS",
        help="send at most N requests per SECONDS (default 60), evenly spaced, e.g. "
        "100/3600 for a sandbox project (default: only the API's own headers)",
    )
    return parent


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``voucherify-async`` and its four commands."""
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Voucherify's Async Actions API from the terminal, and a fake of it.",
        epilog=_MAIN_EPILOG,
        formatter_class=formatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    connection = _connection_options()

    demo = commands.add_parser(
        "demo",
        help="stream thousands of actions from an embedded fake API, with a summary",
        description="Serve generated actions from the fake API in this process, stream "
        "them all with the real client, and summarise. No credentials, no network.",
        epilog=_DEMO_EPILOG,
        formatter_class=formatter,
    )
    demo.add_argument(
        "--actions",
        type=_int_between(1, 1_000_000),
        default=5_000,
        metavar="N",
        help="how many actions the fake serves (default: 5000)",
    )
    demo.add_argument("--seed", type=int, default=0, help="the seed of the data and faults")
    demo.add_argument(
        "--page-size",
        type=_int_between(1, MAX_LIMIT),
        default=MAX_LIMIT,
        metavar="N",
        help="actions a page, 1 to 100 (default: 100)",
    )
    demo.add_argument(
        "--faults",
        type=_faults,
        default="503:0.05,drop:0.02",  # a string: argparse passes it through type=
        metavar="SPEC",
        help="faults the fake injects, as for fake-server (default: 503:0.05,drop:0.02; "
        "'none' for none)",
    )
    demo.add_argument(
        "--inclusive", action="store_true", help="the fake reads end_date as inclusive"
    )
    demo.set_defaults(run=_run_demo)

    listing = commands.add_parser(
        "list",
        parents=[connection],
        help="list async actions: one page, or --all of them",
        description="List async actions, newest first: one page, or every one with --all.",
        epilog=_LIST_EPILOG,
        formatter_class=formatter,
    )
    listing.add_argument(
        "--limit",
        type=_int_between(1),
        metavar="N",
        help=f"one page of N actions, 1 to 100 (default: {_DEFAULT_LIMIT}); "
        "with --all, stop after N actions",
    )
    listing.add_argument(
        "--end-date",
        type=_end_date,
        metavar="D",
        help="only actions created before D: a date (2024-06-01) or a date-time with "
        "its zone (2024-06-01T12:00:00Z)",
    )
    listing.add_argument(
        "--since",
        type=_since,
        metavar="D",
        help="with --all: only actions created at or after D (same forms as --end-date); "
        "the walk stops there",
    )
    listing.add_argument("--all", action="store_true", help="stream every action, page after page")
    listing.add_argument(
        "--page-size",
        type=_int_between(1, MAX_LIMIT),
        metavar="N",
        help="with --all: new actions a request, 1 to 100 (default: 100)",
    )
    listing.add_argument(
        "--format", choices=FORMATS, default="table", help="the output format (default: table)"
    )
    listing.set_defaults(run=_run_list)

    get = commands.add_parser(
        "get",
        parents=[connection],
        help="one async action with its result",
        description="Show one async action with its result (what it did).",
        epilog=_GET_EPILOG,
        formatter_class=formatter,
    )
    get.add_argument("id", type=_action_id, metavar="ID", help="the action's id (aa_...)")
    get.add_argument(
        "--format",
        choices=("table", "json"),
        default="table",
        help="the output format (default: table)",
    )
    get.set_defaults(run=_run_get)

    fake = commands.add_parser(
        "fake-server",
        help="serve the fake Async Actions API for any client",
        description="Serve the fake Voucherify Async Actions API (both endpoints, "
        "authentication, the vendor's errors) until Ctrl-C, for any client: this "
        "library, the vendor's SDK, curl.",
        epilog=_FAKE_EPILOG,
        formatter_class=formatter,
    )
    fake.add_argument(
        "--host", default="127.0.0.1", help="the address to bind (default: 127.0.0.1)"
    )
    fake.add_argument(
        "--port",
        type=_int_between(0, 65535),
        default=0,
        metavar="N",
        help="the port (default: 0, any free port)",
    )
    fake.add_argument(
        "--actions",
        type=_int_between(0, 5_000_000),
        default=1_000,
        metavar="N",
        help="how many generated actions to serve (default: 1000)",
    )
    fake.add_argument("--seed", type=int, default=0, help="the seed of the data and faults")
    fake.add_argument(
        "--inclusive",
        action="store_true",
        help="read end_date as inclusive (at or before); the default is exclusive",
    )
    fake.add_argument(
        "--no-has-more", action="store_true", help="leave has_more out, as older API versions"
    )
    fake.add_argument(
        "--shuffle-ties",
        action="store_true",
        help="actions of one millisecond in a new order on every request",
    )
    fake.add_argument(
        "--latency",
        type=_seconds,
        default=0.0,
        metavar="SECONDS",
        help="wait before every answer (default: 0)",
    )
    fake.add_argument(
        "--rate-limit",
        type=_rate_limit,
        metavar="N/SECONDS",
        help="enforce N requests per window of SECONDS (default 60) with the vendor's "
        "X-Rate-Limit-* headers and 429 (default: no limit)",
    )
    fake.add_argument(
        "--faults",
        type=_faults,
        default=[],
        metavar="SPEC",
        help="random faults, e.g. 503:0.1,drop:0.05,429:0.05 (see below)",
    )
    fake.add_argument(
        "--app-id", metavar="ID", help="accept only this X-App-Id (default: any non-empty)"
    )
    fake.add_argument(
        "--app-token",
        metavar="TOKEN",
        help="accept only this X-App-Token (default: any non-empty)",
    )
    fake.add_argument("--oauth-token", metavar="TOKEN", help="accept this bearer token too")
    fake.add_argument("--quiet", action="store_true", help="do not log the requests")
    fake.set_defaults(run=_run_fake_server)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``voucherify-async`` with ``argv`` (default: ``sys.argv[1:]``); return its exit code.

    Never raises for the errors it expects: an API, network or payload error is one
    line on stderr and exit code 1, a usage error 2, Ctrl-C 130, a closed stdout 141.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version, or a usage error already printed
        return exit_.code if isinstance(exit_.code, int) else _EXIT_USAGE
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except CommandError as error:
        where = f"{PROG} {args.command}" if error.exit_code == _EXIT_USAGE else PROG
        _error_line(f"{where}: error: {error}")
        return error.exit_code
    except VoucherifyError as error:
        _error_line(f"{PROG}: error: {error}")
        return _EXIT_FAILURE
    except KeyboardInterrupt:
        _error_line(f"{PROG}: interrupted")
        return _EXIT_INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return _EXIT_BROKEN_PIPE


def _error_line(message: str) -> None:
    """Write ``message`` on stderr as exactly one line (whitespace runs become one space)."""
    sys.stderr.write(" ".join(message.split()) + "\n")
    sys.stderr.flush()


def _silence_stdout() -> None:
    """Point stdout at the null device, so that the interpreter's last flush cannot
    fail on the closed pipe again (the recipe of Python's ``signal`` documentation)."""
    with contextlib.suppress(OSError, ValueError):  # no file descriptor: nothing to do
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        finally:
            os.close(devnull)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream
        return False


_FLAG_NAMES = {
    "app_id": "--app-id",
    "app_token": "--app-token",
    "oauth_token": "--oauth-token",
    "cluster": "--cluster",
    "base_url": "--base-url",
}


def _make_client(args: argparse.Namespace) -> VoucherifyClient:
    """The client the connection options and the environment describe.

    Raises:
        CommandError: (exit code 2) no credentials, both kinds, both places, or a
            value the client refuses (an http URL that is not loopback ...).
    """
    timeout: float = args.timeout
    try:
        # Flags and environment, by the library's one set of rules (the client applies
        # them again, with the same outcome); only the messages name the flags.
        resolve_connection(
            app_id=args.app_id,
            app_token=args.app_token,
            oauth_token=args.oauth_token,
            cluster=args.cluster,
            base_url=args.base_url,
            environ=os.environ,
            names=_FLAG_NAMES,
        )
        return VoucherifyClient(
            args.app_id,
            args.app_token,
            oauth_token=args.oauth_token,
            cluster=args.cluster,
            base_url=args.base_url,
            timeout=Timeout(total=timeout, connect=min(timeout, _CONNECT_TIMEOUT)),
            max_retries=args.max_retries,
            rate_limit=_pacing(args.rate_limit),
        )
    except (TypeError, ValueError) as error:
        raise CommandError(str(error), exit_code=_EXIT_USAGE) from None


def _pacing(limit: tuple[int, float] | None) -> RateLimit | None:
    """``--rate-limit N/SECONDS`` as the client's :class:`RateLimit`."""
    if limit is None:
        return None
    requests, per = limit
    return RateLimit(requests=requests, per=per)


class _LogLines(logging.Handler):
    """Writes the client's log records (its retries) as lines on a :class:`Sink`."""

    def __init__(self, sink: Sink) -> None:
        super().__init__(logging.WARNING)
        self._sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._sink.line(f"{PROG}: {record.getMessage()}")
        except Exception:  # noqa: BLE001  # logging's own contract: report, never raise
            self.handleError(record)


@contextlib.contextmanager
def _client_log(sink: Sink) -> Iterator[None]:
    """Show the client's warnings (retries) on ``sink`` while the block runs."""
    logger = logging.getLogger("voucherify_async")
    handler = _LogLines(sink)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


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
            from rich.console import Console  # rich: the optional extra
            from rich.progress import (
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )
        except ImportError:
            return
        self.console = Console(file=stderr)
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


def _run_list(args: argparse.Namespace) -> int:
    for flag, value in (("--page-size", args.page_size), ("--since", args.since)):
        if value is not None and not args.all:
            raise CommandError(f"{flag} goes with --all", exit_code=_EXIT_USAGE)
    if not args.all and args.limit is not None and args.limit > MAX_LIMIT:
        raise CommandError(
            f"--limit is 1 to {MAX_LIMIT} for one page (with --all, it stops the stream "
            "after that many actions)",
            exit_code=_EXIT_USAGE,
        )
    if args.format == "table":
        require_rich()
    client = _make_client(args)
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
        with _client_log(err):
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
    caption = f"{len(page):,} actions, newest first"
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
    writer.close(caption=f"{writer.written:,} actions in {stream.requests_made:,} requests")


def _run_get(args: argparse.Namespace) -> int:
    if args.format == "table":
        require_rich()
    client = _make_client(args)
    details = asyncio.run(_get(client, args.id, sys.stderr))
    if args.format == "json":
        sys.stdout.write(json.dumps(action_to_json(details), ensure_ascii=False, indent=2) + "\n")
        sys.stdout.flush()
        return 0
    sink = StreamSink(sys.stdout)
    for renderable in details_renderables(details):
        sink.render(renderable)
    return 0


async def _get(client: VoucherifyClient, action_id: str, stderr: TextIO) -> AsyncActionDetails:
    with _client_log(StreamSink(stderr)):
        async with client:
            return await client.get_async_action(action_id)


def _run_demo(args: argparse.Namespace) -> int:
    require_rich()
    from rich.console import Console  # rich: the optional extra

    from ._cli_demo import render_report, run_demo

    console = Console(file=sys.stdout, highlight=False)
    report = asyncio.run(run_demo(args, console))
    render_report(report, console)
    return 0 if report.exactly_once else _EXIT_FAILURE


def _run_fake_server(args: argparse.Namespace) -> int:
    if (args.app_id is None) != (args.app_token is None):
        raise CommandError("--app-id and --app-token go together", exit_code=_EXIT_USAGE)
    from ._cli_fake import run_fake_server

    asyncio.run(run_fake_server(args, sys.stdout, sys.stderr))
    return 0
