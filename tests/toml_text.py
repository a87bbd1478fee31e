"""A small TOML writer for tests: a parsed file, edited as data, written back as text.

Python's ``tomllib`` reads TOML only. Tests that need a catalogue or city file
that differs from the built-in one in one value load it with ``tomllib``, change
the dict (after asserting the value they change is there), and write it back with
:func:`dumps`, so an edit of the real file cannot turn the test into a no-op the
way a string ``.replace`` that no longer matches does.

Covered: tables, arrays of tables, strings, booleans, integers, floats (``inf``
and ``nan`` included) and arrays of these or of inline tables. Dates and times
are not (no ECC file uses them). ``tomllib.loads(dumps(doc)) == doc`` is tested in
``tests/test_toml_text.py``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["dumps"]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")  # fullmatch: "$" would let "0\n" through


def dumps(doc: Mapping[str, Any]) -> str:
    """``doc`` as TOML text. Lists of tables directly in a table become ``[[...]]``
    sections (so ``[[plan]]`` stays a section and its line can be found); anything
    nested inside one of their elements is written inline."""
    lines: list[str] = []
    _table(doc, (), lines)
    return "\n".join(lines) + "\n"


def _table(table: Mapping[str, Any], path: tuple[str, ...], lines: list[str]) -> None:
    for key, value in table.items():
        if not _is_table(value) and not _is_table_array(value):
            lines.append(f"{_key(key)} = {_value(value)}")
    for key, value in table.items():
        here = (*path, key)
        if _is_table(value):
            lines.append(f"\n[{'.'.join(map(_key, here))}]")
            _table(value, here, lines)
        elif _is_table_array(value):
            for item in value:
                lines.append(f"\n[[{'.'.join(map(_key, here))}]]")
                lines.extend(f"{_key(k)} = {_value(v)}" for k, v in item.items())


def _is_table(value: Any) -> bool:
    return isinstance(value, Mapping)


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, Mapping)
                                                           for v in value)


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _string(key)


def _string(text: str) -> str:
    # JSON's escapes are TOML's, bar DEL, which TOML wants escaped too
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }" \
            if value else "{}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"no TOML for {type(value).__name__}: {value!r}")
