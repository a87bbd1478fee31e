"""Core: the place resolver. Text in, ranked candidates (or a reason) out.

A :class:`Gazetteer` holds what the city knows about its places, read by
:mod:`adapters.gazetteer_data` from the city's OpenStreetMap extract and code list:

* streets by normalised name (:func:`normalise`: case, punctuation and the common
  abbreviations, ``St``/``Street``, ``Ave``/``Avenue``, ``N``/``North`` ...), each with
  its geometry;
* addresses (``addr:housenumber`` + ``addr:street``) and ``addr:interpolation`` ways;
* named places (``name=`` on anything that is not a road: schools, hospitals, parks);
* areas given by codes (SAME, FIPS, UGC, GB2260) or by name (the city's districts).

:meth:`Gazetteer.lookup` reads free text forgivingly (a unit number, a trailing
town or post code, ``&``/``and``/``at`` between two streets) and returns a
:class:`Resolution`: candidates best first, each with a score in (0, 1], what
matched and how far off it may be; or no candidates and the reason. A house number
OSM does not have is interpolated between the street's known numbers (or along an
``addr:interpolation`` way), then snapped onto the street; on a street with no known
numbers at all the street itself is the answer, its accuracy half its length.

Pure: no I/O, no clock, never raises on text (:class:`Resolution` says what failed).
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import shapely
from shapely.geometry import LineString, MultiLineString, MultiPoint, Point
from shapely.geometry.base import BaseGeometry
from shapely.ops import nearest_points

MAX_QUERY = 500  # characters of free text read; the rest is ignored
M_PER_DEG = 111_195.0

# Words with one meaning, however they are written (the USPS street suffix and
# directional abbreviations that OSM's full names spell out).
ABBREVIATIONS = {
    "st": "street", "str": "street", "ave": "avenue", "av": "avenue", "blvd": "boulevard",
    "bl": "boulevard", "rd": "road", "dr": "drive", "ln": "lane", "pkwy": "parkway",
    "pky": "parkway", "hwy": "highway", "ct": "court", "cir": "circle", "pl": "place",
    "wy": "way", "ter": "terrace", "trl": "trail", "sq": "square", "fwy": "freeway",
    "expy": "expressway", "plz": "plaza", "aly": "alley", "cres": "crescent", "mt": "mount",
    "n": "north", "s": "south", "e": "east", "w": "west", "ne": "northeast",
    "nw": "northwest", "se": "southeast", "sw": "southwest", "ft": "fort", "hosp": "hospital",
    "sch": "school", "elem": "elementary", "univ": "university",
    "first": "1st", "second": "2nd", "third": "3rd", "fourth": "4th", "fifth": "5th",
    "sixth": "6th", "seventh": "7th", "eighth": "8th", "ninth": "9th", "tenth": "10th",
}
DIRECTIONS = frozenset({"north", "south", "east", "west", "northeast", "northwest",
                        "southeast", "southwest"})
STREET_TYPES = frozenset({
    "street", "avenue", "boulevard", "road", "drive", "lane", "parkway", "highway", "court",
    "circle", "place", "way", "terrace", "trail", "square", "freeway", "expressway", "plaza",
    "alley", "crescent", "loop"})
_UNIT = re.compile(r"\b(?:apt|apartment|unit|suite|ste|flat|room|rm|fl|floor|bldg|building)"
                   r"\.?\s*#?\s*[\w-]+|#\s*[\w-]+", re.IGNORECASE)
_HOUSE = re.compile(r"^\s*(\d{1,6})(?:\s*-?\s*([a-z]|\d/\d))?\b\s*(.*)$", re.IGNORECASE)
_JOIN = re.compile(r"\s+(?:and|at)\s+|\s*[&@/]\s*", re.IGNORECASE)
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_ZIP = re.compile(r"^\d{5}(?:-\d{4})?$")


def normalise(text: str) -> str:
    """A name as a lookup key: lower case, punctuation gone, abbreviations spelt out
    (``"E. 2nd St."`` -> ``"east 2nd street"``)."""
    return " ".join(ABBREVIATIONS.get(w, w) for w in _WORD.findall(text.casefold()))


def base_of(key: str) -> str:
    """A key without its leading direction and trailing street type (``east 2nd street``
    -> ``2nd``): what a caller who leaves them off still says."""
    words = key.split()
    if len(words) > 1 and words[0] in DIRECTIONS:
        words = words[1:]
    if len(words) > 1 and words[-1] in STREET_TYPES:
        words = words[:-1]
    return " ".join(words)


@dataclass(frozen=True)
class Candidate:
    """One answer: a point, how sure (``score``, 1 is an exact address), what matched
    (``address``, ``interpolated``, ``street``, ``intersection``, ``place``, ``area``,
    ``code``), a label to show and how far off it may be."""

    lat: float
    lon: float
    score: float
    matched: str
    label: str
    accuracy_m: float | None = None
    polygon: tuple[tuple[float, float], ...] | None = None  # (lat, lon), for the map


@dataclass(frozen=True)
class Resolution:
    """What a lookup found for ``text``: candidates best first, or ``reason`` why none."""

    text: str
    candidates: tuple[Candidate, ...] = ()
    reason: str | None = None

    @property
    def best(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None


@dataclass(frozen=True)
class Street:
    name: str  # as OSM spells it
    key: str
    lines: tuple[tuple[tuple[float, float], ...], ...]  # each way's (lat, lon) points


@dataclass(frozen=True)
class Address:
    number: int
    suffix: str
    street_key: str
    lat: float
    lon: float


@dataclass(frozen=True)
class Interpolation:
    """An OSM ``addr:interpolation`` way: numbers from ``first`` to ``last`` along it."""

    street_key: str
    first: int
    last: int
    step: int  # 2 for odd/even, 1 for all
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class NamedPlace:
    name: str
    key: str
    kind: str
    lat: float
    lon: float


@dataclass(frozen=True)
class CodeArea:
    """An area a code names (``scheme`` SAME, FIPS, UGC, GB2260, or ``district``): its
    point and/or polygon of (lat, lon)."""

    scheme: str
    code: str
    name: str
    lat: float
    lon: float
    polygon: tuple[tuple[float, float], ...] | None = None


# The valueName a CAP <geocode> uses, to the code list's scheme.
SCHEMES = {"same": "SAME", "fips": "FIPS", "fips6": "FIPS", "fips5": "FIPS", "ugc": "UGC",
           "gb2260": "GB2260", "gb/t2260": "GB2260", "gbt2260": "GB2260",
           "gb/t 2260": "GB2260", "adcode": "GB2260", "行政区划代码": "GB2260",
           "district": "district"}


def scheme_of(value_name: str) -> str | None:
    """The code list's scheme for a CAP ``<valueName>``; None for one it does not hold."""
    return SCHEMES.get(value_name.strip().casefold())


