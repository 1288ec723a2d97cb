"""Every Python example in README.md and docs/ runs as printed, the way a user runs it.

Each ```python block is written to a file of its own and run as ``python file.py``
in a separate process, with no patching of the library: the only setup is the
one docs/quickstart.md gives the user under "Run the examples against the fake
server", read from the page itself:

- the ``voucherify-async fake-server ...`` command in its ``sh`` blocks is
  started as a subprocess (on a free port instead of the page's ``--port 8080``);
  its URL is read from its first line of output;
- its ``export NAME=VALUE`` lines become the example's environment (the page's
  ``http://127.0.0.1:8080`` replaced with the URL the fake printed).

A page may have such a setup of its own (other ``fake-server`` flags): its
examples then use that one.

The convention for output, stated in docs/quickstart.md: a ```text block that
follows a ```python block with nothing but blank lines between them is what the
program prints (stdout and stderr, as a terminal shows them); ``...`` stands for
any text on its line, and a line of only ``...`` for any number of lines. Where
a page shows the output, the test compares it; elsewhere the program must exit 0
and write nothing on stderr (no traceback, no warning, no unclosed session).

An example whose output is compared gets a fake server of its own, freshly
started: the fake has no reset, and request ids or actions started by other
examples would change what it prints. The others share one fake server per
setup for the whole module. The examples mostly wait, so a few run at once.

Other kinds of program are run as their users run them:

- an application (a block that defines ``make_app()``, or ``app`` as an aiohttp or
  FastAPI application) is imported from its file by a separate process, as a
  server (``python -m aiohttp.web``, ``uvicorn``) would; that process serves it
  with its startup and cleanup and GETs every route it declares, 200 expected
  (``{action_id}`` is the fake's newest action);
- a block that defines ``test_*`` functions is a test module: it runs with
  ``python -m pytest``, next to a ``conftest.py`` holding the page's block that
  sets ``pytest_plugins``.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

import voucherify_async

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]
SETUP_PAGE = ROOT / "docs" / "quickstart.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
DOCS_PORT_URL = "http://127.0.0.1:8080"
# Generous: a busy 2-core machine runs these next to other test suites.
RUN_TIMEOUT = 180


@dataclass(frozen=True)
class Example:
    document: Path
    line: int
    source: str
    output: str | None

    @property
    def name(self) -> str:
        return f"{self.document.relative_to(ROOT).as_posix()}:{self.line}"

    @property
    def kind(self) -> str:
        if re.search(r"^def make_app\(", self.source, re.MULTILINE) or re.search(
            r"^app = (web\.Application|FastAPI)\(", self.source, re.MULTILINE
        ):
            return "application"
        if re.search(r"^(async )?def test_", self.source, re.MULTILINE):
            return "test module"
        if re.search(r"^pytest_plugins = ", self.source, re.MULTILINE):
            return "conftest"
        return "program"


def _examples_of(document: Path) -> list[Example]:
    text = document.read_text(encoding="utf-8")
    fences = list(FENCE.finditer(text))
    found = []
    for index, fence in enumerate(fences):
        if fence.group(1) != "python":
            continue
        output = None
        following = fences[index + 1] if index + 1 < len(fences) else None
        if (
            following is not None
            and following.group(1) == "text"
            and not text[fence.end() : following.start()].strip()
        ):
            output = following.group(2)
        line = text.count("\n", 0, fence.start()) + 2
        found.append(Example(document, line, fence.group(2), output))
    return found


EXAMPLES = [example for document in DOCUMENTS for example in _examples_of(document)]


@dataclass(frozen=True)
class Setup:
    """What a page tells the user to run first: the fake server, and the exports."""

    page: Path
    server_args: tuple[str, ...]
    environment: Mapping[str, str]


def _setup_of(page: Path) -> Setup | None:
    server_args: tuple[str, ...] | None = None
    environment: dict[str, str] = {}
    for fence in FENCE.finditer(page.read_text(encoding="utf-8")):
        if fence.group(1) != "sh":
            continue
        for line in fence.group(2).splitlines():
            if not line.startswith(("voucherify-async fake-server", "export ")):
                continue
            words = shlex.split(line, comments=True)
            if words[:2] == ["voucherify-async", "fake-server"]:
                server_args = tuple(words[2:])
            elif words[:1] == ["export"]:
                for assignment in words[1:]:
                    name, _, value = assignment.partition("=")
                    environment[name] = value
    if server_args is None or not environment:
        return None
    return Setup(page, server_args, environment)


def _setup_for(document: Path) -> Setup:
    setup = _setup_of(document) or _setup_of(SETUP_PAGE)
    assert setup is not None, f"{SETUP_PAGE.name} no longer shows the fake server setup"
    return setup


def _command_line() -> list[str]:
    """``voucherify-async``, the console script installed next to this interpreter."""
    script = Path(sys.executable).parent / "voucherify-async"
    return [str(script)] if script.exists() else [sys.executable, "-m", "voucherify_async"]


def _on_a_free_port(args: tuple[str, ...]) -> list[str]:
    """The page's fake-server arguments with ``--port N`` made ``--port 0``: any free port."""
    words = list(args)
    if "--port" in words:
        words[words.index("--port") + 1] = "0"
    return words


