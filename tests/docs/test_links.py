"""Every link of the README, ARCHITECTURE.md, bench/README.md and docs/ leads to a file of this
repository that exists (and to a heading of it that exists); nothing points outside it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [
    ROOT / "README.md",
    ROOT / "ARCHITECTURE.md",
    ROOT / "bench" / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def links(page: Path) -> list[str]:
    text = FENCE.sub("", page.read_text())
    text = re.sub(r"`[^`\n]*`", "", text)  # inline code is not a link
    return LINK.findall(text)


def anchors(page: Path) -> set[str]:
    """The ids GitHub gives the headings of a markdown page."""
    found = set()
    for heading in re.findall(r"^#+ (.+)$", FENCE.sub("", page.read_text()), re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        found.add(slug)
    return found


def broken(page: Path) -> list[str]:
    problems = []
    for target in links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):
            problems.append(f"{target}: points outside the repository")
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.is_relative_to(ROOT):
            problems.append(f"{target}: points outside the repository")
        elif not dest.exists():
            problems.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            problems.append(f"{target}: no such heading")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_leads_to_a_file_of_the_repository(page: Path) -> None:
    assert links(page) or page != ROOT / "README.md"
    assert broken(page) == []


def test_the_checker_catches_each_kind_of_broken_link(tmp_path: Path) -> None:
    page = ROOT / "docs" / "planted-for-test.md"
    page.write_text(
        "# Title\n[a](../../shared/SPEC.md) [b](missing.md) [c](cli.md#no-such-heading) "
        "[d](https://example.com/) [e](#title) [f](cli.md)\n```\n[g](nowhere.md)\n```\n"
    )
    try:
        assert broken(page) == [
            "../../shared/SPEC.md: points outside the repository",
            "missing.md: no such file",
            "cli.md#no-such-heading: no such heading",
            "https://example.com/: points outside the repository",
        ]
    finally:
        page.unlink()


def test_the_docs_cover_what_the_readme_promises() -> None:
    names = {page.name for page in PAGES}
    assert {
        "cli.md",
        "json.md",
        "http-api.md",
        "configuration.md",
        "guarantees.md",
        "production.md",
    } <= names
    production = (ROOT / "docs" / "production.md").read_text()
    for topic in ("systemd", "PostgreSQL", "several hosts", "Upgrading", '.backup backup.db"'):
        assert topic.lower() in production.lower(), topic
