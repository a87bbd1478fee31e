"""Metrics and health on a running service, against real NATS and PostgreSQL."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from prometheus_client.parser import text_string_to_metric_families

from command.bus import ConsumerSpec
from command.city import City
from command.crews import CrewReports
from command.dispatcher import Dispatcher
from command.engine import Engine, Meta
from command.metrics import Metrics, Sampler
from command.model import Retraction, StatusReport
from command.pgroles import PG_SERVICE
from command.runtime import EmbeddedPostgres
from command.settings import load_catalogue
from command.store import Store, migrate
from command.subjects import Namespace
from consoles.client import open_console
from ecc.app import Service, ServiceConfig, register_city
from tests.conftest import Servers, running
from tests.helpers import eventually, make_signal, publish_signal, station
from workflows import incident as inc
from workflows.geo import Location

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Prometheus text to {(sample name, labels): value}."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def get(url: str) -> tuple[int, str, str]:
    """GET without raising on 503: (status, content type, body)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.headers["Content-Type"], r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


async def scrape(service: Service) -> Samples:
    status, ctype, body = await asyncio.to_thread(get, service.console_url + "metrics")
    assert status == 200 and ctype.startswith("text/plain")
    return parse(body)


async def test_signals_are_counted_by_source_and_outcome(
    service: Service, js: Any, ns: Namespace
) -> None:
    """A new incident, an attach, a duplicate, a dead letter and an unmatched retraction
    each show in ecc_signals_total under their source and outcome."""
    first = make_signal()
    await publish_signal(js, ns, first)
    await publish_signal(js, ns, make_signal(location=first.location))  # fuses with it
    await publish_signal(js, ns, first, msg_id="again")  # past JetStream's dedupe: the inbox
    await js.publish(ns.signal("video", "fire"), b"not json")
    gone = Retraction(retraction_id="r-1", source="cap", refers_to=("nothing-here",),
                      reason="test", at=datetime.now(UTC))
    await js.publish(ns.signal("cap", "retraction"), gone.model_dump_json().encode())
    expected = {("hotline", "new_incident"): 1.0, ("hotline", "attached"): 1.0,
                ("hotline", "duplicate"): 1.0, ("video", "dead_lettered"): 1.0,
                ("cap", "retraction_unmatched"): 1.0}

    async def counted() -> bool:
        samples = await scrape(service)
        return all(value(samples, "ecc_signals_total", source=s, outcome=o) == n
                   for (s, o), n in expected.items())

    await eventually(counted)


async def test_incidents_by_state_and_the_outbox_appear(
    service: Service, js: Any, ns: Namespace
) -> None:
    """The sampler reports open incidents by state, an empty outbox and the event head."""
    await publish_signal(js, ns, make_signal(confidence=0.5))

    async def sampled() -> Samples | None:
        samples = await scrape(service)
        # PostgreSQL and NATS are sampled one after the other: wait for both
        reported = value(samples, "ecc_incidents", state="reported")
        lag = value(samples, "ecc_consumer_pending", stream=ns.stream("SIGNALS"),
                    consumer="intake")
        return samples if reported == 1.0 and lag is not None else None

    samples = await eventually(sampled)
    assert value(samples, "ecc_incidents", state="verified") == 0.0  # every open state shown
    assert value(samples, "ecc_outbox_backlog") is not None
    assert (value(samples, "ecc_event_seq") or 0) >= 2  # evidence + report at least


async def test_the_sampler_counts_the_backlog_and_the_consumer_lag(
    store: Store, js: Any, ns: Namespace
) -> None:
    """With nobody relaying or consuming, unpublished outbox rows and unread signals are
    what the gauges say."""
    metrics = Metrics()
    async with store.transaction() as tx:
        for i in range(3):
            await tx.outbox(ns.event("incident", f"i{i}"), f"m{i}", b"{}")
    spec = ConsumerSpec(stream=ns.stream("SIGNALS"), durable="intake", subject=ns.signals)
    await js.pull_subscribe(spec.subject, durable=spec.durable, stream=spec.stream)
    for _ in range(4):
        await publish_signal(js, ns, make_signal())
    await Sampler(metrics, store, js, ns).sample()
    samples = parse(metrics.render()[0].decode())
    assert value(samples, "ecc_outbox_backlog") == 3.0
    assert value(samples, "ecc_consumer_pending", stream=ns.stream("SIGNALS"),
                 consumer="intake") == 4.0
    assert value(samples, "ecc_sample_failures_total", part="postgres") is None


