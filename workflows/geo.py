"""Core: where things are. Value types only."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer


class Location(BaseModel):
    """A point on the earth (WGS84) with how sure we are of it.

    ``unknown`` is set when the place could not be resolved (an address no gazetteer
    knows, a CAP geocode the city's code list lacks): it says why, with the text that
    failed, and the point is only a stand-in (the city's centre) that fusion never fuses
    on. A known location leaves it out of its JSON altogether, so events stored before
    the field existed and events stored after it read alike (no upcaster: docs/store.md).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    lat: float = Field(ge=-90.0, le=90.0, allow_inf_nan=False)
    lon: float = Field(ge=-180.0, le=180.0, allow_inf_nan=False)
    accuracy_m: float | None = Field(default=None, ge=0.0, le=1_000_000.0, allow_inf_nan=False)
    address: str | None = Field(default=None, max_length=500)
    unknown: str | None = Field(default=None, min_length=1, max_length=500)

    @model_serializer(mode="wrap")
    def _known_leaves_unknown_out(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if isinstance(data, dict) and data.get("unknown") is None:
            data.pop("unknown", None)
        return data


def unknown_at(centre: tuple[float, float], reason: str, text: str | None = None) -> Location:
    """A location that could not be resolved, shown at ``centre``: ``reason`` and the
    text that failed, both kept (cut to fit)."""
    said = " ".join((text or "").split())
    why = f"{reason}: {said[:200]!r}" if said else reason
    return Location(lat=centre[0], lon=centre[1], unknown=why[:500] or "location unknown",
                    address=said[:500] or None)
