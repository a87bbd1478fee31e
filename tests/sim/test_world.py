"""The simulated world: every message in the adapters' own formats, and a ground truth
that a correct ECC (the adapters' cores, then fusion) reproduces."""

from __future__ import annotations

import functools
import itertools
import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sim.world
from adapters import hotline
from adapters.hotline import CallRecord
from adapters.hotline import classify as _classify
from adapters.ingest import config_from_city
from adapters.sensor import Devices, parse_reading, parse_registry, parse_topic
from adapters.video import Tracking, observe, parse_frigate, parse_video_config
from command.fusion import Candidate, choose, distance_m
from command.fusion import rule_for as _rule_for
from command.model import Signal
from command.settings import builtin_catalogue, load_catalogue, load_city_doc
from sim.world import MAX_SPAN_S, SCENARIOS, Emission, Plan, plan

CITY = load_city_doc()
REGISTRY = parse_registry(CITY)
VIDEO = parse_video_config(CITY)
CST = timezone(timedelta(hours=8))
START = datetime(2026, 7, 20, 10, 0, tzinfo=CST)  # a Monday morning in Zhengzhou
HOUR = 3600.0

CAT = builtin_catalogue()


def rule_for(category: str):  # type: ignore[no-untyped-def]
    return _rule_for(category, CAT.fusion)


def classify(text: str):  # type: ignore[no-untyped-def]
    return _classify(text, CAT.hotline)


@functools.cache
def planned(scenario: str, seed: int = 1, duration_s: float = HOUR,
            start: datetime = START) -> Plan:
    return plan(CITY, scenario, seed=seed, duration_s=duration_s, start=start)


@dataclass(frozen=True)
class Heard:
    """A signal an adapter's core made, and the emission it made it from (None: a
    heartbeat check)."""

    emission: Emission | None
    signal: Signal


def replay(p: Plan, start: datetime = START) -> list[Heard]:
    """The plan through the adapters' pure cores in order, as the shells would feed them
    (a sensor's broker time is its emission time; silences checked every 30 s)."""
    devices, tracking = Devices(REGISTRY, started=start), Tracking()
    heard: list[Heard] = []
    checked = 0.0
    for e in p.emissions:
        while checked <= e.at:
            heard += [Heard(None, s) for s in
                      devices.silences(start + timedelta(seconds=checked))]
            checked += 30.0
        now = start + timedelta(seconds=e.at)
        signal: Signal | None
        if e.kind == "sensor":
            device, metric = parse_topic(e.topic.replace("/", "."), "sensors")
            signal, _ = devices.read(device, metric, parse_reading(e.payload, now), now)
        elif e.kind == "frigate":
            tracking, signal, _ = observe(VIDEO, tracking, parse_frigate(e.payload))
        else:
            signal = hotline.to_signal(CallRecord.model_validate_json(e.payload), CAT.hotline)
        if signal is not None:
            heard.append(Heard(e, signal))
    return heard


def where(e: Emission) -> tuple[float, float]:
    """Where the signal an emission may raise is placed."""
    if e.kind == "call":
        loc = CallRecord.model_validate_json(e.payload).location
        return loc.lat, loc.lon
    if e.kind == "sensor":
        device = REGISTRY.devices[e.topic.split("/")[1]]
        return device.lat, device.lon
    camera = VIDEO.cameras[parse_frigate(e.payload).camera]
    return camera.lat, camera.lon


def check_payloads(p: Plan, start: datetime = START) -> None:
    assert [e.at for e in p.emissions] == sorted(e.at for e in p.emissions)
    ids = {m.emergency_id for m in p.emergencies}
    for e in p.emissions:
        assert e.emergency_id is None or e.emergency_id in ids
        if e.kind == "sensor":
            device, metric = parse_topic(e.topic.replace("/", "."), "sensors")
            assert REGISTRY.kind_of(device).metric == metric
            reading = parse_reading(e.payload, start)
            assert reading.at == start + timedelta(seconds=e.at)  # "at" is start + at
        elif e.kind == "frigate":
            assert e.topic == "frigate/events"
            d = parse_frigate(e.payload)
            assert d.camera in VIDEO.cameras
            assert d.at == start + timedelta(seconds=e.at)
        else:
            assert e.topic == "" and e.emergency_id is not None
            record = CallRecord.model_validate_json(e.payload)
            assert record.received_at == start + timedelta(seconds=e.at)


