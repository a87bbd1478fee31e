# size: one border: cameras, two doors and the tracking fold share Detection
"""Border (core part): video analytics detections in, signals out.

Two doors read bytes into a :class:`Detection` (one observation of one tracked
object) or raise :class:`VideoRejected`, never anything else:

* :func:`parse_frigate`: a Frigate NVR ``frigate/events`` MQTT payload
  (``type`` new / update / end, with ``before`` and ``after`` objects);
* :func:`parse_webhook`: the generic :class:`Webhook` JSON that other
  platforms post.

:func:`observe` folds a detection into :class:`Tracking` and decides whether it
is a signal, with the camera registry and label rules of :class:`VideoConfig`
(read from the city file's ``[[camera]]`` entries and ``[video]`` table by
:func:`parse_video_config`). Frigate republishes a tracked object whenever its
snapshot, zones or motion change and at least once a minute, so one fire can
arrive as fifty messages: one tracked object makes at most one signal, and the
signal id is derived from (platform, camera, object id), so a repeat that gets
past a restarted adapter is still dropped by the intake's inbox.

Errors::

    ValueError
     └── VideoRejected        .reason: what an integrator must change

No I/O, no clock: time arrives inside the messages. The MQTT / NATS consumer
and the HTTP webhook are the shell's.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from command.model import Signal
from command.specs import AdapterSpec, Feed
from workflows.geo import Location
from workflows.text import Cleaned, validate_json

__all__ = [
    "DEFAULT_LABELS", "MAX_MESSAGE_BYTES", "MAX_TRACKED", "VEHICLE_LABELS", "Camera",
    "Detection", "LabelRule", "Tracking", "VideoConfig", "VideoRejected", "Webhook",
    "observe", "parse_frigate", "parse_video_config", "parse_webhook", "signal_id",
    "to_signal",
]

# A Frigate event carries before and after, each with a snapshot and path_data that grow
# with a long track; 256 KiB leaves room for those and still bounds a hostile message.
MAX_MESSAGE_BYTES = 256 * 1024
MAX_TRACKED = 10_000  # objects remembered as reported, oldest forgotten first
# The MQTT topic root Frigate publishes under (its default topic_prefix): its events on
# frigate/events. Only the events are stored; its other topics carry snapshots and state.
FRIGATE_ROOT = "frigate"
# On the bus (command/specs.py): Frigate's events over MQTT, and webhook detections.
SPEC = AdapterSpec(
    kind="video",
    feeds=(Feed("MQTT", "adapter-video-frigate", "events", mqtt_root=FRIGATE_ROOT),
           Feed("INGRESS", "adapter-video", "ingress.video")),
    about="Frigate events over MQTT (ECC_MQTT, frigate.events) and webhook "
          "detections from ecc.ingress.video (ECC_INGRESS).")
# Times outside these years are a broken camera clock, not an observation.
_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
_LATEST = datetime(2200, 1, 1, tzinfo=UTC)

_TOKEN = r"^[a-z][a-z0-9_]{0,39}$"
_CAMERA_ID = r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,63}$"
_SIGNAL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_:\-]{0,127}$")

Score = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
Finite = Annotated[float, Field(allow_inf_nan=False)]
Zone = Annotated[str, Field(min_length=1, max_length=64)]
Label = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")]
# The platform's own id of a tracked object: visible ASCII, so safe in logs and details.
ObjectId = Annotated[str, Field(pattern=r"^[\x21-\x7e]{1,128}$")]
CameraId = Annotated[str, Field(pattern=_CAMERA_ID)]
Box = tuple[Finite, Finite, Finite, Finite]


class VideoRejected(ValueError):
    """Bytes or a config ECC cannot accept; ``reason`` says what to change."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- configuration: the camera registry and the label rules -------------------------

class _Frozen(Cleaned):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Camera(_Frozen):
    """A camera of the city file (``[[camera]]``): where its detections are placed."""

    id: CameraId
    lat: float = Field(ge=-90.0, le=90.0, allow_inf_nan=False)
    lon: float = Field(ge=-180.0, le=180.0, allow_inf_nan=False)
    address: str | None = Field(default=None, max_length=500)
    # how far from the camera what it sees may be; becomes the signal's accuracy_m
    accuracy_m: float | None = Field(default=None, ge=0.0, le=10_000.0, allow_inf_nan=False)
    # the platform's zone names that are road carriageway (stopped vehicles there matter)
    carriageway_zones: tuple[Zone, ...] = ()

    def location(self) -> Location:
        return Location(lat=self.lat, lon=self.lon, accuracy_m=self.accuracy_m,
                        address=self.address)


