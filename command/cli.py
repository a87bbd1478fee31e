# size: the whole CLI until the wiring package takes it (issue 14, part 3)
"""Shell: the ``ecc`` command line.

    ecc up                 the whole system; embedded servers unless NATS_URL and DATABASE_URL
    ecc demo               ecc up, and a simulated city feeding it (sim/; make demo)
    ecc serve              the service alone, against external servers
    ecc migrate            apply database migrations
    ecc nats-url NAME      a component's NATS URL with its credentials (unit-E12, devices…)
    ecc signal send        publish one signal (for trying things out)
    ecc token create       make an access token for a console, a unit or an adapter
    ecc token revoke       revoke a token by name (open consoles are closed)
    ecc token rotate       a new token for a name; the old ones end after a grace period
    ecc console watch      print what a console receives
    ecc unit --id E12      a field unit's terminal: orders in, status and position out
    ecc replay FILE        replay real call records through the hotline adapter
    ecc cap check FILE...  what ECC understands of CAP alerts (non-zero if any refused)
    ecc rebuild            rebuild the projections from the events alone
    ecc catalogue check    validate a catalogue file (types, plans, SLA rules)
    ecc report             response times of a period, beside the SF Fire Department's
    ecc audit export       who did what in a period, from the audit log, as CSV

Where a command needs the servers, it takes ``NATS_URL`` / ``DATABASE_URL``
from the environment, or else the ``endpoints.json`` that ``ecc up`` wrote in
the data folder (``ECC_DATA_DIR``, default ``.ecc``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import signal
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import nats
import structlog
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from pydantic import ValidationError

from adapters.ingest import KINDS, AdapterConfig, config_from_city
from command import bus, logs, natsauth
from command.city import City, CityError
from command.model import Signal, SignalAck
from command.pgroles import PG_OWNER, PG_SERVICE, pg_url
from command.roads import RoadNetwork
from command.runtime import (
    EmbeddedNats,
    EmbeddedPostgres,
    RuntimeStartError,
    pg_users_file,
    port_is_free,
    read_users,
    users_file,
    write_private,
)
from command.service import Service, ServiceConfig
from command.settings import Settings, load_catalogue, load_city, load_city_doc, load_roads
from command.store import MigrationRefused, Store, migrate
from command.subjects import Namespace
from command.tokens import TokenError, default_ttl, parse_duration, parse_kinds
from workflows.catalogue import Catalogue, CatalogueError
from workflows.geo import Location

log = structlog.get_logger("ecc.cli")

# adapter: a hotline platform, camera platform or CAP feed posting to the HTTP ingress
ROLES = ("viewer", "call_taker", "dispatcher", "supervisor", "admin", "field_unit", "adapter")


class CliError(Exception):
    """A problem the person at the terminal can fix; the message says how."""


# --- endpoints ------------------------------------------------------------------


def endpoints_path(settings: Settings) -> Path:
    return settings.data_dir / "endpoints.json"


def write_endpoints(settings: Settings, endpoints: dict[str, Any]) -> Path:
    path = endpoints_path(settings)
    # It holds an access token and the service's database password: its owner's only.
    write_private(path, json.dumps(endpoints, indent=2) + "\n")
    return path


def read_endpoints(settings: Settings) -> dict[str, Any] | None:
    try:
        data = json.loads(endpoints_path(settings).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def server_urls(settings: Settings) -> tuple[str, str]:
    """``(nats_url, database_url)`` from the environment or a running `ecc up`."""
    if settings.external:
        assert settings.nats_url and settings.database_url
        return settings.nats_url, settings.database_url
    _check_half_external(settings)
    found = read_endpoints(settings)
    if found and "nats_url" in found and "database_url" in found:
        return str(found["nats_url"]), str(found["database_url"])
    raise CliError(
        f"no servers: set NATS_URL and DATABASE_URL, or start `ecc up` "
        f"(it writes {endpoints_path(settings)})"
    )


def migration_target(settings: Settings) -> tuple[str, str | None]:
    """``(url, service_role)``: whom migrations run as, and the role they then give the
    service's privileges to. Embedded: the owner role, and the service role. External:
    ``DATABASE_OWNER_URL`` and ``DATABASE_URL``'s user, or without an owner URL
    ``DATABASE_URL`` alone and no grants (one role does everything, as before)."""
    if settings.external:
        assert settings.database_url
        owner = settings.database_owner_url
        if not owner:
            return settings.database_url, None
        try:
            service, owner_role = (urlsplit(settings.database_url).username,
                                   urlsplit(owner).username)
        except ValueError as exc:
            raise CliError(f"DATABASE_URL or DATABASE_OWNER_URL is not a URL: {exc}") from exc
        if not service or service == owner_role:
            raise CliError("DATABASE_OWNER_URL and DATABASE_URL must name two roles: the "
                           "schema's owner and the service's (docs/security.md, PostgreSQL)")
        return owner, service
    _, database_url = server_urls(settings)
    path = pg_users_file(settings.data_dir)
    try:
        password = read_users(path).get(PG_OWNER)
    except RuntimeStartError as exc:
        raise CliError(str(exc)) from exc
    if not password:
        raise CliError(f"no password for {PG_OWNER} in {path}: start `ecc up` once in this "
                       "data folder")
    try:
        where = urlsplit(database_url)
        port = where.port or 0
    except ValueError as exc:
        raise CliError(f"{endpoints_path(settings)}: database_url is not a URL; start "
                       "`ecc up` again") from exc
    return pg_url(PG_OWNER, password, port, where.path.lstrip("/")), PG_SERVICE


async def run_migrations(url: str, service_role: str | None) -> list[str]:
    """Apply pending migrations as ``url``'s role, then the service role's grants."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return await migrate(conn, service_role=service_role)
    except MigrationRefused as exc:
        raise CliError(str(exc)) from exc
    finally:
        await conn.close()


