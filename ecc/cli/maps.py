"""Shell: ``ecc map build CITYFILE``: the console's offline street map, built from the
city's OpenStreetMap extract (its ``road_network``) by :mod:`command.basemap`, and
written where the city file's ``[map] offline`` names (or ``--out``). docs/maps.md."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from command.settings import Settings
from ecc.cli import files
from ecc.cli.errors import CliError

__all__ = ["COMMANDS", "add_parsers"]


async def cmd_map_build(settings: Settings, args: argparse.Namespace) -> None:
    path = Path(args.city)
    city = files.city(settings.model_copy(update={"city_path": path}), demo=False)
    assert city is not None
    osm = Path(args.osm) if args.osm else files.road_network_path(city, path)
    if osm is None:
        raise CliError(f"{path}: the city file names no road_network (an .osm extract) to "
                       "build the map from; give one with --osm")
    if args.out:
        out = Path(args.out)
    elif city.map is not None and city.map.offline is not None:
        out = (path.parent / city.map.offline).resolve()
    else:
        raise CliError(f"{path}: [map] names no offline layer file; add offline = "
                       "\"<name>.geojson\" to [map], or give --out")
    data = files.offline_map(city, osm)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
    except OSError as exc:
        raise CliError(f"cannot write {out}: {exc.strerror}") from exc
    features = json.loads(data)["features"]
    print(json.dumps({"out": str(out), "bytes": len(data), "features": len(features),
                      "osm": str(osm)}), file=sys.stdout)


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    maps = sub.add_parser("map", help="the console's map").add_subparsers(
        dest="map_command", required=True)
    build = maps.add_parser("build", help="the offline street map from the city's OSM extract")
    build.add_argument("city", help="the city file (TOML)")
    build.add_argument("--out", default=None,
                       help="where to write the GeoJSON (default: [map] offline, beside the file)")
    build.add_argument("--osm", default=None,
                       help="the OSM extract (default: the city file's road_network)")


COMMANDS = {("map", "build"): cmd_map_build}