@dataclass(frozen=True)
class LabelRule:
    """A detection label worth a signal: its category, the score it needs, its words."""

    label: str
    category: str
    min_score: float
    summary: str


def _rules(*rules: LabelRule) -> dict[str, LabelRule]:
    return {rule.label: rule for rule in rules}


# Labels of fire / smoke, fall and crowd models and of platforms' road analytics. Scores
# are those a model must reach before a person looks: lower for crowds and stopped
# vehicles (the cost of a look is small), higher where a miss-classification sends units.
DEFAULT_LABELS: Mapping[str, LabelRule] = MappingProxyType(_rules(
    LabelRule("fire", "fire", 0.7, "Fire"),
    LabelRule("smoke", "fire", 0.7, "Smoke"),
    LabelRule("person_down", "medical", 0.7, "Person down"),
    LabelRule("fall", "medical", 0.7, "A fall"),
    LabelRule("fallen_person", "medical", 0.7, "Fallen person"),
    LabelRule("collision", "traffic", 0.7, "Collision"),
    LabelRule("crash", "traffic", 0.7, "Crash"),
    LabelRule("stopped_vehicle", "traffic", 0.65, "Stopped vehicle on the carriageway"),
    # crime is the catalogue's police category ("Crime / public security")
    LabelRule("crowd", "crime", 0.6, "Crowd"),
    LabelRule("water", "flood", 0.75, "Water"),
    LabelRule("flood", "flood", 0.7, "Flooding"),
    LabelRule("water_on_road", "flood", 0.7, "Water on the road"),
))
# Frigate's own vehicle labels: stationary in a carriageway zone, they are a stopped vehicle.
VEHICLE_LABELS: frozenset[str] = frozenset({"car", "truck", "bus", "motorcycle"})
STOPPED_VEHICLE = "stopped_vehicle"


@dataclass(frozen=True)
class VideoConfig:
    """The camera registry and the rules :func:`observe` applies."""

    cameras: Mapping[str, Camera]
    labels: Mapping[str, LabelRule] = field(default_factory=lambda: dict(DEFAULT_LABELS))
    vehicle_labels: frozenset[str] = VEHICLE_LABELS
    # a vehicle must stay stopped in a carriageway zone this long (queues at a red light
    # do not); 0 reports it on its first stationary detection
    stopped_min_s: float = 60.0


class _LabelEntry(_Frozen):
    category: str | None = Field(default=None, pattern=_TOKEN)
    min_score: float | None = Field(default=None, gt=0.0, le=1.0, allow_inf_nan=False)
    summary: str | None = Field(default=None, min_length=1, max_length=200)
    enabled: bool = True


class _VideoTable(_Frozen):
    labels: dict[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_ \-]{0,63}$")],
                 _LabelEntry] = Field(default_factory=dict)
    vehicle_labels: tuple[Label, ...] | None = None
    stopped_min_s: float = Field(default=60.0, ge=0.0, le=86_400.0, allow_inf_nan=False)


