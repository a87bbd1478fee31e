"""Core: which units to propose for a task, ranked by estimated time of arrival.

Pure: no I/O, no clock. A :class:`UnitIndex` keeps the units as column arrays
(positions, speeds, capabilities as bit masks, availability), so ranking
10,000 units is a few vector operations, not a Python loop. The shell keeps it
current from unit events and AVL positions.

ETA = turnout (by agency) + the drive: great-circle distance x road factor /
speed (by unit type) by default, or the shortest path on a real road network
(:mod:`command.roads`) when the city file names one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from command.roads import RoadNetwork

EARTH_RADIUS_M = 6_371_008.8

# Typical urban response speeds (km/h) by unit type, and turnout (s) by agency:
# NFPA 1710 gives 60 s for EMS and 80 s for fire turnout.
DEFAULT_SPEED_KMH: dict[str, float] = {
    "engine": 45, "ladder": 40, "rescue": 45, "hazmat": 40, "als": 55, "bls": 55,
    "patrol": 60, "traffic": 60, "cordon": 55, "gas_crew": 45, "power_crew": 45,
    "water_crew": 45, "pump": 35,
}
DEFAULT_TURNOUT_S: dict[str, float] = {"fire": 80, "health": 60, "police": 30, "utility": 180}


@dataclass(frozen=True)
class Profile:
    """How ETAs are estimated: speeds by unit type, turnout by agency, a road factor."""

    speed_kmh: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_SPEED_KMH))
    turnout_s: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_TURNOUT_S))
    road_factor: float = 1.35  # roads are longer than the crow flies
    default_speed_kmh: float = 40.0
    default_turnout_s: float = 90.0


@dataclass(frozen=True)
class UnitInfo:
    unit_id: str
    agency: str
    kind: str  # the unit type that sets its speed (engine, als, patrol...)
    capabilities: tuple[str, ...]
    district: str
    lat: float
    lon: float
    available: bool = True


@dataclass(frozen=True)
class Candidate:
    unit_id: str
    eta_s: float
    distance_m: float
    mutual_aid: bool = False


class UnitIndex:
    """Units as columns for fast ranking. Not thread-safe; one owner updates it."""

    def __init__(self, units: Sequence[UnitInfo], profile: Profile | None = None,
                 roads: RoadNetwork | None = None) -> None:
        self.profile = profile or Profile()
        self.roads = roads
        self.ids = [u.unit_id for u in units]
        self.row = {unit_id: i for i, unit_id in enumerate(self.ids)}
        if len(self.row) != len(self.ids):
            raise ValueError("unit ids must be unique")
        caps = sorted({c for u in units for c in u.capabilities})
        if len(caps) > 63:
            raise ValueError("at most 63 distinct capabilities")
        self.cap_bit = {c: 1 << i for i, c in enumerate(caps)}
        p = self.profile
        self.lat = np.radians([u.lat for u in units]).astype(np.float64)
        self.lon = np.radians([u.lon for u in units]).astype(np.float64)
        self.speed = np.array([p.speed_kmh.get(u.kind, p.default_speed_kmh) / 3.6
                               for u in units], dtype=np.float64)
        self.turnout = np.array([p.turnout_s.get(u.agency, p.default_turnout_s)
                                 for u in units], dtype=np.float64)
        self.caps = np.array([sum(self.cap_bit[c] for c in u.capabilities) for u in units],
                             dtype=np.int64)
        self.available = np.array([u.available for u in units], dtype=bool)
        self.agency = np.array([u.agency for u in units], dtype=object)
        self.district = np.array([u.district for u in units], dtype=object)

    def __len__(self) -> int:
        return len(self.ids)

    # --- keeping it current ---------------------------------------------------------

    def move(self, unit_id: str, lat: float, lon: float) -> None:
        i = self.row[unit_id]
        self.lat[i], self.lon[i] = np.radians(lat), np.radians(lon)

    def set_available(self, unit_id: str, available: bool) -> None:
        self.available[self.row[unit_id]] = available

    # --- ranking -------------------------------------------------------------------

    def able(self, capability: str, exclude: Iterable[str] = (),
             busy_too: bool = False) -> NDArray[np.intp]:
        """Rows of available units with ``capability``, minus ``exclude``
        (with ``busy_too``, committed units as well)."""
        bit = self.cap_bit.get(capability)
        if bit is None:
            return np.empty(0, dtype=np.intp)
        mask = (self.caps & bit) != 0
        if not busy_too:
            mask &= self.available
        for unit_id in exclude:
            i = self.row.get(unit_id)
            if i is not None:
                mask[i] = False
        return np.flatnonzero(mask)

    def distance_m(self, rows: NDArray[np.intp], lat: float, lon: float) -> NDArray[np.float64]:
        """Great-circle (haversine) distance from each row's unit to a point."""
        la, lo = np.radians(lat), np.radians(lon)
        dlat = self.lat[rows] - la
        dlon = self.lon[rows] - lo
        h = np.sin(dlat / 2) ** 2 + np.cos(la) * np.cos(self.lat[rows]) * np.sin(dlon / 2) ** 2
        distance: NDArray[np.float64] = 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.minimum(h, 1.0)))
        return distance

    def eta(self, rows: NDArray[np.intp], lat: float, lon: float) -> NDArray[np.float64]:
        """Seconds from now until each row's unit could be at the point.

        On a road network, the drive is the shortest path; a unit the network
        cannot route (off the extract) falls back to the straight-line estimate.
        """
        straight = self.distance_m(rows, lat, lon) * self.profile.road_factor / self.speed[rows]
        if self.roads is None or rows.size == 0:
            drive = straight
        else:
            times = self.roads.times_to(lat, lon)
            routed = self.roads.eta_from(times, np.degrees(self.lat[rows]),
                                         np.degrees(self.lon[rows]))
            drive = np.where(np.isfinite(routed), routed, straight)
        eta: NDArray[np.float64] = self.turnout[rows] + drive
        return eta

    def recommend(
        self,
        capability: str,
        lat: float,
        lon: float,
        *,
        k: int = 5,
        district: str | None = None,
        target_s: float | None = None,
        exclude: Iterable[str] = (),
    ) -> list[Candidate]:
        """The ``k`` available units with ``capability`` that would arrive first.

        With ``district``, units of that district come first; units of other
        districts are proposed (marked ``mutual_aid``) only when no home unit
        can arrive within ``target_s`` (or none exists).
        """
        rows = self.able(capability, exclude)
        if rows.size == 0 or k <= 0:
            return []
        etas = self.eta(rows, lat, lon)
        if district is not None:
            home = self.district[rows] == district
            home_etas = etas[home]
            late = home_etas.size == 0 or (target_s is not None and home_etas.min() > target_s)
            if not late:
                return self._top(rows[home], etas[home], lat, lon, k, mutual=None)
            return self._top(rows, etas, lat, lon, k, mutual=~home)
        return self._top(rows, etas, lat, lon, k, mutual=None)

    def _top(self, rows: NDArray[np.intp], etas: NDArray[np.float64], lat: float, lon: float,
             k: int, mutual: NDArray[np.bool_] | None) -> list[Candidate]:
        if rows.size > k:
            pick = np.argpartition(etas, k - 1)[:k]
        else:
            pick = np.arange(rows.size)
        pick = pick[np.argsort(etas[pick], kind="stable")]
        dist = self.distance_m(rows[pick], lat, lon)
        return [
            Candidate(unit_id=self.ids[rows[j]], eta_s=float(etas[j]), distance_m=float(d),
                      mutual_aid=bool(mutual[j]) if mutual is not None else False)
            for j, d in zip(pick, dist, strict=True)
        ]
