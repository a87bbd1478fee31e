"""Shell: where the servers are. ``endpoints.json`` (what `ecc up` wrote in the data
folder) and the environment's ``NATS_URL`` / ``DATABASE_URL``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from command.runtime import write_private
from command.settings import Settings
from ecc.cli.errors import CliError

__all__ = ["check_half_external", "endpoints_path", "read_endpoints", "server_urls",
           "write_endpoints"]


def endpoints_path(settings: Settings) -> Path:
    return settings.data_dir / "endpoints.json"


def write_endpoints(settings: Settings, endpoints: dict[str, Any]) -> Path:
    path = endpoints_path(settings)
    # It holds an access token and the service's database password: its owner's only.
    write_private(path, json.dumps(endpoints, indent=2) + "\n")
    return path


def read_endpoints(settings: Settings) -> dict[str, Any] | None:
    try:
        data = json.loads(endpoints_path(settings).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def server_urls(settings: Settings) -> tuple[str, str]:
    """``(nats_url, database_url)`` from the environment or a running `ecc up`."""
    if settings.external:
        assert settings.nats_url and settings.database_url
        return settings.nats_url, settings.database_url
    check_half_external(settings)
    found = read_endpoints(settings)
    if found and "nats_url" in found and "database_url" in found:
        return str(found["nats_url"]), str(found["database_url"])
    raise CliError(
        f"no servers: set NATS_URL and DATABASE_URL, or start `ecc up` "
        f"(it writes {endpoints_path(settings)})"
    )



def check_half_external(settings: Settings) -> None:
    if (settings.nats_url is None) != (settings.database_url is None):
        raise CliError("set both NATS_URL and DATABASE_URL to use external servers, or neither "
                       "to run the embedded ones")

