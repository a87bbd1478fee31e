"""Road-network ETAs: parsing real OpenStreetMap data, one-way streets, ranking by drive."""

from __future__ import annotations

import numpy as np
import pytest

from command.recommend import UnitIndex, UnitInfo
from command.roads import parse_osm, parse_speed
from tests.helpers import shared_data


def osm(nodes: dict[str, tuple[float, float]], ways: list[tuple[list[str], dict[str, str]]]) -> str:
    """A hand-made OSM extract (the format of ../shared/data/road_networks)."""
    parts = ['<osm version="0.6">']
    parts += [f'<node id="{n}" lat="{lat}" lon="{lon}"/>' for n, (lat, lon) in nodes.items()]
    for i, (refs, tags) in enumerate(ways):
        parts.append(f'<way id="{i}">' + "".join(f'<nd ref="{r}"/>' for r in refs) +
                     "".join(f'<tag k="{k}" v="{v}"/>' for k, v in tags.items()) + "</way>")
    return "".join([*parts, "</osm>"])


def test_speed_tags() -> None:
    """maxspeed in mph or km/h becomes km/h; junk is ignored."""
    assert parse_speed("35 mph") == pytest.approx(56.33, abs=0.01)
    assert parse_speed("50") == 50 and parse_speed("50 km/h") == 50
    assert parse_speed("signals") is None and parse_speed(None) is None


def test_the_reno_extract_parses_into_a_routable_network() -> None:
    """The real east-Reno extract: ~9,700 nodes; most of the city reaches its centre."""
    net = parse_osm(shared_data("road_networks", "reno_east3.osm").read_bytes())
    assert 9000 < len(net) < 10_000 and net.edges > 15_000
    times = net.times_to(39.525, -119.75)
    assert np.isfinite(times).mean() > 0.9
    assert 60 < np.nanmax(times[np.isfinite(times)]) < 1800  # minutes, not hours


def test_one_way_streets_are_driven_one_way() -> None:
    """A->B one-way: from A the drive is short; from B there is no way."""
    net = parse_osm(osm({"a": (0.0, 0.0), "b": (0.0, 0.01)},
                        [(["a", "b"], {"highway": "residential", "oneway": "yes"})]))
    to_b = net.times_to(0.0, 0.01)
    to_a = net.times_to(0.0, 0.0)
    a, b = (int(net.nearest(0.0, lon)[0][0]) for lon in (0.0, 0.01))
    assert to_b[a] == pytest.approx(1113 / (30 / 3.6), rel=0.01)
    assert np.isinf(to_a[b])


def test_the_road_ranks_units_not_the_crow() -> None:
    """Unit X is closer as the crow flies but must drive round; Y is on the direct road."""
    nodes = {"t": (0.0, 0.0), "y": (0.0, 0.02), "x": (0.005, 0.0), "m1": (0.05, 0.0),
             "m2": (0.05, -0.0001)}
    ways = [(["y", "t"], {"highway": "primary"}),            # Y drives straight in
            (["x", "m1", "m2", "t"], {"highway": "residential"})]  # X goes the long way
    net = parse_osm(osm(nodes, ways))
    units = [UnitInfo("X", "fire", "engine", ("engine",), "d", 0.005, 0.0),
             UnitInfo("Y", "fire", "engine", ("engine",), "d", 0.0, 0.02)]
    assert [c.unit_id for c in UnitIndex(units).recommend("engine", 0.0, 0.0)] == ["X", "Y"]
    on_roads = UnitIndex(units, roads=net).recommend("engine", 0.0, 0.0)
    assert [c.unit_id for c in on_roads] == ["Y", "X"]
    assert on_roads[0].eta_s == pytest.approx(80 + 2226 / (60 / 3.6), rel=0.02)
