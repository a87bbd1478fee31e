# size: tests of adapters/video.py: both doors, the fold, the config, refusals
"""Video analytics: Frigate events and webhooks in, one signal per tracked object out."""

from __future__ import annotations

import json
import time
import tomllib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.video import (
    DEFAULT_LABELS,
    MAX_MESSAGE_BYTES,
    MAX_TRACKED,
    Camera,
    Detection,
    Tracking,
    VideoConfig,
    VideoRejected,
    observe,
    parse_frigate,
    parse_video_config,
    parse_webhook,
    signal_id,
)
from command.city import parse_city
from command.model import Signal
from command.settings import load_catalogue

T0 = datetime(2026, 7, 20, 8, 0, tzinfo=UTC)
CAM3 = Camera(id="cam-3", lat=34.7466, lon=113.6253, address="Erqi Square, Zhengzhou",
              carriageway_zones=("carriageway",))
CAM4 = Camera(id="cam-4", lat=34.7572, lon=113.6487, carriageway_zones=("road_north",))
CONFIG = VideoConfig(cameras={"cam-3": CAM3, "cam-4": CAM4})
SMOKE_ID = "1784534400.125431-k3v9qz"


def frigate_object(*, id: str = SMOKE_ID, camera: str = "cam-3", label: str = "smoke",
                   score: float = 0.6, top_score: float = 0.6, frame_time: float = 0.0,
                   zones: tuple[str, ...] = ("forecourt",), stationary: bool = False,
                   end_time: float | None = None) -> dict[str, Any]:
    """One tracked object as Frigate 0.14+ writes it in ``before`` / ``after``."""
    start = T0.timestamp()
    return {
        "id": id, "camera": camera, "frame_time": start + frame_time,
        "snapshot": {"frame_time": start + frame_time, "box": [412, 188, 590, 402],
                     "area": 38092, "region": [320, 96, 680, 456], "score": score,
                     "attributes": []},
        "label": label, "sub_label": None, "top_score": top_score, "false_positive": False,
        "start_time": start, "end_time": end_time, "score": score,
        "box": [412, 188, 590, 402], "area": 38092, "ratio": 0.831775,
        "region": [320, 96, 680, 456], "active": not stationary, "stationary": stationary,
        "motionless_count": 60 if stationary else 0, "position_changes": 1,
        "current_zones": list(zones), "entered_zones": list(zones), "has_clip": True,
        "has_snapshot": True, "attributes": {}, "current_attributes": [],
        "pending_loitering": False, "max_severity": "alert", "current_estimated_speed": 0,
        "average_estimated_speed": 0, "velocity_angle": 0,
        "path_data": [[[0.6281, 0.8375], start]],
    }


def frigate(kind: str, before: dict[str, Any] | None = None,
            **after: Any) -> bytes:
    """A ``frigate/events`` message; ``before`` defaults to ``after``."""
    obj = frigate_object(**after)
    return json.dumps({"type": kind, "before": before or obj, "after": obj}).encode()


def run(config: VideoConfig, messages: list[bytes],
        tracking: Tracking | None = None) -> tuple[Tracking, list[Signal], list[str]]:
    state, signals, reasons = tracking or Tracking(), [], []
    for data in messages:
        state, signal, reason = observe(config, state, parse_frigate(data))
        reasons.append(reason)
        if signal is not None:
            signals.append(signal)
    return state, signals, reasons


def smoke_sequence(id: str = SMOKE_ID, camera: str = "cam-3") -> list[bytes]:
    """Smoke first seen at 0.55, crossing 0.7 on the third update, then ending."""
    scores = [0.55, 0.62, 0.66, 0.81, 0.78, 0.86, 0.84]
    kinds = ["new"] + ["update"] * (len(scores) - 1)
    out, top = [], 0.0
    for i, (kind, score) in enumerate(zip(kinds, scores, strict=True)):
        top = max(top, score - 0.05)  # Frigate's top_score is a median: it lags the score
        out.append(frigate(kind, id=id, camera=camera, score=score, top_score=top,
                           frame_time=2.0 * i))
    out.append(frigate("end", id=id, camera=camera, score=0.8, top_score=top, frame_time=20,
                       end_time=T0.timestamp() + 21))
    return out


