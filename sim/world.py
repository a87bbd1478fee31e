# size: every source's messages planned from one seed with the ground truth they report
"""Core: the simulated city's outside world, planned ahead from a seed.

:func:`plan` turns a city file, a scenario and a seed into a :class:`Plan`: the
emergencies that happen (the ground truth) and every message the outside world
sends about them, in time order and byte for byte as the real sources send it:

* sensors: ``sensors/<device>/<metric>`` MQTT payloads ``{"value": v, "at": ISO}``
  (:mod:`adapters.sensor`) from every device all the time, climbing past the
  kind's ``alarm_at`` at a device an emergency is at;
* cameras: Frigate ``frigate/events`` payloads (:mod:`adapters.video`), a tracked
  object whose score climbs past its label's ``min_score``;
* callers: hotline call records (:class:`adapters.hotline.CallRecord`) in Chinese
  or English that the hotline's rules file under the emergency's category.

Noise belongs to the world too: background readings, a sensor flapping round its
threshold, a caller who rings twice, lone calls and low-score detections that are
false alarms, and one device that goes dead. Emergencies of one fusion family are
kept further apart than fusion's radius (or window) plus the spread of their
evidence, and all of one emergency's evidence lies within half its category's
radius, so the ground truth is also what a correct ECC makes of it:
:meth:`Plan.owner` names the emergency an adapter's signal belongs to.

Pure and deterministic: no clock, no I/O; randomness is ``random.Random`` seeded
from the seed (one stream per purpose), so the same inputs give the same bytes.
:func:`plan` raises ValueError for an unknown scenario, a naive ``start``, a
duration that is not positive, or a city file without stations (and the
adapters' SensorRejected / VideoRejected, both ValueErrors, for bad entries).
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any, Literal

from adapters.hotline import CallRecord, classify
from adapters.sensor import Device, SensorKind, parse_registry
from adapters.video import FRIGATE_ROOT, Camera, VideoConfig, parse_video_config, signal_id
from command.fusion import distance_m, rule_for
from command.model import Reporter
from command.settings import builtin_catalogue
from sim import voices
from workflows.geo import Location

__all__ = ["SCENARIOS", "Emergency", "Emission", "Plan", "Scenario", "plan"]

# the simulated city runs on the built-in catalogue: its calls classify and its signals
# fuse as the service reads them
_CATALOGUE = builtin_catalogue()
# the MQTT topic the video adapter reads Frigate's events on (its spec's topic root)
FRIGATE_TOPIC = f"{FRIGATE_ROOT}/events"
MAX_SPAN_S = 1200.0  # an emergency's evidence all comes within this of its start
SENSOR_REACH_M = 30.0  # a point sensor (water, gas, smoke, strain) sees what is at it
CAMERA_RANGE_M = 100.0
DISTRICT_RADIUS_M = 3000.0  # random places: within this of a district's stations
PLUMES = frozenset({"hazmat"})  # seen by sensors downwind, up to half fusion's radius
FRIGATE_THRESHOLD = 0.7  # Frigate's own: an object is a false positive until it scores this

# Share of the busiest hour's rate by hour of the day (start's own clock): calls follow
# people's activity, quietest before dawn and busiest in the late afternoon.
RHYTHM = (0.45, 0.38, 0.32, 0.28, 0.27, 0.32, 0.48, 0.70, 0.85, 0.90, 0.92, 0.95,
          0.95, 0.92, 0.92, 0.95, 1.00, 1.00, 0.98, 0.92, 0.85, 0.75, 0.65, 0.55)


@dataclass(frozen=True)
class Scenario:
    """What a simulated hour holds: emergencies per hour by category, and set pieces."""

    name: str
    description: str
    rates: Mapping[str, float]  # real emergencies per hour at the busiest hour (RHYTHM)
    steady: Mapping[str, float] = field(default_factory=dict)  # per hour, any hour
    false_alarms: float = 2.0  # per hour at the busiest hour
    staged: tuple[str, ...] = ()  # set pieces early in the run: "pileup", "chemical"


# About 30 an hour by day: a 10-minute window holds a handful.
_NORMAL = {"medical": 11.0, "traffic": 8.0, "crime": 4.0, "fire": 2.5, "gas_leak": 1.5,
           "utility_outage": 0.6, "structural": 0.3, "flood": 0.15}

SCENARIOS: dict[str, Scenario] = {
    "normal": Scenario("normal", "An ordinary day: mostly medical calls and road "
                       "collisions, some fires, crime and gas, rarely a flood.", _NORMAL),
    "rainstorm": Scenario(
        "rainstorm", "A cloudburst like Zhengzhou's of 20 July 2021: underpasses and "
        "streets flooding across the city within the hour, more collisions, outages.",
        {**_NORMAL, "traffic": 12.0, "fire": 1.5, "crime": 2.5, "utility_outage": 2.0,
         "structural": 0.8, "flood": 0.0}, steady={"flood": 16.0}, false_alarms=3.0),
    "pileup": Scenario("pileup", "A normal day, and early on a multi-vehicle pile-up on a "
                       "road a camera watches, with many callers.", _NORMAL,
                       staged=("pileup",)),
    "chemical": Scenario("chemical", "A normal day, and early on a chemical leak at a "
                         "logistics park: fence-line monitors and many callers.", _NORMAL,
                         staged=("chemical",)),
}


@dataclass(frozen=True)
class Emergency:
    emergency_id: str
    category: str
    lat: float
    lon: float
    address: str
    at: float  # seconds after the simulation start when it begins
    false_alarm: bool  # only noise (a lone call, a low-score detection): nothing happened
    description: str


@dataclass(frozen=True)
class Emission:
    at: float  # seconds after the start
    kind: Literal["sensor", "frigate", "call"]
    topic: str  # the MQTT topic for sensor and frigate; "" for a call
    payload: bytes  # exactly what is published (MQTT payload, or the CallRecord JSON)
    emergency_id: str | None  # whose evidence this is (None: background readings)


@dataclass(frozen=True)
class Plan:
    """The ground truth of a run and what the world says, emissions in time order."""

    emergencies: list[Emergency]
    emissions: list[Emission]
    dead_device: str | None = None  # the device that stops reporting, and when
    dead_at: float | None = None

    def owner(self, signal_id: str) -> str | None:
        """The emergency a signal (as the adapters make its id) is evidence of, or None.

        ``call-<call_id>``, Frigate objects' ids (:func:`adapters.video.signal_id`) and
        ``sensor-<device>-<metric>-<time>`` alarms of a device while an emergency drove
        its readings; None for anything else (a silent device, background).
        """
        exact = self._owners.get(signal_id)
        if exact is not None or not signal_id.startswith("sensor-"):
            return exact
        parts = signal_id.removeprefix("sensor-").rsplit("-", 2)
        if len(parts) != 3:
            return None
        try:
            at = datetime.strptime(parts[2], "%Y%m%dT%H%M%S%f").replace(tzinfo=UTC)
        except ValueError:
            return None
        for first, last, emergency_id in self._spells.get((parts[0], parts[1]), ()):
            if first <= at <= last:
                return emergency_id
        return None

    @cached_property
    def _owners(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for e in self.emissions:
            if e.emergency_id is None or e.kind == "sensor":
                continue
            doc = json.loads(e.payload)
            if e.kind == "call":
                found[f"call-{doc['call_id']}"] = e.emergency_id
            else:
                after = doc["after"]
                found[signal_id("frigate", after["camera"], after["id"])] = e.emergency_id
        return found

    @cached_property
    def _spells(self) -> dict[tuple[str, str], list[tuple[datetime, datetime, str]]]:
        """Per (device, metric): from when to when each emergency drove its readings."""
        span: dict[tuple[str, str, str], tuple[datetime, datetime]] = {}
        for e in self.emissions:
            if e.kind != "sensor" or e.emergency_id is None:
                continue
            _, device, metric = e.topic.split("/")
            at = datetime.fromisoformat(json.loads(e.payload)["at"])
            key = (device, metric, e.emergency_id)
            first, last = span.get(key, (at, at))
            span[key] = (min(first, at), max(last, at))
        out: dict[tuple[str, str], list[tuple[datetime, datetime, str]]] = {}
        for (device, metric, emergency_id), (first, last) in span.items():
            out.setdefault((device, metric), []).append((first, last, emergency_id))
        return out


# --- the planner ---------------------------------------------------------------------------

ArrivalKind = Literal["real", "false_call", "false_camera", "pileup", "chemical"]


@dataclass(frozen=True)
class _Arrival:
    at: float
    category: str
    kind: ArrivalKind


@dataclass(frozen=True)
class _Site:
    lat: float
    lon: float
    address: str
    address_zh: str | None = None
    camera: Camera | None = None  # placed in this camera's view
    device: Device | None = None  # placed at this device


@dataclass(frozen=True)
class _Placed:
    arrival: _Arrival
    site: _Site


@dataclass(frozen=True)
class _District:
    id: str
    lat: float
    lon: float


def plan(city_doc: dict[str, Any], scenario: str, *, seed: int, duration_s: float,
         start: datetime, opening: bool = False) -> Plan:
    """The emergencies of ``duration_s`` simulated seconds from ``start`` and all the
    messages about them, the same for the same inputs.

    Emergencies begin within ``[0, duration_s)``; their evidence may run up to
    :data:`MAX_SPAN_S` past that, and background readings go on until the last
    emission. Times in payloads are ``start + at`` in ``start``'s zone; the daily
    rhythm follows ``start``'s clock (pass the city's local time for its day).
    ``opening`` adds a fire in the first minute, so a newcomer watching ``make demo``
    sees the city come alive at once.
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; one of {', '.join(SCENARIOS)}")
    if start.utcoffset() is None:
        raise ValueError("start must be timezone-aware")
    if not (math.isfinite(duration_s) and duration_s > 0):
        raise ValueError(f"duration_s must be positive, not {duration_s}")
    chosen = SCENARIOS[scenario]
    if opening:
        chosen = replace(chosen, staged=(*chosen.staged, "opening"))
    return _Planner(city_doc, chosen, seed, duration_s, start).run()


