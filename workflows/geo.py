"""Core: where things are. Value types only."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Location(BaseModel):
    """A point on the earth (WGS84) with how sure we are of it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    lat: float = Field(ge=-90.0, le=90.0, allow_inf_nan=False)
    lon: float = Field(ge=-180.0, le=180.0, allow_inf_nan=False)
    accuracy_m: float | None = Field(default=None, ge=0.0, le=1_000_000.0, allow_inf_nan=False)
    address: str | None = Field(default=None, max_length=500)
