# size: tests of adapters/eido.py: schema, sample, round trips, refusals, export
"""NENA EIDO in and out (adapters/eido.py): the schema with a real OpenAPI validator,
NENA's own sample read and round-tripped, ECC's incidents written, garbage refused."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema.exceptions import SchemaError
from openapi_schema_validator import OAS30Validator

from adapters import eido, eido_out
from adapters.eido import (
    Call,
    Caller,
    Closure,
    EidoRejected,
    Handoff,
    Note,
    Place,
    Responder,
    from_eido,
    parse_eido,
    to_signal,
    validate,
)
from adapters.eido_out import handoff_of, render, to_eido
from command.model import RecordedEvent, Reporter, Signal
from command.settings import builtin_catalogue
from tests.helpers import shared_data
from workflows.geo import Location

CAT = builtin_catalogue()
T0 = datetime(2026, 7, 20, 0, 30, tzinfo=UTC)
EDT = timezone(timedelta(hours=-4))


def sample() -> dict[str, Any]:
    """NENA's own call-transfer sample (NENA911/EIDO-JSON, Samples/)."""
    doc = json.loads(shared_data("nena_eido", "Sample_call_transfer_EIDO.json").read_bytes())
    assert isinstance(doc, dict)
    return doc


# A PIDF-LO point (RFC 5491 shape), put in place of the sample's civic address where a
# test needs a document ECC can place; the rest is NENA's sample unchanged.
POINT = ('<?xml version="1.0" encoding="UTF-8"?><presence xmlns="urn:ietf:params:xml:ns:pidf" '
         'xmlns:gp="urn:ietf:params:xml:ns:pidf:geopriv10" xmlns:gml="http://www.opengis.net/gml"'
         ' entity="pres:alice@atlanta.example.com"><tuple id="t1"><status><gp:geopriv>'
         '<gp:location-info><gml:Point srsName="urn:ogc:def:crs:EPSG::4326">'
         "<gml:pos>39.7459 -75.5466</gml:pos></gml:Point></gp:location-info>"
         "</gp:geopriv></status></tuple></presence>")


# --- the module -------------------------------------------------------------------


@pytest.mark.parametrize("module", [eido, eido_out])
def test_the_core_is_pure(module: Any) -> None:
    """adapters/eido.py and eido_out.py import no I/O library and read no clock."""
    import ast

    source = Path(module.__file__).read_text()
    tree = ast.parse(source)
    imported = {n.module.split(".")[0] for n in ast.walk(tree)
                if isinstance(n, ast.ImportFrom) and n.module} | \
               {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
                for a in n.names}
    assert not imported & {"nats", "asyncpg", "websockets", "asyncio", "structlog", "socket",
                           "subprocess", "random", "time", "urllib", "httpx"}
    assert "datetime.now(" not in source


def test_the_public_names_are_pinned() -> None:
    """They change only on purpose."""
    assert sorted(eido.__all__) == [
        "Call", "Caller", "Closure", "EidoExportError", "EidoRejected",
        "Handoff", "MAX_EIDO_BYTES", "Note", "Place", "Responder", "SCHEMA", "from_eido",
        "parse_eido", "to_signal", "validate"]
    assert sorted(eido_out.__all__) == ["PRIORITY_COMMON", "STATUS_COMMON",
                                        "UNIT_COMMON", "handoff_of", "render", "to_eido"]


# --- the schema -------------------------------------------------------------------


def test_the_bundled_schema_is_nenas_byte_for_byte() -> None:
    """adapters/schema/eido-openapi.yaml is NENA's Schema/openapi.yaml, unmodified."""
    assert eido.SCHEMA.read_bytes() == shared_data("nena_eido", "openapi.yaml").read_bytes()


def test_the_repairs_are_what_makes_nenas_schema_a_schema() -> None:
    """Unrepaired, the validator refuses the schema itself (`minItems: 1,` reads as a
    string); repaired, it is a valid OpenAPI 3.0 schema with no reference left outside."""
    spec = yaml.safe_load(eido.SCHEMA.read_text())
    with pytest.raises(SchemaError, match="'1,' is not of type 'integer'"):
        OAS30Validator.check_schema(spec["components"]["schemas"]["AgentType"])
    repaired = eido._repaired(spec["components"])
    for schema in repaired["schemas"].values():
        OAS30Validator.check_schema(schema)
    assert "NIEMComponents" not in json.dumps(repaired)
    assert "NIEMComponents" in json.dumps(spec["components"])


