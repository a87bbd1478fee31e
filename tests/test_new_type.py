"""A new incident type added to a copy of the catalogue file alone, and nothing else:
classified from a call, fused with its own radius, labelled on the console,
reclassifiable, and exported to CAP and EIDO with its own mappings (issue 14)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from adapters.cap_out import PublicWarning, render
from adapters.eido_out import handoff_of
from adapters.hotline import classify
from command.settings import load_catalogue
from command.store import Store
from command.subjects import Namespace
from consoles.client import open_console
from consoles.protocol import Welcome
from ecc.app import Service, ServiceConfig
from tests.adapters.test_eido import ecc_incident
from tests.conftest import Servers, running
from tests.helpers import eventually, far_apart, make_signal, publish_signal
from workflows.catalogue import Catalogue

LANDSLIDE = '''

[[type]]
id = "landslide"
label = "Landslide"
default_priority = 2
labels = { zh = "山体滑坡" }
code = "LSL"
fusion = { radius_m = 800, window_s = 3600, family = "ground" }
hotline = [
  { rule = "landslide", order = 5, priority = 2, confidence = 0.8, keywords = [
    "landslide", "mudslide", "滑坡", "泥石流"] },
]
cap = { category = "Geo", response = "Evacuate" }
eido = { common = "Landslide", words = ["landslide"] }

[[plan]]
type = "landslide"
priority = 4
tasks = [{ agency = "fire", capability = "rescue", count = 1 }]
'''


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> Catalogue:
    """The built-in catalogue file with one [[type]] and its plan appended: a copy on disk,
    read as ECC_CATALOGUE would be."""
    text = resources.files("workflows").joinpath("data/catalogue.toml").read_text()
    path: Path = tmp_path_factory.mktemp("catalogue") / "catalogue.toml"
    path.write_text(text + LANDSLIDE)
    loaded = load_catalogue(path)
    assert "landslide" in loaded.types and "landslide" not in load_catalogue().types
    return loaded


def test_a_call_with_its_keyword_is_classified_to_it(catalogue: Catalogue) -> None:
    """Its own keywords, English and Chinese, name it; the built-in catalogue does not."""
    assert classify("a landslide has buried the road", catalogue.hotline).category == \
        "landslide"
    assert classify("村后山体滑坡了", catalogue.hotline).category == "landslide"
    assert classify("a landslide has buried the road",
                    load_catalogue().hotline).category != "landslide"


def test_it_exports_to_cap_and_eido_with_its_mappings(catalogue: Catalogue) -> None:
    """CAP: its category and responseType; EIDO: its common type and label."""
    warning = PublicWarning(
        incident_id="i-1", sequence=1, msg_type="Alert", sent=datetime(2026, 7, 20, tzinfo=UTC),
        sender="ecc@city.example", category="landslide", event="Landslide",
        urgency="Immediate", severity="Severe", certainty="Observed", headline="Landslide",
        description="", instruction="Leave the valley road", area_desc="North valley",
        lat=34.8, lon=113.6, radius_m=500)
    xml = render(warning, catalogue.cap).decode()
    assert "<category>Geo</category>" in xml and "<responseType>Evacuate</responseType>" in xml
    view, timeline, signals = ecc_incident()
    h = handoff_of({**view, "category": "landslide"}, timeline=timeline, signals=signals,
                   agency="zz.example", now=datetime(2026, 7, 20, 2, tzinfo=UTC), callers=False,
                   catalogue=catalogue)
    assert (h.type_code, h.type_text, h.type_common) == ("landslide", "Landslide", "Landslide")


@pytest.fixture
async def service(servers: Servers, database_url: str, ns: Namespace, js: Any,
                  catalogue: Catalogue) -> AsyncIterator[Service]:
    async with running(Service(ServiceConfig(
            nats_url=servers.nats_url, database_url=database_url, namespace=ns.prefix,
            console_port=0, catalogue=catalogue))) as svc:
        yield svc


async def _incidents(store: Store) -> list[dict[str, Any]]:
    return [r["view"] for r in await store.pool.fetch(
        "SELECT view FROM incidents WHERE category = 'landslide' ORDER BY last_seq")]


async def test_the_service_fuses_labels_and_reclassifies_it(
        service: Service, store: Store, js: Any, ns: Namespace) -> None:
    """Over the real service: two reports 500 m apart fuse (its 800 m radius; a fire's is
    300 m), one 2 km away does not; the welcome labels it; a dispatcher reclassifies a
    fire to it."""
    here = far_apart()
    near = here.model_copy(update={"lat": here.lat + 0.0045})  # ~500 m north
    far = here.model_copy(update={"lat": here.lat + 0.018})  # ~2 km north
    for where in (here, near, far):
        signal = make_signal(category="landslide", location=where, confidence=0.6)
        await publish_signal(js, ns, signal, msg_id=f"hotline:{signal.signal_id}")

    async def settled() -> list[dict[str, Any]] | None:
        found = await _incidents(store)
        return found if sum(len(i["signals"]) for i in found) == 3 else None

    found = await eventually(settled, timeout=20)
    assert sorted(len(i["signals"]) for i in found) == [1, 2]
    fire = make_signal(category="fire", location=far_apart(), confidence=0.6)
    await publish_signal(js, ns, fire, msg_id=f"hotline:{fire.signal_id}")

    async def the_fire() -> Any:
        return await store.pool.fetchval(
            "SELECT incident_id FROM incidents WHERE view->'signals' @> $1::jsonb",
            [{"signal_id": fire.signal_id}])

    fire_id = await eventually(the_fire, timeout=20)
    token = f"dispatcher-{uuid.uuid4().hex}"
    await store.create_token(token, name="desk 1", role="dispatcher", agency=None)
    async with open_console(service.console_url, token) as console:
        welcome = await asyncio.wait_for(console.receive(), 10)
        assert isinstance(welcome, Welcome)
        [info] = [t for t in welcome.types if t.id == "landslide"]
        assert (info.label, info.labels.get("zh"), info.code) == ("Landslide", "山体滑坡", "LSL")
        assert any(r.category == "landslide" for r in welcome.rules)
        await asyncio.wait_for(console.receive(), 10)  # the snapshot
        done = await console.command("incident.reclassify", fire_id, category="landslide",
                                     reason="the hillside moved")
        assert done.ok, done.message
    assert await store.pool.fetchval(
        "SELECT category FROM incidents WHERE incident_id = $1", fire_id) == "landslide"


