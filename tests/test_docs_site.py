"""The documentation site (mkdocs.yml, docs/) lists every page, documents every public module and keeps its images.

The strict build itself (broken links and anchors, docstrings griffe cannot read) runs in CI:
``python -m mkdocs build --strict`` (.ci/run).
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

DOCS = REPO_ROOT / "docs"
NAV_PAGE = re.compile(r":\s*(\S+\.md)\s*$", re.M)
#: API page -> the packages whose every module it must document (``::: module``).
API_PAGES = {"api/models.md": "graphs/models", "api/losses.md": "graphs/losses", "api/metrics.md": "utils/metrics",
             "api/detector.md": "agents/detector", "api/datasets.md": None, "api/base.md": None}


def _nav_pages() -> list[str]:
    nav = (REPO_ROOT / "mkdocs.yml").read_text(encoding="utf-8").split("\nnav:", 1)[1]
    return NAV_PAGE.findall(nav)


def test_every_page_is_in_the_nav_and_every_nav_entry_exists() -> None:
    pages = sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md"))
    nav = _nav_pages()
    assert sorted(nav) == pages
    assert len(nav) == len(set(nav))


def _documented(page: str) -> set[str]:
    return set(re.findall(r"^::: ([\w.]+)", (DOCS / page).read_text(encoding="utf-8"), re.M))


@pytest.mark.parametrize("page", [page for page, package in API_PAGES.items() if package])
def test_api_pages_document_every_module_of_their_package(page: str) -> None:
    package = API_PAGES[page]
    modules = {f"{package.replace('/', '.')}.{p.stem}" for p in (REPO_ROOT / package).glob("*.py")
               if p.stem != "__init__"}
    assert modules <= _documented(page), f"{page} leaves out {sorted(modules - _documented(page))}"


def test_the_public_modules_have_api_pages() -> None:
    documented = set().union(*(_documented(page) for page in API_PAGES))
    assert {"agents.detector.detector", "agents.base", "graphs.models", "graphs.losses", "datasets"} <= documented
    for module in documented:  # each names a module that exists
        path = REPO_ROOT / Path(*module.split("."))
        assert path.with_suffix(".py").is_file() or (path / "__init__.py").is_file(), module


def test_every_image_is_shown_and_every_shown_image_exists() -> None:
    text = "\n".join(p.read_text(encoding="utf-8") for p in DOCS.rglob("*.md"))
    shown = set(re.findall(r"\]\(([\w./-]+\.png)\)", text))
    assert shown == {p.name for p in DOCS.glob("*.png")}
