"""Fusion as pure functions, and on the real pipeline; real calls replayed (SF Fire
Department incidents kept apart, Montgomery County crash calls fused)."""

from __future__ import annotations

import csv
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.hotline import CallRecord, read_csv, to_signal
from command.fusion import Candidate, cell_of, cells_around, choose, distance_m, rule_for
from command.settings import builtin_catalogue
from command.store import Store
from command.subjects import Namespace
from ecc.app import Service
from tests.helpers import eventually, make_signal, publish_signal, shared_data
from workflows.geo import Location

RULES = builtin_catalogue().fusion

T0 = datetime(2026, 7, 20, 8, 0, tzinfo=UTC)
# How far around a signal the in-memory replay looks for incidents: beyond the widest
# radius (2 km, a flood) and the longest window (a day, a silent device) of any type.
BEYOND_EVERY_RADIUS_M = 2500
BEYOND_EVERY_WINDOW = timedelta(days=1, hours=1)
Call = tuple[str, str, float, float, datetime]  # signal id, category, lat, lon, time
COARSE_DEG = 0.05


def bucket(lat: float, lon: float, at: datetime) -> tuple[int, int, int]:
    """A coarse cell of place and day."""
    return (math.floor(lat / COARSE_DEG), math.floor(lon / COARSE_DEG),
            math.floor(at.timestamp() / 86400))


def buckets_around(lat: float, lon: float, at: datetime) -> list[tuple[int, int, int]]:
    """The buckets that can hold an incident within ``BEYOND_EVERY_RADIUS_M`` and
    ``BEYOND_EVERY_WINDOW`` of the point."""
    dlat = BEYOND_EVERY_RADIUS_M / 111_195.0
    dlon = BEYOND_EVERY_RADIUS_M / (111_195.0 * max(math.cos(math.radians(lat)), 0.01))
    a0, b0, d0 = bucket(lat - dlat, lon - dlon, at - BEYOND_EVERY_WINDOW)
    a1, b1, d1 = bucket(lat + dlat, lon + dlon, at + BEYOND_EVERY_WINDOW)
    return [(a, b, d) for a in range(a0, a1 + 1) for b in range(b0, b1 + 1)
            for d in range(d0, d1 + 1)]


def fuse(signals: list[Call]) -> dict[str, str]:
    """Run signals through :func:`choose` in order, with an in-memory set of incidents.

    Returns signal id -> incident id: what the shell does, minus the database (and with
    coarse buckets of place and day in place of the shell's grid, so a replay of
    thousands of calls takes a second).
    """
    incidents: dict[str, Candidate] = {}
    buckets: dict[tuple[int, int, int], set[str]] = {}
    out: dict[str, str] = {}
    for sid, category, lat, lon, at in signals:
        near = [incidents[i] for key in buckets_around(lat, lon, at)
                for i in sorted(buckets.get(key, ()))]
        match = choose(category, lat, lon, at, near, RULES)
        if match is None:
            incidents[sid] = Candidate(sid, category, lat, lon, at)
            buckets.setdefault(bucket(lat, lon, at), set()).add(sid)
            out[sid] = sid
        else:
            out[sid] = match.incident_id
            c = incidents[match.incident_id]
            buckets[bucket(c.lat, c.lon, c.last_signal_at)].discard(c.incident_id)
            c = Candidate(c.incident_id, c.category, c.lat, c.lon, max(c.last_signal_at, at))
            incidents[c.incident_id] = c
            buckets.setdefault(bucket(c.lat, c.lon, c.last_signal_at), set()).add(c.incident_id)
    return out


def test_a_smoke_sensor_a_camera_and_callers_are_one_fire() -> None:
    """Signals about one fire minutes and metres apart fuse; a flood next door does not."""
    sigs = [("sensor", "fire", 34.7466, 113.6254, T0),
            ("camera", "fire", 34.7467, 113.6256, T0 + timedelta(minutes=1)),
            ("call1", "fire", 34.7469, 113.6250, T0 + timedelta(minutes=3)),
            ("flood", "flood", 34.7466, 113.6254, T0 + timedelta(minutes=4)),
            ("later", "fire", 34.7466, 113.6254, T0 + timedelta(hours=5))]
    got = fuse(sigs)
    assert got["camera"] == got["call1"] == got["sensor"] == "sensor"
    assert got["flood"] == "flood" and got["later"] == "later"


def test_a_medical_call_joins_the_crash_it_is_about() -> None:
    """EMS and traffic calls about one crash (the Montgomery County pattern) are one event."""
    got = fuse([("crash", "traffic", 40.20, -75.30, T0),
                ("ems", "medical", 40.2008, -75.3005, T0 + timedelta(minutes=4))])
    assert got["ems"] == "crash"


