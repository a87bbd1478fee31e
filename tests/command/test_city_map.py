"""The city file's [map] table: what the console's map shows (docs/maps.md), and every
kind of garbage in it refused with a CityError that names the file and the table."""

from __future__ import annotations

import json
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from command.basemap import map_site
from command.city import CityError, parse_city, parse_districts
from command.settings import load_city
from tests.toml_text import dumps

DEMO = resources.files("sim").joinpath("data/zhengzhou.toml").read_text()
RENO = Path(__file__).resolve().parents[2] / "sim" / "data" / "reno_east.toml"
GOOD = {"south": 39.5, "west": -119.8, "north": 39.54, "east": -119.7}


def _with_map(table: Any) -> str:
    doc = tomllib.loads(DEMO)
    assert "map" in doc
    doc["map"] = table
    return dumps(doc)


def test_the_demo_city_declares_its_extent_and_schematic_layer() -> None:
    city = load_city()
    assert city.map is not None and city.map.offline == "zhengzhou.geojson"
    south, west, north, east = city.extent()
    assert all(south <= s.lat <= north and west <= s.lon <= east for s in city.stations)
    site = map_site(city, b"{}")
    assert site.config["default"] == "offline" and site.layers == {"offline": b"{}"}
    assert site.config["bounds"] == [[34.64, 113.48], [34.96, 113.86]]


def test_east_reno_names_its_districts_and_every_station_is_inside_the_extent() -> None:
    city = load_city(RENO)
    assert city.map is not None and city.road_network is not None
    assert {d.name for d in city.map.district} == {"East Reno", "Sparks", "Airport",
                                                    "Hidden Valley"}
    south, west, north, east = city.extent()
    assert all(south <= s.lat <= north and west <= s.lon <= east for s in city.stations)
    districts = map_site(city).config["districts"]
    ring = districts["features"][0]["geometry"]["coordinates"][0]
    assert ring[0] == ring[-1]  # closed for GeoJSON


def test_tiles_the_operator_configures_reach_the_console_and_its_csp() -> None:
    table = {**GOOD, "default": "Streets", "tiles": [
        {"name": "Streets", "url": "https://{s}.tiles.city.example/{z}/{x}/{y}.png",
         "attribution": "© City GIS"},
        {"name": "Aerial", "url": "http://gis.local:8080/aerial/{z}/{y}/{x}.jpg",
         "attribution": "© City GIS", "max_zoom": 21}]}
    city = parse_city(_with_map(table))
    site = map_site(city)
    assert site.config["default"] == "Streets" and site.config["offline"] is None
    assert [t["name"] for t in site.config["tiles"]] == ["Streets", "Aerial"]
    assert site.tile_sources == ("https://*.tiles.city.example", "http://gis.local:8080")


def test_a_city_without_a_map_gets_an_extent_around_its_stations() -> None:
    doc = tomllib.loads(DEMO)
    del doc["map"]
    city = parse_city(dumps(doc))
    south, west, north, east = city.extent()
    assert all(south < s.lat < north and west < s.lon < east for s in city.stations)
    assert map_site(city).config["default"] is None


@pytest.mark.parametrize(("table", "says"), [
    ({**GOOD, "south": 40.0}, "south < north"),
    ({**GOOD, "west": 200}, "west"),
    ({**GOOD, "centre": [10.0, 10.0]}, "centre must lie inside"),
    ({**GOOD, "tiles": [{"name": "x", "url": "ftp://a/{z}/{x}/{y}", "attribution": "a"}]},
     "url"),
    ({**GOOD, "tiles": [{"name": "x", "url": "https://a/{z}/{x}.png", "attribution": "a"}]},
     "{z}, {x} and {y}"),
    ({**GOOD, "tiles": [{"name": "x", "url": "https://a/{z}/{x}/{y}"}]}, "attribution"),
    ({**GOOD, "default": "offline"}, "no offline layer"),
    ({**GOOD, "default": "Nope"}, "not one of the layers"),
    ({**GOOD, "district": [{"name": "A", "polygon": [[0, 0], [1, 1]]}]}, "polygon"),
    ({**GOOD, "zoom": 3}, "zoom"),
    ({"south": 1}, "north"),
    ("the whole city", "map must be a table"),
])
def test_a_bad_map_table_is_a_city_error_naming_what_is_wrong(table: Any, says: str) -> None:
    with pytest.raises(CityError, match="map") as exc:
        parse_city(_with_map(table), "city.toml")
    assert says in str(exc.value)
    if isinstance(table, dict):
        assert exc.value.line is not None  # the [map] table's line


