"""The golden histories (tests/histories/*.jsonl) replayed on every run: read through the
upcasters and folded with today's evolve functions, in memory and through ``ecc rebuild``
on a real database, they give exactly the projections recorded beside them."""

from __future__ import annotations

from typing import Any

import pytest

from command.model import RecordedEvent
from command.projections import rebuild
from command.store import Store
from tests.histories import golden
from workflows import upcast
from workflows.upcast import Upcasters


def test_there_are_golden_histories() -> None:
    """At least two histories are recorded, each of a few hundred events, under 1 MB in all."""
    assert len(golden.NAMES) >= 2
    assert all(len(golden.read(n)) >= 200 for n in golden.NAMES)
    assert sum(p.stat().st_size for p in golden.HERE.glob("*.json*")) < 1_000_000


@pytest.mark.parametrize("name", golden.NAMES)
def test_a_history_folds_to_its_recorded_projections(name: str) -> None:
    """Today's evolve functions fold the recorded events to the recorded views, exactly."""
    assert golden.fold(golden.read(name)) == golden.expected(name)


@pytest.mark.parametrize("name", golden.NAMES)
async def test_a_history_rebuilds_to_its_recorded_projections(name: str, store: Store) -> None:
    """Inserted into an empty store as they were recorded, the events rebuild
    (``ecc rebuild``) to the recorded incidents and units, exactly."""
    events = golden.read(name)
    await _insert(store, events)
    counts = await rebuild(store)
    want = golden.expected(name)
    assert counts["incidents"] == len(want["incidents"]) > 0
    assert await _projections(store) == want


async def _insert(store: Store, events: list[RecordedEvent]) -> None:
    heads: dict[str, int] = {}
    for e in events:
        heads[e.stream_id] = max(heads.get(e.stream_id, 0), e.version)
    async with store.pool.acquire() as conn, conn.transaction():
        await conn.executemany("INSERT INTO streams (stream_id, version) VALUES ($1, $2)",
                               list(heads.items()))
        await conn.executemany(
            "INSERT INTO events (seq, event_id, stream_id, version, type, data, causation_id,"
            " correlation_id, actor, recorded_at, schema_version) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            [(e.seq, e.event_id, e.stream_id, e.version, e.type, e.data, e.causation_id,
              e.correlation_id, e.actor, e.recorded_at, e.schema_version) for e in events])


async def _projections(store: Store) -> dict[str, dict[str, Any]]:
    return {"incidents": {r["id"]: dict(r["view"]) for r in await store.pool.fetch(
                "SELECT incident_id AS id, view FROM incidents ORDER BY 1")},
            "units": {r["id"]: dict(r["view"]) for r in await store.pool.fetch(
                "SELECT unit_id AS id, view FROM units ORDER BY 1")}}


def _older(data: dict[str, Any]) -> dict[str, Any]:
    """incident.verified as a release before a rename stored it: ``who``, not ``by``."""
    return {("who" if k == "by" else k): v for k, v in data.items()}


def _newer(data: dict[str, Any]) -> dict[str, Any]:
    return {("by" if k == "who" else k): v for k, v in data.items()}


async def test_old_rows_rebuild_through_an_upcaster(store: Store,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A history whose incident.verified rows are in an older shape (version 1, ``who``)
    rebuilds to the same projections once today's version 2 has its step from 1, and the
    store's own reads of those rows give today's shape."""
    name = golden.NAMES[0]
    monkeypatch.setattr(upcast, "EVENTS", Upcasters({**upcast.CURRENT, "incident.verified": 2},
                                                     {("incident.verified", 1): _newer}))
    events = [e.model_copy(update={"data": _older(e.data), "schema_version": 1})
              if e.type == "incident.verified" else e for e in golden.read(name)]
    assert any(e.schema_version == 1 and "who" in e.data for e in events)
    await _insert(store, events)
    await rebuild(store)
    assert await _projections(store) == golden.expected(name)
    stored = await store.read_stream(next(e.stream_id for e in events
                                          if e.type == "incident.verified"))
    assert all("by" in e.data for e in stored if e.type == "incident.verified")