def test_the_cells_around_a_point_cover_its_radius() -> None:
    """Every point within the radius lies in one of the cells searched."""
    for lat, lon, r in ((34.7466, 113.6254, 300), (0.001, -0.001, 2000), (59.9, 10.7, 150)):
        cells = set(cells_around(lat, lon, r))
        for bearing in range(0, 360, 15):
            dlat = r * 0.999 * math.cos(math.radians(bearing)) / 111_195
            dlon = r * 0.999 * math.sin(math.radians(bearing)) / (
                111_195 * math.cos(math.radians(lat)))
            assert cell_of(lat + dlat, lon + dlon) in cells


events_st = st.lists(
    st.tuples(st.sampled_from(["fire", "medical", "flood", "gas_leak", "crime"]),
              st.integers(1, 4)),  # category, how many signals
    min_size=1, max_size=6)


@settings(max_examples=150, deadline=None)
@given(events_st, st.randoms(use_true_random=False))
def test_arrival_order_does_not_change_what_fuses_for_separate_events(
    events: list[tuple[str, int]], rnd: Any
) -> None:
    """Well-separated events (kilometres apart) fuse to the same groups in any order,
    and every signal is in exactly one incident."""
    signals = []
    for e, (category, n) in enumerate(events):
        lat, lon = 34.0 + e * 0.1, 113.0  # 11 km apart: beyond every radius
        for k in range(n):
            signals.append((f"e{e}s{k}", category, lat + k * 0.0002, lon,
                            T0 + timedelta(minutes=k)))
    shuffled = signals[:]
    rnd.shuffle(shuffled)

    def groups(assignment: dict[str, str]) -> set[frozenset[str]]:
        by: dict[str, set[str]] = {}
        for sid, inc in assignment.items():
            by.setdefault(inc, set()).add(sid)
        return {frozenset(g) for g in by.values()}

    first, second = fuse(signals), fuse(shuffled)
    assert set(first) == {s[0] for s in signals}
    assert groups(first) == groups(second)
    assert groups(first) == {frozenset(f"e{e}s{k}" for k in range(n))
                             for e, (_, n) in enumerate(events)}


def test_fusion_respects_each_types_limits() -> None:
    """A medical call 200 m away is a different patient; a flood 1.5 km away is the same
    flood."""
    assert rule_for("medical", RULES).radius_m < 200 < rule_for("flood", RULES).radius_m
    got = fuse([("m1", "medical", 34.0, 113.0, T0), ("m2", "medical", 34.0018, 113.0, T0),
                ("f1", "flood", 35.0, 113.0, T0), ("f2", "flood", 35.0135, 113.0, T0)])
    assert got["m2"] == "m2" and got["f2"] == "f1"


def sf_calls() -> tuple[list[Call], dict[str, str]]:
    """One signal per SF call (rows are per unit) in time order, and each call's incident
    number, SF's own grouping."""
    seen: dict[str, Call] = {}
    truth: dict[str, str] = {}
    for path in sorted(shared_data("sf_fire_calls_usf").glob("*.csv")):
        with path.open(newline="") as fh:
            for row in csv.DictReader(fh):
                call = row["Call Number"]
                if call in seen or not row["Location"]:
                    continue
                lat, lon = (float(x) for x in row["Location"].strip("()").split(","))
                at = datetime.strptime(row["Received DtTm"], "%m/%d/%Y %I:%M:%S %p")
                seen[call] = (call, "fire", lat, lon, at.replace(tzinfo=UTC))
                truth[call] = row["Incident Number"]
    return sorted(seen.values(), key=lambda s: s[4]), truth


def test_distinct_sf_fire_incidents_are_rarely_merged() -> None:
    """Replay of the real SF calls (901 calls, each its own SF incident number): at most 3%
    of them join another SF incident (measured: 13, 1.4%), and each that does is a repeat
    call to one place within the fire window."""
    calls, truth = sf_calls()
    assert len(calls) == 901 and len(set(truth.values())) == len(calls)  # all distinct
    got = fuse(calls)
    merged = [sid for sid, incident in got.items() if truth[sid] != truth[incident]]
    rate = len(merged) / len(calls)
    print(f"SF replay: {len(calls)} calls, {len(set(got.values()))} ECC incidents; "
          f"{len(merged)} calls merged into another SF incident ({rate:.1%})")
    assert rate <= 0.03
    by_id = {c[0]: c for c in calls}
    for sid in merged:  # every merge is a near repeat: place and time
        a, b = by_id[got[sid]], by_id[sid]
        assert distance_m(a[2], a[3], b[2], b[3]) <= 300
        assert abs((b[4] - a[4]).total_seconds()) <= 1800