class FakeServer:
    """``voucherify-async fake-server`` as the page starts it, in a subprocess."""

    def __init__(self, setup: Setup) -> None:
        self.process = subprocess.Popen(  # noqa: S603  # our own command line
            [*_command_line(), "fake-server", *_on_a_free_port(setup.server_args), "--quiet"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()
        assert self.url.startswith("http://127.0.0.1:"), f"fake-server printed {self.url!r}"
        self.environment = {
            name: value.replace(DOCS_PORT_URL, self.url)
            for name, value in setup.environment.items()
        }

    def stop(self) -> None:
        self.process.terminate()
        try:
            assert self.process.wait(timeout=30) == 0
        finally:
            if self.process.poll() is None:
                self.process.kill()
            assert self.process.stdout is not None
            self.process.stdout.close()


# Examples mostly wait (on the fake, on a pace, on an action to finish): a few run at
# once. Those that share a server only check their exit and stderr, so order is free.
PARALLEL_RUNS = 4


@pytest.fixture(scope="module")
def example_runs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, subprocess.CompletedProcess[str] | BaseException]]:
    """Run every example this session selected, a few at a time: those that show their
    output each next to a fake server of its own, the others next to one shared fake
    server per setup. Each result is keyed by the example's name."""
    selected = [
        item.callspec.params["example"]
        for item in request.session.items
        if isinstance(item, pytest.Function)
        and item.module is sys.modules[__name__]
        and hasattr(item, "callspec")
        and "example" in item.callspec.params
    ]
    shared: dict[Path, FakeServer] = {}
    lock = threading.Lock()

    def run(example: Example) -> subprocess.CompletedProcess[str] | BaseException:
        setup = _setup_for(example.document)
        directory = tmp_path_factory.mktemp("example")
        try:
            if example.output is None:
                with lock:
                    if setup.page not in shared:
                        shared[setup.page] = FakeServer(setup)
                return _run(example, shared[setup.page], directory)
            server = FakeServer(setup)
            try:
                return _run(example, server, directory)
            finally:
                server.stop()
        except Exception as error:  # noqa: BLE001  # raised again by the example's own test
            return error

    try:
        with ThreadPoolExecutor(PARALLEL_RUNS) as pool:
            yield dict(zip([e.name for e in selected], pool.map(run, selected), strict=True))
    finally:
        for server in shared.values():
            server.stop()


def _environment(server: FakeServer) -> dict[str, str]:
    """This process's environment without VOUCHERIFY_*, plus what the page exports."""
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith("VOUCHERIFY_")
    }
    # Unbuffered, as on a terminal, so stdout and stderr interleave as a user sees them.
    environment.update(server.environment, PYTHONUNBUFFERED="1", PYTHONWARNINGS="default")
    return environment


