"""Border (core part): NENA EIDO out, one of ECC's incidents for another agency's CAD.

:func:`handoff_of` makes the :class:`adapters.eido.Handoff` of an incident (its view,
its own events and its signals' evidence); :func:`render` writes a handoff as an EIDO
document and checks it against the schema; :func:`to_eido` does both. Reading one is
:mod:`adapters.eido`. Pure: the time of the document comes in as ``now``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from xml.sax.saxutils import quoteattr

from adapters.eido import (
    GML,
    MAX_CALLS,
    MAX_NOTES,
    MAX_UNITS,
    PIDFLO,
    WGS84,
    Call,
    Caller,
    Closure,
    EidoExportError,
    EidoRejected,
    Handoff,
    Note,
    Place,
    Responder,
    validate,
)
from command.model import RecordedEvent, Signal
from workflows.catalogue import Catalogue
from workflows.incident_messages import Incident, has_ended

__all__ = ["PRIORITY_COMMON", "STATUS_COMMON", "UNIT_COMMON", "handoff_of", "render",
           "to_eido"]

# Each ECC category's incidentTypeCommonRegistryText is its ``eido.common`` in the
# catalogue (NENA's Incident Type registry is not in the schema: these words are the
# catalogue's, and a receiver's own rules decide what they mean); its type text is the
# type's label.
STATUS_COMMON = {"reported": "Pending", "verified": "Open", "dispatching": "Dispatched",
                 "responding": "Enroute", "on_scene": "OnScene", "controlled": "Controlled",
                 "resolved": "Resolved", "closed": "Closed", "cancelled": "Cancelled",
                 "merged": "Merged"}
UNIT_COMMON = {"pending": "Pending", "offered": "Dispatched", "accepted": "Acknowledged",
               "en_route": "Enroute", "on_scene": "OnScene", "completed": "Cleared",
               "cancelled": "Cancelled"}
RESPONDER = {"health": "ems", "medical": "ems"}  # ECC agency to the IANA responder type
# ECC's priority 1 (life at risk now) .. 4 (routine) to incidentCommonPriorityNumber,
# 0 (lowest) .. 10 (highest); back: 8-10 is 1, 5-7 is 2, 2-4 is 3, 0-1 is 4
PRIORITY_COMMON = {1: 10, 2: 7, 3: 4, 4: 1}


def handoff_of(view: Incident | Mapping[str, Any], *, timeline: Sequence[RecordedEvent],
               signals: Sequence[Signal], agency: str, now: datetime, callers: bool,
               catalogue: Catalogue, agent: str | None = None) -> Handoff:
    """The handoff of one of ECC's incidents.

    ``view`` is the incident's state (the projection's ``view``), ``timeline`` its
    own events, ``signals`` its signals' evidence (``signal.received``), ``agency``
    this command centre's agency id (a domain), ``now`` the time of the document.
    With ``callers`` the callers' names and numbers go too (personal data, for the
    receiving CAD to call back); without it, only that there was a call.

    Every hotline, console and EIDO signal (and any with a reporter) is a call;
    the other evidence (sensors, cameras, CAP), the lifecycle (reported, verified,
    status changes, escalations) and people's notes are notes, in time order.
    """
    incident = view if isinstance(view, Incident) else Incident.model_validate(view)
    evidence = {s.signal_id: s for s in signals}
    calls: list[Call] = []
    notes: list[Note] = []
    for ref in incident.signals:
        s = evidence.get(ref.signal_id)
        if s is None:
            continue
        if s.source in ("hotline", "eido") or s.reporter is not None:
            who = s.reporter if callers else None
            calls.append(Call(
                call_id=f"urn:emergency:uid:callid:{s.source}-{s.signal_id}:{agency}",
                started_at=s.observed_at, answered_at=ref.at,
                caller=Caller(name=who.name or None, phone=_tel(who.phone))
                if who is not None and (who.name or who.phone) else None))
        else:
            notes.append(Note(text=f"{s.source} signal {s.signal_id}: {s.summary}".strip(),
                              at=s.observed_at, by=f"signal:{s.source}"))
    closed_at = None
    for e in timeline:
        note = _lifecycle(e.data)
        if note is not None:
            notes.append(note)
        if e.type == "incident.status_changed" and e.data.get("status") == incident.status:
            closed_at = e.data.get("at")
    known = catalogue.types.get(incident.category)
    units = tuple(Responder(unit_id=t.unit_id, agency=f"{t.agency}.{agency}",
                            capability=t.capability, status=t.status)
                  for t in incident.tasks if t.unit_id is not None)
    closure = None
    if has_ended(incident):
        at = datetime.fromisoformat(closed_at) if isinstance(closed_at, str) else \
            incident.updated_at
        closure = Closure(status=incident.status, at=at, reason=incident.close_reason)
    where = incident.location
    return Handoff(
        incident_uid=f"urn:emergency:uid:incidentid:{incident.incident_id}:{agency}",
        agency=agency, agent=agent, updated_at=now, internal_id=incident.incident_id,
        type_code=incident.category,
        type_text=known.label if known else incident.category.replace("_", " ").title(),
        type_common=known.eido.common if known else "Other", priority=incident.priority,
        status=incident.status,
        location=Place(lat=where.lat, lon=where.lon, accuracy_m=where.accuracy_m,
                       address=where.address),
        calls=tuple(calls[:MAX_CALLS]),
        notes=tuple(sorted(notes, key=lambda n: n.at)[-MAX_NOTES:]),
        units=units[:MAX_UNITS], closure=closure)


def _lifecycle(data: Mapping[str, Any]) -> Note | None:
    """A line of the incident's story for the receiving dispatcher, or None."""
    kind, at, by = data.get("type"), data.get("at"), data.get("by")
    if not isinstance(at, str):
        return None
    text = None
    if kind == "incident.reported":
        text = f"Reported by {data.get('source')} signal {data.get('signal_id')}: " \
               f"{data.get('summary', '')}".strip()
        by = f"signal:{data.get('source')}"
    elif kind == "incident.verified":
        text = f"Verified: {data.get('reason', '')}".strip()
    elif kind == "incident.status_changed":
        text = f"Status {data.get('previous')} to {data.get('status')}"
        if data.get("reason"):
            text += f": {data['reason']}"
    elif kind == "incident.escalated":
        text = f"Escalated ({data.get('rule')}): {data.get('reason', '')}".strip()
    elif kind == "incident.note_added":
        text = str(data.get("text", ""))
    elif kind == "incident.reclassified":
        text = f"Reclassified {data.get('previous')} to {data.get('category')}"
    elif kind == "incident.priority_changed":
        text = f"Priority {data.get('previous')} to {data.get('priority')}: " \
               f"{data.get('reason', '')}".strip()
    if not text:
        return None
    return Note(text=text, at=datetime.fromisoformat(at),
                by=by if isinstance(by, str) and by else None)


