"""The real service on the east Reno city (sim/data/reno_east.toml, over the shared OSM
extract, with its gazetteer and the test code list), fed over its HTTP ingress: calls
with only an address become incidents placed by the gazetteer, calls it cannot place
become incidents of unknown location that the console shows and that are never fused,
and CAP alerts of unknown codes or of absurd size are answered, never a crash."""

from __future__ import annotations

import asyncio
import functools
import json
import math
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.cap import MAX_ALERT_BYTES
from adapters.gazetteer_data import parse_osm_places
from adapters.ingest import config_from_city
from command.model import Signal
from command.settings import load_city, load_city_doc
from command.store import Store
from command.subjects import Namespace
from consoles.client import open_console
from consoles.protocol import Snapshot, Welcome
from ecc.app import Service, ServiceConfig
from tests.adapters.test_ingest import incidents
from tests.conftest import Servers, running
from tests.helpers import eventually, shared_data

REPO = Path(__file__).resolve().parents[2]
RENO = REPO / "sim" / "data" / "reno_east.toml"
CODES = Path(__file__).parent / "data" / "reno_codes.toml"
NWS = shared_data("cap", "nws-5c2cf27b1f56885d61654dc47fa411d5.xml")
XML = {"Content-Type": "application/cap+xml"}


def _metres(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    k = math.cos(math.radians((lat1 + lat2) / 2))
    return math.hypot((lat2 - lat1) * 110_540, (lon2 - lon1) * 111_320 * k)


@pytest.fixture
async def reno(servers: Servers, database_url: str, ns: Namespace,
               js: Any) -> AsyncIterator[Service]:
    """The whole service on east Reno as `ecc up` builds it (city, road network, the
    hotline and CAP adapters with the city's gazetteer), plus the test code list."""
    doc = load_city_doc(RENO)
    doc["gazetteer"] = {"codes": str(CODES)}
    adapters = config_from_city(doc, kinds=("hotline", "cap"), origin=str(RENO),
                                base=RENO.parent)
    assert adapters.gazetteer is not None
    async with running(Service(ServiceConfig(
            nats_url=servers.nats_url, database_url=database_url, namespace=ns.prefix,
            city=load_city(RENO), adapters=adapters, ingress_port=0,
            console_port=0))) as service:
        yield service


@pytest.fixture
async def http(reno: Service, store: Store) -> AsyncIterator[httpx.AsyncClient]:
    """A hotline and CAP platform's client, with an adapter token of its own."""
    value = f"adapter-{uuid.uuid4().hex}"
    await store.create_token(value, name="reno 911", role="adapter", agency=None,
                             kinds=("hotline", "cap"))
    assert reno.ingress is not None
    async with httpx.AsyncClient(base_url=reno.ingress.url, timeout=30, headers={
            "Authorization": f"Bearer {value}", "Content-Type": "application/json"}) as client:
        yield client


def _call(call_id: str, narrative: str, address: str | None) -> bytes:
    record: dict[str, Any] = {"call_id": call_id, "platform": "911", "narrative": narrative,
                              "received_at": datetime.now(UTC).isoformat()}
    if address is not None:
        record["address"] = address
    return json.dumps(record).encode()


async def _signal(js: Any, ns: Namespace, category: str) -> Signal:
    """The last signal of the hotline in ``category``, as the adapter published it."""
    msg = await js.get_last_msg(ns.stream("SIGNALS"), ns.signal("hotline", category))
    return Signal.model_validate_json(msg.data)


@functools.cache
def _ways(name: str) -> frozenset[tuple[float, float]]:
    """The points of the extract's ways named ``name``, read from the OSM file itself."""
    streets, *_ = parse_osm_places(shared_data("road_networks", "reno_east3.osm")
                                   .read_bytes())
    return frozenset(p for s in streets if s.name == name for line in s.lines for p in line)


async def test_an_address_only_call_becomes_an_incident_at_that_address(
        http: httpx.AsyncClient, store: Store, js: Any, ns: Namespace) -> None:
    """A call saying only "Pyramid Way & Prater Way" (a real crossing of the extract):
    202, an incident within 150 m of the OSM node the two ways share, and the signal's
    details say how it was placed. A house number on a street the extract has no numbers
    for is placed on that street and says so."""
    answer = await http.post("/v1/calls", content=_call(
        "reno-1", "car crash, two cars, one person trapped", "Pyramid Way & Prater Way"))
    assert answer.status_code == 202, answer.text
    [crash] = await eventually(lambda: incidents(store), timeout=20)
    here = crash["location"]
    assert here.get("unknown") is None and crash["category"] == "traffic"
    crossing = _ways("Pyramid Way") & _ways("Prater Way")
    assert crossing, "the extract's Pyramid Way and Prater Way share no node"
    assert min(_metres(here["lat"], here["lon"], lat, lon) for lat, lon in crossing) < 150
    placement = (await _signal(js, ns, "traffic")).details["placement"]
    assert placement["matched"] == "intersection" and placement["score"] >= 0.5
    assert placement["text"] == "Pyramid Way & Prater Way"

    numbered = await http.post("/v1/calls", content=_call(
        "reno-2", "kitchen fire, smoke from the roof", "555 Pyramid Way, Sparks"))
    assert numbered.status_code == 202, numbered.text

    async def fire() -> dict[str, Any] | None:
        return next((i for i in await incidents(store) if i["category"] == "fire"), None)

    found = await eventually(fire, timeout=20)
    at = found["location"]
    assert min(_metres(at["lat"], at["lon"], lat, lon) for lat, lon in _ways("Pyramid Way")) < 150
    placement = (await _signal(js, ns, "fire")).details["placement"]
    assert placement["matched"] == "street" and "no house numbers" in placement["label"]


async def test_unplaceable_calls_are_incidents_of_unknown_location_never_fused(
        reno: Service, http: httpx.AsyncClient, store: Store, token: str) -> None:
    """A call whose address matches nothing and one with an empty address: each 202,
    each its own incident (location unknown is never fused, though both stand in at the
    city's centre and tell of the same crash), and the console's snapshot over a real
    websocket shows both as location unknown with the reason and the words said."""
    lost = await http.post("/v1/calls", content=_call(
        "lost-1", "car crash, driver hurt", "nowhere street 99999"))
    assert lost.status_code == 202, lost.text
    empty = await http.post("/v1/calls", content=_call("lost-2", "car crash, driver hurt", ""))
    assert empty.status_code == 202, empty.text

    async def two() -> list[dict[str, Any]]:
        found = await incidents(store)
        return found if len(found) == 2 else []

    both = await eventually(two, timeout=20)
    assert all(len(i["signals"]) == 1 for i in both)
    assert {i["signals"][0]["signal_id"] for i in both} == {"call-lost-1", "call-lost-2"}

    async with open_console(reno.console_url, token) as console:
        assert isinstance(await asyncio.wait_for(console.receive(), 10), Welcome)
        snap = await asyncio.wait_for(console.receive(), 10)
    assert isinstance(snap, Snapshot) and len(snap.incidents) == 2
    shown = {i["signals"][0]["signal_id"]: i["location"] for i in snap.incidents}
    assert "no street, place or area of the city matches" in shown["call-lost-1"]["unknown"]
    assert "nowhere street 99999" in shown["call-lost-1"]["unknown"]
    assert shown["call-lost-2"]["unknown"] == "no address given"


def _nws(*codes: tuple[str, str], polygon: str = "") -> bytes:
    """The real NWS blizzard warning with its area's geocodes and polygon replaced, and an
    identifier of its own (so each variant is its own alert)."""
    xml = NWS.read_text()
    geocodes = "".join(f"<geocode><valueName>{k}</valueName><value>{v}</value></geocode>"
                       for k, v in codes)
    xml, n = re.subn(r"<polygon></polygon>.*?</area>",
                     lambda _: f"<polygon>{polygon}</polygon>{geocodes}</area>", xml,
                     flags=re.DOTALL)
    assert n == 1
    ident = f"TEST-{uuid.uuid4().hex[:8]}"
    xml = re.sub(r"<identifier>[^<]*</identifier>", f"<identifier>{ident}</identifier>", xml,
                 count=1)
    return xml.encode()


async def test_cap_of_unknown_codes_is_an_incident_of_unknown_location_saying_which(
        http: httpx.AsyncClient, store: Store) -> None:
    """The NWS alert for Los Angeles County's codes (SAME 006037, UGC CAZ041), none of
    them in east Reno's code list: 202 saying location unknown, and an incident marked
    unknown that names the codes. The same alert for Washoe County's zone is placed
    inside that zone's polygon."""
    answer = await http.post("/v1/cap", content=_nws(("SAME", "006037"), ("UGC", "CAZ041")),
                             headers=XML)
    assert answer.status_code == 202, answer.text
    assert "location unknown" in answer.json()["understood"]
    [blizzard] = await eventually(lambda: incidents(store), timeout=20)
    unknown = blizzard["location"]["unknown"]
    assert "no geocode of the area is in the city's code list" in unknown
    assert "006037" in unknown and "CAZ041" in unknown

    placed = await http.post("/v1/cap", content=_nws(("UGC", "NVZ003")), headers=XML)
    assert placed.status_code == 202, placed.text

    async def reno_zone() -> dict[str, Any] | None:
        return next((i for i in await incidents(store)
                     if i["location"].get("unknown") is None), None)

    at = (await eventually(reno_zone, timeout=20))["location"]
    assert 39.505 <= at["lat"] <= 39.540 and -119.800 <= at["lon"] <= -119.750


async def test_a_ten_megabyte_cap_polygon_is_413_and_the_next_alert_is_served(
        http: httpx.AsyncClient, store: Store, js: Any, ns: Namespace) -> None:
    """A warning polygon of ~10 MB (the NWS alert's, filled with 440,000 points around
    Reno): 413 with its size and the limit, nothing published; the service is up and the
    next alert, for Washoe County's zone, is taken and becomes an incident; so does one
    whose polygon brings it just under the 4 MiB limit."""
    points = 440_000
    ring = " ".join(f"{39.52 + 0.01 * math.sin(2 * math.pi * i / points):.7f},"
                    f"{-119.75 + 0.01 * math.cos(2 * math.pi * i / points):.7f}"
                    for i in range(points))
    huge = _nws(("UGC", "NVZ003"), polygon=f"{ring} 39.5200000,-119.7400000")
    assert len(huge) > 10_000_000
    answer = await http.post("/v1/cap", content=huge, headers=XML)
    assert answer.status_code == 413, answer.text
    assert re.fullmatch(r"the alert is (\d+ bytes|over \d+ bytes); the limit is \d+ bytes",
                        answer.json()["error"]), answer.json()
    assert (await http.get("/healthz")).status_code == 200

    good = await http.post("/v1/cap", content=_nws(("UGC", "NVZ003")), headers=XML)
    assert good.status_code == 202, good.text
    [incident] = await eventually(lambda: incidents(store), timeout=20)
    assert incident["signals"][0]["source"] == "cap"
    assert incident["location"].get("unknown") is None
    # the 413 published nothing: the one signal is the good alert's
    info = await js.stream_info(ns.stream("SIGNALS"))
    assert info.state.messages == 1

    # just under the limit: taken (202), and the promise kept: it reaches an incident
    points = 160_000
    ring = " ".join(f"{39.52 + 0.01 * math.sin(2 * math.pi * i / points):.7f},"
                    f"{-119.75 + 0.01 * math.cos(2 * math.pi * i / points):.7f}"
                    for i in range(points))
    near = _nws(("UGC", "NVZ003"), polygon=f"{ring} 39.5200000,-119.7400000")
    assert 3_800_000 < len(near) <= MAX_ALERT_BYTES
    taken = await http.post("/v1/cap", content=near, headers=XML)
    assert taken.status_code == 202, taken.text

    async def two() -> list[dict[str, Any]]:
        found = await incidents(store)
        return found if sum(len(i["signals"]) for i in found) == 2 else []

    both = await eventually(two, timeout=30)
    assert all(i["location"].get("unknown") is None for i in both)
