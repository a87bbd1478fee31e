"""Core: the city file (agencies' stations and units), parsed and validated.

``parse_city`` reads the TOML text of a city (the demo is
``sim/data/zhengzhou.toml``) into :class:`City`, or raises :class:`CityError`
naming the line of the station at fault. The shell registers the units it
does not know yet (``ecc up`` and ``ecc serve`` do, at start).

The ``[map]`` table is what the console's map shows (docs/maps.md): the extent,
the base layers (the operator's tile servers, and the offline layer ``ecc map
build`` makes from the road network) and the named districts.
"""

from __future__ import annotations

import json
import re
import tomllib
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from workflows.geo import Location
from workflows.unit import RegisterUnit

_TOKEN = r"^[a-z][a-z0-9_]{0,39}$"
# Sections of the city file that belong to the adapters, which validate them
# themselves: [[camera]] (adapters.video), [[device]] and [sensor_kind.*]
# (adapters.sensor), [[hospital]] (the simulator: where ambulances take patients),
# [area] and [[cap_sender]] (adapters.ingest: the CAP adapter's scope and its senders).
ADAPTER_SECTIONS = frozenset({"camera", "device", "sensor_kind", "video", "hospital",
                              "timezone", "area", "cap_sender"})


class CityError(ValueError):
    def __init__(self, origin: str, line: int | None, message: str) -> None:
        super().__init__(f"{origin}:{line}: {message}" if line else f"{origin}: {message}")
        self.line = line


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class UnitSpec(_Frozen):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,39}$")
    kind: str = Field(pattern=_TOKEN)
    capabilities: tuple[Annotated[str, Field(pattern=_TOKEN)], ...] = ()
    call_sign: str | None = Field(default=None, max_length=40)
    # when the unit is staffed, in the city's local time: around the clock, by day
    # (08:00-20:00) or by night (20:00-08:00); off shift, its crew reports off_duty
    shift: Literal["24h", "day", "night"] = "24h"


class Station(_Frozen):
    id: str = Field(min_length=1, max_length=80)
    agency: str = Field(pattern=_TOKEN)
    district: str = Field(min_length=1, max_length=80)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    units: tuple[UnitSpec, ...] = ()


Lon = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]
Lat = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
_LAYER = r"^[A-Za-z0-9][A-Za-z0-9 _\-]{0,39}$"


class Tiles(_Frozen):
    """The operator's own tile server: an XYZ URL template and what to credit."""

    name: str = Field(pattern=_LAYER)
    url: str = Field(pattern=r"^https?://[^\s\"'<>]+$", max_length=500)
    attribution: str = Field(min_length=1, max_length=300)
    max_zoom: int = Field(default=19, ge=1, le=24)

    @model_validator(mode="after")
    def _template(self) -> Tiles:
        if not all(part in self.url for part in ("{z}", "{x}", "{y}")):
            raise ValueError("url must be a tile template with {z}, {x} and {y}")
        return self


Ring = tuple[tuple[Lon, Lat], ...]


class District(_Frozen):
    """A named area drawn on the map: one ring of [lon, lat] points (GeoJSON's order),
    with holes when it has some. A district of several parts (a GeoJSON MultiPolygon) is
    several entries of one name, drawn as one feature."""

    name: str = Field(min_length=1, max_length=80)
    polygon: Ring = Field(min_length=3, max_length=2000)
    holes: tuple[Annotated[Ring, Field(min_length=3, max_length=2000)], ...] = Field(
        default=(), max_length=50)


