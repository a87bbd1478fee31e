"""The offline base layer (command/basemap.py): roads by class and simplified, water,
boundaries and the city's districts, from OSM XML; small enough to send to consoles."""

from __future__ import annotations

import json

import pytest

from command.basemap import build_basemap, dumps, simplify
from command.city import District
from tests.helpers import shared_data

OSM = """<?xml version='1.0' encoding='UTF-8'?>
<osm version="0.6">
  <node id="1" lat="39.500" lon="-119.800"/>
  <node id="2" lat="39.500" lon="-119.790"/>
  <node id="3" lat="39.5000001" lon="-119.785"/>
  <node id="4" lat="39.500" lon="-119.780"/>
  <node id="5" lat="39.510" lon="-119.780"/>
  <node id="6" lat="39.510" lon="-119.790"/>
  <node id="7" lat="39.520" lon="-119.790"/>
  <way id="10"><nd ref="1"/><nd ref="2"/><nd ref="3"/><nd ref="4"/>
    <tag k="highway" v="motorway"/></way>
  <way id="11"><nd ref="4"/><nd ref="5"/><tag k="highway" v="residential"/></way>
  <way id="12"><nd ref="5"/><nd ref="6"/><tag k="highway" v="footway"/></way>
  <way id="13"><nd ref="2"/><nd ref="4"/><nd ref="5"/><nd ref="6"/><nd ref="2"/>
    <tag k="natural" v="water"/></way>
  <way id="14"><nd ref="6"/><nd ref="7"/><tag k="waterway" v="river"/></way>
  <way id="15"><nd ref="1"/><nd ref="7"/><tag k="boundary" v="administrative"/></way>
  <way id="16"><nd ref="1"/><nd ref="99"/><tag k="highway" v="primary"/></way>
</osm>"""


def _kinds(fc: dict) -> dict[str, dict]:
    return {f["properties"].get("class") or f["properties"]["kind"]: f for f in fc["features"]}


def test_roads_by_class_water_boundaries_and_districts() -> None:
    district = District(name="Downtown", polygon=((-119.8, 39.5), (-119.78, 39.5),
                                                 (-119.78, 39.52)))
    fc = build_basemap(OSM, districts=(district,), name="Test")
    kinds = _kinds(fc)
    assert set(kinds) == {"district", "water", "waterway", "boundary", "motorway", "minor"}
    # the motorway's middle point is 1 cm off the line: simplified away
    assert kinds["motorway"]["geometry"]["coordinates"] == [[[-119.8, 39.5], [-119.78, 39.5]]]
    assert kinds["water"]["geometry"]["type"] == "Polygon"
    ring = kinds["district"]["geometry"]["coordinates"][0]
    assert kinds["district"]["properties"]["name"] == "Downtown" and ring[0] == ring[-1]
    assert "OpenStreetMap" in fc["properties"]["attribution"]
    assert json.loads(dumps(fc)) == fc


def test_an_extract_without_roads_is_refused() -> None:
    with pytest.raises(ValueError, match="no roads"):
        build_basemap('<osm version="0.6"><node id="1" lat="0" lon="0"/></osm>')


def test_simplify_keeps_the_ends_and_the_corners() -> None:
    line = [(0.0, 0.0), (0.00001, 0.0), (0.001, 0.0), (0.001, 0.001)]
    assert simplify(line, 5.0) == [(0.0, 0.0), (0.001, 0.0), (0.001, 0.001)]
    assert simplify(line[:2], 5.0) == line[:2]


def test_east_renos_street_map_is_small() -> None:
    fc = build_basemap(shared_data("road_networks", "reno_east3.osm").read_bytes())
    size = len(dumps(fc))
    assert 20_000 < size < 300_000, size  # the 1.6 MB extract, as a ~100 kB layer
    south, west, north, east = fc["properties"]["bounds"]
    assert south < 39.51 and north > 39.54 and west < -119.80 and east > -119.71


