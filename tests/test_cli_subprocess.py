"""The command line as users run it: ``python -m voucherify_async ...`` in a subprocess.

Against the fake (the ``fake_voucherify`` fixture, serving from a thread of this
process): streaming to a pipe, the demo, rich missing, Ctrl-C, a reader that goes
away, and ``fake-server`` standalone, with the vendor's own SDK pointed at it. No
assertion is about time: the machine is shared.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from voucherify_async.testing import (
    FAKE_APP_ID,
    FAKE_APP_TOKEN,
    FakeVoucherify,
    generate_actions,
)

# Output that must never appear: a traceback, a leaked session or task, a warning.
DIRT = ("Traceback", "Unclosed", "Task was destroyed", "Exception ignored", "Warning")
WAIT = 60  # seconds: a bound against hanging forever, not a performance claim


def cli(*argv: str) -> list[str]:
    """The command line run as ``python -m voucherify_async``, warnings shown."""
    return [sys.executable, "-W", "default", "-m", "voucherify_async", *argv]


def environment(fake: FakeVoucherify | None = None, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("VOUCHERIFY_") and key not in ("COLUMNS", "FORCE_COLOR")
    }
    if fake is not None:
        env.update(
            VOUCHERIFY_APP_ID=FAKE_APP_ID,
            VOUCHERIFY_APP_TOKEN=FAKE_APP_TOKEN,
            VOUCHERIFY_API_URL=fake.base_url,
        )
    env.update(extra)
    return env


def run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603  # this interpreter, our own command
        argv, capture_output=True, text=True, env=env, timeout=WAIT, check=False
    )


def assert_clean(stderr: str) -> None:
    for dirt in DIRT:
        assert dirt not in stderr, stderr


def read_line(process: subprocess.Popen[str]) -> str:
    """The next line of the process's stdout, or fail after ``WAIT`` seconds."""
    assert process.stdout is not None
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(process.stdout.readline).result(timeout=WAIT)


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes started by a test; any still running at its end is killed."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_list_all_jsonl_to_a_pipe_streams_every_action_once(
    fake_voucherify: FakeVoucherify,
) -> None:
    """Credentials and URL from the environment; stdout is pure JSON Lines; stderr empty."""
    fake_voucherify.shuffle_ties = True
    result = run(
        cli("list", "--all", "--page-size", "40", "--format", "jsonl"), environment(fake_voucherify)
    )
    assert (result.returncode, result.stderr) == (0, "")
    ids = [json.loads(line)["id"] for line in result.stdout.splitlines()]
    assert sorted(ids) == sorted(a["id"] for a in fake_voucherify.actions)
    assert len(ids) == len(set(ids))


def test_errors_are_one_line_with_exit_code_1(fake_voucherify: FakeVoucherify) -> None:
    result = run(cli("get", "aa_00000000000000beef"), environment(fake_voucherify))
    assert result.returncode == 1
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("voucherify-async: error: HTTP 404 not_found: ")
    assert "request id: v-" in line

    wrong = environment(fake_voucherify, VOUCHERIFY_APP_TOKEN="wrong")
    result = run(cli("list", "--format", "json"), wrong)
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert "HTTP 401 unauthorized" in line


def test_usage_error_exits_2(fake_voucherify: FakeVoucherify) -> None:
    result = run(cli("list", "--limit", "0"), environment(fake_voucherify))
    assert result.returncode == 2
    assert "argument --limit: must be 1 or more, not 0" in result.stderr
    assert_clean(result.stderr)


def test_demo_runs_with_no_credentials_and_no_network() -> None:
    """The README's first command: every action once, a summary, the latest failure."""
    result = run(cli("demo"), environment())
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    out = " ".join(result.stdout.split())
    assert "5,000 actions, each exactly once (5,000 distinct of 5,000 served, 0 missing)" in out
    assert "actions by type and status" in out
    assert "most recent failed action, fetched with get_async_action" in out


def test_the_console_script_is_installed() -> None:
    """``voucherify-async`` (pyproject's [project.scripts]) runs the same main."""
    script = Path(sys.executable).with_name("voucherify-async")
    if not script.exists():
        found = shutil.which("voucherify-async")
        if found is None:
            pytest.skip("the project is not installed in this environment")
        script = Path(found)
    result = run([str(script), "--version"], environment())
    assert result.returncode == 0
    assert result.stdout.startswith("voucherify-async ")