def check_calls_classify(p: Plan) -> None:
    truth = {m.emergency_id: m for m in p.emergencies}
    for e in p.emissions:
        if e.kind == "call":
            narrative = CallRecord.model_validate_json(e.payload).narrative
            assert e.emergency_id is not None
            assert classify(narrative).category == truth[e.emergency_id].category, narrative


def check_reach(p: Plan) -> None:
    """Each emergency's evidence lies within half its fusion radius (so any two of its
    signals fuse) and within its window."""
    truth = {m.emergency_id: m for m in p.emergencies}
    for e in p.emissions:
        if e.emergency_id is None:
            continue
        m = truth[e.emergency_id]
        rule = rule_for(m.category)
        assert distance_m(m.lat, m.lon, *where(e)) <= rule.radius_m / 2, (m, e)
        assert 0 <= e.at - m.at <= min(rule.window_s, MAX_SPAN_S), (m, e)


def check_apart(p: Plan) -> None:
    for i, a in enumerate(p.emergencies):
        for b in p.emergencies[i + 1:]:
            ra, rb = rule_for(a.category), rule_for(b.category)
            if ra.family != rb.family:
                continue
            far = distance_m(a.lat, a.lon, b.lat, b.lon) > max(ra.radius_m, rb.radius_m)
            later = abs(a.at - b.at) > max(ra.window_s, rb.window_s)
            assert far or later, (a, b)


def check_signals(p: Plan, heard: list[Heard]) -> None:
    """Every signal the adapters make belongs, by owner(), to the emergency whose
    emission made it; every real emergency is heard; false alarms at most by one call;
    a sensor raises one alarm per emergency however it flaps; only the dead device
    is ever reported silent."""
    by: dict[str, list[Signal]] = defaultdict(list)
    for h in heard:
        if h.emission is None:
            assert h.signal.category == "maintenance"
            assert h.signal.details["device"] == p.dead_device
            assert p.owner(h.signal.signal_id) is None
            continue
        owner = h.emission.emergency_id
        assert owner is not None, h
        assert p.owner(h.signal.signal_id) == owner, h
        by[owner].append(h.signal)
    for m in p.emergencies:
        signals = by[m.emergency_id]
        if m.false_alarm:
            assert len(signals) <= 1 and all(s.source == "hotline" for s in signals), m
        else:
            assert signals, m
        alarms = Counter(s.details["device"] for s in signals if s.source == "sensor")
        assert set(alarms.values()) <= {1}, (m, alarms)


def check_fusion(p: Plan, heard: list[Heard]) -> None:
    """Fusion's own rules over the signals in order: each emergency is one incident and
    no incident holds two (incidents stay open: the hardest case)."""
    incidents: list[Candidate] = []
    holds: dict[str, set[str | None]] = defaultdict(set)
    for h in heard:
        s = h.signal
        match = choose(s.category, s.location.lat, s.location.lon, s.observed_at, incidents,
                       CAT.fusion)
        if match is None:
            incident = Candidate(f"i{len(incidents)}", s.category, s.location.lat,
                                 s.location.lon, s.observed_at)
            incidents.append(incident)
        else:
            n = next(i for i, c in enumerate(incidents) if c.incident_id == match.incident_id)
            incident = incidents[n]
            incidents[n] = Candidate(incident.incident_id, incident.category, incident.lat,
                                     incident.lon, max(incident.last_signal_at, s.observed_at))
        holds[incident.incident_id].add(p.owner(s.signal_id))
    owners = [o for held in holds.values() for o in held if o is not None]
    for held in holds.values():
        assert len(held) == 1, held
    assert len(owners) == len(set(owners)), Counter(owners).most_common(3)


# --- the tests ---------------------------------------------------------------------------

