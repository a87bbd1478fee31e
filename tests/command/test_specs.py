"""The adapters' declarations (command/specs.py, the SPEC of each adapter module)."""

from __future__ import annotations

import pytest

from adapters.ingest import KINDS, SPECS
from command.specs import AdapterSpec, Feed, by_kind
from command.subjects import Namespace


def test_each_adapter_declares_one_kind_and_its_own_durables() -> None:
    """The five adapters, each once, with no consumer declared twice."""
    assert tuple(by_kind(SPECS)) == KINDS == ("hotline", "cap", "sensor", "video", "eido")
    twice = AdapterSpec(kind="x", feeds=(Feed("INGRESS", "d", "ingress.x"),) * 2)
    with pytest.raises(ValueError, match="consumer INGRESS/d"):
        by_kind([twice])
    with pytest.raises(ValueError, match="kind 'hotline'"):
        by_kind([SPECS[0], SPECS[0]])


def test_mqtt_feeds_follow_the_namespace_as_devices_publish() -> None:
    """An MQTT feed's subject is the topic as sent in namespace ecc, under <ns>. elsewhere."""
    video = by_kind(SPECS)["video"]
    frigate = video.feed("adapter-video-frigate")
    assert frigate.subject_in(Namespace()) == "frigate.events"
    assert frigate.subject_in(Namespace("t1")) == "t1.frigate.events"
    assert video.feed("adapter-video").subject_in(Namespace("t1")) == "t1.ingress.video"
    assert by_kind(SPECS)["cap"].streams() == ("INGRESS", "EVENTS", "SIGNALS", "DEADLETTER",
                                               "WARNINGS", "CAPSEEN")
