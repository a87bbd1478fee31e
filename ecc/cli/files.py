"""Shell: what the commands read from the settings' files: the catalogue, the city,
its road network and the adapters' sections. Each problem becomes a CliError that
names the file and the setting to check."""

from __future__ import annotations

import json
from pathlib import Path

import structlog

from adapters.ingest import AdapterConfig, config_from_city
from command.basemap import MapSite, build_basemap, dumps, map_site
from command.city import City, CityError
from command.roads import RoadNetwork
from command.settings import (
    Settings,
    load_catalogue,
    load_city,
    load_city_doc,
    load_roads,
    offline_map_path,
)
from ecc.cli.errors import CliError
from workflows.catalogue import Catalogue, CatalogueError

__all__ = ["adapters", "catalogue", "city", "map_of", "offline_map", "roads"]

log = structlog.get_logger("ecc.cli")


def catalogue(settings: Settings) -> Catalogue:
    try:
        return load_catalogue(settings.catalogue_path)
    except CatalogueError as exc:
        raise CliError(f"catalogue: {exc}") from exc
    except OSError as exc:
        raise CliError(f"catalogue: cannot read {settings.catalogue_path}: {exc.strerror}; "
                       "check ECC_CATALOGUE") from exc


def city(settings: Settings, *, demo: bool) -> City | None:
    if settings.city_path is None and not demo:
        return None
    try:
        return load_city(settings.city_path)
    except CityError as exc:
        raise CliError(f"city: {exc}") from exc
    except OSError as exc:
        raise CliError(f"city: cannot read {settings.city_path}: {exc.strerror}; "
                       "check ECC_CITY") from exc


def roads(settings: Settings, city: City | None) -> RoadNetwork | None:
    if city is None:
        return None
    try:
        return load_roads(city, settings.city_path)
    except (OSError, ValueError, SyntaxError) as exc:  # XML ParseError is a SyntaxError
        raise CliError(f"road network {city.road_network!r}: {exc}") from exc


def adapters(settings: Settings, catalogue: Catalogue,
             kinds: tuple[str, ...]) -> AdapterConfig:
    """The adapters' settings from the city file (the demo city's when none is set)."""
    try:
        doc = load_city_doc(settings.city_path)
        return config_from_city(doc, kinds=kinds, sender=settings.cap_sender,
                                catalogue=catalogue,
                                categories=tuple(catalogue.types),
                                origin=str(settings.city_path or "sim/data/zhengzhou.toml"),
                                base=settings.city_path.parent if settings.city_path else None)
    except (OSError, ValueError) as exc:
        raise CliError(f"city file, adapters' sections: {exc}") from exc



def road_network_path(city: City, city_path: Path | None) -> Path | None:
    if city.road_network is None:
        return None
    base = city_path.parent if city_path is not None else Path(".")
    return (base / city.road_network).resolve()


def offline_map(city: City, osm: Path) -> bytes:
    """The offline base layer built from an OSM extract (ecc map build does this)."""
    try:
        districts = city.map.district if city.map else ()
        return dumps(build_basemap(osm.read_bytes(), districts=districts, name=city.name)).encode()
    except OSError as exc:
        raise CliError(f"road network {str(osm)!r}: cannot read it: {exc.strerror}") from exc
    except (ValueError, SyntaxError) as exc:  # XML ParseError is a SyntaxError
        raise CliError(f"road network {str(osm)!r}: {exc}") from exc


def map_of(settings: Settings, city: City | None) -> MapSite | None:
    """What the console's map shows: the city's [map] with its offline layer. A missing
    offline file is built in memory from the road network when the city has one (and
    logged: ``ecc map build`` saves it), or left out; a broken one is an error."""
    if city is None:
        return None
    where = offline_map_path(city, settings.city_path)
    data: bytes | None = None
    if where is not None:
        try:
            data = where.read_bytes()
        except OSError:
            osm = road_network_path(city, settings.city_path)
            if osm is not None and osm.exists():
                log.warning("map.offline_built_at_start", missing=str(where), osm=str(osm),
                            hint="ecc map build CITYFILE saves it")
                data = offline_map(city, osm)
            else:
                log.warning("map.offline_missing", missing=str(where))
        if data is not None:
            try:
                json.loads(data)
            except ValueError as exc:
                raise CliError(f"offline map {str(where)!r} is not GeoJSON: {exc}; rebuild it "
                               "with ecc map build") from exc
    return map_site(city, data)