async def test_dispatch_times_are_observed(store: Store, nc: Any, js: Any,
                                           ns: Namespace) -> None:
    """A dispatch round observes its compute time and each offer's wait; a crew's
    acknowledgement observes the time from offer to acceptance."""
    metrics = Metrics()
    engine = Engine(store, load_catalogue())
    await register_city(engine, City(name="one ladder", stations=(
        station("fire-a", "fire", 34.760, 113.620, ("L1", "ladder")),
    )))
    await engine.execute("fire-1", inc.ReportIncident(
        at=datetime.now(UTC), incident_id="fire-1", signal_id="s-1", source="hotline",
        category="fire", location=Location(lat=34.761, lon=113.62), confidence=0.95,
        priority=1), Meta(actor="test"))
    offered = await Dispatcher(engine, nc, ns, metrics=metrics).round()
    [task_key] = [k for k, unit in offered.items() if unit == "L1"]
    report = StatusReport(unit_id="L1", status="acknowledged", task_id=task_key.split("/")[1],
                          at=datetime.now(UTC))
    assert await CrewReports(engine, js, ns, metrics=metrics).apply("m-1", report)
    samples = parse(metrics.render()[0].decode())
    assert value(samples, "ecc_recommend_seconds_count") == 1.0
    assert value(samples, "ecc_task_offer_wait_seconds_count") == float(len(offered))
    assert value(samples, "ecc_dispatch_offers_total") == float(len(offered))
    assert value(samples, "ecc_order_accept_seconds_count") == 1.0
    assert value(samples, "ecc_crew_reports_total", outcome="applied") == 1.0


async def test_console_connections_follow_the_consoles(service: Service, token: str) -> None:
    """ecc_console_connections goes up while a console is connected and down after."""
    assert value(await scrape(service), "ecc_console_connections") == 0.0
    async with open_console(service.console_url, token) as console:
        await asyncio.wait_for(console.receive(), 10)  # welcome: the session is registered
        assert value(await scrape(service), "ecc_console_connections") == 1.0

    async def left() -> bool:
        return value(await scrape(service), "ecc_console_connections") == 0.0

    await eventually(left)


async def test_a_running_service_is_ready_on_both_doors(
    servers: Servers, database_url: str, ns: Namespace, js: Any
) -> None:
    """/readyz answers 200 with every check ok on the gateway and the HTTP ingress, and
    the ingress serves the same metrics."""
    config = ServiceConfig(nats_url=servers.nats_url, database_url=database_url,
                           namespace=ns.prefix, ingress_port=0)
    async with running(Service(config)) as svc:
        report = svc.readiness()
        assert report == {"ready": True, "postgres": "ok", "nats": "ok", "loops": "ok"}
        status, ctype, body = await asyncio.to_thread(get, svc.console_url + "readyz")
        assert (status, ctype) == (200, "application/json") and '"ready": true' in body
        assert svc.ingress is not None
        async with httpx.AsyncClient(base_url=svc.ingress.url) as client:
            ready = await client.get("/readyz")
            assert ready.status_code == 200 and ready.json()["ready"] is True
            scraped = await client.get("/metrics")
            assert scraped.status_code == 200
            samples = parse(scraped.text)
            assert value(samples, "ecc_ready", check="postgres") == 1.0
            assert value(samples, "ecc_timers_fired_total") is not None
    assert svc.readiness() == {"ready": False, "service": "not running"}


async def test_not_ready_while_postgres_is_down(servers: Servers, ns: Namespace,
                                                js: Any) -> None:
    """Stopping PostgreSQL turns /readyz to 503 naming postgres within seconds; starting
    it again brings 200 back, with the service still running."""
    data_dir = Path(tempfile.mkdtemp(prefix="ecc-ready-"))
    data_dir.chmod(0o755)
    pg = EmbeddedPostgres(data_dir)
    await pg.start()
    try:
        owner = await asyncpg.connect(pg.owner_url)  # as `ecc up` does: the owner migrates
        try:
            await migrate(owner, service_role=PG_SERVICE)
        finally:
            await owner.close()
        config = ServiceConfig(nats_url=servers.nats_url, database_url=pg.url,
                               namespace=ns.prefix)
        async with running(Service(config)) as svc:
            readyz = svc.console_url + "readyz"
            assert (await asyncio.to_thread(get, readyz))[0] == 200
            await pg.stop()

            async def down() -> str | None:
                status, _, body = await asyncio.to_thread(get, readyz)
                return body if status == 503 else None

            body = await eventually(down, timeout=5)
            report = svc.readiness()
            assert report["ready"] is False and report["nats"] == "ok"
            assert report["postgres"].startswith("unreachable: ")
            assert "DATABASE_URL" in report["postgres"] and '"postgres": "unreachable' in body
            await pg.start()

            async def up() -> bool:
                return (await asyncio.to_thread(get, readyz))[0] == 200

            await eventually(up, timeout=10)
            assert svc.readiness()["ready"] is True
    finally:
        await pg.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