def test_the_same_inputs_give_the_same_bytes() -> None:
    """Same city, scenario, seed, duration and start: an equal plan, payload for payload;
    another seed, another day."""
    for name in SCENARIOS:
        a = plan(CITY, name, seed=11, duration_s=1800, start=START)
        b = plan(CITY, name, seed=11, duration_s=1800, start=START)
        assert a == b
        assert [e.payload for e in a.emissions] == [e.payload for e in b.emissions]
        assert a != plan(CITY, name, seed=12, duration_s=1800, start=START)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_message_is_what_its_adapter_reads(scenario: str) -> None:
    """Sensor readings, Frigate events and call records all parse at their adapter's
    door, with their times at start + at, in time order."""
    p = planned(scenario)
    check_payloads(p)
    assert {e.kind for e in p.emissions} == {"sensor", "frigate", "call"}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_call_files_under_its_emergencys_category(scenario: str) -> None:
    """The hotline's own rules put each caller's words, Chinese or English, in the
    emergency's category."""
    p = planned(scenario)
    check_calls_classify(p)
    words = [CallRecord.model_validate_json(e.payload).narrative
             for e in p.emissions if e.kind == "call"]
    assert any(w.isascii() for w in words) and any(not w.isascii() for w in words)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_evidence_is_near_its_emergency_and_families_are_apart(scenario: str) -> None:
    """Each emission of an emergency is within its category's fusion reach; emergencies
    of one family are further apart than the radius, or than the window."""
    p = planned(scenario)
    check_reach(p)
    check_apart(p)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_the_adapters_signals_belong_to_their_emergencies(scenario: str) -> None:
    """The adapters' cores run over the plan make signals whose owner() is the
    emergency that caused them, and fusion makes one incident per emergency."""
    p = planned(scenario)
    heard = replay(p)
    check_signals(p, heard)
    check_fusion(p, heard)
    sources = Counter(h.signal.source for h in heard)
    assert sources["hotline"] and sources["video"], sources
    assert sources["sensor"] or scenario in ("normal", "pileup"), sources


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), scenario=st.sampled_from(sorted(SCENARIOS)),
       minutes=st.integers(5, 60), hour=st.integers(0, 23))
def test_any_seed_keeps_the_promises(seed: int, scenario: str, minutes: int,
                                     hour: int) -> None:
    """Whatever the seed, length and hour: parseable messages, classified calls,
    evidence within reach, families apart, and signals owned by their emergencies."""
    start = START.replace(hour=hour)
    p = plan(CITY, scenario, seed=seed, duration_s=minutes * 60.0, start=start)
    check_payloads(p, start)
    check_calls_classify(p)
    check_reach(p)
    check_apart(p)
    heard = replay(p, start)
    check_signals(p, heard)
    check_fusion(p, heard)


def test_every_device_but_the_dead_one_keeps_reporting() -> None:
    """Each device reports at least every half heartbeat from start to end; the dead one
    stops at its time, and the heartbeat check reports it (and only it) once."""
    p = planned("normal", 3, 3 * HOUR)
    assert p.dead_device in REGISTRY.devices and p.dead_at is not None
    times: dict[str, list[float]] = defaultdict(list)
    for e in p.emissions:
        if e.kind == "sensor":
            times[e.topic.split("/")[1]].append(e.at)
    assert set(times) == set(REGISTRY.devices)
    end = 3 * HOUR
    for device, seen in times.items():
        limit = REGISTRY.kind_of(device).heartbeat_s / 2
        stop = p.dead_at if device == p.dead_device else end
        gaps = [b - a for a, b in zip([0.0, *seen], [*seen, stop], strict=True)
                if a <= stop]
        assert max(gaps) <= limit, (device, max(gaps))
        if device == p.dead_device:
            assert max(seen) <= p.dead_at
    silent = [h.signal for h in replay(p) if h.emission is None]
    assert [s.details["device"] for s in silent] == [p.dead_device]


