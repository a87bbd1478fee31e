"""The engine on real PostgreSQL: multi-stream commands, retries, timers, rebuilds, kill -9."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tomllib
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from command.engine import Engine, Meta
from command.projections import rebuild
from command.settings import load_catalogue
from command.store import Store
from command.subjects import Namespace
from command.timers import TimerScheduler
from ecc.app import Service
from tests.conftest import Servers
from tests.helpers import eventually, make_signal, publish_signal
from tests.toml_text import dumps
from workflows import incident as inc
from workflows import unit as un
from workflows.geo import Location
from workflows.messages import Rejected

CATALOGUE = load_catalogue()
T0 = datetime(2026, 7, 20, 8, 0, tzinfo=UTC)
ME = Meta(actor="test desk")


def report(incident_id: str, at: datetime = T0, confidence: float = 0.6,
           source: str = "sensor", category: str = "fire") -> inc.ReportIncident:
    return inc.ReportIncident(at=at, incident_id=incident_id, signal_id=f"s-{incident_id}",
                              source=source, category=category,
                              location=Location(lat=34.75, lon=113.62), confidence=confidence)


async def register(engine: Engine, unit_id: str, agency: str, *caps: str) -> None:
    await engine.execute_unit(unit_id, un.RegisterUnit(at=T0, unit_id=unit_id, call_sign=unit_id,
                                                       agency=agency, capabilities=caps), ME)


async def view(store: Store, incident_id: str) -> dict[str, Any]:
    found = await store.incident_view(incident_id)
    assert found is not None
    return found[1]


async def unit_status(store: Store, unit_id: str) -> str:
    return str(await store.pool.fetchval("SELECT status FROM units WHERE unit_id = $1", unit_id))


async def test_a_sensor_and_a_call_reach_dispatching_with_the_plans_tasks(
    service: Service, store: Store, js: Any, ns: Namespace
) -> None:
    """A smoke sensor's signal raises the incident; the caller's signal verifies it; the
    fire plan's fire, health and police tasks exist in the projection."""
    await publish_signal(js, ns, make_signal(source="sensor", confidence=0.6,
                                             summary="smoke detector, Erqi Square"))
    [incident_id] = await eventually(lambda: store.pool.fetchval(
        "SELECT array_agg(incident_id) FROM incidents"))
    assert service.engine is not None
    await service.engine.execute(incident_id, inc.AttachSignal(
        at=datetime.now(UTC), signal_id="call-77", source="hotline", by="signal:hotline"), ME)
    v = await view(store, incident_id)
    assert v["status"] == "dispatching"
    assert {t["agency"] for t in v["tasks"]} == {"fire", "health", "police"}
    assert await store.pool.fetchval("SELECT count(*) FROM timers WHERE kind = 'task_pending'") \
        == len(v["tasks"])


async def test_dispatch_writes_incident_and_unit_together_and_never_double_books(
    store: Store,
) -> None:
    """Offering a task dispatches the unit in the same transaction; a second offer of the
    same unit elsewhere is refused and writes nothing at all."""
    engine = Engine(store, CATALOGUE)
    await register(engine, "E1", "fire", "engine")
    for iid in ("a", "b"):
        await engine.execute(iid, report(iid, confidence=0.95), ME)
    await engine.execute("a", inc.OfferTask(at=T0, task_id="t1", unit_id="E1"), ME)
    assert await unit_status(store, "E1") == "dispatched"
    before = await store.head()
    with pytest.raises(Rejected) as info:
        await engine.execute("b", inc.OfferTask(at=T0, task_id="t1", unit_id="E1"), ME)
    assert info.value.code == "unit_unavailable"
    assert await store.head() == before
    assert (await view(store, "b"))["tasks"][0]["status"] == "pending"


async def test_concurrent_commands_on_one_incident_all_land(store: Store) -> None:
    """Writers racing on one stream retry on conflict; every note is kept, versions dense."""
    engine = Engine(store, CATALOGUE)
    await engine.execute("n", report("n"), ME)
    await asyncio.gather(*(engine.execute("n", inc.AddNote(at=T0, text=f"note {i}"), ME)
                           for i in range(10)))
    events = await store.read_stream("incident:n")
    assert [e.version for e in events] == list(range(1, len(events) + 1))
    assert sum(e.type == "incident.note_added" for e in events) == 10
    assert (await view(store, "n"))["notes"] == 10


