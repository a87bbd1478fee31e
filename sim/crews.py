# size: one simulated crew's whole order life over the real field-unit client
"""Shell: simulated crews that play every unit of a city over the real field-unit protocol.

Each unit gets the real client (:class:`consoles.field.FieldUnit`): it follows
its orders on ``<ns>.dispatch.*.<unit>`` and sends status reports and positions
on ``<ns>.unit.<unit>.*``, as a crew's device does. Nothing here reads the
service's state: a crew knows only its orders, and the service decides on its
reports like on any crew's.

An order's life, in simulated seconds (:class:`sim.clock.SimClock`):

    offered --answer (5-15 s)--> acknowledged (or declined, with a reason)
            --rest of turnout--> en_route --drive--> on_scene --work-->
            clear --drive home                         (most units)
            transporting --drive--> at_hospital --handover--> clear --drive home
                                                       (health units on medical and
                                                        traffic orders)

Turnout follows NFPA 1710 (60 s EMS, 80 s fire) and is the time from the offer
to rolling (``en_route``). The crew answers the offer early in it: the service
times an offer out after the catalogue's ``ack_s`` (30 s) of *wall* time, so a
crew that sat through its whole turnout before answering would be passed over
at real-time speed. The answer is kept under half of ``ack_within_s`` at any
speed.

An ``order.ended`` for the order a crew is working stops it; a crew that had
reported ``on_scene`` (the service moved it to ``returning``) reports ``clear``,
and it drives home. A crew is available from its ``clear``; an order that comes
while it drives home turns it round from where it is. An ``order.offered`` that
comes while a crew still works another order that never ended is a fault of the
system: it is logged (``crews.double_booked``) and counted, and the crew takes
the new order, as the service thinks it has.

Random draws come from ``random.Random(seed + unit index)``, all of an order's
drawn when it arrives, so a run repeats whatever the timing of the messages.
Reports and positions carry the wall clock (the client stamps them), as the
service runs on the wall clock too.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections import OrderedDict
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, tzinfo
from typing import Any

import nats.errors
import numpy as np
import structlog
from nats.aio.client import Client as NATS
from numpy.typing import NDArray
from scipy.sparse.csgraph import dijkstra

from command.city import City, Station, UnitSpec
from command.model import CrewStatus, OrderEnded, OrderOffered, StatusRejected
from command.roads import RoadNetwork
from command.subjects import Namespace
from command.tasks import check_cancelled
from consoles.field import FieldUnit
from sim.clock import SimClock

log = structlog.get_logger("ecc.sim.crews")

EARTH_RADIUS_M = 6_371_008.8
Point = tuple[float, float]  # (lat, lon)

# Seconds from the offer to rolling (NFPA 1710: 60 s EMS, 80 s fire), by agency; +-30 %.
TURNOUT_S: dict[str, float] = {"health": 60, "fire": 80, "police": 45, "utility": 120}
DEFAULT_TURNOUT_S = 90.0
JITTER = 0.3
# Seconds to answer an offer (read it, press the button), before the cap (see above).
ANSWER_S = (5.0, 15.0)
# Urban average speeds, km/h, by unit kind; then by agency.
KIND_KMH: dict[str, float] = {
    "engine": 35, "ladder": 35, "rescue": 35, "hazmat": 35, "als": 40, "bls": 40,
    "patrol": 45, "traffic": 45, "gas_crew": 30, "power_crew": 30, "pump": 30,
}
AGENCY_KMH: dict[str, float] = {"fire": 35, "health": 40, "police": 45, "utility": 30}
DEFAULT_KMH = 35.0
# Without a road network a crew drives the straight line this much longer.
DETOUR = 1.3
# Minutes on scene by the order's category (uniform between the two).
WORK_MIN: dict[str, tuple[float, float]] = {
    "fire": (15, 40), "medical": (8, 20), "traffic": (10, 30), "gas_leak": (20, 45),
    "flood": (30, 90), "crime": (10, 30), "hazmat": (30, 60), "maintenance": (20, 40),
    "structural": (30, 60), "utility_outage": (20, 60), "other": (10, 20),
}
# Health crews take a patient to hospital from these categories.
TRANSPORTS = frozenset({"medical", "traffic"})
HANDOVER_S = 600.0
# A position every 10 simulated seconds while driving, but no more than 10 a wall
# second per unit: at 1000x, 80 units would otherwise send 8000 a second.
POSITION_EVERY_S = 10.0
MIN_WALL_BETWEEN_POSITIONS_S = 0.1
AT_HOME_M = 50.0
REPORT_ATTEMPTS = 3
ROUTE_CACHE = 32
DECLINE_REASONS = (
    "crew on a meal break", "vehicle refuelling", "equipment check under way",
    "crew member injured at previous call", "vehicle fault", "blocked in by traffic",
)


@dataclass(frozen=True)
class Hospital:
    id: str
    name: str
    lat: float
    lon: float


def hospitals_of(city_doc: dict[str, Any]) -> list[Hospital]:
    """The ``[[hospital]]`` entries of a parsed city file. Raises :class:`ValueError`
    naming the entry that lacks an id, a name, or a valid position."""
    out = []
    for n, raw in enumerate(city_doc.get("hospital", []), 1):
        try:
            hospital = Hospital(id=str(raw["id"]), name=str(raw["name"]),
                                lat=float(raw["lat"]), lon=float(raw["lon"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"[[hospital]] #{n}: needs id, name, lat and lon ({exc})") from exc
        if not (-90 <= hospital.lat <= 90 and -180 <= hospital.lon <= 180):
            raise ValueError(f"[[hospital]] #{n} ({hospital.id}): position out of range")
        out.append(hospital)
    return out


@dataclass
class CrewStats:
    offers: int = 0
    acknowledged: int = 0
    declined: int = 0
    arrived: int = 0
    transported: int = 0
    cleared: int = 0
    double_booked: int = 0
    off_duty: int = 0  # shift ends: crews gone off duty


# --- pure: geometry and the draws of an order ----------------------------------------


def metres(a: Point, b: Point) -> float:
    """Great-circle distance in metres."""
    p1, p2 = math.radians(a[0]), math.radians(b[0])
    h = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * \
        math.sin(math.radians(b[1] - a[1]) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


class Path:
    """A polyline a crew drives; ``length_m`` is what it drives (``stretch`` times the
    line's own length, for a straight line standing in for the roads)."""

    def __init__(self, points: Sequence[Point], stretch: float = 1.0) -> None:
        if not points:
            raise ValueError("a path needs a point")
        self.points = list(points)
        self.cumulative = [0.0]
        for a, b in zip(self.points, self.points[1:], strict=False):
            self.cumulative.append(self.cumulative[-1] + metres(a, b))
        self.stretch = stretch
        self.length_m = self.cumulative[-1] * stretch

    def at(self, fraction: float) -> Point:
        """The point ``fraction`` (0 to 1) of the way along."""
        along = min(1.0, max(0.0, fraction)) * self.cumulative[-1]
        for i in range(1, len(self.points)):
            if along <= self.cumulative[i] or i == len(self.points) - 1:
                seg = self.cumulative[i] - self.cumulative[i - 1]
                f = 0.0 if seg == 0 else min(1.0, (along - self.cumulative[i - 1]) / seg)
                (la, lo), (lb, mb) = self.points[i - 1], self.points[i]
                return la + (lb - la) * f, lo + (mb - lo) * f
        return self.points[-1]


def straight(a: Point, b: Point) -> Path:
    return Path([a, b], stretch=DETOUR)


def predecessors(roads: RoadNetwork, node: int) -> NDArray[np.int32]:
    """For every node, the next node on its shortest way *to* ``node`` (-9999: none)."""
    _, pred = dijkstra(roads.reverse, directed=True, indices=node, return_predecessors=True)
    return np.asarray(pred, dtype=np.int32)


def road_path(roads: RoadNetwork, a: Point, b: Point, pred: NDArray[np.int32],
              a_node: int, b_node: int) -> Path | None:
    """The shortest way from ``a`` to ``b`` over ``pred`` (see :func:`predecessors` of
    ``b_node``), with the straight legs to and from the network; None if none leads there."""
    nodes = [a_node]
    while nodes[-1] != b_node:
        nxt = int(pred[nodes[-1]])
        if nxt < 0 or len(nodes) > len(roads):
            return None
        nodes.append(nxt)
    return Path([a, *((float(roads.lat[n]), float(roads.lon[n])) for n in nodes), b])


def speed_kmh(kind: str, agency: str) -> float:
    return KIND_KMH.get(kind, AGENCY_KMH.get(agency, DEFAULT_KMH))


@dataclass(frozen=True)
class Plan:
    """What a crew will do with one order, drawn when it arrives (simulated seconds)."""

    answer_s: float
    decline: str | None  # the reason, when the crew declines
    turnout_s: float
    work_s: float
    handover_s: float
    transports: bool


def plan(rng: random.Random, order: OrderOffered, agency: str, *, decline_rate: float,
         speed: float) -> Plan:
    """Draw an order's timings. The same draws, in the same order, for every order, so
    a unit's random sequence does not depend on what it is sent."""
    answer = min(rng.uniform(*ANSWER_S), 0.5 * order.ack_within_s * speed)
    declines = rng.random() < decline_rate
    reason = rng.choice(DECLINE_REASONS)
    turnout = TURNOUT_S.get(agency, DEFAULT_TURNOUT_S) * rng.uniform(1 - JITTER, 1 + JITTER)
    low, high = WORK_MIN.get(order.category, WORK_MIN["other"])
    work = rng.uniform(low, high) * 60
    handover = HANDOVER_S * rng.uniform(1 - JITTER, 1 + JITTER)
    return Plan(answer_s=answer, decline=reason if declines else None,
                turnout_s=max(turnout, answer), work_s=work, handover_s=handover,
                transports=agency == "health" and order.category in TRANSPORTS)


# --- the shell -------------------------------------------------------------------------


def on_shift(shift: str, hour: int) -> bool:
    """Whether a crew of this shift works at this local hour (day: 08:00-20:00)."""
    if shift == "day":
        return 8 <= hour < 20
    if shift == "night":
        return not 8 <= hour < 20
    return True


class Crews:
    """Every unit of ``city``, played until cancelled: ``await crews.run()``.

    ``stats`` counts what the crews did; ``ready`` is set once every unit follows its
    orders. ``decline_rate`` is the chance a crew declines an offer (0 to 1).
    """

    def __init__(self, nc: NATS, ns: Namespace, city: City, hospitals: list[Hospital],
                 clock: SimClock, *, seed: int = 1, decline_rate: float = 0.05,
                 roads: RoadNetwork | None = None, zone: tzinfo | None = None) -> None:
        if not 0.0 <= decline_rate <= 1.0:
            raise ValueError(f"decline_rate must be between 0 and 1, got {decline_rate}")
        self.nc, self.ns, self.city, self.clock = nc, ns, city, clock
        self.hospitals = list(hospitals)
        self.seed = seed
        self.decline_rate = decline_rate
        self.roads = roads
        self.zone = zone or clock.start.tzinfo or UTC  # the city's clock, for shifts
        self.stats = CrewStats()
        self.ready = asyncio.Event()
        self._routes: OrderedDict[int, NDArray[np.int32]] = OrderedDict()
        units = [(s, u) for s in city.stations for u in s.units]
        self.crews = [_Crew(self, i, s, u) for i, (s, u) in enumerate(units)]

    async def run(self) -> None:
        started: list[_Crew] = []
        try:
            for crew in self.crews:
                await crew.device.start()
                started.append(crew)
            self.ready.set()
            log.info("crews.started", units=len(self.crews), speed=self.clock.speed,
                     roads=self.roads is not None, hospitals=len(self.hospitals))
            async with asyncio.TaskGroup() as tg:
                for crew in self.crews:
                    tg.create_task(crew.run(), name=f"crew {crew.unit_id}")
                if any(crew.shift != "24h" for crew in self.crews):
                    tg.create_task(self._shifts(), name="crew shifts")
        finally:
            # all at once: eighty devices stopping one after another on a busy machine
            # outlast a caller's patience
            await asyncio.gather(*(crew.device.stop() for crew in started),
                                 return_exceptions=True)

    async def _shifts(self) -> None:
        """Each simulated minute: crews whose shift is over go off duty once they are free;
        crews whose shift begins come on (a clear from off duty makes them available)."""
        while True:
            # a cancel that nats-py's wait_for swallowed (Python 3.11) must still end the
            # loop, or the TaskGroup never ends (seen in CI: "the crews did not stop")
            check_cancelled()
            hour = self.clock.now().astimezone(self.zone).hour
            for crew in self.crews:
                on = on_shift(crew.shift, hour)
                if not on and not crew.off_duty and crew.order is None:
                    await crew._report("off_duty", reason="end of shift")
                    crew.off_duty = True
                    self.stats.off_duty += 1
                elif on and crew.off_duty:
                    await crew._report("clear", reason="start of shift")
                    crew.off_duty = False
            await self.clock.sleep(60)

    def nearest_hospital(self, where: Point) -> Hospital | None:
        return min(self.hospitals, key=lambda h: metres(where, (h.lat, h.lon)), default=None)

    async def route(self, a: Point, b: Point) -> Path:
        """The way a crew drives from ``a`` to ``b``: the road network's shortest path, or
        the straight line with a detour factor (no network, or no road leads there)."""
        if self.roads is None:
            return straight(a, b)
        nodes, _ = self.roads.nearest(np.array([a[0], b[0]]), np.array([a[1], b[1]]))
        a_node, b_node = int(nodes[0]), int(nodes[1])
        pred = self._routes.get(b_node)
        if pred is None:  # one Dijkstra per destination, off the loop; the last few kept
            pred = await asyncio.to_thread(predecessors, self.roads, b_node)
            self._routes[b_node] = pred
            while len(self._routes) > ROUTE_CACHE:
                self._routes.popitem(last=False)
        else:
            self._routes.move_to_end(b_node)
        path = road_path(self.roads, a, b, pred, a_node, b_node)
        if path is None:
            log.warning("crews.no_road", frm=a, to=b)
            return straight(a, b)
        return path


class _Crew:
    """One unit's crew: its device, where it is, and the one thing it is doing."""

    def __init__(self, crews: Crews, index: int, station: Station, spec: UnitSpec) -> None:
        self.crews = crews
        self.unit_id = spec.id
        self.kind = spec.kind
        self.agency = station.agency
        self.home: Point = (station.lat, station.lon)
        self.pos: Point = self.home
        self.rng = random.Random(crews.seed + index)
        self.device = FieldUnit(crews.nc, crews.ns, spec.id, agency=station.agency)
        self.shift = spec.shift
        self.off_duty = False
        self.log = log.bind(unit_id=spec.id)
        # the order being worked, until the crew clears or declines it or it ends
        self.order: OrderOffered | None = None
        self.reported: CrewStatus | None = None  # the last status reported on it
        self._activity: asyncio.Task[None] | None = None

    async def run(self) -> None:
        try:
            while True:
                check_cancelled()
                message = await self.device.messages.get()
                try:
                    await self.handle(message)
                except Exception:  # one bad turn must not end the crew
                    self.log.exception("crews.handle_failed", message=message.type)
        finally:
            await self._stop()

    async def handle(self, message: OrderOffered | OrderEnded | StatusRejected) -> None:
        if isinstance(message, OrderOffered):
            await self._offered(message)
        elif isinstance(message, OrderEnded):
            await self._ended(message)
        else:
            self.log.warning("crews.status_rejected", status=message.status,
                             reason=message.reason, **self._ids())

    async def _offered(self, order: OrderOffered) -> None:
        if self.order is not None and self.order.order_id == order.order_id:
            return  # the same order again (a device reconnecting)
        stats = self.crews.stats
        if self.order is not None:
            stats.double_booked += 1
            self.log.error("crews.double_booked", new_order_id=order.order_id,
                           new_incident_id=order.incident_id, new_task_id=order.task_id,
                           last_reported=self.reported, **self._ids())
        stats.offers += 1
        await self._stop()
        self.order, self.reported = order, None
        self.log.info("crews.offered", order_id=order.order_id, incident_id=order.incident_id,
                      task_id=order.task_id, category=order.category, priority=order.priority)
        # drawn here, not in the activity: an order taken away before its activity ran
        # still uses its draws, so the unit's random sequence does not depend on timing
        todo = plan(self.rng, order, self.agency, decline_rate=self.crews.decline_rate,
                    speed=self.crews.clock.speed)
        self._start(self._work(order, todo))

    async def _ended(self, ended: OrderEnded) -> None:
        order = self.order
        if order is None or (order.incident_id, order.task_id) != (ended.incident_id,
                                                                    ended.task_id):
            return  # an order this crew already cleared or declined
        await self._stop()
        self.order = None
        self.log.info("crews.order_ended", reason=ended.reason, last_reported=self.reported,
                      order_id=order.order_id, incident_id=order.incident_id,
                      task_id=order.task_id)
        if self.reported in ("on_scene", "transporting", "at_hospital"):
            # the service moved an on-scene unit to returning: available only when it clears
            await self._report("clear")
        self._start(self._go_home())

    # --- what a crew does -----------------------------------------------------------

    async def _work(self, order: OrderOffered, todo: Plan) -> None:
        crews = self.crews
        clock, stats = crews.clock, crews.stats
        task_id = order.task_id
        await clock.sleep(todo.answer_s)
        if todo.decline is not None:
            self.order = None  # the order.ended that follows is expected
            await self._report("declined", reason=todo.decline, task_id=task_id, order=order)
            stats.declined += 1
            await self._go_home()
            return
        await self._report("acknowledged", task_id=task_id, order=order)
        stats.acknowledged += 1
        await clock.sleep(todo.turnout_s - todo.answer_s)
        await self._report("en_route", task_id=task_id, order=order)
        await self._drive((order.location.lat, order.location.lon))
        await self._report("on_scene", task_id=task_id, order=order)
        stats.arrived += 1
        await clock.sleep(todo.work_s)
        hospital = crews.nearest_hospital(self.pos) if todo.transports else None
        if todo.transports and hospital is None:
            self.log.warning("crews.no_hospital", **self._ids())
        if hospital is not None:
            await self._report("transporting", task_id=task_id, order=order)
            stats.transported += 1
            await self._drive((hospital.lat, hospital.lon))
            await self._report("at_hospital", task_id=task_id, order=order)
            await clock.sleep(todo.handover_s)
        self.order = None  # from here the order.ended (task completed) is expected
        # No task_id: if the task ended meanwhile (a dispatcher resolved the incident), a
        # clear naming it would be refused and leave the unit returning.
        await self._report("clear", order=order)
        stats.cleared += 1
        await self._go_home()

    async def _go_home(self) -> None:
        if metres(self.pos, self.home) > AT_HOME_M:
            await self._drive(self.home)

    async def _drive(self, to: Point) -> None:
        """Drive from where the crew is to ``to``, reporting positions on the way."""
        clock = self.crews.clock
        path = await self.crews.route(self.pos, to)
        mps = speed_kmh(self.kind, self.agency) / 3.6
        duration = path.length_m / mps
        every = max(POSITION_EVERY_S, MIN_WALL_BETWEEN_POSITIONS_S * clock.speed)
        start, t = clock.elapsed(), 0.0
        try:
            while t < duration:
                t = min(t + every, duration)
                await clock.sleep_until(start + t)
                self.pos = path.at(t / duration)
                await self._position(mps if t < duration else 0.0)
        except asyncio.CancelledError:  # turned round: be where the drive had got to
            if duration > 0:
                self.pos = path.at((clock.elapsed() - start) / duration)
            raise
        self.pos = to

    # --- the device -----------------------------------------------------------------

    async def _report(self, status: CrewStatus, *, reason: str = "", task_id: str | None = None,
                      order: OrderOffered | None = None) -> None:
        for attempt in range(1, REPORT_ATTEMPTS + 1):
            try:
                await self.device.report(status, reason=reason, task_id=task_id)
                check_cancelled()
                break
            except nats.errors.Error as exc:  # no ack: the broker may not have it
                self.log.warning("crews.report_failed", status=status, attempt=attempt,
                                 error=repr(exc), **self._ids(order))
                if attempt == REPORT_ATTEMPTS:
                    raise
                await asyncio.sleep(0.2 * attempt)
        self.reported = status
        self.log.info("crews.reported", status=status, reason=reason or None,
                      **self._ids(order))

    async def _position(self, mps: float) -> None:
        try:
            await self.device.position(self.pos[0], self.pos[1], speed_mps=mps)
        except nats.errors.Error as exc:  # positions are best effort: the next one follows
            self.log.warning("crews.position_failed", error=repr(exc))

    def _ids(self, order: OrderOffered | None = None) -> dict[str, str | None]:
        order = order or self.order
        if order is None:
            return {"order_id": None, "incident_id": None, "task_id": None}
        return {"order_id": order.order_id, "incident_id": order.incident_id,
                "task_id": order.task_id}

    # --- the one activity -----------------------------------------------------------

    def _start(self, work: Coroutine[Any, Any, None]) -> None:
        self._activity = asyncio.create_task(work, name=f"crew {self.unit_id}")
        self._activity.add_done_callback(self._finished)

    def _finished(self, activity: asyncio.Task[None]) -> None:
        if not activity.cancelled() and (exc := activity.exception()) is not None:
            # logged; the crew waits for its next order
            self.log.error("crews.activity_failed", exc_info=exc, **self._ids())

    async def _stop(self) -> None:
        """Cancel what the crew is doing and wait until it has stopped."""
        activity, self._activity = self._activity, None
        # Cancel until it has stopped: on Python 3.11, asyncio.wait_for (which nats-py's
        # publish awaits) swallows a cancel that lands just as the broker's ack does, and
        # the crew would carry on with the order it was taken off.
        while activity is not None and not activity.done():
            activity.cancel()
            await asyncio.wait({activity}, timeout=0.05)
