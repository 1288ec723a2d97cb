"""Every Python example in README.md and docs/ runs, against the fake server, so none can rot."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

import voucherify_async
from voucherify_async.testing import FAKE_APP_ID, FAKE_APP_TOKEN, FakeVoucherify

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _examples() -> list[Any]:
    found = []
    for document in DOCUMENTS:
        text = document.read_text(encoding="utf-8")
        for number, match in enumerate(BLOCK.finditer(text), start=1):
            line = text.count("\n", 0, match.start()) + 2
            name = f"{document.relative_to(ROOT)}:{line}"
            found.append(pytest.param(match.group(1), id=name or f"block{number}"))
    return found


EXAMPLES = _examples()


def test_the_documents_have_python_examples() -> None:
    """Guards the collection below: a broken pattern would silently test nothing."""
    assert len(EXAMPLES) >= 3
    readme_blocks = BLOCK.findall((ROOT / "README.md").read_text(encoding="utf-8"))
    assert len(readme_blocks) >= 3


async def _exercise_app(app: web.Application) -> None:
    """Serve the example's app on loopback and GET every route it registers."""
    server = TestServer(app)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            paths = [
                route.resource.canonical
                for route in app.router.routes()
                if route.method == "GET" and route.resource is not None
            ]
            assert paths, "the example app registers no GET route"
            for path in paths:
                async with session.get(server.make_url(path)) as response:
                    body = await response.text()
                    assert response.status == 200, body
    finally:
        await server.close()


@pytest.mark.parametrize("source", EXAMPLES)
def test_example_runs_against_the_fake_server(
    source: str,
    fake_voucherify: FakeVoucherify,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Credentials come from the environment, as the examples say; the API is the fake."""
    monkeypatch.setenv("VOUCHERIFY_APP_ID", FAKE_APP_ID)
    monkeypatch.setenv("VOUCHERIFY_APP_TOKEN", FAKE_APP_TOKEN)
    real_client = voucherify_async.VoucherifyClient
    base_url = fake_voucherify.base_url

    class ClientOfTheFake(real_client):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("base_url", base_url)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(voucherify_async, "VoucherifyClient", ClientOfTheFake)
    namespace: dict[str, Any] = {"__name__": "__doc_example__"}
    exec(compile(source, "<doc example>", "exec"), namespace)  # noqa: S102  # our own docs
    if "make_app" in namespace:
        asyncio.run(_exercise_app(namespace["make_app"]()))
    elif "main" in namespace and "asyncio.run(" not in source:
        asyncio.run(namespace["main"]())
    capsys.readouterr()


def test_quickstart_script_runs_and_streams_every_action() -> None:
    """The command in the README's "Try it" section, minus the install."""
    script = ROOT / "docs" / "examples" / "quickstart.py"
    result = subprocess.run(  # noqa: S603  # our own script, with this interpreter
        [sys.executable, "-W", "error", str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr
    assert "streamed 2000 actions" in result.stdout
    assert "most recent failure aa_" in result.stdout


def test_readme_shows_the_command_ci_runs() -> None:
    """.ci/run reads the test command from the block after this marker."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    marker = readme.index("<!-- ci: test command -->")
    block = readme[marker:].split("```", 2)[1]
    assert block.strip().splitlines()[-1] == "python -m pytest"
    assert "ci: test command" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
