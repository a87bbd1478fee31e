"""Border (core part): which incident type a CAP alert's info block is.

:func:`classify` weighs three pieces of evidence of one ``<info>``, strongest first,
against the catalogue's ``cap`` entries (:class:`workflows.catalogue.CapMapping`):

1. an ``<eventCode>`` (scheme and value, e.g. SAME ``FFW``) a type lists in ``codes``:
   the sender's own machine-readable name of the event;
2. a word of the ``<event>`` text a type lists in ``events`` (the longest word found,
   at the start of a word, wins: "fire weather" over "fire"); then the hotline rules on
   the event text and the headline, as a call's narrative would be read;
3. the ``<category>``, which a type lists in ``categories``: the weakest evidence (a
   ``Security`` alert is police work unless its event says otherwise; ``Geo`` and
   ``Met`` are too broad to say anything).

An alert none of them matches is ``other``, and the :class:`CapClass` says why.
Pure: no I/O, no clock.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from adapters.hotline import classify as hotline_classify
from workflows.catalogue import CapMapping, Catalogue, HotlineRule

Evidence = str  # "eventCode", "event", "hotline", "category" or "none"


@dataclass(frozen=True)
class CapClass:
    """A type, the evidence that decided it and what matched (for the signal's details)."""

    category: str
    evidence: Evidence
    matched: str
    rule: str  # the hotline rule, or "cap:<evidence>"

    @property
    def reason(self) -> str:
        if self.evidence == "none":
            return "no eventCode, event word or category of the catalogue matched: other"
        return f"{self.evidence} {self.matched!r} is {self.category}"


@dataclass(frozen=True)
class CapRules:
    """The catalogue's ``cap`` entries, indexed for :func:`classify`."""

    codes: dict[tuple[str, str], str]  # (scheme, value) case-folded -> type
    words: tuple[tuple[re.Pattern[str], str, str], ...]  # longest first: (pattern, word, type)
    categories: dict[str, str]  # CAP category -> type
    hotline: tuple[HotlineRule, ...]

    @classmethod
    def of(cls, mappings: dict[str, CapMapping], hotline: Sequence[HotlineRule]) -> CapRules:
        codes = {(scheme.casefold(), v.strip().casefold()): type_id
                 for type_id, m in mappings.items()
                 for scheme, values in m.codes.items() for v in values}
        words = sorted(((w, type_id) for type_id, m in mappings.items() for w in m.events),
                       key=lambda wt: -len(wt[0]))
        categories: dict[str, str] = {c: type_id for type_id, m in mappings.items()
                                      for c in m.categories}
        return cls(codes, tuple((re.compile(r"(?<!\w)" + re.escape(w)), w, t)
                                for w, t in words), categories, tuple(hotline))


_BUILT: dict[int, tuple[Catalogue, CapRules]] = {}


def rules_of(catalogue: Catalogue) -> CapRules:
    """The catalogue's CAP rules, built once per catalogue (kept while it is used)."""
    held = _BUILT.get(id(catalogue))
    if held is None or held[0] is not catalogue:
        if len(_BUILT) > 8:
            _BUILT.clear()
        held = _BUILT[id(catalogue)] = (catalogue, CapRules.of(catalogue.cap,
                                                               catalogue.hotline))
    return held[1]


def classify(rules: CapRules, *, event: str = "", headline: str = "",
             category: str = "", codes: Iterable[tuple[str, str]] = ()) -> CapClass:
    """The type of one info block: by ``codes`` (its eventCodes, ``(valueName, value)``,
    in document order; the first one a type lists wins), then ``event``'s words, then the
    hotline rules on event and headline, then ``category``; else ``other``."""
    for scheme, value in codes:
        found = rules.codes.get((scheme.strip().casefold(), value.strip().casefold()))
        if found is not None:
            return CapClass(found, "eventCode", f"{scheme.strip()} {value.strip()}",
                            "cap:eventCode")
    text = " ".join(event.split()).lower()
    for pattern, word, type_id in rules.words:
        if pattern.search(text):
            return CapClass(type_id, "event", word, "cap:event")
    guess = hotline_classify(f"{event} {headline}", rules.hotline)
    if guess.rule != "none":
        return CapClass(guess.category, "hotline", guess.matched or "", guess.rule)
    found = rules.categories.get(category.strip())
    if found is not None:
        return CapClass(found, "category", category.strip(), "cap:category")
    return CapClass("other", "none", "", "none")
