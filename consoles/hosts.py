"""Core: which ``Host`` names the console gateway answers to (DNS rebinding defence).

A page on ``evil.example`` whose DNS name is re-pointed at 127.0.0.1 reaches the
gateway with ``Host: evil.example`` and ``Origin: http://evil.example``: same
origin by the headers, so the origin check alone lets it in. The gateway
therefore answers only to names it knows are its own:

* IP literals (``127.0.0.1:8780``, ``[::1]:8780``, ``10.0.0.5``): a browser sends
  one only for a page it loaded from that address, which rebinding cannot forge;
* ``localhost`` and names under ``.localhost`` (RFC 6761: browsers resolve them
  to loopback themselves, never through DNS);
* the public names an operator configured (``ECC_CONSOLE_HOSTS``), e.g. the name
  of the reverse proxy in front of the gateway.

The port is not compared: rebinding changes the address a name points at, not
the port, and a proxy or NAT may map ports. No I/O here.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

# A hostname as an operator writes one in ECC_CONSOLE_HOSTS: DNS labels, no port.
NAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})"
                  r"(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62}))*\.?$")
_HOST = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]{2,45})\]|(?P<name>[A-Za-z0-9._-]{1,253}))"
                   r"(?::(?P<port>[0-9]{1,5}))?$")


def hostname(host: str) -> str | None:
    """The name part of a ``Host`` header value, lower case, or None if it is not one."""
    found = _HOST.match(host)
    if found is None:
        return None
    port = found.group("port")
    if port is not None and int(port) > 65535:
        return None
    if found.group("v6") is not None:
        try:
            return str(ipaddress.IPv6Address(found.group("v6")))
        except ValueError:
            return None
    return found.group("name").lower().removesuffix(".") or None


class HostPolicy:
    """The names a gateway answers to: IP literals, localhost, and ``names``."""

    def __init__(self, names: Iterable[str] = ()) -> None:
        self.names = frozenset(n.lower().removesuffix(".") for n in names)

    def allows(self, host: str | None) -> bool:
        """Whether a request with this ``Host`` value (None: no header) is for this gateway."""
        if host is None:
            return False
        name = hostname(host)
        if name is None:
            return False
        if name == "localhost" or name.endswith(".localhost") or name in self.names:
            return True
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return False
        return True