# Runs the command line with rich made unimportable, as without the "cli" extra.
WITHOUT_RICH = (
    "import sys; sys.modules['rich'] = None; "
    "from voucherify_async._cli import main; sys.exit(main(sys.argv[1:]))"
)


@pytest.mark.parametrize(
    "argv", [["demo"], ["list"], ["list", "--all", "--format", "table"], ["get", "aa_1"]]
)
def test_without_rich_table_commands_say_how_to_install_it(
    argv: list[str], fake_voucherify: FakeVoucherify
) -> None:
    result = run([sys.executable, "-c", WITHOUT_RICH, *argv], environment(fake_voucherify))
    assert result.returncode == 1
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line == (
        "voucherify-async: error: this command needs rich, from the 'cli' extra: "
        'pip install "voucherify-async[cli]"'
    )
    assert fake_voucherify.requests == []  # refused before any request


def test_without_rich_the_plain_formats_still_work(fake_voucherify: FakeVoucherify) -> None:
    argv = ["list", "--all", "--format", "jsonl"]
    result = run([sys.executable, "-c", WITHOUT_RICH, *argv], environment(fake_voucherify))
    assert (result.returncode, result.stderr) == (0, "")
    assert len(result.stdout.splitlines()) == len(fake_voucherify.actions)


def test_ctrl_c_stops_a_stream_cleanly_with_exit_code_130(
    fake_voucherify: FakeVoucherify, processes: list[subprocess.Popen[str]]
) -> None:
    """SIGINT mid-stream: one line, no traceback, no unclosed session, no stray task."""
    fake_voucherify.latency = 0.2
    process = subprocess.Popen(  # noqa: S603  # this interpreter, our own command
        cli("list", "--all", "--page-size", "10", "--format", "jsonl"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(fake_voucherify),
    )
    processes.append(process)
    first = json.loads(read_line(process))
    assert first["id"] == fake_voucherify.actions[0]["id"]
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=WAIT)
    assert process.returncode == 130
    assert stderr == "voucherify-async: interrupted\n"


def test_a_reader_that_goes_away_ends_the_stream_quietly(
    fake_voucherify: FakeVoucherify, processes: list[subprocess.Popen[str]]
) -> None:
    """``... | head -3``: exit code 141 (128 + SIGPIPE), nothing on stderr."""
    fake_voucherify.set_actions(generate_actions(3_000, seed=5))
    process = subprocess.Popen(  # noqa: S603  # this interpreter, our own command
        cli("list", "--all", "--format", "jsonl"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(fake_voucherify),
    )
    processes.append(process)
    for _ in range(3):
        json.loads(read_line(process))
    assert process.stdout is not None
    process.stdout.close()
    assert process.wait(timeout=WAIT) == 141
    assert process.stderr is not None
    assert process.stderr.read() == ""


# -- fake-server ---------------------------------------------------------------------


def start_fake_server(
    processes: list[subprocess.Popen[str]], *argv: str
) -> tuple[subprocess.Popen[str], str]:
    """``fake-server`` on a free port; returns the process and the URL it printed."""
    process = subprocess.Popen(  # noqa: S603  # this interpreter, our own command
        cli("fake-server", *argv),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(),
    )
    processes.append(process)
    url = read_line(process).strip()
    assert url.startswith("http://127.0.0.1:"), url
    return process, url


def get(url: str, app_id: str = "any-id", app_token: str = "any-token") -> tuple[int, bytes]:  # noqa: S107
    """GET ``url`` with these keys: the status and the body."""
    headers = {"X-App-Id": app_id, "X-App-Token": app_token}
    request = urllib.request.Request(url, headers=headers)  # noqa: S310  # http on loopback
    try:
        with urllib.request.urlopen(request, timeout=WAIT) as response:  # noqa: S310  # loopback
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read()


def stop(process: subprocess.Popen[str], signum: signal.Signals) -> str:
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=WAIT)
    return stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_fake_server_serves_until_a_signal_then_exits_0(
    processes: list[subprocess.Popen[str]], signum: signal.Signals
) -> None:
    """Any non-empty key pair by default; the URL first on stdout; a clean stop."""
    process, url = start_fake_server(processes, "--actions", "120", "--seed", "4")
    status, body = get(f"{url}/v1/async-actions?limit=100")
    assert status == 200
    page = json.loads(body)
    expected = generate_actions(120, seed=4)
    assert [a["id"] for a in page["async_actions"]] == [a["id"] for a in expected[:100]]
    assert page["has_more"] is True
    status, body = get(f"{url}/v1/async-actions/{expected[0]['id']}")
    assert status == 200
    assert json.loads(body)["result"] == expected[0].get("result")
    assert get(f"{url}/v1/async-actions", app_id="")[0] == 401

    stderr = stop(process, signum)
    assert process.returncode == 0
    assert "fake Voucherify Async Actions API at " + url in stderr
    assert "GET /v1/async-actions?limit=100" in stderr  # the request log
    assert stderr.endswith("fake server stopped\n")
    assert_clean(stderr)


