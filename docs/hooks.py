"""The site's build hooks: which files are pages, and docstrings written for Sphinx.

1. An mkdocs hook: the site's pages are every file under ``docs/``, where GitHub
   shows them too. mkdocs refuses the directory that holds its ``mkdocs.yml`` as
   ``docs_dir``, so ``mkdocs.yml`` names a child (``assets/``) and ``on_files``
   replaces the files mkdocs gathered there with every file under ``docs/``, each
   at its path relative to ``docs/``. Links between pages are then the same on
   GitHub and in the site. Left out: this hook, ``mkdocs.yml``, hidden and cache
   folders, and the built site itself.

2. A griffe extension, ``SphinxRoles`` (``mkdocs.yml`` loads it for mkdocstrings):
   the package's docstrings use Sphinx's roles and literal blocks, which Markdown
   would show raw. Before the API reference is rendered, each docstring is
   rewritten, and only in the site (the modules are not touched):

   - ``:meth:`close```, ``:class:`~voucherify_async.Timeout```, ``:func:``,
     ``:attr:``, ``:mod:``, ``:exc:``, ``:data:``, ``:obj:``: a cross-reference
     (``[`close()`][voucherify_async.VoucherifyClient.close]``) when the name
     resolves to something the reference page shows (a documented member of a
     public name of ``voucherify_async`` or ``voucherify_async.testing``), else
     the name as inline code. A leading ``~`` shows only the last part; methods
     and functions get ``()``.
   - ``text::`` before a literal block becomes ``text:``, and a ``::`` alone on
     its line goes: the indented block after it is already a code block.
   - Signatures show no private code: a default naming a private module's
     constant shows its value, an annotation naming a private type is left out.

3. An mkdocs hook, ``on_post_page``: a cross-reference's tooltip names the target's
   canonical path, in a private module (``VoucherifyError
   (voucherify_async._exceptions.VoucherifyError)``); it keeps the name alone.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any

from griffe import Alias, ExprName, Extension, Function, GriffeLoader, Module, Object
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

_LEFT_OUT = {"mkdocs.yml", "hooks.py"}


def _published(path: Path, root: Path, site_dir: Path) -> bool:
    relative = path.relative_to(root)
    if relative.as_posix() in _LEFT_OUT or path.resolve().is_relative_to(site_dir):
        return False
    return not any(part.startswith(".") or part == "__pycache__" for part in relative.parts)


def on_files(files: Files, *, config: MkDocsConfig) -> Files:
    """Every file under ``docs/`` (but the ones left out), plus the theme's own files."""
    assert config.config_file_path is not None  # built from docs/mkdocs.yml
    root = Path(config.config_file_path).resolve().parent
    docs_dir = Path(config.docs_dir).resolve()
    site_dir = Path(config.site_dir).resolve()
    kept = [
        file
        for file in files
        if file.abs_src_path is None or not Path(file.abs_src_path).is_relative_to(docs_dir)
    ]
    pages = [
        File(
            path.relative_to(root).as_posix(), str(root), config.site_dir, config.use_directory_urls
        )
        for path in sorted(root.rglob("*"))
        if path.is_file() and _published(path, root, site_dir)
    ]
    return Files(kept + pages)


_PRIVATE_PATH_IN_TITLE = re.compile(r'title="(?:([^"]*?) \()?((?:\w+\.)*_[\w.]*)\)?"')
_PRIVATE_NAME = re.compile(r"(?<![\w.])_[A-Za-z]\w*")
_PRIVATE_PART = re.compile(r"(?:^|\.)_[A-Za-z]")
_ROLE = re.compile(r":(meth|class|func|attr|mod|exc|data|obj):`(~?)([\w.]+)(\(\))?`")
_LITERAL_BLOCK_MARK = re.compile(r"^(?P<indent>[ \t]*)(?P<text>.*?)(?P<space>[ \t]?)::[ \t]*$")
_PUBLIC_PACKAGES = ("voucherify_async", "voucherify_async.testing")


def _public_paths(loader: GriffeLoader) -> dict[str, str]:
    """Canonical path of each public name (``voucherify_async._client.VoucherifyClient``)
    -> the path the reference page shows it under (``voucherify_async.VoucherifyClient``)."""
    paths: dict[str, str] = {}
    for package_path in _PUBLIC_PACKAGES:
        package = loader.modules_collection[package_path]
        exported = package.exports or []
        for name in exported:
            if not isinstance(name, str) or name not in package.members:
                continue
            member = package.members[name]
            target = member.target_path if isinstance(member, Alias) else member.path
            paths.setdefault(target, f"{package_path}.{name}")
    return paths


