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

from adapters.area import Area
from adapters.cap_trust import SenderRule, Trust
from adapters.ingest import AdapterConfig
from adapters.sensor import parse_registry
from adapters.video import parse_video_config
from command import natsauth
from command.store import Store
from command.subjects import Namespace
from ecc.app import Service, ServiceConfig
from tests.adapters.test_cap_trust import Signer
from tests.conftest import Servers, running
from tests.helpers import eventually, far_apart

T0 = datetime(2026, 7, 20, 8, 0, tzinfo=UTC)


def mqtt_publish(url: str, messages: list[tuple[str, bytes]]) -> None:
    """Publish as a device does: a real MQTT client, QoS 1, each acknowledged."""
    where = urlparse(url)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"dev-{uuid.uuid4().hex}")
    user, password = natsauth.credentials(url)  # the devices' user (tests/conftest.py)
    if user is not None:
        client.username_pw_set(user, password)
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


FIRE_MET = Signer.make("Fire Service Alerts")
# the fire service must sign; its area: the test city around the far_apart() points
STRICT = AdapterConfig(
    kinds=("cap",), area=Area.from_points([(34.0, 112.8), (36.5, 112.8), (36.5, 115.5),
                                           (34.0, 115.5)]),
    cap_trust=Trust((SenderRule("alerts@fire.example", signature_required=True,
                                anchors=(FIRE_MET.cert,)),)))


async def cap_letters(js: Any, ns: Namespace) -> int:
    info = await js.stream_info(ns.stream("DEADLETTER"), subjects_filter=ns.deadletter("cap"))
    return sum((info.state.subjects or {}).values())


async def letter_with(js: Any, ns: Namespace, code: str) -> Any:
    letter = await dead_letter(js, ns, "cap")
    return letter if letter is not None and letter.headers["Ecc-Reason-Code"] == code else None


@pytest.mark.parametrize("with_adapters", [STRICT], indirect=True)
async def test_signed_alerts_are_trusted_and_a_conflicting_copy_is_dead_lettered(
        with_adapters: Service, ns: Namespace, store: Store, js: Any) -> None:
    """A signed alert raises an incident whose signal carries signed_valid and its signer;
    the same alert again is a repeat (no dead letter), a copy with other content is
    dead-lettered as cap_conflict, an unsigned one as cap_unsigned, a broken signature as
    cap_signature, and one outside the city's area raises nothing."""
    here = far_apart()
    signed = FIRE_MET.sign(cap("SIGNED-1", "Alert", 0, here.lat, here.lon))
    await js.publish(ns.ingress("cap"), signed)
    await js.publish(ns.ingress("cap"), signed)  # a feed sending it twice: a repeat
    found = await eventually(lambda: incidents(store), timeout=15)
    data = await store.pool.fetchval(
        "SELECT data FROM events WHERE type = 'signal.received' AND data->>'source' = 'cap'")
    assert data["details"]["cap"]["signature"] == "signed_valid"
    assert data["details"]["cap"]["signer"] == "CN=Fire Service Alerts"
    assert found[0]["signals"][0]["signal_id"] == data["signal_id"]
    other = FIRE_MET.sign(cap("SIGNED-1", "Alert", 0, here.lat, here.lon).replace(
        b"smoke over the ring road", b"all clear, no smoke"))
    await js.publish(ns.ingress("cap"), other)
    conflict = await eventually(lambda: letter_with(js, ns, "cap_conflict"), timeout=15)
    assert "second copy of CAP alert SIGNED-1" in conflict.headers["Ecc-Reason"]
    assert b"all clear" in conflict.data
    assert await cap_letters(js, ns) == 1  # the repeat was not one
    await js.publish(ns.ingress("cap"), cap("UNSIGNED-1", "Alert", 1, here.lat, here.lon))
    unsigned = await eventually(lambda: letter_with(js, ns, "cap_unsigned"), timeout=15)
    assert "must sign its alerts" in unsigned.headers["Ecc-Reason"]
    broken = signed.replace(b"SIGNED-1", b"SIGNED-2")
    await js.publish(ns.ingress("cap"), broken)
    bad = await eventually(lambda: letter_with(js, ns, "cap_signature"), timeout=15)
    assert "the digest does not match" in bad.headers["Ecc-Reason"]
    far = FIRE_MET.sign(cap("AWAY-1", "Alert", 2, 30.0, 120.0))
    await js.publish(ns.ingress("cap"), far)
    again = FIRE_MET.sign(cap("LATER-1", "Alert", 3, here.lat + 0.3, here.lon))
    await js.publish(ns.ingress("cap"), again)  # behind AWAY-1 in the same consumer

    async def two() -> list[dict[str, Any]]:
        got = await incidents(store)
        return got if len(got) == 2 else []

    both = await eventually(two, timeout=15)
    assert all("AWAY-1" not in json.dumps(i) for i in both)
    rows = await store.pool.fetch(
        "SELECT data FROM events WHERE type = 'signal.received' AND data->>'source' = 'cap'")
    assert len(rows) == 2  # SIGNED-1 and LATER-1: nothing from AWAY-1 or the refused copies


