"""The ``voucherify-async`` command line, run in-process: ``main(argv)`` against the fake.

Each test calls :func:`voucherify_async._cli.main` with captured stdout/stderr and
checks the exit code and the output: every format, ``--all`` streaming every
action exactly once, credentials from flags and the environment, error exits
(401, 404, usage errors), the progress line only on a terminal, and the demo.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from aioresponses import aioresponses

from voucherify_async._cli import PROG, main
from voucherify_async._cli._demo import NEXT_STEP
from voucherify_async._cli._faults import describe_faults, parse_faults, weighted_faults
from voucherify_async._cli._output import CSV_COLUMNS, action_to_json, iso_utc
from voucherify_async.testing import (
    FAKE_APP_ID,
    FAKE_APP_TOKEN,
    FakeVoucherify,
    Fault,
    generate_actions,
)

ISO_MS_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@pytest.fixture
def env(fake_voucherify: FakeVoucherify, monkeypatch: pytest.MonkeyPatch) -> FakeVoucherify:
    """Credentials and the fake's URL in the environment, as a user would set them."""
    for name in ("VOUCHERIFY_CLUSTER", "VOUCHERIFY_APP_ID", "VOUCHERIFY_APP_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VOUCHERIFY_APP_ID", FAKE_APP_ID)
    monkeypatch.setenv("VOUCHERIFY_APP_TOKEN", FAKE_APP_TOKEN)
    monkeypatch.setenv("VOUCHERIFY_API_URL", fake_voucherify.base_url)
    return fake_voucherify


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No Voucherify variable in the environment."""
    for name in (
        "VOUCHERIFY_APP_ID",
        "VOUCHERIFY_APP_TOKEN",
        "VOUCHERIFY_CLUSTER",
        "VOUCHERIFY_API_URL",
    ):
        monkeypatch.delenv(name, raising=False)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``main(argv)``: exit code, stdout, stderr."""
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def ids_of(fake: FakeVoucherify) -> list[str]:
    return [action["id"] for action in fake.actions]


def one_error_line(stderr: str) -> str:
    """The error output is exactly one line, without a traceback."""
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


# -- list: every format --------------------------------------------------------------


def test_list_jsonl_writes_one_object_a_line_newest_first(
    env: FakeVoucherify, capsys: pytest.CaptureFixture[str]
) -> None:
    """One page of 10 (the default), one compact JSON object a line, datetimes in ms Z."""
    code, out, err = run(capsys, "list", "--format", "jsonl")
    assert (code, err) == (0, "")
    objects = [json.loads(line) for line in out.splitlines()]
    assert [o["id"] for o in objects] == ids_of(env)[:10]
    for obj in objects:
        assert ISO_MS_Z.fullmatch(obj["created_at"])
        assert "result" not in obj
    assert list(objects[0]) == [
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
    ]
    assert env.requests[0].query == {"limit": "10"}


def test_list_json_is_one_array(env: FakeVoucherify, capsys: pytest.CaptureFixture[str]) -> None:
    """--format json: one valid JSON array, pretty-printed."""
    code, out, _ = run(capsys, "list", "--limit", "3", "--format", "json")
    assert code == 0
    assert [a["id"] for a in json.loads(out)] == ids_of(env)[:3]
    assert out.startswith("[\n  {\n")