# --- one tracked object, one signal --------------------------------------------------------

def test_a_frigate_track_makes_exactly_one_signal_when_it_crosses_the_min_score() -> None:
    """new at 0.55, updates up to 0.86, end: one fire signal, at the crossing update."""
    _, signals, reasons = run(CONFIG, smoke_sequence())
    [signal] = signals
    assert reasons[:3] == ["score 0.55 below 0.70 for smoke", "score 0.62 below 0.70 for smoke",
                           "score 0.66 below 0.70 for smoke"]
    assert reasons[3] == "reported as fire (smoke)"
    assert set(reasons[4:]) == {"already reported"}
    assert signal.source == "video" and signal.category == "fire"
    assert signal.observed_at == T0 + timedelta(seconds=6)
    assert signal.confidence == 0.81
    assert (signal.location.lat, signal.location.lon) == (34.7466, 113.6253)
    assert signal.location.address == "Erqi Square, Zhengzhou"
    assert signal.summary == "Smoke seen by camera cam-3 (score 0.81)"
    assert signal.details["object_id"] == SMOKE_ID and signal.details["rule"] == "smoke"
    assert signal.details["box"] == [412, 188, 590, 402]
    assert signal.details["zones"] == ["forecourt"]


def test_the_signal_id_is_stable_and_fits_the_id_pattern() -> None:
    """Replaying the track from scratch (a restarted adapter) gives the same id."""
    first = run(CONFIG, smoke_sequence())[1][0].signal_id
    again = run(CONFIG, smoke_sequence()[3:])[1][0].signal_id
    assert first == again == signal_id("frigate", "cam-3", SMOKE_ID)
    assert first.startswith("frigate:cam-3:1784534400_125431-k3v9qz-")
    Signal.model_validate({**run(CONFIG, smoke_sequence())[1][0].model_dump(),
                           "signal_id": first})


def test_signal_ids_are_distinct_and_bounded() -> None:
    """'.' and '_' in object ids do not collide; a long id is hashed to 128 characters."""
    assert signal_id("frigate", "cam-3", "a.b") != signal_id("frigate", "cam-3", "a_b")
    assert signal_id("frigate", "cam-3", "a_b") == "frigate:cam-3:a_b"
    long_one, long_two = (signal_id("p" * 40, "c" * 64, "o" * 127 + tail) for tail in "12")
    assert len(long_one) <= 128 and long_one != long_two


def test_a_late_message_after_the_end_stays_quiet() -> None:
    """A redelivered update after the end finds the object still remembered."""
    state, _, _ = run(CONFIG, smoke_sequence())
    _, signals, reasons = run(CONFIG, smoke_sequence()[5:6], state)
    assert signals == [] and reasons == ["already reported"]


def test_a_first_qualifying_end_is_reported() -> None:
    """An object whose only good score is on its end message still makes its signal."""
    _, signals, _ = run(CONFIG, [frigate("new", score=0.5, top_score=0.5),
                                 frigate("end", score=0.9, top_score=0.75, frame_time=8,
                                         end_time=T0.timestamp() + 9)])
    assert [s.confidence for s in signals] == [0.9]
    assert signals[0].details["phase"] == "end"


def test_an_end_without_after_reads_before_and_active_stands_for_stationary() -> None:
    """``end`` with ``after: null`` uses ``before``; no ``stationary`` key: ``not active``."""
    obj = frigate_object(label="car", stationary=True, frame_time=30)
    del obj["stationary"]
    d = parse_frigate(json.dumps({"type": "end", "before": obj, "after": None}).encode())
    assert (d.phase, d.stationary, d.at) == ("end", True, T0 + timedelta(seconds=30))
    with pytest.raises(VideoRejected, match="without an 'after' object"):
        parse_frigate(json.dumps({"type": "update", "before": obj, "after": None}).encode())


