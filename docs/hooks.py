"""mkdocs hook: the site's pages are every file under ``docs/``, where GitHub shows them too.

mkdocs refuses the directory that holds its ``mkdocs.yml`` as ``docs_dir``, so
``mkdocs.yml`` names a child (``assets/``) and :func:`on_files` replaces the
files mkdocs gathered there with every file under ``docs/``, each at its path
relative to ``docs/``. Links between pages are then the same on GitHub and in the
site. Left out: this hook, ``mkdocs.yml``, hidden and cache folders, and the
built site itself.
"""

from __future__ import annotations

from pathlib import Path

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
