"""Arbitrary text at every border that takes text from people: the HTTP ingress, the
console's call taking and a signal on NATS. Whatever the bytes, an input is either
refused before it is acknowledged or, once acknowledged, reaches an incident, and the
console's audit row is written (the fault-suite checker's promise, with hypothesis)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from adapters.ingest import AdapterConfig
from command.store import Store
from command.subjects import Namespace
from consoles.client import ConsoleClient, open_console
from ecc.app import Service, ServiceConfig
from tests.conftest import Servers, running
from tests.helpers import eventually, far_apart
from workflows.text import REPLACEMENT

# NUL, lone surrogates, control characters, anything else; now and then 100 KB of it.
NASTY = st.one_of(
    st.text(st.characters(codec=None, exclude_categories=()), min_size=1, max_size=300),
    st.sampled_from(["\x00", "fire\x00on the third floor", "\ud800", "smoke \udfff",
                     "\x00" * 50, "\x1b[31m\x07\x08", "火\x00灾"]),
    st.text(min_size=1, max_size=3).map(lambda s: s * 40_000),
)
# No shrinking: each example goes through the whole service, and a failing one is
# printed as generated (shrinking it took minutes).
EXAMPLES = settings(max_examples=25, deadline=None,
                    phases=[Phase.explicit, Phase.reuse, Phase.generate],
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


@pytest.fixture
async def svc(servers: Servers, database_url: str, ns: Namespace,
              js: Any) -> AsyncIterator[Service]:
    async with running(Service(ServiceConfig(
            nats_url=servers.nats_url, database_url=database_url, namespace=ns.prefix,
            adapters=AdapterConfig(kinds=("hotline",)), ingress_port=0,
            console_port=0))) as service:
        yield service


async def holding(store: Store, signal_id: str) -> Any:
    """The incident that holds ``signal_id``, or None."""
    return await store.pool.fetchval(
        "SELECT incident_id FROM incidents WHERE view->'signals' @> $1::jsonb",
        [{"signal_id": signal_id}])


@EXAMPLES
@given(narrative=NASTY, name=NASTY)
async def test_any_text_posted_as_a_call_is_refused_or_reaches_an_incident(
        svc: Service, store: Store, narrative: str, name: str) -> None:
    """A call record whose narrative and caller's name hold anything: 202 means an
    incident holds the call; anything else is a 4xx with a reason, never a 5xx."""
    assert svc.ingress is not None
    token = f"adapter-{uuid.uuid4().hex}"
    await store.create_token(token, name="119 platform", role="adapter", agency=None)
    call_id = uuid.uuid4().hex[:12]
    here = far_apart()
    # ensure_ascii: a lone surrogate travels as its \\ud800 escape, as a platform's
    # JSON library would write it
    body = json.dumps({"call_id": call_id, "platform": "119", "narrative": narrative,
                       "received_at": datetime(2026, 7, 20, 8, 30, tzinfo=UTC).isoformat(),
                       "location": {"lat": here.lat, "lon": here.lon},
                       "caller": {"name": name[:200], "phone": "110"}}).encode()
    async with httpx.AsyncClient(base_url=svc.ingress.url, timeout=15,
                                 headers={"Authorization": f"Bearer {token}",
                                          "Content-Type": "application/json"}) as http:
        answer = await http.post("/v1/calls", content=body)
    assert answer.status_code < 500, answer.text
    if answer.status_code != 202:
        assert 400 <= answer.status_code < 500 and answer.json()["error"]
        return
    assert await eventually(lambda: holding(store, f"call-{call_id}"), timeout=20)


@pytest.fixture
async def desk(svc: Service, store: Store) -> AsyncIterator[ConsoleClient]:
    token = f"taker-{uuid.uuid4().hex}"
    await store.create_token(token, name="call taker 1", role="call_taker", agency=None)
    async with open_console(svc.console_url, token) as console:
        await console.receive()  # welcome
        await console.receive()  # snapshot
        yield console


@EXAMPLES
@given(narrative=NASTY, address=NASTY)
async def test_any_text_taken_on_the_console_is_refused_or_reaches_an_incident(
        svc: Service, store: Store, desk: ConsoleClient, narrative: str, address: str) -> None:
    """call.take with anything in the narrative and address: ok means an incident holds
    the call and the audit row is written with the text cleaned; a refusal says why and
    is audited too."""
    here = far_apart()
    taken = "SELECT count(*) FROM audit_log WHERE command = 'call.take'"
    before = await store.pool.fetchval(taken)
    result = await desk.command("call.take", narrative=narrative[:4000], lat=here.lat,
                                lon=here.lon, address=address[:500])
    after = await store.pool.fetchval(taken)
    assert after == before + 1, "every console command is audited, whatever it held"
    if not result.ok:
        assert result.code == "invalid" and result.message
        return
    signal_id = result.data["signal_id"]
    assert await eventually(lambda: holding(store, signal_id), timeout=20)
    row = await store.pool.fetchrow(
        "SELECT args, outcome FROM audit_log WHERE command = 'call.take' "
        "ORDER BY id DESC LIMIT 1")
    assert row["outcome"] == "ok"
    kept = json.loads(row["args"]) if isinstance(row["args"], str) else row["args"]
    text = kept.get("narrative", kept.get("truncated"))  # long args are kept truncated
    assert text and "\x00" not in text
    if "\x00" in narrative[:4000] and "narrative" in kept:
        assert REPLACEMENT in kept["narrative"]


@EXAMPLES
@given(summary=NASTY)
async def test_any_text_in_a_signal_on_nats_is_dead_lettered_or_reaches_an_incident(
        svc: Service, store: Store, js: Any, ns: Namespace, summary: str) -> None:
    """A signal published with anything in its summary and details: the broker's ack
    means an incident holds it or its dead letter says why, never a redelivery loop."""
    signal_id = f"sig-{uuid.uuid4().hex[:16]}"
    here = far_apart()
    body = json.dumps({"signal_id": signal_id, "source": "hotline", "category": "fire",
                       "location": {"lat": here.lat, "lon": here.lon},
                       "observed_at": "2026-07-20T08:30:00+00:00", "summary": summary[:2000],
                       "details": {"note": summary[:1000]}, "confidence": 0.6}).encode()
    ack = await js.publish(ns.signal("hotline", "fire"), body,
                           headers={"Nats-Msg-Id": f"hotline:{signal_id}"})
    assert ack.seq

    async def settled() -> Any:
        if await holding(store, signal_id):
            return "incident"
        try:
            letter = await js.get_last_msg(ns.stream("DEADLETTER"), ns.deadletter("hotline"))
        except Exception:
            return None
        return "dead letter" if signal_id.encode() in letter.data else None

    assert await eventually(settled, timeout=20)
