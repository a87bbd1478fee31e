# size: every NATS permission of every role, tried on the real server
"""NATS security on a real embedded nats-server: one user per component, each held to its
grant by the server itself (command/natsauth.py, command/runtime.py; docs/security.md)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
import pytest
from hypothesis import given
from hypothesis import strategies as st
from nats.aio.client import Client as NATS
from nats.js.errors import NotFoundError

from adapters.ingest import (
    KINDS,
    SPECS,
    CapAdapter,
    CapOutAdapter,
    EidoAdapter,
    HotlineAdapter,
    Publisher,
    SensorAdapter,
    VideoAdapter,
    config_from_city,
)
from command import bus, natsauth
from command.bus import ConsumerSpec
from command.runtime import EmbeddedNats, free_port, nats_server_binary
from command.settings import Settings, load_city_doc
from command.subjects import Namespace
from ecc.cli.endpoints import write_endpoints
from ecc.cli.errors import CliError
from ecc.cli.run import cmd_adapter
from ecc.cli.users import component_url
from sim.run import Mqtt, MqttRefused
from tests.helpers import eventually

ECC = Namespace()


# --- subject matching as nats-server does it, for the pure tests ---------------------


def matches(pattern: str, subject: str) -> bool:
    """Whether a permission ``pattern`` (with ``*`` and ``>``) covers ``subject``."""
    want, have = pattern.split("."), subject.split(".")
    for i, token in enumerate(want):
        if token == ">":
            return len(have) > i
        if i >= len(have) or token not in ("*", have[i]):
            return False
    return len(want) == len(have)


def allowed(grants: tuple[str, ...] | None, subject: str) -> bool:
    return grants is None or any(matches(p, subject) for p in grants)


# --- the server ------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def secured() -> AsyncIterator[EmbeddedNats]:
    """A nats-server of this module's own, namespace ecc, units E1 and E2, and the streams
    (made by the service's user, as `ecc serve` does)."""
    data_dir = Path(tempfile.mkdtemp(prefix="ecc-sec-"))
    srv = EmbeddedNats(data_dir, units=("E1", "E2"), adapters=SPECS)
    await srv.start()
    try:
        nc = await nats.connect(srv.url)
        try:
            await bus.ensure_streams(nc.jetstream(), ECC, adapters=SPECS)
            await bus.ensure_adapter_consumers(nc.jetstream(), ECC, SPECS)
        finally:
            await nc.close()
        yield srv
    finally:
        await srv.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@asynccontextmanager
async def connected(srv: EmbeddedNats, user: str) -> AsyncIterator[tuple[NATS, list[str]]]:
    """A connection as ``user`` (on its own inbox), and the errors the server sends it."""
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc).lower())

    nc = await nats.connect(srv.url_for(user), inbox_prefix=natsauth.inbox_prefix(user),
                            error_cb=on_error, allow_reconnect=False)
    try:
        yield nc, errors
    finally:
        await nc.close()


async def violation(errors: list[str], subject: str) -> None:
    """Wait for the server's permissions violation about ``subject``."""
    async def told() -> bool:
        return any("permissions violation" in e and f'"{subject.lower()}"' in e for e in errors)

    await eventually(told, timeout=5)


async def quiet(exc: Exception) -> None:
    """No traceback on stderr for a connection we expect to be refused."""


async def refused(address: str) -> str:
    with pytest.raises(nats.errors.Error) as caught:
        await nats.connect(address, allow_reconnect=False, max_reconnect_attempts=0,
                           connect_timeout=2, error_cb=quiet)
    return str(caught.value)


async def service(srv: EmbeddedNats) -> NATS:
    return await nats.connect(srv.url, error_cb=quiet)


# --- adapters --------------------------------------------------------------------------


async def test_an_adapter_publishes_its_own_signals_and_no_one_elses(
        secured: EmbeddedNats) -> None:
    """adapter-hotline: a JetStream publish to ecc.signal.hotline.fire is stored; one to
    ecc.signal.sensor.fire reaches the error callback as a permissions violation, gets
    no ack, and is not in the stream."""
    async with connected(secured, "adapter-hotline") as (nc, errors):
        js = nc.jetstream()
        ack = await js.publish("ecc.signal.hotline.fire", b'{"t": "own"}')
        assert ack.stream == "ECC_SIGNALS"
        with pytest.raises(nats.errors.TimeoutError):
            await js.publish("ecc.signal.sensor.fire", b'{"t": "not mine"}', timeout=1)
        await violation(errors, "ecc.signal.sensor.fire")
    svc = await service(secured)
    try:
        with pytest.raises(NotFoundError):
            await svc.jetstream().get_last_msg("ECC_SIGNALS", "ecc.signal.sensor.fire")
    finally:
        await svc.close()