class SphinxRoles(Extension):
    """Rewrite Sphinx roles and ``::`` in every docstring of the package (see above)."""

    def on_package(self, *, pkg: Module, loader: GriffeLoader, **kwargs: Any) -> None:
        if pkg.path != "voucherify_async":
            return
        public = _public_paths(loader)
        for obj in _walk(pkg):
            if obj.docstring is not None:
                obj.docstring.value = _markdown(obj.docstring.value, obj, loader, public)
            if isinstance(obj, Function):
                _public_signature(obj, loader, public)


def _public_signature(func: Function, loader: GriffeLoader, public: dict[str, str]) -> None:
    """No private code in a signature: a default that names a private module's constant
    shows its value (``page_size: int = 100``, not ``MAX_LIMIT``); an annotation that
    names a private type (``**fields: Unpack[_APIErrorFields]``) is left out."""
    for parameter in func.parameters:
        if parameter.annotation is not None and _PRIVATE_NAME.search(str(parameter.annotation)):
            parameter.annotation = None
        default = parameter.default
        if not isinstance(default, ExprName):
            continue
        path = _canonical(default.name, func, loader)
        if path is None or path in public or not _PRIVATE_PART.search(path):
            continue
        constant = loader.modules_collection.get_member(path)
        value = getattr(constant, "value", None)
        if value is not None and not _PRIVATE_NAME.search(str(value)):
            parameter.default = str(value)


def _markdown(text: str, obj: Object, loader: GriffeLoader, public: dict[str, str]) -> str:
    """``text``, a docstring of ``obj``, with its roles and ``::`` made Markdown."""
    text = _ROLE.sub(lambda match: _reference(match, obj, loader, public), text)
    return _literal_block_marks(text)


def _walk(obj: Object) -> list[Object]:
    """``obj`` and every object defined in it (aliases left out: their targets are walked)."""
    found = [obj]
    for member in obj.members.values():
        if not isinstance(member, Alias):
            found.extend(_walk(member))
    return found


def _reference(
    match: re.Match[str], obj: Object, loader: GriffeLoader, public: dict[str, str]
) -> str:
    role, tilde, name, _ = match.groups()
    shown = name.rsplit(".", 1)[-1] if tilde else name
    if role in ("meth", "func"):
        shown += "()"
    target = _public_target(name, obj, loader, public)
    return f"[`{shown}`][{target}]" if target else f"`{shown}`"


def _public_target(
    name: str, obj: Object, loader: GriffeLoader, public: dict[str, str]
) -> str | None:
    """Where the reference page shows ``name`` (as seen from ``obj``), or None."""
    canonical = _canonical(name, obj, loader)
    if canonical is None:
        return None
    for prefix in sorted(public, key=len, reverse=True):
        if canonical == prefix or canonical.startswith(prefix + "."):
            rest = canonical[len(prefix) :].lstrip(".")
            if any(part.startswith("_") for part in rest.split(".") if part):
                return None
            shown_as = public[prefix] + (f".{rest}" if rest else "")
            target = loader.modules_collection.get_member(canonical) if rest else None
            if rest and (target is None or not target.docstring):
                return None  # a member the page does not show (no docstring)
            return shown_as
    return None


def _canonical(name: str, obj: Object, loader: GriffeLoader) -> str | None:
    """The canonical path ``name`` names, from ``obj``'s scope, or None if unknown."""
    first, _, rest = name.partition(".")
    candidates = [name]  # already a full path
    # griffe's NameResolutionError and alias errors alike: then it is not a name in scope.
    with contextlib.suppress(Exception):
        candidates.insert(0, obj.resolve(first) + (f".{rest}" if rest else ""))
    for candidate in candidates:
        try:
            found = loader.modules_collection.get_member(candidate)
        except Exception:  # noqa: BLE001, S112  # not a path griffe knows
            continue
        try:
            return str(found.canonical_path)
        except Exception:  # noqa: BLE001, S112  # an alias griffe cannot resolve
            continue
    return None


def _literal_block_marks(text: str) -> str:
    """``text::`` -> ``text:``; a ``::`` alone on its line is dropped (reST literal blocks)."""
    lines = []
    for line in text.splitlines():
        mark = _LITERAL_BLOCK_MARK.match(line)
        if mark and not line.strip().startswith((">>>", "...")):
            if not mark["text"]:
                continue
            line = f"{mark['indent']}{mark['text']}:"
        lines.append(line)
    return "\n".join(lines)


def on_post_page(output: str, **kwargs: Any) -> str:
    """The built page, without private module paths in cross-references' tooltips."""
    return _PRIVATE_PATH_IN_TITLE.sub(_public_title, output)


def _public_title(match: re.Match[str]) -> str:
    """``title="X (a._b.X)"`` -> ``title="X"``; ``title="a._b.X"`` -> ``title="X"``."""
    return f'title="{match[1] or match[2].rsplit(".", 1)[-1]}"'
