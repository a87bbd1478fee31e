"""Shell: the commands that run the system. ``ecc up`` (embedded servers unless
``NATS_URL`` and ``DATABASE_URL``), ``ecc demo`` (ecc up and a simulated city
feeding it), ``ecc serve`` (the service alone, against external servers) and
``ecc adapter KIND`` (one adapter as its own process)."""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import nats
import structlog
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from adapters.ingest import KINDS, SPECS
from command import bus, natsauth
from command.city import City
from command.pgroles import PG_SERVICE
from command.runtime import EmbeddedNats, EmbeddedPostgres, port_is_free
from command.settings import Settings, load_city_doc
from command.specs import by_kind
from command.store import Store
from command.subjects import Namespace
from ecc.app import Service, ServiceConfig
from ecc.cli import files
from ecc.cli.database import migration_target, run_migrations
from ecc.cli.endpoints import check_half_external, read_endpoints, server_urls, write_endpoints
from ecc.cli.errors import CliError
from ecc.cli.users import component_url
from workflows.catalogue import Catalogue

__all__ = ["COMMANDS", "SimUrls", "add_parsers"]

log = structlog.get_logger("ecc.cli")


async def _dev_token(store: Store, previous: dict[str, Any] | None) -> str:
    """Reuse the development token from the last run if it still works."""
    if previous and isinstance(previous.get("token"), str):
        if await store.principal(previous["token"]) is not None:
            return str(previous["token"])
    token = secrets.token_urlsafe(24)
    await store.create_token(token, name="development", role="admin", agency=None)
    return token



async def cmd_up(settings: Settings, args: argparse.Namespace) -> None:
    check_half_external(settings)
    catalogue = files.catalogue(settings)  # before anything starts: a bad plan stops us here
    if getattr(args, "scenario", None) and args.speed != 1:
        from sim.run import scaled

        catalogue = scaled(catalogue, args.speed)  # the SLA clocks keep the city's pace
    city = files.city(settings, demo=True)
    adapters = files.adapters(settings, catalogue, settings.adapters)  # and a bad device
    demo = bool(getattr(args, "scenario", None))
    nats_srv: EmbeddedNats | None = None
    pg_srv: EmbeddedPostgres | None = None
    mqtt_url: str | None = None
    try:
        if settings.external:
            assert settings.nats_url and settings.database_url
            nats_url, database_url = settings.nats_url, settings.database_url
            mqtt_url = os.environ.get("MQTT_URL") or None  # the external server's listener
            log.info("up.external", nats_url=natsauth.redact(nats_url))
            migration = migration_target(settings)
            sim = SimUrls(nats_url, mqtt_url)  # whatever credentials those URLs carry
        else:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            units = [u.id for s in city.stations for u in s.units] if city else []
            nats_srv = EmbeddedNats(settings.data_dir, units=units, namespace=settings.namespace,
                                    sim=demo, adapters=SPECS)
            pg_srv = EmbeddedPostgres(settings.data_dir)
            await asyncio.gather(nats_srv.start(), pg_srv.start())
            nats_url, database_url, mqtt_url = nats_srv.url, pg_srv.url, nats_srv.mqtt_url
            migration = pg_srv.owner_url, PG_SERVICE
            sim = SimUrls(nats_srv.url_for(natsauth.SIM), nats_srv.mqtt_url_for(natsauth.DEVICES),
                          natsauth.inbox_prefix(natsauth.SIM)) if demo else SimUrls(nats_url)

        await run_migrations(*migration)  # as the owner; the service role connects below
        store = await Store.connect(database_url, Namespace(settings.namespace), min_size=1,
                                    max_size=2)
        try:
            token = await _dev_token(store, read_endpoints(settings))
        finally:
            await store.close()

        port = settings.console_port
        if port and not port_is_free(port, settings.console_host):
            log.warning("up.console_port_taken", port=port)
            port = 0
        ingress_port = settings.ingress_port
        if ingress_port and not port_is_free(ingress_port, settings.console_host):
            log.warning("up.ingress_port_taken", port=ingress_port)
            ingress_port = 0
        service = Service(ServiceConfig(
            nats_url=nats_url, database_url=database_url, namespace=settings.namespace,
            console_host=settings.console_host, console_port=port,
            console_origins=settings.console_origins, fault_point=settings.fault_point,
            console_hosts=settings.console_hosts,
            console_max_per_peer=settings.console_max_per_peer,
            ack_wait=settings.ack_wait, catalogue=catalogue, city=city,
            map=files.map_of(settings, city),
            roads=files.roads(settings, city),
            adapters=adapters, ingress_port=ingress_port,
            stream_replicas=settings.stream_replicas,
            console_positions_hz=settings.console_positions_hz,
            track_retention=settings.track_retention,
        ))
        async with asyncio.TaskGroup() as tg:
            tg.create_task(service.run())
            await service.ready.wait()
            endpoints = {
                "nats_url": nats_url,
                "database_url": database_url,
                "mqtt_url": mqtt_url,
                "console_url": service.console_url,
                "ingress_url": service.ingress.url if service.ingress else None,
                "token": token,
                "namespace": settings.namespace,
                "pid": os.getpid(),
            }
            path = write_endpoints(settings, endpoints)
            _announce(endpoints, path)
            if demo:  # ecc demo: the living city
                tg.create_task(_demo(args, settings, endpoints, sim, city, catalogue))
    finally:
        stops = [s.stop() for s in (nats_srv, pg_srv) if s is not None]
        if stops:
            await asyncio.gather(*stops)


