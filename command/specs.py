"""Core: what an adapter declares about itself on the bus, once.

An adapter is a border process with a NATS user of its own (``adapter-<kind>``).
Its :class:`AdapterSpec` names the durable consumers it reads (:class:`Feed`:
stream, durable name, filter subject), what it publishes beside its own signals
and dead letters, and the streams it writes. From that one declaration:

* the service creates the adapter's consumers
  (:func:`command.bus.ensure_adapter_consumers`), and the adapter binds to the
  same ones (:func:`command.bus.feed_consumer`);
* the MQTT stream takes the subjects of the adapters' MQTT feeds
  (:func:`command.bus.stream_configs`);
* :mod:`command.natsauth` computes the adapter's grant, and the ``devices``
  user's (the MQTT topic roots the feeds read);
* deploy/nats-auth.conf is generated (:mod:`command.natsconf`, ``ecc nats-auth``).

Why the type is here and the instances are in ``adapters/``: an adapter module
knows its own subjects (the video adapter alone knows Frigate's topic root), and
``adapters`` imports ``command`` (the bus, the wire models), so ``command`` may not
import ``adapters``. The spec is plain data that ``command`` reads; the wiring
(``ecc/``), which imports both, hands ``adapters.ingest.SPECS`` to the functions
that need them. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from command.subjects import Namespace

__all__ = ["AdapterSpec", "Feed", "by_kind"]


@dataclass(frozen=True)
class Feed:
    """One durable pull consumer an adapter reads.

    ``stream`` is the short name (``INGRESS``, ``EVENTS``, ``MQTT``). ``subject`` is the
    filter after the namespace prefix (``ingress.hotline``), or, with ``mqtt_root``,
    after the MQTT topic root: ``root="frigate", subject="events"`` is the subject
    ``frigate.events`` in namespace ``ecc`` and ``<ns>.frigate.events`` in any other
    (:meth:`command.subjects.Namespace.mqtt`).
    """

    stream: str
    durable: str
    subject: str
    mqtt_root: str | None = None

    def subject_in(self, ns: Namespace) -> str:
        """The filter subject in namespace ``ns``."""
        if self.mqtt_root is None:
            return f"{ns.prefix}.{self.subject}"
        return f"{ns.mqtt(self.mqtt_root)}.{self.subject}"


@dataclass(frozen=True)
class AdapterSpec:
    """One adapter on the bus: its user ``adapter-<kind>`` publishes its signals
    ``<ns>.signal.<kind>.>`` and dead letters ``<ns>.deadletter.<kind>``, and

    * ``feeds``: the durable consumers it reads (the service creates them);
    * ``door``: whether it has an ingress subject ``<ns>.ingress.<kind>`` (the HTTP
      ingress of ``ecc adapter KIND --http-port`` publishes there);
    * ``publishes``: other subjects it publishes, after the namespace prefix;
    * ``writes``: streams beside SIGNALS and DEADLETTER that it writes to;
    * ``looks_up``: streams it reads one message of by subject (a direct get);
    * ``about``: one line on what it reads, for deploy/nats-auth.conf.
    """

    kind: str
    feeds: tuple[Feed, ...]
    door: bool = True
    publishes: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    looks_up: tuple[str, ...] = ()
    about: str = ""

    @property
    def user(self) -> str:
        return f"adapter-{self.kind}"

    def feed(self, durable: str) -> Feed:
        """The feed of that durable name; raises KeyError for none."""
        for feed in self.feeds:
            if feed.durable == durable:
                return feed
        raise KeyError(durable)

    def streams(self) -> tuple[str, ...]:
        """The streams (short names) it reads or writes, read first: it waits for them
        to exist, since only the service creates streams."""
        read = tuple(dict.fromkeys(f.stream for f in self.feeds))
        return tuple(dict.fromkeys((*read, "SIGNALS", "DEADLETTER", *self.writes)))

    def mqtt_roots(self) -> tuple[str, ...]:
        """The MQTT topic roots its feeds read (devices publish under them)."""
        return tuple(dict.fromkeys(f.mqtt_root for f in self.feeds if f.mqtt_root))


def by_kind(specs: Iterable[AdapterSpec]) -> dict[str, AdapterSpec]:
    """The specs by kind; raises ValueError if two declare one kind or one durable."""
    found: dict[str, AdapterSpec] = {}
    durables: set[tuple[str, str]] = set()
    for spec in specs:
        if spec.kind in found:
            raise ValueError(f"two adapters declare the kind {spec.kind!r}")
        for feed in spec.feeds:
            if (feed.stream, feed.durable) in durables:
                raise ValueError(f"two feeds are the consumer {feed.stream}/{feed.durable}")
            durables.add((feed.stream, feed.durable))
        found[spec.kind] = spec
    return found