def test_list_csv_has_a_header_and_one_row_an_action(
    env: FakeVoucherify, capsys: pytest.CaptureFixture[str]
) -> None:
    """--format csv: the documented columns; absent values are empty cells."""
    code, out, _ = run(capsys, "list", "--limit", "25", "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [row["id"] for row in rows] == ids_of(env)[:25]
    expected = {a["id"]: a for a in env.actions[:25]}
    for row in rows:
        action = expected[row["id"]]
        assert row["created_at"] == action["created_at"]
        assert row["status"] == action["status"]
        assert row["operation_status"] == action.get("operation_status", "")


def test_list_table_shows_the_page_and_says_more_exist(
    env: FakeVoucherify, capsys: pytest.CaptureFixture[str]
) -> None:
    """--format table (the default): one row an action, and a caption about the rest."""
    code, out, _ = run(capsys, "list", "--limit", "5")
    assert code == 0
    for action in env.actions[:5]:
        assert action["id"] in out
        assert action["created_at"] in out
        assert action["type"] in out
    assert env.actions[5]["id"] not in out
    assert "more exist: --all streams every one" in out


def test_list_end_date_is_sent_in_the_api_format(
    env: FakeVoucherify, capsys: pytest.CaptureFixture[str]
) -> None:
    """--end-date takes an ISO-8601 date or date-time and is sent as UTC, ms, Z."""
    code, _, _ = run(capsys, "list", "--end-date", "2025-12-31T13:00:00+01:00", "--format", "jsonl")
    assert code == 0
    assert env.requests[0].query["end_date"] == "2025-12-31T12:00:00.000Z"


# -- list --all ----------------------------------------------------------------------


@pytest.mark.parametrize("page_size", ["100", "7"])
def test_list_all_jsonl_streams_every_action_exactly_once(
    env: FakeVoucherify, capsys: pytest.CaptureFixture[str], page_size: str
) -> None:
    """Every stored action, once, newest first, even with ties shuffled on every request."""
    env.shuffle_ties = True
    code, out, err = run(capsys, "list", "--all", "--page-size", page_size, "--format", "jsonl")
    assert (code, err) == (0, "")
    ids = [json.loads(line)["id"] for line in out.splitlines()]
    assert len(ids) == len(set(ids)) == 250
    assert set(ids) == set(ids_of(env))
    created = [json.loads(line)["created_at"] for line in out.splitlines()]
    assert created == sorted(created, reverse=True)


def test_list_all_under_the_inclusive_reading_too(
    env: FakeVoucherify, capsys: pytest.CaptureFixture[str]
) -> None:
    env.end_date_inclusive = True
    code, out, _ = run(capsys, "list", "--all", "--page-size", "9", "--format", "jsonl")
    assert code == 0
    assert [json.loads(line)["id"] for line in out.splitlines()] == ids_of(env)


def test_list_all_json_csv_and_table_hold_every_action(
    env: FakeVoucherify, capsys: pytest.CaptureFixture[str]
) -> None:
    """The other formats stream too, page by page, into one document or table."""
    code, out, _ = run(capsys, "list", "--all", "--format", "json")
    assert code == 0
    assert [a["id"] for a in json.loads(out)] == ids_of(env)

    code, out, _ = run(capsys, "list", "--all", "--format", "csv")
    assert code == 0
    assert [row["id"] for row in csv.DictReader(io.StringIO(out))] == ids_of(env)

    code, out, _ = run(capsys, "list", "--all", "--format", "table")
    assert code == 0
    assert out.count("created_at") == 1  # one header for all the pages
    assert all(action_id in out for action_id in ids_of(env))
    assert "250 actions in 3 requests" in out


def test_counts_agree_with_their_nouns(
    env: FakeVoucherify, capsys: pytest.CaptureFixture[str]
) -> None:
    """Never "1 actions in 1 requests"."""
    code, out, _ = run(capsys, "list", "--all", "--limit", "1")
    assert code == 0
    assert out.splitlines()[-1] == "1 action in 1 request"
    code, out, _ = run(capsys, "list", "--limit", "1")
    assert code == 0
    assert out.splitlines()[-1] == "1 action, newest first; more exist: --all streams every one"
    code, out, _ = run(capsys, "list", "--all", "--limit", "2")
    assert out.splitlines()[-1] == "2 actions in 1 request"


@pytest.mark.parametrize(
    "argv",
    [
        ["list", "--limit", "30"],
        ["list", "--all", "--page-size", "40"],
        ["get", "FAILED_WITH_ITEMS"],
        ["get", "NO_RESULT_YET"],
        ["demo", "--actions", "300"],
    ],
)
def test_tables_written_to_a_file_have_no_trailing_padding(
    argv: list[str], env: FakeVoucherify, capsys: pytest.CaptureFixture[str]
) -> None:
    """Off a terminal, no line of a table (or of the demo) ends with a space."""
    if argv[1] == "FAILED_WITH_ITEMS":
        argv = ["get", _failed_with_items(env)["id"]]
    elif argv[1] == "NO_RESULT_YET":
        pending = next(a for a in env.actions if a["status"] in ("ENQUEUED", "IN_PROGRESS"))
        argv = ["get", pending["id"]]
    code, out, _ = run(capsys, *argv)
    assert code == 0
    assert len(out.splitlines()) > 5
    padded = [line for line in out.splitlines() if line != line.rstrip()]
    assert padded == []


def test_list_all_limit_stops_the_stream_and_its_requests(
    env: FakeVoucherify, capsys: pytest.CaptureFixture[str]
) -> None:
    """--all --limit N writes N actions and asks for no more than it needs."""
    code, out, _ = run(capsys, "list", "--all", "--limit", "30", "--format", "jsonl")
    assert code == 0
    assert [json.loads(line)["id"] for line in out.splitlines()] == ids_of(env)[:30]
    assert len(env.requests) == 1
    assert env.requests[0].query["limit"] == "30"


def test_list_all_with_an_end_date_keeps_only_older_actions(
    env: FakeVoucherify, capsys: pytest.CaptureFixture[str]
) -> None:
    bound = env.actions[100]["created_at"]
    code, out, _ = run(capsys, "list", "--all", "--end-date", bound, "--format", "jsonl")
    assert code == 0
    got = [json.loads(line) for line in out.splitlines()]
    assert got
    assert all(a["created_at"] < bound for a in got)
    assert [a["id"] for a in got] == [a["id"] for a in env.actions if a["created_at"] < bound]


def test_list_all_since_stops_at_that_instant(
    env: FakeVoucherify, capsys: pytest.CaptureFixture[str]
) -> None:
    """--since D: actions created at or after D, and no request for the older history."""
    since = env.actions[30]["created_at"]
    code, out, _ = run(capsys, "list", "--all", "--since", since, "--format", "jsonl")
    assert code == 0
    expected = [a["id"] for a in env.actions if a["created_at"] >= since]
    assert [json.loads(line)["id"] for line in out.splitlines()] == expected
    assert len(env.requests) == 1


def test_list_all_survives_faults_and_logs_the_retries(
    env: FakeVoucherify, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 503 and a dropped connection mid-stream: retried, logged one line each, no loss."""
    env.faults.push(Fault.status(503), endpoint="list")
    code, out, err = run(capsys, "list", "--all", "--format", "jsonl", "--page-size", "50")
    assert code == 0
    assert [json.loads(line)["id"] for line in out.splitlines()] == ids_of(env)
    assert "Traceback" not in err
    retry_lines = [line for line in err.splitlines() if "retrying GET /v1/async-actions" in line]
    assert len(retry_lines) == 1
    assert retry_lines[0].startswith(f"{PROG}: ")
    assert "HTTP 503" in retry_lines[0]


class _Terminal(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def terminal_stderr(monkeypatch: pytest.MonkeyPatch) -> _Terminal:
    """Make stderr a terminal; call it in the test itself: capsys takes sys.stderr back
    from a fixture when the test starts."""
    stderr = _Terminal()
    monkeypatch.setattr("sys.stderr", stderr)
    return stderr


def test_list_all_shows_progress_on_stderr_when_it_is_a_terminal(
    env: FakeVoucherify,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """stderr a terminal, stdout a pipe: a progress display on stderr, pure JSONL on stdout."""
    stderr = terminal_stderr(monkeypatch)
    code = main(["list", "--all", "--format", "jsonl"])
    out = capsys.readouterr().out
    assert code == 0
    assert [json.loads(line)["id"] for line in out.splitlines()] == ids_of(env)
    progress = stderr.getvalue()
    assert "actions" in progress
    assert "requests" in progress
    assert "\x1b[" in progress  # drawn live, with control sequences


def test_on_one_terminal_the_rows_scroll_above_the_progress_line(
    env: FakeVoucherify, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """stdout and stderr both the terminal: every row printed once, through the display."""
    stderr = terminal_stderr(monkeypatch)
    monkeypatch.setattr("sys.stdout", _Terminal())
    assert main(["list", "--all", "--format", "jsonl"]) == 0
    screen = stderr.getvalue()
    assert all(screen.count(action_id) == 1 for action_id in ids_of(env))
    assert "requests" in screen


def test_list_all_shows_no_progress_when_stderr_is_not_a_terminal(
    env: FakeVoucherify, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "list", "--all", "--format", "csv")
    assert (code, err) == (0, "")


def test_one_page_shows_no_progress_even_on_a_terminal(
    env: FakeVoucherify, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stderr = terminal_stderr(monkeypatch)
    assert main(["list", "--format", "jsonl"]) == 0
    assert stderr.getvalue() == ""


# -- get -----------------------------------------------------------------------------


def _failed_with_items(fake: FakeVoucherify) -> dict[str, Any]:
    return next(
        a for a in fake.actions if a["status"] == "FAILED" and a.get("result", {}).get("failed")
    )


def test_get_json_is_the_action_with_its_result(
    env: FakeVoucherify, capsys: pytest.CaptureFixture[str]
) -> None:
    action = _failed_with_items(env)
    code, out, _ = run(capsys, "get", action["id"], "--format", "json")
    assert code == 0
    got = json.loads(out)
    assert got["id"] == action["id"]
    assert got["result"] == action["result"]
    assert got["created_at"] == action["created_at"]
    assert list(got)[-1] == "result"


def test_get_table_shows_fields_result_and_failed_items(
    env: FakeVoucherify, capsys: pytest.CaptureFixture[str]
) -> None:
    action = _failed_with_items(env)
    code, out, _ = run(capsys, "get", action["id"])
    assert code == 0
    assert action["id"] in out
    assert action["created_at"] in out
    assert action["result"]["message"] in out
    assert "result.failed" in out
    for item in action["result"]["failed"]:
        assert item["reason"] in out


def test_get_table_of_an_action_without_result_yet(
    env: FakeVoucherify, capsys: pytest.CaptureFixture[str]
) -> None:
    action = next(a for a in env.actions if a["status"] in ("ENQUEUED", "IN_PROGRESS"))
    code, out, _ = run(capsys, "get", action["id"])
    assert code == 0
    assert "none yet" in out


# -- errors --------------------------------------------------------------------------


def test_unknown_action_is_one_line_with_status_key_message_and_request_id(
    env: FakeVoucherify, capsys: pytest.CaptureFixture[str]
) -> None:
    """404: exit code 1, one line on stderr, nothing on stdout."""
    code, out, err = run(capsys, "get", "aa_00000000000000dead")
    assert (code, out) == (1, "")
    line = one_error_line(err)
    assert line.startswith(f"{PROG}: error: HTTP 404 not_found: Resource not found")
    assert re.search(r"request id: v-[0-9a-f]{18}$", line)


def test_wrong_credentials_are_one_line_with_401(
    env: FakeVoucherify, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "list", "--app-id", "someone-else", "--format", "jsonl")
    assert (code, out) == (1, "")
    line = one_error_line(err)
    assert "HTTP 401 unauthorized: Unauthorized" in line
    assert "request id: v-" in line
    assert "someone-else" not in line  # no credential in any message


def test_an_error_mid_stream_keeps_what_was_written(
    env: FakeVoucherify, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first page is out (flushed), then the second request fails for good: one line."""
    schedule = iter([None, Fault.status(400)])
    monkeypatch.setattr(env.faults, "take", lambda endpoint: next(schedule, None))
    code, out, err = run(capsys, "list", "--all", "--format", "jsonl")
    assert code == 1
    assert [json.loads(line)["id"] for line in out.splitlines()] == ids_of(env)[:100]
    assert "HTTP 400" in one_error_line(err)


def test_a_server_failure_after_the_retries_exits_1(
    env: FakeVoucherify, capsys: pytest.CaptureFixture[str]
) -> None:
    env.faults.push(Fault.status(503), times=2)
    code, _, err = run(capsys, "list", "--max-retries", "0", "--format", "jsonl")
    assert code == 1
    assert "HTTP 503" in one_error_line(err)


@pytest.mark.parametrize(
    "argv",
    [
        ["list", "--limit", "0"],
        ["list", "--limit", "many"],
        ["list", "--format", "xml"],
        ["list", "--end-date", "yesterday"],
        ["list", "--end-date", "2024-06-01T12:00:00"],  # no zone: ambiguous
        ["list", "--timeout", "0"],
        ["list", "--rate-limit", "0/60"],
        ["get"],
        ["get", "aa_1/../../x"],
        ["get", "aa_1", "--format", "csv"],
        ["fake-server", "--faults", "503:2"],
        ["fake-server", "--faults", "teapot:0.1"],
        ["fake-server", "--port", "70000"],
        ["demo", "--actions", "0"],
        ["frobnicate"],
        [],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """argparse's own errors: usage and one error line on stderr, exit code 2."""
    code, out, err = run(capsys, *argv)
    assert (code, out) == (2, "")
    assert "error:" in err.splitlines()[-1]
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["list", "--page-size", "10"], "--page-size goes with --all"),
        (["list", "--since", "2024-01-01"], "--since goes with --all"),
        (["list", "--limit", "101"], "--limit is 1 to 100 for one page"),
        (
            ["list", "--oauth-token", "t", "--app-id", "i"],
            "pass either --app-id and --app-token, or --oauth-token",
        ),
        (["list", "--cluster", "api", "--base-url", "https://x.example"], "not both"),
        (["list", "--base-url", "http://example.com"], "must use https"),
        (
            ["list", "--cluster", "no such cluster"],
            "is not a Voucherify cluster: use one of api, us1.api, as1.api",
        ),
        (
            ["list", "--cluster", "eu1"],
            "--cluster 'eu1' is not a Voucherify cluster: use one of api, us1.api, as1.api",
        ),
        (
            ["list", "--all", "--since", "2024-06-02", "--end-date", "2024-06-01"],
            "--since 2024-06-02T00:00:00.000Z is later than --end-date 2024-06-01T00:00:00.000Z",
        ),
        (["fake-server", "--app-id", "only-the-id"], "--app-id and --app-token go together"),
    ],
)
def test_usage_errors_found_after_parsing_exit_2_with_one_line(
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VOUCHERIFY_APP_ID", "id")
    monkeypatch.setenv("VOUCHERIFY_APP_TOKEN", "token")
    code, out, err = run(capsys, *argv)
    assert (code, out) == (2, "")
    line = one_error_line(err)
    assert line.startswith(f"{PROG} {argv[0]}: error: ")
    assert message in line


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["list", "--timeout", "-1"], "argument --timeout: must be more than 0 seconds, not -1"),
        (["list", "--timeout", "0"], "argument --timeout: must be more than 0 seconds, not 0"),
        (
            ["list", "--timeout", "inf"],
            "argument --timeout: must be a finite number of seconds, not 'inf'",
        ),
        (
            ["fake-server", "--latency", "-0.5"],
            "argument --latency: must be 0 seconds or more, not -0.5",
        ),
        (
            ["list", "--end-date", "yesterday"],
            "argument --end-date: 'yesterday' is not a date (2024-06-01) or a date-time "
            "with its zone (2024-06-01T12:00:00Z)",
        ),
        (
            ["list", "--all", "--since", "2024-06-01T12:00:00"],
            "argument --since: '2024-06-01T12:00:00' has no time zone: add Z for UTC or an "
            "offset, as in 2024-06-01T12:00:00Z or 2024-06-01T12:00:00+02:00",
        ),
        (
            ["get", "aa_1/../x"],
            "argument ID: 'aa_1/../x' is not an async action id (letters, digits, _ and -, "
            "as in aa_0ba518c55290c6fd62)",
        ),
    ],
)
def test_bad_values_are_named_by_their_flag_in_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The flag's name, the command line's own words: no Python parameter name
    (``end_date``), no Python exception text appended."""
    code, out, err = run(capsys, *argv)
    assert (code, out) == (2, "")
    assert err.splitlines()[-1] == f"{PROG} {argv[0]}: error: {message}"
    for python_words in ("end_date", "since '", "async_action_id", "isoformat", "Invalid"):
        assert python_words not in err


def test_since_equal_to_end_date_is_accepted(
    env: FakeVoucherify, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only a --since later than --end-date is refused; the same instant is a question
    the API can answer (under an inclusive reading, the actions of that millisecond)."""
    moment = env.actions[10]["created_at"]
    code, _, err = run(
        capsys, "list", "--all", "--since", moment, "--end-date", moment, "--format", "jsonl"
    )
    assert (code, err) == (0, "")


