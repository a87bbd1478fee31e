"""The adapters running against real NATS and PostgreSQL: sensors over a real MQTT
client, hotline calls and CAP alerts over NATS, each through the whole service."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
import pytest

from adapters.ingest import AdapterConfig
from adapters.sensor import parse_registry
from command.service import Service, ServiceConfig
from command.store import Store
from command.subjects import Namespace
from tests.conftest import Servers, running
from tests.helpers import eventually, far_apart

T0 = datetime(2026, 7, 20, 8, 0, tzinfo=UTC)


def mqtt_publish(url: str, messages: list[tuple[str, bytes]]) -> None:
    """Publish as a device does: a real MQTT client, QoS 1, each acknowledged."""
    where = urlparse(url)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"dev-{uuid.uuid4().hex}")
    client.connect(where.hostname or "127.0.0.1", where.port or 1883)
    client.loop_start()
    try:
        for topic, payload in messages:
            info = client.publish(topic, payload, qos=1)
            info.wait_for_publish(timeout=10)
            assert info.rc == mqtt.MQTT_ERR_SUCCESS
    finally:
        client.disconnect()
        client.loop_stop()


async def incidents(store: Store) -> list[dict[str, Any]]:
    rows = await store.pool.fetch("SELECT view FROM incidents ORDER BY last_seq")
    return [dict(r["view"]) for r in rows]


async def dead_letter(js: Any, ns: Namespace, source: str) -> Any:
    try:
        return await js.get_last_msg(ns.stream("DEADLETTER"), ns.deadletter(source))
    except Exception:
        return None


@pytest.fixture
async def with_adapters(servers: Servers, database_url: str, ns: Namespace, js: Any,
                        request: pytest.FixtureRequest) -> AsyncIterator[Service]:
    config: AdapterConfig = request.param
    async with running(Service(ServiceConfig(
            nats_url=servers.nats_url, database_url=database_url, namespace=ns.prefix,
            adapters=config))) as svc:
        yield svc


WL = far_apart()
QUIET = far_apart()
REGISTRY = parse_registry({
    "sensor_kind": {
        "water_level": {"metric": "water_level", "unit": "cm", "category": "flood",
                        "alarm_at": 30, "clear_at": 25, "debounce": 2, "heartbeat_s": 3600,
                        "valid_min": -50, "valid_max": 1000},
        "quiet_gauge": {"metric": "water_level", "unit": "cm", "category": "flood",
                        "alarm_at": 30, "clear_at": 25, "heartbeat_s": 1.0},
    },
    "device": [
        {"id": "wl-a", "kind": "water_level", "lat": WL.lat, "lon": WL.lon,
         "address": "Test underpass"},
        {"id": "wl-quiet", "kind": "quiet_gauge", "lat": QUIET.lat, "lon": QUIET.lon},
    ],
})


@pytest.mark.parametrize("with_adapters", [AdapterConfig(
    kinds=("sensor",), registry=REGISTRY, heartbeat_check_s=0.2)], indirect=True)
async def test_mqtt_sensor_readings_flap_sentinels_and_silence(
        with_adapters: Service, mqtt_url: str, ns: Namespace, store: Store, js: Any) -> None:
    """A real MQTT client publishes a water level that crosses 30 cm, flaps around it for
    twenty readings and reports Chicago's -99999.992 sentinel: one flood incident with
    one sensor signal. An unknown device is dead-lettered; a silent one raises a
    maintenance incident, not an emergency."""
    root = ns.mqtt("sensors").replace(".", "/")
    start = datetime.now(UTC) - timedelta(hours=1)  # the device's own clock: times in the past
    values = [10.0, 31.0, 32.0, *([29.0, 31.0] * 10), -99999.992, 33.0]
    messages = [(f"{root}/wl-a/water_level", json.dumps(
        {"value": v, "at": (start + timedelta(minutes=i)).isoformat()}).encode())
        for i, v in enumerate(values)]
    messages.append((f"{root}/wl-nobody/water_level", b"12"))
    await asyncio.to_thread(mqtt_publish, mqtt_url, messages)

    async def settled() -> list[dict[str, Any]]:
        found = await incidents(store)
        return found if {i["category"] for i in found} >= {"flood", "maintenance"} else []

    found = await eventually(settled, timeout=20)
    floods = [i for i in found if i["category"] == "flood"]
    assert len(floods) == 1, floods
    [flood] = floods
    assert [s["source"] for s in flood["signals"]] == ["sensor"]
    assert flood["location"]["lat"] == pytest.approx(WL.lat)
    assert "Test underpass" in flood["summary"] and "32" in flood["summary"]
    [maintenance] = [i for i in found if i["category"] == "maintenance"]
    assert maintenance["priority"] == 4 and "wl-quiet" in maintenance["summary"]
    assert maintenance["location"]["lat"] == pytest.approx(QUIET.lat)
    letter = await eventually(lambda: dead_letter(js, ns, "sensor"))
    assert b"12" == letter.data
    assert "wl-nobody" in letter.headers["Ecc-Reason"]
    assert "[[device]]" in letter.headers["Ecc-Reason"]


def call(call_id: str, narrative: str, minutes: int, lat: float, lon: float) -> bytes:
    return json.dumps({
        "call_id": call_id, "platform": "119", "narrative": narrative,
        "received_at": (T0 + timedelta(minutes=minutes)).isoformat(),
        "location": {"lat": lat, "lon": lon, "accuracy_m": 30},
        "caller": {"name": "Li Wei", "phone": "+86 138 0000 0000"},
    }, ensure_ascii=False).encode()


@pytest.mark.parametrize("with_adapters", [AdapterConfig(kinds=("hotline",))], indirect=True)
async def test_hotline_calls_over_nats_fuse_and_bad_records_are_dead_lettered(
        with_adapters: Service, ns: Namespace, store: Store, js: Any) -> None:
    """Three callers about one fire (Chinese narratives) become one incident of three
    signals with the classifier's rule on each; a record with no location is
    dead-lettered with the field named, and the calls after it still arrive."""
    here = far_apart()
    await js.publish(ns.ingress("hotline"), call("c1", "三楼着火了，有浓烟", 0, here.lat, here.lon))
    await js.publish(ns.ingress("hotline"), b'{"call_id": "c2", "narrative": "fire"}')
    await js.publish(ns.ingress("hotline"), call("c3", "看到冒烟", 2, here.lat + 0.0005,
                                                  here.lon))
    await js.publish(ns.ingress("hotline"), call("c4", "楼里起火", 3, here.lat, here.lon + 0.0005))
    await js.publish(ns.ingress("hotline"), call("c3", "看到冒烟", 2, here.lat, here.lon))  # again

    async def three() -> list[dict[str, Any]]:
        found = await incidents(store)
        return found if found and len(found[0]["signals"]) == 3 else []

    [fire] = await eventually(three, timeout=15)
    assert fire["category"] == "fire"
    assert {s["signal_id"] for s in fire["signals"]} == {"call-c1", "call-c3", "call-c4"}
    details = await store.pool.fetchval(
        "SELECT data FROM events WHERE type = 'signal.received' AND data->>'signal_id' = "
        "'call-c1'")
    assert details["details"]["rule"] == "fire" and details["details"]["matched"] == "着火"
    letter = await eventually(lambda: dead_letter(js, ns, "hotline"))
    assert "received_at" in letter.headers["Ecc-Reason"] and b'"c2"' in letter.data


CAP = """<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>{ident}</identifier><sender>alerts@fire.example</sender>
  <sent>{sent}</sent><status>Actual</status><msgType>{msg_type}</msgType>
  <scope>Public</scope>{refs}
  <info><category>Fire</category><event>Warehouse fire</event><urgency>Immediate</urgency>
    <severity>Severe</severity><certainty>Observed</certainty>
    <headline>Warehouse fire, smoke over the ring road</headline>
    <area><areaDesc>Warehouse district</areaDesc><circle>{lat},{lon} 0.5</circle></area>
  </info>
