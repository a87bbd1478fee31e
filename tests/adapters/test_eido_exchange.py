"""NENA EIDO exchanged with a running ECC: POST /v1/eido and ecc.ingress.eido in, through
the eido adapter to incidents; `ecc eido export` out of the event store."""

from __future__ import annotations

import argparse
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.eido import Call, Caller, Handoff, Place, from_eido, validate
from adapters.eido_export import export
from adapters.eido_out import render
from adapters.ingest import AdapterConfig
from command.model import Reporter
from command.settings import Settings, builtin_catalogue
from command.store import Store
from command.subjects import Namespace
from ecc.app import Service, ServiceConfig
from ecc.cli.borders import cmd_eido
from ecc.cli.errors import CliError
from tests.adapters.test_ingest import dead_letter, incidents
from tests.conftest import Servers, running
from tests.helpers import eventually, far_apart, make_signal, publish_signal, shared_data

T0 = datetime(2026, 7, 20, 8, 30, tzinfo=UTC)


@pytest.fixture
async def svc(servers: Servers, database_url: str, ns: Namespace,
              js: Any) -> AsyncIterator[Service]:
    async with running(Service(ServiceConfig(
            nats_url=servers.nats_url, database_url=database_url, namespace=ns.prefix,
            adapters=AdapterConfig(kinds=("eido",)), ingress_port=0))) as service:
        yield service


@pytest.fixture
async def http(svc: Service, store: Store) -> AsyncIterator[httpx.AsyncClient]:
    value = f"adapter-{uuid.uuid4().hex}"
    await store.create_token(value, name="county cad", role="adapter", agency=None,
                             kinds=("eido",))
    assert svc.ingress is not None
    async with httpx.AsyncClient(base_url=svc.ingress.url, timeout=10,
                                 headers={"Authorization": f"Bearer {value}",
                                          "Content-Type": "application/json"}) as client:
        yield client


def handoff(uid: str) -> bytes:
    """A neighbour's structure fire, sent by their CAD."""
    here = far_apart()
    return json.dumps(render(Handoff(
        incident_uid=f"urn:emergency:uid:incidentid:{uid}:psap.county.example",
        agency="psap.county.example", updated_at=T0, internal_id=uid,
        type_code="FIR-STR", type_text="STRUCTURE FIRE", type_common="Fire", priority=1,
        location=Place(lat=here.lat, lon=here.lon, accuracy_m=50.0, address="12 Oak St"),
        calls=(Call(call_id=f"urn:emergency:uid:callid:{uid}:psap.county.example",
                    started_at=T0, caller=Caller(name="Ann Lee", phone="+1-555-0100")),)))
                      ).encode()


async def test_an_eido_posted_over_http_becomes_an_incident(
        http: httpx.AsyncClient, store: Store) -> None:
    """202 once stored, saying what ECC read; the eido adapter makes it a signal and the
    intake an incident, with the sender's priority and the caller for a call-back. The
    same document again is a duplicate, not a second signal."""
    body = handoff("2026-0042")
    answer = await http.post("/v1/eido", content=body)
    assert answer.status_code == 202, answer.text
    assert answer.json()["accepted"].startswith("eido-")
    assert answer.json()["understood"].startswith(
        "incident urn:emergency:uid:incidentid:2026-0042:psap.county.example from "
        "psap.county.example: fire at ")
    [fire] = await eventually(lambda: incidents(store), timeout=15)
    assert (fire["category"], fire["priority"]) == ("fire", 1)
    [ref] = fire["signals"]
    assert ref["source"] == "eido"
    [evidence] = await store.read_stream(f"signal:eido-{ref['signal_id']}")
    assert evidence.data["reporter"] == {"name": "Ann Lee", "phone": "+1-555-0100"}
    assert evidence.data["details"]["internal_id"] == "2026-0042"
    again = await http.post("/v1/eido", content=body)
    assert again.status_code == 202 and again.json()["duplicate"] is True