def _check_half_external(settings: Settings) -> None:
    if (settings.nats_url is None) != (settings.database_url is None):
        raise CliError("set both NATS_URL and DATABASE_URL to use external servers, or neither "
                       "to run the embedded ones")


# --- ecc up -----------------------------------------------------------------------


async def _dev_token(store: Store, previous: dict[str, Any] | None) -> str:
    """Reuse the development token from the last run if it still works."""
    if previous and isinstance(previous.get("token"), str):
        if await store.principal(previous["token"]) is not None:
            return str(previous["token"])
    token = secrets.token_urlsafe(24)
    await store.create_token(token, name="development", role="admin", agency=None)
    return token


def _catalogue(settings: Settings) -> Catalogue:
    try:
        return load_catalogue(settings.catalogue_path)
    except CatalogueError as exc:
        raise CliError(f"catalogue: {exc}") from exc
    except OSError as exc:
        raise CliError(f"catalogue: cannot read {settings.catalogue_path}: {exc.strerror}; "
                       "check ECC_CATALOGUE") from exc


def _city(settings: Settings, *, demo: bool) -> City | None:
    if settings.city_path is None and not demo:
        return None
    try:
        return load_city(settings.city_path)
    except CityError as exc:
        raise CliError(f"city: {exc}") from exc
    except OSError as exc:
        raise CliError(f"city: cannot read {settings.city_path}: {exc.strerror}; "
                       "check ECC_CITY") from exc


def _roads(settings: Settings, city: City | None) -> RoadNetwork | None:
    if city is None:
        return None
    try:
        return load_roads(city, settings.city_path)
    except (OSError, ValueError, SyntaxError) as exc:  # XML ParseError is a SyntaxError
        raise CliError(f"road network {city.road_network!r}: {exc}") from exc


def _adapters(settings: Settings, catalogue: Catalogue,
              kinds: tuple[str, ...]) -> AdapterConfig:
    """The adapters' settings from the city file (the demo city's when none is set)."""
    try:
        doc = load_city_doc(settings.city_path)
        return config_from_city(doc, kinds=kinds, sender=settings.cap_sender,
                                catalogue=catalogue,
                                categories=tuple(catalogue.types),
                                origin=str(settings.city_path or "sim/data/zhengzhou.toml"),
                                base=settings.city_path.parent if settings.city_path else None)
    except (OSError, ValueError) as exc:
        raise CliError(f"city file, adapters' sections: {exc}") from exc