def test_nenas_sample_is_valid_eido() -> None:
    validate(sample())


@pytest.mark.parametrize(("change", "named"), [
    (lambda d: d["callComponent"][0].update(direction="sideways"),
     "$.callComponent[0].direction: 'sideways' is not one of"),
    (lambda d: d["agencyComponent"][0].pop("agencyType"),
     "$.agencyComponent[0]: 'agencyType' is a required property"),
    (lambda d: d.update(lastUpdateTimeStamp="yesterday"),
     "$.lastUpdateTimeStamp: 'yesterday' is not a 'date-time'"),
    (lambda d: d.update(eidoVersion="2.0"), "$.eidoVersion: '2.0' is not one of ['1.0']"),
    (lambda d: d.pop("agencyComponent"), "$: 'agencyComponent' is a required property"),
    (lambda d: d["personComponent"][0].update(personIncidentRoleRegistryText="Caller"),
     "$.personComponent[0].personIncidentRoleRegistryText: 'Caller' is not of type 'array'"),
    (lambda d: d["agentComponent"][0].update(agentRoleRegistryText=[]),
     "$.agentComponent[0].agentRoleRegistryText: [] should be non-empty"),
])
def test_a_broken_document_is_refused_naming_the_field(change: Any, named: str) -> None:
    """The real validator, through validate() and from_eido(): the first fault by its path."""
    doc = sample()
    change(doc)
    with pytest.raises(EidoRejected) as refused:
        validate(doc)
    assert refused.value.reason.startswith(named), refused.value.reason
    with pytest.raises(EidoRejected, match=r"^\$"):
        from_eido(doc)


def test_a_reference_that_is_not_an_object_is_refused_by_name() -> None:
    """The schema's ReferenceType has no `type: object`, so a bare string passes it; the
    reader refuses it and says where."""
    doc = sample()
    doc["updatedByAgencyReference"] = "state.pa.us"
    validate(doc)
    with pytest.raises(EidoRejected, match=r"^\$\.updatedByAgencyReference: a reference"):
        from_eido(doc)


# --- NENA's sample in, and out again ----------------------------------------------


# Every field of Handoff: what ECC models of an EIDO document.
MODELLED = ("incident_uid", "agency", "agent", "updated_at", "internal_id", "type_code",
            "type_text", "type_common", "priority", "status", "location", "calls", "notes",
            "units", "closure")


def test_the_modelled_fields_are_the_whole_handoff() -> None:
    assert set(MODELLED) == set(Handoff.model_fields)


def test_nenas_sample_imports_with_what_ecc_models() -> None:
    """Each field read from the sample, checked by hand against the file."""
    h = parse_eido(shared_data("nena_eido", "Sample_call_transfer_EIDO.json").read_bytes())
    assert h.incident_uid == "urn:emergency:uid:incidentid:a56e556d871:bcf.state.pa.us"
    assert h.agency == "state.pa.us" and h.agent == "tjones.atroop@state.pa.us"
    assert h.updated_at == datetime(2021, 4, 30, 14, 43, 49, 439000, tzinfo=EDT)
    assert h.location == Place(address="42 W Cellular Street, Wilmington, DE, US")
    assert h.calls == (Call(
        call_id="urn:emergency:uid:callid:a56e556d871:bcf.state.pa.us",
        started_at=datetime(2021, 4, 30, 14, 40, tzinfo=EDT),
        answered_at=datetime(2021, 4, 30, 14, 42, tzinfo=EDT),
        caller=Caller(phone="8195551212")),)  # the tel: of callBackInformationUri
    # the sample has no incidentComponent, notes, units or disposition
    assert (h.internal_id, h.type_code, h.type_text, h.type_common, h.priority, h.status,
            h.notes, h.units, h.closure) == (None, None, None, None, None, None, (), (), None)