</alert>"""


def cap(ident: str, msg_type: str, minutes: int, lat: float, lon: float,
        refs: list[str] = ()) -> bytes:  # type: ignore[assignment]
    sent = (T0 + timedelta(minutes=minutes)).isoformat()
    ref_xml = ("<references>" + " ".join(f"alerts@fire.example,{r},{T0.isoformat()}"
                                         for r in refs) + "</references>") if refs else ""
    body = CAP.format(ident=ident, sent=sent, msg_type=msg_type, refs=ref_xml, lat=lat, lon=lon)
    if msg_type == "Cancel":
        body = body.replace("<info>", "<!--").replace("</info>", "-->")
    return body.encode()


@pytest.mark.parametrize("with_adapters", [AdapterConfig(kinds=("cap",))], indirect=True)
async def test_cap_alert_update_and_cancel_drive_one_incident(
        with_adapters: Service, ns: Namespace, store: Store, js: Any) -> None:
    """An Alert raises an incident; its Update, placed 3 km away (beyond any fire radius),
    still joins it because it references the alert; the Cancel of both takes the
    signals back and, with no unit sent, cancels the incident. A Test alert does
    nothing and broken XML is dead-lettered."""
    here = far_apart()
    await js.publish(ns.ingress("cap"), cap("FIRE-1", "Alert", 0, here.lat, here.lon))
    await js.publish(ns.ingress("cap"), b"<alert><unclosed></alert>")
    await js.publish(ns.ingress("cap"), cap("FIRE-1", "Alert", 0, here.lat, here.lon).replace(
        b"<status>Actual", b"<status>Test").replace(b"FIRE-1", b"FIRE-T"))
    await js.publish(ns.ingress("cap"), cap("FIRE-2", "Update", 5, here.lat + 0.027, here.lon,
                                            ["FIRE-1"]))

    async def updated() -> list[dict[str, Any]]:
        found = await incidents(store)
        return found if found and len(found[0]["signals"]) == 2 else []

    [incident] = await eventually(updated, timeout=15)
    assert incident["category"] == "fire" and incident["status"] != "cancelled"
    reason = await store.pool.fetchval(
        "SELECT data->>'reason' FROM events WHERE type = 'incident.signal_attached'")
    assert "updates cap-" in reason
    await js.publish(ns.ingress("cap"), cap("FIRE-3", "Cancel", 30, here.lat, here.lon,
                                            ["FIRE-1", "FIRE-2"]))

    async def cancelled() -> list[dict[str, Any]]:
        found = await incidents(store)
        return found if found and found[0]["status"] == "cancelled" else []

    [done] = await eventually(cancelled, timeout=15)
    assert len(await incidents(store)) == 1  # the Test alert raised nothing
    why = await store.pool.fetchval(
        "SELECT data->>'reason' FROM events WHERE type = 'incident.status_changed' "
        "AND data->>'status' = 'cancelled'")
    assert why is not None and "FIRE-3" in why
    letter = await eventually(lambda: dead_letter(js, ns, "cap"))
    assert "not well-formed" in letter.headers["Ecc-Reason"]
    assert done["incident_id"] == incident["incident_id"]
