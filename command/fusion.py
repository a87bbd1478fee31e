"""Core: which open incident a new signal belongs to, if any.

Pure: no I/O, no clock. The shell asks the store for the open incidents in the
grid cells around the signal (:func:`cells_around`; an indexed column, not a
scan of every incident) and :func:`choose` picks the best match:

* a compatible category (a medical call and a traffic collision can be one
  event; a fire and a flood cannot);
* within the category's radius of the incident's location and its time window
  since the incident's last signal (a flood spans kilometres and hours; a
  medical call is one address and minutes);
* the closest in space and time wins; the reason is written on the attach event.

Each type's radius, window and family come from its ``fusion`` entry in the catalogue
(:attr:`workflows.catalogue.Catalogue.fusion`, passed in as ``rules``); a category the
catalogue does not know takes the settings of ``other``.

The grid is a plain lat/lon grid of ``CELL_DEG`` degrees (about 550 m north to
south): a signal looks in every cell its radius can reach.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from workflows.catalogue import Fusion

CELL_DEG = 0.005
EARTH_RADIUS_M = 6_371_008.8


Rule = Fusion  # radius_m, window_s, family
Rules = Mapping[str, Fusion]  # by category; must hold ``other``, the fallback


def rule_for(category: str, rules: Rules) -> Rule:
    """The category's fusion settings; ``other``'s for a category not in ``rules``."""
    return rules.get(category) or rules["other"]


@dataclass(frozen=True)
class Candidate:
    """An open incident near the signal, as the shell found it."""

    incident_id: str
    category: str
    lat: float
    lon: float
    last_signal_at: datetime


@dataclass(frozen=True)
class Match:
    incident_id: str
    distance_m: float
    gap_s: float
    reason: str


def cell_of(lat: float, lon: float) -> str:
    return f"{math.floor(lat / CELL_DEG)}:{math.floor(lon / CELL_DEG)}"


def cells_around(lat: float, lon: float, radius_m: float) -> list[str]:
    """Every grid cell a circle of ``radius_m`` around the point can touch."""
    dlat = radius_m / 111_195.0
    dlon = radius_m / (111_195.0 * max(math.cos(math.radians(lat)), 0.01))
    lat0, lat1 = math.floor((lat - dlat) / CELL_DEG), math.floor((lat + dlat) / CELL_DEG)
    lon0, lon1 = math.floor((lon - dlon) / CELL_DEG), math.floor((lon + dlon) / CELL_DEG)
    return [f"{a}:{b}" for a in range(lat0, lat1 + 1) for b in range(lon0, lon1 + 1)]


def search_radius(category: str, rules: Rules) -> float:
    """How far to look: the widest radius of any category this one can fuse with."""
    family = rule_for(category, rules).family
    return max(r.radius_m for r in rules.values() if r.family == family)


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    h = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * \
        math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def choose(category: str, lat: float, lon: float, at: datetime,
           candidates: list[Candidate], rules: Rules) -> Match | None:
    """The incident this signal belongs to, or None for a new incident."""
    mine = rule_for(category, rules)
    best: tuple[float, Match] | None = None
    for c in candidates:
        theirs = rule_for(c.category, rules)
        if theirs.family != mine.family:
            continue
        radius = max(mine.radius_m, theirs.radius_m)
        window = max(mine.window_s, theirs.window_s)
        d = distance_m(lat, lon, c.lat, c.lon)
        gap = abs((at - c.last_signal_at).total_seconds())
        if d > radius or gap > window:
            continue
        score = d / radius + gap / window  # 0 is the same place at the same moment
        reason = (f"{c.category} incident {d:.0f} m and {gap / 60:.0f} min away "
                  f"(limits {radius:.0f} m, {window / 60:.0f} min)")
        if best is None or score < best[0] or (score == best[0] and
                                               c.incident_id < best[1].incident_id):
            best = (score, Match(c.incident_id, d, gap, reason))
    return None if best is None else best[1]
