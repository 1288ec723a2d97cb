"""How the command line writes actions: JSON, JSON Lines, CSV and rich tables.

Plain formats (``json``, ``jsonl``, ``csv``) need only the standard library and are
written line by line, flushed as they go, so that ``list --all`` streams through a
pipe in bounded memory. Tables and progress come from rich, the optional ``cli``
extra: :func:`require_rich` says how to install it when it is missing.

Every datetime is written as ISO-8601 UTC with milliseconds and ``Z``
(``2022-09-05T11:40:17.098Z``); an absent field is ``null`` in JSON and empty in
CSV and tables.

Rich draws through :func:`._console.output_console`: a closed pipe is exit code
141 and silence, as for the plain formats, and off a terminal no line ends with
padding.
"""

from __future__ import annotations

import csv
import enum
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol, TextIO

import attrs

from voucherify_async._models import AsyncAction, AsyncActionDetails, AsyncActionResult

from ._errors import CommandError

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.table import Table

__all__ = [
    "CSV_COLUMNS",
    "FORMATS",
    "ActionWriter",
    "ConsoleSink",
    "Sink",
    "StreamSink",
    "action_to_json",
    "count",
    "details_renderables",
    "iso_utc",
    "make_writer",
    "require_rich",
    "status_style",
]

Format = Literal["table", "json", "jsonl", "csv"]
FORMATS: tuple[Format, ...] = ("table", "json", "jsonl", "csv")

INSTALL_CLI_EXTRA = 'pip install ".[cli]" (in a clone of the repository)'

CSV_COLUMNS = (
    "id",
    "created_at",
    "updated_at",
    "type",
    "status",
    "operation_status",
    "progress",
    "processing_time",
    "request_id",
)
"""The columns of ``--format csv``, in order (``result`` is not a column)."""

# Field order of the JSON objects: the API's own order; fields added later follow.
_JSON_ORDER = (
    "id",
    "type",
    "status",
    "operation_status",
    "created_at",
    "updated_at",
    "request_id",
    "progress",
    "processing_time",
    "object",
    "result",
)
_STATUS_STYLES = {
    "DONE": "green",
    "FAILED": "bold red",
    "IN_PROGRESS": "yellow",
    "ENQUEUED": "cyan",
}
# The list table's columns: (header, width of the widest documented value, justify).
# With room for them all, every page of ``list --all`` gets these widths, so that
# the tables printed one after another line up as one.
_COLUMNS = (
    ("created_at", 24, "left"),
    ("id", 21, "left"),
    ("type", 28, "left"),
    ("status", 11, "left"),
    ("op.", 7, "left"),
    ("%", 3, "right"),
    ("ms", 7, "right"),
)
_FIXED_TABLE_WIDTH = sum(width for _, width, _ in _COLUMNS) + 2 * (len(_COLUMNS) - 1)
# Tables written to a file or a pipe are laid out this wide: never cut or wrapped
# for lack of a terminal's width.
_PIPE_WIDTH = 200


def require_rich() -> None:
    """Check that rich (the ``cli`` extra) can be imported.

    Raises:
        CommandError: it cannot; the message says how to install it (exit code 1).
    """
    try:
        import rich  # noqa: F401  # optional: imported only to check it is there
    except ImportError:
        raise CommandError(
            f"this command needs rich, from the 'cli' extra: {INSTALL_CLI_EXTRA}"
        ) from None


def count(number: int, noun: str) -> str:
    """``1 request``, ``2 requests``, ``1,500 actions``: a number and its noun, agreeing."""
    return f"{number:,} {noun}" if number == 1 else f"{number:,} {noun}s"