async def test_ecc_adapter_runs_alone_on_its_own_credentials(
        secured: EmbeddedNats, tmp_path: Path) -> None:
    """`ecc adapter hotline` against `ecc up`'s server connects as adapter-hotline (the
    service's URL in endpoints.json has a wrong password here, so nothing else could
    work), reads its durable on ECC_INGRESS, publishes the signal and acks the call."""
    data_dir = secured.dir.parent
    wrong = natsauth.url("nats", "ecc", "wrong", "127.0.0.1", secured.port)
    write_endpoints(Settings(data_dir=data_dir), {
        "nats_url": wrong, "database_url": "postgresql://unused@127.0.0.1:1/none",
        "mqtt_url": secured.mqtt_url})
    settings = Settings(data_dir=data_dir)
    svc = await service(secured)
    js = svc.jetstream()
    seen: asyncio.Queue[Any] = asyncio.Queue()
    sub = await svc.subscribe("ecc.signal.hotline.>", cb=seen.put)
    task = asyncio.create_task(cmd_adapter(settings, argparse.Namespace(
        kind="hotline", http_port=None)))
    try:
        call_id = f"sec-{uuid.uuid4().hex[:8]}"
        record = {"call_id": call_id, "platform": "119", "narrative": "fire in a shop",
                  "received_at": datetime.now(UTC).isoformat(),
                  "location": {"lat": 34.75, "lon": 113.62}}
        ack = await js.publish(ECC.ingress("hotline"), json.dumps(record).encode())

        async def the_signal() -> Any:
            msg = await asyncio.wait_for(seen.get(), 10)
            return json.loads(msg.data).get("signal_id") == f"call-{call_id}"

        await eventually(the_signal, timeout=20)

        async def acked() -> bool:
            info = await js.consumer_info("ECC_INGRESS", "adapter-hotline")
            return info.ack_floor is not None and (info.ack_floor.stream_seq or 0) >= ack.seq

        await eventually(acked, timeout=10)
        assert not task.done()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await sub.unsubscribe()
        await svc.close()


def adapter_specs(ns: Namespace) -> dict[str, list[ConsumerSpec]]:
    """Every consumer each adapter of adapters/ingest.py reads, as it declares it."""
    config = config_from_city(load_city_doc())
    assert config.registry is not None and config.video is not None
    pub = Publisher(None, ns)  # type: ignore[arg-type] # spec() publishes nothing
    return {
        "hotline": [HotlineAdapter(ns, pub, config.catalogue).spec()],
        "cap": [CapAdapter(ns, pub).spec(),
                CapOutAdapter(None, ns, "ecc@localhost", {}).spec()],  # type: ignore[arg-type]
        "sensor": [SensorAdapter(ns, pub, config.registry).spec()],
        "video": VideoAdapter(ns, pub, config.video).specs(),
        "eido": [EidoAdapter(ns, pub, config.catalogue).spec()],
    }


@pytest.mark.parametrize(("ns", "prefix"), [(ECC, "ecc"), (Namespace("t1a2b"), "t1a2b"),
                                            (Namespace("t1a2b"), natsauth.ANY_NAMESPACE)])
def test_each_adapters_grant_covers_the_consumers_it_declares(ns: Namespace,
                                                                prefix: str) -> None:
    """The grants in natsauth.py and the adapters' ConsumerSpecs agree (create, fetch, ack,
    stream info), and each adapter may publish its own source's signals only."""
    for kind, specs in adapter_specs(ns).items():
        g = natsauth.grant(natsauth.adapter_user(kind), prefix, adapters=SPECS)
        for spec in specs:
            create = f"$JS.API.CONSUMER.CREATE.{spec.stream}.{spec.durable}.{spec.subject}"
            assert not allowed(g.publish, create), (kind, create)  # the service makes it
            assert not allowed(g.publish, f"$JS.API.CONSUMER.CREATE.{spec.stream}")
            for subject in (f"$JS.API.CONSUMER.INFO.{spec.stream}.{spec.durable}",
                            f"$JS.API.CONSUMER.MSG.NEXT.{spec.stream}.{spec.durable}",
                            f"$JS.ACK.{spec.stream}.{spec.durable}.1.7.3.1700000000.0",
                            f"$JS.API.STREAM.INFO.{spec.stream}"):
                assert allowed(g.publish, subject), (kind, subject)
        for source in KINDS:
            assert allowed(g.publish, ns.signal(source, "fire")) == (source == kind), source
        assert allowed(g.publish, ns.deadletter(kind))
        assert not allowed(g.publish, ns.dispatch("fire", "E1"))
        assert not allowed(g.publish, ns.event("incident", "i1"))
        assert g.subscribe == (f"_INBOX_adapter-{kind}.>",)


