"""Core: ECC's users on its nats-server, one per component, and what each may do.

The embedded runtime (:class:`command.runtime.EmbeddedNats`) writes these users
into the configuration it generates; docs/security.md has the same grants as a
table, for an operator who runs an external server. Pure: names and passwords
in, permission lists and configuration text out. Randomness (the passwords)
comes from the caller.

===================  ========  ===========================================================
user                 over      may
===================  ========  ===========================================================
``ecc``              NATS      everything: the service owns the streams
``adapter-<kind>``   NATS      publish its own signals ``<ns>.signal.<kind>.>``, its dead
                               letters and its own ingress subject; pull from the durable
                               consumers the service made for it (never create one)
``unit-<id>``        NATS      publish ``<ns>.unit.<id>.>``; hear ``<ns>.dispatch.*.<id>``
                               and read its last order there (direct get); no consumers
``devices``          MQTT      publish under the MQTT topic roots the adapters read
                               (``sensors/#``, the camera platform's); nothing else
``sim``              NATS      the simulator of ``ecc demo``: every unit, every ingress
===================  ========  ===========================================================

Every user but ``ecc`` receives replies on an inbox of its own,
``_INBOX_<user>.>`` (:func:`inbox_prefix`): with the shared ``_INBOX.>`` any
component could read every other one's replies and, through them, the orders
JetStream pushes to a crew's device.

A namespace other than ``ecc`` gets the same grants under its own prefix;
:data:`ANY_NAMESPACE` (``*``) grants them under every prefix at once, for a
test server that many namespaces share.

The adapters' grants are computed from their declarations
(:class:`command.specs.AdapterSpec`, the instances in ``adapters/``), which the
caller passes in: ``command`` does not import ``adapters``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from command.specs import AdapterSpec, Feed, by_kind
from command.subjects import Namespace

__all__ = [
    "ANY_NAMESPACE", "DEVICES", "SERVICE", "SIM", "Grant", "adapter_user", "authorization",
    "components", "credentials", "entry", "feed_subjects", "grant", "inbox_prefix", "passwords_for",
    "redact", "unit_of_user", "unit_user", "url",
]

SERVICE = "ecc"
DEVICES = "devices"
SIM = "sim"
ANY_NAMESPACE = "*"

# The rules of command/subjects.py, matched whole: its `$` also lets a trailing newline
# through, which must never reach a subject, a user name or the configuration file.
_UNIT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]{0,39}")
_NAMESPACE = re.compile(r"[a-z][a-z0-9]{0,15}")
_KIND = re.compile(r"[a-z][a-z0-9_]{0,15}")
_UNIT_PREFIX = "unit-"
_ADAPTER_PREFIX = "adapter-"


@dataclass(frozen=True)
class Grant:
    """What one user may do. ``None`` means no limit (the service); an empty tuple means
    nothing at all. ``connection_types`` are nats-server's ``STANDARD`` and ``MQTT``."""

    publish: tuple[str, ...] | None
    subscribe: tuple[str, ...] | None
    connection_types: tuple[str, ...] = ("STANDARD",)


# --- names -----------------------------------------------------------------------


def unit_user(unit_id: str) -> str:
    """``unit-<id>``; raises ValueError for an id that cannot be a subject token."""
    if not _UNIT_ID.fullmatch(unit_id):
        raise ValueError(f"unit id must match {_UNIT_ID.pattern}, got {unit_id!r}")
    return f"{_UNIT_PREFIX}{unit_id}"


def unit_of_user(user: str) -> str | None:
    """The unit id of a ``unit-<id>`` user name, or None."""
    unit_id = user[len(_UNIT_PREFIX):]
    return unit_id if user.startswith(_UNIT_PREFIX) and _UNIT_ID.fullmatch(unit_id) else None


def adapter_user(kind: str) -> str:
    """``adapter-<kind>`` (:attr:`command.specs.AdapterSpec.user`); raises ValueError for a
    kind that cannot be one subject token."""
    if not _KIND.fullmatch(kind):
        raise ValueError(f"adapter kind must match {_KIND.pattern}, got {kind!r}")
    return f"{_ADAPTER_PREFIX}{kind}"


def inbox_prefix(user: str) -> str:
    """Where a component's replies come back: ``_INBOX_<user>`` (a single token)."""
    return f"_INBOX_{user}"