def _expected_pattern(output: str) -> re.Pattern[str]:
    """The shown output as a pattern: ``...`` is any text on its line, alone any lines."""
    parts = []
    for line in output.rstrip("\n").splitlines():
        if line.strip() == "...":
            parts.append(r"(?:[^\n]*\n)*?")
        else:
            pieces = line.rstrip().split("...")
            parts.append("[^\n]*".join(re.escape(piece) for piece in pieces) + r"[ \t]*\n")
    return re.compile("".join(parts))


def _trimmed(text: str) -> str:
    return "".join(line.rstrip() + "\n" for line in text.rstrip("\n").splitlines())


# Run in a process of its own: import the example's file as a module, serve its
# application with its startup and cleanup, GET every route, exit 1 on any non-200.
APPLICATION_DRIVER = r"""
import asyncio, importlib.util, json, os, sys, urllib.request

spec = importlib.util.spec_from_file_location("example", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
app = module.make_app() if hasattr(module, "make_app") else module.app

request = urllib.request.Request(
    os.environ["VOUCHERIFY_API_URL"] + "/v1/async-actions?limit=1",
    headers={"X-App-Id": os.environ["VOUCHERIFY_APP_ID"],
             "X-App-Token": os.environ["VOUCHERIFY_APP_TOKEN"]},
)
with urllib.request.urlopen(request, timeout=30) as response:
    newest = json.load(response)["async_actions"][0]["id"]


def concrete(path):
    path = path.replace("{action_id}", newest)
    assert "{" not in path, f"no value known for the route {path!r}"
    return path


if type(app).__module__.startswith("fastapi"):
    from fastapi.routing import APIRoute
    from fastapi.testclient import TestClient

    paths = [concrete(r.path) for r in app.routes if isinstance(r, APIRoute) and "GET" in r.methods]
    assert paths, "the application declares no GET route"
    with TestClient(app) as client:
        for path in paths:
            answer = client.get(path)
            assert answer.status_code == 200, (path, answer.text)
            print("GET", path, answer.status_code)
else:
    import aiohttp
    from aiohttp.test_utils import TestServer

    async def exercise():
        paths = [
            concrete(route.resource.canonical)
            for route in app.router.routes()
            if route.method == "GET" and route.resource is not None
        ]
        assert paths, "the application registers no GET route"
        server = TestServer(app)
        await server.start_server()
        try:
            async with aiohttp.ClientSession() as session:
                for path in paths:
                    async with session.get(server.make_url(path)) as answer:
                        body = await answer.text()
                        assert answer.status == 200, (path, body)
                        print("GET", path, answer.status)
        finally:
            await server.close()

    asyncio.run(exercise())
"""


def _conftest_of(document: Path) -> str:
    conftests = [e.source for e in _examples_of(document) if e.kind == "conftest"]
    assert conftests, f"{document.name} shows a test module but no conftest.py to enable it"
    return conftests[0]


def _run(example: Example, server: FakeServer, directory: Path) -> subprocess.CompletedProcess[str]:
    script = directory / "example.py"
    script.write_text(example.source, encoding="utf-8")
    if example.kind == "application":
        command = [sys.executable, "-c", APPLICATION_DRIVER, str(script)]
    elif example.kind == "test module":
        (directory / "conftest.py").write_text(_conftest_of(example.document), encoding="utf-8")
        script = script.rename(directory / "test_example.py")
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", script.name]
    else:
        command = [sys.executable, script.name]
    return subprocess.run(  # noqa: S603  # our own documentation, with this interpreter
        command,
        cwd=directory,
        env=_environment(server),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if example.output is not None else subprocess.PIPE,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda example: example.name)
