"""The web console holds what the service's snapshot holds, view for view, after each change.

The page folds no events: each delta carries its stream's view (consoles/views.py) and
the page replaces its copy. Here a supervisor's page drives merge, split, reclassify and
a public warning through the page's own incident view (its toolbar and forms, as a
person would), and after each the page's whole picture (``window.ecc``: every open
incident's view and every unit's) must equal a fresh snapshot taken for the same role
over a second websocket, and the buttons shown must be the view's ``actions``.
Fixtures (service, tokens, Chromium) are test_web.py's.
"""

from __future__ import annotations

import uuid
from typing import Any

from playwright.async_api import Page, expect

from command.store import Store
from command.subjects import Namespace
from consoles.client import open_console
from consoles.protocol import Snapshot
from ecc.app import Service
from tests.consoles.test_web import (  # noqa: F401 - fixtures
    EAST,
    ERQI,
    LIVE,
    OpenConsole,
    browser,
    connected,
    consoles,
    ecc,
    queue_row,
)
from tests.helpers import eventually, make_signal, publish_signal

# What the page holds: every open incident's view and every unit's, as plain data, whole
# (timers and version too: timer events reach the console as deltas with their view).
_PICTURE = """() => ({
  incidents: Object.fromEntries(window.ecc.incidents),
  units: Object.fromEntries(window.ecc.units),
})"""


async def _snapshot(svc: Service, token: str) -> dict[str, Any]:
    """A fresh snapshot over a second websocket, keyed as the page keys its picture."""
    async with open_console(svc.console_url, token) as client:
        while not isinstance(got := await client.receive(), Snapshot):
            pass
    return {"incidents": {v["incident_id"]: v for v in got.incidents},
            "units": {u["unit_id"]: u for u in got.units}}


async def _same_as_snapshot(page: Page, svc: Service, token: str) -> dict[str, Any]:
    """Wait until the page's picture equals a fresh snapshot (the deltas may still be on
    their way); then assert it, so a failure shows the difference. Returns the snapshot."""
    async def same() -> bool:
        return bool(await page.evaluate(_PICTURE) == await _snapshot(svc, token))

    try:
        await eventually(same, timeout=LIVE / 1000)
    except AssertionError:
        pass
    snap = await _snapshot(svc, token)
    picture = await page.evaluate(_PICTURE)
    assert picture["incidents"].keys() == snap["incidents"].keys()
    for incident_id, view in snap["incidents"].items():
        assert picture["incidents"][incident_id] == view, incident_id
    assert picture["units"] == snap["units"]
    return snap


async def _buttons_are_the_actions(page: Page, view: dict[str, Any]) -> None:
    """The toolbar shows exactly the view's actions (a supervisor may send them all), but
    detaching, which is a button on each signal."""
    wanted = sorted(a for a in view["actions"] if a != "incident.detach_signal")
    toolbar = page.locator("#detail .d-actions .action")
    await expect(toolbar).to_have_count(len(wanted), timeout=LIVE)
    shown = [await b.get_attribute("data-command") for b in await toolbar.all()]
    assert sorted(shown) == wanted  # type: ignore[type-var]


async def test_merge_split_reclassify_and_a_warning_leave_the_page_equal_to_the_snapshot(
    consoles: OpenConsole, ecc: Service, store: Store, js: Any, ns: Namespace  # noqa: F811
) -> None:
    """Each of merge, split, reclassify and a public warning, driven from the page's own
    incident view, leaves the page's views equal to the service's snapshot."""
    token = f"web-{uuid.uuid4().hex}"
    await store.create_token(token, name="supervisor desk", role="supervisor", agency=None)
    page = await consoles("supervisor", token=token)
    await connected(page)
    west = make_signal(location=ERQI, summary="smoke over the square")
    west_again = make_signal(location=ERQI, summary="a second caller: smoke")
    east = make_signal(location=EAST, summary="flames at the depot")
    for signal in (west, west_again, east):
        await publish_signal(js, ns, signal)
    await expect(queue_row(page, "smoke over the square")).to_be_visible(timeout=LIVE)
    await expect(queue_row(page, "flames at the depot")).to_be_visible(timeout=LIVE)
    snap = await _same_as_snapshot(page, ecc, token)
    by_summary = {v["summary"]: v for v in snap["incidents"].values()}
    square = by_summary["smoke over the square"]["incident_id"]
    depot = by_summary["flames at the depot"]["incident_id"]
    assert len(by_summary["smoke over the square"]["signals"]) == 2  # fused
    detail = page.locator("#detail")

    # merge: the depot's incident into the square's (the form's incident picker)
    await queue_row(page, "flames at the depot").click()
    await detail.locator('.action[data-command="incident.merge"]').click()
    merge = detail.locator('form.action-form[data-command="incident.merge"]')
    await merge.locator("select").select_option(square)
    await merge.get_by_role("button", name="Merge into").click()
    await expect(queue_row(page, "flames at the depot")).to_have_count(0, timeout=LIVE)
    snap = await _same_as_snapshot(page, ecc, token)
    assert depot not in snap["incidents"]
    assert len(snap["incidents"][square]["signals"]) == 3

    # split: the depot's signal off the square's incident again (the signal checkboxes)
    await queue_row(page, "smoke over the square").click()
    await _buttons_are_the_actions(page, snap["incidents"][square])
    await detail.locator('.action[data-command="incident.split"]').click()
    split = detail.locator('form.action-form[data-command="incident.split"]')
    await split.locator(f'input[value="{east.signal_id}"]').check()
    await split.get_by_role("button", name="Split off").click()
    await expect(page.locator("#queue [data-incident-id]")).to_have_count(2, timeout=LIVE)
    snap = await _same_as_snapshot(page, ecc, token)
    assert [s["signal_id"] for s in snap["incidents"][square]["signals"]] == [
        west.signal_id, west_again.signal_id]

    # reclassify: the square's fire is a hazardous-materials incident
    await detail.locator('.action[data-command="incident.reclassify"]').click()
    reclassify = detail.locator('form.action-form[data-command="incident.reclassify"]')
    await reclassify.locator("select").select_option("hazmat")
    await reclassify.get_by_role("button", name="Reclassify").click()
    await expect(detail.locator(".timeline")).to_contain_text("incident.reclassified",
                                                              timeout=LIVE)
    snap = await _same_as_snapshot(page, ecc, token)
    assert snap["incidents"][square]["category"] == "hazmat"

    # a public warning: the end-warning button comes with it, from the view's actions
    await detail.locator('.action[data-command="incident.warn"]').click()
    warn = detail.locator('form.action-form[data-command="incident.warn"]')
    await warn.get_by_label("Headline").fill("Chemical smoke on Erqi Square")
    await warn.get_by_label("What people should do").fill("Close your windows")
    await warn.get_by_role("button", name="Public warning").click()
    await expect(detail.locator(".alert.warn")).to_contain_text("Chemical smoke",
                                                                timeout=LIVE)
    snap = await _same_as_snapshot(page, ecc, token)
    view = snap["incidents"][square]
    assert view["warning_active"] and "incident.end_warning" in view["actions"]
    await _buttons_are_the_actions(page, view)
