"""Shell: what the commands read from the settings' files: the catalogue, the city,
its road network and the adapters' sections. Each problem becomes a CliError that
names the file and the setting to check."""

from __future__ import annotations

from adapters.ingest import AdapterConfig, config_from_city
from command.city import City, CityError
from command.roads import RoadNetwork
from command.settings import Settings, load_catalogue, load_city, load_city_doc, load_roads
from ecc.cli.errors import CliError
from workflows.catalogue import Catalogue, CatalogueError

__all__ = ["adapters", "catalogue", "city", "roads"]


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

