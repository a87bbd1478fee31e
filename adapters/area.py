"""Core: where a command centre acts, and where an alert's area meets it.

An :class:`Area` is a polygon in degrees: the city file's ``[area] polygon``
(``[[lat, lon], ...]``) or, when the file has none, the stations' bounds with
about 30 km around them (:meth:`Area.around`). :func:`shape_of` turns CAP's
``<polygon>`` and ``<circle>`` text into one shapely geometry, and
:meth:`Area.meet` says where that geometry meets the city: a representative
point of the intersection, or ``None`` when it does not meet it at all. A
warning polygon that covers the city but is centred elsewhere therefore meets
it; a circle that only grazes the edge meets it at the graze.

Geometry is planar in (lon, lat) degrees; a circle's radius (km) becomes an
ellipse in degrees at its latitude. Pure: text and numbers in, points out. An
area that crosses the antimeridian is not supported (no city needs one yet).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from shapely import affinity
from shapely.geometry import Point, Polygon
from shapely.geometry.base import BaseGeometry

KM_PER_DEGREE = 111.32
MAX_RADIUS_KM = 20_000.0  # half the Earth's circumference: larger is not a circle on it


class AreaError(ValueError):
    """An area that cannot be read; the message names what is wrong."""


def _point(pair: str) -> tuple[float, float]:
    lat, lon = (float(v) for v in _points(pair)[0])
    return lat, lon


def _points(text: str) -> np.ndarray[Any, np.dtype[np.float64]]:
    """CAP's ``lat,lon lat,lon ...`` as an (n, 2) array of (lat, lon), read in one pass
    (a national warning polygon has tens of thousands of points)."""
    pairs = text.split()
    if text.count(",") != len(pairs):
        raise AreaError(f"points {text[:40]!r} are not lat,lon pairs")
    try:
        values = np.array(" ".join(pairs).replace(",", " ").split(), dtype=np.float64)
    except ValueError as exc:
        raise AreaError(f"points {text[:40]!r} are not numbers") from exc
    if values.size != 2 * len(pairs):
        raise AreaError(f"points {text[:40]!r} are not lat,lon pairs")
    points = values.reshape(-1, 2)
    on_globe = (np.abs(points[:, 0]) <= 90) & (np.abs(points[:, 1]) <= 180)  # NaN: False
    if not bool(on_globe.all()):
        lat, lon = points[int(np.argmin(on_globe))]
        raise AreaError(f"point {lat},{lon} is off the globe")
    return points


def polygon(points: list[tuple[float, float]] | np.ndarray[Any, np.dtype[np.float64]]
            ) -> BaseGeometry:
    """A polygon from (lat, lon) points, closed or not; repaired where it crosses itself."""
    ring = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(ring) > 1 and bool((ring[0] == ring[-1]).all()):
        ring = ring[:-1]
    on_globe = (np.abs(ring[:, 0]) <= 90) & (np.abs(ring[:, 1]) <= 180)  # NaN fails this too
    if not bool(on_globe.all()):
        lat, lon = ring[int(np.argmin(on_globe))]
        raise AreaError(f"point {lat},{lon} is off the globe")
    # (lat, lon) pairs as complex numbers: a 1-D unique, far quicker than rows
    distinct = len(np.unique(np.ascontiguousarray(ring).view(np.complex128))) if len(ring) \
        else 0
    if distinct < 3:
        raise AreaError(f"a polygon needs at least 3 distinct points, got {distinct}")
    shape = Polygon(ring[:, ::-1])
    return shape if shape.is_valid else shapely.make_valid(shape)


def circle(lat: float, lon: float, radius_km: float) -> BaseGeometry:
    """A circle on the map; a radius of 0 is its centre."""
    if not (0 <= radius_km <= MAX_RADIUS_KM):
        raise AreaError(f"radius {radius_km} km is not between 0 and {MAX_RADIUS_KM:.0f}")
    centre = Point(lon, lat)
    if radius_km == 0:
        return centre
    disc = centre.buffer(radius_km / KM_PER_DEGREE, quad_segs=16)
    squeeze = max(math.cos(math.radians(lat)), 0.01)  # a degree of longitude shrinks
    return affinity.scale(disc, xfact=1 / squeeze, yfact=1.0, origin=centre)


def shape_of(polygons: list[str], circles: list[str]) -> tuple[BaseGeometry, Point] | None:
    """One geometry for a CAP ``<area>``'s polygons and circles, and its natural point (the
    first polygon's centroid or the first circle's centre); ``None`` if it has neither.

    Raises :class:`AreaError` naming the point, polygon or radius at fault.
    """
    parts: list[BaseGeometry] = []
    natural: Point | None = None
    for text in polygons:
        if not text.strip():
            continue
        shape = polygon(_points(text))
        parts.append(shape)
        natural = natural or shape.centroid
    for text in circles:
        centre, _, radius = text.strip().partition(" ")
        if not centre:
            continue
        lat, lon = _point(centre)
        try:
            km = float(radius or 0)
        except ValueError as exc:
            raise AreaError(f"radius {radius[:40]!r} is not a number") from exc
        if math.isnan(km):
            raise AreaError("radius is not a number")
        parts.append(circle(lat, lon, km))
        natural = natural or Point(lon, lat)
    if not parts or natural is None:
        return None
    return (parts[0] if len(parts) == 1 else shapely.union_all(parts)), natural


@dataclass(frozen=True)
class Area:
    """Where this command centre acts: an alert whose area does not meet it is not ours."""

    shape: BaseGeometry

    @classmethod
    def from_points(cls, points: list[tuple[float, float]]) -> Area:
        """The city file's ``[area] polygon``: (lat, lon) points, enclosing some area."""
        shape = polygon(points)
        if shape.area <= 0:
            raise AreaError("the polygon encloses no area (its points are on one line)")
        return cls(shape)

    @classmethod
    def around(cls, points: list[tuple[float, float]], margin_deg: float = 0.3) -> Area:
        """The bounds of ``points`` (lat, lon) and ``margin_deg`` around them."""
        lats, lons = [p[0] for p in points], [p[1] for p in points]
        return cls(shapely.box(min(lons) - margin_deg, min(lats) - margin_deg,
                               max(lons) + margin_deg, max(lats) + margin_deg))

    def holds(self, lat: float, lon: float) -> bool:
        return bool(self.shape.covers(Point(lon, lat)))

    def meet(self, shape: BaseGeometry, natural: Point) -> tuple[float, float] | None:
        """Where ``shape`` meets the area, as (lat, lon): ``natural`` if it lies in both,
        else a representative point of the intersection; ``None`` if they do not meet."""
        return place(shape, natural, self)


def place(shape: BaseGeometry, natural: Point,
          area: Area | None) -> tuple[float, float] | None:
    """The (lat, lon) a signal of ``shape`` is placed at (see :meth:`Area.meet`); with no
    area, ``natural`` (or a point inside the shape when the centroid falls outside it)."""
    if area is None:
        where: BaseGeometry = shape
    else:
        if not shape.intersects(area.shape):
            return None
        where = shape.intersection(area.shape)
        if where.is_empty:  # touches only along an edge too thin to keep
            where = area.shape.intersection(shape.buffer(1e-9))
            if where.is_empty:
                return None
    if where.covers(natural):
        return natural.y, natural.x
    point = where.representative_point()
    return point.y, point.x