def test_example_runs_as_printed(
    example: Example,
    example_runs: dict[str, subprocess.CompletedProcess[str] | BaseException],
) -> None:
    """The example, pasted into a file and run next to the fake server the docs start,
    exits 0 and prints what the page shows (or nothing on stderr, if it shows nothing;
    a test module run by pytest may have pytest's own configuration warnings there)."""
    result = example_runs[example.name]
    if isinstance(result, BaseException):
        raise result
    if example.output is None:
        assert result.returncode == 0, f"{example.name} failed:\n{result.stdout}{result.stderr}"
        if example.kind != "test module":  # pytest's own warnings about a bare config go there
            assert result.stderr == "", f"{example.name} wrote on stderr:\n{result.stderr}"
        return
    assert result.returncode == 0, f"{example.name} failed:\n{result.stdout}"
    printed = _trimmed(result.stdout)
    matches = _expected_pattern(example.output).fullmatch(printed) is not None
    assert matches, f"{example.name} printed:\n{printed}\nbut the page shows:\n{example.output}"


def test_the_documents_have_python_examples() -> None:
    """Guards the collection above: a broken pattern would silently test nothing."""
    assert len(EXAMPLES) >= 30
    assert len([e for e in EXAMPLES if e.output is not None]) >= 5
    assert {e.kind for e in EXAMPLES} == {"program", "application", "test module", "conftest"}
    assert len(_examples_of(ROOT / "README.md")) == 3  # a first call, a web handler, a worker


def test_the_quickstart_shows_the_fake_server_setup() -> None:
    """The setup the examples run with is on the page, as a user types it."""
    setup = _setup_of(SETUP_PAGE)
    assert setup is not None
    assert setup.server_args[:2] == ("--port", "8080")
    assert setup.environment["VOUCHERIFY_API_URL"] == DOCS_PORT_URL
    assert {"VOUCHERIFY_APP_ID", "VOUCHERIFY_APP_TOKEN"} <= set(setup.environment)


def test_every_complete_example_ends_by_running_main() -> None:
    """A program that defines ``main()`` calls it: ``asyncio.run(main())``, last."""
    for example in EXAMPLES:
        if re.search(r"^async def main\(", example.source, re.MULTILINE):
            assert example.source.rstrip().endswith("asyncio.run(main())"), example.name


@pytest.mark.parametrize(
    ("output", "printed", "matches"),
    [
        ("a\nb\n", "a\nb\n", True),
        ("a\nb\n", "a\nc\n", False),
        ("took ... s\n", "took 0.25 s\n", True),
        ("took ... s\n", "took 0.25 s\nmore\n", False),
        ("first\n...\nlast\n", "first\n1\n2\nlast\n", True),
        ("first\n...\nlast\n", "first\nlast\n", True),
        ("a(b)\n", "a(b)\n", True),
    ],
)
def test_the_output_convention(output: str, printed: str, matches: bool) -> None:
    """``...`` is any text on a line; alone, any lines; everything else is literal."""
    assert bool(_expected_pattern(output).fullmatch(_trimmed(printed))) is matches