# A lake with an island, drawn the way OSM draws large water: a type=multipolygon
# relation whose outer ring is two open, untagged ways (one of them running the other
# way round) and whose inner ring is a closed way. Hand-written; no excerpt of real data
# (the shared extracts hold no relations: reno_east3 is highway ways only, West Oakland
# has no multipolygons).
LAKE = """<?xml version='1.0' encoding='UTF-8'?>
<osm version="0.6">
  <node id="1" lat="39.500" lon="-119.800"/>
  <node id="2" lat="39.500" lon="-119.780"/>
  <node id="3" lat="39.520" lon="-119.780"/>
  <node id="4" lat="39.520" lon="-119.800"/>
  <node id="5" lat="39.505" lon="-119.795"/>
  <node id="6" lat="39.505" lon="-119.785"/>
  <node id="7" lat="39.515" lon="-119.785"/>
  <node id="8" lat="39.515" lon="-119.795"/>
  <node id="9" lat="39.530" lon="-119.800"/>
  <way id="20"><nd ref="1"/><nd ref="2"/><nd ref="3"/></way>
  <way id="21"><nd ref="1"/><nd ref="4"/><nd ref="3"/></way>
  <way id="22"><nd ref="5"/><nd ref="6"/><nd ref="7"/><nd ref="8"/><nd ref="5"/>
    <tag k="place" v="islet"/></way>
  <way id="23"><nd ref="4"/><nd ref="9"/><tag k="highway" v="residential"/></way>
  <way id="24"><nd ref="9"/><nd ref="4"/><nd ref="3"/><nd ref="9"/></way>
  <relation id="30">
    <member type="way" ref="20" role="outer"/>
    <member type="way" ref="22" role="inner"/>
    <member type="way" ref="21" role="outer"/>
    <member type="way" ref="404" role="outer"/>
    <tag k="type" v="multipolygon"/><tag k="natural" v="water"/><tag k="water" v="lake"/>
  </relation>
  <relation id="31">
    <member type="way" ref="24" role="outer"/>
    <tag k="type" v="multipolygon"/><tag k="landuse" v="forest"/>
  </relation>
  <relation id="32">
    <member type="way" ref="20" role="outer"/>
    <tag k="type" v="multipolygon"/><tag k="natural" v="water"/>
  </relation>
</osm>"""


def test_multipolygon_water_is_drawn_with_its_outer_ways_stitched_and_its_island_a_hole(
) -> None:
    """A water relation's outer ways become one ring and its inner way a hole; a relation
    that is not water, and one whose outer ring never closes, draw nothing."""
    fc = build_basemap(LAKE)
    water = [f for f in fc["features"] if f["properties"]["kind"] == "water"]
    assert len(water) == 1, water
    geometry = water[0]["geometry"]
    assert geometry["type"] == "Polygon"
    outer, hole = geometry["coordinates"]
    assert outer[0] == outer[-1] and hole[0] == hole[-1]
    assert {tuple(p) for p in outer} == {(-119.8, 39.5), (-119.78, 39.5), (-119.78, 39.52),
                                         (-119.8, 39.52)}
    assert {tuple(p) for p in hole} == {(-119.795, 39.505), (-119.785, 39.505),
                                        (-119.785, 39.515), (-119.795, 39.515)}


def test_a_relation_with_two_lakes_is_a_multipolygon_each_with_its_own_holes() -> None:
    """Two outer rings: a MultiPolygon, the island's hole only in the ring that holds it."""
    two = LAKE.replace('<member type="way" ref="404" role="outer"/>',
                       '<member type="way" ref="24" role="outer"/>')
    fc = build_basemap(two)
    water = [f for f in fc["features"] if f["properties"]["kind"] == "water"]
    assert [w["geometry"]["type"] for w in water] == ["MultiPolygon"]
    polygons = water[0]["geometry"]["coordinates"]
    assert sorted(len(p) for p in polygons) == [1, 2]  # the lake with its hole, the pond
