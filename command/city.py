"""Core: the city file (agencies' stations and units), parsed and validated.

``parse_city`` reads the TOML text of a city (the demo is
``sim/data/zhengzhou.toml``) into :class:`City`, or raises :class:`CityError`
naming the line of the station at fault. The shell registers the units it
does not know yet (``ecc up`` and ``ecc serve`` do, at start).
"""

from __future__ import annotations

import re
import tomllib
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

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
    unknown = set(doc) - {"name", "station", "road_network", "gazetteer", *ADAPTER_SECTIONS}
    if unknown:
        raise CityError(origin, None, f"unknown keys {sorted(unknown)}; a city has name, "
                                      "road_network, [gazetteer], [[station]] entries and "
                                      "the adapters' "
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
    try:
        places = GazetteerFiles.model_validate(doc.get("gazetteer", {}))
    except ValidationError as exc:
        raise CityError(origin, None, f"[gazetteer]: {exc.errors(include_url=False)[0]['msg']}"
                                      " (it has osm and codes: paths of files)") from exc
    return City(name=str(doc.get("name", "city")), stations=tuple(stations), road_network=roads,
                gazetteer=places)
