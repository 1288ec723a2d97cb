"""The sans-I/O core imports neither aiohttp nor asyncio.

``_walk``, ``_decode``, ``_convert``, ``_params``, ``_config``, ``_exceptions`` and
``_models`` hold every decision of the client and must stay pure: checked at run time
in a fresh interpreter (what importing them actually loads, transitively) and
statically (what their source imports, even lazily inside a function).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parent.parent / "voucherify_async"
PURE_MODULES = [
    "_walk",
    "_decode",
    "_convert",
    "_params",
    "_config",
    "_exceptions",
    "_models",
    "_token",
    "_ratelimit",
    "_wire",
    "_split",
]
FORBIDDEN = {"aiohttp", "asyncio"}

# Runs in a fresh interpreter: a stub stands in for the package so that its
# ``__init__`` (which imports the aiohttp client) never runs, then the named
# submodules are imported for real from the package directory.
_PROBE = textwrap.dedent(
    """
    import importlib, json, sys, types

    package_dir, names = sys.argv[1], sys.argv[2:]
    stub = types.ModuleType("voucherify_async")
    stub.__path__ = [package_dir]
    sys.modules["voucherify_async"] = stub
    files = {}
    for name in names:
        module = importlib.import_module("voucherify_async." + name)
        files[name] = module.__file__
    loaded = sorted(
        name for name in sys.modules if name.partition(".")[0] in {"aiohttp", "asyncio"}
    )
    print(json.dumps({"loaded": loaded, "files": files}))
    """
)


def import_in_fresh_interpreter(names: list[str]) -> dict[str, object]:
    """Import ``voucherify_async.<name>`` for each name without the package ``__init__``;
    return which aiohttp/asyncio modules got loaded and where each module came from."""
    completed = subprocess.run(  # noqa: S603  # our own interpreter, fixed arguments
        [sys.executable, "-c", _PROBE, str(PACKAGE_DIR), *names],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    result: dict[str, object] = json.loads(completed.stdout)
    return result


def test_importing_the_pure_modules_loads_neither_aiohttp_nor_asyncio() -> None:
    """In a fresh interpreter, the seven pure modules (and everything they import,
    attrs and cattrs included) leave ``aiohttp`` and ``asyncio`` out of ``sys.modules``."""
    result = import_in_fresh_interpreter(PURE_MODULES)
    assert result["loaded"] == []
    files = result["files"]
    assert isinstance(files, dict)
    assert {name: Path(path).resolve() for name, path in files.items()} == {
        name: PACKAGE_DIR / f"{name}.py" for name in PURE_MODULES
    }


def test_the_purity_probe_detects_aiohttp() -> None:
    """Control: the same probe on ``_client`` (the aiohttp adapter) does see aiohttp
    and asyncio, so an empty answer above means something."""
    loaded = import_in_fresh_interpreter(["_client"])["loaded"]
    assert isinstance(loaded, list)
    assert "aiohttp" in loaded
    assert "asyncio" in loaded


def imported_top_level_names(path: Path) -> set[str]:
    """Top-level package names of every ``import``/``from ... import`` in the file,
    at any depth (also inside functions and ``TYPE_CHECKING`` blocks), and of
    ``importlib.import_module("...")``/``__import__("...")`` calls with a literal name."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.partition(".")[0])
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name | ast.Attribute)
            and (node.func.id if isinstance(node.func, ast.Name) else node.func.attr)
            in {"import_module", "__import__"}
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.add(node.args[0].value.partition(".")[0])
    return names


@pytest.mark.parametrize("name", PURE_MODULES)
def test_pure_module_source_imports_neither_aiohttp_nor_asyncio(name: str) -> None:
    """Statically, the module's source has no import of ``aiohttp`` or ``asyncio``
    anywhere, not even a lazy one that the run-time check would miss."""
    imported = imported_top_level_names(PACKAGE_DIR / f"{name}.py")
    assert imported  # the parser sees the module's imports (``__future__`` at least)
    assert not imported & FORBIDDEN


@pytest.mark.parametrize("name", PURE_MODULES)
def test_pure_modules_import_only_other_pure_modules_of_the_package(name: str) -> None:
    """Relative imports stay inside the pure core: no ``_client`` or ``_stream``."""
    tree = ast.parse((PACKAGE_DIR / f"{name}.py").read_text("utf-8"))
    relative = {
        (node.module or "").partition(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.level > 0
    }
    assert relative <= {*PURE_MODULES, "_version"}


def test_the_static_check_sees_forbidden_imports(tmp_path: Path) -> None:
    """Control: the static check finds every form of a forbidden import."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import asyncio.events\n"
        "def later():\n"
        "    from aiohttp import web\n"
        "    importlib.import_module('aiohttp.client')\n",
        "utf-8",
    )
    assert imported_top_level_names(sample) >= FORBIDDEN