def components(units: Iterable[str] = (), *, adapters: Sequence[AdapterSpec],
               sim: bool = False) -> list[str]:
    """Every user of one runtime: the service, the adapters (in the order given), the
    devices, one per unit (in the order given, duplicates once) and, for ``ecc demo``,
    the simulator."""
    names = [SERVICE, *(adapter_user(k) for k in by_kind(adapters)), DEVICES]
    names += list(dict.fromkeys(unit_user(u) for u in units))
    if sim:
        names.append(SIM)
    return names


def passwords_for(names: Iterable[str], known: Mapping[str, str],
                  new_password: Callable[[], str]) -> dict[str, str]:
    """A password for each name: the known one if there is one, else a new one. Names
    not asked for are dropped (a unit taken out of the city file loses its access)."""
    return {name: known[name] if name in known else new_password() for name in names}


# --- grants ----------------------------------------------------------------------


def _check_prefix(prefix: str) -> None:
    if prefix != ANY_NAMESPACE and not _NAMESPACE.fullmatch(prefix):
        raise ValueError(f"namespace must match {_NAMESPACE.pattern}, got {prefix!r}")


def _stream(prefix: str, name: str) -> str:
    return "*" if prefix == ANY_NAMESPACE else Namespace(prefix).stream(name)


def _mqtt(prefix: str, root: str) -> list[str]:
    """Where MQTT topics ``<root>/…`` land (``Namespace.mqtt``), for every prefix if any."""
    if prefix == ANY_NAMESPACE:
        return [root, f"*.{root}"]
    return [Namespace(prefix).mqtt(root)]


def feed_subjects(feed: Feed, prefix: str) -> list[str]:
    """The filter subjects of ``feed`` in namespace ``prefix``: one, or for
    :data:`ANY_NAMESPACE` an MQTT feed's in the default namespace and in every other."""
    if feed.mqtt_root is None:
        return [f"{prefix}.{feed.subject}"]
    return [f"{root}.{feed.subject}" for root in _mqtt(prefix, feed.mqtt_root)]


def _adapter(spec: AdapterSpec, prefix: str) -> Grant:
    p, kind = prefix, spec.kind
    publish = [f"{p}.signal.{kind}.>", f"{p}.deadletter.{kind}", "$JS.API.INFO"]
    # e.g. cap also runs cap-out: CAP 1.2 warnings from incident events, and the first
    # copy of each alert with a look-up of it by its subject
    publish += [f"{p}.{subject}" for subject in spec.publishes]
    publish += [f"$JS.API.STREAM.MSG.GET.{_stream(p, s)}" for s in spec.looks_up]
    if spec.door:  # its door of `ecc adapter KIND --http-port` (sensors have none)
        publish.append(f"{p}.ingress.{kind}")
    publish += [f"$JS.API.STREAM.INFO.{_stream(p, s)}" for s in spec.streams()]
    # No CONSUMER.CREATE: the service creates each adapter's durable pull consumer
    # (command.bus.ensure_adapter_consumers), so an adapter can bind and pull but never
    # make a push consumer whose deliver subject is someone else's.
    for feed in spec.feeds:
        stream, durable = _stream(p, feed.stream), feed.durable
        publish += [f"$JS.API.CONSUMER.INFO.{stream}.{durable}",
                    f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}",
                    f"$JS.ACK.{stream}.{durable}.>"]
    return Grant(tuple(dict.fromkeys(publish)), (f"{inbox_prefix(spec.user)}.>",))


def _unit(unit_id: str, prefix: str) -> Grant:
    p, dispatch = prefix, _stream(prefix, "DISPATCH")
    return Grant(
        # No consumer of any kind: a push consumer's deliver subject could be another
        # unit's status subject, and the server would deliver there. A crew's device
        # hears its orders live on its own subject and reads the last one with a direct
        # get whose subject (in the API subject, so the grant checks it) is its own.
        publish=(f"{p}.unit.{unit_id}.>", "$JS.API.INFO",
                 f"$JS.API.DIRECT.GET.{dispatch}.{p}.dispatch.*.{unit_id}"),
        subscribe=(f"{p}.dispatch.*.{unit_id}", f"{inbox_prefix(unit_user(unit_id))}.>"),
    )