# --- units -----------------------------------------------------------------------------


async def test_a_unit_reports_for_itself_only(secured: EmbeddedNats) -> None:
    """unit-E1 publishes its own status and position (stored, acked); E2's status is a
    permissions violation and is not stored."""
    async with connected(secured, "unit-E1") as (nc, errors):
        js = nc.jetstream()
        assert (await js.publish(ECC.unit_status("E1"), b"{}")).stream == "ECC_UNITS"
        assert (await js.publish(ECC.unit_position("E1"), b"{}")).stream == "ECC_POSITIONS"
        with pytest.raises(nats.errors.TimeoutError):
            await js.publish(ECC.unit_status("E2"), b"{}", timeout=1)
        await violation(errors, ECC.unit_status("E2"))
    svc = await service(secured)
    try:
        with pytest.raises(NotFoundError):
            await svc.jetstream().get_last_msg("ECC_UNITS", ECC.unit_status("E2"))
    finally:
        await svc.close()


async def test_a_unit_follows_its_own_orders_and_cannot_read_another_units(
        secured: EmbeddedNats) -> None:
    """unit-E1's device (consoles/field.py) reads its last order with a direct get and hears
    the next one live; a direct get of E2's orders, a subscription to E2's subject, and
    every consumer create (a push consumer delivering E1's orders onto E2's status
    subject, a filtered one, an unfiltered one) are refused, and no E2 order reaches it."""
    from consoles.field import FieldUnit

    svc = await service(secured)
    sjs = svc.jetstream()
    order = {"type": "order.ended", "order_id": "o1", "unit_id": "E1", "incident_id": "i1",
             "task_id": "t1", "reason": "first", "at": "2026-07-20T08:30:00+00:00"}
    await sjs.publish(ECC.dispatch("fire", "E1"), json.dumps(order).encode())
    await sjs.publish(ECC.dispatch("fire", "E2"), json.dumps({**order, "unit_id": "E2",
                                                              "reason": "for E2"}).encode())
    got: list[bytes] = []

    async def on_message(msg: Any) -> None:
        got.append(msg.data)

    try:
        async with connected(secured, "unit-E1") as (nc, errors):
            unit = FieldUnit(nc, ECC, "E1", agency="fire", catch_up_every=0.2)
            await unit.start()
            try:
                first = await unit.next(timeout=5)  # the last order, read at start
                assert getattr(first, "reason", None) == "first"
                await sjs.publish(ECC.dispatch("fire", "E1"),
                                  json.dumps({**order, "order_id": "o2", "reason": "second"})
                                  .encode())
                second = await unit.next(timeout=5)  # live, and once only
                assert getattr(second, "reason", None) == "second"
                with pytest.raises(asyncio.TimeoutError):
                    await unit.next(timeout=0.6)  # the catch-up reads o2 again: not shown
            finally:
                await unit.stop()

            js = nc.jetstream(timeout=1.0)  # a refused request gets no answer: wait 1 s
            with pytest.raises(nats.errors.TimeoutError):
                await js.get_msg("ECC_DISPATCH", subject=ECC.dispatch("fire", "E2"),
                                 direct=True)
            await violation(errors, f"$JS.API.DIRECT.GET.ECC_DISPATCH.{ECC.dispatch('fire', 'E2')}")
            push = json.dumps({"stream_name": "ECC_DISPATCH", "config": {
                "name": "unit-E1-push", "filter_subject": ECC.dispatch_to("E1"),
                "ack_policy": "none", "deliver_subject": ECC.unit_status("E2")}}).encode()
            for create in (f"$JS.API.CONSUMER.CREATE.ECC_DISPATCH.unit-E1-push."
                           f"{ECC.dispatch_to('E1')}", "$JS.API.CONSUMER.CREATE.ECC_DISPATCH"):
                with pytest.raises(nats.errors.TimeoutError):
                    await nc.request(create, push, timeout=1)
                await violation(errors, create)
            await nc.subscribe(ECC.dispatch_to("E2"), cb=on_message)
            await violation(errors, ECC.dispatch_to("E2"))
            await nc.subscribe("_INBOX.>", cb=on_message)
            await violation(errors, "_INBOX.>")
            await sjs.publish(ECC.dispatch("fire", "E2"), b'{"for": "E2", "n": 2}')
            await nc.flush()
            assert not [m for m in got if b"E2" in m]
        consumers = [c.name for c in await sjs.consumers_info("ECC_DISPATCH")]
        assert "unit-E1-push" not in consumers
    finally:
        await svc.close()