def test_two_objects_or_two_cameras_make_two_signals() -> None:
    """Distinct objects on a camera, or one object id on two cameras, are distinct."""
    _, signals, _ = run(CONFIG, smoke_sequence("1784534400.1-aaaaaa")
                        + smoke_sequence("1784534400.2-bbbbbb"))
    assert len({s.signal_id for s in signals}) == 2
    _, signals, _ = run(CONFIG, smoke_sequence(camera="cam-3") + smoke_sequence(camera="cam-4"))
    assert len({s.signal_id for s in signals}) == 2
    assert {(s.location.lat, s.location.lon) for s in signals} == {
        (34.7466, 113.6253), (34.7572, 113.6487)}


# --- stopped vehicles --------------------------------------------------------------------

def car(kind: str, at: float, *, stationary: bool = True,
        zones: tuple[str, ...] = ("carriageway",), camera: str = "cam-3") -> bytes:
    return frigate(kind, id="1784534400.5-carcar", camera=camera, label="car", score=0.8,
                   top_score=0.82, frame_time=at, zones=zones, stationary=stationary)


def test_a_car_stopped_on_the_carriageway_is_a_traffic_signal_after_a_minute() -> None:
    """Stationary in a carriageway zone at 0 s and still at 61 s: one traffic signal."""
    _, signals, reasons = run(CONFIG, [car("new", 0, stationary=False), car("update", 10),
                                       car("update", 40), car("update", 71), car("update", 131)])
    [signal] = signals
    assert signal.category == "traffic" and signal.observed_at == T0 + timedelta(seconds=71)
    assert signal.summary == "Stopped vehicle on the carriageway seen by camera cam-3 (score 0.82)"
    assert signal.details["stopped_since"] == (T0 + timedelta(seconds=10)).isoformat()
    assert reasons[:3] == ["vehicle moving",
                           "stopped on the carriageway; reported if still there after 60 s",
                           "stopped on the carriageway for 30 s of 60"]


def test_with_no_dwell_a_stationary_car_is_reported_at_once() -> None:
    """stopped_min_s = 0: the first stationary detection in the carriageway reports."""
    config = VideoConfig(cameras=CONFIG.cameras, stopped_min_s=0)
    _, signals, _ = run(config, [car("new", 0)])
    assert [s.category for s in signals] == ["traffic"]


def test_moving_cars_parked_cars_and_red_light_queues_are_not_signals() -> None:
    """Moving, stationary outside the carriageway zones, or stop-and-go: no signal."""
    config = VideoConfig(cameras=CONFIG.cameras, stopped_min_s=0)
    assert run(config, [car("new", 0, stationary=False)])[1] == []
    _, signals, reasons = run(config, [car("new", 0, zones=("parking",))])
    assert signals == [] and reasons == ["vehicle stationary outside the carriageway zones"]
    _, signals, _ = run(CONFIG, [car("new", 0), car("update", 50, stationary=False),
                                 car("update", 70), car("update", 100)])
    assert signals == []  # moved off at 50 s: the wait starts again at 70 s


def test_an_ended_car_forgets_its_pending_stop() -> None:
    """A car that leaves (end) before the dwell leaves nothing behind."""
    state, signals, _ = run(CONFIG, [car("new", 0), car("end", 30)])
    assert signals == [] and state == Tracking()


# --- what is not ours ---------------------------------------------------------------------

def test_an_unknown_camera_is_refused_with_what_to_do() -> None:
    """A fire on a camera missing from the registry goes to the dead letters."""
    with pytest.raises(VideoRejected) as caught:
        run(CONFIG, [frigate("new", camera="cam-99", label="fire", score=0.9, top_score=0.9)])
    assert caught.value.reason == ("camera 'cam-99' is not in the camera registry; add a "
                                   "[[camera]] entry to the city file")


