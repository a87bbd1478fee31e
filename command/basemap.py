"""Core: the console's map as data: the offline base layer and what the map is told.

:func:`build_basemap` turns a city's OpenStreetMap extract into a small GeoJSON
base layer for the web console (``ecc map build``): roads grouped by class and
simplified (Douglas-Peucker, in metres), water (closed ways, and ``type=multipolygon``
relations with their holes), administrative boundaries, and
the city file's named districts. :func:`map_site` makes what the gateway serves:
the map's config (``/map.json``: extent, centre, tile layers, districts) and its
GeoJSON layers. No I/O here; the shell reads and writes the files.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from command.city import City, District
from command.roads import OsmExtract, read_osm_extract

# OSM highway class -> the class the map draws (and its simplification tolerance, m).
ROAD_CLASS: dict[str, str] = {
    "motorway": "motorway", "motorway_link": "motorway", "trunk": "motorway",
    "trunk_link": "motorway", "primary": "primary", "primary_link": "primary",
    "secondary": "secondary", "secondary_link": "secondary", "tertiary": "secondary",
    "tertiary_link": "secondary", "unclassified": "minor", "residential": "minor",
    "living_street": "minor", "road": "minor",
}
ROAD_ORDER = ("minor", "secondary", "primary", "motorway")  # drawn bottom to top
TOLERANCE_M: dict[str, float] = {"motorway": 4.0, "primary": 4.0, "secondary": 6.0,
                                 "minor": 8.0, "water": 8.0, "boundary": 10.0}
_WATER_AREA = {("natural", "water"), ("waterway", "riverbank"), ("landuse", "reservoir"),
               ("landuse", "basin")}
_WATERWAY = frozenset({"river", "stream", "canal", "drain"})
DIGITS = 5  # about a metre: enough for a base layer
OSM_ATTRIBUTION = "© OpenStreetMap contributors (ODbL)"

Point = tuple[float, float]  # (lon, lat), GeoJSON's order


def simplify(line: list[Point], tolerance_m: float) -> list[Point]:
    """Douglas-Peucker on a local flat projection: drop points nearer than the tolerance
    to the line through their neighbours; the ends always stay."""
    if len(line) < 3:
        return list(line)
    lat0 = math.radians(sum(p[1] for p in line) / len(line))
    kx, ky = 111_320.0 * math.cos(lat0), 110_540.0
    xy = [(p[0] * kx, p[1] * ky) for p in line]
    keep = [False] * len(line)
    keep[0] = keep[-1] = True
    stack = [(0, len(line) - 1)]
    while stack:
        a, b = stack.pop()
        (ax, ay), (bx, by) = xy[a], xy[b]
        dx, dy = bx - ax, by - ay
        norm = math.hypot(dx, dy)
        far, at = -1.0, -1
        for i in range(a + 1, b):
            px, py = xy[i]
            d = (abs(dy * (px - ax) - dx * (py - ay)) / norm if norm
                 else math.hypot(px - ax, py - ay))
            if d > far:
                far, at = d, i
        if at >= 0 and far > tolerance_m:
            keep[at] = True
            stack += [(a, at), (at, b)]
    return [p for p, k in zip(line, keep, strict=True) if k]


def _rounded(line: list[Point]) -> list[list[float]]:
    out: list[list[float]] = []
    for lon, lat in line:
        p = [round(lon, DIGITS), round(lat, DIGITS)]
        if not out or out[-1] != p:
            out.append(p)
    return out


def _feature(kind: str, geometry: dict[str, Any], **props: Any) -> dict[str, Any]:
    return {"type": "Feature", "properties": {"kind": kind, **props}, "geometry": geometry}


def _closed(ring: tuple[tuple[float, float], ...]) -> list[list[float]]:
    out = [list(p) for p in ring]
    if out[0] != out[-1]:
        out.append(out[0])
    return out


def district_features(districts: tuple[District, ...]) -> list[dict[str, Any]]:
    """The city's districts as GeoJSON polygons (rings closed, holes after their outer
    ring) with their names; the parts of a district of several are one MultiPolygon."""
    parts: dict[str, list[list[list[list[float]]]]] = {}
    for d in districts:
        parts.setdefault(d.name, []).append([_closed(r) for r in (d.polygon, *d.holes)])
    return [_feature("district", {"type": "Polygon", "coordinates": polygons[0]}, name=name)
            if len(polygons) == 1 else
            _feature("district", {"type": "MultiPolygon", "coordinates": polygons}, name=name)
            for name, polygons in parts.items()]


def _is_water(tags: dict[str, str]) -> bool:
    return any(tags.get(k) == v for k, v in _WATER_AREA)


def stitch_rings(parts: list[list[str]]) -> list[list[str]]:
    """Closed rings of node ids from ways that share their ends (either way round), as
    OSM's multipolygon outers and inners are drawn; what cannot be closed is left out."""
    rings = [p for p in parts if len(p) >= 4 and p[0] == p[-1]]
    pending = [list(p) for p in parts if len(p) >= 2 and p[0] != p[-1]]
    while pending:
        ring = pending.pop(0)
        while ring[0] != ring[-1]:
            for i, part in enumerate(pending):
                if part[0] == ring[-1]:
                    ring += part[1:]
                elif part[-1] == ring[-1]:
                    ring += part[-2::-1]
                else:
                    continue
                del pending[i]
                break
            else:
                break  # an open end no other way continues: not a ring
        if ring[0] == ring[-1] and len(ring) >= 4:
            rings.append(ring)
    return rings


