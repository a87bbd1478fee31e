"""Retractions over the real service: exact ids only, a small number at once, anything
more waits for a supervisor's confirmation on the console, and every one is audited
under the adapter's name. Desk alerts from dead letters that mean an input was lost."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from command.model import Retraction
from command.store import Store
from command.subjects import Namespace
from consoles.client import ConsoleClient, open_console
from consoles.protocol import Snapshot
from ecc.app import Service
from tests.helpers import eventually, make_signal, publish_signal


async def open_incidents(store: Store) -> set[str]:
    rows = await store.pool.fetch("SELECT incident_id FROM incidents WHERE is_open")
    return {r["incident_id"] for r in rows}


async def raise_calls(store: Store, js: Any, ns: Namespace, n: int) -> list[str]:
    """``n`` hotline calls far apart, each its own incident; returns their signal ids."""
    ids = []
    for i in range(n):
        signal = make_signal(signal_id=f"call-{uuid.uuid4().hex[:10]}-{i}")
        await publish_signal(js, ns, signal, msg_id=f"hotline:{signal.signal_id}")
        ids.append(signal.signal_id)

    async def all_in() -> bool:
        return len(await open_incidents(store)) >= n

    await eventually(all_in, timeout=20)
    return ids


async def retract(js: Any, ns: Namespace, refers_to: list[str], source: str = "hotline") -> str:
    retraction = Retraction(retraction_id=f"r-{uuid.uuid4().hex[:10]}", source=source,
                            refers_to=tuple(refers_to), reason="caller says it was a mistake",
                            at=datetime.now(UTC))
    await js.publish(ns.signal(source, "retraction"), retraction.model_dump_json().encode(),
                     headers={"Nats-Msg-Id": f"{source}:{retraction.retraction_id}"})
    return retraction.retraction_id


async def audit_of(store: Store, retraction_id: str) -> Any:
    return await store.pool.fetchrow(
        "SELECT actor, role, outcome, reason, args FROM audit_log "
        "WHERE command = 'signal.retract' AND args->>'retraction_id' = $1", retraction_id)


async def test_a_retraction_names_exact_ids_and_a_prefix_takes_nothing(
        service: Service, store: Store, js: Any, ns: Namespace) -> None:
    """The attack that cancelled 152 incidents: refers_to ["call", "sec", "cli"] takes
    back nothing (audited as not_found under adapter-hotline); naming one call's exact
    id cancels that incident alone."""
    ids = await raise_calls(store, js, ns, 3)
    before = await open_incidents(store)
    rid = await retract(js, ns, ["call", "sec", "cli"])
    row = await eventually(lambda: audit_of(store, rid), timeout=15)
    assert (row["actor"], row["role"], row["outcome"]) == ("adapter-hotline", "adapter",
                                                           "not_found")
    assert await open_incidents(store) == before
    rid = await retract(js, ns, [ids[0]])
    row = await eventually(lambda: audit_of(store, rid), timeout=15)
    assert row["outcome"] == "ok" and row["args"]["signals"] == 1
    assert len(await open_incidents(store)) == len(before) - 1


async def test_a_large_retraction_waits_for_a_supervisor(
        service: Service, store: Store, js: Any, ns: Namespace) -> None:
    """Naming more signals than [retractions] confirm_above holds the retraction: nothing
    changes, a desk alert is on every console's snapshot, a dispatcher may not close it,
    and a supervisor's confirmation takes the signals back in the supervisor's name."""
    limit = service.catalogue.retractions.confirm_above
    ids = await raise_calls(store, js, ns, limit + 2)
    before = await open_incidents(store)
    rid = await retract(js, ns, ids)
    row = await eventually(lambda: audit_of(store, rid), timeout=15)
    assert row["outcome"] == "held" and row["args"]["signals"] == limit + 2
    assert await open_incidents(store) == before
    alert_id = f"retraction-hotline-{rid}"

    async def token(role: str) -> str:
        value = f"{role}-{uuid.uuid4().hex}"
        await store.create_token(value, name=f"{role} 1", role=role, agency=None)
        return value

    async def joined(console: ConsoleClient) -> Snapshot:
        await asyncio.wait_for(console.receive(), 10)
        snapshot = await asyncio.wait_for(console.receive(), 10)
        assert isinstance(snapshot, Snapshot)
        return snapshot

    async with open_console(service.console_url, await token("dispatcher")) as dispatcher:
        snap = await joined(dispatcher)
        assert [a["alert_id"] for a in snap.alerts] == [alert_id]
        refused = await dispatcher.command("alert.close", alert_id=alert_id, outcome="confirmed")
        assert not refused.ok and refused.code == "forbidden"
    async with open_console(service.console_url, await token("supervisor")) as supervisor:
        await joined(supervisor)
        done = await supervisor.command("alert.close", alert_id=alert_id, outcome="confirmed")
        assert done.ok, done.message
        assert set(done.data["incidents"]) == before
        again = await supervisor.command("alert.close", alert_id=alert_id, outcome="dismissed")
        assert not again.ok and again.code == "rejected"
    assert await open_incidents(store) == set()
    assert await store.pool.fetchval(
        "SELECT count(*) FROM desk_alerts WHERE is_open") == 0
    closed = await store.pool.fetchrow(
        "SELECT actor, outcome FROM audit_log WHERE command = 'alert.close' AND outcome = 'ok'")
    assert closed["actor"] == "supervisor 1"


async def test_a_dead_letter_that_loses_an_accepted_input_raises_a_desk_alert(
        service: Service, store: Store, js: Any, ns: Namespace) -> None:
    """A data_error dead letter (what the consumer loop writes when PostgreSQL refuses a
    message's content) raises one desk alert naming the dead letter; an ordinary refusal
    (invalid) raises none."""
    await js.publish(ns.deadletter("hotline"), b'{"call_id": "x"}', headers={
        "Ecc-Reason-Code": "invalid", "Ecc-Reason": "received_at: field required",
        "Ecc-Original-Subject": "POST /v1/calls"})
    ack = await js.publish(ns.deadletter("hotline"), b'{"narrative": "..."}', headers={
        "Ecc-Reason-Code": "data_error", "Ecc-Reason": "DataRejected: 22P05",
        "Ecc-Original-Subject": ns.ingress("hotline")})

    async def alerts() -> list[Any]:
        return [json.loads(r["view"]) if isinstance(r["view"], str) else r["view"]
                for r in await store.pool.fetch("SELECT view FROM desk_alerts")]

    [alert] = await eventually(alerts, timeout=15)
    assert alert["alert_id"] == f"deadletter-{ack.seq}" and alert["kind"] == "data_error"
    assert str(ack.seq) in alert["detail"] and "22P05" in alert["detail"]
