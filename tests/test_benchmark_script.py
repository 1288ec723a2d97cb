"""The benchmark scripts (docs/benchmarks/) run, so that they cannot rot.

Smoke tests only: ``stream.py`` runs with tiny sizes (``--quick``) and writes what
docs/performance.md shows, and ``profile_stream.py`` profiles a short stream;
nothing here is timed. The server process they start must always stop, also when
the benchmark fails.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "docs" / "benchmarks"
SCRIPT = BENCHMARKS / "stream.py"
PROFILE_SCRIPT = BENCHMARKS / "profile_stream.py"

# Looked up, not imported: the scripts import them in their own process, and importing
# the vendor's SDK here would cost every run of the suite seconds for nothing.
_MISSING = [
    name for name in ("voucherify", "matplotlib", "rich") if not importlib.util.find_spec(name)
]
pytestmark = pytest.mark.skipif(
    bool(_MISSING), reason=f"the benchmark needs the bench and cli extras ({_MISSING})"
)


@pytest.fixture
def serve_fake() -> Iterator[ModuleType]:
    """``docs/benchmarks/serve_fake.py`` imported as a module (its folder is no package)."""
    spec = importlib.util.spec_from_file_location("serve_fake", BENCHMARKS / "serve_fake.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # attrs and typing look classes up by module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def _gone(pid: int) -> bool:
    """Whether process ``pid`` has exited (and was reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _run(
    *arguments: str, new_session: bool = False
) -> tuple[subprocess.CompletedProcess[str], int]:
    """Run a benchmark script with this interpreter, warnings as errors, the repository
    importable; return its outcome and its process id."""
    process = subprocess.Popen(  # noqa: S603  # our own scripts, with this interpreter
        [sys.executable, "-W", "error", *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=new_session,  # its own process group: the server child joins it
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        stdout, stderr = process.communicate(timeout=180)
    finally:
        if process.poll() is None:  # pragma: no cover - only when the script hangs
            process.kill()
            process.communicate()
    outcome = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    return outcome, process.pid


@pytest.mark.slow  # the whole benchmark, if small: .ci/run runs it in its slow step
@pytest.mark.skipif(sys.platform == "win32", reason="checks the process group (POSIX)")
def test_quick_run_writes_the_report_the_plot_and_the_tables_and_stops_the_server(
    tmp_path: Path,
) -> None:
    """``stream.py --quick`` exits 0 with warnings as errors (an unclosed session fails it),
    writes a complete JSON report and a PNG, rewrites the tables of a performance.md it
    finds there, and leaves no process behind."""
    document = tmp_path / "performance.md"
    document.write_text((ROOT / "docs" / "performance.md").read_text(encoding="utf-8"))
    result, pid = _run(str(SCRIPT), "--quick", "--out", str(tmp_path), new_session=True)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr
    with pytest.raises(ProcessLookupError):  # nothing is left in its process group
        os.killpg(pid, 0)

    report = json.loads((tmp_path / "performance.json").read_text(encoding="utf-8"))
    assert (tmp_path / "performance.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert {"raw", "client", "vendor"} <= set(report["streams"])
    plan = report["plan"]
    for name, stream in report["streams"].items():
        assert len(stream["runs"]) == plan["runs"], name
        assert stream["tracemalloc_peak_bytes"] > 0, name
        for run in stream["runs"]:
            assert run["wall"] > 0, name
            assert run["server_cpu"] >= 0, name
    assert {run["actions"] for run in report["streams"]["client"]["runs"]} == {plan["actions"]}
    assert len(report["first_action"]["raw"]) == plan["ttfa_trials"]
    assert len(report["prefetch"]["wall_s"]["on"]) == plan["runs"]
    assert set(report["flatness"]["tracemalloc_peak_bytes"]) == {
        str(plan["small"]),
        str(plan["large"]),
    }
    for name, ratio in report["ratios"].items():
        assert math.isfinite(ratio["median"]), name
        assert ratio["median"] > 0, name
    assert "Ratios" in result.stdout
    text = document.read_text(encoding="utf-8")
    assert f"**Streaming {plan['actions']:,} actions**" in text
    assert text.count("<!-- tables: end -->") == 1


def test_server_process_stops_when_the_with_block_fails(serve_fake: ModuleType) -> None:
    """An exception inside ``with ServerProcess()`` still ends the child."""
    started: list[Any] = []

    def fail_while_serving() -> None:
        with serve_fake.ServerProcess(timeout=60) as server:
            started.append(server)
            assert server.running
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        fail_while_serving()
    (server,) = started
    assert not server.running
    assert _gone(server.pid)


def test_server_process_answers_its_commands(serve_fake: ModuleType) -> None:
    """``actions``, ``latency`` and ``cpu`` answer ``ok``; a bad command raises, and the
    server goes on serving."""
    with serve_fake.ServerProcess(timeout=60) as server:
        assert server.base_url.startswith("http://127.0.0.1:")
        assert server.command("actions 30") == "30"
        assert float(server.command("latency 0.5")) == 0.5
        assert server.cpu_time() > 0
        with pytest.raises(RuntimeError, match="refused 'latency -1'"):
            server.command("latency -1")
        with pytest.raises(RuntimeError, match="unknown command"):
            server.command("jump")
        assert server.command("latency 0") == "0.0"
    server.close()  # idempotent
    assert not server.running


def test_profile_script_reports_areas_and_functions() -> None:
    """``profile_stream.py`` on a short stream prints the areas and the costliest functions."""
    result, _ = _run(str(PROFILE_SCRIPT), "--actions", "300", "--top", "5")
    assert result.returncode == 0, result.stderr
    assert re.search(r"for 300 actions in \d+ requests", result.stdout), result.stdout
    assert "voucherify_async _stream" in result.stdout
    assert "function (own time)" in result.stdout


def test_profile_script_bare_only_streams_for_an_outside_sampler() -> None:
    result, _ = _run(str(PROFILE_SCRIPT), "--actions", "300", "--bare", "--repeat", "2")
    assert result.returncode == 0, result.stderr
    assert re.search(r"2 stream\(s\) of 300 actions in \d+ requests: [0-9.]+ s each", result.stdout)
    assert "function (own time)" not in result.stdout


def test_render_redoes_ratios_plot_and_tables_from_a_report(tmp_path: Path) -> None:
    """``stream.py --render performance.json`` measures nothing and rewrites the outputs."""
    report = json.loads((ROOT / "docs" / "performance.json").read_text(encoding="utf-8"))
    del report["ratios"]  # recomputed from the raw numbers
    saved = tmp_path / "saved.json"
    saved.write_text(json.dumps(report), encoding="utf-8")
    result, _ = _run(str(SCRIPT), "--render", str(saved), "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    rendered = json.loads((tmp_path / "performance.json").read_text(encoding="utf-8"))
    assert rendered["streams"] == report["streams"]
    assert "client/raw wall time" in rendered["ratios"]
    assert (tmp_path / "performance.png").stat().st_size > 0