def _inside(point: Point, ring: list[Point]) -> bool:
    """Whether a (lon, lat) point is inside a closed ring (even-odd rule)."""
    x, y = point
    inside = False
    for (x1, y1), (x2, y2) in itertools.pairwise(ring):
        if (y1 > y) != (y2 > y) and x < (x2 - x1) * (y - y1) / (y2 - y1) + x1:
            inside = not inside
    return inside


def _water_relations(osm: OsmExtract) -> tuple[list[dict[str, Any]], set[str]]:
    """The water of ``type=multipolygon`` relations: outer ways stitched into rings, each
    with the inner rings inside it as holes; and the ids of the ways they used (so a way
    tagged like its relation is not drawn twice)."""
    by_id = dict(zip(osm.way_ids, (refs for _, refs in osm.ways), strict=True))
    features: list[dict[str, Any]] = []
    used: set[str] = set()
    for tags, members in osm.relations:
        if tags.get("type") != "multipolygon" or not (_is_water(tags) or "water" in tags):
            continue
        roles: dict[str, list[list[str]]] = {"outer": [], "inner": []}
        for kind, ref, role in members:
            if kind == "way" and ref in by_id:
                roles["inner" if role == "inner" else "outer"].append(by_id[ref])
                used.add(ref)

        def rings(parts: list[list[str]]) -> list[list[Point]]:
            return [[(osm.coords[r][1], osm.coords[r][0]) for r in ring]
                    for ring in stitch_rings(parts)]

        inners = rings(roles["inner"])
        polygons = []
        for outer in rings(roles["outer"]):
            holes = [h for h in inners if _inside(h[0], outer)]
            shape = [_rounded(simplify(r, TOLERANCE_M["water"])) for r in [outer, *holes]]
            if len(shape[0]) >= 4:
                polygons.append([r for r in shape if len(r) >= 4])
        if len(polygons) == 1:
            features.append(_feature("water", {"type": "Polygon", "coordinates": polygons[0]}))
        elif polygons:
            features.append(_feature("water", {"type": "MultiPolygon",
                                               "coordinates": polygons}))
    return features, used


