"""Core: travel times on a real road network (an OpenStreetMap extract).

:func:`parse_osm` reads OSM XML (highway ways, ``maxspeed`` where tagged, a
default speed per road class otherwise, ``oneway``) into a
:class:`RoadNetwork`: a sparse matrix of travel times between nodes. Shortest
paths come from scipy's compiled Dijkstra (``scipy.sparse.csgraph``), picked by
measurement over a plain heapq Dijkstra (``bench/dispatch.py`` prints both).

For ETAs to one incident, one Dijkstra on the reversed graph from the
incident's nearest node gives every node's time *to* the incident; each unit
then adds the short straight leg from where it is to its nearest node.
Emergency vehicles are assumed to reach the posted speed (a factor applies).
"""

from __future__ import annotations

import itertools
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

EARTH_RADIUS_M = 6_371_008.8
# km/h where a way has no maxspeed tag, by OSM highway class.
CLASS_SPEED_KMH: dict[str, float] = {
    "motorway": 100, "motorway_link": 60, "trunk": 80, "trunk_link": 50, "primary": 60,
    "primary_link": 40, "secondary": 50, "secondary_link": 40, "tertiary": 40,
    "tertiary_link": 30, "unclassified": 35, "residential": 30, "living_street": 15,
    "service": 20, "road": 30,
}
DRIVABLE = frozenset(CLASS_SPEED_KMH)
OFF_NETWORK_KMH = 15.0  # from a point to the nearest node: a slow leg
_SPEED = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(mph|km/h|kmh)?\s*$")


def parse_speed(tag: str | None) -> float | None:
    """A ``maxspeed`` tag in km/h: ``"35 mph"`` -> 56.3; None if unusable."""
    if not tag:
        return None
    found = _SPEED.match(tag)
    if not found:
        return None
    value = float(found.group(1))
    return value * 1.609344 if found.group(2) == "mph" else value


class RoadNetwork:
    """Nodes and directed travel-time edges; ask it for times to a point."""

    def __init__(self, lat: NDArray[np.float64], lon: NDArray[np.float64],
                 edges: Iterable[tuple[int, int, float]], *, speed_factor: float = 1.0) -> None:
        self.lat, self.lon = lat, lon
        rows, cols, secs = [], [], []
        for a, b, s in edges:
            rows.append(a)
            cols.append(b)
            secs.append(s / speed_factor)
        # scipy's graph and tree modules take half a second to import: only a city with a
        # road network pays it, when the network is read
        from scipy.sparse import csr_matrix
        from scipy.spatial import cKDTree

        n = len(lat)
        # reversed (b -> a), so one Dijkstra from the incident gives times *to* it
        self.reverse = csr_matrix((secs, (cols, rows)), shape=(n, n))
        self.edges = len(secs)
        self._xyz = _xyz(lat, lon)
        self._tree = cKDTree(self._xyz)

    def __len__(self) -> int:
        return len(self.lat)

    def nearest(self, lat: NDArray[np.float64] | float,
                lon: NDArray[np.float64] | float) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
        """Nearest node of each point and the straight distance to it (m)."""
        chord, node = self._tree.query(_xyz(np.atleast_1d(lat), np.atleast_1d(lon)))
        return node, 2 * EARTH_RADIUS_M * np.arcsin(np.minimum(chord / 2, 1.0))

    def times_to(self, lat: float, lon: float) -> NDArray[np.float64]:
        """Seconds from every node to the point (inf where no road leads there)."""
        from scipy.sparse.csgraph import dijkstra

        node, leg = self.nearest(lat, lon)
        times: NDArray[np.float64] = dijkstra(self.reverse, indices=int(node[0]))
        to_point: NDArray[np.float64] = times + leg[0] / (OFF_NETWORK_KMH / 3.6)
        return to_point

    def eta_from(self, times: NDArray[np.float64], lat: NDArray[np.float64],
                 lon: NDArray[np.float64]) -> NDArray[np.float64]:
        """Seconds from each point (degrees) to the target ``times`` were computed for."""
        node, leg = self.nearest(lat, lon)
        eta: NDArray[np.float64] = times[node] + leg / (OFF_NETWORK_KMH / 3.6)
        return eta