async def cmd_up(settings: Settings, args: argparse.Namespace) -> None:
    _check_half_external(settings)
    catalogue = _catalogue(settings)  # before anything starts: a bad plan stops us here
    if getattr(args, "scenario", None) and args.speed != 1:
        from sim.run import scaled

        catalogue = scaled(catalogue, args.speed)  # the SLA clocks keep the city's pace
    city = _city(settings, demo=True)
    adapters = _adapters(settings, catalogue, settings.adapters)  # and a bad device
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
                                    sim=demo)
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
            roads=_roads(settings, city),
            adapters=adapters, ingress_port=ingress_port,
            stream_replicas=settings.stream_replicas,
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
                       opening=True, roads=_roads(settings, city))
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


# --- ecc serve / migrate ----------------------------------------------------------


async def cmd_serve(settings: Settings, args: argparse.Namespace) -> None:
    nats_url, database_url = server_urls(settings)
    city = _city(settings, demo=False)
    catalogue = _catalogue(settings)
    await run_migrations(*migration_target(settings))
    service = Service(ServiceConfig(
        nats_url=nats_url, database_url=database_url, namespace=settings.namespace,
        console_host=settings.console_host, console_port=args.console_port,
        console_origins=settings.console_origins, fault_point=settings.fault_point,
        console_hosts=settings.console_hosts,
        console_max_per_peer=settings.console_max_per_peer,
        ack_wait=settings.ack_wait, catalogue=catalogue,
        city=city, roads=_roads(settings, city),
        adapters=_adapters(settings, catalogue, settings.adapters) if city else None,
        ingress_port=settings.ingress_port, stream_replicas=settings.stream_replicas,
    ))
    await service.run()


async def cmd_adapter(settings: Settings, args: argparse.Namespace) -> None:
    """One adapter as its own process (leave it out of ECC_ADAPTERS for `ecc up`)."""
    from adapters.http import Ingress
    from adapters.ingest import run_adapters

    nats_url, database_url = server_urls(settings)
    user = natsauth.adapter_user(args.kind)
    if not settings.external:  # `ecc up`'s server: this adapter's own user, not the service's
        nats_url = component_url(settings, user)
    config = _adapters(settings, _catalogue(settings), (args.kind,))
    ns = Namespace(settings.namespace)
    nc = await bus.connect(nats_url, name=f"ecc-adapter-{args.kind}",
                           inbox_prefix=natsauth.inbox_prefix(user))
    store: Store | None = None
    try:
        js = nc.jetstream()
        await _await_streams(js, ns, natsauth.adapter_streams(args.kind))
        async with asyncio.TaskGroup() as tg:
            tg.create_task(run_adapters(js, ns, config))
            if args.http_port is not None:
                store = await Store.connect(database_url, ns, min_size=1, max_size=2)
                ingress = Ingress(store, js, ns, host=settings.console_host,
                                  port=args.http_port, cap_trust=config.cap_trust,
                                  area=config.area)
                tg.create_task(ingress.run())
                await ingress.ready.wait()
                print(f"ingress {ingress.url}", flush=True)
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


async def cmd_migrate(settings: Settings, args: argparse.Namespace) -> None:
    applied = await run_migrations(*migration_target(settings))
    print(json.dumps({"applied": applied}))


# --- ecc nats-url ------------------------------------------------------------------


