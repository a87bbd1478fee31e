"""Signals in, incidents out, on real NATS and PostgreSQL: exactly-once effect and dead letters."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from command.model import MAX_SIGNAL_BYTES, SignalRejected, parse_signal
from command.store import Store
from command.subjects import Namespace
from ecc.app import Service
from tests.conftest import Servers
from tests.helpers import eventually, make_signal, publish_signal
from workflows.geo import Location


async def incident_count(store: Store) -> int:
    return int(await store.pool.fetchval("SELECT count(*) FROM incidents"))


async def stream_messages(js: Any, stream: str) -> int:
    return int((await js.stream_info(stream)).state.messages)


async def test_a_signal_becomes_an_incident_and_an_event_on_EVENTS(
    service: Service, store: Store, js: Any, ns: Namespace
) -> None:
    """A hotline signal is committed as incident.reported and relayed to EVENTS once."""
    sig = make_signal(category="crime", summary="man shouting at bus stop", confidence=0.6)
    await publish_signal(js, ns, sig, msg_id=sig.signal_id)
    await eventually(lambda: incident_count(store))
    [row] = await store.pool.fetch("SELECT incident_id, view FROM incidents")
    assert row["view"]["summary"] == "man shouting at bus stop"
    assert row["view"]["category"] == "crime"
    events = await store.read_stream(f"incident:{row['incident_id']}")
    # below the auto-verify bar: reported, with the verify SLA timer running
    assert [e.type for e in events] == ["incident.reported", "timer.scheduled"]
    assert await store.pool.fetchval("SELECT count(*) FROM timers") == 1
    evidence = await store.read_stream(f"signal:hotline-{sig.signal_id}")
    assert evidence[0].data["signal_id"] == sig.signal_id
    assert evidence[0].seq < events[0].seq  # the cause before its effect
    # relayed: all three events on EVENTS, the outbox empty
    await eventually(lambda: _equals(stream_messages(js, ns.stream("EVENTS")), 3))
    msg = await js.get_last_msg(ns.stream("EVENTS"), ns.event("incident", row["incident_id"]))
    assert msg.headers["Nats-Msg-Id"] == events[-1].event_id
    assert json.loads(msg.data)["seq"] == events[-1].seq
    # the relay deletes after the broker's acks: poll, it may be a moment behind
    await eventually(lambda: _equals(store.pool.fetchval("SELECT count(*) FROM outbox"), 0))


async def _equals(value: Any, expected: Any) -> bool:
    return bool(await value == expected)


async def test_the_same_signal_delivered_twice_raises_one_incident(
    service: Service, store: Store, js: Any, ns: Namespace
) -> None:
    """Re-published with a new message id (past the broker's dedupe), it has no second effect."""
    sig = make_signal()
    await publish_signal(js, ns, sig, msg_id="first")
    await publish_signal(js, ns, sig, msg_id="second")  # JetStream keeps both
    await publish_signal(js, ns, sig)  # and once with no id at all
    await eventually(lambda: _equals(stream_messages(js, ns.stream("SIGNALS")), 3))
    marker = make_signal(summary="marker")
    await publish_signal(js, ns, marker)
    # the consumer handles in order: once the marker is in, the duplicates were seen
    await eventually(lambda: _equals(incident_count(store), 2))
    summaries = sorted(r["s"] for r in await store.pool.fetch(
        "SELECT view->>'summary' AS s FROM incidents"))
    assert summaries == ["marker", "smoke from a shop"]


async def test_a_crash_after_commit_before_ack_has_no_second_effect(
    servers: Servers, database_url: str, store: Store, js: Any, ns: Namespace
) -> None:
    """kill -9 between commit and ack: the broker redelivers, the inbox absorbs it."""
    env = {**os.environ, "NATS_URL": servers.nats_url, "DATABASE_URL": database_url,
           "ECC_NAMESPACE": ns.prefix, "ECC_CONSOLE_PORT": "0",
           "ECC_FAULT_POINT": "intake.after_commit", "ECC_ACK_WAIT": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "ecc.cli", "serve"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        sig = make_signal()
        await publish_signal(js, ns, sig, msg_id=sig.signal_id)
        code = await asyncio.wait_for(asyncio.to_thread(proc.wait), 30)
    finally:
        proc.kill()
    assert code == -9  # it died at the fault point, after its commit
    assert await incident_count(store) == 1
    # a healthy service now gets the redelivery (ack_wait 1 s) and must not add an incident
    env.pop("ECC_FAULT_POINT")
    proc = subprocess.Popen([sys.executable, "-m", "ecc.cli", "serve"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        consumer = ns.stream("SIGNALS")

        async def settled() -> bool:
            info = await js.consumer_info(consumer, "intake")
            # acked now; the first process died before acking, so this is the redelivery
            return bool(info.num_ack_pending == 0 and info.ack_floor.stream_seq == 1)

        await eventually(settled, timeout=30)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert await incident_count(store) == 1


AT_ERQI = Location(lat=34.7466, lon=113.6254)


def _valid(data: bytes) -> bool:
    try:
        parse_signal("hotline", "fire", data)
    except SignalRejected:
        return False
    return True

garbage = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda v: json.dumps(v).encode(), st.dictionaries(st.text(max_size=8),
                                                               st.integers(), max_size=4)),
    st.builds(lambda lat: make_signal(location=AT_ERQI).model_dump_json().replace(
        '"lat":34.7466', f'"lat":{lat}').encode(),
        st.floats(min_value=90.001, max_value=1e6)),
    st.just(b'{"signal_id": "x"' + b" " * (MAX_SIGNAL_BYTES + 10) + b"}"),
    st.just(make_signal(category="flood").model_dump_json().encode()),  # wrong subject
)


@settings(max_examples=8, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payloads=st.lists(garbage, min_size=1, max_size=6))
async def test_garbage_goes_to_dead_letter_and_the_consumer_keeps_going(
    service: Service, store: Store, js: Any, ns: Namespace, payloads: list[bytes]
) -> None:
    """Each bad message lands on ecc.deadletter.hotline with its bytes and a reason;
    the valid signal after them still becomes an incident."""
    # Hypothesis now and then builds bytes that are a valid signal after all: those
    # must become incidents, not dead letters. The parser is the judge.
    bad = [data for data in payloads if not _valid(data)]
    # a repeated valid signal is one incident (the inbox), hence the set
    good = {parse_signal("hotline", "fire", data).signal_id for data in payloads if _valid(data)}
    before_dl = await stream_messages(js, ns.stream("DEADLETTER"))
    before_inc = await incident_count(store)
    for data in payloads:
        await js.publish(ns.signal("hotline", "fire"), data)
    await publish_signal(js, ns, make_signal())
    await eventually(lambda: _equals(incident_count(store),
                                     before_inc + 1 + len(good)))
    await eventually(lambda: _equals(stream_messages(js, ns.stream("DEADLETTER")),
                                     before_dl + len(bad)))
    for i, data in enumerate(bad, start=before_dl + 1):
        msg = await js.get_msg(ns.stream("DEADLETTER"), seq=i)
        assert msg.subject == ns.deadletter("hotline")
        assert (msg.data or b"") == data  # nats-py gives None for an empty payload
        assert msg.headers["Ecc-Reason-Code"] in {"invalid", "oversized", "subject_mismatch"}
        assert msg.headers["Ecc-Reason"]
        assert msg.headers["Ecc-Original-Subject"] == ns.signal("hotline", "fire")


async def test_a_signal_on_a_malformed_subject_is_dead_lettered(
    service: Service, store: Store, js: Any, ns: Namespace
) -> None:
    """Extra tokens or capitals in the subject cannot sneak past the subject check."""
    sig = make_signal(category="flood")
    for subject in (f"{ns.prefix}.signal.hotline.fire.extra", f"{ns.prefix}.signal.Hotline.fire"):
        await js.publish(subject, sig.model_dump_json().encode())
    await eventually(lambda: _equals(stream_messages(js, ns.stream("DEADLETTER")), 2))
    first = await js.get_msg(ns.stream("DEADLETTER"), seq=1)
    assert first.headers["Ecc-Reason-Code"] == "bad_subject"
    assert first.subject == ns.deadletter("unknown")
    assert await incident_count(store) == 0


async def test_a_batch_commits_together_and_skips_repeats_within_it(
    store: Store, ns: Namespace
) -> None:
    """One transaction for a batch: a signal repeated inside it raises one incident."""
    from command.intake import SignalIntake
    from command.settings import load_catalogue

    intake = SignalIntake(store, ns, load_catalogue())
    a, b = make_signal(summary="a"), make_signal(summary="b")
    results = await intake.accept([a, a, b])
    assert results[0] is not None and results[1] is None and results[2] is not None
    assert await incident_count(store) == 2
    again = await intake.accept([b])
    assert again == [None]


async def test_callers_details_stay_in_the_store_not_on_the_bus(
    service: Service, store: Store, js: Any, ns: Namespace
) -> None:
    """The evidence in PostgreSQL keeps the caller's name and number; the copy relayed to
    EVENTS (which any NATS client could read) has them withheld."""
    from command.model import Reporter

    sig = make_signal(reporter=Reporter(name="Li Na", phone="+86 137 0000 1111"))
    await publish_signal(js, ns, sig, msg_id=sig.signal_id)
    stream = f"signal:hotline-{sig.signal_id}"
    [kept] = await eventually(lambda: store.read_stream(stream))
    assert kept.data["reporter"] == {"name": "Li Na", "phone": "+86 137 0000 1111"}

    async def relayed() -> Any:
        try:
            return await js.get_last_msg(ns.stream("EVENTS"), ns.event("signal",
                                                                       f"hotline-{sig.signal_id}"))
        except Exception:
            return None

    msg = await eventually(relayed)
    assert json.loads(msg.data)["data"]["reporter"] == {"name": "(withheld)",
                                                        "phone": "(withheld)"}
    assert b"0000 1111" not in msg.data
