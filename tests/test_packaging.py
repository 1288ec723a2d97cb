"""The project's metadata: one version, a license that matches, a changelog."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import voucherify_async

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
# Not the project's own files: virtual environments, the built site, caches, git.
NOT_OURS = {".git", ".venv", "venv", ".ci", "site", "build", "dist", "node_modules"}
TEXT_SUFFIXES = {".py", ".md", ".toml", ".yml", ".yaml", ".json", ".cfg", ".txt", ".ini", ""}


def _project_files() -> list[Path]:
    found = []
    for path in ROOT.rglob("*"):
        parts = path.relative_to(ROOT).parts
        if any(part in NOT_OURS or part.startswith(".") or "cache" in part for part in parts):
            continue
        if path.is_file() and path.suffix in TEXT_SUFFIXES:
            found.append(path)
    return found


def test_the_version_is_written_in_one_place() -> None:
    """Only voucherify_async/_version.py holds the version (the build backend reads it
    there); CHANGELOG.md names releases, and docs/performance.json records the version
    it measured, which is their job. No other file hard-codes it."""
    assert PYPROJECT["project"]["dynamic"] == ["version"]
    assert "version" not in PYPROJECT["project"]
    assert PYPROJECT["tool"]["hatch"]["version"]["path"] == "voucherify_async/_version.py"
    version = voucherify_async.__version__
    pattern = re.compile(rf"(?<![\w.]){re.escape(version)}(?![\w.])")
    allowed = {
        ROOT / "voucherify_async" / "_version.py",
        ROOT / "CHANGELOG.md",
        ROOT / "docs" / "performance.json",  # written by docs/benchmarks/stream.py
    }
    files = _project_files()
    assert ROOT / "README.md" in files
    for path in files:
        if path in allowed:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        assert not pattern.search(text), f"{path.relative_to(ROOT)} hard-codes {version}"


def test_the_license_file_and_the_metadata_agree() -> None:
    """LICENSE is the MIT license of "voucherify-async developers"; pyproject.toml says
    MIT (an SPDX expression) and ships that file."""
    assert PYPROJECT["project"]["license"] == "MIT"
    assert PYPROJECT["project"]["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License\n")
    assert "Copyright (c) 2026 voucherify-async developers" in text
    assert 'THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND' in text


def test_the_changelog_keeps_a_changelog() -> None:
    """CHANGELOG.md follows Keep a Changelog: an Unreleased section first, then the
    releases, newest first, each with a date; the current version is among them."""
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "[Keep a Changelog](https://keepachangelog.com/" in text
    sections = re.findall(r"^## \[([^\]]+)\](?: - (\d{4}-\d{2}-\d{2}))?$", text, re.MULTILINE)
    assert sections[0] == ("Unreleased", "")
    releases = sections[1:]
    assert (voucherify_async.__version__, releases[0][1]) in releases
    assert all(date for _, date in releases)
    for heading in re.findall(r"^### (.+)$", text, re.MULTILINE):
        assert heading in {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}