@pytest.mark.parametrize("with_adapters", [AdapterConfig(
    kinds=("cap",), cap_sender="ecc@zhengzhou.example")],
    indirect=True)
async def test_a_public_warning_goes_out_as_valid_cap_and_is_cancelled_with_the_incident(
        with_adapters: Service, ns: Namespace, store: Store, js: Any) -> None:
    """A supervisor's warning on a gas leak is published as CAP 1.2 that the OASIS schema
    (read by xmlschema from the shared data) accepts and our own parser reads back; when
    the incident is cancelled, a CAP Cancel naming the Alert follows."""
    from datetime import datetime as dt

    import xmlschema

    from adapters.cap import alert_key, parse_cap
    from command.engine import Meta
    from tests.helpers import make_signal, publish_signal, shared_data
    from workflows.incident import CancelIncident, IssueWarning

    signal = make_signal(category="gas_leak", summary="smell of gas in the street")
    await publish_signal(js, ns, signal, msg_id=signal.signal_id)
    found = await eventually(lambda: incidents(store))
    incident_id = found[0]["incident_id"]
    engine = with_adapters.engine
    assert engine is not None
    await engine.execute(incident_id, IssueWarning(
        at=dt.now(UTC), by="supervisor 1", headline="Gas leak: keep away from Jingsan Road",
        instruction="Do not use flames or switches; leave the area to the north",
        radius_m=400), Meta(actor="supervisor 1"))
    subject = ns.warning(incident_id)

    async def last() -> Any:
        try:
            return await js.get_last_msg(ns.stream("WARNINGS"), subject)
        except Exception:
            return None

    sent = await eventually(last, timeout=15)
    schema = xmlschema.XMLSchema(str(shared_data("cap", "schema", "cap12.xsd")))
    schema.validate(sent.data.decode())
    alert = parse_cap(sent.data)
    assert (alert.msg_type, alert.sender, alert.status) == ("Alert", "ecc@zhengzhou.example",
                                                            "Actual")
    assert alert.signals[0].location.lat == pytest.approx(signal.location.lat, abs=1e-4)
    assert "Gas leak" in sent.data.decode()
    await engine.execute(incident_id, CancelIncident(at=dt.now(UTC), by="supervisor 1",
                                                     reason="false alarm"),
                         Meta(actor="supervisor 1"))

    async def cancel() -> Any:
        msg = await last()
        return msg if msg is not None and b"<msgType>Cancel" in msg.data else None

    ended = await eventually(cancel, timeout=15)
    schema.validate(ended.data.decode())
    cancelled = parse_cap(ended.data)
    assert cancelled.references[0][1] == alert.identifier
    assert cancelled.retraction is not None
    assert cancelled.retraction.refers_to == (alert_key(alert.sender, alert.identifier),)


CAM = far_apart()


