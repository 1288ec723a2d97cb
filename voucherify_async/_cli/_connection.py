"""The connection options of ``list`` and ``get``, declared once, and the client they make.

Credentials, cluster and base URL are read by the library's one resolver
(:func:`voucherify_async._wire.resolve_connection`), with the flags' names in its
messages; the client's log records (its retries) become lines on stderr through
:func:`log_lines_on`.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
from collections.abc import Iterator

from voucherify_async._client import VoucherifyClient
from voucherify_async._config import RateLimit, Timeout
from voucherify_async._wire import resolve_connection

from . import _values
from ._errors import PROG, usage_error
from ._output import Sink

__all__ = ["ENVIRONMENT", "connection_options", "log_lines_on", "make_client"]

ENVIRONMENT = """\
environment:
  VOUCHERIFY_APP_ID, VOUCHERIFY_APP_TOKEN  the app keys (or --app-id, --app-token)
  VOUCHERIFY_CLUSTER                       api (Europe, the default), us1.api, as1.api
  VOUCHERIFY_API_URL                       any other root URL, e.g. a dedicated host
"""
"""The epilog lines of every command that talks to the API."""

_DEFAULT_TIMEOUT = 30.0
_CONNECT_TIMEOUT = 10.0
_FLAG_NAMES = {
    "app_id": "--app-id",
    "app_token": "--app-token",
    "oauth_token": "--oauth-token",
    "cluster": "--cluster",
    "base_url": "--base-url",
}


def connection_options() -> argparse.ArgumentParser:
    """A parent parser holding the connection options (``parents=[...]`` of a command)."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group(
        "connection",
        "Flags win over the environment. Prefer the environment for secrets: "
        "flags show in the process list.",
    )
    add = group.add_argument
    add("--app-id", metavar="ID", help="X-App-Id (default: $VOUCHERIFY_APP_ID)")
    add("--app-token", metavar="TOKEN", help="X-App-Token (default: $VOUCHERIFY_APP_TOKEN)")
    add("--oauth-token", metavar="TOKEN", help="an OAuth access token, sent instead of app keys")
    add(
        "--cluster",
        help="the API's region: api (Europe, the default), us1.api, as1.api "
        "(default: $VOUCHERIFY_CLUSTER)",
    )
    add(
        "--base-url",
        metavar="URL",
        help="the API's root URL, for a dedicated host or a fake server "
        "(default: $VOUCHERIFY_API_URL)",
    )
    add(
        "--timeout",
        type=_values.positive_seconds,
        default=_DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"time limit of each attempt of a request (default: {_DEFAULT_TIMEOUT:g})",
    )
    add(
        "--max-retries",
        type=_values.int_between(0),
        default=3,
        metavar="N",
        help="retries of a 408/429/5xx answer, a dropped connection or a timeout (default: 3)",
    )
    add(
        "--rate-limit",
        type=_values.rate_limit,
        metavar="N/SECONDS",
        help="send at most N requests per SECONDS (default 60), evenly spaced, e.g. "
        "100/3600 for a sandbox project (default: only the API's own headers)",
    )
    return parent


def make_client(args: argparse.Namespace) -> VoucherifyClient:
    """The client the connection options and the environment describe.

    Nothing is sent: a bad value is refused here, before any request.

    Raises:
        CommandError: (exit code 2) no credentials, both kinds, both places, an
            unknown cluster, or a value the client refuses (an http URL that is
            not loopback ...).
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
        raise usage_error(str(error)) from None


def _pacing(limit: tuple[int, float] | None) -> RateLimit | None:
    """``--rate-limit N/SECONDS`` as the client's :class:`RateLimit`."""
    if limit is None:
        return None
    requests, per = limit
    return RateLimit(requests=requests, per=per)


class _LogLines(logging.Handler):
    """Writes the library's warnings (its retries) as lines on a :class:`Sink`."""

    def __init__(self, sink: Sink) -> None:
        super().__init__(logging.WARNING)
        self._sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._sink.line(f"{PROG}: {record.getMessage()}")
        except Exception:  # noqa: BLE001  # logging's own contract: report, never raise
            self.handleError(record)


@contextlib.contextmanager
def log_lines_on(sink: Sink) -> Iterator[None]:
    """Write each warning the library logs while the block runs as a line on ``sink``.

    ``voucherify-async: retrying GET /v1/async-actions in 0.42 s ...``: the one place
    the command line captures the library's log.
    """
    logger = logging.getLogger("voucherify_async")
    handler = _LogLines(sink)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
