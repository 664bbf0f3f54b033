"""docs/configuration.md states every config key with the type and default the code gives it.

The page's tables are compared with the code by docs/config_reference.py: the pydantic models of
utils.core.config (top level, trainer, evaluation) and the typed keyword arguments of every
registered data loader, model and loss (utils.core.config.config_params).
"""
from __future__ import annotations

import importlib.util
import typing
from typing import Annotated, Literal

import pytest
from annotated_types import Gt, Interval, Le

from tests.conftest import REPO_ROOT

SPEC = importlib.util.spec_from_file_location("config_reference", REPO_ROOT / "docs" / "config_reference.py")
reference = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(reference)


@pytest.fixture(scope="module")
def tables() -> dict:
    return reference.code_tables()


def test_the_page_matches_the_code(tables) -> None:
    problems = reference.differences(reference.PAGE.read_text(encoding="utf-8"), tables)
    assert not problems, ("docs/configuration.md differs from the code; run python docs/config_reference.py "
                          "and write the meaning of any new key:\n" + "\n".join(problems))


def test_every_section_and_key_of_the_code_is_read(tables) -> None:
    """The reader of the code sees every section the validator checks, with the validator's own keys."""
    import agents  # noqa: F401
    from utils.core.config import COMPONENTS, EvaluationConfig, RunConfig, TrainerConfig, config_params

    expected = {"top": list(RunConfig.model_fields), "trainer": list(TrainerConfig.model_fields),
                "evaluation": list(EvaluationConfig.model_fields)}
    for section, registry in COMPONENTS.items():
        for name in registry.names():
            expected[f"{section}.{name}"] = list(config_params(registry.get(name)))
    assert {block: list(rows) for block, rows in tables.items()} == expected
    assert tables["trainer"]["threads"] == ("integer in (0, 2147483647] or null", "`1`")


def test_a_stale_page_is_caught(tables) -> None:
    page = reference.PAGE.read_text(encoding="utf-8")
    changed_default = page.replace("| `epochs` | integer in (0, 2147483647] | `30` |",
                                   "| `epochs` | integer in (0, 2147483647] | `31` |")
    dropped_key = page.replace("| `threads` |", "| `old_threads` |")
    no_block = page.replace("<!-- keys: loss.mse -->", "<!-- keys: loss.gone -->")
    assert changed_default != page and dropped_key != page and no_block != page
    assert any("trainer.epochs: the page says" in p for p in reference.differences(changed_default, tables))
    assert {"trainer.threads: missing from the page", "trainer.old_threads: on the page but not in the code"} <= \
        set(reference.differences(dropped_key, tables))
    assert {"loss.mse: no table on the page", "loss.gone: a table for a section the code does not have"} <= \
        set(reference.differences(no_block, tables))


def test_rewriting_keeps_the_meanings_and_adds_new_sections(tables) -> None:
    page = reference.PAGE.read_text(encoding="utf-8")
    assert reference.updated(page, tables) == page  # in step: nothing to rewrite
    grown = {**tables, "model.new": {"width": ("integer", "`8`")}}
    rewritten = reference.updated(page.replace("| `30` |", "| `1` |", 1), grown)
    assert "| `epochs` | integer in (0, 2147483647] | `30` | epochs to train;" in rewritten
    assert "### model: `new`\n\n<!-- keys: model.new -->" in rewritten
    assert reference.differences(rewritten, grown) == ["model.new.width: no meaning written"]


@pytest.mark.parametrize(("hint", "text"), [
    (Annotated[int, Gt(0), Le(10)], "integer in (0, 10]"),
    (Annotated[float, Interval(ge=0, lt=1)] | None, "number in [0, 1) or null"),
    (Literal["max", "mean"], 'one of "max", "mean"'),
    (list[Annotated[int, Gt(0)]], "list, each integer > 0"),
    (typing.Optional[str], "string or null"),
])
def test_type_text(hint, text) -> None:
    assert reference.type_text(hint) == text