def frigate(kind: str, event_id: str, label: str, score: float, t: float,
            camera: str = "cam-t1", zones: tuple[str, ...] = (),
            stationary: bool = False) -> bytes:
    """A frigate/events message as Frigate 0.14 publishes it (the fields we read)."""
    obj = {"id": event_id, "camera": camera, "label": label, "sub_label": None,
           "score": score, "top_score": score, "false_positive": False, "start_time": t - 5,
           "end_time": t if kind == "end" else None, "frame_time": t,
           "box": [100, 120, 220, 260], "region": [0, 0, 320, 320], "area": 16800,
           "current_zones": list(zones), "entered_zones": list(zones),
           "stationary": stationary, "active": not stationary, "motionless_count": 0,
           "has_snapshot": True, "has_clip": True}
    return json.dumps({"type": kind, "before": obj, "after": obj}).encode()


@pytest.mark.parametrize("with_adapters", [AdapterConfig(
    kinds=("video",), video=parse_video_config({
        "camera": [{"id": "cam-t1", "lat": CAM.lat, "lon": CAM.lon, "address": "Test gate"}]}))],
    indirect=True)
async def test_frigate_over_mqtt_one_tracked_object_is_one_signal(
        with_adapters: Service, mqtt_url: str, ns: Namespace, store: Store, js: Any) -> None:
    """Frigate tracks smoke over forty frames (score rising past the minimum), publishes
    new/update/end over a real MQTT client: one fire incident with one video signal. A
    person walking by raises nothing; an unknown camera's smoke is refused. The same
    object reported by webhook afterwards is still the same one signal."""
    topic = ns.mqtt("frigate").replace(".", "/") + "/events"
    t = datetime.now(UTC).timestamp()
    messages = [(topic, frigate("new", "1700.5-abc", "smoke", 0.55, t))]
    messages += [(topic, frigate("update", "1700.5-abc", "smoke", min(0.99, 0.55 + i / 50),
                                 t + i)) for i in range(1, 40)]
    messages += [(topic, frigate("update", "1701.1-p", "person", 0.9, t + 3)),
                 (topic, frigate("end", "1700.5-abc", "smoke", 0.99, t + 41)),
                 (topic, frigate("new", "9.9-x", "smoke", 0.9, t, camera="cam-unknown")),
                 (topic, b'{"type": "new", "after": 5}')]
    await asyncio.to_thread(mqtt_publish, mqtt_url, messages)
    [incident] = await eventually(lambda: incidents(store), timeout=20)
    assert incident["category"] == "fire"
    assert [s["source"] for s in incident["signals"]] == ["video"]
    assert incident["location"]["lat"] == pytest.approx(CAM.lat)
    async def two_letters() -> bool:  # the broken message and the unknown camera's smoke
        return int((await js.stream_info(ns.stream("DEADLETTER"))).state.messages) == 2

    await eventually(two_letters)
    info = await js.stream_info(ns.stream("DEADLETTER"))
    letters = [await js.get_msg(ns.stream("DEADLETTER"), seq)
               for seq in range(info.state.first_seq, info.state.last_seq + 1)]
    reasons = sorted(m.headers["Ecc-Reason"] for m in letters)
    assert b'{"type": "new", "after": 5}' in [m.data for m in letters]
    assert any("cam-unknown" in r and "[[camera]]" in r for r in reasons), reasons
    webhook = {"platform": "frigate", "camera": "cam-t1", "object_id": "1700.5-abc",
               "label": "smoke", "score": 0.95, "at": datetime.now(UTC).isoformat()}
    await js.publish(ns.ingress("video"), json.dumps(webhook).encode())
    # then a new object on the same door: once it is in, the repeat before it was handled
    await js.publish(ns.ingress("video"), json.dumps(
        {**webhook, "object_id": "later-1", "label": "person_down", "score": 0.9}).encode())

    async def both() -> list[str]:
        rows = await store.pool.fetch("SELECT data->>'signal_id' AS id FROM events "
                                      "WHERE type = 'signal.received' ORDER BY seq")
        return [r["id"] for r in rows] if len(rows) >= 2 else []

    ids = await eventually(both, timeout=15)
    assert len(ids) == 2 and "later-1" in ids[1] and "1700" in ids[0]