def test_quickstart_script_runs_and_streams_every_action() -> None:
    """``python docs/examples/quickstart.py``, as its docstring says (it needs no fake server)."""
    script = ROOT / "docs" / "examples" / "quickstart.py"
    result = subprocess.run(  # noqa: S603  # our own script, with this interpreter
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
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


def test_readme_leads_with_install_then_a_first_call() -> None:
    """The top of the README: what it is, the install, a first call; then the two users
    (a web handler, a worker); the tests and the documentation links come after."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    install = readme.index('pip install ".')
    first_call = readme.index("```python")
    handler = readme.index("## In a web handler")
    worker = readme.index("## In a worker")
    tests = readme.index("<!-- ci: test command -->")
    links = readme.index("## Documentation")
    assert install < first_call < handler < worker < min(tests, links)
    assert "Application Keys" in readme  # where the credentials come from
    assert re.search(r"about \d+ minutes on a 2-core machine", readme)


# The command line's own "install the cli extra" message is checked with the documents.
INSTALLS_SHOWN = [*DOCUMENTS, *sorted((ROOT / "voucherify_async").rglob("*.py"))]


def test_every_install_command_works_from_a_clone() -> None:
    """No ``pip install voucherify-async...`` from the package index: it is not published.
    Installs name the clone (``pip install .``, ``".[cli]"``, ``-e ".[dev]"``)."""
    for path in INSTALLS_SHOWN:
        text = path.read_text(encoding="utf-8")
        for command in re.findall(r"pip install ([^\n`&|#]*)", text):
            packages = [word for word in command.split() if not word.startswith("-")]
            assert packages, f"{path.name}: pip install {command}"
            for package in packages:
                assert not package.strip("\"'").startswith("voucherify-async"), (
                    f"{path.name}: pip install {command}"
                )


def test_the_api_reference_lists_every_public_name() -> None:
    """docs/reference.md names each name of ``voucherify_async.__all__`` for mkdocstrings."""
    reference = (ROOT / "docs" / "reference.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^ +- (\w+)$", reference, re.MULTILINE))
    listed |= set(re.findall(r"^::: voucherify_async\.([A-Z]\w+)$", reference, re.MULTILINE))
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


# The reference site, built as .ci/run builds it.
MKDOCS_BUILD = [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-f", "docs/mkdocs.yml"]
RAW_ROLE = re.compile(r":(?:meth|class|func|attr|mod|exc|data|obj|ref):")
STRAY_LITERAL_MARK = re.compile(r"::(?=[\s<]|$)")
PRIVATE_IN_TOOLTIP = re.compile(r'title="(?:[^"]*\()?(?:\w+\.)*_\w')


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The documentation site, built once with ``mkdocs build --strict`` into a temporary
    directory (a warning, a broken link or an unresolved cross-reference fails it)."""
    pytest.importorskip("mkdocs", reason="the docs extra builds the site")
    directory = tmp_path_factory.mktemp("site")
    result = subprocess.run(  # noqa: S603  # mkdocs, from this interpreter's environment
        [*MKDOCS_BUILD, "-d", str(directory)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return directory


def _prose(html: str) -> str:
    """A built page without its code: what remains is text the reader sees as prose."""
    html = re.sub(r"<pre\b.*?</pre>", "", html, flags=re.DOTALL)
    return re.sub(r"<code\b.*?</code>", "", html, flags=re.DOTALL)


def test_no_built_page_shows_sphinx_markup_or_private_code(site: Path) -> None:
    """Every docstring renders as written: no raw ``:meth:``-style role, no ``::`` left
    from a reST literal block, no private code (``_base_url(``), no private module path
    in a tooltip."""
    pages = sorted(site.glob("**/*.html"))
    assert len(pages) >= 10
    for page in pages:
        html = page.read_text(encoding="utf-8")
        name = page.relative_to(site).as_posix()
        prose = _prose(html)
        roles = RAW_ROLE.findall(prose)
        assert roles == [], f"{name} shows raw Sphinx roles: {roles}"
        stray = [prose[m.start() - 80 : m.end()] for m in STRAY_LITERAL_MARK.finditer(prose)]
        assert stray == [], f"{name} shows a reST '::': {stray}"
        assert "_base_url(" not in html, name
        private = PRIVATE_IN_TOOLTIP.findall(html)
        assert private == [], f"{name} names private code: {private}"


def test_the_reference_links_sphinx_roles_and_formats_signatures(site: Path) -> None:
    """``:meth:`close``` became a link to ``VoucherifyClient.close``; the client's
    signature is formatted one parameter a line, not one line cut off."""
    html = (site / "reference" / "index.html").read_text(encoding="utf-8")
    assert 'href="#voucherify_async.VoucherifyClient.close"' in html
    assert html.count('class="autorefs autorefs-internal"') >= 50
    signature = re.search(r"doc-signature.*?</pre>", html, re.DOTALL)
    assert signature is not None
    text = re.sub(r"<[^>]+>", "", signature.group(0))
    assert "VoucherifyClient(\n    app_id: str | None = None,\n" in text
