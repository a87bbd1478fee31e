"""Shell: the city's gazetteer, read from the files its city file names.

:func:`gazetteer_of` reads ``[gazetteer] osm`` (else ``road_network``) and
``[gazetteer] codes``, relative to the city file's folder, with the pure parsers of
:mod:`adapters.gazetteer_data`, into one :class:`adapters.gazetteer.Gazetteer`. A
city with stations but no such files still gets one (it knows no places), so a call
without coordinates becomes an incident of unknown location, not a dead letter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from adapters.gazetteer import Address, CodeArea, Gazetteer, Interpolation, NamedPlace, Street
from adapters.gazetteer_data import GazetteerError, parse_codes, parse_osm_places
from command.city import GazetteerFiles


def gazetteer_of(doc: dict[str, Any], base: Path, origin: str = "city file",
                 centre: tuple[float, float] | None = None) -> Gazetteer | None:
    """The city's gazetteer; None for a document with no station to centre it on (and
    no ``centre``). Raises :class:`GazetteerError` naming the file or entry at fault."""
    try:
        files = GazetteerFiles.model_validate(doc.get("gazetteer", {}))
    except ValidationError as exc:
        raise GazetteerError(f"{origin}: [gazetteer]: {exc.errors()[0]['msg']}") from exc
    stations = [s for s in doc.get("station", ()) if isinstance(s, dict)]
    points = [(float(s["lat"]), float(s["lon"])) for s in stations
              if isinstance(s.get("lat"), int | float) and isinstance(s.get("lon"), int | float)]
    if centre is None and not points:
        return None
    middle = centre or (sum(p[0] for p in points) / len(points),
                        sum(p[1] for p in points) / len(points))
    osm = files.osm or doc.get("road_network")
    streets: list[Street] = []
    addresses: list[Address] = []
    ways: list[Interpolation] = []
    places: list[NamedPlace] = []
    if isinstance(osm, str):
        try:
            streets, addresses, ways, places = parse_osm_places((base / osm).read_bytes())
        except OSError as exc:
            raise GazetteerError(f"{origin}: [gazetteer] osm {osm!r}: {exc.strerror}") from exc
    codes: list[CodeArea] = []
    if files.codes:
        try:
            text = (base / files.codes).read_text(encoding="utf-8")
        except OSError as exc:
            raise GazetteerError(f"{origin}: [gazetteer] codes {files.codes!r}: "
                                 f"{exc.strerror}") from exc
        codes = parse_codes(text, files.codes)
    return Gazetteer(middle, streets, addresses, ways, places, codes)