@given(st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_\-]{0,39}\Z"))
def test_unit_ids_map_one_to_one_onto_users_granted_that_unit_only(unit_id: str) -> None:
    """Any unit id the city file accepts becomes the user unit-<id> and back, with an inbox
    that is one subject token, a config entry that is JSON, and a grant for its own
    subjects that no other unit's subject matches."""
    user = natsauth.unit_user(unit_id)
    assert natsauth.unit_of_user(user) == unit_id
    inbox = natsauth.inbox_prefix(user)
    assert not set(inbox) & {".", "*", ">", " "}
    entry = json.loads(natsauth.authorization({user: "pw"}, adapters=SPECS).splitlines()[2])
    assert entry["user"] == user
    g = natsauth.grant(user, adapters=SPECS)
    other = unit_id + "x" if len(unit_id) < 40 else unit_id[:-1]
    last = "$JS.API.DIRECT.GET.ECC_DISPATCH.ecc.dispatch.fire.{}"
    assert not any(p.startswith("$JS.API.CONSUMER.") for p in g.publish or ())
    for mine, to, theirs in ((g.publish, ECC.unit_status(unit_id), ECC.unit_status(other)),
                             (g.publish, ECC.unit_position(unit_id), ECC.unit_position(other)),
                             (g.publish, last.format(unit_id), last.format(other)),
                             (g.subscribe, ECC.dispatch("fire", unit_id),
                              ECC.dispatch("fire", other))):
        assert allowed(mine, to) and not allowed(mine, theirs)
    assert not allowed(g.subscribe, "_INBOX.x.y")
    assert not allowed(g.subscribe, f"{natsauth.inbox_prefix(natsauth.unit_user(other))}.x")


@given(st.text(max_size=45).filter(
    lambda s: not s or len(s) > 40 or bool(set(s) & set(".*> \"\\/\n")) or s[0] in "_-"))
def test_unit_ids_that_cannot_be_one_subject_token_are_refused(unit_id: str) -> None:
    """An id with a dot, a wildcard, a quote or a space (or empty, or too long) would change
    what a grant means, or break the config file: refused before any config is written."""
    with pytest.raises(ValueError):
        natsauth.unit_user(unit_id)
    with pytest.raises(ValueError):
        EmbeddedNats(Path("/nonexistent"), units=(unit_id,), adapters=SPECS)


def test_a_namespace_that_is_not_one_token_is_refused() -> None:
    """ECC_NAMESPACE with a trailing newline (which a `$` regex lets through) or a dot never
    becomes a grant; `*` is the test servers' any-namespace grant."""
    for bad in ("ecc\n", "a.b", "ECC", ""):
        with pytest.raises(ValueError):
            natsauth.grant("ecc", bad, adapters=SPECS)
    assert natsauth.grant("devices", natsauth.ANY_NAMESPACE, adapters=SPECS).publish == (
        "sensors.>", "*.sensors.>", "frigate.>", "*.frigate.>")


# --- connections -----------------------------------------------------------------------


async def test_only_known_users_connect(secured: EmbeddedNats) -> None:
    """No user, a wrong password, or the MQTT-only devices user over NATS: refused."""
    port = secured.port
    assert "Authorization Violation" in await refused(f"nats://127.0.0.1:{port}")
    assert "Authorization Violation" in await refused(
        natsauth.url("nats", "ecc", "not-the-password", "127.0.0.1", port))
    assert "Authorization Violation" in await refused(secured.url_for(natsauth.DEVICES))