def _spread(category: str) -> float:
    """How far from an emergency its evidence may be: within half the fusion radius,
    so any two of its signals fuse, and for most kinds within a camera's range."""
    half = rule_for(category, _CATALOGUE.fusion).radius_m / 2 - 5
    return half if category in PLUMES else min(CAMERA_RANGE_M, half)


def _apart(a: _Placed, b: _Arrival, site: _Site) -> bool:
    """Whether fusion can never join two emergencies' signals."""
    ra = rule_for(a.arrival.category, _CATALOGUE.fusion)
    rb = rule_for(b.category, _CATALOGUE.fusion)
    if ra.family != rb.family:
        return True
    if abs(a.arrival.at - b.at) > max(ra.window_s, rb.window_s) + MAX_SPAN_S:
        return True
    reach = max(ra.radius_m, rb.radius_m) + _spread(a.arrival.category) + _spread(b.category)
    return distance_m(a.site.lat, a.site.lon, site.lat, site.lon) > reach


def _offset(lat: float, lon: float, metres: float, bearing: float) -> tuple[float, float]:
    dlat = metres * math.cos(bearing) / 111_195.0
    dlon = metres * math.sin(bearing) / (111_195.0 * math.cos(math.radians(lat)))
    return round(lat + dlat, 6), round(lon + dlon, 6)