class MapSpec(_Frozen):
    """The ``[map]`` table: the extent the console opens on and its layers."""

    south: Lat
    west: Lon
    north: Lat
    east: Lon
    # where the map opens (default: the middle of the extent), as [lat, lon]
    centre: tuple[Lat, Lon] | None = None
    # the offline base layer, a GeoJSON file relative to the city file (ecc map build)
    offline: str | None = Field(default=None, min_length=1, max_length=300)
    # what the offline layer says of itself in the layer control (and its credit)
    offline_attribution: str = Field(default="", max_length=300)
    tiles: tuple[Tiles, ...] = Field(default=(), max_length=10)
    district: tuple[District, ...] = Field(default=(), max_length=500)
    # more districts, from a GeoJSON FeatureCollection relative to the city file (the
    # shell reads it: command.settings.load_city, then parse_districts and with_districts)
    districts: str | None = Field(default=None, min_length=1, max_length=300)
    # the base layer shown first: a tile layer's name, or "offline" (the default when
    # there is an offline layer)
    default: str | None = Field(default=None, pattern=_LAYER)

    @model_validator(mode="after")
    def _extent(self) -> MapSpec:
        if not (self.south < self.north and self.west < self.east):
            raise ValueError("the extent needs south < north and west < east")
        if self.centre is not None and not (self.south <= self.centre[0] <= self.north
                                            and self.west <= self.centre[1] <= self.east):
            raise ValueError("centre must lie inside the extent")
        names = [t.name for t in self.tiles]
        if len(set(names)) != len(names) or "offline" in names:
            raise ValueError("tile layers need distinct names, none of them 'offline'")
        if self.default is not None and self.default not in {*names, "offline"}:
            raise ValueError(f"default {self.default!r} is not one of the layers {names}")
        if self.default == "offline" and self.offline is None:
            raise ValueError("default is 'offline' but no offline layer is named")
        return self

    @property
    def middle(self) -> tuple[float, float]:
        return self.centre or ((self.south + self.north) / 2, (self.west + self.east) / 2)


class GazetteerFiles(_Frozen):
    """The city file's ``[gazetteer]``: where its places come from, relative to the file
    (:mod:`adapters.gazetteer_data`). ``osm`` defaults to the road network."""

    osm: str | None = Field(default=None, min_length=1, max_length=500)
    codes: str | None = Field(default=None, min_length=1, max_length=500)


class City(_Frozen):
    name: str
    stations: tuple[Station, ...]
    # an OpenStreetMap extract (.osm), relative to the city file: ETAs by shortest path
    road_network: str | None = None
    map: MapSpec | None = None

    def extent(self) -> tuple[float, float, float, float]:
        """(south, west, north, east): the [map] table's, else the stations' with a margin."""
        if self.map is not None:
            return self.map.south, self.map.west, self.map.north, self.map.east
        lats = [s.lat for s in self.stations]
        lons = [s.lon for s in self.stations]
        pad_lat = max(0.01, (max(lats) - min(lats)) * 0.1)
        pad_lon = max(0.01, (max(lons) - min(lons)) * 0.1)
        return (max(-90.0, min(lats) - pad_lat), max(-180.0, min(lons) - pad_lon),
                min(90.0, max(lats) + pad_lat), min(180.0, max(lons) + pad_lon))

    gazetteer: GazetteerFiles = GazetteerFiles()

    @property
    def gazetteer_osm(self) -> str | None:
        """The OSM extract the gazetteer reads: ``[gazetteer] osm``, else the road network."""
        return self.gazetteer.osm or self.road_network

    def centre(self) -> tuple[float, float]:
        """The stations' mean point: where a signal of unknown place is shown."""
        return (sum(s.lat for s in self.stations) / len(self.stations),
                sum(s.lon for s in self.stations) / len(self.stations))

    def registrations(self, at: datetime) -> list[RegisterUnit]:
        """A RegisterUnit command for every unit of the city."""
        return [
            RegisterUnit(at=at, by="city file", unit_id=u.id, call_sign=u.call_sign or u.id,
                         agency=s.agency, capabilities=u.capabilities or (u.kind,), kind=u.kind,
                         station=s.id, district=s.district, home=Location(lat=s.lat, lon=s.lon))
            for s in self.stations for u in s.units
        ]


