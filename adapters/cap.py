"""Border (core part): OASIS CAP 1.0 / 1.1 / 1.2 alerts in.

:func:`parse_cap` reads an alert with defusedxml (safe against entity
expansion and external entities) into an :class:`Alert`: its header, its
``references`` (the alerts an Update or Cancel refers to) and, for each info
block and area, a located :class:`command.model.Signal` (a polygon's centroid or
a circle's centre; an area given only by geocodes cannot be placed and is
reported as such). :func:`understand` says, for ``ecc cap check``, what ECC
would do with it. An Update's signals name the alerts it replaces
(``refers_to``); a Cancel becomes a :class:`command.model.Retraction` of them.
Emitting CAP is :mod:`adapters.cap_out`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from xml.etree.ElementTree import Element

from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException

from adapters.hotline import classify
from command.model import Retraction, Signal
from workflows.geo import Location

NAMESPACES = {
    "urn:oasis:names:tc:emergency:cap:1.2": "1.2",
    "urn:oasis:names:tc:emergency:cap:1.1": "1.1",
    "http://www.incident.com/cap/1.0": "1.0",
}
MAX_ALERT_BYTES = 512 * 1024
# CAP <category> to ECC's, when the event text says nothing more specific.
CATEGORY = {"Fire": "fire", "Health": "medical", "Transport": "traffic", "Infra": "utility_outage",
            "CBRNE": "hazmat", "Env": "hazmat", "Security": "crime", "Safety": "crime",
            "Geo": "structural", "Met": "flood", "Rescue": "other", "Other": "other"}
CERTAINTY = {"Observed": 0.95, "Likely": 0.8, "Possible": 0.5, "Unlikely": 0.2,
             "Very Likely": 0.8, "Unknown": 0.4}


class CapRejected(ValueError):
    """An alert ECC cannot accept; ``reason`` says why in words an integrator can act on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Alert:
    version: str
    identifier: str
    sender: str
    sent: datetime
    status: str
    msg_type: str
    scope: str
    references: list[tuple[str, str, str]] = field(default_factory=list)
    signals: list[Signal] = field(default_factory=list)
    unplaced: list[str] = field(default_factory=list)  # areas with no coordinates
    retraction: Retraction | None = None  # a Cancel: the alerts it takes back

    @property
    def acted_on(self) -> bool:
        """Only Actual alerts become signals; Exercise, System, Test and Draft do not."""
        return self.status == "Actual"


def alert_key(sender: str, identifier: str) -> str:
    """The id prefix of every signal one alert produces (``<key>-<info>-<area>``), so an
    Update or Cancel that references the alert names them all."""
    digest = hashlib.sha256(f"{sender}|{identifier}".encode()).hexdigest()[:24]
    return f"cap-{digest}"


def _text(el: Element | None) -> str:
    return (el.text or "").strip() if el is not None else ""


def _points(text: str) -> list[tuple[float, float]]:
    points = []
    for pair in text.split():
        lat, lon = (float(x) for x in pair.split(","))
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise ValueError(f"point {pair} is off the globe")
        points.append((lat, lon))
    return points


def _place(area: Element, ns: str) -> Location | None:
    desc = _text(area.find(f"{ns}areaDesc"))[:500] or None
    for poly in area.findall(f"{ns}polygon"):
        pts = _points(_text(poly))
        if pts:
            ring = pts[:-1] if len(pts) > 1 and pts[0] == pts[-1] else pts
            return Location(lat=sum(p[0] for p in ring) / len(ring),
                            lon=sum(p[1] for p in ring) / len(ring), address=desc)
    for circle in area.findall(f"{ns}circle"):
        centre, _, radius = _text(circle).partition(" ")
        pts = _points(centre)
        if pts:
            km = float(radius or 0)
            return Location(lat=pts[0][0], lon=pts[0][1], accuracy_m=km * 1000, address=desc)
    return None