def _xyz(lat: NDArray[np.float64], lon: NDArray[np.float64]) -> NDArray[np.float64]:
    """Unit-sphere coordinates, so nearest-neighbour search is by true distance."""
    la, lo = np.radians(lat), np.radians(lon)
    return np.column_stack((np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)))


def _metres(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    h = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * \
        math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


OsmWay = tuple[dict[str, str], list[str]]  # a way's tags and its node ids, in order
# a relation's tags and its members: (type, ref, role), in order
OsmRelation = tuple[dict[str, str], list[tuple[str, str, str]]]


@dataclass(frozen=True)
class OsmExtract:
    """An OSM XML extract: nodes (id -> (lat, lon)), ways (tags, node ids of known
    nodes) and their ids by index, and relations (tags, members)."""

    coords: dict[str, tuple[float, float]]
    ways: list[OsmWay]
    way_ids: list[str]
    relations: list[OsmRelation]


def read_osm_extract(xml: bytes | str) -> OsmExtract:
    """The nodes, ways and relations of OSM XML (the offline map reads relations for
    multipolygon water, command.basemap). Raises ET.ParseError (a SyntaxError) on bad
    XML and KeyError on an element without its required attributes."""
    root = ET.fromstring(xml)
    coords: dict[str, tuple[float, float]] = {}
    for node in root.iter("node"):
        coords[node.attrib["id"]] = (float(node.attrib["lat"]), float(node.attrib["lon"]))
    ways: list[OsmWay] = []
    way_ids: list[str] = []
    for way in root.iter("way"):
        tags = {t.attrib["k"]: t.attrib["v"] for t in way.iter("tag")}
        refs = [nd.attrib["ref"] for nd in way.iter("nd") if nd.attrib["ref"] in coords]
        ways.append((tags, refs))
        way_ids.append(way.attrib.get("id", ""))
    relations: list[OsmRelation] = []
    for rel in root.iter("relation"):
        tags = {t.attrib["k"]: t.attrib["v"] for t in rel.iter("tag")}
        members = [(m.attrib.get("type", ""), m.attrib.get("ref", ""), m.attrib.get("role", ""))
                   for m in rel.iter("member")]
        relations.append((tags, members))
    return OsmExtract(coords, ways, way_ids, relations)


def read_osm(xml: bytes | str) -> tuple[dict[str, tuple[float, float]], list[OsmWay]]:
    """OSM XML's nodes (id -> (lat, lon)) and ways (tags, node ids of known nodes).

    The road network reads it here, and so does the offline map (command.basemap)."""
    extract = read_osm_extract(xml)
    return extract.coords, extract.ways


def parse_osm(xml: bytes | str, *, speed_factor: float = 1.0) -> RoadNetwork:
    """Build a network from OSM XML: drivable highway ways only."""
    coords, ways = read_osm(xml)
    index: dict[str, int] = {}
    edges: list[tuple[int, int, float]] = []
    for tags, refs in ways:
        kind = tags.get("highway")
        if kind not in DRIVABLE:
            continue
        kmh = parse_speed(tags.get("maxspeed")) or CLASS_SPEED_KMH[kind]
        oneway = tags.get("oneway") in ("yes", "true", "1") or kind == "motorway"
        for a, b in itertools.pairwise(refs):
            ia = index.setdefault(a, len(index))
            ib = index.setdefault(b, len(index))
            secs = _metres(*coords[a], *coords[b]) / (kmh / 3.6)
            edges.append((ia, ib, secs))
            if not oneway:
                edges.append((ib, ia, secs))
    if not index:
        raise ValueError("no drivable highway ways in this OSM extract")
    order = sorted(index, key=index.__getitem__)
    lat = np.array([coords[n][0] for n in order])
    lon = np.array([coords[n][1] for n in order])
    return RoadNetwork(lat, lon, edges, speed_factor=speed_factor)
