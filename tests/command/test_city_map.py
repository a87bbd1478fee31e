"""The city file's [map] table: what the console's map shows (docs/maps.md), and every
kind of garbage in it refused with a CityError that names the file and the table."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from command.basemap import map_site
from command.city import CityError, parse_city
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