def _describe(exc: ValidationError) -> str:
    """One clause per problem, naming the field."""
    parts = []
    for err in exc.errors(include_url=False, include_input=False)[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "payload"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def parse_video_config(doc: Mapping[str, Any], origin: str = "city.toml",
                       categories: Collection[str] | None = None) -> VideoConfig:
    """The video part of a parsed city file (``tomllib.loads`` of it).

    ``[[camera]]`` entries make the registry; ``[video.labels.<label>]`` tables
    change a default rule (only the keys given) or add one (``category``
    required), and ``enabled = false`` drops one. With ``categories`` (the
    catalogue's types), every rule's category must be one of them. Raises
    :class:`VideoRejected` naming the entry at fault.
    """
    raw_cameras = doc.get("camera", [])
    if not isinstance(raw_cameras, list):
        raise VideoRejected(f"{origin}: camera must be [[camera]] entries")
    cameras: dict[str, Camera] = {}
    for n, raw in enumerate(raw_cameras, 1):
        name = raw.get("id") if isinstance(raw, dict) else None
        where = f"[[camera]] entry {n}" + (f" (id {name!r})" if isinstance(name, str) else "")
        try:
            camera = Camera.model_validate(raw)
        except ValidationError as exc:
            raise VideoRejected(f"{origin}: {where}: {_describe(exc)}") from exc
        if camera.id in cameras:
            raise VideoRejected(f"{origin}: {where}: camera {camera.id!r} appears twice")
        cameras[camera.id] = camera

    try:
        table = _VideoTable.model_validate(doc.get("video", {}))
    except ValidationError as exc:
        raise VideoRejected(f"{origin}: [video]: {_describe(exc)}") from exc
    labels = dict(DEFAULT_LABELS)
    for label, entry in table.labels.items():
        if not entry.enabled:
            labels.pop(label, None)
            continue
        base = labels.get(label)
        category = entry.category or (base.category if base else None)
        if category is None:
            raise VideoRejected(f"{origin}: [video.labels.{label}]: a new label needs a "
                                "category (fire, medical, traffic, ...)")
        labels[label] = LabelRule(
            label=label, category=category,
            min_score=entry.min_score or (base.min_score if base else 0.7),
            summary=entry.summary or (base.summary if base else
                                      label.replace("_", " ").capitalize()))
    if categories is not None:
        for rule in labels.values():
            if rule.category not in categories:
                raise VideoRejected(f"{origin}: [video.labels.{rule.label}]: category "
                                    f"{rule.category!r} is not in the catalogue "
                                    f"({', '.join(sorted(categories))})")
    vehicles = (frozenset(v.lower() for v in table.vehicle_labels)
                if table.vehicle_labels is not None else VEHICLE_LABELS)
    return VideoConfig(cameras=cameras, labels=labels, vehicle_labels=vehicles,
                       stopped_min_s=table.stopped_min_s)


# --- the doors: bytes to a Detection ----------------------------------------------------

@dataclass(frozen=True)
class Detection:
    """One observation of one tracked object, whatever platform saw it.

    The doors below make them; one built by hand must keep to the same limits
    (see :class:`Webhook`), or :func:`observe` may fail building the signal.
    """

    platform: str  # "frigate", or the webhook's platform token
    camera: str
    object_id: str  # the platform's id of the tracked object (Frigate's event id)
    label: str
    score: float  # 0..1
    at: datetime  # aware, UTC
    phase: Literal["new", "update", "end"]
    zones: tuple[str, ...] = ()
    stationary: bool = False
    box: tuple[float, float, float, float] | None = None
    false_positive: bool = False  # the platform's own verdict, when it gives one


class _Strict(BaseModel):
    # Not workflows.text.Cleaned: its before-validator hands pydantic Python objects,
    # which a strict model reads in Python mode (a JSON array is then no tuple). Frigate's
    # strings reach PostgreSQL only inside a Signal, which cleans them.
    # Frigate adds fields from release to release: read what we need, ignore the rest,
    # and take no "0.9" for 0.9 or "true" for true.
    model_config = ConfigDict(frozen=True, extra="ignore", strict=True)


class _FrigateObject(_Strict):
    id: ObjectId
    camera: CameraId
    label: Label
    score: Score
    top_score: Score | None = None
    frame_time: Finite | None = None
    start_time: Finite | None = None
    end_time: Finite | None = None
    current_zones: tuple[Zone, ...] = Field(default=(), max_length=32)
    stationary: bool | None = None
    active: bool | None = None
    false_positive: bool = False
    box: Box | None = None


class _FrigateEvent(_Strict):
    type: Literal["new", "update", "end"]
    before: _FrigateObject | None = None
    after: _FrigateObject | None = None


def _check_size(data: bytes) -> None:
    if len(data) > MAX_MESSAGE_BYTES:
        raise VideoRejected(f"message is {len(data)} bytes; the limit is {MAX_MESSAGE_BYTES}")


def _utc(at: datetime) -> datetime:
    try:
        utc = at.astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        raise VideoRejected(f"time {at.isoformat()} cannot be expressed in UTC") from exc
    if not _EARLIEST <= utc < _LATEST:
        raise VideoRejected(f"time {utc.isoformat()} is not plausible; check the camera's "
                            "clock (NTP)")
    return utc


def _from_unix(seconds: float) -> datetime:
    if not _EARLIEST.timestamp() <= seconds < _LATEST.timestamp():
        raise VideoRejected(f"time {seconds} (unix seconds) is not plausible; check the "
                            "camera's clock (NTP)")
    return datetime.fromtimestamp(seconds, UTC)


def parse_frigate(data: bytes) -> Detection:
    """A Frigate ``frigate/events`` payload as a Detection of its ``after`` object.

    An ``end`` without ``after`` falls back to ``before``. The time is the
    object's ``frame_time`` (else ``end_time``, else ``start_time``), the score
    the higher of ``score`` and ``top_score``; ``stationary`` falls back to
    ``not active``. Raises :class:`VideoRejected` for anything else.
    """
    _check_size(data)
    try:
        event = validate_json(_FrigateEvent, data)
    except ValidationError as exc:
        raise VideoRejected(f"not a Frigate event: {_describe(exc)}") from exc
    obj = event.after or (event.before if event.type == "end" else None)
    if obj is None:
        raise VideoRejected(f"Frigate {event.type!r} event without an 'after' object")
    seconds = next((t for t in (obj.frame_time, obj.end_time, obj.start_time)
                    if t is not None), None)
    if seconds is None:
        raise VideoRejected("Frigate event object has no frame_time, end_time or start_time")
    stationary = obj.stationary if obj.stationary is not None else obj.active is False
    return Detection(
        platform="frigate", camera=obj.camera, object_id=obj.id, label=obj.label,
        score=max(obj.score, obj.top_score or 0.0), at=_from_unix(seconds), phase=event.type,
        zones=obj.current_zones, stationary=stationary, box=obj.box,
        false_positive=obj.false_positive)


class Webhook(_Frozen):
    """One detection, as any other platform posts it (JSON)."""

    platform: Annotated[str, Field(pattern=_TOKEN)]
    camera: CameraId
    object_id: ObjectId
    label: Label
    score: Score
    at: AwareDatetime
    zones: tuple[Zone, ...] = Field(default=(), max_length=32)
    stationary: bool = False
    end: bool = False  # the platform stopped tracking the object
    box: Box | None = None


def parse_webhook(data: bytes) -> Detection:
    """A :class:`Webhook` body as a Detection (phase ``end`` or ``update``).

    Raises :class:`VideoRejected` for anything that is not one.
    """
    _check_size(data)
    try:
        hook = validate_json(Webhook, data)
    except ValidationError as exc:
        raise VideoRejected(f"not a video webhook: {_describe(exc)}") from exc
    return Detection(
        platform=hook.platform, camera=hook.camera, object_id=hook.object_id,
        label=hook.label, score=hook.score, at=_utc(hook.at),
        phase="end" if hook.end else "update", zones=hook.zones, stationary=hook.stationary,
        box=hook.box)


# --- the fold: detections to signals ------------------------------------------------------

Key = tuple[str, str, str]  # (platform, camera, object_id)


@dataclass(frozen=True)
class Tracking:
    """What :func:`observe` remembers between detections. Never changed in place.

    ``tracked``: the objects that produced a signal (to their signal id), kept
    past their end so a late or redelivered message stays quiet; ``stopped``:
    vehicles stopped on the carriageway, since when. Each holds at most
    :data:`MAX_TRACKED`, the oldest forgotten first.
    """

    tracked: Mapping[Key, str] = field(default_factory=dict)
    stopped: Mapping[Key, datetime] = field(default_factory=dict)


def _with(mapping: Mapping[Key, Any], key: Key, value: Any) -> dict[Key, Any]:
    new = dict(mapping)
    new.pop(key, None)  # re-inserted last: the newest
    new[key] = value
    while len(new) > MAX_TRACKED:
        del new[next(iter(new))]
    return new


def _unstopped(tracking: Tracking, key: Key) -> Tracking:
    """The tracking without a pending stop for this object (itself when there is none)."""
    if key not in tracking.stopped:
        return tracking
    return Tracking(tracked=tracking.tracked,
                    stopped={k: v for k, v in tracking.stopped.items() if k != key})


def signal_id(platform: str, camera: str, object_id: str) -> str:
    """The signal id of a tracked object: ``<platform>:<camera>:<object_id>``.

    Platform and camera hold no ``:``, so the id is unambiguous. When the
    object id has characters a signal id cannot (Frigate's ``.``) or the id
    would be too long, they become ``_`` and a hash of the exact key follows.
    """
    raw = f"{platform}:{camera}:{object_id}"
    if _SIGNAL_ID.fullmatch(raw):
        return raw
    digest = hashlib.sha256(raw.encode()).hexdigest()[:16]
    readable = re.sub(r"[^A-Za-z0-9_:\-]", "_", raw)[:128 - 1 - len(digest)]
    return f"{readable}-{digest}"


_ZONES_BUDGET = 8 * 1024  # of the signal's 16 KiB details, as JSON with \uXXXX escapes


def _zones_that_fit(zones: tuple[str, ...]) -> list[str]:
    kept: list[str] = []
    size = 2
    for zone in zones:
        size += len(json.dumps(zone)) + 2
        if size > _ZONES_BUDGET:
            break
        kept.append(zone)
    return kept


def to_signal(camera: Camera, rule: LabelRule, d: Detection,
              stopped_since: datetime | None = None) -> Signal:
    """The signal one detection raises: the camera's place, the rule's category."""
    zones = _zones_that_fit(d.zones)
    details: dict[str, Any] = {
        "platform": d.platform, "camera": d.camera, "object_id": d.object_id,
        "label": d.label, "rule": rule.label, "category": rule.category,
        "min_score": rule.min_score, "phase": d.phase, "zones": zones,
        "stationary": d.stationary, "box": list(d.box) if d.box else None,
    }
    if len(zones) < len(d.zones):
        details["zones_omitted"] = len(d.zones) - len(zones)
    if stopped_since is not None:
        details["stopped_since"] = stopped_since.isoformat()
    return Signal(
        signal_id=signal_id(d.platform, d.camera, d.object_id), source="video",
        category=rule.category, location=camera.location(), observed_at=d.at,
        summary=f"{rule.summary} seen by camera {camera.id} (score {d.score:.2f})",
        confidence=d.score, details=details)


def observe(config: VideoConfig, tracking: Tracking,
            d: Detection) -> tuple[Tracking, Signal | None, str]:
    """Fold one detection: the new tracking, the signal to publish (or None), and why.

    A label with a rule signals once its score reaches the rule's
    ``min_score`` (a later update that crosses it still does); a vehicle
    label signals as ``stopped_vehicle`` once it has stood in one of the
    camera's carriageway zones for ``stopped_min_s``. Each tracked object
    signals at most once. Raises :class:`VideoRejected` when a detection that
    could matter comes from a camera not in the registry (the shell
    dead-letters it); labels of no interest are dropped before that check, so
    an unregistered camera's passers-by do not fill the dead letters.
    """
    key = (d.platform, d.camera, d.object_id)
    if key in tracking.tracked:
        return tracking, None, "already reported"
    state, signal, reason = _decide(config, tracking, key, d)
    if d.phase == "end":  # the object is gone: so is its pending stop
        state = _unstopped(state, key)
    return state, signal, reason


def _decide(config: VideoConfig, tracking: Tracking, key: Key,
            d: Detection) -> tuple[Tracking, Signal | None, str]:
    label = d.label.lower()
    vehicle = label in config.vehicle_labels and STOPPED_VEHICLE in config.labels
    rule = config.labels.get(STOPPED_VEHICLE if vehicle else label)
    if rule is None:
        return tracking, None, "label not of interest"
    unstopped = _unstopped(tracking, key)  # what not qualifying now leaves
    if d.false_positive:
        return unstopped, None, "the platform marked it a false positive"
    if vehicle and not d.stationary:
        return unstopped, None, "vehicle moving"
    camera = config.cameras.get(d.camera)
    if camera is None:
        raise VideoRejected(f"camera {d.camera!r} is not in the camera registry; add a "
                            "[[camera]] entry to the city file")
    if vehicle and not set(d.zones) & set(camera.carriageway_zones):
        return unstopped, None, "vehicle stationary outside the carriageway zones"
    if not math.isfinite(d.score) or d.score < rule.min_score:
        return unstopped, None, (f"score {d.score:.2f} below {rule.min_score:.2f} "
                                 f"for {rule.label}")
    since = tracking.stopped.get(key)
    if vehicle and config.stopped_min_s > 0:
        if since is None:
            return (Tracking(tracked=tracking.tracked, stopped=_with(tracking.stopped, key, d.at)),
                    None, f"stopped on the carriageway; reported if still there after "
                          f"{config.stopped_min_s:g} s")
        waited = (d.at - since).total_seconds()
        if waited < config.stopped_min_s:
            return tracking, None, (f"stopped on the carriageway for {waited:g} s of "
                                    f"{config.stopped_min_s:g}")
    signal = to_signal(camera, rule, d, stopped_since=since if vehicle else None)
    return (Tracking(tracked=_with(tracking.tracked, key, signal.signal_id),
                     stopped=unstopped.stopped),
            signal, f"reported as {rule.category} ({rule.label})")