# TOML has no null: scalars are drawn without None, not filtered (a filter starved the
# generator and failed Hypothesis's health check)
_scalars = (st.booleans() | st.integers(-10**6, 10**6)
            | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30))
_values = st.recursive(_scalars,
                       lambda inner: st.lists(inner, max_size=4)
                       | st.dictionaries(st.text(min_size=1, max_size=10), inner, max_size=4),
                       max_leaves=12)
_keys = st.sampled_from(["south", "west", "north", "east", "centre", "offline", "tiles",
                         "district", "default", "offline_attribution", "other"])


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_keys, _values, max_size=8), st.booleans())
def test_garbage_in_the_map_table_is_a_city_error_never_a_crash(
        garbage: dict[str, Any], keep_extent: bool) -> None:
    table = {**GOOD, **garbage} if keep_extent else garbage
    try:
        city = parse_city(_with_map(table), "city.toml")
    except CityError as exc:
        assert str(exc).startswith("city.toml")
        return
    assert city.map is not None
    map_site(city)  # what parses is servable


# [map] districts: a GeoJSON FeatureCollection beside the city file, merged with the
# inline [[map.district]] entries.

def _square(lon: float, lat: float, d: float) -> list[list[float]]:
    return [[lon, lat], [lon + d, lat], [lon + d, lat + d], [lon, lat + d], [lon, lat]]


def _feature(name: Any, geometry: Any) -> dict[str, Any]:
    return {"type": "Feature", "properties": {"name": name}, "geometry": geometry}


NORTH = _feature("North Valleys", {"type": "Polygon", "coordinates": [
    _square(-119.80, 39.53, 0.01), _square(-119.797, 39.533, 0.002)]})  # with a hole
ISLANDS = _feature("Islands", {"type": "MultiPolygon", "coordinates": [
    [_square(-119.75, 39.50, 0.005)], [_square(-119.74, 39.50, 0.005)]]})


def _reno_with_districts(tmp_path: Path, collection: Any) -> Path:
    """East Reno's city file, copied beside a districts file (its relative paths made
    absolute), naming it in [map] districts."""
    doc = tomllib.loads(RENO.read_text())
    doc["road_network"] = str((RENO.parent / doc["road_network"]).resolve())
    doc["gazetteer"] = {k: str((RENO.parent / v).resolve())
                        for k, v in doc.get("gazetteer", {}).items()}
    doc["map"]["offline"] = str((RENO.parent / doc["map"]["offline"]).resolve())
    doc["map"]["districts"] = "areas/more.geojson"
    (tmp_path / "areas").mkdir()
    data = collection if isinstance(collection, bytes) else json.dumps(collection).encode()
    (tmp_path / "areas" / "more.geojson").write_bytes(data)
    path = tmp_path / "city.toml"
    path.write_text(dumps(doc))
    return path


def test_a_districts_file_is_merged_with_the_inline_districts_and_served(
        tmp_path: Path) -> None:
    """The file's Polygon (with its hole) and MultiPolygon come after the four inline
    districts in what /map.json serves, holes and parts kept."""
    path = _reno_with_districts(tmp_path, {"type": "FeatureCollection",
                                           "features": [NORTH, ISLANDS]})
    city = load_city(path)
    assert city.map is not None
    served = json.loads(json.dumps(map_site(city).config))["districts"]["features"]
    by_name = {f["properties"]["name"]: f["geometry"] for f in served}
    inline = [d.name for d in load_city(RENO).map.district]  # type: ignore[union-attr]
    assert list(by_name) == [*inline, "North Valleys", "Islands"] and len(inline) == 4
    assert by_name["North Valleys"]["type"] == "Polygon"
    outer, hole = by_name["North Valleys"]["coordinates"]
    assert outer == _square(-119.80, 39.53, 0.01) and hole == _square(-119.797, 39.533, 0.002)
    assert by_name["Islands"]["type"] == "MultiPolygon"
    assert by_name["Islands"]["coordinates"] == [[_square(-119.75, 39.50, 0.005)],
                                                 [_square(-119.74, 39.50, 0.005)]]