def parse_city(text: str, origin: str = "city.toml") -> City:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"at line (\d+)", str(exc))
        raise CityError(origin, int(found.group(1)) if found else None,
                        f"not valid TOML: {exc}") from exc
    lines = [n for n, line in enumerate(text.splitlines(), 1)
             if re.match(r"^\s*\[\[\s*station\s*\]\]", line)]
    unknown = set(doc) - {"name", "station", "road_network", "map", "gazetteer",
                          *ADAPTER_SECTIONS}
    if unknown:
        raise CityError(origin, None, f"unknown keys {sorted(unknown)}; a city has name, "
                                      "road_network, [map], [gazetteer], [[station]] entries "
                                      "and the adapters' "
                                      f"sections {sorted(ADAPTER_SECTIONS)}")
    stations = []
    seen: set[str] = set()
    station_ids: set[str] = set()
    for i, raw in enumerate(doc.get("station", [])):
        line = lines[i] if i < len(lines) else None
        try:
            station = Station.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                 for e in exc.errors(include_url=False)[:5])
            raise CityError(origin, line, f"[[station]]: {problems}") from exc
        if station.id in station_ids:
            raise CityError(origin, line, f"station {station.id!r} appears twice")
        station_ids.add(station.id)
        for unit in station.units:
            if unit.id in seen:
                raise CityError(origin, line, f"unit {unit.id!r} appears twice")
            seen.add(unit.id)
        stations.append(station)
    if not stations:
        raise CityError(origin, None, "a city needs at least one [[station]]")
    roads = doc.get("road_network")
    if roads is not None and not isinstance(roads, str):
        raise CityError(origin, None, "road_network must be the path of an .osm file")
    spec = _map(doc.get("map"), text, origin)
    try:
        places = GazetteerFiles.model_validate(doc.get("gazetteer", {}))
    except ValidationError as exc:
        raise CityError(origin, None, f"[gazetteer]: {exc.errors(include_url=False)[0]['msg']}"
                                      " (it has osm and codes: paths of files)") from exc
    return City(name=str(doc.get("name", "city")), stations=tuple(stations), road_network=roads,
                map=spec, gazetteer=places)


def _map(raw: Any, text: str, origin: str) -> MapSpec | None:
    if raw is None:
        return None
    found = re.search(r"^\s*\[\s*map\s*\]", text, re.MULTILINE)
    line = text.count("\n", 0, found.start()) + 1 if found else None
    if not isinstance(raw, dict):
        raise CityError(origin, line, "map must be a table: [map] with south, west, north, east")
    try:
        return MapSpec.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'map'}: {e['msg']}"
                             for e in exc.errors(include_url=False)[:5])
        raise CityError(origin, line, f"[map]: {problems}") from exc


DISTRICTS_MAX_BYTES = 5_000_000
DISTRICTS_MAX_FEATURES = 500
_PARTS_MAX = 50


