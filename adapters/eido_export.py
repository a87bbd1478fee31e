"""Shell: one of ECC's incidents out of the event store as a NENA EIDO document.

``ecc eido export`` calls :func:`export`. It reads what the console's incident
detail reads (the incident's view, its own events, its signals' evidence), lets
the pure core (:func:`adapters.eido_out.to_eido`) make and check the document, and
writes a row to the audit log: the callers' names and numbers are personal data,
and the log says when they left the system and for which incident.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from adapters.eido_out import to_eido
from command.model import Signal
from command.store import Store
from workflows.catalogue import Catalogue

__all__ = ["export"]


async def export(store: Store, incident_id: str, *, agency: str, now: datetime,
                 callers: bool, catalogue: Catalogue,
                 actor: str = "ecc eido export") -> dict[str, Any] | None:
    """The EIDO document of ``incident_id``, or None when there is no such incident.

    Raises :class:`adapters.eido.EidoExportError` if the document fails the schema
    (a bug, and nothing is written to the audit log), and asyncpg's errors as they are.
    """
    found = await store.incident_view(incident_id)
    if found is None:
        return None
    _, view = found
    timeline = await store.read_stream(f"incident:{incident_id}")
    signals = []
    for ref in view.get("signals", []):
        evidence = await store.read_stream(f"signal:{ref['source']}-{ref['signal_id']}")
        if evidence:
            signals.append(Signal.model_validate(evidence[0].data))
    doc = to_eido(view, timeline=timeline, signals=signals, agency=agency, now=now,
                  callers=callers, catalogue=catalogue)
    shown = callers and any(s.reporter is not None for s in signals)
    await store.audit_or_raise(actor=actor, role="admin", command="eido.export", outcome="ok",
                               incident_id=incident_id,
                               args={"agency": agency, "callers_shown": shown})
    return doc