@pytest.mark.parametrize(("collection", "says"), [
    (b"{not json", "not JSON"),
    (b"\xff\xfe", "not JSON"),
    ([NORTH], "not a GeoJSON FeatureCollection"),
    ({"type": "FeatureCollection", "features": [NORTH, {**NORTH, "properties": {}}]},
     'feature 1: needs a "name" property'),
    ({"type": "FeatureCollection", "features": [NORTH, NORTH]},
     "feature 1 ('North Valleys'): the name 'North Valleys' is another feature's too"),
    ({"type": "FeatureCollection", "features": [_feature("Line", {
        "type": "LineString", "coordinates": [[0, 0], [1, 1]]})]},
     "feature 0 ('Line'): its geometry must be a Polygon or a MultiPolygon"),
    ({"type": "FeatureCollection", "features": [_feature("Far", {
        "type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 95], [0, 0]]]})]},
     "feature 0 ('Far'): polygon.2.1"),
    ({"type": "FeatureCollection", "features": [_feature("Thin", {
        "type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 0]]]})]},
     "feature 0 ('Thin'): polygon"),
    ({"type": "FeatureCollection", "features": [_feature("Flag", {
        "type": "Polygon", "coordinates": [[[True, 0], [1, 0], [1, 1], [0, 0]]]})]},
     "feature 0 ('Flag'): a position is [lon, lat]"),
    ({"type": "FeatureCollection", "features": [_feature("Sparks", NORTH["geometry"])]},
     "districts ['Sparks'] are in the city file's [[map.district]] too"),
    (b" " * 5_000_001, "more than the 5000000 a districts file may hold"),
])
def test_a_bad_districts_file_is_a_city_error_naming_the_file_and_the_feature(
        tmp_path: Path, collection: Any, says: str) -> None:
    """Each mistake stops the city with a CityError that names the districts file, the
    city file that names it, and what is wrong (the feature by index and name)."""
    path = _reno_with_districts(tmp_path, collection)
    with pytest.raises(CityError) as exc:
        load_city(path)
    message = str(exc.value)
    assert message.startswith(str(tmp_path / "areas" / "more.geojson"))
    assert f"[map] districts of {path}" in message
    assert says in message, message


def test_a_missing_districts_file_is_a_city_error(tmp_path: Path) -> None:
    """A districts file that is not there is named, not an OSError from deep inside."""
    path = _reno_with_districts(tmp_path, {"type": "FeatureCollection", "features": []})
    (tmp_path / "areas" / "more.geojson").unlink()
    with pytest.raises(CityError, match=r"more\.geojson.*cannot read it"):
        load_city(path)


_positions = st.lists(st.floats(-200, 200) | st.integers(-200, 200) | st.booleans()
                      | st.none() | st.text(max_size=3), min_size=0, max_size=4)
_rings = st.lists(_positions | _values, max_size=6)
_geometries = st.fixed_dictionaries({
    "type": st.sampled_from(["Polygon", "MultiPolygon", "Point", "polygon"]) | _values,
    "coordinates": st.lists(_rings, max_size=3) | st.lists(st.lists(_rings, max_size=3),
                                                          max_size=3) | _values})
_features = st.fixed_dictionaries(
    {"type": st.sampled_from(["Feature"]) | _values,
     "properties": st.fixed_dictionaries({"name": st.text(max_size=90) | _values}) | _values,
     "geometry": _geometries | _values})
_collections = st.fixed_dictionaries(
    {"type": st.sampled_from(["FeatureCollection"]) | _values,
     "features": st.lists(_features | _values, max_size=4) | _values})


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200) | _values.map(lambda v: json.dumps(v).encode())
       | _collections.map(lambda v: json.dumps(v).encode()))
def test_garbage_geojson_is_a_city_error_never_another_exception(data: bytes) -> None:
    """Bytes, JSON and near-GeoJSON of every shape: districts, or a CityError naming the
    file; and what parses is a valid district (at least three points, in range)."""
    try:
        districts = parse_districts(data, "more.geojson")
    except CityError as exc:
        assert str(exc).startswith("more.geojson: ")
        return
    for d in districts:
        assert len(d.polygon) >= 3 and all(-180 <= lon <= 180 and -90 <= lat <= 90
                                           for lon, lat in d.polygon)
