"""Border (core part): OASIS CAP 1.0 / 1.1 / 1.2 alerts in.

:func:`parse_cap` reads an alert into an :class:`Alert`, once, with an lxml
parser that resolves no entity, loads no DTD and fetches nothing (a document
with a DOCTYPE is refused outright). Then, in order:

1. the signature, the schema and the sender's policy (:mod:`adapters.cap_trust`):
   a refusal names the check (:class:`CapRejected` ``code``); what passes is
   read from the signed copy signxml returns, never from bytes around it;
2. its header, its ``references`` (the alerts an Update or Cancel refers to;
   only the sender's own alerts: a reference to another sender's alert is
   dropped and said so in :func:`understand`) and its content digest (C14N of
   the alert without its signature), which tells a second copy of the same
   alert with other content (:func:`copy_key`) from a repeat;
3. for each info block and area, a located :class:`command.model.Signal`: its
   polygons and circles are tested by intersection with the city's
   :class:`adapters.area.Area` and placed at a point of the intersection; an
   area outside the city is listed in ``outside`` (dropped), one given only by
   geocodes in ``unplaced``.

:func:`understand` says, for ``ecc cap check`` and the ingress answer, what ECC
will do with it. An Update's signals name the alerts it replaces
(``refers_to``); a Cancel becomes a :class:`command.model.Retraction` of them.
Emitting CAP is :mod:`adapters.cap_out`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import shapely
from lxml import etree
from shapely.geometry import MultiPoint, Polygon
from shapely.geometry.base import BaseGeometry

from adapters.area import Area, AreaError, place, polygon, shape_of
from adapters.cap_classify import classify, rules_of
from adapters.cap_trust import Trust, Verdict, verify, violations
from adapters.gazetteer import Gazetteer, scheme_of
from adapters.placement import outline
from command.model import Retraction, Signal
from command.settings import builtin_catalogue
from workflows.catalogue import Catalogue
from workflows.geo import Location, unknown_at

NAMESPACES = {
    "urn:oasis:names:tc:emergency:cap:1.2": "1.2",
    "urn:oasis:names:tc:emergency:cap:1.1": "1.1",
    "http://www.incident.com/cap/1.0": "1.0",
}
# Real national alerts with warning polygons reach about 1 MB; 4 MiB leaves room for
# the largest without letting one alert fill the broker (its max_payload is 5 MiB).
MAX_ALERT_BYTES = 4 * 1024 * 1024
# Which type an info block is: the catalogue's ``cap`` entries (adapters.cap_classify).
CERTAINTY = {"Observed": 0.95, "Likely": 0.8, "Possible": 0.5, "Unlikely": 0.2,
             "Very Likely": 0.8, "Unknown": 0.4}
# What the sender's own judgement does to the signals (docs/adapters.md, "msgType,
# urgency and certainty"): an event that is over (urgency Past) or not expected
# (certainty Unlikely) is never news to raise at the type's priority. Its signals
# are lowered to this priority and at most this confidence, so they are on record
# but neither verify nor dispatch on their own; an Update saying Unlikely takes the
# alerts it updates back instead.
LOWERED_PRIORITY = 4
LOWERED_CONFIDENCE = 0.2


def lowered(urgency: str, certainty: str) -> str | None:
    """Why an info block's signals are lowered (None: they are not)."""
    if urgency == "Past":
        return "urgency Past: the event is over, no action is needed"
    if certainty == "Unlikely":
        return "certainty Unlikely: the event is not expected to occur"
    return None


def event_codes(info: etree._Element, ns: str) -> list[tuple[str, str]]:
    """The info block's ``<eventCode>`` values as (scheme, value): CAP 1.1 and 1.2
    ``<valueName>``/``<value>``, CAP 1.0 ``valueName=value`` text."""
    codes: list[tuple[str, str]] = []
    for el in info.findall(f"{ns}eventCode")[:50]:
        name, value = _text(el.find(f"{ns}valueName")), _text(el.find(f"{ns}value"))
        if not name and "=" in _text(el):
            name, _, value = _text(el).partition("=")
        if name and value:
            codes.append((name[:100], value[:100]))
    return codes


