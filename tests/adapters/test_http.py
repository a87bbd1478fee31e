"""The HTTP ingress on a real uvicorn, with a real HTTP client, through to incidents."""

from __future__ import annotations

import asyncio
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
from command.store import Store
from command.subjects import Namespace
from ecc.app import Service, ServiceConfig
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
    await store.create_token(value, name="119 platform", role="adapter", agency=None,
                             kinds=("hotline", "video", "cap", "eido"))
    return value


@pytest.fixture
async def http(svc: Service, platform: str) -> AsyncIterator[httpx.AsyncClient]:
    assert svc.ingress is not None
    async with httpx.AsyncClient(base_url=svc.ingress.url, timeout=10,
                                 headers={"Authorization": f"Bearer {platform}",
                                          "Content-Type": "application/json"}) as client:
        yield client


XML = {"Content-Type": "application/cap+xml"}


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
    bad_cap = await http.post("/v1/cap", content=b"<!DOCTYPE x [<!ENTITY a 'b'>]><alert/>",
                              headers=XML)
    assert bad_cap.status_code == 400 and "unsafe XML" in bad_cap.json()["error"]


async def test_cap_over_http_says_what_was_understood(http: httpx.AsyncClient,
                                                      store: Store) -> None:
    here = far_apart()
    answer = await http.post("/v1/cap", content=cap("H-1", "Alert", 0, here.lat, here.lon),
                             headers={"Content-Type": "text/xml; charset=utf-8"})
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
                "Authorization": f"Bearer {platform}", **XML}) as client:
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
    async with httpx.AsyncClient(base_url=svc.ingress.url, timeout=10,
                                 headers={"Content-Type": "application/json"}) as client:
        none = await client.post("/v1/calls", content=body)
        assert none.status_code == 401 and "ecc token create" in none.json()["error"]
        wrong = await client.post("/v1/calls", content=body,
                                  headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        dispatcher = await client.post("/v1/calls", content=body,
                                       headers={"Authorization": f"Bearer {token}"})
        assert dispatcher.status_code == 403 and "adapter" in dispatcher.json()["error"]
        value = f"adapter-{uuid.uuid4().hex}"
        await store.create_token(value, name="old platform", role="adapter", agency=None,
                                 kinds=("hotline",))
        auth = {"Authorization": f"Bearer {value}"}
        assert (await client.post("/v1/calls", content=body, headers=auth)).status_code == 202
        await store.pool.execute("UPDATE tokens SET revoked_at = now() WHERE name = $1",
                                 "old platform")
        assert (await client.post("/v1/calls", content=body, headers=auth)).status_code == 401
        assert (await client.get("/healthz")).json() == {"ok": True}


DOORS = {"/v1/calls": "hotline", "/v1/video/detections": "video", "/v1/cap": "cap",
         "/v1/eido": "eido"}


async def test_an_adapter_token_posts_only_at_its_own_doors_and_admin_at_none(
        svc: Service, store: Store, js: Any, ns: Namespace) -> None:
    """The hotline platform's token posting a CAP alert gets 403 naming what it may send,
    and nothing reaches the broker; an admin's token feeds nothing; both are audited."""
    assert svc.ingress is not None
    hotline, admin = f"adapter-{uuid.uuid4().hex}", f"admin-{uuid.uuid4().hex}"
    await store.create_token(hotline, name="119 platform", role="adapter", agency=None,
                             kinds=("hotline",))
    await store.create_token(admin, name="ops admin", role="admin", agency=None)
    here = far_apart()
    async with httpx.AsyncClient(base_url=svc.ingress.url, timeout=10) as client:
        before = (await js.stream_info(ns.stream("INGRESS"))).state.messages
        alert = await client.post("/v1/cap", content=cap("K-1", "Alert", 0, here.lat, here.lon),
                                  headers={"Authorization": f"Bearer {hotline}", **XML})
        assert alert.status_code == 403, alert.text
        assert "may send hotline, not cap" in alert.json()["error"]
        by_admin = await client.post("/v1/calls", content=call("k1", "fire", 0, 34.0, 113.0),
                                     headers={"Authorization": f"Bearer {admin}",
                                              "Content-Type": "application/json"})
        assert by_admin.status_code == 403 and "--role adapter" in by_admin.json()["error"]
        assert (await js.stream_info(ns.stream("INGRESS"))).state.messages == before
        ok = await client.post("/v1/calls", content=call("k2", "fire", 0, 34.0, 113.0),
                               headers={"Authorization": f"Bearer {hotline}",
                                        "Content-Type": "application/json"})
        assert ok.status_code == 202, ok.text
    rows = await store.pool.fetch("SELECT actor, role, command, outcome, peer, args "
                                  "FROM audit_log ORDER BY id")
    assert [(r["actor"], r["command"], r["outcome"]) for r in rows] == [
        ("119 platform", "ingress.cap", "forbidden"), ("ops admin", "ingress.hotline",
                                                       "forbidden")] or [
        (r["actor"], r["command"]) for r in rows] == [("119 platform", "ingress.cap")]
    assert rows[0]["peer"] == "127.0.0.1" and rows[0]["args"]["status"] == 403


async def test_wrong_content_types_get_415_with_what_to_send(
        http: httpx.AsyncClient, js: Any, ns: Namespace) -> None:
    """text/plain, none at all, or XML at a JSON door (and JSON at the CAP door) get 415
    naming the types taken; a charset parameter and a +json type are fine."""
    body = call("c1", "smoke in the stairwell", 0, 34.0, 113.0)
    before = (await js.stream_info(ns.stream("INGRESS"))).state.messages
    for wrong in ("text/plain", "application/xml", "multipart/form-data; boundary=x", ""):
        answer = await http.post("/v1/calls", content=body, headers={"Content-Type": wrong})
        assert answer.status_code == 415, (wrong, answer.text)
        assert "application/json" in answer.json()["error"]
    cap_as_json = await http.post("/v1/cap", content=b"{}")
    assert cap_as_json.status_code == 415
    assert "application/cap+xml" in cap_as_json.json()["error"]
    assert (await js.stream_info(ns.stream("INGRESS"))).state.messages == before
    fine = await http.post("/v1/calls", content=body,
                           headers={"Content-Type": "Application/JSON; charset=UTF-8"})
    assert fine.status_code == 202, fine.text
    suffixed = await http.post("/v1/calls", content=call("c2", "smoke", 0, 34.0, 113.0),
                               headers={"Content-Type": "application/vnd.platform+json"})
    assert suffixed.status_code == 202, suffixed.text


async def test_refusals_are_logged_counted_and_audited_folded_per_peer(
        svc: Service, store: Store, platform: str) -> None:
    """300 bad tokens from one peer: 300 log lines and a count of 300 in /metrics, but two
    audit rows (the first at once, then "299 more in the last ... s"); a 413 and a 415
    are logged and counted, not audited."""
    from structlog.testing import capture_logs

    from command.refusals import Fold

    assert svc.ingress is not None
    svc.ingress.fold = Fold(3.0)  # a shorter interval, so the test need not wait 10 s
    body = call("f1", "fire", 0, 34.0, 113.0)
    with capture_logs() as logs:
        async with httpx.AsyncClient(base_url=svc.ingress.url,
                                     timeout=httpx.Timeout(10, pool=120)) as client:
            answers = await asyncio.gather(*(client.post(
                "/v1/calls", content=body, headers={"Authorization": f"Bearer bad-{n}",
                                                    "Content-Type": "application/json"})
                for n in range(300)))
            assert {a.status_code for a in answers} == {401}
            assert answers[0].headers["WWW-Authenticate"] == "Bearer"

            async def folded() -> list[Any]:
                rows = await store.pool.fetch("SELECT * FROM audit_log ORDER BY id")
                return rows if sum(r["args"]["refusals"] for r in rows) == 300 else []

            rows = await eventually(folded, timeout=15)
            plain = await client.post("/v1/calls", content=body, headers={
                "Authorization": f"Bearer {platform}", "Content-Type": "text/plain"})
            assert plain.status_code == 415
            metrics = (await client.get("/metrics")).text
    assert {(r["actor"], r["command"], r["outcome"], r["peer"]) for r in rows} == {
        ("(unknown token)", "ingress.hotline", "unauthorized", "127.0.0.1")}
    first = next(r for r in rows if r["args"]["refusals"] == 1)  # written at once
    assert first["reason"].startswith("unknown, revoked or expired token")
    # the 300 arrive within an interval or a few on a loaded machine: a few rows, not 300
    assert len(rows) < 20, [r["reason"] for r in rows]
    rest = next(r for r in rows if r["args"]["refusals"] > 1)
    assert rest["reason"].startswith(f"{rest['args']['refusals']} more in the last 3 s")
    assert await store.pool.fetchval("SELECT count(*) FROM audit_log") == len(rows)
    refused = [e for e in logs if e["event"] == "ingress.refused" and e["status"] == 401]
    assert len(refused) == 300 and refused[0]["peer"] == "127.0.0.1"
    assert refused[0]["door"] == "hotline" and refused[0]["status"] == 401
    assert 'ecc_ingress_refusals_total{door="hotline",status="401"} 300.0' in metrics
    assert 'ecc_ingress_refusals_total{door="hotline",status="415"} 1.0' in metrics
    assert [e["token"] for e in logs if e.get("status") == 415] == ["119 platform"]


async def test_an_expired_token_is_refused_like_a_revoked_one(
        svc: Service, store: Store, platform: str) -> None:
    """Past its end, the platform's token gets 401 saying to ask for a new one."""
    assert svc.ingress is not None
    await store.pool.execute("UPDATE tokens SET expires_at = now() WHERE name = '119 platform'")
    async with httpx.AsyncClient(base_url=svc.ingress.url, timeout=10) as client:
        answer = await client.post("/v1/calls", content=call("e1", "fire", 0, 34.0, 113.0),
                                   headers={"Authorization": f"Bearer {platform}",
                                            "Content-Type": "application/json"})
    assert answer.status_code == 401 and "expired" in answer.json()["error"]


# what HTTP lets a client send in a header value (no surrounding blanks, no controls)
_HEADER = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80).map(
    str.strip)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(
    st.binary(max_size=2048),
    st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                 lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                     st.text(max_size=8), inner, max_size=4), max_leaves=20).map(
        lambda v: json.dumps(v).encode())),
       content_type=st.one_of(st.sampled_from(["application/json", "application/cap+xml",
                                               "text/xml; charset=utf-8", "text/plain"]),
                              _HEADER),
       authorization=st.one_of(st.none(), _HEADER,
                                      _HEADER.map(lambda t: f"Bearer {t}".strip())))
