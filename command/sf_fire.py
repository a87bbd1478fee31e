"""Core: the San Francisco Fire Department's "Calls for Service" as response-time measures.

DataSF's export has one row per unit per call, with the call's ``Received
DtTm`` and each unit's ``Dispatch DtTm``, ``Response DtTm`` (the unit en
route), ``On Scene DtTm``, ``Unit Type`` and ``Unit sequence in call
dispatch``, local Pacific times as ``MM/DD/YYYY hh:mm:ss AM/PM``. The same
intervals as ECC's (:mod:`workflows.intervals`) come out of them:

- ``call_processing``: received → the first unit dispatched (the earliest
  dispatch; on a tie, the lowest unit sequence);
- ``turnout``: each unit's dispatch → response;
- ``travel``: the first unit on scene, response → on scene;
- ``travel_first_engine``: the first ``ENGINE`` on scene, response → on scene;
- ``total_response``: received → the first unit on scene.

There is no ``verification``: the records have no such moment. A unit is EMS
(agency ``health``, as ECC calls it) when its type is ``MEDIC``, ``PRIVATE``
(a private ambulance) or ``RESCUE CAPTAIN`` (the SFFD's EMS field
supervisors); every other type is ``fire``. A call's category is its ``Call
Type`` and its priority the ``Priority`` column as the department writes it
(``3`` an emergency, ``2`` not). A time that does not read is a missing step.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from workflows.intervals import ENGINE, Interval, Measure

PACIFIC = ZoneInfo("America/Los_Angeles")
_TIME = "%m/%d/%Y %I:%M:%S %p"
EMS_UNIT_TYPES = frozenset({"MEDIC", "PRIVATE", "RESCUE CAPTAIN"})


@dataclass(frozen=True, slots=True)
class UnitRow:
    """One unit on one call, as the department recorded it."""

    call: str
    unit_id: str
    unit_type: str
    sequence: int
    call_type: str
    priority: str
    received: datetime | None
    dispatched: datetime | None
    responded: datetime | None
    on_scene: datetime | None

    @property
    def agency(self) -> str:
        return "health" if self.unit_type in EMS_UNIT_TYPES else "fire"


def parse_time(text: str) -> datetime | None:
    """A Pacific ``MM/DD/YYYY hh:mm:ss AM/PM`` as UTC, or None if it does not read."""
    try:
        local = datetime.strptime(text.strip(), _TIME)
    except ValueError:
        return None
    return local.replace(tzinfo=PACIFIC).astimezone(UTC)


def read_rows(texts: Iterable[str]) -> list[UnitRow]:
    """The unit rows of one or more CSV files, each (call, unit) once.

    A file without the columns needed gives no rows; a row without a call number
    or unit id is skipped.
    """
    out: dict[tuple[str, str], UnitRow] = {}
    for text in texts:
        reader = csv.DictReader(io.StringIO(text))
        if not {"Call Number", "Unit ID", "Received DtTm"} <= set(reader.fieldnames or ()):
            continue
        for row in reader:
            call, unit = (row.get("Call Number") or "").strip(), (row.get("Unit ID") or "").strip()
            if not call or not unit or (call, unit) in out:
                continue
            try:
                sequence = int(row.get("Unit sequence in call dispatch") or 0)
            except ValueError:
                sequence = 0
            out[(call, unit)] = UnitRow(
                call=call, unit_id=unit, unit_type=(row.get("Unit Type") or "").strip().upper(),
                sequence=sequence, call_type=(row.get("Call Type") or "").strip() or "-",
                priority=(row.get("Priority") or "").strip() or "-",
                received=parse_time(row.get("Received DtTm") or ""),
                dispatched=parse_time(row.get("Dispatch DtTm") or ""),
                responded=parse_time(row.get("Response DtTm") or ""),
                on_scene=parse_time(row.get("On Scene DtTm") or ""))
    return list(out.values())


def measures(rows: Iterable[UnitRow]) -> list[Measure]:
    """The measures of every call in ``rows``, call by call in order of first appearance."""
    calls: dict[str, list[UnitRow]] = {}
    for row in rows:
        calls.setdefault(row.call, []).append(row)
    out: list[Measure] = []
    for call, units in calls.items():
        out += _call(call, units)
    return out


def _call(call: str, units: list[UnitRow]) -> list[Measure]:
    first = units[0]
    received = min((u.received for u in units if u.received), default=None)

    def m(interval: Interval, start: datetime, end: datetime, unit: UnitRow) -> Measure:
        return Measure(interval, (end - start).total_seconds(), call, first.call_type,
                       first.priority, unit.agency, unit.unit_id)

    out: list[Measure] = []
    # sorted by time, then sequence, then unit id (unique in a call): never by the row
    dispatched = sorted((u.dispatched, u.sequence, u.unit_id, u) for u in units if u.dispatched)
    if received and dispatched:
        at, _, _, lead = dispatched[0]
        out.append(m("call_processing", received, at, lead))
    for u in sorted(units, key=lambda u: u.sequence):
        if u.dispatched and u.responded:
            out.append(m("turnout", u.dispatched, u.responded, u))
    arrived = [(at, u) for at, _, _, u in sorted(
        (u.on_scene, u.sequence, u.unit_id, u) for u in units if u.on_scene)]
    if arrived and arrived[0][1].responded:
        out.append(m("travel", arrived[0][1].responded, arrived[0][0], arrived[0][1]))
    engines = [(at, u) for at, u in arrived if u.unit_type == ENGINE.upper()]
    if engines and engines[0][1].responded:
        out.append(m("travel_first_engine", engines[0][1].responded, engines[0][0],
                     engines[0][1]))
    if received and arrived:
        out.append(m("total_response", received, arrived[0][0], arrived[0][1]))
    return out
