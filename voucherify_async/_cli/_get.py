"""``voucherify-async get ID``: one async action with its result."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import TextIO

from voucherify_async._client import VoucherifyClient
from voucherify_async._models import AsyncActionDetails

from . import _values
from ._connection import ENVIRONMENT, log_lines_on, make_client
from ._errors import PROG
from ._output import StreamSink, action_to_json, details_renderables, require_rich

__all__ = ["add_get_parser"]

_EPILOG = f"""\
examples:
  {PROG} get aa_0ba518c55290c6fd62
  {PROG} get aa_0ba518c55290c6fd62 --format json | jq .result

{ENVIRONMENT}"""


def add_get_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    connection: argparse.ArgumentParser,
) -> None:
    """Add the ``get`` command, with the ``connection`` options, to ``commands``."""
    parser = commands.add_parser(
        "get",
        parents=[connection],
        help="one async action with its result",
        description="Show one async action with its result (what it did).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("id", type=_values.action_id, metavar="ID", help="the action's id (aa_...)")
    parser.add_argument(
        "--format",
        choices=("table", "json"),
        default="table",
        help="the output format (default: table)",
    )
    parser.set_defaults(run=_run_get)


def _run_get(args: argparse.Namespace) -> int:
    if args.format == "table":
        require_rich()
    client = make_client(args)
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
    with log_lines_on(StreamSink(stderr)):
        async with client:
            return await client.get_async_action(action_id)
