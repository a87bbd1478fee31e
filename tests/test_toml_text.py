"""The tests' TOML writer: what it writes, tomllib reads back as the same data."""

from __future__ import annotations

import math
import tomllib
from importlib import resources
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.toml_text import dumps

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
_scalars = st.one_of(_text, st.booleans(), st.integers(-(2**63), 2**63 - 1),
                     st.floats(allow_nan=False))
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4)
                       | st.dictionaries(_text, inner, max_size=4), max_leaves=12)
_docs = st.dictionaries(_text, _values, max_size=6)


@settings(max_examples=120)
@given(_docs)
def test_any_document_reads_back_as_it_was_written(doc: dict[str, Any]) -> None:
    """Tables, arrays of tables, inline tables, any key and any string round-trip."""
    assert tomllib.loads(dumps(doc)) == doc


def test_nan_and_infinities_are_written_as_toml_spells_them() -> None:
    """NaN and both infinities come back as themselves."""
    back = tomllib.loads(dumps({"a": math.inf, "b": -math.inf, "c": math.nan}))
    assert back["a"] == math.inf and back["b"] == -math.inf and math.isnan(back["c"])


@pytest.mark.parametrize(("package", "name"), [("workflows", "catalogue.toml"),
                                              ("sim", "zhengzhou.toml")])
def test_the_shipped_files_round_trip(package: str, name: str) -> None:
    """The built-in catalogue and the demo city file, read, written and read again, are
    the same data, with each [[type]], [[plan]] or [[camera]] a section of its own."""
    doc = tomllib.loads(resources.files(package).joinpath(f"data/{name}").read_text())
    text = dumps(doc)
    assert tomllib.loads(text) == doc
    for key, value in doc.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            assert text.count(f"\n[[{key}]]\n") == len(value)


def test_a_value_toml_cannot_hold_is_refused_by_type() -> None:
    """A date (no ECC file has one) is refused naming its type, not written wrongly."""
    from datetime import date

    with pytest.raises(TypeError, match="no TOML for date"):
        dumps({"when": date(2026, 7, 20)})