async def test_nenas_sample_is_refused_over_http_naming_the_location(
        http: httpx.AsyncClient, js: Any, ns: Namespace) -> None:
    """NENA's sample is valid EIDO but gives a civic address only: 400 naming
    $.locationComponent, and the document is dead-lettered on deadletter.eido."""
    body = shared_data("nena_eido", "Sample_call_transfer_EIDO.json").read_bytes()
    answer = await http.post("/v1/eido", content=body)
    assert answer.status_code == 400
    assert answer.json()["error"].startswith("$.locationComponent: no location with coordinates")
    letter = await eventually(lambda: dead_letter(js, ns, "eido"))
    assert letter.data == body and letter.headers["Ecc-Reason-Code"] == "invalid"
    assert letter.headers["Ecc-Original-Subject"] == "POST /v1/eido by county cad"
    broken = json.loads(body)
    broken["callComponent"][0]["direction"] = "sideways"
    answer = await http.post("/v1/eido", content=json.dumps(broken).encode())
    assert answer.status_code == 400
    assert answer.json()["error"].startswith("$.callComponent[0].direction:")
    huge = await http.post("/v1/eido", content=b" " * (600 * 1024))
    assert huge.status_code == 413


async def test_an_eido_sent_over_nats_becomes_an_incident(
        svc: Service, js: Any, ns: Namespace, store: Store) -> None:
    """Another CAD on NATS publishes the document on ecc.ingress.eido: the same path."""
    await js.publish(ns.ingress("eido"), handoff("2026-0043"))
    [fire] = await eventually(lambda: incidents(store), timeout=15)
    assert fire["signals"][0]["source"] == "eido" and fire["category"] == "fire"


async def test_a_real_incident_exports_as_valid_eido_and_comes_back_as_evidence(
        svc: Service, js: Any, ns: Namespace, store: Store, http: httpx.AsyncClient,
        servers: Servers, database_url: str, tmp_path: Path) -> None:
    """A call raises an incident; its export validates against NENA's schema, carries
    the call and (asked for) the caller, and is audited. Posted back as if from a
    neighbour, it is evidence like any other: fusion joins it to the same incident."""
    call = make_signal(signal_id="call-119-7", summary="smoke from a shop",
                       reporter=Reporter(name="Li Wei", phone="+86 371 0000 0000"))
    await publish_signal(js, ns, call, msg_id="hotline:call-119-7")
    [raised] = await eventually(lambda: incidents(store), timeout=15)
    incident_id = raised["incident_id"]

    doc = await export(store, incident_id, agency="zz.example", now=datetime.now(UTC),
                       callers=True, catalogue=builtin_catalogue())
    assert doc is not None
    validate(doc)
    h = from_eido(doc)
    assert (h.internal_id, h.type_code, h.status) == (incident_id, "fire", raised["status"])
    assert h.location.lat == call.location.lat and h.location.lon == call.location.lon
    [only] = h.calls
    assert only.started_at == call.observed_at
    assert only.caller == Caller(name="Li Wei", phone="+86-371-0000-0000")
    audit = await store.pool.fetchrow(
        "SELECT actor, args FROM audit_log WHERE command = 'eido.export' AND incident_id = $1",
        incident_id)
    assert audit is not None and audit["args"]["callers_shown"] is True

    answer = await http.post("/v1/eido", content=json.dumps(doc).encode())
    assert answer.status_code == 202, answer.text

    async def joined() -> list[dict[str, Any]]:
        found = await incidents(store)
        return found if len(found[0]["signals"]) == 2 else []

    [same] = await eventually(joined, timeout=15)
    assert same["incident_id"] == incident_id
    assert {s["source"] for s in same["signals"]} == {"hotline", "eido"}

    out = tmp_path / "incident.eido.json"
    settings = Settings(nats_url=servers.nats_url, database_url=database_url)
    await cmd_eido(settings, argparse.Namespace(
        eido_command="export", incident_id=incident_id, out=str(out), agency=None,
        without_callers=True))
    written = json.loads(out.read_text())
    validate(written)
    assert written["updatedByAgencyReference"] == {"$ref": "localhost"}  # ECC_CAP_SENDER's
    assert "Li Wei" not in out.read_text() and "personComponent" not in written
    with pytest.raises(CliError, match="no incident nope"):
        await cmd_eido(settings, argparse.Namespace(
            eido_command="export", incident_id="nope", out=None, agency=None,
            without_callers=False))
