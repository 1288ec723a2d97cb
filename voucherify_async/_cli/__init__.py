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

The package: one module a command (``_demo``, ``_list``, ``_get``,
``_fake_server``), each declaring its own parser; the connection options that
``list`` and ``get`` share, declared once, and the client they make
(``_connection``); argument types (``_values``); output formats (``_output``)
and rich consoles (``_console``); ``--faults`` (``_faults``); exit codes and
:class:`CommandError` (``_errors``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Sequence

from voucherify_async._exceptions import VoucherifyError
from voucherify_async._version import __version__

from ._connection import ENVIRONMENT, connection_options
from ._demo import add_demo_parser
from ._errors import (
    EXIT_BROKEN_PIPE,
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    PROG,
    CommandError,
)
from ._fake_server import add_fake_server_parser
from ._get import add_get_parser
from ._list import add_list_parser

__all__ = ["PROG", "main"]

_EPILOG = f"""\
examples:
  {PROG} demo                                   # no account, no network
  {PROG} list --limit 20                        # the newest 20, as a table
  {PROG} list --all --format jsonl > actions.jsonl
  {PROG} get aa_0ba518c55290c6fd62
  {PROG} fake-server --port 8080 --faults 503:0.1,drop:0.05

{ENVIRONMENT}
exit codes: 0 done, 1 API or network error, 2 usage error, 130 interrupted (Ctrl-C),
141 stdout closed by its reader
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``voucherify-async`` and its four commands."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Voucherify's Async Actions API from the terminal, and a fake of it.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    connection = connection_options()
    add_demo_parser(commands)
    add_list_parser(commands, connection)
    add_get_parser(commands, connection)
    add_fake_server_parser(commands)
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
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except CommandError as error:
        where = f"{PROG} {args.command}" if error.exit_code == EXIT_USAGE else PROG
        _error_line(f"{where}: error: {error}")
        return error.exit_code
    except VoucherifyError as error:
        _error_line(f"{PROG}: error: {error}")
        return EXIT_FAILURE
    except KeyboardInterrupt:
        _error_line(f"{PROG}: interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE


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
