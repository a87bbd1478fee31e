"""The console's map in headless Chromium: each city opens on its own extent with its
offline layer (the demo's schematic, declared in its city file; east Reno's built by
``ecc map build`` from the shared OSM extract), every station in view, and a
screenshot that is a picture, not a blank. The map's contract for unit positions
(``window.ecc.positions`` and ``map.positionsChanged()``) is driven from the page.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page, expect

from command.basemap import MapSite, map_site
from command.city import City
from command.model import PositionReport
from command.settings import load_city
from command.store import Store
from command.subjects import Namespace
from ecc.app import Service, ServiceConfig
from tests.conftest import Servers, running
from tests.consoles.test_web import LIVE, _console_problem, browser, connected
from tests.helpers import shared_data

__all__ = ["browser"]  # the module's Chromium fixture, shared with test_web

REPO = Path(__file__).resolve().parents[2]
RENO = REPO / "sim" / "data" / "reno_east.toml"

_COLOURS = """async (b64) => {
  const img = new Image();
  img.src = `data:image/png;base64,${b64}`;
  await img.decode();
  const c = document.createElement("canvas");
  c.width = img.width; c.height = img.height;
  const g = c.getContext("2d");
  g.drawImage(img, 0, 0);
  const px = g.getImageData(0, 0, c.width, c.height).data;
  const seen = new Set();
  for (let i = 0; i < px.length; i += 4) seen.add((px[i] << 16) | (px[i + 1] << 8) | px[i + 2]);
  return seen.size;
}"""


async def _open(browser: Browser, svc: Service, store: Store) -> tuple[Page, list[str]]:
    token = f"map-{uuid.uuid4().hex}"
    await store.create_token(token, name="map desk", role="viewer", agency=None)
    context = await browser.new_context(viewport={"width": 1600, "height": 1000})
    page = await context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("console", lambda msg: _console_problem(msg, problems))
    await page.goto(f"{svc.console_url}#token={token}")
    await connected(page)
    return page, problems


async def _shows_the_city(page: Page, city: City, shot: Path) -> None:
    # the offline layer drawn (its SVG paths in Leaflet's overlay pane)
    await expect(page.locator("#map .leaflet-overlay-pane path.base").first).to_be_attached(
        timeout=LIVE)
    units = sum(len(s.units) for s in city.stations)
    await expect(page.locator("#map .unit")).to_have_count(units, timeout=LIVE)
    bounds = await page.evaluate("""() => { const b = window.ecc.map.map.getBounds();
        return [b.getSouth(), b.getWest(), b.getNorth(), b.getEast()]; }""")
    south, west, north, east = bounds
    for s in city.stations:
        assert south <= s.lat <= north and west <= s.lon <= east, (
            f"station {s.id} ({s.lat}, {s.lon}) is outside the map's view {bounds}")
    png = await page.locator("#map").screenshot(path=str(shot))
    colours = await page.evaluate(_COLOURS, base64.b64encode(png).decode())
    assert colours > 40, f"the map's screenshot {shot} has {colours} colours: blank?"


async def _report(js: Any, ns: Namespace, unit_id: str, lat: float, lon: float, *,
                  heading: float) -> None:
    report = PositionReport(unit_id=unit_id, lat=lat, lon=lon, speed_mps=12.0,
                            heading=heading, at=datetime.now(UTC))
    await js.publish(ns.unit_position(unit_id), report.model_dump_json().encode())


async def _service(servers: Servers, database_url: str, ns: Namespace, city: City,
                   site: MapSite) -> AsyncIterator[Service]:
    async with running(Service(ServiceConfig(
            nats_url=servers.nats_url, database_url=database_url, namespace=ns.prefix,
            console_port=0, city=city, map=site, dispatch_interval=0.3))) as svc:
        yield svc


async def test_the_demo_city_opens_on_its_schematic_map(
        browser: Browser, servers: Servers, database_url: str, ns: Namespace, store: Store,
        js: Any, tmp_path: Path) -> None:
    city = load_city()
    offline = (REPO / "sim" / "data" / "zhengzhou.geojson").read_bytes()
    async for svc in _service(servers, database_url, ns, city, map_site(city, offline)):
        page, problems = await _open(browser, svc, store)
        await _shows_the_city(page, city, tmp_path / "zhengzhou.png")
        await expect(page.locator("#map .leaflet-control-attribution")).to_contain_text(
            "not to navigate by")

        # a unit's device reports where it is, on NATS as a crew's device does: the
        # position reaches the page (a `positions` message) and the unit moves off its
        # station, with its heading; a second report moves it on
        home = await page.locator('#map .unit[data-unit-id="E11"]').bounding_box()
        await _report(js, ns, "E11", 34.80, 113.70, heading=90)
        moved = page.locator('#map .unit.live[data-unit-id="E11"]')
        await expect(moved).to_have_count(1, timeout=LIVE)
        await expect(moved.locator("path.heading")).to_have_attribute("transform", "rotate(90)")
        there = await moved.bounding_box()
        assert home and there and (there["x"], there["y"]) != (home["x"], home["y"])
        await _report(js, ns, "E11", 34.81, 113.72, heading=45)
        await expect(moved.locator("path.heading")).to_have_attribute(
            "transform", "rotate(45)", timeout=LIVE)
        later = await moved.bounding_box()
        assert later and (later["x"], later["y"]) != (there["x"], there["y"])
        assert not problems, problems


async def test_east_reno_opens_on_the_street_map_ecc_map_build_made(
        browser: Browser, servers: Servers, database_url: str, ns: Namespace, store: Store,
        js: Any, tmp_path: Path) -> None:
    out = tmp_path / "reno_east.map.geojson"
    osm = shared_data("road_networks", "reno_east3.osm")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ecc.cli", "map", "build", str(RENO), "--osm", str(osm),
        "--out", str(out), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await proc.communicate()
    assert proc.returncode == 0, stderr.decode()
    built = json.loads(stdout)
    assert built["out"] == str(out) and built["bytes"] < 300_000
    city = load_city(RENO)
    async for svc in _service(servers, database_url, ns, city, map_site(city, out.read_bytes())):
        page, problems = await _open(browser, svc, store)
        await _shows_the_city(page, city, tmp_path / "reno_east.png")
        assert await page.locator("#map .leaflet-overlay-pane path.road").count() >= 4
        for name in ("East Reno", "Sparks", "Airport", "Hidden Valley"):
            await expect(page.locator("#map .district-label", has_text=name)).to_have_count(1)
        await expect(page.locator("#map .leaflet-control-attribution")).to_contain_text(
            "OpenStreetMap")
        assert not problems, problems