@dataclass(frozen=True)
class SimUrls:
    """How `ecc demo`'s simulator connects: as the ``sim`` user over NATS and as the
    ``devices`` user over MQTT on the embedded server (docs/security.md)."""

    nats_url: str
    mqtt_url: str | None = None
    inbox_prefix: str | None = None


async def _demo(args: argparse.Namespace, settings: Settings, endpoints: dict[str, Any],
                sim: SimUrls, city: City | None, catalogue: Catalogue) -> None:
    """The simulator against the system `ecc up` just started, as its users see it."""
    from sim.run import simulate

    assert city is not None
    if not sim.mqtt_url:
        raise CliError("ecc demo publishes sensor readings over MQTT: with external servers "
                       "set MQTT_URL to that nats-server's MQTT listener, with a device's "
                       "user (mqtt://user:password@host:port)")
    store = await Store.connect(endpoints["database_url"], Namespace(settings.namespace),
                                min_size=1, max_size=1)
    try:  # the simulated command-centre desk signs in like any supervisor
        desk_token = secrets.token_urlsafe(24)
        # a program, not a person on a shift: a fresh token each run, for a demo (or a soak
        # run) of up to a week
        await store.create_token(desk_token, name=f"simulated desk {desk_token[:4]}",
                                 role="supervisor", agency=None, ttl=timedelta(days=7))
    finally:
        await store.close()
    doc = load_city_doc(settings.city_path)
    try:
        local = ZoneInfo(str(doc.get("timezone", "UTC")))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise CliError(f"city file: timezone {doc.get('timezone')!r} is not an IANA time "
                       "zone (e.g. Asia/Shanghai)") from exc
    nc = await bus.connect(sim.nats_url, name="ecc-sim", inbox_prefix=sim.inbox_prefix)
    try:
        await simulate(nc=nc, ns=Namespace(settings.namespace), mqtt_url=sim.mqtt_url,
                       console_url=endpoints["console_url"], token=desk_token, city=city,
                       city_doc=doc, scenario=args.scenario, seed=args.seed, speed=args.speed,
                       duration_s=args.hours * 3600, start=datetime.now(local),
                       status=sys.stderr.isatty(), viewer_token=endpoints["token"],
                       opening=True, roads=files.roads(settings, city))
    finally:
        await nc.close()


def _announce(endpoints: dict[str, Any], path: Path) -> None:
    lines = [
        "",
        "ECC is up.",
        f"  console   {endpoints['console_url']}#token={endpoints['token']}",
        f"  token     {endpoints['token']}",
        f"  nats      {natsauth.redact(endpoints['nats_url'])}  (a component's URL: "
        "ecc nats-url NAME)",
        f"  postgres  {natsauth.redact(endpoints['database_url'])}  (the service's role)",
        f"  mqtt      {endpoints['mqtt_url'] or '(external NATS: its own MQTT listener, if any)'}",
        f"  ingress   {endpoints['ingress_url']}  (HTTP: /v1/calls, /v1/video/detections, "
        "/v1/cap)",
        f"  written   {path}",
        "",
        "Try:  .venv/bin/ecc signal send --category fire --lat 34.7466 --lon 113.6254 "
        "--summary 'smoke from a shop'",
        "Stop: Ctrl-C",
        "",
    ]
    print("\n".join(lines), flush=True)




async def cmd_serve(settings: Settings, args: argparse.Namespace) -> None:
    nats_url, database_url = server_urls(settings)
    city = files.city(settings, demo=False)
    catalogue = files.catalogue(settings)
    await run_migrations(*migration_target(settings))
    service = Service(ServiceConfig(
        nats_url=nats_url, database_url=database_url, namespace=settings.namespace,
        console_host=settings.console_host, console_port=args.console_port,
        console_origins=settings.console_origins, fault_point=settings.fault_point,
        console_hosts=settings.console_hosts,
        console_max_per_peer=settings.console_max_per_peer,
        ack_wait=settings.ack_wait, catalogue=catalogue,
        city=city, roads=files.roads(settings, city), map=files.map_of(settings, city),
        adapters=files.adapters(settings, catalogue, settings.adapters) if city else None,
        ingress_port=settings.ingress_port, stream_replicas=settings.stream_replicas,
        console_positions_hz=settings.console_positions_hz,
        track_retention=settings.track_retention,
    ))
    await service.run()