def _around(rng: random.Random, lat: float, lon: float, low: float,
            high: float) -> tuple[float, float]:
    return _offset(lat, lon, rng.uniform(low, high), rng.uniform(0, 2 * math.pi))


def _json(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def _ms(at: float) -> float:
    return round(at * 1000) / 1000


class _Planner:
    def __init__(self, doc: dict[str, Any], scenario: Scenario, seed: int,
                 duration: float, start: datetime) -> None:
        self.registry = parse_registry(doc)
        self.video: VideoConfig = parse_video_config(doc)
        self.scenario, self.seed, self.duration, self.start = scenario, seed, duration, start
        points: dict[str, list[tuple[float, float]]] = {}
        for station in doc.get("station") or []:
            points.setdefault(str(station["district"]), []).append(
                (float(station["lat"]), float(station["lon"])))
        self.districts = [_District(d, sum(p[0] for p in ps) / len(ps),
                                    sum(p[1] for p in ps) / len(ps))
                          for d, ps in sorted(points.items())]
        if not self.districts:
            raise ValueError("the city file has no stations to place emergencies around")
        self.cameras = [self.video.cameras[c] for c in sorted(self.video.cameras)]
        self.devices = [self.registry.devices[d] for d in sorted(self.registry.devices)]
        self.placed: list[_Placed] = []
        # call ids: unique per run (a second run must not look like a redelivery)
        self.tag = f"{scenario.name}-{seed % 10 ** 9}-{start.astimezone(UTC):%Y%m%d%H%M%S}"

    def rng(self, *purpose: object) -> random.Random:
        return random.Random(":".join(str(p) for p in (self.seed, *purpose)))

    def when(self, at: float) -> datetime:
        return self.start + timedelta(milliseconds=round(at * 1000))

    def unix(self, at: float) -> float:
        return round(self.when(at).timestamp(), 6)

    def kind_of(self, device: Device) -> SensorKind:
        return self.registry.kinds[device.kind]

    # --- arrivals and places ---

    def run(self) -> Plan:
        place = self.rng("place")
        for arrival in self.staged():
            self.put(arrival, place, dead=None)
        dead, dead_at = self.dead_device()
        for arrival in self.arrivals():
            self.put(arrival, place, dead=dead)
        order = sorted(self.placed, key=lambda p: (p.arrival.at, p.arrival.category))
        emergencies: list[Emergency] = []
        emissions: list[Emission] = []
        spells: dict[str, list[tuple[float, float]]] = {}
        for n, p in enumerate(order, 1):
            emergency, said = self.evidence(f"em-{n:03d}", p, dead, spells)
            emergencies.append(emergency)
            emissions += said
        horizon = max([self.duration, *(e.at for e in emissions)])
        emissions += self.background(horizon, spells, dead, dead_at)
        emissions.sort(key=lambda e: e.at)
        return Plan(emergencies, emissions, dead.id if dead else None,
                    _ms(dead_at) if dead else None)

    def staged(self) -> list[_Arrival]:
        rng = self.rng("staged")
        out = []
        for s in self.scenario.staged:
            at = min(rng.uniform(20, 60), self.duration / 2)
            if s == "opening":  # an ordinary fire, just early
                out.append(_Arrival(min(rng.uniform(10, 30), self.duration / 2), "fire",
                                    "real"))
            else:
                out.append(_Arrival(at, "traffic" if s == "pileup" else "hazmat",
                                    "pileup" if s == "pileup" else "chemical"))
        return out

    def dead_device(self) -> tuple[Device | None, float]:
        """The one device that stops reporting: none a set piece needs."""
        staged = {a.arrival.category for a in self.placed}
        choices = [d for d in self.devices if self.kind_of(d).category not in staged]
        rng = self.rng("dead")
        if not choices:
            return None, 0.0
        return rng.choice(choices), rng.uniform(0.3, 0.7) * self.duration

    def poisson(self, rate: float, rhythm: bool, rng: random.Random) -> list[float]:
        """Arrival times of a Poisson process of ``rate`` per hour, thinned by RHYTHM."""
        out: list[float] = []
        t = 0.0
        while rate > 0:
            t += rng.expovariate(rate / 3600.0)
            if t >= self.duration:
                break
            if not rhythm or rng.random() < RHYTHM[self.when(t).hour]:
                out.append(t)
        return out

    def arrivals(self) -> list[_Arrival]:
        out = [_Arrival(t, c, "real") for c, rate in sorted(self.scenario.rates.items())
               for t in self.poisson(rate, True, self.rng("arrivals", c))]
        out += [_Arrival(t, c, "real") for c, rate in sorted(self.scenario.steady.items())
                for t in self.poisson(rate, False, self.rng("steady", c))]
        rng = self.rng("false-alarms")
        for t in self.poisson(self.scenario.false_alarms, True, rng):
            if self.cameras and rng.random() < 0.35:
                out.append(_Arrival(t, rng.choice(sorted(voices.FALSE_CAMERA)), "false_camera"))
            else:
                out.append(_Arrival(t, rng.choice(sorted(voices.FALSE_CALL)), "false_call"))
        return sorted(out, key=lambda a: (a.at, a.category, a.kind))

    def put(self, a: _Arrival, rng: random.Random, dead: Device | None) -> None:
        """Place an arrival at the first site clear of its family's others, or drop it
        (a city full of one family's emergencies has no room for another)."""
        for site in self.sites(a, rng, dead):
            if all(_apart(p, a, site) for p in self.placed):
                if a.kind == "false_camera" and site.camera is None:  # no camera had room
                    if a.category not in voices.FALSE_CALL:
                        return
                    a = _Arrival(a.at, a.category, "false_call")
                self.placed.append(_Placed(a, site))
                return

    def sites(self, a: _Arrival, rng: random.Random, dead: Device | None) -> Iterator[_Site]:
        if a.kind == "chemical":  # where the plume reaches most monitors: a chemical park
            yield from self.at_devices(a.category, rng, dead, crowded=True)
        elif a.kind == "pileup":
            yield from self.in_view(a.category, rng, roads=True)
        elif a.kind == "false_camera":
            yield from self.in_view(a.category, rng, labels=(voices.FALSE_CAMERA[a.category][0],))
        elif a.kind == "real":
            if rng.random() < voices.AT_DEVICE.get(a.category, 0.0):
                yield from self.at_devices(a.category, rng, dead)
            if a.category in voices.SEEN_AS and rng.random() < voices.AT_CAMERA:
                yield from self.in_view(a.category, rng)
        for _ in range(40):
            yield self.in_district(rng)

    def at_devices(self, category: str, rng: random.Random, dead: Device | None,
                   crowded: bool = False) -> Iterator[_Site]:
        devices = [d for d in self.devices
                   if self.kind_of(d).category == category and d != dead]
        rng.shuffle(devices)
        if crowded:
            reach = _spread(category) - SENSOR_REACH_M
            others = list(devices)  # (a list being sorted reads as empty)
            devices.sort(key=lambda d: -sum(
                distance_m(d.lat, d.lon, o.lat, o.lon) <= reach for o in others))
        for d in devices:
            lat, lon = _around(rng, d.lat, d.lon, 0, SENSOR_REACH_M - 10)
            yield _Site(lat, lon, d.address or d.id, device=d)

    def in_view(self, category: str, rng: random.Random, roads: bool = False,
                labels: tuple[str, ...] | None = None) -> Iterator[_Site]:
        wanted = labels or voices.SEEN_AS.get(category, ())
        if not any(label in self.video.labels for label in wanted):
            return
        cameras = [c for c in self.cameras if c.carriageway_zones or not roads]
        rng.shuffle(cameras)
        for c in cameras:
            lat, lon = _around(rng, c.lat, c.lon, 10, min(CAMERA_RANGE_M, _spread(category)) - 5)
            yield _Site(lat, lon, c.address or c.id, camera=c)

    def in_district(self, rng: random.Random) -> _Site:
        d = rng.choice(self.districts)
        lat, lon = _offset(d.lat, d.lon, DISTRICT_RADIUS_M * math.sqrt(rng.random()),
                           rng.uniform(0, 2 * math.pi))
        number = rng.randint(1, 300)
        known = voices.DISTRICTS.get(d.id)
        if known is None:  # another city: plain English names
            road = rng.choice(("Main Street", "Park Road", "Station Road"))
            return _Site(lat, lon, f"{number} {road}, {d.id.replace('_', ' ').title()}")
        name, name_zh, roads = known
        road, road_zh = rng.choice(roads)
        return _Site(lat, lon, f"{number} {road}, {name}", f"{name_zh}{road_zh}{number}号")

    # --- evidence ---

    def evidence(self, eid: str, p: _Placed, dead: Device | None,
                 spells: dict[str, list[tuple[float, float]]]
                 ) -> tuple[Emergency, list[Emission]]:
        a, site = p.arrival, p.site
        rng = self.rng("evidence", eid)
        out: list[Emission] = []
        seen: list[str] = []
        false_alarm = a.kind in ("false_call", "false_camera")
        if a.kind == "false_camera" and site.camera is not None:
            label, what = voices.FALSE_CAMERA[a.category]
            rule = self.video.labels[label]
            cap = min(rule.min_score, FRIGATE_THRESHOLD) - 0.08
            t0 = a.at + rng.uniform(0, 10)
            n = rng.randint(3, 6)
            samples = [(t0 + 6.0 * i + rng.uniform(0, 2), rng.uniform(0.3, cap))
                       for i in range(n)]
            out += self.track(rng, site.camera, label, samples, (), False, eid)
            seen.append(f"camera {site.camera.id} ({label}, low score)")
        else:
            voice = {"false_call": f"false_{a.category}", "pileup": "pileup"}.get(a.kind)
            if voice is None and a.category == "structural" and site.device is not None:
                voice = "bridge"
            calls = self.calls(eid, a, site, voice or a.category, rng)
            out += calls
            seen.append(f"{len(calls)} call{'s' * (len(calls) != 1)}")
            what = (voices.FALSE_CALL[a.category] if false_alarm else rng.choice(
                voices.WHAT.get(voice or a.category, (a.category.replace("_", " ").capitalize(),))))
        if not false_alarm:
            for camera in self.cameras:
                if distance_m(camera.lat, camera.lon, site.lat, site.lon) <= min(
                        CAMERA_RANGE_M, _spread(a.category)):
                    said = self.seen_by(rng, camera, a, eid)
                    out += said
                    if said:
                        seen.append(f"camera {camera.id}")
            reach = _spread(a.category) if a.category in PLUMES else SENSOR_REACH_M
            for device in self.devices:
                kind = self.kind_of(device)
                far = distance_m(device.lat, device.lon, site.lat, site.lon)
                if device == dead or kind.category != a.category or far > reach:
                    continue
                low, high = voices.SENSOR_DELAY.get(a.category, (5.0, 40.0))
                t0 = a.at + rng.uniform(low, high) + far / 3.0  # a plume drifts ~3 m/s
                flap = not any(spells.values()) or rng.random() < 0.4
                readings = _spell(kind, rng, t0, flap)
                spells.setdefault(device.id, []).append((readings[0][0], readings[-1][0]))
                out += [self.reading(t, device, kind, v, eid) for t, v in readings]
                seen.append(f"sensor {device.id}" + (" (flapping)" if flap else ""))
        emergency = Emergency(eid, a.category, site.lat, site.lon, site.address, _ms(a.at),
                              false_alarm, f"{what} at {site.address}; seen by "
                                           f"{', '.join(seen)}")
        return emergency, out

    def calls(self, eid: str, a: _Arrival, site: _Site, voice: str,
              rng: random.Random) -> list[Emission]:
        low, high = voices.CALLERS.get(voice, voices.CALLERS.get(a.category, (1, 3)))
        n = 1 if a.kind == "false_call" else rng.randint(low, high)
        delays = sorted([a.at + rng.uniform(30, 90)] +
                        [a.at + rng.uniform(30, 300) for _ in range(n - 1)])
        out: list[Emission] = []
        for delay in delays:
            zh = rng.random() < 0.65
            name = (rng.choice(voices.SURNAMES) + "".join(rng.choice(voices.GIVEN)
                                                    for _ in range(rng.randint(1, 2)))
                    if zh else rng.choice(voices.EN_NAMES))
            phone = f"1{rng.choice(('38', '39', '37', '50', '58', '86', '87', '77'))}" \
                    f"{rng.randrange(10 ** 8):08d}"
            again = a.kind != "false_call" and rng.random() < voices.DUPLICATE
            for at in (delay, delay + rng.uniform(60, 180)) if again else (delay,):
                narrative = _narrative(voice, a.category, site, zh, rng)
                lat, lon = _around(rng, site.lat, site.lon, 30,
                                   min(80.0, _spread(a.category) - 5))
                record = CallRecord(
                    call_id=f"{self.tag}-{eid}-{len(out) + 1}",
                    platform=voices.PLATFORM.get(a.category, "119"), received_at=self.when(at),
                    narrative=narrative, caller=Reporter(name=name, phone=phone),
                    location=Location(lat=lat, lon=lon, address=site.address,
                                      accuracy_m=float(rng.choice((8, 12, 20, 35, 50, 80)))))
                out.append(Emission(_ms(at), "call", "", record.model_dump_json().encode(), eid))
        return out

    def seen_by(self, rng: random.Random, camera: Camera, a: _Arrival,
                eid: str) -> list[Emission]:
        """A real emergency in a camera's view: an object whose score climbs past its
        label's minimum over 20-60 s; a pile-up also leaves vehicles stopped on the road."""
        labels = [label for label in voices.SEEN_AS.get(a.category, ())
                  if label in self.video.labels]
        if not labels:
            return []
        label = rng.choice(labels)
        need = max(self.video.labels[label].min_score, FRIGATE_THRESHOLD)
        low, high = voices.CAMERA_DELAY.get(a.category, (5.0, 30.0))
        t0 = a.at + rng.uniform(low, high)
        n, span = rng.randint(4, 8), rng.uniform(20, 60)
        s0, peak = rng.uniform(0.42, min(0.62, need - 0.05)), rng.uniform(need + 0.06, 0.95)
        climb = max(2, round(n * 0.6))
        samples = [(t0 + span * i / (n - 1),
                    s0 + (peak - s0) * min(1.0, i / climb) + rng.uniform(-0.015, 0.015))
                   for i in range(n)]
        road = (rng.choice(camera.carriageway_zones),) if (
            camera.carriageway_zones and a.category == "traffic") else ()
        out = self.track(rng, camera, label, samples, road, False, eid)
        stopped = 0
        if road and "stopped_vehicle" in self.video.labels:
            stopped = rng.randint(2, 4) if a.kind == "pileup" else int(rng.random() < 0.5)
        for _ in range(stopped):
            t = t0 + rng.uniform(0, 10)
            samples = []
            for _ in range(rng.randint(7, 11)):
                samples.append((t, rng.uniform(0.78, 0.92)))
                t += rng.uniform(12, 15)
            vehicle = rng.choice([v for v in voices.VEHICLES if v in self.video.vehicle_labels]
                                 or ["car"])
            out += self.track(rng, camera, vehicle, samples, road, True, eid)
        return out

    def track(self, rng: random.Random, camera: Camera, label: str,
              samples: list[tuple[float, float]], zones: tuple[str, ...], stationary: bool,
              eid: str) -> list[Emission]:
        """One Frigate tracked object: ``new``, ``update``s and ``end``, before and after."""
        first = self.unix(samples[0][0])
        object_id = f"{first:.6f}-{''.join(rng.choice(voices.ALNUM) for _ in range(6))}"
        w, h = rng.randint(60, 360), rng.randint(60, 300)
        x, y = rng.randint(0, 1280 - w), rng.randint(0, 720 - h)
        side = min(max(w, h) + 64, 720)
        rx, ry = min(max(x - 32, 0), 1280 - side), min(max(y - 32, 0), 720 - side)
        out: list[Emission] = []
        before: dict[str, Any] | None = None
        top = 0.0
        for i, (t, raw) in enumerate(samples):
            score = round(min(max(raw, 0.01), 0.99), 3)
            top = max(top, score)
            last = i == len(samples) - 1
            frame = self.unix(t)
            after = {
                "id": object_id, "camera": camera.id, "frame_time": frame, "label": label,
                "sub_label": None, "top_score": top, "false_positive": top < FRIGATE_THRESHOLD,
                "start_time": first, "end_time": frame if last else None, "score": score,
                "box": [x, y, x + w, y + h], "area": w * h, "ratio": round(w / h, 6),
                "region": [rx, ry, rx + side, ry + side], "active": not stationary,
                "stationary": stationary, "motionless_count": 10 * i if stationary else 0,
                "position_changes": 1 if stationary else i, "current_zones": list(zones),
                "entered_zones": list(zones), "has_clip": True, "has_snapshot": True,
                "attributes": {}, "current_attributes": [],
            }
            kind = "new" if i == 0 else "end" if last else "update"
            out.append(Emission(_ms(t), "frigate", FRIGATE_TOPIC,
                                _json({"type": kind, "before": before or after,
                                       "after": after}), eid))
            before = after
        return out

    def reading(self, at: float, device: Device, kind: SensorKind, value: float,
                eid: str | None) -> Emission:
        payload = {"value": round(value, 2),
                   "at": self.when(at).isoformat(timespec="milliseconds")}
        return Emission(_ms(at), "sensor", f"sensors/{device.id}/{kind.metric}",
                        _json(payload), eid)

    def background(self, horizon: float, spells: dict[str, list[tuple[float, float]]],
                   dead: Device | None, dead_at: float) -> list[Emission]:
        """Every device's normal readings, every quarter heartbeat (or minute), except
        while an emergency drives them and after the dead device's end: no gap is longer
        than 0.4 heartbeats."""
        out: list[Emission] = []
        for device in self.devices:
            kind = self.kind_of(device)
            rng = self.rng("background", device.id)
            base, noise = _normal(kind)
            period = _period(kind)
            jitter = min(2.0, period / 10)
            end = dead_at if device == dead else horizon
            busy = spells.get(device.id, [])
            t = rng.uniform(0, period)
            while t <= end:
                # half a period clear of an emergency's readings: no jump looks like a rise
                if not any(first - period / 2 <= t <= last + period / 2
                           for first, last in busy):
                    value = _clamp(kind, base + noise * rng.uniform(-1, 1))
                    out.append(self.reading(t, device, kind, value, None))
                t += period + rng.uniform(-jitter, jitter)
        return out


def _narrative(voice: str, category: str, site: _Site, zh: bool, rng: random.Random) -> str:
    """What a caller says, in their language; one that files under the category."""
    english, chinese = voices.SAY[voice]
    if zh:
        said = rng.choice(chinese).replace(",", "\uff0c").format(
            addr=site.address_zh or voices.HERE_ZH)
    else:
        said = rng.choice(english).format(addr=site.address)
    # a place's name can carry a keyword
    if classify(said, _CATALOGUE.hotline).category != category:
        said = (chinese[0].replace(",", "\uff0c").format(addr=voices.HERE_ZH) if zh
                else english[0].format(addr="this address"))
    return said


def _period(kind: SensorKind) -> float:
    """How often a device reports when all is well."""
    return min(60.0, kind.heartbeat_s / 4)


def _normal(kind: SensorKind) -> tuple[float, float]:
    """A device's normal value and how much it wanders: well on the safe side of
    ``clear_at``, and between readings half a period apart never moving half as fast
    as ``rise_per_min``."""
    margin = abs(kind.alarm_at - kind.clear_at)
    if kind.rising:
        base = 0.15 * kind.clear_at if kind.clear_at > 0 else kind.clear_at - 3 * margin
    else:
        base = kind.clear_at + 3 * margin
    base = min(max(base, kind.valid_min), kind.valid_max)
    noise = min(0.1 * margin, abs(kind.clear_at - base) / 4)
    if kind.rise_per_min is not None:
        noise = min(noise, kind.rise_per_min * _period(kind) / 600)
    return base, noise


def _clamp(kind: SensorKind, value: float) -> float:
    return min(max(value, kind.valid_min), kind.valid_max)


def _spell(kind: SensorKind, rng: random.Random, t0: float,
           flap: bool) -> list[tuple[float, float]]:
    """One device's readings through one emergency: up past ``alarm_at`` for
    ``debounce`` readings and more, held there (or flapping round it, never back past
    ``clear_at``, so one alarm), then down to normal, every 30 s and then every 60 s."""
    base, noise = _normal(kind)
    sign = 1.0 if kind.rising else -1.0
    to_alarm = abs(kind.alarm_at - base)
    margin = abs(kind.alarm_at - kind.clear_at)
    n = rng.randint(3, 5)
    top = to_alarm + margin * (rng.uniform(0.2, 0.5) if flap else rng.uniform(1.5, 6.0))
    xs = [top * (i + 1) / n for i in range(n)]
    if flap:
        xs += [to_alarm + margin * rng.uniform(0.1, 0.5) for _ in range(kind.debounce)]
        for _ in range(rng.randint(2, 4)):
            xs += [to_alarm - margin * rng.uniform(0.2, 0.7),
                   to_alarm + margin * rng.uniform(0.1, 0.5)]
    else:
        xs += [top + margin * rng.uniform(-0.1, 0.1)
               for _ in range(max(kind.debounce, rng.randint(3, 8)))]
    out = [(t0 + 30.0 * i + rng.uniform(0, 2), x) for i, x in enumerate(xs)]
    steps = rng.randint(3, 5)
    last_t, last_x = out[-1][0] + 1, xs[-1]
    for j in range(1, steps + 1):
        x = last_x * (1 - j / steps) if j < steps else noise * rng.uniform(-1, 1)
        out.append((last_t + 60.0 * j + rng.uniform(0, 2), x))
    return [(t, _clamp(kind, base + sign * x)) for t, x in out]