def test_nenas_sample_round_trips_without_losing_what_ecc_models() -> None:
    """Sample in, out as EIDO (valid), in again: every modelled field is the same."""
    first = from_eido(sample())
    again = render(first)
    validate(again)
    second = from_eido(again)
    for name in MODELLED:
        assert getattr(second, name) == getattr(first, name), name
    assert second == first


def test_the_sample_has_no_coordinates_so_it_cannot_become_a_signal() -> None:
    """Its locations are a civic address and a URL to dereference: no geocoder here, so
    the refusal names the field and what ECC read."""
    with pytest.raises(EidoRejected) as refused:
        to_signal(from_eido(sample()), CAT)
    assert refused.value.reason.startswith("$.locationComponent: no location with coordinates")
    assert "42 W Cellular Street" in refused.value.reason


def test_with_a_point_the_sample_becomes_a_signal_of_source_eido() -> None:
    doc = sample()
    doc["locationComponent"][0]["locationByValue"] = POINT
    s = to_signal(from_eido(doc), CAT)
    key = s.refers_to[0]
    assert key.startswith("eido-") and s.signal_id.startswith(key + "-")
    assert (s.source, s.category, s.confidence) == ("eido", "other", 0.9)
    assert s.location == Location(lat=39.7459, lon=-75.5466)  # the point replaced the words
    assert s.observed_at == datetime(2021, 4, 30, 14, 40, tzinfo=EDT)
    assert s.reporter == Reporter(phone="8195551212")
    assert s.details["agency"] == "state.pa.us"
    assert to_signal(from_eido(doc), CAT).signal_id == s.signal_id  # the same document, one id
    doc["lastUpdateTimeStamp"] = "2021-04-30T14:50:00-04:00"
    later = to_signal(from_eido(doc), CAT)
    assert later.signal_id != s.signal_id and later.refers_to == (key,)


@pytest.mark.parametrize(("code", "text", "common", "category"), [
    ("gas_leak", "Gas leak", "Gas Leak", "gas_leak"),  # ECC to ECC: the code as it is
    ("FIR-STR", "STRUCTURE FIRE", "Fire", "fire"),  # the hotline rules on the words
    ("10-50", "MVA WITH INJURIES", "Traffic", "traffic"),  # the registry's word
    ("X", "SUSPICIOUS PACKAGE", "Unknown", "other"),
])
def test_the_category_of_a_handoff(code: str, text: str, common: str, category: str) -> None:
    h = Handoff(incident_uid="u1", agency="psap.example", updated_at=T0, type_code=code,
                type_text=text, type_common=common, location=Place(lat=1.0, lon=2.0))
    assert to_signal(h, CAT).category == category


# --- generated handoffs round-trip ------------------------------------------------

_text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30)
# ids from a plain alphabet behind a prefix of their own: a document names its components
# by $id, and two components with one $id (a call named like the incident) would be a
# broken document, not a handoff
_ident = st.text("abcdefghijklmnopqrstuvwxyz0123456789-.@", min_size=1, max_size=20)
_times = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1),
                      timezones=st.sampled_from([UTC, EDT, timezone(timedelta(hours=8))]))
_coords = st.tuples(st.floats(-90, 90), st.floats(-180, 180),
                    st.none() | st.floats(0, 1_000_000))
handoffs = st.builds(
    Handoff, incident_uid=_ident.map("urn:i:".__add__), agency=_ident.map("agency:".__add__),
    agent=st.none() | _text, updated_at=_times,
    internal_id=st.none() | _text, type_code=st.none() | _text, type_text=st.none() | _text,
    type_common=st.none() | _text, priority=st.none() | st.integers(1, 4),
    status=st.none() | _text,
    location=st.one_of(
        st.builds(Place, address=st.none() | _text),
        st.builds(lambda c, a: Place(lat=c[0], lon=c[1], accuracy_m=c[2], address=a),
                  _coords, st.none() | _text)),
    calls=st.lists(st.builds(
        Call, call_id=_ident.map("call:".__add__), started_at=_times,
        answered_at=st.none() | _times,
        caller=st.none() | st.builds(Caller, name=_text, phone=st.none() | _text)
        | st.builds(Caller, name=st.none(), phone=_text)),
        max_size=3, unique_by=lambda c: c.call_id).map(tuple),
    notes=st.lists(st.builds(Note, text=_text, at=_times, by=st.none() | _text),
                   max_size=4).map(lambda ns: tuple(sorted(ns, key=lambda n: n.at))),
    units=st.lists(st.builds(Responder, unit_id=_text,
                             agency=st.none() | _ident.map("ag:".__add__),
                             capability=st.none() | _text, status=st.none() | _text),
                   max_size=3).map(tuple),
    closure=st.none() | st.builds(Closure, status=_text, at=_times, reason=st.none() | _text))


