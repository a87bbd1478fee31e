"""`ecc report` and `ecc audit export` as a person runs them, against a real database."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from command.engine import Engine, Meta
from command.settings import load_catalogue
from command.store import Store
from tests.conftest import Servers
from workflows import incident as inc
from workflows import unit as un
from workflows.geo import Location

T0 = datetime(2026, 7, 20, 2, 0, tzinfo=UTC)
ME = Meta(actor="test desk")
SF_ROW = ("Call Number,Unit ID,Call Type,Received DtTm,Dispatch DtTm,Response DtTm,"
          "On Scene DtTm,Priority,Unit Type,Unit sequence in call dispatch\n"
          "1,E1,Structure Fire,01/01/2017 11:47:55 AM,01/01/2017 11:48:55 AM,"
          "01/01/2017 11:50:15 AM,01/01/2017 11:54:15 AM,3,ENGINE,1\n")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def a_fire(engine: Engine, incident_id: str, start: float) -> None:
    """A sure fire reported at ``start``: verified at once; E1 offered 40 s later, en route
    after 70 s more, on scene 200 s after that."""
    await engine.execute(incident_id, inc.ReportIncident(
        at=at(start), incident_id=incident_id, signal_id=f"s-{incident_id}", source="sensor",
        category="fire", location=Location(lat=34.75, lon=113.62), confidence=0.95), ME)
    await engine.execute(incident_id, inc.OfferTask(at=at(start + 40), task_id="t1",
                                                    unit_id="E1"), ME)
    await engine.execute(incident_id, inc.AcceptTask(at=at(start + 50), task_id="t1",
                                                     unit_id="E1"), ME)
    await engine.execute(incident_id, inc.TaskEnRoute(at=at(start + 110), task_id="t1"), ME)
    await engine.execute(incident_id, inc.TaskOnScene(at=at(start + 310), task_id="t1"), ME)
    await engine.execute(incident_id, inc.CompleteTask(at=at(start + 900), task_id="t1"), ME)
    await engine.execute_unit("E1", un.MoveUnit(at=at(start + 950), status="available"), ME)


def ecc(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ecc.cli", *args], env=env,
                          capture_output=True, text=True, timeout=60)


async def test_report_and_audit_export_read_a_period_back(
        servers: Servers, database_url: str, store: Store, tmp_path: Path) -> None:
    """Two fires in the period and one after it, two audit rows in it and one after:
    the CSV report has the period's two incidents (call processing 40 s, turnout 70 s,
    travel 200 s, total 310 s), the HTML page beside an SF file has both sources, the
    table prints, and the audit export has the period's rows only; a time without an
    offset is refused with status 2."""
    engine = Engine(store, load_catalogue())
    await engine.execute_unit("E1", un.RegisterUnit(at=T0, unit_id="E1", call_sign="Engine 1",
                                                    agency="fire", capabilities=("engine",)), ME)
    for incident_id, start in (("i1", 0), ("i2", 1000), ("late", 7200)):
        await a_fire(engine, incident_id, start)
    await store.pool.executemany(
        "INSERT INTO audit_log (at, actor, role, agency, peer, command, incident_id, args, "
        "outcome, reason) VALUES ($1, $2, $3, NULL, '10.0.0.7', $4, $5, $6, $7, '')",
        [(at(30), "desk 3", "dispatcher", "task.dispatch", "i1",
          {"task_id": "t1", "unit_id": "E1"}, "ok"),
         (at(60), "desk 4", "viewer", "incident.resolve", "i1", {}, "forbidden"),
         (at(7300), "desk 3", "dispatcher", "incident.close", "late", {}, "ok")])
    sf = tmp_path / "sf.csv"
    sf.write_text(SF_ROW)
    env = {**os.environ, "NATS_URL": servers.nats_url, "DATABASE_URL": database_url,
           "ECC_DATA_DIR": str(tmp_path / "data")}
    period = ("--from", "2026-07-20T10:00+08:00", "--to", "2026-07-20T03:00Z")
    page = tmp_path / "report.html"
    as_csv, as_html, as_table, audit, naive = await asyncio.gather(
        asyncio.to_thread(ecc, env, "report", *period, "--format", "csv"),
        asyncio.to_thread(ecc, env, "report", *period, "--format", "html", "--sf", str(sf),
                          "--out", str(page)),
        asyncio.to_thread(ecc, env, "report", *period, "--sf", str(sf)),
        asyncio.to_thread(ecc, env, "audit", "export", *period),
        asyncio.to_thread(ecc, env, "report", "--from", "2026-07-20T00:00",
                          "--to", "2026-07-21T00:00Z"))
    for done in (as_csv, as_html, as_table, audit):
        assert done.returncode == 0, done.stderr
    rows = {(r["dimension"], r["group"], r["interval"]): r
            for r in csv.DictReader(io.StringIO(as_csv.stdout))}
    assert {k[2]: (rows[k]["n"], rows[k]["p50_s"]) for k in rows if k[0] == "all"} == {
        "verification": ("2", "0.0"), "call_processing": ("2", "40.0"),
        "turnout": ("2", "70.0"), "travel": ("2", "200.0"),
        "travel_first_engine": ("2", "200.0"), "total_response": ("2", "310.0")}
    assert rows[("all", "all", "turnout")]["within_target_fraction"] == "1.000"
    assert rows[("priority", "P2", "call_processing")]["target_s"] == "60"
    html = page.read_text()
    assert html.count("<svg") == 6 and "SF · all: all" in html and "ECC · type: fire" in html
    assert "Structure Fire" in as_table.stdout and "2 incidents reported" in as_table.stdout
    exported = list(csv.DictReader(io.StringIO(audit.stdout)))
    assert [(r["actor"], r["command"], r["outcome"]) for r in exported] == [
        ("desk 3", "task.dispatch", "ok"), ("desk 4", "incident.resolve", "forbidden")]
    assert exported[0]["args"] == '{"task_id":"t1","unit_id":"E1"}'
    assert exported[0]["at"] == "2026-07-20T02:00:30+00:00"
    assert naive.returncode == 2 and "has no time-zone offset" in naive.stderr