def test_a_sensor_flapping_round_its_threshold_raises_one_alarm() -> None:
    """In each plan a device's readings cross alarm_at back and forth during one
    emergency (never back past clear_at), and the device raises one alarm for it."""
    for scenario in ("normal", "rainstorm", "chemical"):
        p = planned(scenario)
        spells: dict[tuple[str, str], list[float]] = defaultdict(list)
        for e in p.emissions:
            if e.kind == "sensor" and e.emergency_id is not None:
                spells[(e.emergency_id, e.topic.split("/")[1])].append(
                    json.loads(e.payload)["value"])
        alarms = Counter((h.emission.emergency_id, h.signal.details["device"])
                         for h in replay(p) if h.emission and h.signal.source == "sensor")
        flapping = []
        for (emergency, device), values in spells.items():
            kind = REGISTRY.kind_of(device)
            past = [v >= kind.alarm_at for v in values]
            crossings = sum(a != b for a, b in itertools.pairwise(past))
            if crossings >= 4:
                flapping.append((emergency, device))
            assert alarms[(emergency, device)] == 1, (emergency, device, values)
        assert flapping, scenario


def test_noise_false_alarms_and_repeat_callers() -> None:
    """False alarms of both kinds (a lone call; a low-score detection that the video
    adapter does not report) and callers who ring twice, over a few normal hours."""
    lone = camera = repeats = 0
    for seed in range(1, 6):
        p = planned("normal", seed)
        for m in p.emergencies:
            said = [e for e in p.emissions if e.emergency_id == m.emergency_id]
            if m.false_alarm:
                calls = [e for e in said if e.kind == "call"]
                lone += len(calls) == 1 and len(said) == 1
                camera += not calls and all(e.kind == "frigate" for e in said)
            callers = [CallRecord.model_validate_json(e.payload).caller
                       for e in said if e.kind == "call"]
            phones = Counter(c.phone for c in callers if c is not None)
            repeats += sum(n > 1 for n in phones.values())
    assert lone and camera and repeats, (lone, camera, repeats)


def test_a_normal_ten_minutes_holds_a_handful() -> None:
    """By day, ten simulated minutes hold 3 to 8 emergencies on average."""
    counts = [len(planned("normal", seed, 600.0).emergencies) for seed in range(40)]
    assert 3 <= sum(counts) / len(counts) <= 8, counts


def test_the_day_is_busier_than_the_night() -> None:
    """The daily rhythm: late afternoon brings well over twice the emergencies of 4 am."""
    def total(hour: int) -> int:
        return sum(len(planned("normal", seed, HOUR, START.replace(hour=hour)).emergencies)
                   for seed in range(8))
    assert total(17) > 2 * total(4)


def test_a_rainstorm_hour_floods_the_city() -> None:
    """A rainstorm hour has many floods across the districts, a normal hour almost none."""
    storm = [planned("rainstorm", seed) for seed in range(1, 4)]
    calm = [planned("normal", seed) for seed in range(1, 4)]
    floods = [sum(m.category == "flood" for m in p.emergencies) for p in storm]
    usual = sum(m.category == "flood" for p in calm for m in p.emergencies)
    assert min(floods) >= 10 and sum(floods) >= 10 * max(usual, 1), (floods, usual)
    for p in storm:  # the water-level gauges see some of it
        assert any(e.topic.endswith("/water_level") and e.emergency_id for e in p.emissions)


def test_the_set_pieces() -> None:
    """A pile-up: many callers, a camera's collision and stopped vehicles; a chemical
    leak: callers and fence-line monitors, two of them as the plume drifts."""
    p = planned("pileup")
    first = p.emergencies[0]
    assert first.category == "traffic" and first.at <= 60
    heard = [h.signal for h in replay(p) if h.emission and
             h.emission.emergency_id == first.emergency_id]
    assert sum(s.source == "hotline" for s in heard) >= 8
    assert {s.details["rule"] for s in heard if s.source == "video"} >= {"stopped_vehicle"}
    p = planned("chemical")
    leak = next(m for m in p.emergencies if m.category == "hazmat")
    heard = [h.signal for h in replay(p) if h.emission and
             h.emission.emergency_id == leak.emergency_id]
    assert sum(s.source == "hotline" for s in heard) >= 3
    assert len({s.details["device"] for s in heard if s.source == "sensor"}) == 2


