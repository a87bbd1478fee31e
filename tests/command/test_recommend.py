"""Recommendation and assignment as pure functions: properties, hand-checked cases."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from command.assign import Need, assign, greedy, weighted_total
from command.recommend import UnitIndex, UnitInfo

CAPS = ["engine", "ladder", "als"]


def unit(uid: str, lat: float, lon: float, *, caps: tuple[str, ...] = ("engine",),
         district: str = "north", available: bool = True, kind: str = "engine",
         agency: str = "fire") -> UnitInfo:
    return UnitInfo(unit_id=uid, agency=agency, kind=kind, capabilities=caps, district=district,
                    lat=lat, lon=lon, available=available)


def test_ranked_by_eta_and_filtered_by_capability_and_availability() -> None:
    """Nearest able, available units first; busy or unable units never proposed."""
    index = UnitIndex([
        unit("far", 34.80, 113.62), unit("near", 34.751, 113.62),
        unit("busy", 34.7501, 113.62, available=False),
        unit("amb", 34.7502, 113.62, caps=("als",), kind="als", agency="health"),
    ])
    ranked = index.recommend("engine", 34.75, 113.62)
    assert [c.unit_id for c in ranked] == ["near", "far"]
    assert ranked[0].eta_s < ranked[1].eta_s
    assert ranked[0].distance_m == pytest.approx(111.2, abs=1.0)
    index.set_available("busy", True)
    assert index.recommend("engine", 34.75, 113.62, k=1)[0].unit_id == "busy"
    assert index.recommend("ladder", 34.75, 113.62) == []


def test_eta_is_turnout_plus_road_distance_over_speed() -> None:
    """One kilometre north of an engine: 80 s turnout + 1.35 km at 45 km/h."""
    index = UnitIndex([unit("E1", 34.75, 113.62)])
    [c] = index.recommend("engine", 34.75 + 1 / 111.195, 113.62)
    assert math.isclose(c.eta_s, 80 + 1000 * 1.35 / (45 / 3.6), rel_tol=1e-3)


def test_mutual_aid_only_when_home_units_are_too_late() -> None:
    """Home-district units first; others proposed (and marked) when home can't make target."""
    index = UnitIndex([unit("home", 34.90, 113.62, district="north"),
                       unit("next-door", 34.751, 113.62, district="south")])
    relaxed = index.recommend("engine", 34.75, 113.62, district="north", target_s=10_000)
    assert [(c.unit_id, c.mutual_aid) for c in relaxed] == [("home", False)]
    tight = index.recommend("engine", 34.75, 113.62, district="north", target_s=300)
    assert [(c.unit_id, c.mutual_aid) for c in tight] == [("next-door", True), ("home", False)]


def test_two_incidents_competing_for_one_ladder() -> None:
    """The P1 fire gets the only ladder even though the P3 asked first and is nearer it."""
    index = UnitIndex([unit("L1", 34.76, 113.62, caps=("ladder",), kind="ladder"),
                       unit("L2", 34.95, 113.62, caps=("ladder",), kind="ladder")])
    needs = [Need("minor/t1", "ladder", 34.761, 113.62, priority=3),
             Need("major/t1", "ladder", 34.75, 113.62, priority=1)]
    chosen = assign(index, needs)
    assert chosen["major/t1"].unit_id == "L1" and chosen["minor/t1"].unit_id == "L2"
    assert greedy(index, needs)["minor/t1"].unit_id == "L1"  # what first-come would do
    assert weighted_total(needs, chosen) < weighted_total(needs, greedy(index, needs))


points = st.tuples(st.floats(34.6, 34.9), st.floats(113.5, 113.8))
units_st = st.lists(st.tuples(points, st.sets(st.sampled_from(CAPS), min_size=1), st.booleans()),
                    min_size=0, max_size=12)
needs_st = st.lists(st.tuples(points, st.sampled_from(CAPS), st.integers(1, 4)),
                    min_size=0, max_size=6)


