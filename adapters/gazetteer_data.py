"""Core: the gazetteer's data, read from text (the shell reads the files).

:func:`parse_osm_places` reads an OpenStreetMap extract (OSM XML, the same file as the
city's ``road_network``) into streets (named ``highway`` ways), addresses
(``addr:housenumber`` + ``addr:street`` on nodes, and on ways at their centroid),
``addr:interpolation`` ways and named places (``name=`` on anything that is not a
road). :func:`parse_codes` reads the city's code list, a TOML file beside the city
file (docs/maps.md)::

    [[code]]
    scheme = "FIPS"            # SAME, FIPS, UGC, GB2260 or district
    code = "32031"
    name = "Washoe County"
    point = [39.53, -119.76]   # (lat, lon); without it, the polygon's centroid
    polygon = [[39.50, -119.80], [39.54, -119.80], [39.54, -119.71], [39.50, -119.71]]

Both raise :class:`GazetteerError` naming the entry at fault.
"""

from __future__ import annotations

import tomllib
import xml.etree.ElementTree as ET
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from adapters.gazetteer import (
    Address,
    CodeArea,
    Interpolation,
    NamedPlace,
    Street,
    centroid,
    normalise,
)

MAX_POLYGON_POINTS = 10_000  # a code list's polygon; simplify larger ones before listing them
# the kinds of named things a caller says (amenity=hospital, leisure=park, ...)
PLACE_TAGS = ("amenity", "leisure", "shop", "tourism", "building", "healthcare", "office",
              "public_transport", "railway", "landuse", "place", "historic", "emergency")


class GazetteerError(ValueError):
    """Gazetteer data that cannot be read; the message names the entry."""


def parse_osm_places(xml: bytes | str) -> tuple[list[Street], list[Address],
                                                list[Interpolation], list[NamedPlace]]:
    """Streets, addresses, interpolation ways and named places of an OSM XML extract."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise GazetteerError(f"not OSM XML: {exc}") from exc
    nodes: dict[str, tuple[float, float]] = {}
    node_addr: dict[str, tuple[str, str]] = {}
    streets: list[Street] = []
    addresses: list[Address] = []
    ways: list[Interpolation] = []
    places: list[NamedPlace] = []
    for el in root.iter("node"):
        try:
            point = (float(el.get("lat", "")), float(el.get("lon", "")))
        except ValueError:
            continue
        nodes[el.get("id", "")] = point
        tags = {t.get("k", ""): t.get("v", "") for t in el.iter("tag")}
        if tags:
            _tagged(tags, [point], addresses, places, node_addr, el.get("id", ""))
    for el in root.iter("way"):
        tags = {t.get("k", ""): t.get("v", "") for t in el.iter("tag")}
        refs = [nd.get("ref", "") for nd in el.iter("nd")]
        points = [nodes[r] for r in refs if r in nodes]
        if not points or not tags:
            continue
        if "highway" in tags and tags.get("name"):
            streets.append(Street(tags["name"], normalise(tags["name"]), (tuple(points),)))
            continue
        if "addr:interpolation" in tags:
            ends = [node_addr.get(refs[0]), node_addr.get(refs[-1])]
            if ends[0] and ends[1] and ends[0][0].isdigit() and ends[1][0].isdigit():
                street = tags.get("addr:street") or ends[0][1]
                step = {"odd": 2, "even": 2}.get(tags["addr:interpolation"], 1)
                ways.append(Interpolation(normalise(street), _number(ends[0][0]),
                                          _number(ends[1][0]), step, tuple(points)))
            continue
        _tagged(tags, points, addresses, places, {}, "")
    return streets, addresses, ways, places


def _number(text: str) -> int:
    digits = ""
    for ch in text.strip():
        if not ch.isdigit():
            break
        digits += ch
    return int(digits or 0)


def _tagged(tags: dict[str, str], points: list[tuple[float, float]],
            addresses: list[Address], places: list[NamedPlace],
            node_addr: dict[str, tuple[str, str]], node_id: str) -> None:
    lat, lon = centroid(points) if len(points) > 1 else points[0]
    number, street = tags.get("addr:housenumber", ""), tags.get("addr:street", "")
    if number and street:
        node_addr[node_id] = (number, street)
        for one in number.replace(";", ",").split(","):
            one = one.strip()
            if one[:1].isdigit():
                suffix = one[len(str(_number(one))):].strip(" -").lower()
                addresses.append(Address(_number(one), suffix, normalise(street), lat, lon))
    name = tags.get("name")
    kind = next((f"{k}={tags[k]}" for k in PLACE_TAGS if k in tags), None)
    if name and kind and "highway" not in tags:
        places.append(NamedPlace(name, normalise(name), kind, lat, lon))


Point = tuple[Annotated[float, Field(ge=-90, le=90)], Annotated[float, Field(ge=-180, le=180)]]


class _Code(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    scheme: Literal["SAME", "FIPS", "UGC", "GB2260", "district"]
    code: str = Field(min_length=1, max_length=20, pattern=r"^[A-Za-z0-9]+$")
    name: str = Field(min_length=1, max_length=200)
    point: Point | None = None
    polygon: list[Point] | None = Field(default=None, min_length=3,
                                        max_length=MAX_POLYGON_POINTS)


def parse_codes(text: str, origin: str = "codes.toml") -> list[CodeArea]:
    """The code list's areas; raises :class:`GazetteerError` naming the entry at fault."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise GazetteerError(f"{origin}: not valid TOML: {exc}") from exc
    unknown = set(doc) - {"code"}
    if unknown:
        raise GazetteerError(f"{origin}: unknown keys {sorted(unknown)}; a code list has "
                             "[[code]] entries")
    out: list[CodeArea] = []
    seen: set[tuple[str, str]] = set()
    for i, raw in enumerate(doc.get("code", [])):
        try:
            c = _Code.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                 for e in exc.errors(include_url=False)[:3])
            raise GazetteerError(f"{origin}: [[code]] {i + 1}: {problems}") from exc
        if c.point is None and c.polygon is None:
            raise GazetteerError(f"{origin}: [[code]] {i + 1} ({c.scheme} {c.code}) needs a "
                                 "point or a polygon")
        key = (c.scheme, c.code.upper())
        if key in seen:
            raise GazetteerError(f"{origin}: {c.scheme} {c.code} appears twice")
        seen.add(key)
        ring = tuple((float(a), float(b)) for a, b in c.polygon) if c.polygon else None
        lat, lon = c.point if c.point is not None else centroid(ring or ())
        out.append(CodeArea(c.scheme, c.code.upper(), c.name, float(lat), float(lon), ring))
    return out