def test_the_demo_city_has_the_issues_sensors_and_cameras() -> None:
    """Water, gas, smoke, bridge strain and air-quality devices (a few of each), kinds
    whose categories are the catalogue's, and six cameras."""
    categories = tuple(load_catalogue().types)
    config = config_from_city(CITY, categories=categories)
    assert config.registry is not None and config.video is not None
    kinds = Counter(d.kind for d in config.registry.devices.values())
    assert {k: kinds[k] >= 3 for k in ("water_level", "gas", "smoke", "bridge_strain",
                                       "air_quality")} == dict.fromkeys(
        ("water_level", "gas", "smoke", "bridge_strain", "air_quality"), True)
    assert {config.registry.kinds[k].category for k in ("smoke", "bridge_strain",
                                                        "air_quality")} == {
        "fire", "structural", "hazmat"}
    assert len(config.video.cameras) == 6


def test_bad_inputs_are_refused() -> None:
    """An unknown scenario, a start without a zone, or no time at all: ValueError."""
    with pytest.raises(ValueError, match="unknown scenario"):
        plan(CITY, "earthquake", seed=1, duration_s=600, start=START)
    with pytest.raises(ValueError, match="timezone"):
        plan(CITY, "normal", seed=1, duration_s=600, start=datetime(2026, 7, 20, 10))
    with pytest.raises(ValueError, match="positive"):
        plan(CITY, "normal", seed=1, duration_s=0, start=START)
    with pytest.raises(ValueError, match="no stations"):
        plan({}, "normal", seed=1, duration_s=600, start=START)


def test_public_names_are_pinned() -> None:
    """The simulator's runner is coded against these names."""
    assert sorted(sim.world.__all__) == ["Emergency", "Emission", "Plan", "SCENARIOS",
                                         "Scenario", "plan"]
    assert sorted(SCENARIOS) == ["chemical", "normal", "pileup", "rainstorm"]


def test_owner_knows_only_evidence() -> None:
    """Unknown calls and objects, a device's silence, and an alarm id at a time no
    emergency drove the device: no owner."""
    p = planned("rainstorm")
    spell = next(e for e in p.emissions if e.kind == "sensor" and e.emergency_id)
    device, metric = spell.topic.split("/")[1:]
    quiet = next(e for e in p.emissions if e.topic == spell.topic and e.emergency_id is None)
    def stamp(at: float) -> str:
        return f"{(START + timedelta(seconds=at)).astimezone(UTC):%Y%m%dT%H%M%S%f}"

    assert p.owner(f"sensor-{device}-{metric}-{stamp(spell.at)}") == spell.emergency_id
    for nobody in ("call-nope", "frigate:cam-erqi-square:1.0-x",
                   f"sensor-{device}-silent-{stamp(spell.at)[:15]}",
                   f"sensor-{device}-{metric}-{stamp(quiet.at)}", "sensor-x"):
        assert p.owner(nobody) is None, nobody


def test_a_city_of_stations_alone_still_has_emergencies() -> None:
    """No devices and no cameras: callers only, no dead device, the same promises."""
    bare = {"station": CITY["station"]}
    for name in SCENARIOS:
        p = plan(bare, name, seed=2, duration_s=HOUR, start=START)
        assert p.emergencies and p.dead_device is None
        assert {e.kind for e in p.emissions} == {"call"}
        check_calls_classify(p)
        check_reach(p)
        check_apart(p)


def test_the_demo_opens_with_a_fire_at_once() -> None:
    """`ecc demo` asks for an opening: a fire in the first half minute, heard of within
    two simulated minutes, so a newcomer sees the city come alive."""
    from datetime import UTC, datetime

    from command.settings import load_city_doc

    start = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
    p = plan(load_city_doc(), "normal", seed=11, duration_s=3600, start=start, opening=True)
    first = min(p.emergencies, key=lambda e: e.at)
    assert first.category == "fire" and first.at <= 30 and not first.false_alarm
    assert min(e.at for e in p.emissions if e.emergency_id == first.emergency_id) <= 120
    plain = plan(load_city_doc(), "normal", seed=11, duration_s=3600, start=start)
    assert len(p.emergencies) == len(plain.emergencies) + 1
