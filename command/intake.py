"""Shell: signals in, incidents out.

For each signal on ``<ns>.signal.<source>.<category>``: validate it, decide
on it with the pure core, and commit the inbox record, the events and the
projection in one transaction; the consumer loop acks after the commit. A
fetched batch of signals shares one transaction (one fsync for many).

Fusion comes later (issue 5): for now every signal raises a new incident.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from nats.aio.msg import Msg

from command.bus import ConsumerSpec, Undeliverable
from command.faults import reach
from command.model import Signal, SignalRejected, parse_signal
from command.store import Append, NewEvent, Store
from command.subjects import Namespace
from workflows import Incident, Rejected, ReportIncident, decide, fold, is_open

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

    def decode(self, msg: Msg) -> Signal:
        source, category = self.ns.parse_signal_subject(msg.subject)
        try:
            return parse_signal(source, category, msg.data)
        except SignalRejected as exc:
            raise Undeliverable(exc.code, exc.reason) from exc

    async def handle(self, signals: list[Signal]) -> None:
        await self.accept(signals)

    async def accept(self, signals: list[Signal]) -> list[str | None]:
        """Commit the incidents these signals raise, in one transaction.

        Returns each signal's new incident id, or None where the signal was
        seen before (the inbox) or the core refused it.
        """
        planned = [self._plan(signal) for signal in signals]
        results: list[str | None] = [None] * len(signals)
        async with self.store.transaction() as tx:
            appends: list[Append] = []
            todo = []
            for i, (signal, plan) in enumerate(zip(signals, planned, strict=True)):
                if plan is None:
                    continue
                if not await tx.claim(CONSUMER, f"{signal.source}:{signal.signal_id}"):
                    log.info("intake.duplicate", signal_id=signal.signal_id, source=signal.source)
                    continue
                appends.extend(plan.appends)
                todo.append((i, plan))
            if not todo:
                return results
            recorded = await tx.append(appends)
            last_seq = {r.stream_id: r.seq for r in recorded}
            for i, plan in todo:
                await tx.put_incident(
                    plan.state.incident_id,
                    is_open=is_open(plan.state),
                    version=plan.version,
                    last_seq=last_seq[plan.stream_id],
                    view=plan.state.model_dump(mode="json"),
                )
                results[i] = plan.state.incident_id
        reach("intake.after_commit", self.fault_point)
        for i, plan in todo:
            log.info("incident.reported", incident_id=plan.state.incident_id,
                     signal_id=signals[i].signal_id, source=signals[i].source,
                     category=plan.state.category, seq=last_seq[plan.stream_id])
        return results

    def _plan(self, signal: Signal) -> _Plan | None:
        """Decide on one signal: the events to append and the state they make."""
        incident_id = str(self.ids())
        command = ReportIncident(
            incident_id=incident_id,
            signal_id=signal.signal_id,
            source=signal.source,
            category=signal.category,
            location=signal.location,
            summary=signal.summary,
            at=self.clock(),
        )
        try:
            events = decide(None, command)
        except Rejected as exc:
            log.warning("intake.rejected", signal_id=signal.signal_id, code=exc.code,
                        reason=exc.reason)
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
        stream_id = f"incident:{incident_id}"
        return _Plan(
            state=state,
            stream_id=stream_id,
            version=len(reported),
            appends=(
                Append(f"signal:{signal.source}-{signal.signal_id}", 0, [evidence]),
                Append(stream_id, 0, reported),
            ),
        )


@dataclass(frozen=True)
class _Plan:
    state: Incident
    stream_id: str
    version: int
    appends: tuple[Append, ...]