class CapRejected(ValueError):
    """An alert ECC cannot accept; ``reason`` says why in words an integrator can act on,
    ``code`` which check refused it (``invalid``, ``oversized``, ``cap_signature``,
    ``cap_unsigned``, ``cap_schema``): the dead letter's reason code."""

    def __init__(self, reason: str, code: str = "invalid") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


@dataclass
class Alert:
    version: str
    identifier: str
    sender: str
    sent: datetime
    status: str
    msg_type: str
    scope: str
    sent_text: str = ""
    references: list[tuple[str, str, str]] = field(default_factory=list)  # the sender's own
    foreign: list[tuple[str, str, str]] = field(default_factory=list)  # other senders': dropped
    signals: list[Signal] = field(default_factory=list)
    unplaced: list[str] = field(default_factory=list)  # areas with no coordinates
    outside: list[str] = field(default_factory=list)  # areas that do not meet the city's
    retraction: Retraction | None = None  # a Cancel: the alerts it takes back
    verdict: Verdict = field(default_factory=lambda: Verdict("unsigned"))
    violation_count: int = 0
    violations: list[str] = field(default_factory=list)
    digest: str = ""  # SHA-256 of the alert's C14N without its signature

    @property
    def acted_on(self) -> bool:
        """Only Actual alerts become signals; Exercise, System, Test and Draft do not."""
        return self.status == "Actual"

    @property
    def trust(self) -> dict[str, Any]:
        """What the signals carry in ``details["cap"]`` (and the console shows)."""
        return {"signature": self.verdict.label, "signer": self.verdict.signer,
                "schema": "valid" if not self.violation_count else
                          f"{self.violation_count} violation(s) of the CAP {self.version} schema",
                "violations": self.violations, "digest": self.digest}


def alert_key(sender: str, identifier: str) -> str:
    """The id prefix of every signal one alert produces (``<key>-<info>-<area>``), so an
    Update or Cancel that references the alert names them all."""
    digest = hashlib.sha256(f"{sender}|{identifier}".encode()).hexdigest()[:24]
    return f"cap-{digest}"


def copy_key(alert: Alert) -> str:
    """One alert's name across its copies (CAP's sender, identifier and sent): two copies
    with this key and different :attr:`Alert.digest` are a conflict."""
    name = f"{alert.sender}|{alert.identifier}|{alert.sent_text}"
    return hashlib.sha256(name.encode()).hexdigest()[:32]


def _text(el: etree._Element | None) -> str:
    return (el.text or "").strip() if el is not None else ""


def read_xml(data: bytes) -> etree._Element:
    """The document's root, parsed once without entities, DTDs or network (CAP and the
    index feeds that list it, :mod:`adapters.cap_poll`). Raises :class:`CapRejected`."""
    return _read(data)