def test_labels_of_no_interest_are_dropped_even_from_unknown_cameras() -> None:
    """People and dogs are not emergencies; they never reach the registry check."""
    for label, camera in (("person", "cam-3"), ("dog", "cam-3"), ("person", "cam-99")):
        state, signals, reasons = run(CONFIG, [frigate("new", label=label, camera=camera,
                                                       score=0.95, top_score=0.95)])
        assert (state, signals, reasons) == (Tracking(), [], ["label not of interest"])


def test_a_false_positive_is_not_reported() -> None:
    """An object the platform itself calls a false positive makes no signal."""
    obj = frigate_object(label="fire", score=0.9, top_score=0.9)
    obj["false_positive"] = True
    data = json.dumps({"type": "update", "before": obj, "after": obj}).encode()
    assert run(CONFIG, [data])[1] == []


# --- the city file ------------------------------------------------------------------------

CITY = """
name = "Zhengzhou"

[[station]]
id = "fire-1"
agency = "fire"
district = "Erqi"
lat = 34.75
lon = 113.62

[[camera]]
id = "cam-3"
lat = 34.7466
lon = 113.6253
address = "Erqi Square, Zhengzhou"
carriageway_zones = ["carriageway"]

[[camera]]
id = "cam-4"
lat = 34.7572
lon = 113.6487

[video]
stopped_min_s = 90

[video.labels.smoke]
min_score = 0.8

[video.labels.gun]
category = "crime"
min_score = 0.85
summary = "Firearm"

[video.labels.crowd]
enabled = false
"""


def test_the_city_file_gives_the_registry_and_the_label_overrides() -> None:
    """Cameras, a changed default, a new label and a dropped one; the city parser agrees."""
    parse_city(CITY)
    config = parse_video_config(tomllib.loads(CITY),
                                categories=load_catalogue().types.keys())
    assert sorted(config.cameras) == ["cam-3", "cam-4"]
    assert config.cameras["cam-3"].carriageway_zones == ("carriageway",)
    assert config.stopped_min_s == 90
    smoke = config.labels["smoke"]
    assert (smoke.category, smoke.min_score, smoke.summary) == ("fire", 0.8, "Smoke")
    assert config.labels["gun"].category == "crime" and "crowd" not in config.labels
    assert config.labels["fire"] == DEFAULT_LABELS["fire"]


def test_the_default_labels_use_catalogue_categories() -> None:
    """Every default rule files its signal under a type the catalogue knows."""
    types = load_catalogue().types
    assert {rule.category for rule in DEFAULT_LABELS.values()} <= set(types)
    parse_video_config({}, categories=types.keys())


@pytest.mark.parametrize(("change", "message"), [
    ('[[camera]]\nid = "cam-3"\nlat = 1\nlon = 2\n',
     "city.toml: [[camera]] entry 3 (id 'cam-3'): camera 'cam-3' appears twice"),
    ('[[camera]]\nid = "cam-5"\nlat = 134.7\nlon = 2\n',
     "city.toml: [[camera]] entry 3 (id 'cam-5'): lat: Input should be less than or equal "
     "to 90"),
    ('[[camera]]\nid = "cam-5"\nlat = 34.7\nlon = 2\nheight_m = 6\n',
     "city.toml: [[camera]] entry 3 (id 'cam-5'): height_m: Extra inputs are not permitted"),
    ('[[camera]]\nid = "cam 5"\nlat = 34.7\nlon = 2\n',
     "city.toml: [[camera]] entry 3 (id 'cam 5'): id: String should match pattern"),
    ('[video.labels.knife]\nmin_score = 0.8\n',
     "city.toml: [video.labels.knife]: a new label needs a category"),
    ('[video.labels.fire]\ncategory = "arson"\n',
     "city.toml: [video.labels.fire]: category 'arson' is not in the catalogue"),
    ('[video]\nstopped_min = 30\n',
     "city.toml: [video]: stopped_min: Extra inputs are not permitted"),
])
def test_a_bad_camera_or_label_entry_is_refused_by_name(change: str, message: str) -> None:
    """Duplicates, off-globe coordinates, unknown keys and bad labels name their entry."""
    text = CITY.split("[video]")[0] + change
    with pytest.raises(VideoRejected) as caught:
        parse_video_config(tomllib.loads(text), categories=load_catalogue().types.keys())
    assert caught.value.reason.startswith(message)