async def cmd_adapter(settings: Settings, args: argparse.Namespace) -> None:
    """One adapter as its own process (leave it out of ECC_ADAPTERS for `ecc up`)."""
    from adapters.cap_poll import CapPoller
    from adapters.http import Ingress, check_cap
    from adapters.ingest import run_adapters

    feeds = getattr(args, "feed", None) or []
    if feeds and args.kind != "cap":
        raise CliError("--feed polls CAP index feeds: use it with `ecc adapter cap`")

    nats_url, database_url = server_urls(settings)
    user = natsauth.adapter_user(args.kind)
    if not settings.external:  # `ecc up`'s server: this adapter's own user, not the service's
        nats_url = component_url(settings, user)
    config = files.adapters(settings, files.catalogue(settings), (args.kind,))
    ns = Namespace(settings.namespace)
    nc = await bus.connect(nats_url, name=f"ecc-adapter-{args.kind}",
                           inbox_prefix=natsauth.inbox_prefix(user))
    store: Store | None = None
    try:
        js = nc.jetstream()
        await _await_streams(js, ns, by_kind(SPECS)[args.kind].streams())
        async with asyncio.TaskGroup() as tg:
            tg.create_task(run_adapters(js, ns, config))
            if args.http_port is not None:
                store = await Store.connect(database_url, ns, min_size=1, max_size=2)
                ingress = Ingress(store, js, ns, host=settings.console_host,
                                  port=args.http_port, cap_trust=config.cap_trust,
                                  area=config.area, gazetteer=config.gazetteer)
                tg.create_task(ingress.run())
                await ingress.ready.wait()
                print(f"ingress {ingress.url}", flush=True)
            trust, area = config.cap_trust, config.area
            for url in feeds:  # each through the door POST /v1/cap uses
                try:
                    poller = CapPoller(js, ns, url, lambda body: check_cap(body, trust, area),
                                       every=args.every)
                except ValueError as exc:
                    raise CliError(str(exc)) from exc
                tg.create_task(poller.run(), name=f"cap-poll-{url[:60]}")
                print(f"polling {url} every {args.every:g} s", flush=True)
    finally:
        if store is not None:
            await store.close()
        await nc.close()


async def _await_streams(js: JetStreamContext, ns: Namespace, names: tuple[str, ...]) -> None:
    """Wait until the service has created these streams: an adapter may not create them."""
    for name in names:
        stream, told = ns.stream(name), False
        while True:
            try:
                await js.stream_info(stream)
                break
            except NotFoundError:
                if not told:
                    log.warning("adapter.waiting_for_stream", stream=stream,
                                hint="start `ecc up` or `ecc serve`: they create the streams")
                    told = True
                await asyncio.sleep(1.0)
            except nats.errors.TimeoutError as exc:  # no answer: refused by our grant
                raise CliError(f"no answer about stream {stream}: does this NATS user have "
                               "its adapter's grant? (docs/security.md)") from exc



def _positive(text: str) -> float:
    value = float(text)
    if not (value > 0 and value < 1e6):
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value



def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sub.add_parser("up", help="start everything (embedded servers unless NATS_URL/DATABASE_URL)")
    demo = sub.add_parser("demo", help="ecc up, and a simulated city feeding it (make demo)")
    demo.add_argument("--scenario", default="normal",
                      choices=("normal", "rainstorm", "pileup", "chemical"))
    demo.add_argument("--speed", type=_positive, default=1.0,
                      help="simulated seconds per real second (10: ten times faster)")
    demo.add_argument("--seed", type=int, default=1,
                      help="the same seed, start hour and --hours give the same emergencies")
    demo.add_argument("--hours", type=_positive, default=24.0, help="simulated hours to play")
    serve = sub.add_parser("serve", help="run the service against external servers")
    serve.add_argument("--console-port", type=int, default=int(os.environ.get(
        "ECC_CONSOLE_PORT", "8780")))
    adapter = sub.add_parser("adapter", help="run one adapter as its own process")
    adapter.add_argument("kind", choices=KINDS)
    adapter.add_argument("--http-port", type=int, default=None,
                         help="also serve the HTTP ingress on this port (needs the database "
                              "for tokens)")
    adapter.add_argument("--feed", action="append", metavar="URL",
                         help="cap only: poll this Atom or RSS index of CAP alerts (e.g. "
                              "https://api.weather.gov/alerts/active.atom); may be repeated")
    adapter.add_argument("--every", type=_positive, default=60.0, metavar="SECONDS",
                         help="seconds between polls of each --feed (default 60; errors back "
                              "off exponentially up to 15 minutes)")


COMMANDS = {
    ("up", None): cmd_up,
    ("demo", None): cmd_up,
    ("serve", None): cmd_serve,
    ("adapter", None): cmd_adapter,
}
