"""The public surface of ``voucherify_async``: one sorted ``__all__``, written out here.

Adding, removing or renaming a public name must change this file too. Every name
comes from a private module (or the public ``testing`` package), every private
module declares ``__all__``, and the version is the same everywhere.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import re
import types
from pathlib import Path

import pytest

import voucherify_async

PACKAGE_DIR = Path(voucherify_async.__file__).resolve().parent

EXPECTED_ALL = [
    "AsyncAction",
    "AsyncActionDetails",
    "AsyncActionResult",
    "AsyncActionScan",
    "AsyncActionStatus",
    "AsyncActionStream",
    "AsyncActionType",
    "AsyncActionsPage",
    "AuthenticationError",
    "BadRequestError",
    "CertificateError",
    "ClientClosedError",
    "InvalidResponseError",
    "NotFoundError",
    "OperationStatus",
    "PaginationError",
    "RateLimit",
    "RateLimitError",
    "RequestTimeoutError",
    "ResponseTooLargeError",
    "RetryPolicy",
    "ServerError",
    "Timeout",
    "TransportError",
    "VoucherifyAPIError",
    "VoucherifyClient",
    "VoucherifyError",
    "WaitTimeoutError",
    "__version__",
]


def test_all_is_exactly_the_expected_public_surface() -> None:
    """``voucherify_async.__all__`` is the list written in this test, in its order."""
    assert voucherify_async.__all__ == EXPECTED_ALL


def test_all_is_sorted_without_duplicates() -> None:
    """``__all__`` is sorted (plain ``sorted``) and names each export once."""
    assert voucherify_async.__all__ == sorted(voucherify_async.__all__)
    assert len(set(voucherify_async.__all__)) == len(voucherify_async.__all__)


@pytest.mark.parametrize("name", EXPECTED_ALL)
def test_every_public_name_resolves(name: str) -> None:
    """Each name of ``__all__`` is an attribute of the package, and ``import *`` gives it."""
    assert getattr(voucherify_async, name, None) is not None
    namespace: dict[str, object] = {}
    exec("from voucherify_async import *", namespace)  # noqa: S102  # a fixed statement
    assert namespace[name] is getattr(voucherify_async, name)


def test_no_public_attribute_is_left_out_of_all() -> None:
    """Every public (non-underscore, non-module) attribute of the package is in ``__all__``:
    nothing is exported by accident."""
    stray = {
        name
        for name, value in vars(voucherify_async).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert stray <= set(EXPECTED_ALL)


def _is_private_or_testing(module_name: str) -> bool:
    parts = module_name.split(".")
    return (
        parts[0] == "voucherify_async"
        and len(parts) > 1
        and (parts[1] == "testing" or parts[-1].startswith("_"))
    )


@pytest.mark.parametrize("name", [name for name in EXPECTED_ALL if name != "__version__"])
def test_every_public_name_is_defined_in_a_private_module(name: str) -> None:
    """Public classes live in private modules (``voucherify_async._models`` ...) or in
    the public ``testing`` package, never in another public module."""
    module_name = getattr(voucherify_async, name).__module__
    assert _is_private_or_testing(module_name), module_name
    assert getattr(importlib.import_module(module_name), name) is getattr(voucherify_async, name)


def test_the_module_check_refuses_public_modules() -> None:
    """Control for the check above."""
    assert _is_private_or_testing("voucherify_async._models")
    assert _is_private_or_testing("voucherify_async.testing._store")
    assert not _is_private_or_testing("voucherify_async.models")
    assert not _is_private_or_testing("voucherify_async")
    assert not _is_private_or_testing("cattrs._compat")


PRIVATE_MODULE_FILES = sorted(
    path
    for path in PACKAGE_DIR.rglob("_*.py")
    if path.name != "__init__.py" and "__pycache__" not in path.parts
)


def test_the_private_modules_are_found() -> None:
    """Sanity: the scan sees the core modules."""
    names = {path.stem for path in PRIVATE_MODULE_FILES}
    assert {"_client", "_config", "_convert", "_decode", "_exceptions", "_models"} <= names


def _declared_all(path: Path) -> list[str] | None:
    for node in ast.parse(path.read_text("utf-8")).body:
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else [node.target]
            if isinstance(node, ast.AnnAssign)
            else []
        )
        if any(isinstance(target, ast.Name) and target.id == "__all__" for target in targets):
            value = ast.literal_eval(node.value)  # type: ignore[arg-type]
            assert isinstance(value, list | tuple)
            return list(value)
    return None


@pytest.mark.parametrize(
    "path",
    PRIVATE_MODULE_FILES,
    ids=[str(p.relative_to(PACKAGE_DIR)) for p in PRIVATE_MODULE_FILES],
)
def test_every_private_module_defines_all(path: Path) -> None:
    """Each private module declares ``__all__`` as a literal list of names it defines."""
    declared = _declared_all(path)
    assert declared is not None, f"{path.name} has no __all__"
    assert all(isinstance(name, str) for name in declared)
    relative = path.relative_to(PACKAGE_DIR.parent).with_suffix("")
    module = importlib.import_module(".".join(relative.parts))
    assert list(module.__all__) == declared
    for name in declared:
        assert hasattr(module, name), f"{module.__name__}.__all__ names missing {name}"


def _version_in_file() -> str:
    tree = ast.parse((PACKAGE_DIR / "_version.py").read_text("utf-8"))
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            return node.value.value
    raise AssertionError("no literal __version__ in _version.py")


def test_version_is_the_one_in_version_py() -> None:
    """``voucherify_async.__version__`` is the literal in ``_version.py`` (the file the
    build backend reads), and a PEP 440 version."""
    version = _version_in_file()
    assert voucherify_async.__version__ == version
    assert re.fullmatch(r"\d+(\.\d+)*((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?", version)


def test_version_matches_the_installed_distribution() -> None:
    """When the package is installed, its metadata carries the same version."""
    try:
        installed = importlib.metadata.version("voucherify-async")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("voucherify-async is not installed in this environment")
    assert installed == voucherify_async.__version__