# --- webhooks -----------------------------------------------------------------------------

def test_a_webhook_means_what_the_same_frigate_event_means() -> None:
    """The generic webhook gives the same Detection as Frigate, bar the platform."""
    hook = parse_webhook(json.dumps({
        "platform": "frigate", "camera": "cam-3", "object_id": SMOKE_ID, "label": "smoke",
        "score": 0.81, "at": "2026-07-20T16:00:06+08:00", "zones": ["forecourt"],
        "box": [412, 188, 590, 402]}).encode())
    event = parse_frigate(frigate("update", score=0.81, top_score=0.76, frame_time=6))
    assert hook == event
    assert hook.at.tzinfo == UTC
    ended = parse_webhook(json.dumps({
        "platform": "hik_vms", "camera": "cam-4", "object_id": "evt-77", "label": "crash",
        "score": 0.9, "at": "2026-07-20T08:00:00Z", "end": True}).encode())
    assert ended.phase == "end"
    _, signal, _ = observe(CONFIG, Tracking(), ended)
    assert signal is not None and signal.signal_id == "hik_vms:cam-4:evt-77"
    assert signal.category == "traffic"


@pytest.mark.parametrize(("body", "why"), [
    ({"at": "2026-07-20T08:00:00"}, "at: Input should have timezone info"),
    ({"score": 1.5}, "score: Input should be less than or equal to 1"),
    ({"platform": "Hik VMS"}, "platform: String should match pattern"),
    ({"at": "1970-01-01T00:00:00Z"}, "is not plausible"),
    ({"at": "9999-12-31T23:59:59-10:00"}, "cannot be expressed in UTC"),
    ({"colour": "red"}, "colour: Extra inputs are not permitted"),
])
def test_a_bad_webhook_is_refused_with_the_field(body: dict[str, Any], why: str) -> None:
    """Naive times, scores past 1, bad tokens, impossible times and extra keys."""
    good = {"platform": "vms", "camera": "cam-3", "object_id": "1", "label": "fire",
            "score": 0.9, "at": "2026-07-20T08:00:00Z"}
    with pytest.raises(VideoRejected, match=why):
        parse_webhook(json.dumps({**good, **body}).encode())


def test_huge_details_still_fit_a_signal() -> None:
    """32 zones of 64 astral characters (12 bytes each escaped) still give a valid signal."""
    zones = [chr(0x1F525) * 63 + chr(65 + i) for i in range(32)]
    data = frigate("new", label="fire", score=0.9, top_score=0.9, zones=tuple(zones))
    _, signal, _ = observe(CONFIG, Tracking(), parse_frigate(data))
    assert signal is not None and signal.details["zones_omitted"] > 0


# --- bounded memory -----------------------------------------------------------------------

def test_tracking_stays_bounded() -> None:
    """MAX_TRACKED + 100 reported objects: the oldest 100 are forgotten, the newest kept."""
    state = Tracking()
    started = time.perf_counter()
    for i in range(MAX_TRACKED + 100):
        d = Detection(platform="frigate", camera="cam-3", object_id=f"obj-{i}", label="fire",
                      score=0.9, at=T0, phase="update")
        state, signal, _ = observe(CONFIG, state, d)
        assert signal is not None
    assert len(state.tracked) == MAX_TRACKED
    assert ("frigate", "cam-3", "obj-0") not in state.tracked
    assert ("frigate", "cam-3", f"obj-{MAX_TRACKED + 99}") in state.tracked
    assert time.perf_counter() - started < 30


