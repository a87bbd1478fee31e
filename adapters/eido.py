# size: one format read whole: Handoff, schema check, component walk (writer apart)
"""Border (core part): NENA EIDO (NENA-STA-021.1b, JSON), an incident handed between CADs.

ECC reads and writes EIDO documents through one value, :class:`Handoff`: what ECC
models of an incident that another agency's CAD sends or receives (its tracking id,
the sending agency, type, priority, status, place, calls and callers, notes, units
and how it ended). The functions, all pure:

* :func:`from_eido` (a parsed document) and :func:`parse_eido` (bytes): check the
  document against the EIDO schema, then read it into a :class:`Handoff`;
* :func:`to_signal`: the signal (source ``eido``) a received handoff becomes, so
  fusion and verification treat it as they treat any other evidence.

Writing one is :mod:`adapters.eido_out`. ``from_eido(eido_out.render(h)) == h`` for every
handoff, and NENA's sample read, written and read again keeps every field
(tests/adapters/test_eido.py checks both).

The schema is NENA's ``Schema/openapi.yaml``, bundled unmodified as
``adapters/schema/eido-openapi.yaml`` (see the README there). It is read once,
with two repairs made in memory (:func:`_repaired`): ``minItems: 1,`` (a typo
that YAML reads as the string ``"1,"``) is 1, and the ``$ref`` to NIEM files
that NENA's repository has and the schema's copy here does not
(``NIEMComponents/nc.yaml#...``: a person's or vehicle's NIEM details) accept
any object. It is checked with ``openapi-schema-validator``'s OpenAPI 3.0
validator (jsonschema underneath), formats included (``date-time``).

Errors::

    ValueError
     +-- EidoRejected     a document ECC cannot take in; ``reason`` names the field
    RuntimeError
     +-- EidoExportError  a document ECC made that the schema refuses: a bug in ECC
"""

from __future__ import annotations

import functools
import hashlib
import html
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException
from pydantic import AwareDatetime, ConfigDict, Field

from adapters.gazetteer import Gazetteer
from adapters.hotline import classify
from adapters.placement import locate
from command.model import Reporter, Signal
from command.specs import AdapterSpec, Feed
from workflows.catalogue import Catalogue
from workflows.geo import Location
from workflows.text import Cleaned

__all__ = [
    "MAX_EIDO_BYTES", "SCHEMA", "Call", "Caller", "Closure", "EidoExportError",
    "EidoRejected", "Handoff", "Note", "Place", "Responder", "from_eido", "parse_eido",
    "to_signal", "validate",
]

SCHEMA = Path(__file__).resolve().parent / "schema" / "eido-openapi.yaml"
ROOT_TYPE = "EmergencyIncidentDataObjectType"
MAX_EIDO_BYTES = 512 * 1024
CONFIDENCE = 0.9  # another agency's CAD: people there took the call and typed it in
# On the bus (command/specs.py): documents from other agencies' CADs, from the ingress.
SPEC = AdapterSpec(
    kind="eido", feeds=(Feed("INGRESS", "adapter-eido", "ingress.eido"),),
    about="NENA EIDO documents from other agencies' CADs, from ecc.ingress.eido "
          "(ECC_INGRESS).")
MAX_NOTES, MAX_CALLS, MAX_UNITS = 500, 100, 200

GML = "http://www.opengis.net/gml"
PIDFLO = "http://www.opengis.net/pidflo/1.0"
CIVIC = "urn:ietf:params:xml:ns:pidf:geopriv10:civicAddr"
WGS84 = "urn:ogc:def:crs:EPSG::4326"


