"""The HTTP ingress on a real uvicorn, with a real HTTP client, through to incidents."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.cap import MAX_ALERT_BYTES
from adapters.ingest import AdapterConfig
from command.service import Service, ServiceConfig
from command.store import Store
from command.subjects import Namespace
from tests.adapters.test_ingest import FIRE_MET, STRICT, call, cap, dead_letter, incidents
from tests.conftest import Servers, running
from tests.helpers import eventually, far_apart


@pytest.fixture
async def svc(servers: Servers, database_url: str, ns: Namespace,
              js: Any) -> AsyncIterator[Service]:
    async with running(Service(ServiceConfig(
            nats_url=servers.nats_url, database_url=database_url, namespace=ns.prefix,
            adapters=AdapterConfig(kinds=("hotline", "cap")), ingress_port=0))) as service:
        yield service


@pytest.fixture
async def platform(store: Store) -> str:
    value = f"adapter-{uuid.uuid4().hex}"
    await store.create_token(value, name="119 platform", role="adapter", agency=None)
    return value


@pytest.fixture
async def http(svc: Service, platform: str) -> AsyncIterator[httpx.AsyncClient]:
    assert svc.ingress is not None
    async with httpx.AsyncClient(base_url=svc.ingress.url, timeout=10,
                                 headers={"Authorization": f"Bearer {platform}"}) as client:
        yield client


async def test_calls_posted_over_http_become_one_incident(
        http: httpx.AsyncClient, store: Store) -> None:
    """Two calls about one fire: 202 each (after the broker stored them), one incident of
    two signals; the same call posted twice is a duplicate, not a third signal."""
    here = far_apart()
    first = await http.post("/v1/calls", content=call("h1", "kitchen fire, smoke everywhere", 0,
                                                      here.lat, here.lon))
    assert first.status_code == 202, first.text
    assert first.json()["accepted"] == "call-h1" and first.json()["duplicate"] is False
    again = await http.post("/v1/calls", content=call("h1", "kitchen fire, smoke everywhere",
                                                      0, here.lat, here.lon))
    assert again.status_code == 202 and again.json()["duplicate"] is True
    second = await http.post("/v1/calls", content=call("h2", "冒烟了", 1, here.lat, here.lon))
    assert second.status_code == 202

    async def two() -> list[dict[str, Any]]:
        found = await incidents(store)
        return found if found and len(found[0]["signals"]) == 2 else []

    [fire] = await eventually(two, timeout=15)
    assert fire["category"] == "fire" and len(await incidents(store)) == 1


async def test_bad_records_get_400_with_the_reason_and_are_dead_lettered(
        http: httpx.AsyncClient, js: Any, ns: Namespace) -> None:
    answer = await http.post("/v1/calls", content=b'{"call_id": "x1", "narrative": "help"}')
    assert answer.status_code == 400
    assert "received_at" in answer.json()["error"]
    letter = await eventually(lambda: dead_letter(js, ns, "hotline"))
    assert b'"x1"' in letter.data and "received_at" in letter.headers["Ecc-Reason"]
    assert letter.headers["Ecc-Original-Subject"].startswith("POST /v1/calls by 119 platform")
    huge = await http.post("/v1/calls", content=b"x" * (200 * 1024))
    assert huge.status_code == 413
    assert huge.json()["error"] == "the record is 204800 bytes; the limit is 65536 bytes"
    bad_cap = await http.post("/v1/cap", content=b"<!DOCTYPE x [<!ENTITY a 'b'>]><alert/>")
    assert bad_cap.status_code == 400 and "unsafe XML" in bad_cap.json()["error"]


async def test_cap_over_http_says_what_was_understood(http: httpx.AsyncClient,
                                                      store: Store) -> None:
    here = far_apart()
    answer = await http.post("/v1/cap", content=cap("H-1", "Alert", 0, here.lat, here.lon))
    assert answer.status_code == 202, answer.text
    assert "signal cap-" in answer.json()["understood"]
    found = await eventually(lambda: incidents(store), timeout=15)
    assert found[0]["signals"][0]["source"] == "cap"


@pytest.fixture
async def strict(servers: Servers, database_url: str, ns: Namespace, js: Any,
                 platform: str) -> AsyncIterator[httpx.AsyncClient]:
    """The ingress of a service whose CAP adapter has a city area and a sender that must
    sign (tests/adapters/test_ingest.py STRICT)."""
    async with running(Service(ServiceConfig(
            nats_url=servers.nats_url, database_url=database_url, namespace=ns.prefix,
            adapters=STRICT, ingress_port=0))) as service:
        assert service.ingress is not None
        async with httpx.AsyncClient(base_url=service.ingress.url, timeout=30, headers={
                "Authorization": f"Bearer {platform}"}) as client:
            yield client


async def test_cap_over_http_is_judged_by_signature_size_and_area(
        strict: httpx.AsyncClient, js: Any, ns: Namespace) -> None:
    """A signed alert: 202 saying signed_valid; a 1 MB alert (a national warning
    polygon) from a sender without a rule: 202, flagged unsigned; one over 4 MiB: 413
    with its size and the limit; a tampered one: 400 and a cap_signature dead letter;
    one outside the city's area: 202 saying it will be dropped; a second copy with other
    content gets its own id and the adapter dead-letters it as cap_conflict."""
    here = far_apart()
    signed = FIRE_MET.sign(cap("HTTP-S1", "Alert", 0, here.lat, here.lon))
    ok = await strict.post("/v1/cap", content=signed)
    assert ok.status_code == 202, ok.text
    assert "signature: signed_valid by CN=Fire Service Alerts" in ok.json()["understood"]
    turn = [2 * math.pi * i / 50_000 for i in range(50_000)]
    ring = " ".join(f"{here.lat + 0.2 * math.sin(a):.6f},{here.lon + 0.2 * math.cos(a):.6f}"
                    for a in [*turn, 0.0])
    big = cap("HTTP-BIG", "Alert", 0, here.lat, here.lon).replace(
        b"alerts@fire.example", b"met@national.example").replace(
        b"<circle>", f"<polygon>{ring}</polygon><circle>".encode())
    assert len(big) > 1_000_000
    taken = await strict.post("/v1/cap", content=big)
    assert taken.status_code == 202, taken.text
    assert "signature: unsigned" in taken.json()["understood"]
    over = big + b" " * (MAX_ALERT_BYTES + 1 - len(big))
    refused = await strict.post("/v1/cap", content=over)
    assert refused.status_code == 413
    assert refused.json()["error"] == (f"the alert is {MAX_ALERT_BYTES + 1} bytes; the limit "
                                       f"is {MAX_ALERT_BYTES} bytes")
    tampered = await strict.post("/v1/cap", content=signed.replace(b"HTTP-S1", b"HTTP-S2"))
    assert tampered.status_code == 400 and "signature is invalid" in tampered.json()["error"]
    letter = await eventually(lambda: dead_letter(js, ns, "cap"))
    assert letter.headers["Ecc-Reason-Code"] == "cap_signature"
    away = await strict.post("/v1/cap", content=FIRE_MET.sign(
        cap("HTTP-AWAY", "Alert", 0, 30.0, 120.0)))
    assert away.status_code == 202
    assert "outside the city's area, dropped" in away.json()["understood"]
    other = await strict.post("/v1/cap", content=FIRE_MET.sign(cap(
        "HTTP-S1", "Alert", 0, here.lat, here.lon).replace(b"Warehouse fire,", b"Grass fire,")))
    assert other.status_code == 202 and other.json()["duplicate"] is False
    assert other.json()["accepted"] != ok.json()["accepted"]

    async def conflict() -> Any:
        found = await dead_letter(js, ns, "cap")
        return found if found.headers["Ecc-Reason-Code"] == "cap_conflict" else None

    assert b"Grass fire" in (await eventually(conflict, timeout=15)).data


async def test_only_adapter_tokens_may_feed(svc: Service, store: Store, token: str) -> None:
    """No token, an unknown one, a revoked one and a dispatcher's are all refused, each
    with what to do next."""
    assert svc.ingress is not None
    body = call("a1", "fire", 0, 34.0, 113.0)
    async with httpx.AsyncClient(base_url=svc.ingress.url, timeout=10) as client:
        none = await client.post("/v1/calls", content=body)
        assert none.status_code == 401 and "ecc token create" in none.json()["error"]
        wrong = await client.post("/v1/calls", content=body,
                                  headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        dispatcher = await client.post("/v1/calls", content=body,
                                       headers={"Authorization": f"Bearer {token}"})
        assert dispatcher.status_code == 403 and "adapter" in dispatcher.json()["error"]
        value = f"adapter-{uuid.uuid4().hex}"
        await store.create_token(value, name="old platform", role="adapter", agency=None)
        auth = {"Authorization": f"Bearer {value}"}
        assert (await client.post("/v1/calls", content=body, headers=auth)).status_code == 202
        await store.pool.execute("UPDATE tokens SET revoked_at = now() WHERE name = $1",
                                 "old platform")
        assert (await client.post("/v1/calls", content=body, headers=auth)).status_code == 401
        assert (await client.get("/healthz")).json() == {"ok": True}


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(
    st.binary(max_size=2048),
    st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                 lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                     st.text(max_size=8), inner, max_size=4), max_leaves=20).map(
        lambda v: json.dumps(v).encode())))
async def test_garbage_gets_a_4xx_never_a_5xx(http: httpx.AsyncClient, body: bytes) -> None:
    for path in ("/v1/calls", "/v1/video/detections", "/v1/cap", "/v1/eido"):
        answer = await http.post(path, content=body)
        assert answer.status_code in (202, 400, 413), (path, answer.status_code, answer.text)
        if answer.status_code != 202:
            assert answer.json()["error"]