def build_basemap(xml: bytes | str, *, districts: tuple[District, ...] = (),
                  name: str = "") -> dict[str, Any]:
    """The offline base layer of an OSM extract, as a GeoJSON FeatureCollection."""
    osm = read_osm_extract(xml)
    coords = osm.coords
    relation_water, in_relations = _water_relations(osm)
    roads: dict[str, list[list[list[float]]]] = {c: [] for c in ROAD_ORDER}
    water_areas: list[list[list[float]]] = []
    waterways: list[list[list[float]]] = []
    boundaries: list[list[list[float]]] = []
    for way_id, (tags, refs) in zip(osm.way_ids, osm.ways, strict=True):
        if len(refs) < 2:
            continue
        line: list[Point] = [(coords[r][1], coords[r][0]) for r in refs]
        road = ROAD_CLASS.get(tags.get("highway", ""))
        closed = refs[0] == refs[-1] and len(refs) >= 4
        if road is not None:
            roads[road].append(_rounded(simplify(line, TOLERANCE_M[road])))
        elif closed and _is_water(tags) and way_id not in in_relations:
            ring = _rounded(simplify(line, TOLERANCE_M["water"]))
            if len(ring) >= 4:
                water_areas.append(ring)
        elif tags.get("waterway") in _WATERWAY:
            waterways.append(_rounded(simplify(line, TOLERANCE_M["water"])))
        elif tags.get("boundary") == "administrative":
            boundaries.append(_rounded(simplify(line, TOLERANCE_M["boundary"])))
    features = district_features(districts)
    features += [_feature("water", {"type": "Polygon", "coordinates": [ring]})
                 for ring in water_areas]
    features += relation_water
    if waterways:
        features.append(_feature("waterway", {"type": "MultiLineString",
                                              "coordinates": waterways}))
    if boundaries:
        features.append(_feature("boundary", {"type": "MultiLineString",
                                              "coordinates": boundaries}))
    for cls in ROAD_ORDER:
        lines = [ln for ln in roads[cls] if len(ln) >= 2]
        if lines:
            features.append(_feature("road", {"type": "MultiLineString", "coordinates": lines},
                                     **{"class": cls}))
    if not any(f["properties"]["kind"] == "road" for f in features):
        raise ValueError("no roads in this OSM extract: nothing to draw a street map from")
    lons = [p[0] for ln in (x for c in roads.values() for x in c) for p in ln]
    lats = [p[1] for ln in (x for c in roads.values() for x in c) for p in ln]
    return {"type": "FeatureCollection",
            "properties": {"name": name, "source": "OpenStreetMap", "attribution": OSM_ATTRIBUTION,
                           "bounds": [min(lats), min(lons), max(lats), max(lons)]},
            "features": features}


def dumps(collection: dict[str, Any]) -> str:
    """Compact GeoJSON: the offline layer is sent to every console."""
    return json.dumps(collection, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class MapSite:
    """What the gateway serves for the map: ``/map.json`` and ``/map/<layer>.geojson``."""

    config: dict[str, Any]
    layers: dict[str, bytes] = field(default_factory=dict)

    @property
    def tile_sources(self) -> tuple[str, ...]:
        """The tile servers' origins, for the page's Content-Security-Policy img-src."""
        out = []
        for t in self.config.get("tiles", []):
            parts = urlsplit(t["url"].replace("{s}.", "sub."))
            host = parts.netloc.replace("sub.", "*.", 1) if "{s}." in t["url"] else parts.netloc
            out.append(f"{parts.scheme}://{host}")
        return tuple(dict.fromkeys(out))


def map_site(city: City, offline: bytes | None = None) -> MapSite:
    """The map of a city: its [map] table (else an extent around its stations), with the
    offline layer's GeoJSON when there is one."""
    south, west, north, east = city.extent()
    spec = city.map
    centre = spec.middle if spec else ((south + north) / 2, (west + east) / 2)
    tiles = [t.model_dump() for t in spec.tiles] if spec else []
    layers = {"offline": offline} if offline is not None else {}
    default = spec.default if spec and spec.default else (
        "offline" if offline is not None else (tiles[0]["name"] if tiles else None))
    if default == "offline" and offline is None:
        default = tiles[0]["name"] if tiles else None
    config = {
        "name": city.name,
        "bounds": [[south, west], [north, east]],
        "centre": list(centre),
        "tiles": tiles,
        "offline": ({"url": "/map/offline.geojson",
                     "attribution": (spec.offline_attribution if spec else "")}
                    if offline is not None else None),
        "default": default,
        "districts": {"type": "FeatureCollection",
                      "features": district_features(spec.district if spec else ())},
    }
    return MapSite(config=config, layers=layers)
