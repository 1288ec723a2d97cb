"""Every Python example in README.md and docs/ runs, against the fake server, so none can rot.

Each ```python block runs on its own, with credentials in the environment and
``voucherify_async.VoucherifyClient`` defaulting its ``base_url`` to the fake. Then:

- a block that defines ``make_app()``, or ``app`` as an ``aiohttp.web.Application``,
  is served on loopback and every GET route is fetched (200 expected);
- a block that defines ``app`` as a FastAPI application is run with its lifespan
  (``fastapi.testclient.TestClient``) and every GET route is fetched;
- in those routes, ``{action_id}`` is the fake's newest action;
- a block that defines ``main()`` without calling ``asyncio.run(`` gets it awaited.
"""

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
    assert len(EXAMPLES) >= 10
    readme_blocks = BLOCK.findall((ROOT / "README.md").read_text(encoding="utf-8"))
    assert len(readme_blocks) == 2  # the web handler and the worker


def _concrete(path: str, action_id: str) -> str:
    """A route's path with ``{action_id}`` filled in; no other placeholder is known."""
    path = path.replace("{action_id}", action_id)
    assert "{" not in path, f"the test does not know how to fill the route {path!r}"
    return path


async def _exercise_app(app: web.Application, action_id: str) -> None:
    """Serve the example's aiohttp app on loopback and GET every route it registers."""
    server = TestServer(app)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            paths = [
                _concrete(route.resource.canonical, action_id)
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


def _exercise_asgi_app(app: Any, action_id: str) -> None:
    """Run the example's FastAPI app with its lifespan and GET every route it declares."""
    from fastapi.routing import APIRoute
    from fastapi.testclient import TestClient

    paths = [
        _concrete(route.path, action_id)
        for route in app.routes
        if isinstance(route, APIRoute) and "GET" in route.methods
    ]
    assert paths, "the example app declares no GET route"
    with TestClient(app) as client:
        for path in paths:
            response = client.get(path)
            assert response.status_code == 200, response.text


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
    newest = fake_voucherify.actions[0]["id"]
    app = namespace.get("app")
    if "make_app" in namespace:
        asyncio.run(_exercise_app(namespace["make_app"](), newest))
    elif isinstance(app, web.Application):
        asyncio.run(_exercise_app(app, newest))
    elif app is not None and type(app).__module__.startswith("fastapi"):
        _exercise_asgi_app(app, newest)
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
    """.ci/run reads the test command from the block after this marker: the install of
    the dev extra and the tests, as a fresh machine needs them."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    marker = readme.index("<!-- ci: test command -->")
    block = readme[marker:].split("```", 2)[1]
    assert block.strip().splitlines() == ["sh", 'pip install -e ".[dev]" && python -m pytest']
    assert "ci: test command" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_readme_opens_with_the_demo_then_the_tests() -> None:
    """The top of the README: first the install and the demo, then the test command."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```sh\n(.*?)^```", readme, re.MULTILINE | re.DOTALL)
    assert blocks[0].strip() == 'pip install ".[cli]" && voucherify-async demo'
    assert blocks[1].strip() == 'pip install -e ".[dev]" && python -m pytest'
    assert readme.index(blocks[1]) < readme.index("```python")


def test_readme_examples_are_ten_lines_at_most() -> None:
    """The web handler and the worker examples: at most 10 lines of code each."""
    blocks = BLOCK.findall((ROOT / "README.md").read_text(encoding="utf-8"))
    assert len(blocks) == 2
    for block in blocks:
        assert len([line for line in block.splitlines() if line.strip()]) <= 10, block


def test_the_api_reference_lists_every_public_name() -> None:
    """docs/reference.md names each name of ``voucherify_async.__all__`` for mkdocstrings."""
    reference = (ROOT / "docs" / "reference.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^ +- (\w+)$", reference, re.MULTILINE))
    assert listed == set(voucherify_async.__all__) - {"__version__"}


def test_every_page_is_in_the_site_navigation() -> None:
    """Each Markdown page of docs/ is in docs/mkdocs.yml's nav, and each nav entry exists."""
    config = (ROOT / "docs" / "mkdocs.yml").read_text(encoding="utf-8")
    nav = set(re.findall(r"^  - [^:\n]+: (\S+\.md)$", config, re.MULTILINE))
    pages = {
        path.relative_to(ROOT / "docs").as_posix()
        for path in (ROOT / "docs").glob("**/*.md")
        if "site" not in path.relative_to(ROOT / "docs").parts
    }
    assert nav == pages


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_relative_links_point_at_files_that_exist(document: Path) -> None:
    """Every relative Markdown link (``[text](path#anchor)``) names a file of the repository."""
    text = re.sub(r"^```.*?^```", "", document.read_text(encoding="utf-8"), flags=re.M | re.S)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue  # a URL, or an anchor of the same page (mkdocs --strict checks those)
        path = (document.parent / target.split("#", 1)[0]).resolve()
        assert path.exists(), f"{document.name} links to {target}, which does not exist"