async def test_a_timer_due_while_down_fires_once(store: Store) -> None:
    """Timers due while no scheduler ran fire on the first pass, and only once."""
    engine = Engine(store, CATALOGUE)
    past = datetime.now(UTC) - timedelta(minutes=5)
    await engine.execute("late", report("late", at=past), ME)
    scheduler = TimerScheduler(engine)
    assert await scheduler.fire_due() == 1
    assert await scheduler.fire_due() == 0
    kinds = [e.type for e in await store.read_stream("incident:late")]
    assert kinds.count("timer.fired") == 1 and kinds.count("incident.escalated") == 1
    assert (await view(store, "late"))["escalations"][0]["rule"] == "verify_sla"


async def test_two_schedulers_never_fire_one_timer_twice(store: Store,
                                                         database_url: str) -> None:
    """Two schedulers on their own connections race over 30 due timers: 30 firings."""
    engine = Engine(store, CATALOGUE)
    past = datetime.now(UTC) - timedelta(minutes=5)
    for i in range(30):
        await engine.execute(f"r{i}", report(f"r{i}", at=past), ME)
    other = await Store.connect(database_url)
    try:
        fired = await asyncio.gather(TimerScheduler(engine).fire_due(),
                                     TimerScheduler(Engine(other, CATALOGUE)).fire_due())
    finally:
        await other.close()
    assert sum(fired) == 30
    counts = await store.pool.fetch(
        "SELECT stream_id, count(*) AS n FROM events WHERE type = 'timer.fired' "
        "GROUP BY stream_id")
    assert len(counts) == 30 and {r["n"] for r in counts} == {1}


async def test_acks_racing_their_timeouts_never_deadlock(store: Store,
                                                        database_url: str) -> None:
    """Crews acknowledging exactly as their ack SLA fires: each task ends either accepted or
    returned, never both, and no transaction dies of a lock cycle."""
    engine = Engine(store, CATALOGUE)
    past = datetime.now(UTC) - timedelta(minutes=5)
    for i in range(20):
        await register(engine, f"E{i}", "fire", "engine")
        await engine.execute(f"k{i}", report(f"k{i}", at=past, confidence=0.95), ME)
        await engine.execute(f"k{i}", inc.OfferTask(at=past, task_id="t1", unit_id=f"E{i}"), ME)

    async def accept(i: int) -> str:
        try:
            await engine.execute(f"k{i}", inc.AcceptTask(at=datetime.now(UTC), task_id="t1",
                                                         unit_id=f"E{i}"), ME)
            return "accepted"
        except Rejected:
            return "too late"

    other = await Store.connect(database_url)
    try:
        results = await asyncio.gather(*(accept(i) for i in range(20)),
                                       TimerScheduler(Engine(other, CATALOGUE)).fire_due())
    finally:
        await other.close()
    for i, outcome in enumerate(results[:20]):
        task = (await view(store, f"k{i}"))["tasks"][0]
        if outcome == "accepted":
            assert task["status"] == "accepted" and task["passed_over"] == []
        else:
            assert task["status"] == "pending" and task["passed_over"] == [f"E{i}"]


async def test_a_cancelled_timer_never_fires(store: Store) -> None:
    """Verified before its SLA, the verify timer is gone; only later timers remain."""
    engine = Engine(store, CATALOGUE)
    await engine.execute("v", report("v", at=T0), ME)
    await engine.execute("v", inc.VerifyIncident(at=T0 + timedelta(seconds=50)), ME)
    scheduler = TimerScheduler(engine, clock=lambda: T0 + timedelta(seconds=70))
    assert await scheduler.fire_due() == 0
    kinds = await store.pool.fetch("SELECT DISTINCT kind FROM timers")
    assert {r["kind"] for r in kinds} == {"task_pending"}