def iso_utc(moment: datetime) -> str:
    """``2022-09-05T11:40:17.098Z``: the datetime in UTC, to the millisecond, with ``Z``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, AsyncActionResult):
        return dict(value.raw)
    return value


def action_to_json(action: AsyncAction) -> dict[str, Any]:
    """An action (or action details, with ``result``) as a JSON-ready dict.

    Keys follow the API's order; enum members become their string; datetimes
    become :func:`iso_utc` text; ``result`` is the raw mapping the API sent.
    """
    values = {field.name: getattr(action, field.name) for field in attrs.fields(type(action))}
    ordered = [name for name in _JSON_ORDER if name in values]
    ordered += [name for name in values if name not in _JSON_ORDER]
    return {name: _json_value(values[name]) for name in ordered}


def _cell(value: Any) -> str:
    value = _json_value(value)
    return "" if value is None else str(value)


def status_style(status: object) -> str:
    """The rich style a status is shown in (``FAILED`` in red ...); unknown ones unstyled."""
    return _STATUS_STYLES.get(str(status), "")


class Sink(Protocol):
    """Where a command's output goes: plain text lines, or rich renderables."""

    @property
    def width(self) -> int:
        """How many columns renderables may take."""

    def line(self, text: str) -> None:
        """Write ``text`` and a newline, and flush."""

    def render(self, renderable: RenderableType) -> None:
        """Print a rich renderable (a table)."""


@attrs.define
class StreamSink:
    """A :class:`Sink` writing to a text stream (stdout); rich only when rendering.

    Renderables fit a terminal's width; on a file or a pipe they are laid out
    200 columns wide, so that no column is cut.
    """

    stream: TextIO
    _console: Console | None = None

    @property
    def width(self) -> int:
        """The terminal's width, or 200 for a file or a pipe."""
        return self._rich_console().width

    def _rich_console(self) -> Console:
        if self._console is None:
            from ._console import output_console  # rich: the optional extra

            self._console = output_console(self.stream, width=_PIPE_WIDTH)
        return self._console

    def line(self, text: str) -> None:
        """Write ``text`` and a newline, and flush at once (for pipes)."""
        self.stream.write(text + "\n")
        self.stream.flush()

    def render(self, renderable: RenderableType) -> None:
        """Print a rich renderable on the stream (colours only on a terminal)."""
        self._rich_console().print(renderable)
        self.stream.flush()


class ActionWriter:
    """Writes actions in one format, page by page, to a :class:`Sink`.

    Call :meth:`write` for each page as it arrives and :meth:`close` once at the
    end. ``json`` writes one array, item by item (each once the next one or the end
    is known: valid JSON once closed); ``jsonl`` one compact object a line, flushed;
    ``csv`` a header, then one row an action; ``table`` one rich table a page, the
    header on the first only, with fixed column widths where they fit, so that the
    pages read as one table.
    """

    def __init__(self, sink: Sink, fmt: Format) -> None:
        self._sink = sink
        self._format = fmt
        self._written = 0
        self._pending: str | None = None

    @property
    def written(self) -> int:
        """How many actions were written so far."""
        return self._written

    def write(self, actions: Sequence[AsyncAction]) -> None:
        """Write one page of actions (nothing for an empty page but the table's header)."""
        if self._format == "jsonl":
            for action in actions:
                self._sink.line(json.dumps(action_to_json(action), ensure_ascii=False))
        elif self._format == "json":
            # One item behind, so that each is written with its trailing comma.
            for action in actions:
                if self._pending is None:
                    self._sink.line("[")
                else:
                    self._sink.line(self._pending + ",")
                text = json.dumps(action_to_json(action), ensure_ascii=False, indent=2)
                self._pending = _indent(text)
        elif self._format == "csv":
            if self._written == 0:
                self._sink.line(_csv_row(CSV_COLUMNS))
            for action in actions:
                self._sink.line(_csv_row(_cell(getattr(action, name)) for name in CSV_COLUMNS))
        elif actions or self._written == 0:
            fixed = self._sink.width >= _FIXED_TABLE_WIDTH
            self._sink.render(actions_table(actions, header=self._written == 0, fixed=fixed))
        self._written += len(actions)

    def close(self, *, caption: str | None = None) -> None:
        """Finish the output: close the JSON array (``[]`` when nothing was written).

        ``caption`` is a note for people (``more actions exist ...``), shown under a
        table only.
        """
        if self._format == "json":
            if self._pending is None:
                self._sink.line("[]")
            else:
                self._sink.line(self._pending)
                self._sink.line("]")
                self._pending = None
        elif self._format == "table" and caption:
            self._sink.line(caption)