def parse_districts(data: bytes, origin: str) -> tuple[District, ...]:
    """The districts of a GeoJSON FeatureCollection (the city file's ``[map] districts``):
    each feature a Polygon or MultiPolygon with a ``name`` property, held to the limits
    of ``[[map.district]]``. Raises :class:`CityError` naming ``origin`` and the feature
    (its index and name) at fault."""
    if len(data) > DISTRICTS_MAX_BYTES:
        raise CityError(origin, None, f"{len(data)} bytes, more than the "
                                      f"{DISTRICTS_MAX_BYTES} a districts file may hold: "
                                      "simplify the polygons")
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise CityError(origin, None, f"not JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection" \
            or not isinstance(doc.get("features"), list):
        raise CityError(origin, None, "not a GeoJSON FeatureCollection (an object with "
                                      '"type": "FeatureCollection" and "features")')
    features = doc["features"]
    if len(features) > DISTRICTS_MAX_FEATURES:
        raise CityError(origin, None, f"{len(features)} features, more than "
                                      f"{DISTRICTS_MAX_FEATURES} districts")
    out: list[District] = []
    names: set[str] = set()
    for i, feature in enumerate(features):
        props = feature.get("properties") if isinstance(feature, dict) else None
        name = props.get("name") if isinstance(props, dict) else None
        where = f"feature {i}" + (f" ({name!r})" if isinstance(name, str) else "")
        try:
            parts = _district_parts(feature, name)
            if name in names:
                raise ValueError(f"the name {name!r} is another feature's too")
            out += [District.model_validate({"name": name, "polygon": outer, "holes": holes})
                    for outer, *holes in parts]
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'district'}: {e['msg']}"
                                 for e in exc.errors(include_url=False)[:3])
            raise CityError(origin, None, f"{where}: {problems}") from exc
        except ValueError as exc:
            raise CityError(origin, None, f"{where}: {exc}") from exc
        names.add(name)  # type: ignore[arg-type]  # _district_parts checked it is a str
    return tuple(out)


def _district_parts(feature: Any, name: Any) -> list[list[list[tuple[Any, Any]]]]:
    """A feature's polygons, each [outer ring, *holes], rings open (GeoJSON closes them),
    or ValueError saying what is wrong."""
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise ValueError('not a GeoJSON Feature (an object with "type": "Feature")')
    if not isinstance(name, str) or not name.strip():
        raise ValueError('needs a "name" property (a string)')
    geometry = feature.get("geometry")
    kind = geometry.get("type") if isinstance(geometry, dict) else None
    coordinates = geometry.get("coordinates") if isinstance(geometry, dict) else None
    if kind == "Polygon":
        polygons = [coordinates]
    elif kind == "MultiPolygon" and isinstance(coordinates, list):
        polygons = coordinates
        if not 1 <= len(polygons) <= _PARTS_MAX:
            raise ValueError(f"a MultiPolygon of 1 to {_PARTS_MAX} polygons, not "
                             f"{len(polygons)}")
    else:
        raise ValueError("its geometry must be a Polygon or a MultiPolygon")
    parts = []
    for polygon in polygons:
        if not isinstance(polygon, list) or not 1 <= len(polygon) <= _PARTS_MAX + 1:
            raise ValueError("a polygon is a list of rings: the outer one, then its holes")
        parts.append([_ring(ring) for ring in polygon])
    return parts


def _ring(ring: Any) -> list[tuple[Any, Any]]:
    if not isinstance(ring, list):
        raise ValueError("a ring is a list of [lon, lat] positions")
    points = []
    for p in ring:
        if not (isinstance(p, list) and 2 <= len(p) <= 3
                and all(isinstance(x, int | float) and not isinstance(x, bool) for x in p)):
            raise ValueError(f"a position is [lon, lat] (or [lon, lat, height]), not {p!r:.60}")
        points.append((p[0], p[1]))
    if len(points) > 1 and points[0] == points[-1]:
        points.pop()  # GeoJSON closes its rings; a district's ring is closed when drawn
    return points


def with_districts(city: City, more: tuple[District, ...], origin: str) -> City:
    """The city with ``more`` districts (a districts file's) after its inline ones; a name
    in both, or too many in all, is a :class:`CityError` naming ``origin``."""
    if city.map is None:
        return city
    inline = {d.name for d in city.map.district}
    clash = sorted({d.name for d in more} & inline)
    if clash:
        raise CityError(origin, None, f"districts {clash} are in the city file's "
                                      "[[map.district]] too: name each once")
    names = inline | {d.name for d in more}
    if len(names) > DISTRICTS_MAX_FEATURES:
        raise CityError(origin, None, f"{len(names)} districts in all, more than "
                                      f"{DISTRICTS_MAX_FEATURES}")
    spec = city.map.model_copy(update={"district": (*city.map.district, *more)})
    return city.model_copy(update={"map": spec})