async def test_devices_publish_over_mqtt_with_their_credentials_only(
        secured: EmbeddedNats) -> None:
    """The devices' credentials in an mqtt:// URL (what sim/run.py's client parses) let a
    device publish sensors/x/y, stored on ECC_MQTT; a topic outside sensors/# and frigate/#
    is dropped; no credentials, or a wrong password, and the broker refuses the client."""
    device = await asyncio.to_thread(Mqtt, secured.mqtt_url_for(natsauth.DEVICES), "")
    try:
        device.publish("ecc/signal/video/fire", b"{}")  # not a device's topic: dropped
        device.publish("sensors/x/y", b"12")
        svc = await service(secured)
        try:
            js = svc.jetstream()

            async def stored() -> Any:
                with contextlib.suppress(NotFoundError):
                    return await js.get_last_msg("ECC_MQTT", "sensors.x.y")
                return None

            assert (await eventually(stored, timeout=10)).data == b"12"
            with pytest.raises(NotFoundError):  # published before, on the same connection
                await js.get_last_msg("ECC_SIGNALS", "ecc.signal.video.fire")
        finally:
            await svc.close()
    finally:
        await asyncio.to_thread(device.close)
    for address in (secured.mqtt_url,
                    natsauth.url("mqtt", "devices", "wrong", "127.0.0.1", secured.mqtt_port)):
        with pytest.raises(MqttRefused):
            await asyncio.to_thread(Mqtt, address, "", 5.0)


async def test_max_payload_fits_the_largest_cap_alert(secured: EmbeddedNats) -> None:
    """The server announces 5 MiB (a whole 4 MiB CAP alert and its dead letter's
    headers); a bigger message is refused before it is sent."""
    from adapters.cap import MAX_ALERT_BYTES
    from command.bus import MAX_MSG_BYTES

    svc = await service(secured)
    try:
        assert svc.max_payload == MAX_MSG_BYTES == 5 * 1024 * 1024 > MAX_ALERT_BYTES
        with pytest.raises(nats.errors.MaxPayloadError):
            await svc.publish("ecc.ingress.hotline", b"x" * (MAX_MSG_BYTES + 1))
    finally:
        await svc.close()


# --- credentials on disk ---------------------------------------------------------------


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="ecc-sec-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def test_credentials_survive_a_restart_and_leave_with_their_unit(data_dir: Path) -> None:
    """users.json and the config are 0600; a second start on the same folder keeps every
    password (the old URLs still connect); a unit taken out of the city loses its user,
    a new one gets its own."""
    first = EmbeddedNats(data_dir, units=("E1", "E2"), adapters=SPECS)
    await first.start()
    try:
        before = json.loads(first.users_file.read_text())["users"]
        assert set(before) == {"ecc", "adapter-hotline", "adapter-cap", "adapter-sensor",
                               "adapter-video", "adapter-eido", "devices", "unit-E1",
                               "unit-E2"}
        for path in (first.users_file, first.dir / "nats-server.conf"):
            assert path.stat().st_mode & 0o777 == 0o600, path
        assert before["ecc"] not in (first.dir / "nats-server.log").read_text()
    finally:
        await first.stop()
    again = EmbeddedNats(data_dir, units=("E1", "E3"), adapters=SPECS)
    await again.start()
    try:
        after = json.loads(again.users_file.read_text())["users"]
        assert {k: after[k] for k in before if k != "unit-E2"} == \
            {k: v for k, v in before.items() if k != "unit-E2"}
        assert "unit-E2" not in after and after["unit-E3"] not in before.values()
        nc = await nats.connect(natsauth.url("nats", "unit-E1", before["unit-E1"],
                                             "127.0.0.1", again.port), error_cb=quiet)
        await nc.close()
        assert "Authorization Violation" in await refused(
            natsauth.url("nats", "unit-E2", before["unit-E2"], "127.0.0.1", again.port))
    finally:
        await again.stop()


