"""Shell: settings, read once from the environment at the composition root."""

from __future__ import annotations

import functools
import os
import re
import tomllib
from collections.abc import Mapping
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from command.city import (
    DISTRICTS_MAX_BYTES,
    City,
    CityError,
    parse_city,
    parse_districts,
    with_districts,
)
from command.roads import RoadNetwork, parse_osm
from workflows.catalogue import Catalogue, parse_catalogue

_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9_][A-Za-z0-9_-]{0,62}"
                       r"(?:\.[A-Za-z0-9_][A-Za-z0-9_-]{0,62})*\.?$")


class Settings(BaseModel):
    """Where ECC finds its servers and keeps its data.

    With neither ``NATS_URL`` nor ``DATABASE_URL`` set, ``ecc up`` starts its
    own nats-server and PostgreSQL in ``data_dir``. Set both to use external
    servers; setting only one is an error (half-embedded systems are a trap).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    nats_url: str | None = None
    database_url: str | None = None
    # External servers: the schema owner's URL, for migrations (DATABASE_URL is then the
    # service's own role, given its grants by each migration; docs/security.md).
    database_owner_url: str | None = None
    data_dir: Path = Path(".ecc")
    namespace: str = "ecc"
    console_host: str = "127.0.0.1"
    # A fixed default so a console URL can be bookmarked; if it is taken,
    # `ecc up` falls back to a free port and prints it.
    console_port: int = Field(default=8780, ge=0, le=65535)
    console_origins: tuple[str, ...] = ()
    # The console gateway's public names (a reverse proxy's), beside its IP addresses and
    # localhost: any other Host is refused (DNS rebinding; docs/security.md).
    console_hosts: tuple[str, ...] = ()
    # Consoles open at once from one peer address (all of a centre behind one NAT).
    console_max_per_peer: int = Field(default=32, ge=1)
    # Test-only: name of a point where the process kills itself (kill -9).
    fault_point: str | None = None
    ack_wait: float = Field(default=10.0, gt=0)
    # Incident types, response plans and SLA rules; None = the built-in catalogue.
    catalogue_path: Path | None = None
    # Stations and units; `ecc up` falls back to the demo city, `ecc serve` to none.
    city_path: Path | None = None
    # The HTTP ingress (hotline platforms, video webhooks, CAP feeds); 0: a free port.
    ingress_port: int = Field(default=8781, ge=0, le=65535)
    # The adapters `ecc up` and `ecc serve` run in-process; one run as its own process
    # (`ecc adapter sensor`) must be left out here, or the two share its consumer.
    adapters: tuple[str, ...] = ("hotline", "cap", "sensor", "video", "eido")
    # <sender> of the CAP alerts ECC emits
    cap_sender: str = Field(default="ecc@localhost", pattern=r"^[^\s,<&]{1,200}$")
    # Copies of each JetStream stream: 1 on one nats-server, 3 on a three-node cluster.
    stream_replicas: int = Field(default=1, ge=1, le=5)
    # Unit positions each console is sent at most this many times a second (coalesced).
    console_positions_hz: float = Field(default=1.0, gt=0, le=20)
    # How long units' tracks (stored positions) are kept, in seconds.
    track_retention: float = Field(default=7 * 86400.0, gt=0)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        origins = tuple(o for o in env.get("ECC_CONSOLE_ORIGINS", "").split(",") if o)
        return cls(
            nats_url=env.get("NATS_URL") or None,
            database_url=env.get("DATABASE_URL") or None,
            database_owner_url=env.get("DATABASE_OWNER_URL") or None,
            data_dir=Path(env.get("ECC_DATA_DIR", ".ecc")),
            namespace=env.get("ECC_NAMESPACE", "ecc"),
            console_host=env.get("ECC_CONSOLE_HOST", "127.0.0.1"),
            console_port=int(env.get("ECC_CONSOLE_PORT", "8780")),
            console_origins=origins,
            console_hosts=tuple(h.strip() for h in env.get("ECC_CONSOLE_HOSTS", "").split(",")
                                if h.strip()),
            console_max_per_peer=int(env.get("ECC_CONSOLE_MAX_PER_PEER", "32")),
            fault_point=env.get("ECC_FAULT_POINT") or None,
            ack_wait=float(env.get("ECC_ACK_WAIT", "10")),
            catalogue_path=Path(env["ECC_CATALOGUE"]) if env.get("ECC_CATALOGUE") else None,
            city_path=Path(env["ECC_CITY"]) if env.get("ECC_CITY") else None,
            ingress_port=int(env.get("ECC_INGRESS_PORT", "8781")),
            cap_sender=env.get("ECC_CAP_SENDER", "ecc@localhost"),
            stream_replicas=int(env.get("ECC_STREAM_REPLICAS", "1")),
            console_positions_hz=float(env.get("ECC_CONSOLE_POSITIONS_HZ", "1")),
            track_retention=duration(env.get("ECC_TRACK_RETENTION", "7d"),
                                     "ECC_TRACK_RETENTION"),
            adapters=tuple(a.strip() for a in env.get(
                "ECC_ADAPTERS", "hotline,cap,sensor,video,eido").split(",") if a.strip()),
        )

    @field_validator("console_hosts")
    @classmethod
    def _hostnames(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [h for h in value if not _HOSTNAME.match(h)]
        if bad:
            raise ValueError(f"ECC_CONSOLE_HOSTS: {bad[0][:100]!r} is not a hostname; give "
                             "names only, comma-separated, without scheme or port "
                             "(e.g. ecc.city.example,console.city.example)")
        return value

    @field_validator("adapters")
    @classmethod
    def _known_adapters(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = set(value) - {"hotline", "cap", "sensor", "video", "eido"}
        if unknown:
            raise ValueError(f"ECC_ADAPTERS: unknown {sorted(unknown)}; "
                             "choose from hotline, cap, sensor, video, eido")
        return value

    @property
    def external(self) -> bool:
        return self.nats_url is not None and self.database_url is not None


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_S = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def duration(text: str, name: str) -> float:
    """Seconds of a duration setting: a number with an optional unit, ``s``, ``m``, ``h``
    or ``d`` (``7d``, ``36h``, ``90``); raises ValueError naming the setting."""
    found = _DURATION.match(text)
    if found is None or float(found.group(1)) <= 0:
        raise ValueError(f"{name}: {text[:50]!r} is not a duration; give e.g. 7d, 36h, "
                         "30m or seconds")
    return float(found.group(1)) * _UNIT_S[found.group(2)]


def load_catalogue(path: Path | None = None) -> Catalogue:
    """Read and validate a catalogue; the built-in one when ``path`` is None.

    Raises :class:`workflows.catalogue.CatalogueError` naming the line at fault.
    """
    if path is None:
        text = resources.files("workflows").joinpath("data/catalogue.toml").read_text()
        return parse_catalogue(text, "workflows/data/catalogue.toml")
    return parse_catalogue(path.read_text(), str(path))


@functools.cache
def builtin_catalogue() -> Catalogue:
    """The built-in catalogue, read once: for the simulator and for the checks that run
    before a message reaches the adapter that classifies it with the served one."""
    return load_catalogue()


def load_city(path: Path | None = None) -> City:
    """Read and validate a city file; the demo city (Zhengzhou) when ``path`` is None."""
    if path is None:
        text = resources.files("sim").joinpath("data/zhengzhou.toml").read_text()
        city = parse_city(text, "sim/data/zhengzhou.toml")
        base: Traversable | Path = resources.files("sim").joinpath("data")
    else:
        city = parse_city(path.read_text(), str(path))
        base = path.parent
    if city.map is None or city.map.districts is None:
        return city
    where = base / city.map.districts
    origin = f"{where} ([map] districts of {path or 'sim/data/zhengzhou.toml'})"
    try:
        with where.open("rb") as file:  # read one byte past the limit, not the whole file
            data = file.read(DISTRICTS_MAX_BYTES + 1)
    except OSError as exc:
        raise CityError(origin, None, f"cannot read it: {exc.strerror or exc}") from exc
    return with_districts(city, parse_districts(data, origin), origin)


def load_city_doc(path: Path | None = None) -> dict[str, Any]:
    """The city file as parsed TOML, for the adapters' sections (devices, cameras)."""
    if path is None:
        return tomllib.loads(resources.files("sim").joinpath("data/zhengzhou.toml").read_text())
    return tomllib.loads(path.read_text())


def offline_map_path(city: City, city_path: Path | None) -> Traversable | None:
    """Where the city file's offline map layer is (``[map] offline``, relative to the file;
    the demo city's beside it in sim/data), or None when it names none."""
    if city.map is None or city.map.offline is None:
        return None
    if city_path is None:
        return resources.files("sim").joinpath("data", city.map.offline)
    return (city_path.parent / city.map.offline).resolve()


def load_roads(city: City, city_path: Path | None) -> RoadNetwork | None:
    """The road network a city file names (relative to the file), or None."""
    if city.road_network is None:
        return None
    base = city_path.parent if city_path is not None else Path(".")
    path = (base / city.road_network).resolve()
    return parse_osm(path.read_bytes())