async def test_a_rebuild_equals_the_live_projections(store: Store) -> None:
    """Fold every event again: incidents, units and timers come out identical."""
    engine = Engine(store, CATALOGUE)
    await register(engine, "E1", "fire", "engine")
    await register(engine, "A1", "health", "als")
    await engine.execute("x", report("x", confidence=0.95), ME)
    await engine.execute("x", inc.OfferTask(at=T0, task_id="t1", unit_id="E1"), ME)
    await engine.execute("x", inc.AcceptTask(at=T0, task_id="t1", unit_id="E1"), ME)
    await engine.execute("x", inc.TaskEnRoute(at=T0, task_id="t1"), ME)
    await engine.execute("x", inc.OfferTask(at=T0, task_id="t4", unit_id="A1"), ME)
    await engine.execute("y", report("y", category="flood"), ME)
    await engine.execute("y", inc.CancelIncident(at=T0, reason="false alarm"), ME)

    async def tables() -> list[Any]:
        out = []
        for sql in ("SELECT incident_id, is_open, version, last_seq, view FROM incidents "
                    "ORDER BY 1",
                    "SELECT unit_id, agency, status, version, last_seq, view FROM units ORDER BY 1",
                    "SELECT timer_id, stream_id, kind, due_at FROM timers ORDER BY 1"):
            out.append([dict(r) for r in await store.pool.fetch(sql)])
        return out

    live = await tables()
    counts = await rebuild(store)
    assert counts == {"incidents": 2, "units": 2, "timers": len(live[2]), "alerts": 0}
    assert await tables() == live


FAST_SLA = {"verify_s": 600.0, "ack_s": 1.0, "task_pending_s": 600.0}


def fast_catalogue_text() -> str:
    """The built-in catalogue as TOML with a one-second ack SLA, and the verification and
    pending SLAs out of the way (each differs from the built-in value, or this is no
    test)."""
    doc = tomllib.loads(resources.files("workflows").joinpath("data/catalogue.toml")
                        .read_text())
    assert all(doc["sla"][key] != value for key, value in FAST_SLA.items())
    doc["sla"].update(FAST_SLA)
    return dumps(doc)


@pytest.mark.slow
async def test_an_unacknowledged_dispatch_escalates_after_a_kill_9(
    servers: Servers, database_url: str, store: Store, js: Any, ns: Namespace, tmp_path: Path
) -> None:
    """A unit is offered a task; the service is killed -9; a new one starts after the ack
    SLA has passed: the task is returned, the unit freed, supervisors told, once."""
    catalogue_file = tmp_path / "catalogue.toml"
    catalogue_file.write_text(fast_catalogue_text())
    sla = load_catalogue(catalogue_file).sla
    assert (sla.verify_s, sla.ack_s, sla.task_pending_s) == (600, 1, 600)
    env = {**os.environ, "NATS_URL": servers.nats_url, "DATABASE_URL": database_url,
           "ECC_NAMESPACE": ns.prefix, "ECC_CONSOLE_PORT": "0",
           "ECC_CATALOGUE": str(catalogue_file)}

    def serve() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "ecc.cli", "serve"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    proc = serve()
    try:
        await publish_signal(js, ns, make_signal(source="sensor", confidence=0.95))
        [incident_id] = await eventually(lambda: store.pool.fetchval(
            "SELECT array_agg(incident_id) FROM incidents"), timeout=30)
        engine = Engine(store, load_catalogue(catalogue_file))
        await register(engine, "E1", "fire", "engine")
        await engine.execute(incident_id, inc.OfferTask(at=datetime.now(UTC), task_id="t1",
                                                        unit_id="E1"), ME)
        proc.send_signal(signal.SIGKILL)
        assert await asyncio.wait_for(asyncio.to_thread(proc.wait), 10) == -9
        assert (await view(store, incident_id))["tasks"][0]["status"] == "offered"
    finally:
        proc.kill()
    await asyncio.sleep(1.1)  # the ack SLA (1 s) passes while nothing runs: that is the test
    proc = serve()
    try:
        async def returned() -> bool:
            return bool((await view(store, incident_id))["tasks"][0]["status"] == "pending")

        await eventually(returned, timeout=30)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    v = await view(store, incident_id)
    assert [e["rule"] for e in v["escalations"]] == ["ack_sla"]
    assert v["tasks"][0]["passed_over"] == ["E1"]
    assert await unit_status(store, "E1") == "available"