def _read(data: bytes) -> etree._Element:
    """The document's root, parsed once without entities, DTDs or network."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             huge_tree=False, remove_pis=True)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise CapRejected(f"not well-formed XML: {exc}"[:500]) from exc
    except (ValueError, TypeError) as exc:  # e.g. a declared encoding lxml does not know
        raise CapRejected(f"not readable XML: {exc}"[:500]) from exc
    if root is None:
        raise CapRejected("not well-formed XML: no root element")
    if root.getroottree().docinfo.doctype:  # type: ignore[union-attr] # lxml-stubs: a DocInfo
        # No entity of a DTD is ever expanded or fetched; CAP has no use for one at all.
        raise CapRejected("unsafe XML refused: a DOCTYPE (DTD, entities) is not allowed in CAP")
    return root


def _place(area: etree._Element, ns: str, city: Area | None,
           gazetteer: Gazetteer | None = None) -> tuple[Location | bool | None, dict[str, Any]]:
    """The area's location where it meets ``city`` and what the signal's details keep of
    it (``area``: its polygon for the map; ``placement``: the geocodes it was placed by).
    None with no coordinates (and no geocode a ``gazetteer`` could read); False when it
    does not meet the city's area. Geocodes none of which the city's code list holds give
    a location unknown (at the gazetteer's centre, with the codes that failed)."""
    desc = _text(area.find(f"{ns}areaDesc"))[:500] or None
    polygons = [_text(p) for p in area.findall(f"{ns}polygon")]
    found = shape_of(polygons, [_text(c) for c in area.findall(f"{ns}circle")])
    kept: dict[str, Any] = {}
    if found is None and gazetteer is not None:
        codes = _geocodes(area, ns)
        if codes:
            return _by_codes(codes, city, gazetteer, desc)
    if found is None:
        return None, kept
    shape, natural = found
    where = place(shape, natural, city)
    if where is None:
        return False, kept
    if any(p.strip() for p in polygons) and isinstance(shape, Polygon):
        kept["area"] = outline([(y, x) for x, y in shape.exterior.coords])
    radius = None
    circles = area.findall(f"{ns}circle")
    if circles and not area.findall(f"{ns}polygon"):
        radius = float(_text(circles[0]).partition(" ")[2] or 0) * 1000
    return Location(lat=where[0], lon=where[1], accuracy_m=radius, address=desc), kept


def _geocodes(area: etree._Element, ns: str) -> list[tuple[str, str]]:
    """An area's ``<geocode>`` pairs (valueName, value); CAP 1.0's ``name=value`` too."""
    out = []
    for g in area.findall(f"{ns}geocode")[:100]:
        name, value = _text(g.find(f"{ns}valueName")), _text(g.find(f"{ns}value"))
        if not name and "=" in _text(g):
            name, _, value = _text(g).partition("=")
        if value:
            out.append((name.strip()[:40], value.strip()[:40]))
    return out


def _by_codes(codes: list[tuple[str, str]], city: Area | None, gazetteer: Gazetteer,
              desc: str | None) -> tuple[Location | bool, dict[str, Any]]:
    """An area given only by geocodes, placed from the city's code list."""
    known, missed = [], []
    for name, value in codes:
        scheme = scheme_of(name)
        hit = gazetteer.code(scheme, value) if scheme else None
        if hit is None:
            missed.append(f"{name} {value}")
        else:
            known.append((f"{name} {value}", hit[0], hit[1]))
    record: dict[str, Any] = {"geocodes": [
        {"code": said, "area": a.name[:100], "found": how} for said, a, how in known[:20]],
        "not_in_code_list": missed[:20]}
    if not known:
        reason = (f"no geocode of the area is in the city's code list "
                  f"({', '.join(missed[:5])})")
        return unknown_at(gazetteer.centre, reason, desc), {"placement": record}
    rings = [a.polygon for _, a, _ in known if a.polygon]
    shape: BaseGeometry = shapely.union_all([polygon(list(r)) for r in rings]) if rings \
        else MultiPoint([(a.lon, a.lat) for _, a, _ in known])
    where = place(shape, shape.centroid, city)
    if where is None:
        return False, {}
    kept: dict[str, Any] = {"placement": record}
    if rings:
        kept["area"] = outline(list(rings[0]))
    return Location(lat=where[0], lon=where[1], address=desc), kept


def _digest(root: etree._Element) -> str:
    """The alert's content digest (copies of one alert are compared by it): of its
    canonical form, or, for a tree canonicalisation refuses (a namespace C14N cannot
    write, found by hypothesis), of its plain serialisation; either way the same bytes
    give the same digest."""
    try:
        data = etree.tostring(root, method="c14n")
    except etree.C14NError:
        data = etree.tostring(root)
    return hashlib.sha256(data).hexdigest()


def parse_cap(data: bytes, trust: Trust | None = None, area: Area | None = None, *,
              now: datetime | None = None, catalogue: Catalogue | None = None,
              gazetteer: Gazetteer | None = None) -> Alert:
    """Parse one CAP alert, check it against ``trust`` (no rules: unsigned accepted and
    flagged, any signature must verify) and place it in ``area`` (None: anywhere).
    ``now`` is when certificates must be valid (None: the clock's now). ``catalogue``
    classifies each info block (:mod:`adapters.cap_classify`; None: the built-in one).
    ``gazetteer`` places areas given only by geocodes (the city's code list).

    Raises :class:`CapRejected` with the reason and the check's code.
    """
    if len(data) > MAX_ALERT_BYTES:
        raise CapRejected(f"the alert is {len(data)} bytes; the limit is {MAX_ALERT_BYTES}",
                          "oversized")
    root = _read(data)
    match = re.match(r"^\{(.+)\}alert$", str(root.tag))
    if match is None or match.group(1) not in NAMESPACES:
        raise CapRejected(f"not a CAP alert: root element {str(root.tag)[:200]!r}")
    ns = "{" + match.group(1) + "}"
    version = NAMESPACES[match.group(1)]
    claimed = _text(root.find(f"{ns}sender"))
    if not claimed or not _text(root.find(f"{ns}identifier")):
        raise CapRejected("an alert needs <identifier> and <sender>")
    rule = (trust or Trust()).rule(claimed)
    verdict, root = verify(root, rule, now)  # from here on: the signed copy, if signed
    if verdict.status == "invalid":
        raise CapRejected(f"the signature is invalid: {verdict.reason}; the alert was refused "
                          "(ask the sender to check its signing key and certificate)",
                          "cap_signature")
    if verdict.status == "unsigned" and rule.signature_required:
        raise CapRejected(f"{claimed[:200]} must sign its alerts (policy signature_required) "
                          "and this one is unsigned", "cap_unsigned")
    count, found = violations(root, version)
    if count and rule.schema_required:
        raise CapRejected(f"{count} violation(s) of the CAP {version} schema (policy "
                          f"schema_required): {'; '.join(found[:3])}"[:1000], "cap_schema")
    sent_text = _text(root.find(f"{ns}sent"))
    try:
        sent = datetime.fromisoformat(sent_text)
    except ValueError as exc:
        raise CapRejected(f"<sent> is not a time: {exc}"[:500]) from exc
    if sent.tzinfo is None:
        raise CapRejected("<sent> has no time zone")
    alert = Alert(
        version=version, identifier=_text(root.find(f"{ns}identifier")),
        sender=_text(root.find(f"{ns}sender")), sent=sent, sent_text=sent_text,
        status=_text(root.find(f"{ns}status")), msg_type=_text(root.find(f"{ns}msgType")),
        scope=_text(root.find(f"{ns}scope")), verdict=verdict, violation_count=count,
        violations=found,
        digest=_digest(root))
    for ref in _text(root.find(f"{ns}references")).split():
        parts = ref.split(",")
        if len(parts) != 3:
            raise CapRejected(f"<references> entry {ref[:200]!r} is not sender,identifier,sent")
        named = (parts[0], parts[1], parts[2])
        own = parts[0].casefold() == alert.sender.casefold()
        (alert.references if own else alert.foreign).append(named)
    if alert.msg_type in ("Update", "Cancel") and not (alert.references or alert.foreign):
        raise CapRejected(f"a {alert.msg_type} must name the alerts it replaces in <references>")
    refers_to = tuple(dict.fromkeys(alert_key(snd, ident) for snd, ident, _ in alert.references))
    if alert.msg_type == "Cancel":
        if refers_to:
            alert.retraction = Retraction(
                retraction_id=alert_key(alert.sender, alert.identifier), source="cap",
                refers_to=refers_to[:16], at=alert.sent,
                reason=f"CAP Cancel {alert.identifier[:200]} from {alert.sender[:200]}")
        return alert  # a Cancel's info blocks (if any) describe what ends, not news
    if alert.msg_type in ("Ack", "Error"):
        return alert  # answers to alerts, not about the world
    rules = rules_of(catalogue or builtin_catalogue())
    infos = root.findall(f"{ns}info")
    judged = [lowered(_text(info.find(f"{ns}urgency")), _text(info.find(f"{ns}certainty")))
              for info in infos]
    if alert.msg_type == "Update" and refers_to and infos and all(
            why is not None and why.startswith("certainty") for why in judged):
        # the sender no longer expects what it warned of: take the warning back
        alert.retraction = Retraction(
            retraction_id=alert_key(alert.sender, alert.identifier), source="cap",
            refers_to=refers_to[:16], at=alert.sent,
            reason=f"CAP Update {alert.identifier[:200]} from {alert.sender[:200]}: "
                   "certainty Unlikely")
        return alert
    for i, (info, why) in enumerate(zip(infos, judged, strict=True)):
        event = _text(info.find(f"{ns}event"))
        headline = _text(info.find(f"{ns}headline"))
        cap_category = _text(info.find(f"{ns}category"))
        guess = classify(rules, event=event, headline=headline, category=cap_category,
                         codes=event_codes(info, ns))
        category = guess.category
        confidence = CERTAINTY.get(_text(info.find(f"{ns}certainty")), 0.4)
        priority = None
        if why is not None:
            confidence, priority = min(confidence, LOWERED_CONFIDENCE), LOWERED_PRIORITY
        for j, area_el in enumerate(info.findall(f"{ns}area")):
            desc = " ".join(_text(area_el.find(f"{ns}areaDesc")).split())[:500] or \
                f"info {i} area {j}"
            try:
                where, kept = _place(area_el, ns, area, gazetteer)
            except (AreaError, ValueError) as exc:
                raise CapRejected(f"info {i} area {j}: {exc}"[:500]) from exc
            if where is None:
                alert.unplaced.append(desc)
                continue
            if where is False:
                alert.outside.append(desc)
                continue
            assert isinstance(where, Location)
            alert.signals.append(Signal(
                signal_id=f"{alert_key(alert.sender, alert.identifier)}-{i}-{j}", source="cap",
                origin=alert_key(alert.sender, alert.identifier),
                category=category, refers_to=refers_to[:16],
                location=where, observed_at=alert.sent, summary=(headline or event)[:2000],
                confidence=confidence, priority=priority,
                details={"identifier": alert.identifier[:200], "sender": alert.sender[:200],
                         "msg_type": alert.msg_type, "cap_category": cap_category[:100],
                         "event": event[:200], "rule": guess.rule,
                         "classified": guess.reason[:300], "lowered": why,
                         "cap": alert.trust, **kept}))
    return alert


def understand(alert: Alert) -> list[str]:
    """Lines saying what ECC will do with the alert (``ecc cap check``, the ingress answer):
    its signature and schema verdicts, what it updates or cancels, where each signal is
    placed and which areas are dropped as outside the city's area."""
    head = (f"{alert.identifier} from {alert.sender}: CAP {alert.version} {alert.status} "
            f"{alert.msg_type} ({alert.scope})")
    signer = f" by {alert.verdict.signer}" if alert.verdict.signer else ""
    lines = [head, f"  signature: {alert.verdict.label}{signer}",
             f"  schema: {alert.trust['schema']}"]
    lines += [f"    {v}" for v in alert.violations]
    if not alert.acted_on:
        lines.append(f"  not acted on: status {alert.status} (only Actual alerts become signals)")
        return lines
    verb = {"Cancel": "cancels", "Update": "updates"}.get(alert.msg_type, "answers")
    if alert.msg_type in ("Update", "Cancel", "Ack", "Error"):
        for sender, ident, _ in alert.references:
            lines.append(f"  {verb} {ident} from {sender}")
    if alert.msg_type in ("Update", "Cancel"):
        for sender, ident, _ in alert.foreign:
            lines.append(f"  ignored: {ident} from {sender} is another sender's alert (a "
                         f"{alert.msg_type} acts only on the sender's own alerts)")
    if alert.retraction is not None and alert.msg_type == "Update":
        lines.append("  certainty Unlikely: retracts the signals of those alerts rather than "
                     "raising anything (each incident they are on loses them)")
    elif alert.retraction is not None:
        lines.append("  retracts the signals of those alerts: each incident they are on loses "
                     "them (and is cancelled if nothing else reports it and no unit is sent)")
    elif alert.msg_type == "Cancel":
        lines.append("  cancels nothing: none of its references is the sender's own alert")
    for s in alert.signals:
        if s.location.unknown:
            lines.append(f"  signal {s.signal_id}: {s.category}, location unknown "
                         f"({s.location.unknown[:120]})")
            continue
        lines.append(f"  signal {s.signal_id}: {s.category} at {s.location.lat:.4f}, "
                     f"{s.location.lon:.4f} ({s.summary[:60]})")
        lines.append(f"    classified: {s.details.get('classified', '')}")
        if s.details.get("lowered"):
            lines.append(f"    lowered to priority {s.priority}, confidence "
                         f"{s.confidence:.2f}: {s.details['lowered']}")
    for desc in alert.outside:
        lines.append(f"  outside the city's area, dropped: {desc[:80]}")
    for desc in alert.unplaced:
        lines.append(f"  area without coordinates, not placed: {desc[:80]}")
    if alert.msg_type in ("Alert", "Update") and not alert.signals \
            and alert.retraction is None:
        lines.append("  raises nothing: no area of the alert is placed in the city's area")
    return lines
