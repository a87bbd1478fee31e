"""Shell: rebuild every projection from the events alone (``ecc rebuild``).

The live projections (incidents, units, timers) are written in each command's
transaction; this folds the whole log again and replaces them, in one
transaction, so a rebuild equals the live state or the difference is a bug.
"""

from __future__ import annotations

from typing import Any

import structlog

from command.engine import alert_event, incident_event, unit_event
from command.store import Store
from workflows import alert as alerts
from workflows import incident as incidents
from workflows import unit as units

log = structlog.get_logger("ecc.projections")


async def rebuild(store: Store, batch: int = 5000) -> dict[str, int]:
    """Replace incidents, units, timers and desk alerts with the fold of every event."""
    states: dict[str, Any] = {}
    last_seq: dict[str, int] = {}
    timers: dict[str, tuple[str, str, Any]] = {}
    async with store.transaction() as tx:
        # Lock out writers first, in one statement, before touching anything: a command
        # in flight finishes, later ones wait, and nobody waits on us in a circle.
        await tx.lock_for_rebuild()
        after = 0
        while True:
            rows = await tx.events_after(after, batch)
            if not rows:
                break
            for row in rows:
                sid = row.stream_id
                after = row.seq
                if sid.startswith("incident:"):
                    event = incident_event.read(row.data, row.schema_version)
                    states[sid] = incidents.evolve(states.get(sid), event)
                    if isinstance(event, incidents.TimerScheduled):
                        timers[event.timer_id] = (sid, event.kind, event.due_at)
                    elif isinstance(event, incidents.TimerCancelled | incidents.TimerFired):
                        timers.pop(event.timer_id, None)
                elif sid.startswith("unit:"):
                    states[sid] = units.evolve(states.get(sid), unit_event.read(
                        row.data, row.schema_version))
                elif sid.startswith("alert:"):
                    states[sid] = alerts.evolve(states.get(sid), alert_event.read(
                        row.data, row.schema_version))
                else:
                    continue
                last_seq[sid] = row.seq
        await tx.clear_projections()
        for sid, state in states.items():
            kind, _, entity = sid.partition(":")
            if kind == "incident":
                await tx.put_incident(entity, is_open=incidents.is_open(state),
                                      version=state.version, last_seq=last_seq[sid],
                                      view=state.model_dump(mode="json"))
            elif kind == "alert":
                await tx.put_alert(entity, kind=state.kind, is_open=state.status == "open",
                                   version=state.version, last_seq=last_seq[sid],
                                   view=state.model_dump(mode="json"))
            else:
                await tx.put_unit(entity, agency=state.agency, status=state.status,
                                  version=state.version, last_seq=last_seq[sid],
                                  view=state.model_dump(mode="json"))
        if timers:
            await tx.put_timers(
                [(tid, sid, kind, due) for tid, (sid, kind, due) in timers.items()])
    counts = {"incidents": sum(1 for s in states if s.startswith("incident:")),
              "units": sum(1 for s in states if s.startswith("unit:")), "timers": len(timers),
              "alerts": sum(1 for s in states if s.startswith("alert:"))}
    log.info("projections.rebuilt", **counts)
    return counts