@settings(max_examples=150)
@given(h=handoffs)
def test_every_handoff_survives_the_round_trip(h: Handoff) -> None:
    """render() makes a valid document of any handoff, and from_eido() reads it back whole."""
    assert from_eido(render(h)) == h


# --- garbage in -------------------------------------------------------------------

_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | _text,
                     lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(_text, inner, max_size=4), max_leaves=25)


def _paths(node: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [at]
    if isinstance(node, dict):
        for k, v in node.items():
            found += _paths(v, (*at, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            found += _paths(v, (*at, i))
    return found


@st.composite
def mutated_samples(draw: st.DrawFn) -> Any:
    """NENA's sample with a few of its values replaced by garbage or taken away."""
    doc = sample()
    for _ in range(draw(st.integers(1, 4))):
        paths = [p for p in _paths(doc) if p]
        path = draw(st.sampled_from(paths))
        parent = doc
        for part in path[:-1]:
            parent = parent[part]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(_json)
    return doc


@settings(max_examples=300)
@given(doc=st.one_of(_json, mutated_samples()))
def test_garbage_is_refused_with_a_reason_or_read_never_anything_else(doc: Any) -> None:
    """from_eido and to_signal take anything: a handoff, a signal or EidoRejected."""
    try:
        h = from_eido(copy.deepcopy(doc))
        to_signal(h, CAT)
    except EidoRejected as exc:
        assert exc.reason.startswith("$")


@settings(max_examples=200)
@given(data=st.binary(max_size=512) | _json.map(lambda v: json.dumps(v).encode()))
def test_garbage_bytes_are_refused_with_a_reason(data: bytes) -> None:
    """Random bytes, and random JSON (a root needs six named members, which keys drawn at
    random do not hit), are refused with a reason that starts at the root."""
    with pytest.raises(EidoRejected, match=r"^\$"):
        parse_eido(data)


def test_oversized_and_deep_documents_are_refused() -> None:
    """A document over MAX_EIDO_BYTES, or nested past what can be read, is refused
    saying which."""
    with pytest.raises(EidoRejected, match="limit 524288"):
        parse_eido(b" " * (eido.MAX_EIDO_BYTES + 1))
    with pytest.raises(EidoRejected, match="nested too deep"):
        parse_eido(b"[" * 100_000)


def _root_required() -> list[str]:
    """The members the EIDO schema requires of a document's root (its prologue's and its
    own), read from the bundled schema, so a new schema version is tested as it is."""
    schemas = yaml.safe_load(eido.SCHEMA.read_text())["components"]["schemas"]
    required: list[str] = []
    for part in schemas[eido.ROOT_TYPE]["allOf"]:
        if "$ref" in part:
            part = schemas[part["$ref"].rsplit("/", 1)[-1]]
        required += part.get("required", [])
    return required


ROOT_REQUIRED = _root_required()
_FINITE: dict[str, Any] = {"allow_nan": False, "allow_infinity": False}
_NOT_A_STRING = st.one_of(st.integers(), st.floats(**_FINITE), st.booleans(), st.none(),
                          st.lists(st.integers(), max_size=3))
_NOT_A_DATE_TIME = st.sampled_from(["yesterday", "2021-13-01T00:00:00Z", "", "2021-04-30",
                                    "2021-04-30T14:40:00", "2021-04-30T25:00:00Z"])


@st.composite
def invalid_documents(draw: st.DrawFn) -> tuple[Any, str]:
    """NENA's sample broken in one way it must be refused for, and the field the refusal
    must name."""
    doc = sample()
    kind = draw(st.sampled_from(["missing", "not a string", "not a list", "time",
                                 "version"]))
    if kind == "missing":
        field = draw(st.sampled_from(ROOT_REQUIRED))
        del doc[field]
    elif kind == "not a string":
        field = draw(st.sampled_from(["$id", "issuingElementIdentification",
                                      "lastUpdateTimeStamp", "eidoVersion"]))
        doc[field] = draw(_NOT_A_STRING)
    elif kind == "not a list":
        field = draw(st.sampled_from(["agencyComponent", "callComponent",
                                      "locationComponent", "notesComponent"]))
        doc[field] = draw(st.one_of(st.integers(), st.booleans(), st.none(), _text,
                                    st.dictionaries(_text, _text, max_size=2)))
    elif kind == "time":
        field = "lastUpdateTimeStamp"
        doc[field] = draw(_NOT_A_DATE_TIME)
    else:
        field = "eidoVersion"
        doc[field] = draw(_text.filter(lambda v: v != "1.0"))
    return doc, field


def test_the_schema_requires_what_the_refusals_take_away() -> None:
    """The root members the refusals below take away are the EIDO prologue's and root's,
    and NENA's sample (where they start from) is read whole."""
    assert set(ROOT_REQUIRED) == {"$id", "lastUpdateTimeStamp", "updatedByAgencyReference",
                                  "eidoVersion", "issuingElementIdentification",
                                  "agencyComponent"}
    assert from_eido(sample()).agency == "state.pa.us"


@settings(max_examples=150)
@given(case=invalid_documents())
def test_invalid_documents_are_refused(case: tuple[Any, str]) -> None:
    """A document missing a member the schema requires, with a wrong type, a time that is
    not a date-time or a version that is not 1.0 is refused, naming the member."""
    doc, field = case
    with pytest.raises(EidoRejected) as refused:
        from_eido(doc)
    reason = refused.value.reason
    assert reason.startswith("$") and field in reason, reason


@settings(max_examples=100)
@given(lat=st.floats(-90, 90, **_FINITE), lon=st.floats(-180, 180, **_FINITE),
       off=st.sampled_from(["lat", "lon"]), by=st.floats(1e-6, 1e6, **_FINITE))
def test_a_point_off_the_globe_never_becomes_a_signal(lat: float, lon: float, off: str,
                                                      by: float) -> None:
    """A PIDF-LO point beyond 90 degrees of latitude or 180 of longitude is refused: no
    signal is placed off the earth."""
    if off == "lat":
        lat = (90 + by) if lat >= 0 else (-90 - by)
    else:
        lon = (180 + by) if lon >= 0 else (-180 - by)
    doc = sample()
    doc["locationComponent"][0]["locationByValue"] = POINT.replace(
        "39.7459 -75.5466", f"{lat!r} {lon!r}")
    with pytest.raises(EidoRejected, match=r"^\$\.locationComponent"):
        to_signal(from_eido(doc), CAT)


# --- ECC's incidents out ----------------------------------------------------------


def _event(seq: int, data: dict[str, Any]) -> RecordedEvent:
    return RecordedEvent(seq=seq, event_id=f"e{seq}", stream_id="incident:i-1", version=seq,
                         type=data["type"], data=data, actor="test", recorded_at=T0)


def ecc_incident() -> tuple[dict[str, Any], list[RecordedEvent], list[Signal]]:
    """A resolved fire: a call (with a caller), a camera, a note, an engine sent."""
    at = T0.isoformat()
    call = Signal(signal_id="call-119-1", source="hotline", category="fire",
                  location=Location(lat=34.75, lon=113.66, address="Erqi Road 12"),
                  observed_at=T0, summary="smoke from a shop",
                  reporter=Reporter(name="Li Wei", phone="+86 371 0000 0000"))
    camera = Signal(signal_id="frigate:cam-1:abc", source="video", category="fire",
                    location=Location(lat=34.7501, lon=113.6601), summary="Smoke seen",
                    observed_at=T0 + timedelta(minutes=1))
    later = (T0 + timedelta(minutes=30)).isoformat()
    view = {"incident_id": "i-1", "status": "resolved", "category": "fire", "priority": 2,
            "location": {"lat": 34.75, "lon": 113.66, "accuracy_m": 25.0,
                         "address": "Erqi Road 12"},
            "summary": "smoke from a shop",
            "signals": [{"signal_id": "call-119-1", "source": "hotline", "confidence": 0.7,
                         "at": at},
                        {"signal_id": "frigate:cam-1:abc", "source": "video",
                         "confidence": 0.8, "at": at}],
            "tasks": [{"task_id": "t1", "agency": "fire", "capability": "engine",
                       "status": "completed", "unit_id": "E12", "created_at": at,
                       "updated_at": later}],
            "reported_at": at, "updated_at": later, "version": 9}
    timeline = [
        _event(1, {"type": "incident.reported", "at": at, "incident_id": "i-1",
                   "signal_id": "call-119-1", "source": "hotline", "summary": "smoke"}),
        _event(2, {"type": "incident.verified", "at": at, "by": "system",
                   "reason": "two kinds of source"}),
        _event(3, {"type": "incident.note_added", "at": at, "by": "dispatcher:desk 3",
                   "text": "caller says <2 people> inside & smoke"}),
        _event(4, {"type": "incident.status_changed", "at": later, "by": "supervisor:s1",
                   "status": "resolved", "previous": "on_scene", "reason": ""}),
    ]
    return view, timeline, [call, camera]


def test_an_ecc_incident_exports_as_valid_eido() -> None:
    view, timeline, signals = ecc_incident()
    now = T0 + timedelta(hours=1)
    doc = to_eido(view, timeline=timeline, signals=signals, agency="zz.example", now=now,
                       callers=True, catalogue=CAT)
    validate(doc)
    h = from_eido(doc)
    assert h.incident_uid == "urn:emergency:uid:incidentid:i-1:zz.example"
    assert (h.internal_id, h.type_code, h.type_text, h.priority, h.status) == \
        ("i-1", "fire", "Fire", 2, "resolved")
    assert h.location == Place(lat=34.75, lon=113.66, accuracy_m=25.0, address="Erqi Road 12")
    [call] = h.calls
    assert call.started_at == T0 and call.caller == Caller(name="Li Wei",
                                                           phone="+86-371-0000-0000")
    assert h.units == (Responder(unit_id="E12", agency="fire.zz.example", capability="engine",
                                 status="completed"),)
    assert h.closure == Closure(status="resolved", at=T0 + timedelta(minutes=30))
    texts = [n.text for n in h.notes]
    assert "caller says <2 people> inside & smoke" in texts  # HTML-escaped on the wire
    assert "video signal frigate:cam-1:abc: Smoke seen" in texts
    assert "Status on_scene to resolved" in texts and h.notes == tuple(
        sorted(h.notes, key=lambda n: n.at))
    assert doc["incidentComponent"]["incidentCommonPriorityNumber"] == 7
    assert "&lt;2 people&gt;" in json.dumps(doc["notesComponent"])
    assert to_signal(h, CAT).category == "fire"  # ECC to ECC keeps the category


def test_without_callers_no_name_or_number_leaves() -> None:
    """The caller's name and number go only when asked for; the call itself still goes."""
    view, timeline, signals = ecc_incident()
    doc = to_eido(view, timeline=timeline, signals=signals, agency="zz.example", now=T0,
                       callers=False, catalogue=CAT)
    text = json.dumps(doc)
    assert "Li Wei" not in text and "0000" not in text
    assert len(doc["callComponent"]) == 1 and "personComponent" not in doc
    h = handoff_of(view, timeline=timeline, signals=signals, agency="zz.example", now=T0,
                   callers=True, catalogue=CAT)
    assert h.calls[0].caller is not None


def test_an_export_the_schema_refuses_is_a_bug_not_a_document() -> None:
    h = Handoff(incident_uid="u", agency="a", updated_at=T0,
                calls=(Call(call_id="c", started_at=T0.replace(tzinfo=timezone(
                    timedelta(seconds=30)))),))  # an offset RFC 3339 cannot write
    with pytest.raises(eido.EidoExportError, match=r"\$\.callComponent\[0\]\.\w+: "):
        render(h)
