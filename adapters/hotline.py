"""Border (core part): hotline call records in, signals out.

A :class:`CallRecord` is what a hotline platform (110/119/120/12345 or 911
style) sends. :func:`classify` reads its narrative with a transparent rule set
(the catalogue's keywords of each type, in English and Chinese, first rule that
matches wins, in order) and
says which rule matched and how sure it is; :func:`to_signal` turns the record
into a :class:`command.model.Signal` with that classification in its details,
so the incident shows why ECC filed it where it did. :func:`read_csv` reads the
real call records in ../shared/data (Montgomery County 911, SF Fire
Department) for ``ecc replay``.

The publishing shell is in :mod:`adapters.replay`.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AwareDatetime, ConfigDict, Field

from adapters.gazetteer import Gazetteer
from adapters.placement import locate
from command.model import Reporter, Signal
from command.specs import AdapterSpec, Feed
from workflows.catalogue import HotlineRule
from workflows.geo import Location
from workflows.text import Cleaned

# Each type's rules are its ``hotline`` entries in the catalogue
# (:attr:`workflows.catalogue.Catalogue.hotline`, in the order they are tried: the
# first rule with a keyword in the narrative wins; specific before general).
Rule = HotlineRule


@dataclass(frozen=True)
class Classification:
    category: str
    priority: int
    confidence: float
    rule: str
    matched: str | None


def classify(narrative: str, rules: Sequence[Rule]) -> Classification:
    """Category, priority and the rule that decided, for a call's narrative.

    ``rules`` in the order they are tried (the catalogue's ``hotline``)."""
    text = narrative.lower()
    for rule in rules:
        for keyword in rule.keywords:
            if keyword in text:
                return Classification(rule.category, rule.priority, rule.confidence,
                                       rule.name, keyword)
    return Classification("other", 4, 0.3, "none", None)


class CallRecord(Cleaned):
    """One call from a hotline platform (JSON over HTTP or NATS)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    call_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_:\-]{0,63}$")]
    platform: Annotated[str, Field(max_length=20)] = "hotline"
    received_at: AwareDatetime
    narrative: Annotated[str, Field(max_length=4000)]
    # where: coordinates (with the address as said, if any), or only the address as
    # typed, which the city's gazetteer places (:func:`adapters.placement.locate`)
    location: Location | None = None
    address: Annotated[str, Field(max_length=500)] | None = None
    caller: Reporter | None = None


def to_signal(record: CallRecord, rules: Sequence[Rule],
              gazetteer: Gazetteer | None = None) -> Signal:
    """The signal a call raises, with its classification visible in the details.

    A call without coordinates is placed by ``gazetteer`` from its address (a location
    unknown when that fails: still a signal). Raises :class:`Unplaceable` when it has no
    coordinates and there is no gazetteer to place it with."""
    c = classify(record.narrative, rules)
    details: dict[str, object] = {"platform": record.platform, "rule": c.rule,
                                  "matched": c.matched, "confidence": c.confidence}
    if record.location is not None:
        location = record.location
    elif gazetteer is None:
        raise Unplaceable(f"call {record.call_id} has no coordinates and this ECC has no "
                          "gazetteer to place its address with ([gazetteer] in the city file)")
    else:
        location, details["placement"] = locate(gazetteer, record.address)
    return Signal(
        signal_id=f"call-{record.call_id}",
        source="hotline",
        category=c.category,
        location=location,
        observed_at=record.received_at,
        summary=record.narrative[:2000],
        confidence=c.confidence, priority=c.priority,
        details=details,
        reporter=record.caller,
    )


class Unplaceable(ValueError):
    """A record with no coordinates and nothing to place its words with."""


_MONTCO_TIME = "%Y-%m-%d %H:%M"
_SF_TIME = "%m/%d/%Y %I:%M:%S %p"

# On the bus (command/specs.py): call records from the ingress, which the HTTP
# ingress and a hotline platform's NATS client publish into alike.
SPEC = AdapterSpec(
    kind="hotline", feeds=(Feed("INGRESS", "adapter-hotline", "ingress.hotline"),),
    about="Call records from ecc.ingress.hotline (ECC_INGRESS); the ingress subject too, "
          "for `ecc adapter hotline --http-port N`.")


def read_csv(text: str) -> Iterator[CallRecord]:
    """Call records from Montgomery County 911 (no header) or SF Fire Department CSV.

    SF rows are one per unit per call: one record per call number. Rows that
    cannot be read are skipped (``ecc replay`` counts them).
    """
    first = text.split("\n", 1)[0]
    rows = csv.reader(io.StringIO(text))
    if first.startswith("Call Number"):
        header = next(rows)
        col = {name: i for i, name in enumerate(header)}
        seen: set[str] = set()
        for row in rows:
            try:
                call = row[col["Call Number"]]
                if call in seen:
                    continue
                lat, lon = (float(x) for x in row[col["Location"]].strip("()").split(","))
                at = datetime.strptime(row[col["Received DtTm"]], _SF_TIME)
            except (KeyError, IndexError, ValueError):
                continue
            seen.add(call)
            yield CallRecord(
                call_id=f"sf-{call}", platform="sf-fire", received_at=at.replace(tzinfo=UTC),
                narrative=f"{row[col['Call Type']]} at {row[col['Address']]}",
                location=Location(lat=lat, lon=lon, address=row[col["Address"]][:500]))
        return
    for n, row in enumerate(rows):
        try:
            lat_text, lon_text, title, when, town, address = row[:6]
            at = datetime.strptime(when, _MONTCO_TIME).replace(tzinfo=UTC)
            place = Location(lat=float(lat_text), lon=float(lon_text),
                             address=f"{address}, {town}"[:500])
        except (ValueError, TypeError):
            continue
        yield CallRecord(call_id=f"montco-{at:%Y%m%d%H%M}-{n}", platform="911",
                         received_at=at, narrative=re.sub(r"\s+-\s*$", "", title),
                         location=place)