def component_url(settings: Settings, component: str) -> str:
    """A component's URL, with its credentials, on the embedded nats-server of this data
    folder: ``nats://<component>:<password>@host:port``, or ``mqtt://…`` for ``devices``.

    Raises CliError with external servers (ECC did not make their users), before the
    first `ecc up`, and for a component that has no user.
    """
    if settings.external:
        raise CliError("NATS_URL is set: that server's users are in its own configuration, "
                       "not made by ECC (see docs/security.md)")
    path = users_file(settings.data_dir)
    try:
        passwords = read_users(path)
    except RuntimeStartError as exc:
        raise CliError(str(exc)) from exc
    if not passwords:
        raise CliError(f"no NATS users yet ({path}): start `ecc up` once in this data folder")
    if component not in passwords:
        named = [n for n in passwords if natsauth.unit_of_user(n) is None]
        raise CliError(f"no NATS user {component!r}: there are {', '.join(named)} and "
                       f"{len(passwords) - len(named)} unit-<id> users, one for each unit of "
                       "the city file `ecc up` last started with")
    key = "mqtt_url" if component == natsauth.DEVICES else "nats_url"
    found = (read_endpoints(settings) or {}).get(key)
    if not found:
        raise CliError(f"no {key} in {endpoints_path(settings)}: start `ecc up`")
    where = urlsplit(str(found))
    return natsauth.url(where.scheme, component, passwords[component],
                        where.hostname or "127.0.0.1", where.port or 0)


async def cmd_nats_url(settings: Settings, args: argparse.Namespace) -> None:
    print(component_url(settings, args.component))


# --- ecc rebuild / catalogue check ----------------------------------------------


async def cmd_rebuild(settings: Settings, args: argparse.Namespace) -> None:
    from command.projections import rebuild

    _, database_url = server_urls(settings)
    store = await Store.connect(database_url, min_size=1, max_size=1)
    try:
        counts = await rebuild(store)
    finally:
        await store.close()
    print(json.dumps(counts))


async def cmd_catalogue_check(settings: Settings, args: argparse.Namespace) -> None:
    path = Path(args.path) if args.path else settings.catalogue_path
    cat = _catalogue(settings.model_copy(update={"catalogue_path": path}))
    print(json.dumps({"types": len(cat.types), "plans": sum(len(p) for p in cat.plans.values()),
                      "agencies": list(cat.agencies)}))


async def cmd_eido(settings: Settings, args: argparse.Namespace) -> None:
    """`ecc eido export ID`: the incident as a NENA EIDO document (adapters/eido.py)."""
    from adapters.eido_export import export

    agency = args.agency or settings.cap_sender.rpartition("@")[2]
    catalogue = _catalogue(settings)
    _, database_url = server_urls(settings)
    store = await Store.connect(database_url, min_size=1, max_size=1)
    try:
        doc = await export(store, args.incident_id, agency=agency, now=datetime.now(UTC),
                           callers=not args.without_callers, catalogue=catalogue)
    finally:
        await store.close()
    if doc is None:
        raise CliError(f"no incident {args.incident_id}")
    text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    try:
        if args.out:
            Path(args.out).write_text(text, encoding="utf-8")
        else:
            sys.stdout.write(text)
    except OSError as exc:
        raise CliError(f"cannot write {args.out}: {exc.strerror}") from exc


# --- ecc signal send --------------------------------------------------------------


def signal_from_args(args: argparse.Namespace) -> Signal:
    if args.json is not None:
        raw = sys.stdin.read() if args.json == "-" else Path(args.json).read_text()
        return Signal.model_validate_json(raw)
    return Signal(
        signal_id=args.signal_id or f"cli-{uuid.uuid4()}",
        source=args.source,
        category=args.category,
        location=Location(lat=args.lat, lon=args.lon, address=args.address),
        observed_at=datetime.now(UTC),
        summary=args.summary,
        confidence=args.confidence,
    )


async def cmd_signal_send(settings: Settings, args: argparse.Namespace) -> None:
    from pydantic import ValidationError

    try:
        sig = signal_from_args(args)
    except ValidationError as exc:
        raise CliError(f"not a valid signal: {exc}") from exc
    nats_url, _ = server_urls(settings)
    ns = Namespace(settings.namespace)
    nc = await bus.connect(nats_url, name="ecc-cli")
    try:
        ack = await nc.jetstream().publish(
            ns.signal(sig.source, sig.category), sig.model_dump_json().encode(),
            headers={"Nats-Msg-Id": f"{sig.source}:{sig.signal_id}"},
        )
    finally:
        await nc.close()
    print(SignalAck(signal_id=sig.signal_id, stream=ack.stream, seq=ack.seq,
                    duplicate=bool(ack.duplicate)).model_dump_json())


# --- ecc token create -------------------------------------------------------------