class EidoRejected(ValueError):
    """A document ECC cannot take in; ``reason`` names the field, e.g.
    ``$.callComponent[0].direction: 'sideways' is not one of [...]``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class EidoExportError(RuntimeError):
    """A document ECC made that the EIDO schema refuses: a bug here, never sent."""


# --- the model --------------------------------------------------------------------


class _Frozen(Cleaned):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Place(_Frozen):
    """Where: a point (with its radius) when the document gives one, and words."""

    lat: float | None = Field(default=None, ge=-90, le=90, allow_inf_nan=False)
    lon: float | None = Field(default=None, ge=-180, le=180, allow_inf_nan=False)
    accuracy_m: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    address: str | None = None


class Caller(_Frozen):
    """Who called, and how to call them back. Personal data (docs/adapters.md)."""

    name: str | None = None
    phone: str | None = None  # a tel: number without ``tel:``, or another URI whole


class Call(_Frozen):
    call_id: str
    started_at: AwareDatetime
    answered_at: AwareDatetime | None = None
    caller: Caller | None = None


class Note(_Frozen):
    text: str
    at: AwareDatetime
    by: str | None = None


class Responder(_Frozen):
    """A unit sent: its id, the agency (component) that sent it, what it is, its status."""

    unit_id: str
    agency: str | None = None
    capability: str | None = None
    status: str | None = None


class Closure(_Frozen):
    status: str  # resolved, closed, cancelled (ECC), or the sender's disposition
    at: AwareDatetime
    reason: str | None = None


class Handoff(_Frozen):
    """What ECC models of an incident in an EIDO document."""

    incident_uid: str  # the document's $id: NENA's incident tracking identifier
    agency: str  # the sending agency (updatedByAgencyReference)
    agent: str | None = None
    updated_at: AwareDatetime
    internal_id: str | None = None  # the sender's own incident id
    type_code: str | None = None  # incidentTypeInternalCode (ECC: its category)
    type_text: str | None = None  # incidentTypeInternalText (ECC: the catalogue's label)
    type_common: str | None = None  # incidentTypeCommonRegistryText
    priority: int | None = Field(default=None, ge=1, le=4)  # ECC's scale, 1 highest
    status: str | None = None
    location: Place = Place()
    calls: tuple[Call, ...] = ()
    notes: tuple[Note, ...] = ()
    units: tuple[Responder, ...] = ()
    closure: Closure | None = None


# --- the schema -------------------------------------------------------------------


def _repaired(node: Any) -> Any:
    """The schema as NENA meant it (see the module's docstring)."""
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str) and not node["$ref"].startswith("#"):
            return {"type": "object"}  # a NIEM type not bundled: any object
        out = {}
        for key, value in node.items():
            if key == "minItems" and isinstance(value, str):
                value = int(value.rstrip(","))
            out[key] = _repaired(value)
        return out
    if isinstance(node, list):
        return [_repaired(x) for x in node]
    return node