def test_an_unknown_cluster_in_the_environment_is_refused_before_any_request(
    no_env: None,
    mock_api: aioresponses,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """VOUCHERIFY_CLUSTER=eu1: exit code 2 at once, the clusters that exist, no DNS."""
    monkeypatch.setenv("VOUCHERIFY_CLUSTER", "eu1")
    code, out, err = run(capsys, "list", "--app-id", "i", "--app-token", "t")
    assert (code, out) == (2, "")
    assert one_error_line(err) == (
        f"{PROG} list: error: VOUCHERIFY_CLUSTER 'eu1' is not a Voucherify cluster: use one "
        "of api, us1.api, as1.api (or a base URL for a dedicated host)"
    )
    assert mock_api.requests == {}


def test_no_credentials_is_a_usage_error(no_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "list")
    assert code == 2
    assert (
        "no credentials: pass --app-id and --app-token (or set VOUCHERIFY_APP_ID"
        in one_error_line(err)
    )


def test_both_places_in_the_environment_is_a_usage_error(
    no_env: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOUCHERIFY_API_URL", "https://eu.example.com")
    monkeypatch.setenv("VOUCHERIFY_CLUSTER", "us1.api")
    code, _, err = run(capsys, "list", "--app-id", "i", "--app-token", "t")
    assert code == 2
    assert "VOUCHERIFY_API_URL and VOUCHERIFY_CLUSTER are both set" in one_error_line(err)


# -- credentials and place -----------------------------------------------------------


def test_credentials_and_url_from_flags(
    fake_voucherify: FakeVoucherify, no_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        capsys,
        "list",
        "--app-id",
        FAKE_APP_ID,
        "--app-token",
        FAKE_APP_TOKEN,
        "--base-url",
        fake_voucherify.base_url,
        "--format",
        "jsonl",
        "--limit",
        "2",
    )
    assert code == 0
    assert len(out.splitlines()) == 2
    headers = fake_voucherify.requests[0].headers
    assert (headers["x-app-id"], headers["x-app-token"]) == (FAKE_APP_ID, FAKE_APP_TOKEN)


def test_flags_win_over_the_environment(
    env: FakeVoucherify, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOUCHERIFY_APP_TOKEN", "a wrong token from the environment")
    code, _, _ = run(capsys, "list", "--app-token", FAKE_APP_TOKEN, "--format", "jsonl")
    assert code == 0


def test_oauth_token_is_sent_as_a_bearer_token(
    env: FakeVoucherify, capsys: pytest.CaptureFixture[str]
) -> None:
    env.oauth_token = "my-oauth-token"
    code, _, _ = run(capsys, "list", "--oauth-token", "my-oauth-token", "--format", "jsonl")
    assert code == 0
    headers = env.requests[0].headers
    assert headers["authorization"] == "Bearer my-oauth-token"
    assert "x-app-id" not in headers


@pytest.mark.parametrize(
    ("flags", "variables", "host"),
    [
        ([], {}, "api.voucherify.io"),
        ([], {"VOUCHERIFY_CLUSTER": "us1.api"}, "us1.api.voucherify.io"),
        (["--cluster", "as1.api"], {"VOUCHERIFY_CLUSTER": "us1.api"}, "as1.api.voucherify.io"),
        ([], {"VOUCHERIFY_API_URL": "https://dedicated.example.com"}, "dedicated.example.com"),
        (
            ["--cluster", "us1.api"],
            {"VOUCHERIFY_API_URL": "https://dedicated.example.com"},
            "us1.api.voucherify.io",
        ),
    ],
)
def test_the_api_host_comes_from_flags_or_the_environment(
    flags: list[str],
    variables: dict[str, str],
    host: str,
    no_env: None,
    mock_api: aioresponses,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--cluster / --base-url, else VOUCHERIFY_API_URL or VOUCHERIFY_CLUSTER, else api."""
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    page = {"object": "list", "data_ref": "async_actions", "async_actions": [], "has_more": False}
    mock_api.get(
        re.compile(rf"^https://{re.escape(host)}/v1/async-actions\?limit=10$"), payload=page
    )
    code, out, err = run(
        capsys, "list", "--app-id", "i", "--app-token", "t", "--format", "json", *flags
    )
    assert (code, out, err) == (0, "[]\n", "")


# -- help ----------------------------------------------------------------------------


@pytest.mark.parametrize("command", [[], ["demo"], ["list"], ["get"], ["fake-server"]])
def test_help_of_every_command_shows_an_example(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, *command, "--help")
    assert code == 0
    assert re.search(r"^examples?:$", out, re.MULTILINE)
    assert f"  {PROG} {command[0] if command else 'demo'}" in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from voucherify_async import __version__

    assert run(capsys, "--version") == (0, f"{PROG} {__version__}\n", "")


# -- demo ----------------------------------------------------------------------------


def test_demo_streams_every_action_once_and_summarises(
    capsys: pytest.CaptureFixture[str], no_env: None
) -> None:
    """Counts by type and status, the walk's facts, and the latest failure's result."""
    code, out, err = run(capsys, "demo", "--actions", "1500", "--faults", "503:0.3,drop:0.1")
    assert (code, err) == (0, "")
    out = " ".join(out.split())  # the summary wraps at 80 columns off a terminal
    assert "actions by type and status" in out
    for status in ("DONE", "FAILED", "IN_PROGRESS", "ENQUEUED"):
        assert status in out
    assert "CAMPAIGN.VOUCHERS_IMPORT" in out
    assert "1,500 actions, each exactly once (1,500 distinct of 1,500 served, 0 missing)" in out
    assert re.search(r"speed [\d,]+ actions/s", out)
    requests = re.search(r"requests (\d+) requests for (\d+) pages \((\d+) sent again", out)
    assert requests, out
    sent, pages, again = map(int, requests.groups())
    assert sent - pages == again > 0
    assert re.search(rf"faults 503 30%, drop 10%: {again} injected \(503 x\d+, drop x\d+\)", out)
    assert re.search(r"ties [\d,]+ actions share their millisecond", out)
    assert "most recent failed action, fetched with get_async_action: aa_" in out
    assert "result.message" in out
    # The user's words, not the code's; and the next step last.
    assert "requests_made" not in out
    assert "aiohttp" not in out
    assert out.endswith(" ".join(NEXT_STEP.split()))
    assert "docs/quickstart.md" in NEXT_STEP


def test_demo_without_faults_sends_one_request_a_page(
    capsys: pytest.CaptureFixture[str], no_env: None
) -> None:
    """No fault, nothing sent again; singular and plural agree with the numbers."""
    code, out, _ = run(capsys, "demo", "--actions", "1", "--faults", "none")
    assert code == 0
    out = " ".join(out.split())
    assert "1 action, each exactly once (1 distinct of 1 served, 0 missing)" in out
    assert "requests 1 request for 1 page faults none: 0 injected" in out


def test_demo_is_exact_under_the_inclusive_reading_too(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "demo", "--actions", "700", "--inclusive", "--page-size", "13")
    assert code == 0
    out = " ".join(out.split())
    assert "700 actions, each exactly once" in out
    assert "read as inclusive" in out


# -- the pieces ----------------------------------------------------------------------


def test_no_function_of_the_command_line_is_over_60_lines() -> None:
    """Every function and method in voucherify_async/_cli/, decorators to last line."""
    import ast

    import voucherify_async._cli

    package = Path(voucherify_async._cli.__file__).parent
    lengths = {}
    for module in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                assert node.end_lineno is not None
                lengths[f"{module.name}:{node.name}"] = node.end_lineno - first + 1
    assert len(lengths) > 50  # the walk found the package's functions
    assert {name: n for name, n in lengths.items() if n > 60} == {}


def test_trimmed_lines_hold_spaces_until_they_know_what_follows() -> None:
    """Spaces before a line break are dropped, spaces before more text kept, across writes."""
    from voucherify_async._cli._console import _TrimmedLines

    out = io.StringIO()
    stream = _TrimmedLines(out)
    for part in ["ab  ", " \ncd ", " e  \n", "x", "  ", "y\n\n  z ", "\x1b[1m  \x1b[0m\n"]:
        stream.write(part)
    assert out.getvalue() == "ab\ncd  e\nx  y\n\n  z \x1b[1m\x1b[0m\n"


def test_faults_syntax() -> None:
    """KIND:RATE items: statuses, NNN-html, drop, html, truncated, delay=SECONDS."""
    specs = parse_faults("503:0.1, drop:0.05,429:0.05,502-html:0.01,html:0.01,truncated:0.01")
    assert [(fault.kind, fault.code, fault.as_html) for fault, _ in specs] == [
        ("status", 503, False),
        ("drop", 200, False),
        ("status", 429, False),
        ("status", 502, True),
        ("html", 200, False),
        ("truncated", 200, False),
    ]
    assert specs[2][0].retry_after == 1
    ((delay, rate),) = parse_faults("delay=2.5:0.5")
    assert (delay.kind, delay.seconds, rate) == ("delay", 2.5, 0.5)
    assert parse_faults("none") == parse_faults("") == []
    assert describe_faults(specs[:2]) == "503 10%, drop 5%"


@pytest.mark.parametrize(
    "text",
    [
        "503",
        "503:",
        ":0.1",
        "503:0",
        "503:1.5",
        "503:x",
        "200:0.1",
        "600:0.1",
        "teapot:0.1",
        "delay=x:0.1",
        "delay=-1:0.1",
        "503:0.6,drop:0.6",
        "503:0.0001",
    ],
)
def test_bad_faults_are_refused(text: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011  # each message differs; the CLI shows it
        parse_faults(text)


def test_fault_rates_are_kept_when_kinds_share_one_draw() -> None:
    """503:0.1,drop:0.05,429:0.05 -> total 0.2, kinds 2:1:1."""
    rate, kinds = weighted_faults(parse_faults("503:0.1,drop:0.05,429:0.05"))
    assert rate == pytest.approx(0.2)
    names = [f"{fault.kind}{fault.code}" for fault in kinds]
    assert sorted(names) == ["drop200", "status429", "status503", "status503"]


def test_json_of_an_action_uses_the_api_names_strings_and_ms_z() -> None:
    from voucherify_async._convert import make_converter
    from voucherify_async._models import AsyncActionDetails

    raw = next(a for a in generate_actions(100, seed=2) if a.get("result"))
    details = make_converter().structure(raw, AsyncActionDetails)
    as_json = action_to_json(details)
    assert as_json == {key: raw.get(key) for key in as_json}
    assert json.loads(json.dumps(as_json)) == as_json
    assert iso_utc(details.created_at) == raw["created_at"]


# -- docs/cli.md shows what the commands print ----------------------------------------

CLI_PAGE = Path(__file__).parent.parent / "docs" / "cli.md"


def text_blocks() -> list[str]:
    """The ``text`` code blocks of docs/cli.md: printed output."""
    return re.findall(r"```text\n(.*?)```", CLI_PAGE.read_text(encoding="utf-8"), re.DOTALL)


def block_starting(prefix: str) -> str:
    return next(block for block in text_blocks() if block.startswith(prefix))


def test_the_cli_page_shows_what_list_prints(
    env: FakeVoucherify, capsys: pytest.CaptureFixture[str]
) -> None:
    """The table, the JSON Lines object and the counts, against fake-server's 1,000 actions."""
    env.set_actions(generate_actions(1000, seed=0))
    assert run(capsys, "list", "--limit", "3")[1] in text_blocks()
    assert run(capsys, "list", "--limit", "1", "--format", "jsonl")[1] in text_blocks()
    page = CLI_PAGE.read_text(encoding="utf-8")
    for argv in (["list", "--all"], ["list", "--all", "--limit", "1"]):
        assert f"`{run(capsys, *argv)[1].splitlines()[-1]}`" in page


def test_the_cli_page_shows_the_usage_errors_as_printed(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOUCHERIFY_APP_ID", "id")
    monkeypatch.setenv("VOUCHERIFY_APP_TOKEN", "token")
    block = block_starting(f"{PROG} list: error: argument --timeout")
    commands = [
        ["list", "--timeout", "-1"],
        ["list", "--end-date", "yesterday"],
        ["list", "--cluster", "eu1"],
        ["list", "--all", "--since", "2024-06-02", "--end-date", "2024-06-01"],
    ]
    for line, argv in zip(block.splitlines(), commands, strict=True):
        code, _, err = run(capsys, *argv)
        assert (code, err.splitlines()[-1]) == (2, line)


def test_the_cli_page_shows_what_the_demo_prints(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, no_env: None
) -> None:
    """Every line shown, in order, but the elisions; speeds and times (which vary) are
    compared by their shape."""

    def shape(line: str) -> str:
        line = re.sub(r" +[\d,]+ actions/s", " N actions/s", line)  # right-aligned: any width
        line = re.sub(r"\(\d+\.\d\d s,", "(T s,", line)
        return re.sub(r"\d:\d\d:\d\d$", "H:MM:SS", line)

    monkeypatch.setenv("COLUMNS", "100")  # "in a terminal 100 columns wide"
    code, out, _ = run(capsys, "demo")
    assert code == 0
    printed = iter([shape(line) for line in out.splitlines()])
    shown = block_starting(f"{PROG} demo: ").splitlines()
    for line in shown:
        if line.strip() != "...":
            assert shape(line) in printed, line  # consumes the output up to it: order kept
    assert sum(line.strip() == "..." for line in shown) == 2