async def cmd_token_create(settings: Settings, args: argparse.Namespace) -> None:
    try:
        kinds = parse_kinds(args.kinds, args.role)
        ttl = parse_duration(args.ttl) if args.ttl else default_ttl(args.role)
    except TokenError as exc:
        raise CliError(str(exc)) from exc
    if args.agency is not None:
        agencies = _catalogue(settings).agencies
        if args.agency not in agencies:
            raise CliError(f"--agency {args.agency!r} is not an agency of the catalogue "
                           f"({settings.catalogue_path}); use one of {', '.join(agencies)}, "
                           "or leave --agency out for a city-wide desk")
    _, database_url = server_urls(settings)
    store = await Store.connect(database_url, min_size=1, max_size=1)
    try:
        token = secrets.token_urlsafe(24)
        expires = await store.create_token(token, name=args.name, role=args.role,
                                           agency=args.agency, kinds=kinds, ttl=ttl)
    finally:
        await store.close()
    print(json.dumps({"token": token, "name": args.name, "role": args.role,
                      "agency": args.agency, "kinds": list(kinds) if kinds else None,
                      "expires_at": expires.isoformat()}))


async def cmd_token_rotate(settings: Settings, args: argparse.Namespace) -> None:
    try:
        ttl = parse_duration(args.ttl) if args.ttl else None
        grace = parse_duration(args.grace, what="--grace", allow_zero=True)
        kinds = parse_kinds(args.kinds, "adapter") if args.kinds else None
    except TokenError as exc:
        raise CliError(str(exc)) from exc
    _, database_url = server_urls(settings)
    store = await Store.connect(database_url, min_size=1, max_size=1)
    try:
        token = secrets.token_urlsafe(24)
        rotated = await store.rotate_token(args.name, token, grace=grace, ttl=ttl,
                                           kinds=kinds)
    finally:
        await store.close()
    if rotated is None:
        raise CliError(f"no live token named {args.name!r} to rotate; make one with "
                       "`ecc token create`")
    new, cut = rotated
    if kinds is not None and new.role != "adapter":
        log.warning("cli.token_kinds_ignored", name=args.name, role=new.role)
    print(json.dumps({"token": token, "name": new.name, "role": new.role,
                      "agency": new.agency, "kinds": list(new.kinds) or None,
                      "expires_at": new.expires_at.isoformat() if new.expires_at else None,
                      "old_tokens_end_in_s": int(grace.total_seconds()),
                      "old_tokens": cut}))


async def cmd_token_revoke(settings: Settings, args: argparse.Namespace) -> None:
    _, database_url = server_urls(settings)
    store = await Store.connect(database_url, min_size=1, max_size=1)
    try:
        count = await store.revoke_token(args.name)
    finally:
        await store.close()
    if count == 0:
        raise CliError(f"no live token named {args.name!r}; `ecc token list` is not built "
                       "yet: check the name you gave at `ecc token create`")
    print(json.dumps({"revoked": count, "name": args.name}))


# --- ecc console watch ------------------------------------------------------------


async def cmd_console_watch(settings: Settings, args: argparse.Namespace) -> None:
    from consoles.client import open_console

    found = read_endpoints(settings) or {}
    url = args.url or found.get("console_url")
    token = args.token or os.environ.get("ECC_TOKEN") or found.get("token")
    if not url or not token:
        raise CliError("need --url and --token (or a running `ecc up` in this data folder)")
    seen = 0
    async with open_console(url, token, since=args.since) as console:
        while args.count is None or seen < args.count:
            msg = await asyncio.wait_for(console.receive(), args.timeout)
            print(msg.model_dump_json(), flush=True)
            seen += 1


# --- ecc unit -----------------------------------------------------------------------


def _unit_inbox(nats_url: str, unit_id: str) -> str | None:
    """The unit's own reply inbox when the URL is the unit's user (its grant reads replies
    there only); None for the service's URL."""
    user, _ = natsauth.credentials(nats_url.split(",")[0])
    return natsauth.inbox_prefix(user) if user == natsauth.unit_user(unit_id) else None