@functools.cache
def _validator() -> Any:
    # YAML and the validator are imported at the first document, not at every start.
    import yaml
    from openapi_schema_validator import OAS30Validator, oas30_format_checker

    spec = yaml.load(SCHEMA.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    components = _repaired(spec["components"])
    for schema in components["schemas"].values():  # each type, itself a valid schema
        OAS30Validator.check_schema(schema)
    root = {"components": components, "$ref": f"#/components/schemas/{ROOT_TYPE}"}
    return OAS30Validator(root, format_checker=oas30_format_checker)


def validate(doc: Any) -> None:
    """Check a parsed document against the EIDO schema.

    Raises :class:`EidoRejected` naming the first field at fault (as a JSON path).
    """
    from jsonschema.exceptions import best_match

    try:
        error = best_match(_validator().iter_errors(doc))
    except RecursionError as exc:
        raise EidoRejected("$: nested too deep to read") from exc
    if error is not None:
        raise EidoRejected(f"{error.json_path}: {_short(error.message, 300)}")


# --- in ---------------------------------------------------------------------------


def parse_eido(data: bytes) -> Handoff:
    """An EIDO document's bytes (UTF-8 JSON) as a :class:`Handoff`.

    Raises :class:`EidoRejected`, and nothing else, for anything ECC cannot take in.
    """
    if len(data) > MAX_EIDO_BYTES:
        raise EidoRejected(f"$: the document is {len(data)} bytes; limit {MAX_EIDO_BYTES}")
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EidoRejected(f"$: not JSON: {_short(str(exc), 200)}") from exc
    except RecursionError as exc:
        raise EidoRejected("$: nested too deep to read") from exc
    return from_eido(doc)


def from_eido(doc: Any) -> Handoff:
    """A parsed EIDO document as a :class:`Handoff`: checked against the schema, then
    read. What ECC does not model (vehicles, media, additional data, NIEM details
    other than a person's full name) is not read.

    Raises :class:`EidoRejected`, and nothing else, naming the field at fault.
    """
    validate(doc)
    try:
        components = _Components(doc)
        incident = doc.get("incidentComponent") or {}
        priority_number = incident.get("incidentCommonPriorityNumber")
        agency = _ref(doc["updatedByAgencyReference"], "$.updatedByAgencyReference")
        if agency is None:
            raise EidoRejected("$.updatedByAgencyReference: the sending agency is required")
        return Handoff(
            incident_uid=doc["$id"], agency=agency,
            agent=_ref(doc.get("updatedByAgentReference"), "$.updatedByAgentReference"),
            updated_at=_time(doc["lastUpdateTimeStamp"], "$.lastUpdateTimeStamp"),
            internal_id=incident.get("internalIncidentId") or None,
            type_code=incident.get("incidentTypeInternalCode") or None,
            type_text=incident.get("incidentTypeInternalText") or None,
            type_common=incident.get("incidentTypeCommonRegistryText") or None,
            priority=None if priority_number is None else _priority(priority_number),
            status=_first(incident.get("incidentStatusInternalText"))
            or _first(incident.get("incidentStatusCommonRegistryText")),
            location=components.place(incident),
            calls=tuple(components.call(c, i) for i, c in
                        enumerate(doc.get("callComponent", [])[:MAX_CALLS])),
            notes=tuple(sorted((components.note(n, i) for i, n in
                                enumerate(doc.get("notesComponent", [])[:MAX_NOTES])),
                               key=lambda n: n.at)),
            units=components.units(),
            closure=_closure(incident.get("dispositionComponent") or []))
    except EidoRejected:
        raise
    except (ValueError, TypeError, KeyError, AttributeError) as exc:  # pydantic's too
        raise EidoRejected(f"$: {_short(str(exc), 300)}") from exc


class _Components:
    """The document's components by ``$id``, for following its references."""

    def __init__(self, doc: Mapping[str, Any]) -> None:
        self.doc = doc
        self.by_id: dict[str, dict[str, Any]] = {}
        for key, value in doc.items():
            if key.endswith("Component") and isinstance(value, list):
                for item in value:
                    if isinstance(item, dict) and isinstance(item.get("$id"), str):
                        self.by_id.setdefault(item["$id"], item)

    def get(self, ref: Any) -> dict[str, Any] | None:
        return self.by_id.get(ref["$ref"]) if isinstance(ref, dict) else None

    def place(self, incident: Mapping[str, Any]) -> Place:
        """The incident's location: the first one with coordinates among those the
        incident names, then its calls', then the rest; words from the same one, or
        from the first that has any."""
        order: list[dict[str, Any]] = []
        refs = list(incident.get("locationReference") or [])
        for call in self.doc.get("callComponent", []):
            refs += call.get("locationReference") or []
        for ref in refs:
            found = self.get(ref)
            if found is not None and found in self.doc.get("locationComponent", []):
                order.append(found)
        order += self.doc.get("locationComponent", [])
        places = [_place(loc) for loc in order]
        point = next((p for p in places if p.lat is not None), None)
        words = next((p.address for p in places if p.address), None)
        if point is None:
            return Place(address=words)
        return point if point.address else point.model_copy(update={"address": words})

    def call(self, call: Mapping[str, Any], i: int) -> Call:
        where = f"$.callComponent[{i}]"
        return Call(call_id=call["$id"],
                    started_at=_time(call["callStartTimestamp"], f"{where}.callStartTimestamp"),
                    answered_at=_time(call["answerDate"], f"{where}.answerDate")
                    if "answerDate" in call else None,
                    caller=self.caller(call))

    def caller(self, call: Mapping[str, Any]) -> Caller | None:
        person = next((p for p in self.doc.get("personComponent", [])
                       if call["$id"] in (p.get("callIdentifier") or [])
                       and _is_caller(p)), None)
        if person is None:
            person = next((p for p in map(self.get, call.get("personReference") or [])
                           if p is not None and _is_caller(p)), None)
        name = _full_name(person.get("ncPersonComponent")) if person else None
        callback = (self.get(person.get("callBackReference")) if person else None) \
            or self.get(call.get("callBackReference"))
        phone = _phone_of(callback.get("callBackInformationUri") or []) if callback else None
        return Caller(name=name, phone=phone) if name or phone else None

    def note(self, note: Mapping[str, Any], i: int) -> Note:
        return Note(text=html.unescape(note["notesActionComments"]),
                    at=_time(note["lastUpdateTimeStamp"],
                             f"$.notesComponent[{i}].lastUpdateTimeStamp"),
                    by=_ref(note.get("updatedByAgentReference"),
                            f"$.notesComponent[{i}].updatedByAgentReference"))

    def units(self) -> tuple[Responder, ...]:
        agency_of: dict[str, str] = {}
        for i, dispatch in enumerate(self.doc.get("dispatchComponent", [])):
            where = f"$.dispatchComponent[{i}]"
            agency = _ref(dispatch.get("agencyReference"), f"{where}.agencyReference")
            for j, ref in enumerate(dispatch.get("emergencyResourceReference") or []):
                unit = _ref(ref, f"{where}.emergencyResourceReference[{j}]")
                if agency is not None and unit is not None:
                    agency_of.setdefault(unit, agency)
        return tuple(Responder(
            unit_id=r.get("emergencyResourceName") or r["$id"], agency=agency_of.get(r["$id"]),
            capability=r.get("emergencyResourceTypeInternalText")
            or r["emergencyResourceTypeCommonRegistryText"] or None,
            status=_first(r.get("unitStatusInternal")) or r["primaryUnitStatusRegistryText"]
            or None) for r in self.doc.get("emergencyResourceComponent", [])[:MAX_UNITS])


def _first(values: Any) -> str | None:
    return str(values[0]) or None if isinstance(values, list) and values else None


def _ref(value: Any, where: str) -> str | None:
    """The ``$id`` a reference names (None for no reference). The schema's ReferenceType
    has no ``type: object``, so a bare string passes it: refused here, by name."""
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("$ref"), str):
        raise EidoRejected(f"{where}: a reference is an object with a string $ref")
    return str(value["$ref"])