# --- garbage never escapes as anything but VideoRejected ----------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                 max_size=4),
    max_leaves=20)
FRIGATE_FIELDS = list(frigate_object())
WEBHOOK = {"platform": "vms", "camera": "cam-3", "object_id": "1", "label": "fire",
           "score": 0.9, "at": "2026-07-20T08:00:00Z", "zones": [], "stationary": False,
           "end": False, "box": None}


def either(data: bytes) -> None:
    """Both doors return a Detection or raise VideoRejected with a reason."""
    for door in (parse_frigate, parse_webhook):
        try:
            assert isinstance(door(data), Detection)
        except VideoRejected as exc:
            assert exc.reason


@settings(max_examples=150)
@given(st.binary(max_size=300))
def test_random_bytes_are_refused_or_read_never_anything_else(data: bytes) -> None:
    """Any bytes at either door give a Detection or a refusal with a reason, never a crash."""
    either(data)


@settings(max_examples=150)
@given(json_values)
def test_random_json_is_refused_or_read_never_anything_else(value: Any) -> None:
    """Any JSON value (NaN and Infinity tokens included) is refused or read."""
    either(json.dumps(value).encode())


@settings(max_examples=200)
@given(st.sampled_from([*FRIGATE_FIELDS, "type", "before", "after"]), json_values,
       st.sampled_from(["new", "update", "end"]))
def test_any_value_in_any_frigate_field_is_refused_or_read_never_anything_else(
        name: str, value: Any, kind: str) -> None:
    """A real Frigate event with any one field replaced is refused or read, nothing else."""
    obj = frigate_object(label="fire", score=0.9, top_score=0.9)
    event: dict[str, Any] = {"type": kind, "before": dict(obj), "after": obj}
    if name in event:
        event[name] = value
    else:
        obj[name] = value
    data = json.dumps(event).encode()
    try:
        observe(CONFIG, Tracking(), parse_frigate(data))  # what is read can be observed
    except VideoRejected as exc:
        assert exc.reason


@settings(max_examples=150)
@given(st.sampled_from(list(WEBHOOK)), json_values)
def test_any_value_in_any_webhook_field_is_refused_or_read_never_anything_else(
        name: str, value: Any) -> None:
    """A webhook with any one field replaced is refused or read, nothing else."""
    data = json.dumps({**WEBHOOK, name: value}).encode()
    try:
        observe(CONFIG, Tracking(), parse_webhook(data))
    except VideoRejected as exc:
        assert exc.reason


# --- what must be refused is refused, naming the field --------------------------------------

FINITE: dict[str, Any] = {"allow_nan": False, "allow_infinity": False}
OUT_OF_RANGE_SCORES = (st.floats(min_value=1, exclude_min=True, **FINITE)
                       | st.floats(max_value=0, exclude_max=True, **FINITE))
NOT_A_NUMBER = st.one_of(st.text(max_size=8), st.lists(st.integers(), max_size=3),
                         st.dictionaries(st.text(max_size=4), st.integers(), max_size=2))
NOT_A_STRING = st.one_of(st.integers(), st.floats(**FINITE), st.booleans(),
                         st.lists(st.integers(), max_size=3))
# seconds since 1970 outside the years 2000 to 2200: a broken camera clock
IMPLAUSIBLE_SECONDS = (st.floats(max_value=946_684_799, **FINITE)
                       | st.floats(min_value=7_258_118_400, **FINITE))
BAD_CAMERA_IDS = st.sampled_from(["", "-cam", "cam 3", "cam/3", "c" * 65, "相机"])


