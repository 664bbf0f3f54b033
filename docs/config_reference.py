"""The key tables of docs/configuration.md, read from the code so that the page cannot go stale.

Every config section has a table between ``<!-- keys: ID -->`` and ``<!-- /keys -->`` on the
page: ``top``, ``trainer`` and ``evaluation`` (the pydantic models of :mod:`utils.core.config`),
and ``data.NAME``, ``model.NAME``, ``loss.NAME`` for each registered component (its typed keyword
arguments, :func:`utils.core.config.config_params`). A table row is ``| key | type | default |
meaning |``: the type and default come from the code, the meaning is written by hand and kept.

    python docs/config_reference.py           rewrite the tables in place (a new key gets an empty
                                              meaning to fill in; a new component a new table)
    python docs/config_reference.py --check   exit 1, naming the differences, when the page is stale

``tests/test_docs_config.py`` runs the check.
"""
from __future__ import annotations

import json
import re
import sys
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Union

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "configuration.md"
BLOCK = re.compile(r"<!-- keys: (?P<id>[\w.]+) -->\n(?P<body>.*?)<!-- /keys -->", re.S)
HEADER = "| key | type | default | meaning |\n|---|---|---|---|\n"
NO_KEYS = "No keys besides `name`.\n"

Row = tuple[str, str]  # (type, default) as the page writes them


def code_tables() -> dict[str, dict[str, Row]]:
    """``{block id: {key: (type, default)}}`` for every section the code validates, in page order."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import agents  # noqa: F401  (fills the registries)
    from utils.core.config import COMPONENTS, EvaluationConfig, RunConfig, TrainerConfig, config_params

    tables: dict[str, dict[str, Row]] = {}
    for block, model in (("top", RunConfig), ("trainer", TrainerConfig), ("evaluation", EvaluationConfig)):
        tables[block] = {key: (type_text(field.rebuild_annotation()),
                               "required" if field.is_required() else default_text(field.default))
                         for key, field in model.model_fields.items()}
    for section, registry in COMPONENTS.items():
        for name in registry.names():
            params = config_params(registry.get(name))
            tables[f"{section}.{name}"] = {key: (type_text(hint), default_text(default))
                                           for key, (hint, default) in params.items()}
    return tables


def type_text(hint: Any) -> str:
    """A type annotation as the page writes it: ``integer in (0, 2147483647]``, ``one of "max", "mean"``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Annotated:
        return type_text(args[0]) + _constraints(args[1:])
    if origin in (Union, types.UnionType):
        kept = [arg for arg in args if arg is not type(None)]
        text = " or ".join(type_text(arg) for arg in kept)
        return f"{text} or null" if len(kept) < len(args) else text
    if origin is Literal:
        return "one of " + ", ".join(json.dumps(arg) for arg in args)
    if origin is list:
        return f"list, each {type_text(args[0])}"
    if origin is dict or (isinstance(hint, type) and hasattr(hint, "model_fields")):
        return "object"
    return {int: "integer", float: "number", str: "string", bool: "boolean"}.get(hint, str(hint))


def _constraints(metadata: tuple[Any, ...]) -> str:
    """`` in (0, 1]``, `` > 0``, ``, at least 1 character``... from annotated-types / pydantic metadata."""
    low = high = None  # (bound, inclusive)
    extra = []
    for item in metadata:
        for attr, inclusive, is_low in (("gt", False, True), ("ge", True, True), ("lt", False, False),
                                        ("le", True, False)):
            value = getattr(item, attr, None)
            if value is not None:
                if is_low:
                    low = (value, inclusive)
                else:
                    high = (value, inclusive)
        shortest, longest = getattr(item, "min_length", None), getattr(item, "max_length", None)
        if shortest is not None and shortest == longest:
            extra.append(f"exactly {shortest} character{'s' if shortest > 1 else ''}")
        else:
            if shortest is not None:
                extra.append(f"at least {shortest} character{'s' if shortest > 1 else ''}")
            if longest is not None:
                extra.append(f"at most {longest} characters")
        if getattr(item, "pattern", None) is not None:
            extra.append(f"matching `{item.pattern}`")
    text = ""
    if low and high:
        text = f" in {'[' if low[1] else '('}{low[0]}, {high[0]}{']' if high[1] else ')'}"
    elif low:
        text = f" {'≥' if low[1] else '>'} {low[0]}"
    elif high:
        text = f" {'≤' if high[1] else '<'} {high[0]}"
    return text + "".join(f", {part}" for part in extra)


def default_text(value: Any) -> str:
    """A default as JSON in backticks (``null``, ``[32, 64]``), as a config file writes it."""
    if hasattr(value, "model_dump"):
        return "see below"
    return f"`{json.dumps(value)}`"


def page_tables(page: str) -> dict[str, dict[str, tuple[str, str, str]]]:
    """``{block id: {key: (type, default, meaning)}}`` as the page states them."""
    tables = {}
    for match in BLOCK.finditer(page):
        rows = {}
        for line in match["body"].splitlines():
            cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
            if len(cells) == 4 and cells[0].startswith("`"):
                rows[cells[0].strip("`")] = (cells[1], cells[2], cells[3])
        tables[match["id"]] = rows
    return tables


def render(rows: dict[str, Row], meanings: dict[str, str]) -> str:
    """The body of one block."""
    if not rows:
        return NO_KEYS
    return HEADER + "".join(f"| `{key}` | {kind} | {default} | {meanings.get(key, '')} |\n"
                            for key, (kind, default) in rows.items())


def updated(page: str, tables: dict[str, dict[str, Row]]) -> str:
    """The page with every block rewritten from ``tables``; a component without a block gets one after the
    last block of its section."""
    stated = page_tables(page)

    def body(match: re.Match) -> str:
        block = match["id"]
        if block not in tables:
            return ""  # a component that no longer exists: its block goes
        meanings = {key: row[2] for key, row in stated.get(block, {}).items()}
        return f"<!-- keys: {block} -->\n{render(tables[block], meanings)}<!-- /keys -->"

    page = BLOCK.sub(body, page)
    for block in tables:
        if block not in stated:
            section, _, name = block.partition(".")
            ends = [m.end() for m in BLOCK.finditer(page) if m["id"].startswith(section + ".")]
            at = ends[-1] if ends else len(page)
            new = (f"\n\n### {section}: `{name}`\n\n<!-- keys: {block} -->\n"
                   f"{render(tables[block], {})}<!-- /keys -->")
            page = page[:at] + new + page[at:]
    return page


def differences(page: str, tables: dict[str, dict[str, Row]]) -> list[str]:
    """What the page states differently from the code (empty: in step)."""
    stated = page_tables(page)
    problems = [f"{block}: no table on the page" for block in tables if block not in stated]
    problems += [f"{block}: a table for a section the code does not have" for block in stated if block not in tables]
    for block in set(tables) & set(stated):
        code, shown = tables[block], stated[block]
        problems += [f"{block}.{key}: missing from the page" for key in code if key not in shown]
        problems += [f"{block}.{key}: on the page but not in the code" for key in shown if key not in code]
        for key in set(code) & set(shown):
            if code[key] != shown[key][:2]:
                problems.append(f"{block}.{key}: the page says {shown[key][:2]}, the code {code[key]}")
            if not shown[key][2]:
                problems.append(f"{block}.{key}: no meaning written")
    return problems


def main(argv: list[str]) -> int:
    page = PAGE.read_text()
    tables = code_tables()
    if "--check" in argv:
        problems = differences(page, tables)
        print("\n".join(problems) or "docs/configuration.md matches the code")
        return 1 if problems else 0
    PAGE.write_text(updated(page, tables))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