def _metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    dlat = (a[0] - b[0]) * M_PER_DEG
    dlon = (a[1] - b[1]) * M_PER_DEG * math.cos(math.radians((a[0] + b[0]) / 2))
    return math.hypot(dlat, dlon)


def _line(points: Sequence[tuple[float, float]]) -> LineString:
    return LineString([(lon, lat) for lat, lon in points])


@dataclass
class Gazetteer:
    """The city's places, indexed for :meth:`lookup`. ``centre`` is where a signal whose
    place is unknown is shown (it is never fused on: docs/adapters.md, placement)."""

    centre: tuple[float, float]
    streets: Sequence[Street] = ()
    addresses: Sequence[Address] = ()
    interpolations: Sequence[Interpolation] = ()
    places: Sequence[NamedPlace] = ()
    codes: Sequence[CodeArea] = ()
    _streets: dict[str, list[Street]] = field(init=False, default_factory=dict)
    _bases: dict[str, list[str]] = field(init=False, default_factory=dict)
    _shapes: dict[str, BaseGeometry] = field(init=False, default_factory=dict)
    _numbers: dict[str, list[Address]] = field(init=False, default_factory=dict)
    _ways: dict[str, list[Interpolation]] = field(init=False, default_factory=dict)
    _places: dict[str, list[NamedPlace]] = field(init=False, default_factory=dict)
    _codes: dict[tuple[str, str], CodeArea] = field(init=False, default_factory=dict)
    _names: dict[str, list[CodeArea]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        for s in self.streets:
            self._streets.setdefault(s.key, []).append(s)
        for key, parts in self._streets.items():
            self._bases.setdefault(base_of(key), []).append(key)
            lines = [_line(p) for s in parts for p in s.lines if len(p) >= 2]
            self._shapes[key] = MultiLineString(lines) if lines else MultiPoint(
                [(lon, lat) for s in parts for p in s.lines for lat, lon in p])
        for a in self.addresses:
            self._numbers.setdefault(a.street_key, []).append(a)
        for numbers in self._numbers.values():
            numbers.sort(key=lambda a: (a.number, a.suffix))
        for w in self.interpolations:
            self._ways.setdefault(w.street_key, []).append(w)
        for p in self.places:
            self._places.setdefault(p.key, []).append(p)
        for c in self.codes:
            self._codes[(c.scheme, c.code)] = c
            self._names.setdefault(normalise(c.name), []).append(c)

    # --- codes -------------------------------------------------------------------------

    def code(self, scheme: str, code: str) -> tuple[CodeArea, str] | None:
        """The area ``code`` of ``scheme`` names, and how it was found (``exact``, or the
        nearest enclosing code: SAME's county for a part of it, FIPS without its leading
        0, a GB2260 prefecture or province for a county the list lacks); None if none."""
        code = code.strip().upper()
        tries = [(scheme, code, "exact")]
        if scheme == "SAME" and len(code) == 6:  # PSSCCC: P a part of county SSCCC
            tries += [("SAME", "0" + code[1:], "the whole county"),
                      ("FIPS", code[1:], "its county's FIPS code")]
        if scheme == "FIPS":
            tries += [("FIPS", code[1:], "exact") if len(code) == 6 and code[0] == "0"
                      else ("FIPS", "0" + code, "exact"),
                      ("SAME", code.zfill(6), "its SAME code")]
        if scheme == "GB2260" and len(code) >= 6 and code.isdigit():
            six = code[:6]
            tries += [("GB2260", six, "exact"), ("GB2260", six[:4] + "00", "its prefecture"),
                      ("GB2260", six[:2] + "0000", "its province")]
        for s, c, how in tries:
            found = self._codes.get((s, c))
            if found is not None:
                return found, how
        return None

    # --- free text -----------------------------------------------------------------------

    def lookup(self, text: str, limit: int = 5) -> Resolution:
        """Ranked candidates for free text (an address, an intersection, a place or area
        name), or a reason. Never raises."""
        said = " ".join(str(text)[:MAX_QUERY].split())
        if not said:
            return Resolution(said, reason="no address given")
        cleaned = _UNIT.sub(" ", said)
        found: list[Candidate] = []
        parts = [p for p in _JOIN.split(cleaned.split(",")[0]) if p.strip()]
        if len(parts) == 2:
            found += self._intersection(parts[0], parts[1])
        segments = [s for s in cleaned.split(",") if s.strip()] or [cleaned]
        for n, segment in enumerate(segments[:3]):
            # a later segment is more often the town or region than the place
            weight = 1.0 if n == 0 else 0.6
            found += [replace(c, score=round(c.score * weight, 3))
                      for c in [*self._address(segment), *self._named(segment)]]
        best: dict[tuple[str, int, int], Candidate] = {}
        for c in found:
            key = (c.label, round(c.lat * 1e5), round(c.lon * 1e5))
            if key not in best or best[key].score < c.score:
                best[key] = c
        ranked = sorted(best.values(), key=lambda c: (-c.score, c.label))[:max(1, limit)]
        if not ranked:
            return Resolution(said, reason=f"no street, place or area of the city matches "
                                           f"{said[:120]!r}")
        return Resolution(said, tuple(ranked))

    def _keys(self, words: str) -> list[tuple[str, float]]:
        """Street keys that ``words`` may name, with how well: exact 1, without its
        direction or type 0.85, a close spelling up to 0.7."""
        key = normalise(words)
        if not key:
            return []
        out: dict[str, float] = {}
        if key in self._streets:
            out[key] = 1.0
        base = base_of(key)
        for k in self._bases.get(base, ()):
            out.setdefault(k, 0.85 if base != key else 0.8)
        if not out and len(base) >= 3:
            for k in difflib.get_close_matches(base, list(self._bases), n=3, cutoff=0.8):
                ratio = difflib.SequenceMatcher(None, base, k).ratio()
                for full in self._bases[k]:
                    out.setdefault(full, round(0.7 * ratio, 3))
        return sorted(out.items(), key=lambda kv: -kv[1])[:4]

    def _address(self, segment: str) -> list[Candidate]:
        house = _HOUSE.match(segment)
        number, suffix, rest = (int(house.group(1)), (house.group(2) or "").lower(),
                                house.group(3)) if house else (None, "", segment)
        words = rest.split()
        # "… Street Reno NV 89502": the trailing words that are not the street fall away
        for end in range(len(words), 0, -1):
            if _ZIP.match(words[end - 1]):
                continue
            keys = self._keys(" ".join(words[:end]))
            if keys:
                trimmed = 0.95 if end < len(words) and not all(
                    _ZIP.match(w) for w in words[end:]) else 1.0
                return [c for key, score in keys
                        for c in self._on_street(key, number, suffix, score * trimmed)]
        return []

    def _on_street(self, key: str, number: int | None, suffix: str,
                   score: float) -> list[Candidate]:
        name = self._streets[key][0].name
        shape = self._shapes[key]
        if number is None:
            return [self._street(key, name, shape, score)]
        for a in self._numbers.get(key, ()):
            if a.number == number and (a.suffix == suffix or not suffix):
                return [Candidate(a.lat, a.lon, score, "address",
                                  f"{number}{a.suffix.upper()} {name}", 10.0)]
        for w in self._ways.get(key, ()):
            low, high = sorted((w.first, w.last))
            if low <= number <= high and (number - w.first) % w.step == 0 and len(w.points) > 1:
                line = _line(w.points)
                at = line.interpolate((number - w.first) / (w.last - w.first or 1),
                                      normalized=True)
                return [Candidate(at.y, at.x, score * 0.95, "interpolated",
                                  f"{number} {name} (OSM interpolation)", 25.0)]
        numbers = self._numbers.get(key, [])
        same_side = [a for a in numbers if a.number % 2 == number % 2] or numbers
        below = [a for a in same_side if a.number < number]
        above = [a for a in same_side if a.number > number]
        if below and above:
            a, b = below[-1], above[0]
            t = (number - a.number) / (b.number - a.number)
            guess = (a.lat + t * (b.lat - a.lat), a.lon + t * (b.lon - a.lon))
            on = nearest_points(shape, Point(guess[1], guess[0]))[0]
            span = _metres((a.lat, a.lon), (b.lat, b.lon))
            return [Candidate(on.y, on.x, score * 0.9, "interpolated",
                              f"{number} {name} (between {a.number} and {b.number})",
                              round(max(15.0, span / 4), 1))]
        near = (below[-1:] or above[:1])
        if near:
            a = near[0]
            return [Candidate(a.lat, a.lon, score * 0.7, "street",
                              f"{number} {name} (nearest known number {a.number})", 300.0)]
        street = self._street(key, name, shape, score * 0.75)
        return [Candidate(street.lat, street.lon, street.score, "street",
                          f"{number} {name} (no house numbers on the map: the street)",
                          street.accuracy_m)]

    def _street(self, key: str, name: str, shape: BaseGeometry, score: float) -> Candidate:
        """The street as a whole: the point of its geometry nearest its middle."""
        minx, miny, maxx, maxy = shape.bounds
        mid = nearest_points(shape, Point((minx + maxx) / 2, (miny + maxy) / 2))[0]
        half = _metres((miny, minx), (maxy, maxx)) / 2
        return Candidate(mid.y, mid.x, score, "street", name, round(max(half, 25.0), 1))

    def _intersection(self, one: str, two: str) -> list[Candidate]:
        out = []
        for k1, s1 in self._keys(one)[:2]:
            for k2, s2 in self._keys(two)[:2]:
                if k1 == k2:
                    continue
                a, b = self._shapes[k1], self._shapes[k2]
                meet = a.intersection(b)
                if meet.is_empty:
                    p, q = nearest_points(a, b)
                    if _metres((p.y, p.x), (q.y, q.x)) > 40:
                        continue
                    point = Point((p.x + q.x) / 2, (p.y + q.y) / 2)
                else:
                    first = shapely.get_geometry(meet, 0)
                    point = meet if isinstance(meet, Point) else \
                        (first or meet).representative_point()
                names = f"{self._streets[k1][0].name} & {self._streets[k2][0].name}"
                out.append(Candidate(point.y, point.x, round(min(s1, s2) * 0.98, 3),
                                     "intersection", names, 30.0))
        return out

    def _named(self, segment: str) -> list[Candidate]:
        key = normalise(segment)
        if not key:
            return []
        out = [Candidate(p.lat, p.lon, 0.97, "place", f"{p.name} ({p.kind})", 50.0)
               for p in self._places.get(key, ())]
        out += [Candidate(c.lat, c.lon, 0.6, "area", f"{c.name} ({c.scheme} {c.code})",
                          None, c.polygon) for c in self._names.get(key, ())]
        if not out and len(key) >= 4:
            for k in difflib.get_close_matches(key, list(self._places), n=2, cutoff=0.85):
                out += [Candidate(p.lat, p.lon, 0.6, "place", f"{p.name} ({p.kind})", 50.0)
                        for p in self._places[k]]
        return out


def centroid(points: Iterable[tuple[float, float]]) -> tuple[float, float]:
    """The centroid of a ring of (lat, lon) (its points' mean when it encloses nothing)."""
    ring = list(points)
    shape = shapely.Polygon([(lon, lat) for lat, lon in ring]) if len(ring) >= 3 else None
    if shape is None or shape.area <= 0:
        return (sum(p[0] for p in ring) / len(ring), sum(p[1] for p in ring) / len(ring))
    c = shape.centroid
    return c.y, c.x