@st.composite
def invalid_frigate_events(draw: st.DrawFn) -> tuple[bytes, str]:
    """A real Frigate event broken in one way it must be refused for, and what the
    refusal must name."""
    kind = draw(st.sampled_from(["missing", "score type", "score range", "string type",
                                 "event type", "clock", "camera id"]))
    obj = frigate_object(label="fire", score=0.9, top_score=0.9)
    event: dict[str, Any] = {"type": draw(st.sampled_from(["new", "update", "end"])),
                             "before": dict(obj), "after": obj}
    if kind == "missing":
        name = draw(st.sampled_from(["id", "camera", "label", "score"]))
        del obj[name]
        named = f"after.{name}: Field required"
    elif kind == "score type":
        name = draw(st.sampled_from(["score", "top_score"]))
        obj[name] = draw(NOT_A_NUMBER)
        named = f"after.{name}"
    elif kind == "score range":
        name = draw(st.sampled_from(["score", "top_score"]))
        obj[name] = draw(OUT_OF_RANGE_SCORES)
        named = f"after.{name}"
    elif kind == "string type":
        name = draw(st.sampled_from(["id", "camera", "label"]))
        obj[name] = draw(NOT_A_STRING)
        named = f"after.{name}"
    elif kind == "event type":
        event["type"] = draw(st.text(max_size=10).filter(
            lambda t: t not in {"new", "update", "end"}) | NOT_A_STRING)
        named = "type"
    elif kind == "clock":
        obj["frame_time"] = draw(IMPLAUSIBLE_SECONDS)
        named = "is not plausible"
    else:
        obj["camera"] = draw(BAD_CAMERA_IDS)
        named = "after.camera"
    return json.dumps(event).encode(), named


@settings(max_examples=120)
@given(invalid_frigate_events())
def test_invalid_frigate_events_are_refused(case: tuple[bytes, str]) -> None:
    """A Frigate event without a required field, with a wrong type, a score outside 0..1,
    an unknown event type, an implausible clock or a bad camera id is refused, and the
    reason names what is wrong."""
    data, named = case
    with pytest.raises(VideoRejected) as refused:
        parse_frigate(data)
    assert named in refused.value.reason, refused.value.reason


@st.composite
def invalid_webhooks(draw: st.DrawFn) -> tuple[bytes, str]:
    """A good webhook broken in one way it must be refused for, and what the refusal
    must name."""
    kind = draw(st.sampled_from(["missing", "null", "score type", "score range",
                                 "string type", "naive time", "clock", "token",
                                 "camera id", "extra field"]))
    hook = dict(WEBHOOK)
    required = ["platform", "camera", "object_id", "label", "score", "at"]
    if kind == "missing":
        name = draw(st.sampled_from(required))
        del hook[name]
        named = f"{name}: Field required"
    elif kind == "null":
        name = draw(st.sampled_from(required))
        hook[name] = None
        named = f"{name}: "
    elif kind == "score type":
        hook["score"] = draw(NOT_A_NUMBER.filter(
            lambda v: not isinstance(v, str) or not _is_number(v)))
        named = "score: "
    elif kind == "score range":
        hook["score"] = draw(OUT_OF_RANGE_SCORES)
        named = "score: "
    elif kind == "string type":
        name = draw(st.sampled_from(["platform", "camera", "object_id", "label"]))
        hook[name] = draw(NOT_A_STRING)
        named = f"{name}: "
    elif kind == "naive time":
        hook["at"] = draw(st.datetimes(min_value=datetime(2001, 1, 1))).isoformat()
        named = "at: Input should have timezone info"
    elif kind == "clock":
        hook["at"] = draw(st.datetimes(max_value=datetime(1999, 12, 30),
                                       timezones=st.just(UTC))).isoformat()
        named = "is not plausible"
    elif kind == "token":
        hook["platform"] = draw(st.sampled_from(["", "Hik", "hik vms", "9vms", "v" * 41]))
        named = "platform: "
    elif kind == "camera id":
        hook["camera"] = draw(BAD_CAMERA_IDS)
        named = "camera: "
    else:
        name = draw(st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12)
                    .filter(lambda k: k not in WEBHOOK))
        hook[name] = draw(st.integers() | st.text(max_size=8))
        named = f"{name}: Extra inputs are not permitted"
    return json.dumps(hook).encode(), named