def _is_caller(person: Mapping[str, Any]) -> bool:
    roles = person.get("personIncidentRoleRegistryText") or []
    return any(str(r).lower() == "caller" for r in roles)


def _full_name(niem: Any) -> str | None:
    """nc:PersonFullName from NIEM's PersonType (``name[0].personFullName``), read
    leniently: the NIEM part of the schema is not bundled, so nothing checked it."""
    if not isinstance(niem, dict):
        return None
    names = niem.get("name")
    first = names[0] if isinstance(names, list) and names else names
    full = first.get("personFullName") if isinstance(first, dict) else None
    if isinstance(full, list):
        full = full[0] if full else None
    if isinstance(full, dict):
        full = full.get("value")
    return full if isinstance(full, str) and full else None


def _phone_of(uris: Sequence[str]) -> str | None:
    """The callback number: the first ``tel:`` URI's number, else the first URI whole."""
    for uri in uris:
        if uri.lower().startswith("tel:"):
            return uri[4:] or None
    return uris[0] if uris and uris[0] else None


def _priority(number: Any) -> int:
    if isinstance(number, bool) or not isinstance(number, int):
        raise EidoRejected("$.incidentComponent.incidentCommonPriorityNumber: not an integer")
    return 1 if number >= 8 else 2 if number >= 5 else 3 if number >= 2 else 4


def _closure(dispositions: Sequence[Mapping[str, Any]]) -> Closure | None:
    chosen = next((d for d in dispositions if d.get("dispositionPrimaryIndicator")),
                  dispositions[0] if dispositions else None)
    if chosen is None:
        return None
    i = list(dispositions).index(chosen)
    return Closure(
        status=chosen.get("dispositionCategoryText") or chosen["dispositionCommonRegistryCode"],
        at=_time(chosen["lastUpdateTimeStamp"],
                 f"$.incidentComponent.dispositionComponent[{i}].lastUpdateTimeStamp"),
        reason=chosen.get("dispositionDescriptionText") or None)


def _time(value: str, where: str) -> datetime:
    """An RFC 3339 time the schema let through, as Python reads it (a leap second or
    the year 0 it cannot)."""
    try:
        found = datetime.fromisoformat(value.upper())
    except ValueError as exc:
        raise EidoRejected(f"{where}: {_short(repr(value), 60)} is not a time ECC can "
                           "read") from exc
    if found.tzinfo is None:
        raise EidoRejected(f"{where}: {_short(repr(value), 60)} has no time zone")
    return found


def _place(loc: Mapping[str, Any]) -> Place:
    """A location component: a point or circle in its PIDF-LO, its words (the
    description, else the civic address). Anything it cannot read is no point."""
    point: tuple[float, float, float | None] | None = None
    civic = None
    value = loc.get("locationByValue")
    if isinstance(value, str) and value.strip():
        try:
            root = SafeET.fromstring(value.strip().encode(), forbid_dtd=True)
        except (DefusedXmlException, SafeET.ParseError, ValueError):
            root = None
        if root is not None:
            point = _point(root)
            civic = _civic(root)
    address = loc.get("locationDescriptionText") or civic
    if point is None:
        return Place(address=address)
    return Place(lat=point[0], lon=point[1], accuracy_m=point[2], address=address)


def _point(root: Any) -> tuple[float, float, float | None] | None:
    for pos in root.iter(f"{{{GML}}}pos"):
        try:
            lat, lon = (float(x) for x in (pos.text or "").split()[:2])
        except ValueError:
            continue
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            continue
        radius = None
        for tag in (f"{{{PIDFLO}}}radius", f"{{{PIDFLO}}}semiMajorAxis"):
            found = root.find(f".//{tag}")
            if found is not None:
                try:
                    r = float(found.text or "")
                except ValueError:
                    continue
                if 0 <= r <= 1_000_000:
                    radius = r
                    break
        return lat, lon, radius
    return None