async def cmd_unit(settings: Settings, args: argparse.Namespace) -> None:
    from consoles.field import terminal

    # NATS_URL as given (an operator passes the unit's own, from `ecc nats-url unit-E12`),
    # or the service's from endpoints.json on the command host.
    agency = args.agency
    if agency is None:  # the city file says whose unit it is (its orders' subject)
        city = _city(settings, demo=True)
        assert city is not None
        agency = next((s.agency for s in city.stations for u in s.units if u.id == args.id),
                      None)
        if agency is None:
            raise CliError(f"unit {args.id} is not in the city file; give --agency or "
                           "check ECC_CITY")
    nats_url, _ = server_urls(settings)
    nc = await bus.connect(nats_url, name=f"ecc-unit-{args.id}",
                           inbox_prefix=_unit_inbox(nats_url, args.id))
    try:
        await terminal(nc, Namespace(settings.namespace), args.id, agency)
    finally:
        await nc.close()


# --- ecc replay ---------------------------------------------------------------------


async def cmd_replay(settings: Settings, args: argparse.Namespace) -> None:
    from adapters.hotline import read_csv
    from adapters.replay import replay

    try:
        text = Path(args.file).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise CliError(f"cannot read {args.file}: {exc.strerror}") from exc
    nats_url, _ = server_urls(settings)
    nc = await bus.connect(nats_url, name="ecc-replay")
    try:
        stats = await replay(nc.jetstream(), Namespace(settings.namespace), read_csv(text),
                             catalogue=_catalogue(settings), speed=args.speed,
                             limit=args.limit)
    finally:
        await nc.close()
    print(json.dumps({"published": stats.published, "duplicates": stats.duplicates}))


# --- ecc cap check --------------------------------------------------------------------


