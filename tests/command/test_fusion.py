"""Fusion as pure functions, and on the real pipeline; the SF Fire Department replay."""

from __future__ import annotations

import csv
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from command.fusion import Candidate, cell_of, cells_around, choose, distance_m, rule_for
from command.service import Service
from command.settings import builtin_catalogue
from command.store import Store
from command.subjects import Namespace
from tests.helpers import eventually, make_signal, publish_signal, shared_data
from workflows.geo import Location

RULES = builtin_catalogue().fusion

T0 = datetime(2026, 7, 20, 8, 0, tzinfo=UTC)


def fuse(signals: list[tuple[str, str, float, float, datetime]]) -> dict[str, str]:
    """Run signals through :func:`choose` in order, with an in-memory set of incidents.

    Returns signal id -> incident id: what the shell does, minus the database.
    """
    incidents: dict[str, Candidate] = {}
    out: dict[str, str] = {}
    for sid, category, lat, lon, at in signals:
        near = [c for c in incidents.values()
                if distance_m(lat, lon, c.lat, c.lon) <= 5000]
        match = choose(category, lat, lon, at, near, RULES)
        if match is None:
            incidents[sid] = Candidate(sid, category, lat, lon, at)
            out[sid] = sid
        else:
            out[sid] = match.incident_id
            c = incidents[match.incident_id]
            incidents[match.incident_id] = Candidate(c.incident_id, c.category, c.lat, c.lon,
                                                     max(c.last_signal_at, at))
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
            import math
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


def sf_calls() -> list[tuple[str, str, float, float, datetime]]:
    """One signal per SF call (rows are per unit), with its incident number as the truth."""
    seen: dict[str, tuple[str, str, float, float, datetime]] = {}
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
    sf_calls.truth = truth  # type: ignore[attr-defined]
    return sorted(seen.values(), key=lambda s: s[4])


def test_sf_fire_calls_fuse_as_their_department_grouped_them() -> None:
    """Replay of the real SF calls (901 calls, each its own SF incident number): calls the
    department filed under one incident would fuse (pairwise recall), and ECC keeps apart
    nearly every incident the department kept apart; what it fuses is a repeat call."""
    calls = sf_calls()
    truth: dict[str, str] = sf_calls.truth  # type: ignore[attr-defined]
    got = fuse(calls)
    same_truth = both = 0
    for a, b in itertools.combinations([c[0] for c in calls], 2):
        if truth[a] == truth[b]:
            same_truth += 1
            both += got[a] == got[b]
    recall = both / same_truth if same_truth else 1.0
    ours, theirs = len(set(got.values())), len(set(truth.values()))
    print(f"SF replay: {len(calls)} calls, {theirs} SF incidents, {ours} ECC incidents "
          f"({ours / theirs:.1%}); pairwise recall {recall:.3f} over {same_truth} pairs")
    assert len(calls) > 500
    assert recall >= 0.9
    assert ours / theirs >= 0.95
    by_id = {c[0]: c for c in calls}
    for sid, incident in got.items():  # every fusion is a near repeat: place and time
        if sid != incident:
            a, b = by_id[incident], by_id[sid]
            assert distance_m(a[2], a[3], b[2], b[3]) <= 300
            assert abs((b[4] - a[4]).total_seconds()) <= 1800


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