def _is_number(text: str) -> bool:
    """Whether pydantic's lax mode reads this string as a number."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_the_webhook_the_refusals_start_from_is_read() -> None:
    """The webhook every refusal below breaks is itself read, so each refusal is for the
    one thing broken."""
    assert parse_webhook(json.dumps(WEBHOOK).encode()).camera == "cam-3"


@settings(max_examples=120)
@given(invalid_webhooks())
def test_invalid_webhooks_are_refused(case: tuple[bytes, str]) -> None:
    """A webhook without a required field, with a wrong type, a score outside 0..1, a
    naive or implausible time, a bad platform token or camera id, or an unknown field is
    refused, and the reason names what is wrong."""
    data, named = case
    with pytest.raises(VideoRejected) as refused:
        parse_webhook(data)
    assert named in refused.value.reason, refused.value.reason


def test_an_oversize_message_is_refused_at_either_door_naming_the_limit() -> None:
    """A message over MAX_MESSAGE_BYTES is refused before it is read, by both doors."""
    data = json.dumps({**WEBHOOK, "label": "x" * MAX_MESSAGE_BYTES}).encode()
    for door in (parse_frigate, parse_webhook):
        with pytest.raises(VideoRejected, match=f"the limit is {MAX_MESSAGE_BYTES}"):
            door(data)


@pytest.mark.parametrize("data", [
    b"[" * 100_000, b'{"a":' * 100_000, b'{"type": "new", "after": ' + b"[" * 5000,
    b'{"type": "new", "after": {"score": 1e400}}', b'{"score": ' + b"9" * 5000 + b"}",
    frigate("new").replace(b'"score": 0.6', b'"score": NaN'),
    frigate("new").replace(b'"score": 0.6', b'"score": Infinity'),
    frigate("new").replace(b'"score": 0.6', b'"score": 1' + b"0" * 400),
    frigate("new", frame_time=1e300), frigate("new", frame_time=-1e300),
    frigate("new").replace(b'"type": "new"', b'"type": "snapshot"'),
    json.dumps({"type": "update", "before": frigate_object()}).encode(),
    frigate("new") + b"x", b"\xff\xfe", b"", b"null", b"{}",
    b" " * (MAX_MESSAGE_BYTES + 1),
])
def test_hostile_messages_are_refused(data: bytes) -> None:
    """Deep nesting, huge numbers, NaN and Infinity, absurd times, bad types, oversize."""
    for door in (parse_frigate, parse_webhook):
        with pytest.raises(VideoRejected):
            door(data)


# --- the promise: one tracked object, one signal ------------------------------------------

detections = st.builds(
    Detection,
    platform=st.just("frigate"), camera=st.just("cam-3"), object_id=st.just("obj-1"),
    label=st.sampled_from(["smoke", "fire", "car", "truck", "person", "crowd"]),
    score=st.floats(0, 1), at=st.integers(0, 600).map(lambda s: T0 + timedelta(seconds=s)),
    phase=st.sampled_from(["new", "update", "end"]),
    zones=st.lists(st.sampled_from(["carriageway", "sidewalk"]), unique=True).map(tuple),
    stationary=st.booleans(), false_positive=st.booleans())


@settings(max_examples=200)
@given(st.lists(detections, max_size=30), st.sampled_from([0.0, 60.0]))
def test_any_sequence_of_one_object_makes_at_most_one_signal(
        sequence: list[Detection], stopped_min_s: float) -> None:
    """Whatever labels, scores, phases and times one object shows: at most one signal."""
    config = VideoConfig(cameras=CONFIG.cameras, stopped_min_s=stopped_min_s)
    state, emitted = Tracking(), []
    for d in sequence:
        state, signal, reason = observe(config, state, d)
        assert reason
        if signal is not None:
            emitted.append(signal)
    assert len(emitted) <= 1
    assert len(state.tracked) == len(emitted) and len(state.stopped) <= 1