def build(units: list, needs: list) -> tuple[UnitIndex, list[Need]]:  # type: ignore[type-arg]
    index = UnitIndex([unit(f"u{i}", lat, lon, caps=tuple(sorted(caps)), available=free)
                       for i, ((lat, lon), caps, free) in enumerate(units)])
    return index, [Need(f"n{i}", cap, lat, lon, prio) for i, ((lat, lon), cap, prio)
                   in enumerate(needs)]


@settings(max_examples=120)
@given(units_st, needs_st)
def test_assignment_properties(units: list, needs: list) -> None:  # type: ignore[type-arg]
    """No unit gets two tasks; every pick is able and free; at least as many tasks served as
    greedy, and at equal coverage never a worse weighted total."""
    index, need_list = build(units, needs)
    chosen = assign(index, need_list)
    ids = [c.unit_id for c in chosen.values()]
    assert len(ids) == len(set(ids))
    by_key = {n.key: n for n in need_list}
    for key, cand in chosen.items():
        row = index.row[cand.unit_id]
        assert index.available[row]
        assert index.caps[row] & index.cap_bit[by_key[key].capability]
    base = greedy(index, need_list)
    assert len(chosen) >= len(base)
    if len(chosen) == len(base):
        assert weighted_total(need_list, chosen) <= weighted_total(need_list, base) + 1e-6


@settings(max_examples=150)
@given(st.lists(st.tuples(points, st.sets(st.sampled_from(CAPS), min_size=1), st.just(True)),
                min_size=1, max_size=6),
       st.lists(st.tuples(points, st.sampled_from(CAPS), st.integers(1, 4)), min_size=1,
                max_size=4))
def test_assignment_is_the_brute_force_optimum(units: list, needs: list) -> None:  # type: ignore[type-arg]
    """On small cases, the optimiser's total equals the best over every possible pairing."""
    index, need_list = build(units, needs)
    chosen = assign(index, need_list)
    best = (0, 0.0)  # (tasks served, -weighted total) maximised
    all_units = list(range(len(index)))
    for perm in itertools.permutations(all_units + [None] * len(need_list), len(need_list)):
        served, total, ok = 0, 0.0, True
        for need, row in zip(need_list, perm, strict=True):
            if row is None:
                continue
            if not index.caps[row] & index.cap_bit.get(need.capability, 0):
                ok = False
                break
            eta = float(index.eta(np.array([row]), need.lat, need.lon)[0])
            served += 1
            total += {1: 8.0, 2: 4.0, 3: 2.0, 4: 1.0}[need.priority] * eta
        if ok and (served, -total) > best:
            best = (served, -total)
    assert len(chosen) == best[0]
    assert math.isclose(weighted_total(need_list, chosen), -best[1], rel_tol=1e-9, abs_tol=1e-6)


def test_city_files_are_checked_line_by_line() -> None:
    """Misspelt sections, repeated stations and bad capability names are refused."""
    from command.city import CityError, parse_city

    station = '[[station]]\nid = "s"\nagency = "fire"\ndistrict = "d"\nlat = 1\nlon = 1\n'
    with pytest.raises(CityError, match="unknown keys"):
        parse_city('[[stations]]\nid = "s"\n')
    with pytest.raises(CityError, match="appears twice") as info:
        parse_city(station + station)
    assert info.value.line == 7
    with pytest.raises(CityError):
        parse_city(station + 'units = [{ id = "E1", kind = "engine", '
                             'capabilities = ["Eng ine"] }]\n')


def test_stacking_picks_the_unit_that_will_reach_the_task_soonest_once_free() -> None:
    """No able unit free: a returning unit far away beats one just starting on scene
    next door; out-of-service units are not counted on."""
    from command.assign import stack

    index = UnitIndex([unit("busy-near", 34.7501, 113.62, available=False),
                       unit("coming-back", 34.80, 113.62, available=False),
                       unit("broken", 34.7500, 113.62, available=False)])
    need = Need("i/t1", "engine", 34.75, 113.62, priority=2)
    status = {"busy-near": "on_scene", "coming-back": "returning", "broken": "out_of_service"}
    found = stack(index, need, status)
    assert found is not None and found[0].unit_id == "coming-back" and found[1] == 0
    assert stack(index, need, {"broken": "out_of_service"}) is None
