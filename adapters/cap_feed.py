"""Shell: CAP alerts in, from ``<ns>.ingress.cap`` to signals and retractions.

:class:`CapAdapter` reads each alert with :func:`adapters.cap.parse_cap` under the
senders' rules (:mod:`adapters.cap_trust`) and the city's area
(:mod:`adapters.area`), both from the city file (:func:`trust_of`, :func:`area_of`).
A refusal is dead-lettered by the consumer loop with the check's code
(``cap_signature``, ``cap_unsigned``, ``cap_schema``, ``invalid``, ``oversized``).
:class:`CapCopies` remembers the first copy of each alert (sender, identifier, sent)
by its content digest in ``CAPSEEN``; a later copy with other content is
dead-lettered as ``cap_conflict`` (the integrator's supervisors' alert keys on that
code), never dropped and never a silent replacement. Adapters never touch
PostgreSQL: the memory is a JetStream stream the adapter's NATS user may write and
read by subject only (:mod:`command.natsauth`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from cryptography import x509
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import BadRequestError

from adapters.area import Area, AreaError
from adapters.cap import Alert, CapRejected, copy_key, parse_cap
from adapters.cap_trust import SenderRule, Trust, policy_of
from adapters.gazetteer import Gazetteer
from command.bus import ConsumerSpec, Undeliverable, dead_letter, feed_consumer
from command.specs import AdapterSpec, Feed
from command.subjects import Namespace
from workflows.catalogue import Catalogue

if TYPE_CHECKING:
    from adapters.ingest import Publisher

log = structlog.get_logger("ecc.adapters")

# Nats-Expected-Last-Subject-Sequence not met: the subject already has a message
WRONG_LAST_SEQUENCE = 10071

# On the bus (command/specs.py): CAP alerts in from the ingress, and CAP out
# (adapters.ingest.CapOutAdapter): the incident.public_warning events of EVENTS,
# published as CAP 1.2 on <ns>.warning.cap.<incident>. The first copy of each alert
# is kept in CAPSEEN and looked up there by its subject.
SPEC = AdapterSpec(
    kind="cap",
    feeds=(Feed("INGRESS", "adapter-cap", "ingress.cap"),
           Feed("EVENTS", "adapter-cap-out", "event.incident.*")),
    publishes=("deadletter.cap_out", "warning.cap.>", "capseen.>"),
    writes=("WARNINGS", "CAPSEEN"), looks_up=("CAPSEEN",),
    about="CAP alerts in from ecc.ingress.cap (ECC_INGRESS); CAP out: the "
          "incident.public_warning events of ECC_EVENTS, published as CAP 1.2 on "
          "ecc.warning.cap.<incident>.")


class CapCopies:
    """The first copy of each CAP alert, by its :func:`adapters.cap.copy_key`: one message
    per alert on ``<ns>.capseen.<key>`` in ``CAPSEEN``, holding the content digest.

    The first writer wins at the broker (``Nats-Expected-Last-Subject-Sequence: 0``), so
    two adapters taking two copies at once still agree on which came first.
    """

    def __init__(self, js: JetStreamContext, ns: Namespace) -> None:
        self.js = js
        self.ns = ns

    async def first(self, alert: Alert) -> str | None:
        """Remember ``alert`` if it is the first copy; the first copy's digest if this one
        differs from it, else None (the first, or a repeat of it)."""
        subject = f"{self.ns.prefix}.capseen.{copy_key(alert)}"
        try:
            await self.js.publish(subject, alert.digest.encode(),
                                  headers={"Nats-Expected-Last-Subject-Sequence": "0"})
            return None
        except BadRequestError as exc:
            if exc.err_code != WRONG_LAST_SEQUENCE:
                raise
        seen = await self.js.get_last_msg(self.ns.stream("CAPSEEN"), subject)
        first = (seen.data or b"").decode()
        return None if first == alert.digest else first


@dataclass(frozen=True)
class CapIn:
    """One alert as read, with its message (a conflict is dead-lettered from ``handle``)."""

    msg: Msg
    alert: Alert


class CapAdapter:
    """CAP alerts to signals (Alert, Update) and retractions (Cancel)."""

    source = "cap"

    def __init__(self, ns: Namespace, publisher: Publisher, area: Area | None = None,
                 trust: Trust | None = None, *,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 catalogue: Catalogue | None = None,
                 gazetteer: Gazetteer | None = None) -> None:
        self.ns = ns
        self.catalogue = catalogue  # classifies each alert (None: the built-in one)
        self.gazetteer = gazetteer  # places areas given only by geocodes
        self.publisher = publisher
        self.area = area
        self.trust = trust
        self.clock = clock
        self.copies = CapCopies(publisher.js, ns)

    def spec(self) -> ConsumerSpec:
        return feed_consumer(SPEC.feed("adapter-cap"), self.ns)

    def source_of(self, msg: Msg) -> str:
        return self.source

    def decode(self, msg: Msg) -> CapIn:
        try:
            return CapIn(msg, parse_cap(msg.data, self.trust, self.area, now=self.clock(),
                                        catalogue=self.catalogue,
                                        gazetteer=self.gazetteer))
        except CapRejected as exc:
            raise Undeliverable(exc.code, exc.reason) from exc

    async def handle(self, alerts: list[CapIn]) -> None:
        for item in alerts:
            alert = item.alert
            first = await self.copies.first(alert)
            if first is not None:
                reason = (f"a second copy of CAP alert {alert.identifier[:200]} from "
                          f"{alert.sender[:200]} sent {alert.sent_text[:40]} has other content "
                          f"(digest {alert.digest[:16]}, the first copy's {first[:16]}); the "
                          "first copy stands: ask the sender which one is right")
                # dead-lettered here and acked by the loop: a conflict is a verdict on the
                # message, not a failure to retry
                await dead_letter(self.publisher.js, self.ns, item.msg, self.source,
                                  "cap_conflict", reason)
                log.warning("cap.conflict", identifier=alert.identifier, sender=alert.sender,
                            digest=alert.digest, first_digest=first)
                continue
            if alert.foreign:
                log.warning("cap.foreign_references", identifier=alert.identifier,
                            sender=alert.sender, msg_type=alert.msg_type,
                            ignored=[f"{s},{i}" for s, i, _ in alert.foreign][:16])
            if not alert.acted_on:
                log.info("cap.not_actual", identifier=alert.identifier, status=alert.status)
                continue
            if alert.retraction is not None:
                await self.publisher.retraction(alert.retraction)
                log.info("cap.retraction", identifier=alert.identifier, msg_type=alert.msg_type,
                         refers_to=list(alert.retraction.refers_to))
            if alert.outside:
                log.warning("cap.out_of_area", identifier=alert.identifier,
                            sender=alert.sender, areas=[a[:80] for a in alert.outside][:16])
            for signal in alert.signals:
                await self.publisher.signal(signal)
                log.info("cap.signal", identifier=alert.identifier, signal_id=signal.signal_id,
                         category=signal.category, msg_type=alert.msg_type,
                         signature=alert.verdict.label, schema_violations=alert.violation_count)


def area_of(doc: dict[str, Any], origin: str) -> Area | None:
    """The city's ``[area] polygon`` (``[[lat, lon], ...]``), else the stations' bounds and
    about 30 km around them, else None (no stations: every alert is ours)."""
    section = doc.get("area")
    if section is not None:
        points = section.get("polygon") if isinstance(section, dict) else None
        try:
            if not isinstance(points, list) or not all(
                    isinstance(p, list) and len(p) == 2 for p in points):
                raise AreaError("polygon must be a list of [lat, lon] pairs")
            return Area.from_points([(float(p[0]), float(p[1])) for p in points])
        except (AreaError, TypeError, ValueError) as exc:
            raise ValueError(f"{origin}: [area] {exc}; write polygon = [[lat, lon], ...] "
                             "with at least 3 points") from exc
    stations = doc.get("station") or []
    if not stations:
        return None
    return Area.around([(float(s["lat"]), float(s["lon"])) for s in stations])


def trust_of(doc: dict[str, Any], origin: str, base: Path) -> Trust | None:
    """The ``[[cap_sender]]`` rules: ``sender`` (``*``: every sender without a rule),
    ``policy`` and ``trust`` (PEM certificate files relative to the city file)."""
    entries = doc.get("cap_sender")
    if entries is None:
        return None
    if not isinstance(entries, list):
        raise ValueError(f"{origin}: cap_sender must be [[cap_sender]] entries")
    rules: list[SenderRule] = []
    for n, entry in enumerate(entries, 1):
        where = f"{origin}: [[cap_sender]] {n}"
        if not isinstance(entry, dict) or not isinstance(entry.get("sender"), str) \
                or not entry["sender"].strip():
            raise ValueError(f"{where}: needs sender = \"<the alerts' <sender>>\" (or \"*\")")
        unknown = set(entry) - {"sender", "policy", "trust"}
        if unknown:
            raise ValueError(f"{where}: unknown keys {sorted(unknown)}; a sender has sender, "
                             "policy and trust")
        signature, schema = policy_of(entry.get("policy", "unsigned_accepted"), where)
        paths = entry.get("trust", [])
        paths = [paths] if isinstance(paths, str) else paths
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise ValueError(f"{where}: trust must be a list of PEM certificate paths")
        anchors: list[x509.Certificate] = []
        for name in paths:
            path = base / name
            try:
                anchors += x509.load_pem_x509_certificates(path.read_bytes())
            except OSError as exc:
                raise ValueError(f"{where}: cannot read trust anchor {path}: "
                                 f"{exc.strerror}") from exc
            except ValueError as exc:
                raise ValueError(f"{where}: {path} holds no PEM certificate: {exc}") from exc
        if signature and not anchors:
            raise ValueError(f"{where}: signature_required needs trust = [\"<sender.pem>\"], "
                             "the certificates its alerts are signed with or issued by")
        rules.append(SenderRule(entry["sender"].strip(), signature, schema, tuple(anchors)))
    return Trust(tuple(rules))