def test_ecc_nats_url_prints_a_components_url(secured: EmbeddedNats) -> None:
    """`ecc nats-url` gives the URL the runtime would (MQTT for devices) from users.json and
    endpoints.json; an unknown component, or no `ecc up` yet, is exit status 2."""
    settings = Settings(data_dir=secured.dir.parent)
    write_endpoints(settings, {"nats_url": secured.url, "mqtt_url": secured.mqtt_url,
                                   "database_url": "postgresql://unused@127.0.0.1:1/none"})
    assert component_url(settings, "unit-E1") == secured.url_for("unit-E1")
    assert component_url(settings, "devices") == secured.mqtt_url_for("devices")
    with pytest.raises(CliError, match="start `ecc up` once"):
        component_url(Settings(data_dir=secured.dir.parent / "never"), "ecc")
    with pytest.raises(CliError, match="users are in its own configuration"):
        component_url(Settings(data_dir=secured.dir.parent, nats_url=secured.url,
                                   database_url="postgresql://x@127.0.0.1:1/x"), "ecc")
    env = {k: v for k, v in os.environ.items() if k not in ("NATS_URL", "DATABASE_URL")}
    env["ECC_DATA_DIR"] = str(secured.dir.parent)
    for component, code, out_, err in (
            ("adapter-sensor", 0, secured.url_for("adapter-sensor"), ""),
            ("unit-E9", 2, "", "no NATS user 'unit-E9': there are ecc, adapter-hotline")):
        done = subprocess.run([sys.executable, "-m", "ecc.cli", "nats-url", component],
                              env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == code and done.stdout.strip() == out_, done.stderr
        assert err in done.stderr


# --- TLS (the external server's setup in docs/security.md) ------------------------------


def self_signed(where: Path) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1 and its key."""
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


async def test_tls_as_docs_security_md_sets_it_up(data_dir: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A nats-server with the tls blocks of docs/security.md: bus.connect takes a tls://
    URL with a user and checks the certificate against SSL_CERT_FILE, a client that does
    not trust it is refused, and a device publishes over mqtts:// with its credentials."""
    if shutil.which("openssl") is None:
        pytest.skip("no openssl to make a certificate")
    cert, key = self_signed(data_dir)
    port, mqtt_port = free_port(), free_port()
    passwords = {"ecc": uuid.uuid4().hex, "devices": uuid.uuid4().hex}
    tls = f'tls {{ cert_file: "{cert}", key_file: "{key}" }}'
    conf = data_dir / "nats.conf"
    conf.write_text("\n".join([
        'server_name: "tls-test"', f"listen: 127.0.0.1:{port}", "max_payload: 1MB",
        f'jetstream {{ store_dir: "{data_dir / "js"}" }}', tls,
        f"mqtt {{ listen: 127.0.0.1:{mqtt_port}", f"  {tls}", "}",
        natsauth.authorization(passwords, adapters=SPECS), ""]))
    proc = subprocess.Popen([nats_server_binary(), "-c", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    address = natsauth.url("tls", "ecc", passwords["ecc"], "127.0.0.1", port)
    try:
        async def up() -> Any:
            with contextlib.suppress(Exception):
                return await nats.connect(address, allow_reconnect=False, connect_timeout=1,
                                          max_reconnect_attempts=0, error_cb=quiet)
            return None

        await (await eventually(up, timeout=20)).close()
        nc = await bus.connect(address, name="tls-test")
        try:
            await nc.jetstream().add_stream(name="TLS_MQTT", subjects=["sensors.>"])
            device = await asyncio.to_thread(
                Mqtt, natsauth.url("mqtts", "devices", passwords["devices"], "127.0.0.1",
                                   mqtt_port), "")
            try:
                device.publish("sensors/tls/ok", b"1")

                async def stored() -> Any:
                    with contextlib.suppress(NotFoundError):
                        return await nc.jetstream().get_last_msg("TLS_MQTT", "sensors.tls.ok")
                    return None

                assert (await eventually(stored, timeout=10)).data == b"1"
            finally:
                await asyncio.to_thread(device.close)
        finally:
            await nc.close()
        (data_dir / "other").mkdir()
        stranger, _ = self_signed(data_dir / "other")  # trusts another certificate only
        with pytest.raises(ssl.SSLCertVerificationError):
            await nats.connect(address, tls=ssl.create_default_context(cafile=str(stranger)),
                               allow_reconnect=False, max_reconnect_attempts=0,
                               connect_timeout=2, error_cb=quiet)
    finally:
        proc.terminate()
        await asyncio.to_thread(proc.wait, 15)


def test_a_cluster_url_is_logged_with_every_password_masked() -> None:
    """NATS_URL may list a cluster's nodes; none of their passwords reaches a log."""
    shown = natsauth.redact("nats://ecc:s3cret1@n1:4222,nats://ecc:s3cret2@n2:4222,"
                            "nats://n3:4222")
    assert "s3cret" not in shown
    assert shown == "nats://ecc:***@n1:4222,nats://ecc:***@n2:4222,nats://n3:4222"