def _devices(prefix: str, adapters: Sequence[AdapterSpec]) -> Grant:
    """Publish under each MQTT topic root an adapter reads, in every namespace asked."""
    roots = dict.fromkeys(r for spec in adapters for r in spec.mqtt_roots())
    subjects = [f"{s}.>" for root in roots for s in _mqtt(prefix, root)]
    return Grant(tuple(subjects), (), ("MQTT",))


def _sim(prefix: str) -> Grant:
    p, dispatch = prefix, _stream(prefix, "DISPATCH")
    return Grant(
        # every crew's device, as consoles/field.py reads orders (no consumers)
        publish=(f"{p}.ingress.>", f"{p}.unit.>", "$JS.API.INFO",
                 f"$JS.API.DIRECT.GET.{dispatch}.>"),
        subscribe=(f"{p}.dispatch.>", f"{inbox_prefix(SIM)}.>"),
    )


def grant(user: str, prefix: str = "ecc", *, adapters: Sequence[AdapterSpec]) -> Grant:
    """What ``user`` may do in namespace ``prefix`` (or :data:`ANY_NAMESPACE`), with
    these adapters on the bus (their grants, and the devices' MQTT topic roots).

    Raises ValueError for a user that is none of ECC's components.
    """
    _check_prefix(prefix)
    if user == SERVICE:
        return Grant(None, None)
    if user == DEVICES:
        return _devices(prefix, adapters)
    if user == SIM:
        return _sim(prefix)
    spec = next((a for a in adapters if a.user == user), None)
    if spec is not None:
        return _adapter(spec, prefix)
    unit_id = unit_of_user(user)
    if unit_id is not None:
        return _unit(unit_id, prefix)
    raise ValueError(f"{user!r} is not an ECC component: ecc, adapter-<kind>, unit-<id>, "
                     "devices or sim")


def _allow(subjects: tuple[str, ...]) -> dict[str, list[str]]:
    # an empty allow list would allow everything: deny it all instead
    return {"allow": list(subjects)} if subjects else {"deny": [">"]}


def entry(user: str, password: str, prefix: str = "ecc", *,
          adapters: Sequence[AdapterSpec]) -> dict[str, object]:
    """``user``'s entry in nats-server's ``users`` list: name, password, connection types
    and permissions (none for the service: everything)."""
    g = grant(user, prefix, adapters=adapters)
    found: dict[str, object] = {"user": user, "password": password,
                                "allowed_connection_types": list(g.connection_types)}
    permissions: dict[str, object] = {}
    if g.publish is not None:
        permissions["publish"] = _allow(g.publish)
    if g.subscribe is not None:
        permissions["subscribe"] = _allow(g.subscribe)
    if permissions:
        found["permissions"] = permissions
    return found


def authorization(passwords: Mapping[str, str], prefix: str = "ecc", *,
                  adapters: Sequence[AdapterSpec]) -> str:
    """The nats-server ``authorization`` block for these users and passwords.

    One user per line, each a JSON object (nats-server's configuration format
    reads JSON); quoted strings are taken literally, so ``$JS…`` subjects are not
    variables.
    """
    lines = ["authorization {", "  users = ["]
    for user, password in passwords.items():
        lines.append(f"    {json.dumps(entry(user, password, prefix, adapters=adapters))}")
    lines += ["  ]", "}"]
    return "\n".join(lines)


# --- URLs ------------------------------------------------------------------------


def url(scheme: str, user: str, password: str, host: str, port: int) -> str:
    """``<scheme>://user:password@host:port``, both quoted for a URL."""
    return f"{scheme}://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{port}"


def credentials(address: str) -> tuple[str | None, str | None]:
    """``(user, password)`` of a URL, unquoted; None where it has none."""
    parts = urlsplit(address)
    return (unquote(parts.username) if parts.username is not None else None,
            unquote(parts.password) if parts.password is not None else None)


def redact(address: str) -> str:
    """The URL with its password replaced by ``***``, for logs and terminals; each of
    them, where ``address`` lists a cluster's servers comma-separated."""
    if "," in address:
        return ",".join(redact(one) for one in address.split(","))
    parts = urlsplit(address)
    if parts.password is None:
        return address
    netloc = f"{parts.username}:***@{parts.netloc.rpartition('@')[2]}"
    return urlunsplit(parts._replace(netloc=netloc))