def _read_bounded(path: Path, limit: int) -> bytes:
    """The file's bytes, never more than ``limit`` + 1 of them in memory: a file over the
    limit (by its size, or by what it yields: a pipe, a growing file) is refused with
    CapRejected before it is read whole."""
    from adapters.cap import CapRejected

    size = path.stat().st_size
    if size > limit:
        raise CapRejected(f"the alert is {size} bytes; the limit is {limit}", "oversized")
    with path.open("rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise CapRejected(f"the alert is over {limit} bytes; the limit is {limit}", "oversized")
    return data


async def cmd_cap_check(settings: Settings, args: argparse.Namespace) -> None:
    from adapters.cap import MAX_ALERT_BYTES, CapRejected, parse_cap, understand

    # the city's area and CAP senders, as `ecc up` would judge the alerts
    config = _adapters(settings, _catalogue(settings), ("cap",))
    refused = 0
    for name in args.files:
        try:
            data = _read_bounded(Path(name), MAX_ALERT_BYTES)
            alert = parse_cap(data, config.cap_trust, config.area)
        except OSError as exc:
            print(f"{name}: cannot read: {exc.strerror}")
            refused += 1
            continue
        except CapRejected as exc:
            print(f"{name}: REFUSED: {exc.reason}")
            refused += 1
            continue
        lines = understand(alert)
        print(f"{name}: {lines[0]}")
        for line in lines[1:]:
            print(line)
    if refused:
        raise CliError(f"{refused} of {len(args.files)} files refused")


# --- ecc report / ecc audit export ------------------------------------------------------


async def cmd_history(settings: Settings, args: argparse.Namespace) -> None:
    """`ecc report` and `ecc audit export`: a period read back (command/history.py)."""
    from command import history

    try:
        start, end = history.period(args.start, args.end)
        _, database_url = server_urls(settings)
        if args.command == "audit":
            text, _ = await history.export_audit(database_url, start, end)
        else:
            text = await history.build_report(database_url, start, end, fmt=args.format,
                                              sf=Path(args.sf) if args.sf else None)
        if args.out:
            Path(args.out).write_text(text, encoding="utf-8")
        else:
            sys.stdout.write(text)
    except history.ReportError as exc:
        raise CliError(str(exc)) from exc
    except OSError as exc:
        raise CliError(f"cannot write {args.out}: {exc.strerror}") from exc


# --- main ---------------------------------------------------------------------------


def _positive(text: str) -> float:
    value = float(text)
    if not (value > 0 and value < 1e6):
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ecc", description="ECC: emergency command and coordination")
    sub = p.add_subparsers(dest="command", required=True)

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
    sub.add_parser("migrate", help="apply database migrations")
    natsurl = sub.add_parser("nats-url", help="print a component's NATS URL with its "
                                              "credentials (the embedded server of `ecc up`)")
    natsurl.add_argument("component", help="ecc, adapter-hotline|cap|sensor|video, "
                                            "unit-<id>, devices (an MQTT URL), sim (demo)")
    adapter = sub.add_parser("adapter", help="run one adapter as its own process")
    adapter.add_argument("kind", choices=KINDS)
    adapter.add_argument("--http-port", type=int, default=None,
                         help="also serve the HTTP ingress on this port (needs the database "
                              "for tokens)")

    sig = sub.add_parser("signal", help="signals").add_subparsers(dest="signal_command",
                                                                  required=True)
    send = sig.add_parser("send", help="publish one signal")
    send.add_argument("--source", default="hotline")
    send.add_argument("--category", default="fire")
    send.add_argument("--lat", type=float, default=34.7466)
    send.add_argument("--lon", type=float, default=113.6254)
    send.add_argument("--address", default=None)
    send.add_argument("--summary", default="")
    send.add_argument("--confidence", type=float, default=0.5)
    send.add_argument("--signal-id", default=None)
    send.add_argument("--json", default=None, help="a Signal as JSON: a file, or - for stdin")

    tok = sub.add_parser("token", help="access tokens").add_subparsers(dest="token_command",
                                                                       required=True)
    create = tok.add_parser("create", help="create a token (printed once)")
    create.add_argument("--role", choices=ROLES, required=True)
    create.add_argument("--name", required=True)
    create.add_argument("--agency", default=None,
                        help="bind the token to an agency of the catalogue (a fire desk)")
    create.add_argument("--kinds", default=None,
                        help="for --role adapter (required): the ingress doors it may post "
                             "to, from hotline,video,cap,eido")
    create.add_argument("--ttl", default=None,
                        help="how long it lives: 8h, 30d, ... (default: 12h for console "
                             "roles, 90d for adapters and field units)")
    rotate = tok.add_parser("rotate", help="a new token for a name (printed once); the old "
                                           "ones of that name end after --grace")
    rotate.add_argument("--name", required=True)
    rotate.add_argument("--ttl", default=None, help="the new token's life (default: the "
                                                    "role's)")
    rotate.add_argument("--grace", default="10m",
                        help="how long the old tokens still work (default 10m; 0s: at once)")
    rotate.add_argument("--kinds", default=None,
                        help="an adapter's new doors (default: the old token's)")
    revoke = tok.add_parser("revoke", help="revoke every token of a name (open consoles "
                                           "using it are closed within seconds)")
    revoke.add_argument("--name", required=True)

    con = sub.add_parser("console", help="console clients").add_subparsers(
        dest="console_command", required=True)
    watch = con.add_parser("watch", help="print what a console receives")
    watch.add_argument("--url", default=None)
    watch.add_argument("--token", default=None)
    watch.add_argument("--since", type=int, default=None)
    watch.add_argument("--count", type=int, default=None)
    watch.add_argument("--timeout", type=float, default=3600.0)
    unit = sub.add_parser("unit", help="a field unit's terminal: orders in, status out")
    unit.add_argument("--id", required=True)
    unit.add_argument("--agency", default=None,
                      help="the unit's agency, for its last order (default: from the city "
                           "file)")
    rep = sub.add_parser("replay", help="replay real call records (Montgomery 911, SF Fire)")
    rep.add_argument("file")
    rep.add_argument("--speed", type=float, default=60.0,
                     help="how many times faster than real time (0: as fast as possible)")
    rep.add_argument("--limit", type=int, default=None)
    capp = sub.add_parser("cap", help="CAP alerts").add_subparsers(dest="cap_command",
                                                                   required=True)
    capcheck = capp.add_parser("check", help="say what ECC understands of CAP files")
    capcheck.add_argument("files", nargs="+")
    eidop = sub.add_parser("eido", help="NENA EIDO: incidents for other agencies' CADs")
    eidop.add_argument("eido_command", choices=("export",))
    eidop.add_argument("incident_id")
    eidop.add_argument("--out", default=None, help="write to this file, not stdout")
    eidop.add_argument("--agency", default=None, help="this centre's agency id (default: the "
                                                      "domain of ECC_CAP_SENDER)")
    eidop.add_argument("--without-callers", action="store_true",
                       help="leave out callers' names and numbers (personal data)")
    sub.add_parser("rebuild", help="rebuild the projections from the events")
    cat = sub.add_parser("catalogue", help="the incident catalogue").add_subparsers(
        dest="catalogue_command", required=True)
    check = cat.add_parser("check", help="validate a catalogue file")
    check.add_argument("path", nargs="?", default=None)
    rpt = sub.add_parser("report", help="response times of a period (NFPA 1710 intervals)")
    audit = sub.add_parser("audit", help="the audit log").add_subparsers(
        dest="audit_command", required=True)
    export = audit.add_parser("export", help="who did what in a period, as CSV")
    for period in (rpt, export):
        period.add_argument("--from", dest="start", required=True,
                            help="ISO 8601 with an offset, e.g. 2026-07-20T00:00+08:00")
        period.add_argument("--to", dest="end", required=True, help="the end (not included)")
        period.add_argument("--out", default=None, help="write to this file, not stdout")
    rpt.add_argument("--format", choices=("table", "csv", "html"), default="table")
    rpt.add_argument("--sf", default=None, help="SF Fire Department CSV, or a folder of "
                                                "them, to report beside ECC's figures")
    return p


_COMMANDS = {
    ("up", None): cmd_up,
    ("serve", None): cmd_serve,
    ("demo", None): cmd_up,
    ("adapter", None): cmd_adapter,
    ("migrate", None): cmd_migrate,
    ("nats-url", None): cmd_nats_url,
    ("signal", "send"): cmd_signal_send,
    ("token", "create"): cmd_token_create,
    ("token", "revoke"): cmd_token_revoke,
    ("token", "rotate"): cmd_token_rotate,
    ("console", "watch"): cmd_console_watch,
    ("rebuild", None): cmd_rebuild,
    ("unit", None): cmd_unit,
    ("replay", None): cmd_replay,
    ("eido", None): cmd_eido,
    ("cap", "check"): cmd_cap_check,
    ("catalogue", "check"): cmd_catalogue_check,
    ("report", None): cmd_history,
    ("audit", "export"): cmd_history,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    sub = (getattr(args, "signal_command", None) or getattr(args, "token_command", None)
           or getattr(args, "console_command", None) or getattr(args, "catalogue_command", None)
           or getattr(args, "cap_command", None) or getattr(args, "audit_command", None))
    try:
        settings = Settings.from_env()
    except (ValidationError, ValueError) as exc:
        print(f"ecc: settings from the environment: {exc}", file=sys.stderr)
        return 2
    if args.command == "demo" and sys.stderr.isatty():
        # the demo on a terminal: its status line there, the service's log in a file
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        path = settings.data_dir / "ecc.log"
        logs.configure(to=path.open("a", buffering=1))
        print(f"ecc demo: the service's log goes to {path}", file=sys.stderr)
    else:
        logs.configure()
    handler = _COMMANDS[(args.command, sub)]

    async def run() -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
        await handler(settings, args)

    try:
        asyncio.run(run())
    except CliError as exc:
        print(f"ecc: {exc}", file=sys.stderr)
        return 2
    except BaseExceptionGroup as group:  # a CliError from inside the running system
        found = group.subgroup(CliError)
        if found is None:
            raise
        for leaf in _leaves(found):
            print(f"ecc: {leaf}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, asyncio.CancelledError):
        log.info("cli.stopped")
        return 0
    except TimeoutError:
        print("ecc: timed out", file=sys.stderr)
        return 1
    return 0


def _leaves(group: BaseExceptionGroup[Any]) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        out += _leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc]
    return out


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