def _civic(root: Any) -> str | None:
    """A PIDF-LO civic address (RFC 5139) in one line: ``42 W Cellular Street,
    Wilmington, DE, US``."""
    address = root.find(f".//{{{CIVIC}}}civicAddress")
    if address is None:
        return None

    def part(name: str) -> str:
        found = address.find(f"{{{CIVIC}}}{name}")
        return (found.text or "").strip() if found is not None else ""

    street = " ".join(filter(None, (part(n) for n in ("HNO", "HNS", "PRD", "RD", "STS",
                                                      "POD"))))
    words = [street, part("LOC"), part("A3"), part("A1"), part("PC"), part("country")]
    return ", ".join(w for w in words if w) or None


def to_signal(h: Handoff, catalogue: Catalogue,
              gazetteer: Gazetteer | None = None) -> Signal:
    """The signal a received handoff becomes (source ``eido``).

    Its id is ``<key>-<lastUpdateTimeStamp in Unix ms>``, where the key is
    ``eido-`` and 24 hex digits of the SHA-256 of ``<agency>|<$id>``: the same
    document sent twice is one signal, and every version refers to the key, so a
    later one joins the incident an earlier one raised. The category is
    ``incidentTypeInternalCode`` when that is one of the catalogue's types; else the
    catalogue's hotline rules over the type's words; else the first type (in the
    catalogue's order) with one of its ``eido.words`` in the common registry type;
    else ``other``.

    A location with only words (a civic address, a description) is placed by
    ``gazetteer`` (:func:`adapters.placement.locate`; a location unknown when that
    fails, still a signal). Raises :class:`EidoRejected` when no location has
    coordinates and there is no gazetteer to place its words with.
    """
    where = h.location
    placement: dict[str, Any] = {}
    if where.lat is None or where.lon is None:
        if gazetteer is None:
            words = f" (only {_short(where.address, 120)!r})" if where.address else ""
            raise EidoRejected(f"$.locationComponent: no location with coordinates{words}; "
                               "this ECC has no gazetteer: send a PIDF-LO point or circle in "
                               "locationByValue")
        located, placement = locate(gazetteer, where.address)
    else:
        located = Location(lat=where.lat, lon=where.lon, accuracy_m=where.accuracy_m,
                           address=where.address[:500] if where.address else None)
    category, rule = _category(h, catalogue)
    key = "eido-" + hashlib.sha256(f"{h.agency}|{h.incident_uid}".encode()).hexdigest()[:24]
    caller = next((c.caller for c in h.calls if c.caller is not None), None)
    what = h.type_text or h.type_common or h.type_code or "incident handed over"
    summary = f"{what} (EIDO from {h.agency}, incident {h.internal_id or h.incident_uid})"
    return Signal(
        signal_id=f"{key}-{round(h.updated_at.timestamp() * 1000)}", source="eido",
        category=category, origin=key, refers_to=(key,),
        location=located,
        observed_at=min((c.started_at for c in h.calls), default=h.updated_at),
        summary=summary[:2000], confidence=CONFIDENCE, priority=h.priority,
        reporter=Reporter(name=caller.name[:200] if caller.name else None,
                          phone=caller.phone[:40] if caller.phone else None)
        if caller else None,
        details={"agency": h.agency[:200], "incident_uid": h.incident_uid[:300],
                 "internal_id": (h.internal_id or "")[:200], "rule": rule,
                 "type": [(t or "")[:200] for t in (h.type_code, h.type_text, h.type_common)],
                 "status": (h.status or "")[:100], "updated_at": h.updated_at.isoformat(),
                 "calls": len(h.calls),
                 "units": [f"{u.unit_id} {u.status or ''}".strip()[:100] for u in h.units[:20]],
                 "notes": [n.text[:300] for n in h.notes[-5:]],
                 **({"placement": placement} if placement else {})})


def _category(h: Handoff, catalogue: Catalogue) -> tuple[str, str]:
    if h.type_code is not None and h.type_code in catalogue.types:
        return h.type_code, "code"
    c = classify(" ".join(filter(None, (h.type_text, h.type_common, h.type_code))),
                 catalogue.hotline)
    if c.rule != "none":
        return c.category, c.rule
    common = (h.type_common or "").lower()
    for t in catalogue.types.values():
        if any(word in common for word in t.eido.words):
            return t.id, "registry"
    return "other", "none"


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"