async def test_garbage_gets_a_4xx_never_a_5xx_and_nothing_acknowledged_is_lost(
        http: httpx.AsyncClient, platform: str, js: Any, ns: Namespace, body: bytes,
        content_type: str, authorization: str | None) -> None:
    """Arbitrary bodies, content types and Authorization headers at every door: a 4xx with
    a reason, or a 202 whose record is in the broker byte for byte."""
    for path in DOORS:
        for auth in (authorization, f"Bearer {platform}"):
            headers = {"Content-Type": content_type,
                       "Authorization": auth if auth is not None else ""}
            answer = await http.post(path, content=body, headers=headers)
            assert answer.status_code in (202, 400, 401, 403, 413, 415), (
                path, answer.status_code, answer.text)
            if answer.status_code != 202:
                assert answer.json()["error"]
                continue
            kept = await js.get_msg(ns.stream("INGRESS"), answer.json()["seq"])
            assert kept.data == body and kept.subject == ns.ingress(DOORS[path])


@given(st.one_of(st.none(), st.text(max_size=100)))
def test_any_content_type_is_taken_or_refused_with_what_to_send(value: str | None) -> None:
    """Whatever a client declares: taken only when its media type is one the door takes
    (or of their +json / +xml kin), else a reason naming what to send; never an error."""
    from adapters.http import JSON_TYPES, XML_TYPES, content_refusal

    for accepted, suffix in ((JSON_TYPES, "+json"), (XML_TYPES, "+xml")):
        said = content_refusal(value, accepted)
        media = (value or "").split(";", 1)[0].strip().lower()
        if said is None:
            assert media in accepted or media.endswith(suffix)
        else:
            assert all(a in said for a in accepted)


def test_content_type_cells() -> None:
    """The forms platforms send: parameters and case are fine, a wrong family is not."""
    from adapters.http import JSON_TYPES, XML_TYPES, content_refusal

    assert content_refusal("application/json; charset=utf-8", JSON_TYPES) is None
    assert content_refusal("APPLICATION/CAP+XML", XML_TYPES) is None
    assert content_refusal("text/xml;charset=UTF-8", XML_TYPES) is None
    assert content_refusal("application/json", XML_TYPES) is not None
    assert content_refusal("text/plain", JSON_TYPES) is not None
    assert content_refusal(None, JSON_TYPES) == (
        "the request has no Content-Type; send the record as application/json (a charset "
        "parameter is fine)")
