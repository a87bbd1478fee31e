"""Shell: signals in, incidents out.

For each signal on ``<ns>.signal.<source>.<category>``: validate it, decide
on it with the pure core, and commit the inbox record, the events and the
projection in one transaction; the consumer loop acks after the commit. A
fetched batch of signals shares one transaction (one fsync for many).

Fusion (:mod:`command.fusion`): a signal near an open incident of a compatible
type, within that type's time window, joins it (``incident.signal_attached``
with the reason); otherwise it raises a new incident.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

import structlog
from nats.aio.msg import Msg

from command.bus import ConsumerSpec, Undeliverable
from command.engine import Meta, UnitOfWork, utc_now
from command.faults import reach, stall
from command.fusion import Candidate, cells_around, choose, search_radius
from command.metrics import Metrics
from command.model import (
    RETRACTION,
    Retraction,
    Signal,
    SignalRejected,
    parse_retraction,
    parse_signal,
)
from command.store import NewEvent, Store, Tx
from command.subjects import Namespace
from workflows.alert import RaiseAlert
from workflows.catalogue import Catalogue
from workflows.incident import AttachSignal, ReportIncident
from workflows.incident import retraction as retraction_commands
from workflows.messages import Rejected

log = structlog.get_logger("ecc.intake")

CONSUMER = "intake"


class SignalIntake:
    """Turns signals into incident events. Time and ids are injected."""

    def __init__(
        self,
        store: Store,
        ns: Namespace,
        catalogue: Catalogue,
        *,
        clock: Callable[[], datetime] = utc_now,
        ids: Callable[[], uuid.UUID] = uuid.uuid4,
        fault_point: str | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.ns = ns
        self.catalogue = catalogue
        self.clock = clock
        self.ids = ids
        self.fault_point = fault_point
        self.metrics = metrics if metrics is not None else Metrics()

    def spec(self) -> ConsumerSpec:
        return ConsumerSpec(stream=self.ns.stream("SIGNALS"), durable=CONSUMER,
                            subject=self.ns.signals)

    def source_of(self, msg: Msg) -> str:
        source, _ = self.ns.parse_signal_subject(msg.subject)
        return source or "unknown"

    def decode(self, msg: Msg) -> Signal | Retraction:
        try:
            return self._decode(msg)
        except Undeliverable:
            self.metrics.signal(self.source_of(msg), "dead_lettered")
            raise

    def _decode(self, msg: Msg) -> Signal | Retraction:
        source, category = self.ns.parse_signal_subject(msg.subject)
        if source is None or category is None:
            raise Undeliverable("bad_subject", f"{msg.subject!r} is not "
                                f"{self.ns.prefix}.signal.<source>.<category> with lower-case "
                                "tokens")
        try:
            if category == RETRACTION:
                return parse_retraction(source, msg.data)
            return parse_signal(source, category, msg.data)
        except SignalRejected as exc:
            raise Undeliverable(exc.code, exc.reason) from exc

    async def handle(self, items: list[Signal | Retraction]) -> None:
        """Signals a batch at a time; a retraction on its own, in its place in the order."""
        run: list[Signal] = []
        for item in items:
            if isinstance(item, Signal):
                run.append(item)
                continue
            if run:
                await self.accept(run)
                run = []
            await self.retract(item)
        if run:
            await self.accept(run)

    async def accept(self, signals: list[Signal]) -> list[str | None]:
        """Commit what these signals mean, in one transaction.

        Each signal either joins the open incident fusion matches it to, or raises
        a new one. Returns each signal's incident id, or None where the signal was
        seen before (the inbox) or the core refused it.
        """
        results: list[str | None] = [None] * len(signals)
        outcomes = ["rejected"] * len(signals)
        attached: set[int] = set()
        async with self.store.transaction() as tx:
            uow = UnitOfWork(tx, self.catalogue, self.ids)
            keys = [f"{signal.source}:{signal.signal_id}" for signal in signals]
            fresh = await tx.claim_many(CONSUMER, keys)
            raised: list[Candidate] = []  # incidents this batch raised, not yet in the table
            # (source, signal id or origin) -> incident, for updates within this batch
            taken: dict[tuple[str, str], str] = {}
            for i, (signal, key) in enumerate(zip(signals, keys, strict=True)):
                if key not in fresh:
                    log.info("intake.duplicate", signal_id=signal.signal_id, source=signal.source)
                    outcomes[i] = "duplicate"
                    continue
                fresh.discard(key)  # a repeat inside this batch is a duplicate too
                incident_id, joined = await self._take(uow, signal, raised, taken)
                results[i] = incident_id
                if joined:
                    attached.add(i)
                if incident_id is not None:
                    taken[(signal.source, signal.signal_id)] = incident_id
                    if signal.origin is not None:
                        taken[(signal.source, signal.origin)] = incident_id
                    outcomes[i] = "attached" if joined else "new_incident"
            recorded = await uow.flush()
            stall("intake.before_commit", self.fault_point)  # inbox rows held
        for signal, outcome in zip(signals, outcomes, strict=True):  # counted once committed
            self.metrics.signal(signal.source, outcome)
        reach("intake.after_commit", self.fault_point)
        seqs = {r.stream_id: r.seq for r in recorded}
        for i, (signal, incident_id) in enumerate(zip(signals, results, strict=True)):
            if incident_id is not None:
                log.info("incident.signal_attached" if i in attached else "incident.reported",
                         incident_id=incident_id, signal_id=signal.signal_id,
                         source=signal.source, category=signal.category,
                         seq=seqs.get(f"incident:{incident_id}"))
        return results

    async def _take(self, uow: UnitOfWork, signal: Signal, raised: list[Candidate],
                    taken: dict[tuple[str, str], str]) -> tuple[str | None, bool]:
        """Stage the evidence, then attach it to its incident or raise a new one."""
        now = self.clock()
        actor = f"signal:{signal.source}"
        evidence = NewEvent(type="signal.received", data=signal.model_dump(mode="json"),
                            actor=actor, event_id=self.ids(), correlation_id=signal.signal_id)
        # the evidence first, so its seq is below what it causes
        uow.stage_evidence(f"signal:{signal.source}-{signal.signal_id}", evidence)
        meta = Meta(actor=actor, causation_id=str(evidence.event_id),
                    correlation_id=signal.signal_id)
        seen = signal.observed_at  # the sources' time: a replay fuses as it happened
        if signal.refers_to:  # an update of earlier evidence goes where that evidence is
            held = [taken[(signal.source, ref)] for ref in signal.refers_to
                    if (signal.source, ref) in taken]
            named = await referenced(uow.tx, signal.source, signal.refers_to)
            held += await holders(uow.tx, signal.source, named)
            for incident_id in held:
                try:
                    await uow.run(incident_id, AttachSignal(
                        at=now, by=actor, signal_id=signal.signal_id, source=signal.source,
                        confidence=signal.confidence, observed_at=seen,
                        reason=f"updates {', '.join(signal.refers_to)} from the same source"),
                        meta)
                    return incident_id, True
                except Rejected as exc:
                    log.info("intake.update_refused", incident_id=incident_id,
                             signal_id=signal.signal_id, reason=exc.reason)
        lat, lon = signal.location.lat, signal.location.lon
        # a place not resolved is only a stand-in point: never fused on, either way (its
        # incident has no fusion cell and is never one of ``raised``)
        unknown = signal.location.unknown is not None
        cells = [] if unknown else cells_around(lat, lon, search_radius(
            signal.category, self.catalogue.fusion))
        candidates = [Candidate(r.incident_id, r.category, r.lat, r.lon, r.last_signal_at)
                      for r in await uow.tx.open_incidents_in(cells) if r.last_signal_at] \
            if cells else []
        match = None if unknown else choose(signal.category, lat, lon, seen,
                                            [*candidates, *raised], self.catalogue.fusion)
        if match is not None:
            try:
                await uow.run(match.incident_id, AttachSignal(
                    at=now, by=actor, signal_id=signal.signal_id, source=signal.source,
                    confidence=signal.confidence, observed_at=seen, reason=match.reason), meta)
                return match.incident_id, True
            except Rejected as exc:  # closed in the meantime: the signal raises its own
                log.info("intake.attach_refused", incident_id=match.incident_id,
                         signal_id=signal.signal_id, reason=exc.reason)
        incident_id = str(self.ids())
        command = ReportIncident(
            incident_id=incident_id, signal_id=signal.signal_id, source=signal.source,
            category=signal.category, location=signal.location, summary=signal.summary,
            confidence=signal.confidence, observed_at=seen, at=now, by=actor,
            priority=signal.priority,
        )
        try:
            await uow.run(incident_id, command, meta, new=True)
        except Rejected as exc:
            log.warning("intake.rejected", signal_id=signal.signal_id, code=exc.code,
                        reason=exc.reason)
            return None, False
        if not unknown:
            raised.append(Candidate(incident_id, signal.category, lat, lon, seen))
        return incident_id, False

    async def retract(self, retraction: Retraction) -> list[str]:
        """A source takes back earlier signals: each incident holding them hears of it
        (what that means is :func:`workflows.incident.retraction`). Returns the incidents
        touched.

        It names signals of its own source exactly (ids, or the records they came from).
        One that would take back more than the catalogue's ``[retractions]
        confirm_above`` signals is held instead: a desk alert waits for a supervisor to
        confirm it (:func:`apply_retraction`) or dismiss it. Every retraction, and what it
        did, is in the audit log under the adapter's name.
        """
        key = f"{retraction.source}:{retraction.retraction_id}"
        async with self.store.transaction() as tx:
            if key not in await tx.claim_many(CONSUMER, [key]):
                log.info("intake.duplicate", retraction_id=retraction.retraction_id,
                         source=retraction.source)
                self.metrics.signal(retraction.source, "duplicate")
                return []
            uow = UnitOfWork(tx, self.catalogue, self.ids)
            plan = await retraction_plan(uow, retraction)
            count = sum(len(gone) for _, gone in plan)
            limit = self.catalogue.retractions.confirm_above
            args = {"retraction_id": retraction.retraction_id,
                    "refers_to": list(retraction.refers_to), "reason": retraction.reason,
                    "signals": count, "incidents": [i for i, _ in plan][:50]}
            if count > limit:
                alert_id = f"retraction-{retraction.source}-{retraction.retraction_id}"[:128]
                await uow.run_alert(alert_id, RaiseAlert(
                    at=self.clock(), alert_id=alert_id, kind="retraction_held",
                    title=f"{retraction.source} asks to take back {count} signals on "
                          f"{len(plan)} incidents",
                    detail=f"{retraction.reason[:500]}. More than {limit} signals at once "
                           "waits for a supervisor: confirm to take them back, or dismiss "
                           "to keep them.",
                    data={"retraction": retraction.model_dump(mode="json"),
                          "signals": count, "incidents": [i for i, _ in plan][:50]}),
                    Meta(actor=f"signal:{retraction.source}",
                         correlation_id=retraction.retraction_id))
                recorded = await uow.flush()
                await tx.audit(actor=f"adapter-{retraction.source}", role="adapter",
                               command="signal.retract", args=args, outcome="held",
                               reason=f"{count} signals is more than {limit}: waits for a "
                                      "supervisor", seqs=[r.seq for r in recorded])
                touched: list[str] = []
            else:
                touched = await apply_retraction(uow, retraction, plan, self.clock())
                recorded = await uow.flush()
                await tx.audit(actor=f"adapter-{retraction.source}", role="adapter",
                               command="signal.retract", args=args,
                               outcome="ok" if touched else "not_found",
                               reason="" if touched else "names no signal of an open incident",
                               seqs=[r.seq for r in recorded])
        if count > limit:
            self.metrics.signal(retraction.source, "retraction_held")
            log.warning("intake.retraction_held", retraction_id=retraction.retraction_id,
                        source=retraction.source, signals=count, incidents=len(plan))
            return []
        self.metrics.signal(retraction.source,
                            "retracted" if touched else "retraction_unmatched")
        for incident_id in touched:
            log.info("incident.signals_retracted", incident_id=incident_id,
                     retraction_id=retraction.retraction_id, source=retraction.source)
        if not touched:
            log.info("intake.retraction_unmatched", retraction_id=retraction.retraction_id,
                     source=retraction.source, refers_to=list(retraction.refers_to))
        return touched


async def retraction_plan(uow: UnitOfWork,
                          retraction: Retraction) -> list[tuple[str, set[str]]]:
    """Each open incident a retraction reaches, with the signals of its source it names."""
    named = await referenced(uow.tx, retraction.source, retraction.refers_to)
    plan: list[tuple[str, set[str]]] = []
    for incident_id in await holders(uow.tx, retraction.source, named):
        state = await uow.incident(incident_id)
        if state is None:
            continue
        gone = {s.signal_id for s in state.signals
                if s.source == retraction.source and s.signal_id in named}
        if gone:
            plan.append((incident_id, gone))
    return plan


async def apply_retraction(uow: UnitOfWork, retraction: Retraction,
                           plan: list[tuple[str, set[str]]], now: datetime,
                           confirmed_by: str | None = None) -> list[str]:
    """Take the planned signals back, incident by incident (a refusal of one incident's
    core skips that incident). Returns the incidents touched."""
    actor = confirmed_by or f"signal:{retraction.source}"
    meta = Meta(actor=actor, correlation_id=retraction.retraction_id)
    why = f"{retraction.source} retracted it: {retraction.reason}"
    if confirmed_by:
        why += f" (confirmed by {confirmed_by})"
    touched: list[str] = []
    for incident_id, gone in plan:
        state = await uow.incident(incident_id)
        if state is None:
            continue
        try:
            for command in retraction_commands(state, gone, now, actor, why):
                await uow.run(incident_id, command, meta)
        except Rejected as exc:
            log.warning("intake.retraction_refused", incident_id=incident_id,
                        retraction_id=retraction.retraction_id, reason=exc.reason)
            continue
        touched.append(incident_id)
    return touched


async def referenced(tx: Tx, source: str, refs: tuple[str, ...]) -> set[str]:
    """The signal ids of ``source`` that ``refs`` name exactly: each reference itself (a
    signal id) and every signal whose ``origin`` it is (the parts of one CAP alert)."""
    if not refs:
        return set()
    return set(refs) | await tx.signals_from_origin(source, refs)


async def holders(tx: Tx, source: str, signal_ids: set[str]) -> list[str]:
    """The open incidents holding one of ``signal_ids`` of ``source``, exactly (newest
    change first)."""
    if not signal_ids:
        return []
    return await tx.incidents_holding(source, sorted(signal_ids))
