"""Shell: runs commands through the deciders and commits what they decide.

The shape of every command, as STYLE.md draws it: load state (the projection
row as a snapshot, plus any tail of events after it), call the pure decider,
then write events, timers and projections in one transaction. A
:class:`UnitOfWork` holds one transaction and may run several commands in it
(a batch of signals; a dispatch that writes an incident and a unit); it
appends everything at once in :meth:`UnitOfWork.flush`, each stream at the
version it was read at, so a concurrent writer makes the whole unit retry.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import structlog

from command.model import OrderEnded, OrderOffered, RecordedEvent
from command.store import Append, ConcurrencyError, NewEvent, Store, Tx
from workflows import alert as alerts
from workflows import incident as incidents
from workflows import unit as units
from workflows import upcast
from workflows.catalogue import Catalogue
from workflows.dispatching import unit_commands
from workflows.incident import AnyIncidentCommand, AnyIncidentEvent, Incident
from workflows.unit import AnyUnitEvent, Unit
from workflows.upcast import Reader

T = TypeVar("T")

log = structlog.get_logger("ecc.engine")

# Every reader of stored events reads them through these (workflows/upcast.py): the data
# of an older schema version is brought up to date before it is validated.
# (Re-exported here for the shell's readers: command/projections.py, command/history.py.)
incident_event = upcast.incident_event
unit_event = upcast.unit_event
alert_event = upcast.alert_event

# Each stream kind's projection: (state model, evolve, event reader); its table is the
# store's (command/store/projections.py).
_PROJECTIONS: dict[str, tuple[Any, Any, Reader[Any]]] = {
    "incident": (Incident, incidents.evolve, incident_event),
    "unit": (Unit, units.evolve, unit_event),
    "alert": (alerts.Alert, alerts.evolve, alert_event),
}


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Meta:
    """Who asked, and what caused it: written with every event of the command."""

    actor: str
    causation_id: str | None = None
    correlation_id: str | None = None


@dataclass
class _Stream:
    state: Any
    base_version: int
    events: list[NewEvent] = field(default_factory=list)
    decided: list[Any] = field(default_factory=list)
    # for a unit: the (incident, task) it was on when loaded
    loaded_task: tuple[str, str] | None = None


class UnitOfWork:
    """Commands inside one transaction; nothing is written before :meth:`flush`."""

    def __init__(self, tx: Tx, catalogue: Catalogue,
                 ids: Callable[[], uuid.UUID] = uuid.uuid4) -> None:
        self.tx = tx
        self.catalogue = catalogue
        self.ids = ids
        self._streams: dict[str, _Stream] = {}

    # --- loading ------------------------------------------------------------------

    async def incident(self, incident_id: str) -> Incident | None:
        return (await self._load(f"incident:{incident_id}")).state  # type: ignore[no-any-return]

    async def unit(self, unit_id: str) -> Unit | None:
        return (await self._load(f"unit:{unit_id}")).state  # type: ignore[no-any-return]

    async def _load(self, stream_id: str) -> _Stream:
        if stream_id in self._streams:
            return self._streams[stream_id]
        kind = stream_id.partition(":")[0]
        # Lock the stream's row for this transaction: writers of one incident queue here
        # instead of failing their optimistic check. Incidents are always locked before
        # units, so two commands never wait on each other in a circle.
        # One round trip for the lock and the projection; the events only when the
        # projection is behind its stream (a rebuild in progress, an old row).
        model, evolve, reader = _PROJECTIONS[kind]
        locked = await self.tx.lock_stream(stream_id)
        state: Any = None
        version = 0
        if locked.view is not None:
            state, version = model.model_validate(locked.view), locked.version
        for data, schema in locked.tail:  # a projection behind its stream: fold the rest
            state = evolve(state, reader.read(data, schema))
            version += 1
        loaded = _Stream(state, version)
        if kind == "unit" and state is not None and state.incident_id and state.task_id:
            loaded.loaded_task = (state.incident_id, state.task_id)
        self._streams[stream_id] = loaded
        return loaded

    # --- running ------------------------------------------------------------------

    async def run(self, incident_id: str, command: AnyIncidentCommand,
                  meta: Meta, *, new: bool = False) -> list[AnyIncidentEvent]:
        """Decide ``command`` on the incident and the units its events touch.

        ``new=True`` says the id was just minted, so there is nothing to load (if
        it did exist, the append at version 0 would fail). Raises
        :class:`workflows.messages.Rejected` (the core's or a unit's).
        """
        sid = f"incident:{incident_id}"
        if new and sid not in self._streams:
            self._streams[sid] = _Stream(None, 0)
        stream = await self._load(sid)
        before: Incident | None = stream.state
        events, after = incidents.step(before, command, self.catalogue)
        if not events:
            return []
        follow = list(unit_commands(before, events))
        # What to restore if a unit refuses: taken only when units are involved (a signal
        # batch stages a hundred streams; copying them all for each signal was quadratic).
        saved = {sid: (s.state, list(s.events), list(s.decided))
                 for sid, s in self._streams.items()} if follow else {}
        try:
            for unit_id, unit_command in follow:
                await self.run_unit(unit_id, unit_command, meta)
        except BaseException:
            for sid, (state, staged, decided) in saved.items():  # all or nothing
                s = self._streams[sid]
                s.state, s.events, s.decided = state, staged, decided
            raise
        self._stage(stream, events, meta, after)
        return events

    async def run_unit(self, unit_id: str, command: Any, meta: Meta) -> list[AnyUnitEvent]:
        stream = await self._load(f"unit:{unit_id}")
        events = units.decide(stream.state, command)
        self._stage(stream, events, meta, units.fold(events, stream.state))
        return events

    async def alert(self, alert_id: str) -> alerts.Alert | None:
        return (await self._load(f"alert:{alert_id}")).state  # type: ignore[no-any-return]

    async def run_alert(self, alert_id: str, command: alerts.AlertCommand,
                        meta: Meta) -> list[alerts.AlertEvent]:
        """Decide ``command`` on a desk alert. Raises :class:`workflows.messages.Rejected`."""
        stream = await self._load(f"alert:{alert_id}")
        events = alerts.decide(stream.state, command)
        if events:
            self._stage(stream, events, meta, alerts.fold(events, stream.state))
        return events

    def stage_evidence(self, stream_id: str, event: NewEvent) -> None:
        """A new stream of one event that no decider owns (a signal's evidence)."""
        self._streams[stream_id] = _Stream(None, 0, [event])

    def _stage(self, stream: _Stream, events: list[Any], meta: Meta, after: Any) -> None:
        """Record decided events and the state they fold to (folded once, by the caller)."""
        stream.state = after
        for event in events:
            stream.decided.append(event)
            stream.events.append(NewEvent(
                type=event.type, data=event.model_dump(mode="json"), actor=meta.actor,
                event_id=self.ids(), causation_id=meta.causation_id,
                correlation_id=meta.correlation_id,
            ))

    # --- writing ------------------------------------------------------------------

    async def flush(self) -> list[RecordedEvent]:
        """Append every staged stream at once, then timers and projections."""
        dirty = {sid: s for sid, s in self._streams.items() if s.events}
        if not dirty:
            return []
        recorded = await self.tx.append(
            [Append(sid, s.base_version, s.events) for sid, s in dirty.items()]
        )
        last_seq: dict[str, int] = {}
        for r in recorded:
            last_seq[r.stream_id] = r.seq
        await self._timers([(sid, s.decided) for sid, s in dirty.items()
                            if sid.startswith("incident:")])
        await self._orders(dirty)
        # every incident's projection row in one statement
        await self.tx.put_incidents([
            (sid.partition(":")[2], incidents.is_open(s.state), s.state.version, last_seq[sid],
             s.state.model_dump(mode="json"))
            for sid, s in dirty.items() if sid.startswith("incident:")])
        for sid, s in dirty.items():
            kind, _, entity = sid.partition(":")
            if kind == "unit":
                await self.tx.put_unit(entity, agency=s.state.agency, status=s.state.status,
                                       version=s.state.version, last_seq=last_seq[sid],
                                       view=s.state.model_dump(mode="json"))
            elif kind == "alert":
                await self.tx.put_alert(entity, kind=s.state.kind,
                                        is_open=s.state.status == "open",
                                        version=s.state.version, last_seq=last_seq[sid],
                                        view=s.state.model_dump(mode="json"))
            s.base_version += len(s.events)
            s.events, s.decided = [], []
        return recorded

    async def _orders(self, dirty: dict[str, _Stream]) -> None:
        """Orders to crews follow the unit events, through the outbox, in this transaction."""
        for sid, s in dirty.items():
            if not sid.startswith("unit:"):
                continue
            unit: Unit = s.state
            subject = self.tx.ns.dispatch(unit.agency, unit.unit_id)
            for event, new in zip(s.decided, s.events, strict=True):
                message: OrderOffered | OrderEnded | None = None
                if isinstance(event, units.UnitDispatched):
                    incident: Incident = self._streams[f"incident:{event.incident_id}"].state
                    task = incident.task(event.task_id)
                    message = OrderOffered(
                        order_id=str(new.event_id), unit_id=unit.unit_id,
                        incident_id=event.incident_id, task_id=event.task_id,
                        capability=task.capability, category=incident.category,
                        priority=incident.priority, summary=incident.summary,
                        location=incident.location, offered_at=event.at,
                        ack_within_s=self.catalogue.sla.ack_s)
                elif isinstance(event, units.UnitReleased) or (
                        isinstance(event, units.UnitMoved) and event.status not in units.ON_TASK
                        and event.previous in units.ON_TASK):
                    ended = _last_task(s, event)
                    if ended is not None:
                        message = OrderEnded(
                            order_id=str(new.event_id), unit_id=unit.unit_id,
                            incident_id=ended[0], task_id=ended[1],
                            reason=getattr(event, "reason", "") or "task ended", at=event.at)
                if message is not None:
                    await self.tx.outbox(subject, str(new.event_id),
                                         message.model_dump_json().encode())

    async def _timers(self, streams: list[tuple[str, list[Any]]]) -> None:
        """Timer rows follow the timer events: one insert and one delete for the lot."""
        add = [(e.timer_id, sid, e.kind, e.due_at) for sid, events in streams for e in events
               if isinstance(e, incidents.TimerScheduled)]
        drop = [e.timer_id for _, events in streams for e in events
                if isinstance(e, incidents.TimerCancelled | incidents.TimerFired)]
        if add:
            await self.tx.put_timers(add)
        if drop:
            await self.tx.drop_timers(drop)


def _last_task(stream: _Stream, event: Any) -> tuple[str, str] | None:
    """The (incident, task) a unit was on before ``event`` took it off."""
    if isinstance(event, units.UnitReleased):
        return event.incident_id, event.task_id
    before = stream.decided[: stream.decided.index(event)]
    for earlier in reversed(before):
        if isinstance(earlier, units.UnitDispatched):
            return earlier.incident_id, earlier.task_id
    return stream.loaded_task


class Engine:
    """Runs one command per transaction, retrying when a stream moved underneath."""

    def __init__(self, store: Store, catalogue: Catalogue, *,
                 ids: Callable[[], uuid.UUID] = uuid.uuid4, retries: int = 5) -> None:
        self.store = store
        self.catalogue = catalogue
        self.ids = ids
        self.retries = retries

    async def execute(self, incident_id: str, command: AnyIncidentCommand,
                      meta: Meta) -> list[RecordedEvent]:
        """Run an incident command. Raises Rejected, or ConcurrencyError after retries."""
        for attempt in range(1, self.retries + 1):
            try:
                async with self.store.transaction() as tx:
                    uow = UnitOfWork(tx, self.catalogue, self.ids)
                    await uow.run(incident_id, command, meta)
                    return await uow.flush()
            except ConcurrencyError as exc:
                if attempt == self.retries:
                    raise
                log.info("engine.retry", incident_id=incident_id, command=command.type,
                         stream_id=exc.stream_id, attempt=attempt)
                await _backoff(attempt)
        raise AssertionError("unreachable")

    async def transact(
        self, work: Callable[[UnitOfWork], Awaitable[T]],
        after: Callable[[Tx, list[RecordedEvent]], Awaitable[None]] | None = None,
    ) -> tuple[T, list[RecordedEvent]]:
        """Run ``work`` (any commands on any incidents and units) in one transaction, then
        ``after(tx, recorded)`` in the same transaction (an audit row commits with the
        events or not at all). Retries when a stream moved; raises Rejected untouched."""
        for attempt in range(1, self.retries + 1):
            try:
                async with self.store.transaction() as tx:
                    uow = UnitOfWork(tx, self.catalogue, self.ids)
                    value = await work(uow)
                    recorded = await uow.flush()
                    if after is not None:
                        await after(tx, recorded)
                    return value, recorded
            except ConcurrencyError:
                if attempt == self.retries:
                    raise
                await _backoff(attempt)
        raise AssertionError("unreachable")

    async def execute_unit(self, unit_id: str, command: Any, meta: Meta) -> list[RecordedEvent]:
        for attempt in range(1, self.retries + 1):
            try:
                async with self.store.transaction() as tx:
                    uow = UnitOfWork(tx, self.catalogue, self.ids)
                    await uow.run_unit(unit_id, command, meta)
                    return await uow.flush()
            except ConcurrencyError:
                if attempt == self.retries:
                    raise
                await _backoff(attempt)
        raise AssertionError("unreachable")


async def _backoff(attempt: int) -> None:
    """A little jittered wait so racing writers do not collide again in step."""
    await asyncio.sleep(random.uniform(0, 0.005 * 2**attempt))
