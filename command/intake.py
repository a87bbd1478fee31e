"""Shell: signals in, incidents out.

For each signal on ``<ns>.signal.<source>.<category>``: validate it, decide
on it with the pure core, and commit the inbox record, the events and the
projection in one transaction; the consumer loop acks after the commit.

Fusion comes later (issue 5): for now every signal raises a new incident.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import structlog
from nats.aio.msg import Msg

from command.bus import ConsumerSpec, Undeliverable
from command.faults import reach
from command.model import Signal, SignalRejected, parse_signal
from command.store import Append, NewEvent, Store
from command.subjects import Namespace
from workflows import Rejected, ReportIncident, decide, fold, is_open

log = structlog.get_logger("ecc.intake")

CONSUMER = "intake"


def utc_now() -> datetime:
    return datetime.now(UTC)


class SignalIntake:
    """Turns signals into incident events. Time and ids are injected."""

    def __init__(
        self,
        store: Store,
        ns: Namespace,
        *,
        clock: Callable[[], datetime] = utc_now,
        ids: Callable[[], uuid.UUID] = uuid.uuid4,
        fault_point: str | None = None,
    ) -> None:
        self.store = store
        self.ns = ns
        self.clock = clock
        self.ids = ids
        self.fault_point = fault_point

    def spec(self) -> ConsumerSpec:
        return ConsumerSpec(stream=self.ns.stream("SIGNALS"), durable=CONSUMER,
                            subject=self.ns.signals)

    def source_of(self, msg: Msg) -> str:
        source, _ = self.ns.parse_signal_subject(msg.subject)
        return source or "unknown"

    async def handle(self, msg: Msg) -> None:
        source, category = self.ns.parse_signal_subject(msg.subject)
        try:
            signal = parse_signal(source, category, msg.data)
        except SignalRejected as exc:
            raise Undeliverable(exc.code, exc.reason) from exc
        await self.accept(signal)

    async def accept(self, signal: Signal) -> str | None:
        """Commit the incident a signal raises; None if the signal was seen before."""
        log_ = log.bind(signal_id=signal.signal_id, source=signal.source)
        incident_id = str(self.ids())
        now = self.clock()
        command = ReportIncident(
            incident_id=incident_id,
            signal_id=signal.signal_id,
            source=signal.source,
            category=signal.category,
            location=signal.location,
            summary=signal.summary,
            at=now,
        )
        try:
            events = decide(None, command)
        except Rejected as exc:
            log_.warning("intake.rejected", code=exc.code, reason=exc.reason)
            return None
        state = fold(events)
        assert state is not None
        actor = f"signal:{signal.source}"
        evidence = NewEvent(
            type="signal.received",
            data=signal.model_dump(mode="json"),
            actor=actor,
            event_id=self.ids(),
            correlation_id=signal.signal_id,
        )
        reported = [
            NewEvent(
                type=event.type,
                data=event.model_dump(mode="json"),
                actor=actor,
                event_id=self.ids(),
                causation_id=str(evidence.event_id),
                correlation_id=signal.signal_id,
            )
            for event in events
        ]
        async with self.store.transaction() as tx:
            if not await tx.claim(CONSUMER, f"{signal.source}:{signal.signal_id}"):
                log_.info("intake.duplicate")
                return None
            recorded = await tx.append(
                [
                    Append(f"signal:{signal.source}-{signal.signal_id}", 0, [evidence]),
                    Append(f"incident:{incident_id}", 0, reported),
                ]
            )
            await tx.put_incident(
                incident_id,
                is_open=is_open(state),
                version=len(reported),
                last_seq=recorded[-1].seq,
                view=state.model_dump(mode="json"),
            )
        reach("intake.after_commit", self.fault_point)
        log_.info("incident.reported", incident_id=incident_id, category=signal.category,
                  seq=recorded[-1].seq)
        return incident_id