def parse_cap(data: bytes) -> Alert:
    """Parse one CAP alert. Raises :class:`CapRejected` with the reason."""
    if len(data) > MAX_ALERT_BYTES:
        raise CapRejected(f"alert is {len(data)} bytes; limit {MAX_ALERT_BYTES}")
    try:
        root = SafeET.fromstring(data, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise CapRejected(f"unsafe XML refused: {type(exc).__name__}") from exc
    except SafeET.ParseError as exc:
        raise CapRejected(f"not well-formed XML: {exc}") from exc
    match = re.match(r"^\{(.+)\}alert$", root.tag)
    if match is None or match.group(1) not in NAMESPACES:
        raise CapRejected(f"not a CAP alert: root element {root.tag!r}")
    ns = "{" + match.group(1) + "}"
    try:
        sent = datetime.fromisoformat(_text(root.find(f"{ns}sent")))
    except ValueError as exc:
        raise CapRejected(f"<sent> is not a time: {exc}") from exc
    if sent.tzinfo is None:
        raise CapRejected("<sent> has no time zone")
    alert = Alert(
        version=NAMESPACES[match.group(1)], identifier=_text(root.find(f"{ns}identifier")),
        sender=_text(root.find(f"{ns}sender")), sent=sent,
        status=_text(root.find(f"{ns}status")), msg_type=_text(root.find(f"{ns}msgType")),
        scope=_text(root.find(f"{ns}scope")))
    if not alert.identifier or not alert.sender:
        raise CapRejected("an alert needs <identifier> and <sender>")
    for ref in _text(root.find(f"{ns}references")).split():
        parts = ref.split(",")
        if len(parts) != 3:
            raise CapRejected(f"<references> entry {ref!r} is not sender,identifier,sent")
        alert.references.append((parts[0], parts[1], parts[2]))
    refers_to = tuple(dict.fromkeys(alert_key(snd, ident) for snd, ident, _ in alert.references))
    if alert.msg_type in ("Update", "Cancel") and not refers_to:
        raise CapRejected(f"a {alert.msg_type} must name the alerts it replaces in <references>")
    if alert.msg_type == "Cancel":
        alert.retraction = Retraction(
            retraction_id=alert_key(alert.sender, alert.identifier), source="cap",
            refers_to=refers_to[:16], at=alert.sent,
            reason=f"CAP Cancel {alert.identifier[:200]} from {alert.sender[:200]}")
        return alert  # a Cancel's info blocks (if any) describe what ends, not news
    if alert.msg_type in ("Ack", "Error"):
        return alert  # answers to alerts, not about the world
    for i, info in enumerate(root.findall(f"{ns}info")):
        event = _text(info.find(f"{ns}event"))
        headline = _text(info.find(f"{ns}headline"))
        cap_category = _text(info.find(f"{ns}category"))
        guess = classify(f"{event} {headline}")
        category = guess.category if guess.rule != "none" else CATEGORY.get(cap_category, "other")
        confidence = CERTAINTY.get(_text(info.find(f"{ns}certainty")), 0.4)
        for j, area in enumerate(info.findall(f"{ns}area")):
            try:
                where = _place(area, ns)
            except ValueError as exc:
                raise CapRejected(f"info {i} area {j}: {exc}") from exc
            if where is None:
                alert.unplaced.append(_text(area.find(f"{ns}areaDesc")) or f"info {i} area {j}")
                continue
            alert.signals.append(Signal(
                signal_id=f"{alert_key(alert.sender, alert.identifier)}-{i}-{j}", source="cap",
                origin=alert_key(alert.sender, alert.identifier),
                category=category, refers_to=refers_to[:16],
                location=where, observed_at=alert.sent, summary=(headline or event)[:2000],
                confidence=confidence,
                details={"identifier": alert.identifier, "sender": alert.sender,
                         "msg_type": alert.msg_type, "cap_category": cap_category,
                         "event": event, "rule": guess.rule}))
    return alert


def understand(alert: Alert) -> list[str]:
    """Lines saying what ECC would do with the alert (``ecc cap check``)."""
    head = (f"{alert.identifier} from {alert.sender}: CAP {alert.version} {alert.status} "
            f"{alert.msg_type} ({alert.scope})")
    lines = [head]
    if not alert.acted_on:
        lines.append(f"  not acted on: status {alert.status} (only Actual alerts become signals)")
        return lines
    if alert.msg_type in ("Update", "Cancel", "Ack", "Error"):
        for sender, ident, _ in alert.references:
            verb = {"Cancel": "cancels", "Update": "updates"}.get(alert.msg_type, "answers")
            lines.append(f"  {verb} {ident} from {sender}")
    if alert.retraction is not None:
        lines.append("  retracts the signals of those alerts: each incident they are on loses "
                     "them (and is cancelled if nothing else reports it and no unit is sent)")
    for s in alert.signals:
        lines.append(f"  signal {s.signal_id}: {s.category} at {s.location.lat:.4f}, "
                     f"{s.location.lon:.4f} ({s.summary[:60]})")
    for desc in alert.unplaced:
        lines.append(f"  area without coordinates, not placed: {desc[:80]}")
    return lines
