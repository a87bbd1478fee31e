"""Core: every NATS subject and stream name, in one place.

A :class:`Namespace` prefixes them all, so several systems (or several tests)
can share one nats-server without seeing each other. The default namespace
``ecc`` gives the wire names in docs/protocol.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
# Unit ids appear in subjects as they are (E12, A31): letters, digits, _ and -.
_UNIT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,39}$")
_PREFIX = re.compile(r"^[a-z][a-z0-9]{0,15}$")


@dataclass(frozen=True)
class Namespace:
    prefix: str = "ecc"

    def __post_init__(self) -> None:
        if not _PREFIX.fullmatch(self.prefix):
            raise ValueError(f"namespace must match {_PREFIX.pattern}, got {self.prefix!r}")

    # --- subjects -----------------------------------------------------------
    def signal(self, source: str, category: str) -> str:
        return f"{self.prefix}.signal.{_token(source)}.{_token(category)}"

    @property
    def signals(self) -> str:
        return f"{self.prefix}.signal.>"

    def event(self, kind: str, entity_id: str) -> str:
        return f"{self.prefix}.event.{_token(kind)}.{entity_id}"

    @property
    def events(self) -> str:
        return f"{self.prefix}.event.>"

    def dispatch(self, agency: str, unit: str) -> str:
        return f"{self.prefix}.dispatch.{_token(agency)}.{_unit(unit)}"

    def dispatch_to(self, unit: str) -> str:
        """Every order for one unit, whatever its agency: what a crew's device follows."""
        return f"{self.prefix}.dispatch.*.{_unit(unit)}"

    def unit_status(self, unit: str) -> str:
        return f"{self.prefix}.unit.{_unit(unit)}.status"

    @property
    def unit_statuses(self) -> str:
        return f"{self.prefix}.unit.*.status"

    def unit_position(self, unit: str) -> str:
        return f"{self.prefix}.unit.{_unit(unit)}.position"

    @property
    def unit_positions(self) -> str:
        return f"{self.prefix}.unit.*.position"

    def unit_of(self, subject: str) -> str | None:
        """The unit id of a ``<ns>.unit.<unit>.<kind>`` subject, or None."""
        parts = subject.split(".")
        if len(parts) == 4 and parts[0] == self.prefix and parts[1] == "unit" and \
                _UNIT.fullmatch(parts[2]):
            return parts[2]
        return None

    @property
    def dispatches(self) -> str:
        return f"{self.prefix}.dispatch.>"

    def deadletter(self, source: str) -> str:
        return f"{self.prefix}.deadletter.{source if _TOKEN.fullmatch(source) else 'unknown'}"

    @property
    def deadletters(self) -> str:
        return f"{self.prefix}.deadletter.>"

    def ingress(self, kind: str) -> str:
        """Raw records from outside (hotline calls, video webhooks, CAP alerts) before their
        adapter reads them: ``<ns>.ingress.hotline|video|cap``."""
        return f"{self.prefix}.ingress.{_token(kind)}"

    @property
    def ingresses(self) -> str:
        return f"{self.prefix}.ingress.>"

    def mqtt(self, root: str) -> str:
        """Where MQTT topics ``<root>/...`` land: the default namespace takes them as devices
        send them (``sensors.wl-001.water_level``); any other namespace (a test, a second
        system on one server) has its devices publish under ``<ns>/<root>/...``."""
        return root if self.prefix == "ecc" else f"{self.prefix}.{root}"

    def warning(self, incident_id: str) -> str:
        """Public warnings ECC emits (CAP 1.2 XML), one subject per incident."""
        return f"{self.prefix}.warning.cap.{incident_id}"

    @property
    def warnings(self) -> str:
        return f"{self.prefix}.warning.>"

    def parse_signal_subject(self, subject: str) -> tuple[str | None, str | None]:
        """``(source, category)`` of a signal subject; ``None`` where a token is unusable."""
        parts = subject.split(".")
        if len(parts) != 4 or parts[0] != self.prefix or parts[1] != "signal":
            return None, None
        source, category = parts[2], parts[3]
        return (source if _TOKEN.fullmatch(source) else None,
                category if _TOKEN.fullmatch(category) else None)

    # --- streams ------------------------------------------------------------
    def stream(self, name: str) -> str:
        """Stream names: ``ECC_SIGNALS``, ``ECC_EVENTS``, ``ECC_DISPATCH``, ``ECC_UNITS``,
        ``ECC_POSITIONS``, ``ECC_DEADLETTER``, ``ECC_INGRESS``, ``ECC_MQTT``, ``ECC_WARNINGS``."""
        return f"{self.prefix.upper()}_{name}"


def _unit(value: str) -> str:
    if not _UNIT.fullmatch(value):
        raise ValueError(f"unit id must match {_UNIT.pattern}, got {value!r}")
    return value


def _token(value: str) -> str:
    if not _TOKEN.fullmatch(value):
        raise ValueError(f"subject token must match {_TOKEN.pattern}, got {value!r}")
    return value