@attrs.define
class ConsoleSink:
    """A :class:`Sink` printing through a rich console, above its live progress display.

    For when stdout and stderr are both the terminal: the rows and the progress
    line share the screen without garbling each other.
    """

    console: Console

    @property
    def width(self) -> int:
        """The console's width."""
        return self.console.width

    def line(self, text: str) -> None:
        """Print ``text`` verbatim (no markup, highlighting or wrapping) above the display."""
        self.console.out(text, highlight=False)

    def render(self, renderable: RenderableType) -> None:
        """Print a rich renderable above the display."""
        self.console.print(renderable)


def make_writer(sink: Sink, fmt: Format) -> ActionWriter:
    """An :class:`ActionWriter` for ``fmt``; for ``table``, checks rich is installed first.

    Raises:
        CommandError: ``fmt`` is ``table`` and rich is missing.
    """
    if fmt == "table":
        require_rich()
    return ActionWriter(sink, fmt)


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def _csv_row(cells: Iterable[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(list(cells))
    return buffer.getvalue()


def actions_table(
    actions: Sequence[AsyncAction], *, header: bool = True, fixed: bool = False
) -> Table:
    """A rich table of actions, one row each, in the order given.

    ``fixed`` gives each of the seven columns the width of its widest documented
    value (115 columns in all), so that successive tables line up. Without it, the
    table has the four main columns (``created_at``, ``id``, ``type``, ``status``)
    and rich fits it to the console, folding long types.
    """
    from rich import box  # rich: the optional extra
    from rich.table import Table

    columns = _COLUMNS if fixed else _COLUMNS[:4]
    table = Table(box=box.SIMPLE_HEAD, show_header=header, show_edge=False, pad_edge=False)
    for name, width, justify in columns:
        table.add_column(
            name,
            justify="right" if justify == "right" else "left",
            min_width=width if fixed else None,
            no_wrap=name in ("created_at", "id"),
            overflow="fold",
        )
    for action in actions:
        cells = [
            _cell(action.created_at),
            action.id,
            _cell(action.type),
            _cell(action.status),
            _cell(action.operation_status),
            _cell(action.progress),
            _cell(action.processing_time),
        ]
        table.add_row(
            *cells[: len(columns)],
            style=status_style(action.status) if action.status == "FAILED" else None,
        )
    return table


def details_renderables(details: AsyncActionDetails) -> list[RenderableType]:
    """One action and its result, as rich renderables: fields, then the result's parts.

    The result's summary fields (``message``, counts, ``reports_available_till``)
    join the field table; ``failed`` and ``errors`` items get a table each (their
    keys as columns); ``reports`` are listed; any other result key is shown as JSON.
    """
    from rich.table import Table  # rich: the optional extra
    from rich.text import Text

    fields = Table(show_header=False, box=None, pad_edge=False)
    fields.add_column(style="bold", no_wrap=True)
    fields.add_column()
    for name, value in action_to_json(details).items():
        if name == "result":
            continue
        cell = Text("" if value is None else str(value), style=status_style(value))
        fields.add_row(name, cell)
    result = details.result
    if result is None:
        fields.add_row("result", Text("none yet", style="dim"))
        return [fields]
    shown = {"message", "done_count", "failed_count", "reports_available_till"}
    for name in ("message", "done_count", "failed_count", "reports_available_till"):
        if name in result:
            fields.add_row(f"result.{name}", _cell(result[name]))
    for name, value in result.items():
        if name not in shown and name not in {"failed", "errors", "reports"}:
            fields.add_row(f"result.{name}", json.dumps(value, ensure_ascii=False))
    renderables: list[RenderableType] = [fields]
    for name, items in (("failed", result.failed), ("errors", result.errors)):
        if items:
            renderables.append(_items_table(f"result.{name}", items))
    if result.reports:
        reports = Table(title="result.reports", box=None, show_header=False, title_justify="left")
        reports.add_column()
        for url in result.reports:
            reports.add_row(url)
        renderables.append(reports)
    return renderables


def _items_table(title: str, items: Iterable[Any]) -> Table:
    from rich import box  # rich: the optional extra
    from rich.table import Table

    rows = [item if isinstance(item, Mapping) else {"value": item} for item in items]
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(_cell(row.get(column)) for column in columns))
    return table