def test_fake_server_is_strict_with_app_keys_and_injects_faults(
    processes: list[subprocess.Popen[str]],
) -> None:
    process, url = start_fake_server(
        processes, "--app-id", "my-id", "--app-token", "my-token", "--faults", "503:1", "--quiet"
    )
    status, body = get(f"{url}/v1/async-actions", "my-id", "my-token")
    assert status == 503  # the fault takes every request (rate 1)
    assert json.loads(body)["key"] == "service_unavailable"
    stderr = stop(process, signal.SIGINT)
    assert process.returncode == 0
    assert "GET /v1/async-actions" not in stderr  # --quiet
    assert_clean(stderr)

    process, url = start_fake_server(processes, "--app-id", "my-id", "--app-token", "my-token")
    assert get(f"{url}/v1/async-actions", "my-id", "my-token")[0] == 200
    assert get(f"{url}/v1/async-actions", "my-id", "other-token")[0] == 401
    stop(process, signal.SIGINT)
    assert process.returncode == 0


def test_fake_server_enforces_a_rate_limit(processes: list[subprocess.Popen[str]]) -> None:
    process, url = start_fake_server(processes, "--rate-limit", "2/3600")
    assert [get(f"{url}/v1/async-actions")[0] for _ in range(3)] == [200, 200, 429]
    stderr = stop(process, signal.SIGINT)
    assert "[429: over --rate-limit]" in stderr


def test_the_vendor_sdk_lists_a_page_from_the_fake_server(
    processes: list[subprocess.Popen[str]],
) -> None:
    """The vendor's own synchronous SDK, pointed at ``fake-server``, lists a page, with
    the ``end_date`` form it sends (``2022-09-06T00:00:00.000000+0000``)."""
    voucherify = pytest.importorskip("voucherify")
    process, url = start_fake_server(processes, "--actions", "300", "--seed", "2")
    configuration = voucherify.Configuration(
        host=url, api_key={"X-App-Id": "sdk-id", "X-App-Token": "sdk-token"}
    )
    expected = generate_actions(300, seed=2)
    end_date = datetime.fromisoformat(expected[50]["created_at"]).astimezone(UTC)
    with voucherify.ApiClient(configuration) as api_client:
        api = voucherify.AsyncActionsApi(api_client)
        page = api.list_async_actions(limit=25, end_date=end_date)
        details = api.get_async_action(page.async_actions[0].id)
    older = [a for a in expected if datetime.fromisoformat(a["created_at"]) < end_date]
    assert [a.id for a in page.async_actions] == [a["id"] for a in older[:25]]
    assert page.has_more is True
    assert details.id == older[0]["id"]
    stderr = stop(process, signal.SIGINT)
    assert process.returncode == 0
    sent = next(line for line in stderr.splitlines() if "end_date=" in line)
    # The SDK's own form, microseconds and +0000, read as the API documents.
    assert re.search(r"end_date=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+0000$", sent), sent


def test_fake_server_on_a_chosen_port_and_a_taken_one(
    processes: list[subprocess.Popen[str]],
) -> None:
    first, url = start_fake_server(processes)
    port = url.rsplit(":", 1)[1]
    with socket.socket() as probe:  # a port free a moment ago (port + 1 may be anyone's)
        probe.bind(("127.0.0.1", 0))
        chosen = probe.getsockname()[1]
    second, same = start_fake_server(processes, "--port", str(chosen))
    assert same.endswith(f":{chosen}")
    taken = run(cli("fake-server", "--port", port), environment())
    assert taken.returncode == 1
    (line,) = taken.stderr.splitlines()
    assert line.startswith(f"voucherify-async: error: cannot serve on 127.0.0.1 port {port}")
    for process in (first, second):
        stop(process, signal.SIGINT)
