"""Core: the one text normalisation every border applies before it acknowledges.

What PostgreSQL cannot store must never get past a border that has answered
``ok`` or ``202``: a NUL character (U+0000) cannot be in ``text`` or ``jsonb``,
and a lone surrogate (U+D800..U+DFFF without its pair, which JSON's ``\\ud800``
escape and Python's ``json.loads`` let through) cannot be encoded as UTF-8 at
all. An emergency call whose narrative held one was once acknowledged and then
lost. Each such code point becomes U+FFFD (the replacement character), so the
text keeps its length and shows that something was there; every other
character, control characters included, is kept as sent.

Pure: :func:`clean` for one string, :func:`clean_data` for a JSON-like value,
and :func:`clean_input`, the ``model_validator(mode="before")`` body that the
wire models' base classes run, so validation and normalisation happen once, at
the edge.
"""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar, overload

from pydantic import BaseModel, TypeAdapter, ValidationError, model_validator

__all__ = ["REPLACEMENT", "Cleaned", "clean", "clean_data", "clean_input", "needs_cleaning",
           "validate_json"]

REPLACEMENT = "\ufffd"
# NUL, and any surrogate code point: in a Python str a well-formed pair is one code
# point above U+FFFF, so every surrogate left in a str is a lone one.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# A JSON escape of a surrogate: the only thing Python's JSON reader takes that pydantic's
# refuses (and so the only reason to read a refused document a second time).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def needs_cleaning(text: str) -> bool:
    """Whether ``text`` holds a code point PostgreSQL cannot store."""
    return _UNSTORABLE.search(text) is not None


def clean(text: str) -> str:
    """``text`` with NUL and lone surrogates replaced by U+FFFD; the same object when
    there is nothing to replace (the common case costs one scan)."""
    if _UNSTORABLE.search(text) is None:
        return text
    return _UNSTORABLE.sub(REPLACEMENT, text)


def clean_data(value: Any) -> Any:
    """A JSON-like value (dicts, lists, tuples, strings, numbers) with every string in it,
    keys included, cleaned. Other values are returned as they are."""
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, dict):
        return {clean(k) if isinstance(k, str) else k: clean_data(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_data(v) for v in value]
    if isinstance(value, tuple):
        return tuple(clean_data(v) for v in value)
    return value


def clean_input(data: Any) -> Any:
    """What a wire model's ``mode="before"`` validator returns: a dict or string input
    cleaned, anything else (a model instance, a value pydantic will refuse) untouched."""
    if isinstance(data, (dict, str, list)):
        return clean_data(data)
    return data


class Cleaned(BaseModel):
    """A base for wire models: every string of the input is cleaned before validation.

    Each package's frozen base derives from it (command.model, workflows.messages,
    consoles.protocol, the adapters' record models), so no model that crosses a border
    can hold what PostgreSQL refuses.
    """

    @model_validator(mode="before")
    @classmethod
    def _clean_text(cls, data: Any) -> Any:
        return clean_input(data)


M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


@overload
def validate_json(model: type[M], data: bytes | str) -> M: ...


@overload
def validate_json(model: TypeAdapter[T], data: bytes | str) -> T: ...


def validate_json(model: Any, data: bytes | str) -> Any:
    """``model.model_validate_json(data)`` (or a TypeAdapter's ``validate_json``), lenient
    where pydantic's own JSON reader is stricter than the JSON people send: a lone
    surrogate escape (``"\\ud800"``, legal JSON that a platform's library may write) is
    read by Python's parser and cleaned, instead of refusing the whole record. Anything
    else invalid raises the model's ValidationError as before."""
    strict = getattr(model, "model_validate_json", None) or model.validate_json
    try:
        return strict(data)
    except ValidationError as exc:
        if not any(err["type"] == "json_invalid" for err in exc.errors()) or \
                _SURROGATE_ESCAPE.search(data if isinstance(data, bytes) else data.encode(
                    "utf-8", "surrogatepass")) is None:
            raise
        try:
            value = json.loads(data)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise exc from None
        python = getattr(model, "model_validate", None) or model.validate_python
        return python(clean_data(value))
