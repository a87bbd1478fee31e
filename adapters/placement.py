"""Core: a signal's place from words, through the city's :class:`adapters.gazetteer.Gazetteer`.

:func:`locate` turns typed text (a call's address, an EIDO civic address) into a
:class:`workflows.geo.Location` and what the signal's ``details["placement"]`` says
about it (what matched, the score, the other candidates). Text that resolves to no
candidate, or only to weak ones (below :data:`MIN_SCORE`), gives a location
*unknown*: the city's centre as a stand-in point, with the reason and the text that
failed in ``Location.unknown``. The signal still becomes an incident, shown in the
queue as location unknown and never fused on (docs/adapters.md, placement).
"""

from __future__ import annotations

from typing import Any

from adapters.gazetteer import Candidate, Gazetteer
from workflows.geo import Location, unknown_at

MIN_SCORE = 0.5  # below this the best guess is shown as a candidate, not used as the place
MAX_POLYGON_KEPT = 200  # points of an area's polygon kept on a signal, for the map


def candidate_json(c: Candidate) -> dict[str, Any]:
    return {"lat": round(c.lat, 6), "lon": round(c.lon, 6), "score": c.score,
            "matched": c.matched, "label": c.label[:200], "accuracy_m": c.accuracy_m}


def locate(gazetteer: Gazetteer, text: str | None) -> tuple[Location, dict[str, Any]]:
    """The place ``text`` names (its best candidate) or a location unknown; and the
    placement record for the signal's details."""
    said = " ".join((text or "").split())[:500]
    found = gazetteer.lookup(said)
    record: dict[str, Any] = {"text": said, "candidates": [
        candidate_json(c) for c in found.candidates[:3]]}
    best = found.best
    if best is None or best.score < MIN_SCORE:
        reason = found.reason or (f"no confident match (best: {best.label[:80]}, score "
                                  f"{best.score:.2f})" if best else "no match")
        record["unknown"] = reason
        return unknown_at(gazetteer.centre, reason, said), record
    record.update(matched=best.matched, label=best.label[:200], score=best.score)
    return Location(lat=best.lat, lon=best.lon, accuracy_m=best.accuracy_m,
                    address=said or best.label[:500]), record


def outline(ring: tuple[tuple[float, float], ...] | list[tuple[float, float]]
            ) -> dict[str, Any]:
    """An area's polygon as GeoJSON ([lon, lat]), thinned to at most
    :data:`MAX_POLYGON_KEPT` points so it fits in a signal's details."""
    step = max(1, -(-len(ring) // MAX_POLYGON_KEPT))
    kept = list(ring)[::step]
    coords = [[round(lon, 5), round(lat, 5)] for lat, lon in kept]
    if coords and coords[0] != coords[-1]:
        coords.append(coords[0])
    return {"type": "Polygon", "coordinates": [coords]}