def _tel(phone: str | None) -> str | None:
    """A number as a ``tel:`` URI carries it: spaces become ``-`` (RFC 3966)."""
    return re.sub(r"\s+", "-", phone.strip()) or None if phone else None


def render(h: Handoff) -> dict[str, Any]:
    """The EIDO document of a handoff, checked against the schema.

    Raises :class:`EidoExportError` if the schema refuses it (a bug here).
    """
    doc = _document(h)
    try:
        validate(doc)
    except EidoRejected as exc:
        raise EidoExportError(f"ECC made an EIDO document the schema refuses: "
                              f"{exc.reason}") from exc
    return doc


def to_eido(view: Incident | Mapping[str, Any], *, timeline: Sequence[RecordedEvent],
            signals: Sequence[Signal], agency: str, now: datetime, callers: bool,
            catalogue: Catalogue, agent: str | None = None) -> dict[str, Any]:
    """:func:`handoff_of`, then :func:`render`: one of ECC's incidents as EIDO."""
    return render(handoff_of(view, timeline=timeline, signals=signals, agency=agency,
                             now=now, callers=callers, catalogue=catalogue,
                             agent=agent))


def _document(h: Handoff) -> dict[str, Any]:
    uid, stamp = h.incident_uid, h.updated_at.isoformat()

    def prologue(id_: str, at: str = stamp, by: str | None = None) -> dict[str, Any]:
        head: dict[str, Any] = {"$id": id_, "lastUpdateTimeStamp": at,
                                "updatedByAgencyReference": {"$ref": h.agency}}
        if by is not None:
            head["updatedByAgentReference"] = {"$ref": by}
        return head

    doc = prologue(uid, by=h.agent)
    doc.update({"eidoVersion": "1.0", "issuingElementIdentification": f"ecc.{h.agency}"})
    location_ref: list[dict[str, str]] = []
    locations = []
    where = h.location
    if where.lat is not None or where.address:
        location = prologue(f"{uid}:location")
        location["locationTypeDescriptionRegistryText"] = "Incident"
        if where.lat is not None and where.lon is not None:
            location["locationByValue"] = _pidf(where, h.agency)
        if where.address:
            location["locationDescriptionText"] = where.address
        locations.append(location)
        location_ref = [{"$ref": location["$id"]}]
    incident_fields = (h.internal_id, h.type_code, h.type_text, h.type_common, h.priority,
                       h.status, h.closure)
    if any(x is not None for x in incident_fields):
        incident = prologue(f"{uid}:incident")
        incident["incidentTypeCommonRegistryText"] = h.type_common or ""
        for key, value in (("incidentTypeInternalCode", h.type_code),
                           ("incidentTypeInternalText", h.type_text),
                           ("internalIncidentId", h.internal_id)):
            if value is not None:
                incident[key] = value
        if h.status is not None:
            incident["incidentStatusInternalText"] = [h.status]
            incident["incidentStatusCommonRegistryText"] = [STATUS_COMMON.get(h.status,
                                                                              h.status)]
        if h.priority is not None:
            incident["incidentCommonPriorityNumber"] = PRIORITY_COMMON[h.priority]
            incident["incidentPriorityInternalText"] = f"P{h.priority}"
        if location_ref:
            incident["locationReference"] = location_ref
        if h.closure is not None:
            end = h.closure
            disposition = prologue(f"{uid}:disposition", at=end.at.isoformat())
            disposition.update({"dispositionCommonRegistryCode": end.status.capitalize(),
                                "dispositionPrimaryIndicator": True,
                                "dispositionCategoryText": end.status})
            if end.reason is not None:
                disposition["dispositionDescriptionText"] = end.reason
            incident["dispositionComponent"] = [disposition]
        doc["incidentComponent"] = incident
    calls, persons, callbacks = [], [], []
    for call in h.calls:
        c = prologue(call.call_id, at=(call.answered_at or call.started_at).isoformat())
        c.update({"standardPrimaryCallType": "emergency", "direction": "incoming",
                  "callStartTimestamp": call.started_at.isoformat(),
                  "callStateRegistryText": "callEnd"})
        if call.answered_at is not None:
            c["answerDate"] = call.answered_at.isoformat()
        if location_ref:
            c["locationReference"] = location_ref
        who = call.caller
        if who is not None:
            person = prologue(f"{call.call_id}:caller")
            person.update({"personIncidentRoleRegistryText": ["Caller"],
                           "callIdentifier": [call.call_id]})
            if who.name is not None:
                person["ncPersonComponent"] = {"name": [{"personFullName": who.name}]}
            if who.phone is not None:
                callback = prologue(f"{call.call_id}:callback")
                callback["callBackInformationUri"] = [
                    who.phone if re.match(r"^[a-z][a-z0-9+.\-]*:", who.phone, re.I)
                    and not who.phone.lower().startswith("tel:") else f"tel:{who.phone}"]
                callbacks.append(callback)
                person["callBackReference"] = c["callBackReference"] = {"$ref":
                                                                        callback["$id"]}
            persons.append(person)
            c["personReference"] = [{"$ref": person["$id"]}]
        calls.append(c)
    agencies = [{**prologue(h.agency), "agencyRoleDescriptionRegistryText": ["Dispatch"],
                 "agencyType": ["psap"], "incidentOwningAgencyIndicator": True}]
    resources, dispatches = [], []
    by_agency: dict[str, list[dict[str, str]]] = {}
    for n, unit in enumerate(h.units):
        r = prologue(f"{uid}:unit:{n}")
        r.update({"agentReference": [], "emergencyResourceName": unit.unit_id,
                  "emergencyResourceTypeCommonRegistryText": unit.capability or "",
                  "primaryUnitStatusRegistryText": UNIT_COMMON.get(unit.status or "",
                                                                   unit.status or ""),
                  "resourceAttributeRegistryText": [], "secondaryUnitStatusRegistryText": []})
        if unit.capability is not None:
            r["emergencyResourceTypeInternalText"] = unit.capability
        if unit.status is not None:
            r["unitStatusInternal"] = [unit.status]
        resources.append(r)
        if unit.agency is not None:
            by_agency.setdefault(unit.agency, []).append({"$ref": r["$id"]})
    for n, (agency, refs) in enumerate(by_agency.items()):
        if agency != h.agency:
            kind = agency.partition(".")[0]
            agencies.append({**prologue(agency),
                             "agencyRoleDescriptionRegistryText": ["Responding"],
                             "agencyType": [RESPONDER.get(kind, kind)]})
        dispatches.append({**prologue(f"{uid}:dispatch:{n}"), "agencyReference": {"$ref": agency},
                           "emergencyResourceReference": refs})
    notes = [{**prologue(f"{uid}:note:{n}", at=note.at.isoformat(), by=note.by),
              "notesActionComments": html.escape(note.text, quote=False)}
             for n, note in enumerate(h.notes)]
    for key, items in (("callComponent", calls), ("callbackComponent", callbacks),
                       ("dispatchComponent", dispatches), ("notesComponent", notes),
                       ("emergencyResourceComponent", resources),
                       ("agencyComponent", agencies), ("locationComponent", locations),
                       ("personComponent", persons)):
        if items or key == "agencyComponent":
            doc[key] = items
    return doc


def _pidf(where: Place, agency: str) -> str:
    """A PIDF-LO (RFC 4119, shapes of RFC 5491) with the point, or the circle of its
    accuracy, in WGS 84, latitude first."""
    pos = f"<gml:pos>{where.lat!r} {where.lon!r}</gml:pos>"
    shape = (f'<gs:Circle srsName="{WGS84}">{pos}<gs:radius uom="urn:ogc:def:uom:EPSG::9001">'
             f"{where.accuracy_m!r}</gs:radius></gs:Circle>"
             if where.accuracy_m is not None else f'<gml:Point srsName="{WGS84}">{pos}</gml:Point>')
    return ('<?xml version="1.0" encoding="UTF-8"?>'
            '<presence xmlns="urn:ietf:params:xml:ns:pidf" '
            'xmlns:gp="urn:ietf:params:xml:ns:pidf:geopriv10" '
            f'xmlns:gml="{GML}" xmlns:gs="{PIDFLO}" entity={quoteattr("pres:" + agency)}>'
            f'<tuple id="incident"><status><gp:geopriv><gp:location-info>{shape}'
            "</gp:location-info><gp:usage-rules/><gp:method>Derived</gp:method></gp:geopriv>"
            "</status></tuple></presence>")