MONTCO = ("montco_911_subset", "911_montco_subset_noheader.csv")
CRASH_GAP = timedelta(minutes=10)
# How an agency that files a call by who takes it would categorise Montgomery County's
# titles ("EMS: ...", "Traffic: ...", "Fire: ...").
BY_AGENCY = {"EMS": "medical", "Traffic": "traffic", "Fire": "fire"}


def montco_records() -> list[CallRecord]:
    """Every Montgomery County 911 call, read by the hotline adapter."""
    records = list(read_csv(shared_data(*MONTCO).read_text()))
    assert len(records) == 3051
    return records


def crash_pairs(records: list[CallRecord]) -> list[tuple[str, str]]:
    """The EMS and Traffic calls about one crash, by a rule that knows nothing of fusion:
    an ``EMS: VEHICLE ACCIDENT`` and a ``Traffic: VEHICLE ACCIDENT`` call at the same
    address in the same township (the county's own text), received at most 10 minutes
    apart. Signal ids, EMS first."""
    ems = [r for r in records if r.narrative == "EMS: VEHICLE ACCIDENT"]
    traffic = [r for r in records if r.narrative == "Traffic: VEHICLE ACCIDENT"]
    return [(f"call-{e.call_id}", f"call-{t.call_id}") for e in ems for t in traffic
            if e.location.address == t.location.address
            and abs(e.received_at - t.received_at) <= CRASH_GAP]


def montco_signals(records: list[CallRecord], by_agency: bool) -> list[Call]:
    """The calls as signals in time order: categorised by the hotline adapter's rules, or
    (``by_agency``) by the agency that took the call."""
    out = []
    for record in records:
        signal = to_signal(record, builtin_catalogue().hotline)
        category = (BY_AGENCY[record.narrative.split(":")[0]] if by_agency
                    else signal.category)
        out.append((signal.signal_id, category, signal.location.lat, signal.location.lon,
                    record.received_at))
    return sorted(out, key=lambda s: s[4])


@pytest.mark.parametrize("by_agency", [False, True], ids=["as-classified", "by-agency"])
def test_the_ems_and_traffic_calls_about_one_montgomery_county_crash_fuse(
        by_agency: bool) -> None:
    """The 37 real crash pairs (an EMS and a Traffic call at one address minutes apart),
    replayed among all 3,051 calls of the county: at least 90% of the pairs land on one
    incident (measured: 36 of 37; the one missed has its two calls geocoded 1.1 km
    apart), whether the EMS call is filed as a crash or as a medical call."""
    records = montco_records()
    pairs = crash_pairs(records)
    assert len(pairs) == 37
    signals = montco_signals(records, by_agency)
    if by_agency:
        category = {s[0]: s[1] for s in signals}
        assert {(category[e], category[t]) for e, t in pairs} == {("medical", "traffic")}
    got = fuse(signals)
    fused = sum(got[e] == got[t] for e, t in pairs)
    print(f"Montgomery County ({'by agency' if by_agency else 'as classified'}): "
          f"{fused} of {len(pairs)} crash pairs fused; {len(signals)} calls, "
          f"{len(set(got.values()))} incidents")
    assert fused / len(pairs) >= 0.9


async def test_three_kinds_of_source_fuse_and_verify_on_the_real_pipeline(
    service: Service, store: Store, js: Any, ns: Namespace
) -> None:
    """A smoke sensor, a camera and a caller at one address, one after another: one
    incident, attached with reasons, verified by independent sources."""
    where = Location(lat=34.7466, lon=113.6254, address="Erqi Square")
    for n, (source, confidence) in enumerate((("sensor", 0.6), ("camera", 0.7),
                                              ("hotline", 0.5)), start=1):
        await publish_signal(js, ns, make_signal(source=source, confidence=confidence,
                                                 location=where))
        await eventually(lambda n=n: _signals_taken(store, n))  # type: ignore[misc]
    rows = await store.pool.fetch("SELECT view FROM incidents")
    assert len(rows) == 1
    view = rows[0]["view"]
    assert [s["source"] for s in view["signals"]] == ["sensor", "camera", "hotline"]
    assert view["status"] == "dispatching"
    events = await store.read_stream(f"incident:{view['incident_id']}")
    attaches = [e for e in events if e.type == "incident.signal_attached"]
    assert len(attaches) == 2 and all("m and" in e.data["reason"] for e in attaches)
    verified = next(e for e in events if e.type == "incident.verified")
    assert "independent sources" in verified.data["reason"]


async def _signals_taken(store: Store, n: int) -> bool:
    """``n`` signals are on incidents (each one taken in before the next is sent)."""
    return bool(await store.pool.fetchval(
        "SELECT coalesce(sum(jsonb_array_length(view->'signals')), 0) FROM incidents") == n)
