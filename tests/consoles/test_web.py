# size: browser tests of the web console, one page per scenario, shared fixtures
"""The web console in a real headless Chromium (Debian's), against the real service.

Each test runs the whole service in-process on its own database and namespace,
with the demo city's 80 units, opens ``<console_url>#token=…`` in a fresh
browser context and drives it as a person would: keys, clicks, forms. Waits
are Playwright's auto-waiting assertions with a deadline, never a sleep.
Screenshots go to ``build/test-artefacts/console/`` (``ECC_TEST_ARTEFACTS``
points elsewhere).
"""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import (
    Browser,
    ConsoleMessage,
    Error,
    Locator,
    Page,
    async_playwright,
    expect,
)

from command.settings import load_catalogue, load_city
from command.store import Store
from command.subjects import Namespace
from ecc.app import Service, ServiceConfig
from tests.conftest import Servers, running
from tests.helpers import eventually, make_signal, publish_signal
from workflows.geo import Location

CHROMIUM = Path("/usr/bin/chromium")
ARTEFACTS = Path(os.environ.get(
    "ECC_TEST_ARTEFACTS", Path(__file__).resolve().parents[2] / "build" / "test-artefacts"))
CITY = load_city()
ERQI = Location(lat=34.7466, lon=113.6254, address="Erqi Square")
EAST = Location(lat=34.7600, lon=113.7000, address="Zhengdong")
NORTH = Location(lat=34.7900, lon=113.6400, address="Huiji")
# Live updates reach the page well within this; a slow CI box gets the margin.
LIVE = 15_000

OpenConsole = Callable[..., Awaitable[Page]]


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    """Debian's Chromium, headless; a missing browser fails the test with what to install."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package "
                    "(apt-get install chromium; .ci/run does). Playwright must not download one.")
    async with async_playwright() as pw:
        # --no-sandbox: the tests may run as root (in CI containers), where the sandbox refuses
        launched = await pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield launched
        finally:
            await launched.close()


async def _service(servers: Servers, database_url: str, ns: Namespace,
                   **config: Any) -> AsyncIterator[Service]:
    async with running(Service(ServiceConfig(
            nats_url=servers.nats_url, database_url=database_url, namespace=ns.prefix,
            console_port=0, city=CITY, dispatch_interval=0.3, **config))) as svc:
        yield svc


@pytest.fixture
async def ecc(servers: Servers, database_url: str, ns: Namespace,
              js: Any) -> AsyncIterator[Service]:
    """The service with the demo city's units registered."""
    async for svc in _service(servers, database_url, ns):
        yield svc


@pytest.fixture
async def consoles(browser: Browser, ecc: Service, store: Store,
                   request: pytest.FixtureRequest) -> AsyncIterator[OpenConsole]:
    """Open a console page with a new token of a role; fails the test on any script error
    in the page, and saves a screenshot of each page at the end."""
    opened: list[tuple[Page, list[str]]] = []

    async def open_console(role: str, agency: str | None = None,
                           token: str | None = None) -> Page:
        if token is None:
            token = f"web-{uuid.uuid4().hex}"
            await store.create_token(token, name=f"{role} desk", role=role, agency=agency)
        context = await browser.new_context(viewport={"width": 1600, "height": 1000})
        page = await context.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
        page.on("console", lambda msg: _console_problem(msg, problems))
        opened.append((page, problems))
        await page.goto(f"{ecc.console_url}#token={token}")
        return page

    yield open_console
    folder = ARTEFACTS / "console"
    folder.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    for n, (page, problems) in enumerate(opened):
        try:
            await page.screenshot(path=str(folder / f"{request.node.name}-{n}.png"))
        except Error:
            pass  # the page is gone; the test already says why
        await page.context.close()
        failures += problems
    assert not failures, f"the console page reported errors: {failures}"


def _console_problem(msg: ConsoleMessage, problems: list[str]) -> None:
    # The browser asks for /favicon.ico on its own (the gateway has none); everything else
    # logged as an error (a script failure, a CSP violation, a bad SVG path) is a bug.
    if msg.type == "error" and not msg.location.get("url", "").endswith("/favicon.ico"):
        problems.append(f"console error: {msg.text} ({msg.location.get('url')})")


async def connected(page: Page) -> None:
    indicator = page.locator("#conn")
    await expect(indicator).to_have_attribute("data-state", "connected", timeout=LIVE)
    await expect(indicator).to_have_text("connected")


def queue_row(page: Page, text: str) -> Locator:
    return page.locator("#queue [data-incident-id]", has_text=text)


async def test_live_picture_units_and_an_incident_from_a_signal(
    consoles: OpenConsole, js: Any, ns: Namespace
) -> None:
    """A supervisor sees the city's units, an incident appear from a signal, and its timeline."""
    page = await consoles("supervisor")
    await connected(page)
    await expect(page.locator("#unit-board [data-unit-id]")).to_have_count(80, timeout=LIVE)
    await expect(page.locator("#unit-board .agency")).to_have_count(4)
    await expect(page.locator("#map .unit")).to_have_count(80)

    await publish_signal(js, ns, make_signal(location=ERQI, category="fire",
                                             summary="smoke from a shop on Erqi Square"))
    row = queue_row(page, "smoke from a shop on Erqi Square")
    await expect(row).to_be_visible(timeout=LIVE)
    await expect(row).to_contain_text("P2")
    await expect(row).to_contain_text("Urgent")
    await expect(row.locator(".sla")).to_contain_text("verify")
    incident_id = await row.get_attribute("data-incident-id")
    await expect(page.locator(f'#map .incident[data-incident-id="{incident_id}"]')).to_have_count(1)

    await row.click()
    detail = page.locator("#detail")
    await expect(detail.locator(".timeline")).to_contain_text("incident.reported", timeout=LIVE)
    await expect(detail.locator(".timeline")).to_contain_text("by signal:hotline")
    await expect(detail.locator(".signal")).to_contain_text("hotline")
    await expect(detail.locator(".signal")).to_contain_text("confidence 70%")
    # a supervisor may verify a reported incident: the action is offered, and works
    verify = detail.locator('.action[data-command="incident.verify"]')
    await expect(verify).to_be_visible()
    await page.keyboard.press("v")
    await expect(detail.locator(".timeline")).to_contain_text("incident.verified", timeout=LIVE)
    await expect(row.locator(".status")).to_have_text(re.compile("verified|dispatching|responding",
                                                                 re.I), timeout=LIVE)
    # the shortcuts are listed in a help overlay; Esc closes the overlay, then the view
    await page.keyboard.press("?")
    await expect(page.locator("#help")).to_be_visible()
    await expect(page.locator("#help")).to_contain_text("Accept the top recommendation")
    await page.keyboard.press("Escape")
    await expect(page.locator("#help")).to_be_hidden()
    await expect(detail).to_be_visible()
    await page.keyboard.press("Escape")
    await expect(detail).to_be_hidden()


async def test_a_supervisor_acts_from_the_incident_view(
    consoles: OpenConsole, js: Any, ns: Namespace
) -> None:
    """Escalate, note, priority and a public warning from the keyboard and the toolbar; each
    lands in the timeline with who and why, and a refusal is shown as the server said it."""
    await publish_signal(js, ns, make_signal(location=ERQI, category="fire",
                                             summary="smoke from the third floor"))
    page = await consoles("supervisor")
    await connected(page)
    row = queue_row(page, "smoke from the third floor")
    await row.click()
    detail = page.locator("#detail")
    timeline = detail.locator(".timeline")
    await expect(timeline).to_contain_text("incident.reported", timeout=LIVE)

    await page.keyboard.press("e")
    escalate = detail.locator('form.action-form[data-command="incident.escalate"]')
    await escalate.locator("input").fill("caller says people are trapped")
    await escalate.locator("input").press("Enter")
    await expect(timeline).to_contain_text("why: caller says people are trapped", timeout=LIVE)
    await expect(timeline.locator('[data-type="incident.escalated"]')).to_contain_text(
        re.compile(r"by \S*supervisor desk"))
    await expect(row.locator(".flag.esc")).to_contain_text("caller says people are trapped")

    await page.keyboard.press("t")
    note = detail.locator('form.action-form[data-command="incident.add_note"]')
    await note.locator("textarea").fill("second caller on the line")
    await note.get_by_role("button", name="Add note").click()
    await expect(detail.locator(".note-list")).to_contain_text("second caller on the line",
                                                               timeout=LIVE)

    await page.keyboard.press("p")
    priority = detail.locator('form.action-form[data-command="incident.set_priority"]')
    await priority.locator("select").select_option("1")
    await priority.locator("input").fill("people trapped")
    await priority.locator("input").press("Enter")
    await expect(row.locator(".prio")).to_contain_text("P1", timeout=LIVE)
    await expect(row.locator(".prio")).to_contain_text("Critical")
    await expect(timeline).to_contain_text("Priority P2 → P1")

    await detail.locator('.action[data-command="incident.warn"]').click()
    warn = detail.locator('form.action-form[data-command="incident.warn"]')
    await warn.get_by_label("Headline").fill("Fire on Erqi Square")
    await warn.get_by_label("What people should do").fill("Keep away from the square")
    await warn.get_by_role("button", name="Public warning").click()
    await expect(detail.locator(".alert.warn")).to_contain_text("Fire on Erqi Square",
                                                                timeout=LIVE)
    await expect(row.locator(".flag.warn")).to_have_text("PUBLIC WARNING")

    # reclassifying to the type it already has is refused: the server's words are shown
    await detail.locator('.action[data-command="incident.reclassify"]').click()
    reclassify = detail.locator('form.action-form[data-command="incident.reclassify"]')
    await reclassify.get_by_role("button", name="Reclassify").click()
    await expect(page.locator("#toasts .toast.error")).to_contain_text("already fire",
                                                                       timeout=LIVE)
    await expect(reclassify.locator(".form-error")).to_contain_text("already fire")


async def test_a_dropped_connection_resumes_from_its_last_seq(
    consoles: OpenConsole, js: Any, ns: Namespace
) -> None:
    """After a drop the console reconnects with since and gets what it missed, once."""
    page = await consoles("dispatcher")
    await connected(page)
    await expect(page.locator("#unit-board [data-unit-id]")).to_have_count(80, timeout=LIVE)
    # a closing socket delivers nothing more: what follows can only come after a reconnect
    await page.evaluate("window.ecc.conn.ws.close()")
    await publish_signal(js, ns, make_signal(location=ERQI,
                                             summary="reported while the line was down"))
    row = queue_row(page, "reported while the line was down")
    await expect(row).to_be_visible(timeout=LIVE)
    await connected(page)
    assert await page.evaluate("window.ecc.conn.welcome.mode") == "resume"
    await expect(row).to_have_count(1)
    await expect(page.locator("#unit-board [data-unit-id]")).to_have_count(80)


async def test_taking_a_call_raises_an_incident(consoles: OpenConsole) -> None:
    """The call form suggests a type as the narrative is typed; the call becomes an incident."""
    page = await consoles("supervisor")
    await connected(page)
    await page.keyboard.press("n")
    form = page.locator("#call")
    await expect(form).to_be_visible()
    # a click on the map sets the location
    await page.locator("#map").click(position={"x": 400, "y": 300})
    await expect(page.locator("#call-lat")).to_have_value(re.compile(r"^3\d\.\d{5}$"))
    await expect(page.locator("#call-lon")).to_have_value(re.compile(r"^11\d\.\d{5}$"))

    await page.locator("#call-name").fill("Li Wei")
    await page.locator("#call-phone").fill("+86 371 0000 0000")
    await page.locator("#call-address").fill("Zijingshan Road")
    await page.locator("#call-lat").fill("34.7560")
    await page.locator("#call-lon").fill("113.6830")
    await page.locator("#call-narrative").fill("strong smell of gas in the stairwell")
    await expect(page.locator("#call-suggest")).to_contain_text("Gas leak")
    await page.locator("#call-submit").click()

    result = page.locator("#call-result")
    await expect(result).to_contain_text("classified it as", timeout=LIVE)
    await expect(result.locator(".call-category")).to_have_text("Gas leak")
    await expect(result).to_contain_text("smell of gas")
    await expect(queue_row(page, "strong smell of gas in the stairwell")).to_be_visible(
        timeout=LIVE)
    await expect(result).to_contain_text(re.compile("new incident|joined"), timeout=LIVE)
    await result.get_by_role("button", name="Open it").click()
    await expect(page.locator("#detail .reporter")).to_contain_text("Li Wei", timeout=LIVE)


async def test_a_viewer_sees_the_picture_but_no_actions(
    consoles: OpenConsole, js: Any, ns: Namespace
) -> None:
    """A viewer's console offers no action: no buttons, no call form, no shortcut that acts."""
    await publish_signal(js, ns, make_signal(location=ERQI, summary="car on fire in a car park"))
    page = await consoles("viewer")
    await connected(page)
    row = queue_row(page, "car on fire in a car park")
    await expect(row).to_be_visible(timeout=LIVE)
    await expect(page.locator("#new-call")).to_be_hidden()
    await row.click()
    detail = page.locator("#detail")
    await expect(detail.locator(".timeline")).to_contain_text("incident.reported", timeout=LIVE)
    await expect(detail.locator(".action")).to_have_count(0)
    await expect(page.locator("button.action")).to_have_count(0)
    await page.keyboard.press("n")
    await expect(page.locator("#call")).to_be_hidden()


async def test_accepting_a_recommendation_dispatches_the_unit(
    consoles: OpenConsole, js: Any, ns: Namespace, store: Store
) -> None:
    """One key accepts the top recommended unit; the unit board shows it dispatched."""
    page = await consoles("supervisor")
    await connected(page)
    # A flood is not one ECC dispatches itself: its tasks wait for a person. A gauge this
    # sure verifies the incident at once, so it gets its tasks and recommendations.
    await publish_signal(js, ns, make_signal(location=ERQI, category="flood", confidence=0.9,
                                             summary="water over the kerb in the underpass"))
    row = queue_row(page, "water over the kerb in the underpass")
    await expect(row).to_be_visible(timeout=LIVE)
    await row.click()
    accept = page.locator("#detail .action.accept.primary").first
    await expect(accept).to_be_visible(timeout=LIVE)
    unit_id = await accept.get_attribute("data-unit")
    assert unit_id
    await page.keyboard.press("a")
    chip = page.locator(f'#unit-board [data-unit-id="{unit_id}"]')
    await expect(chip).to_have_attribute("data-status", "dispatched", timeout=LIVE)
    await expect(page.locator("#detail .timeline")).to_contain_text("task.offered", timeout=LIVE)
    await expect(page.locator("#detail .task-unit").first).to_contain_text(unit_id)
    # what the page folded from deltas is what the server's projections hold
    await _same_picture(page, store)


# The fields of the views that the console folds from events (a view's version also
# counts timer events, which consoles do not get).
_FOLDED = """() => {
  const byId = (a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);
  const incidents = [...window.ecc.incidents.values()].map((v) => [v.incident_id, v.status,
    v.priority, v.category, v.signals.map((s) => s.signal_id),
    v.tasks.map((t) => [t.task_id, t.status, t.unit_id]), v.escalations.length, v.notes,
    v.warning_active]);
  const units = [...window.ecc.units.values()].map((u) => [u.unit_id, u.status, u.incident_id,
    u.task_id]);
  return { incidents: incidents.sort(byId), units: units.sort(byId) };
}"""


async def _same_picture(page: Page, store: Store) -> None:
    async def server() -> dict[str, Any]:
        _, incidents, units = await store.snapshot()
        return {
            "incidents": sorted([v["incident_id"], v["status"], v["priority"], v["category"],
                                 [s["signal_id"] for s in v["signals"]],
                                 [[t["task_id"], t["status"], t["unit_id"]] for t in v["tasks"]],
                                 len(v["escalations"]), v["notes"], v["warning_active"]]
                                for v in incidents),
            "units": sorted([u["unit_id"], u["status"], u["incident_id"], u["task_id"]]
                            for u in units)}

    async def same() -> bool:
        return bool(await page.evaluate(_FOLDED) == await server())

    try:
        await eventually(same, timeout=LIVE / 1000)
    except AssertionError:
        assert await page.evaluate(_FOLDED) == await server()


@pytest.fixture
async def fast_verify(servers: Servers, database_url: str, ns: Namespace,
                      js: Any) -> AsyncIterator[Service]:
    """The service with a one-second verification SLA."""
    built_in = load_catalogue()
    assert built_in.sla.verify_s != 1
    catalogue = built_in.model_copy(update={"sla": built_in.sla.model_copy(
        update={"verify_s": 1.0})})
    async for svc in _service(servers, database_url, ns, catalogue=catalogue):
        yield svc


async def test_an_escalation_goes_on_top_of_the_queue(
    browser: Browser, fast_verify: Service, store: Store, js: Any, ns: Namespace
) -> None:
    """An incident left unverified past its SLA escalates, and the queue puts it first."""
    token = f"web-{uuid.uuid4().hex}"
    await store.create_token(token, name="supervisor desk", role="supervisor", agency=None)
    context = await browser.new_context(viewport={"width": 1600, "height": 1000})
    try:
        page = await context.new_page()
        await page.goto(f"{fast_verify.console_url}#token={token}")
        await connected(page)
        # sure enough to be verified at once: never escalates for verification
        await publish_signal(js, ns, make_signal(location=ERQI, category="fire", confidence=0.95,
                                                 summary="flames from a warehouse roof"))
        await expect(queue_row(page, "flames from a warehouse roof")).to_be_visible(timeout=LIVE)
        await publish_signal(js, ns, make_signal(category="crime", confidence=0.4,
                                                 summary="shouting in the street"))
        late = queue_row(page, "shouting in the street")
        await expect(late.locator(".flag.esc")).to_contain_text("ESCALATED", timeout=LIVE)
        first = page.locator("#queue [data-incident-id]").first
        await expect(first).to_contain_text("shouting in the street")
        await late.click()
        await expect(page.locator("#detail .timeline")).to_contain_text("incident.escalated",
                                                                        timeout=LIVE)
        await expect(page.locator("#detail .timeline")).to_contain_text(
            "why: not verified within 1 s")
        folder = ARTEFACTS / "console"
        folder.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(folder / "escalation.png"))
    finally:
        await context.close()


async def test_a_refused_token_is_told_to_ask_an_administrator(consoles: OpenConsole) -> None:
    """An unknown token stops the console (no retry loop) with what to do."""
    page = await consoles("viewer", token="not-a-real-token")
    indicator = page.locator("#conn")
    await expect(indicator).to_have_attribute("data-state", "refused", timeout=LIVE)
    await expect(indicator).to_have_text("token refused — ask an administrator")
    await expect(page.locator("#login")).to_be_visible()


async def test_playback_shows_a_past_moment_and_exit_returns_to_live(
    consoles: OpenConsole, js: Any, ns: Namespace, store: Store
) -> None:
    """Two incidents some seconds apart; playback of the last hour with the slider between
    them shows only the first on the queue and the map, under a "not live" banner; an
    incident raised meanwhile reaches the live picture only; exit shows all of them live."""
    page = await consoles("supervisor")
    await connected(page)
    await publish_signal(js, ns, make_signal(location=ERQI, category="fire",
                                             summary="first: smoke behind the station"))
    first = queue_row(page, "first: smoke behind the station")
    await expect(first).to_be_visible(timeout=LIVE)
    await asyncio.sleep(1.5)  # time apart, for the slider to fall between them
    mid = await store.pool.fetchval("SELECT clock_timestamp()")
    await asyncio.sleep(1.5)
    await publish_signal(js, ns, make_signal(location=EAST, category="medical",
                                             summary="second: a man collapsed"))
    second = queue_row(page, "second: a man collapsed")
    await expect(second).to_be_visible(timeout=LIVE)
    first_id, second_id = (await first.get_attribute("data-incident-id"),
                           await second.get_attribute("data-incident-id"))

    await page.keyboard.press("h")  # the form, the last hour by default
    await expect(page.locator("#playback")).to_be_visible()
    await expect(page.locator("#pb-from")).not_to_have_value("")
    await page.locator("#pb-load").click()
    bar = page.locator("#pb-bar")
    await expect(bar).to_be_visible(timeout=LIVE)
    await expect(page.locator("#pb-banner")).to_contain_text("not live")
    await expect(second).to_be_visible()  # at the period's end: both
    start_ms = await page.evaluate(
        "() => new Date(document.getElementById('pb-from').value).getTime()")
    await page.locator("#pb-slider").fill(str(int((mid.timestamp() * 1000 - start_ms) // 1000)))
    await expect(page.locator("#pb-banner")).to_have_text(
        re.compile(r"^PLAYBACK \d\d:\d\d:\d\d — not live$"))
    await expect(second).to_have_count(0)
    await expect(first).to_be_visible()
    await expect(page.locator(f'#map .incident[data-incident-id="{first_id}"]')).to_have_count(1)
    await expect(page.locator(f'#map .incident[data-incident-id="{second_id}"]')).to_have_count(0)
    folder = ARTEFACTS / "console"
    folder.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(folder / "playback.png"))

    # the live picture keeps going underneath, unseen until playback ends
    await publish_signal(js, ns, make_signal(location=NORTH, category="traffic",
                                             summary="third: raised during playback"))
    third = queue_row(page, "third: raised during playback")
    await expect(page.locator("#pb-banner")).to_be_visible()
    await page.locator("#pb-exit").click()
    await expect(bar).to_be_hidden()
    for row in (first, second, third):
        await expect(row).to_be_visible(timeout=LIVE)
    await expect(page.locator(f'#map .incident[data-incident-id="{second_id}"]')).to_have_count(1)


async def test_a_cap_signals_signature_verdict_is_shown_in_the_incident(
    consoles: OpenConsole, js: Any, ns: Namespace
) -> None:
    """A CAP alert's signal shows its sender, signature verdict, signer and schema verdict
    in the incident's detail; an unsigned one is marked as a warning, a valid one not."""
    page = await consoles("supervisor")
    await connected(page)
    trusted = {"signature": "signed_valid", "signer": "CN=Met Service Alerts",
               "schema": "valid", "violations": [], "digest": "ab" * 32}
    unsigned = {**trusted, "signature": "unsigned", "signer": None,
                "schema": "1 violation(s) of the CAP 1.2 schema"}
    for where, summary, verdict in ((ERQI, "Rainstorm warning over Erqi", trusted),
                                    (EAST, "Rainstorm warning over Zhengdong", unsigned)):
        await publish_signal(js, ns, make_signal(
            source="cap", category="flood", location=where, summary=summary,
            details={"sender": "met@weather.example", "cap": verdict}))
    detail = page.locator("#detail")
    await queue_row(page, "Rainstorm warning over Erqi").click()
    line = detail.locator(".signal .cap-trust")
    await expect(line).to_have_text("CAP from met@weather.example: signature signed valid by "
                                    "CN=Met Service Alerts; schema valid", timeout=LIVE)
    await expect(line).not_to_have_class(re.compile(r"\bwarn\b"))
    await page.keyboard.press("Escape")
    await queue_row(page, "Rainstorm warning over Zhengdong").click()
    await expect(line).to_contain_text("signature unsigned; schema 1 violation(s)",
                                       timeout=LIVE)
    await expect(line).to_have_class(re.compile(r"\bwarn\b"))


async def test_a_held_retraction_is_a_banner_a_supervisor_confirms(
        consoles: OpenConsole, ecc: Service, store: Store, js: Any, ns: Namespace) -> None:
    """A retraction naming more signals than the catalogue lets one source take back is a
    desk alert on every console; a dispatcher's banner has no buttons, a supervisor's
    Confirm takes the signals back and the banner goes from both pages."""
    from datetime import UTC, datetime

    from command.model import Retraction

    ids = []
    for _ in range(ecc.catalogue.retractions.confirm_above + 1):
        signal = make_signal(signal_id=f"call-{uuid.uuid4().hex[:12]}")
        await publish_signal(js, ns, signal, msg_id=f"hotline:{signal.signal_id}")
        ids.append(signal.signal_id)

    async def all_in() -> bool:
        return await store.pool.fetchval(
            "SELECT count(*) FROM incidents WHERE is_open") == len(ids)

    await eventually(all_in, timeout=20)
    supervisor, dispatcher = await consoles("supervisor"), await consoles("dispatcher")
    retraction = Retraction(retraction_id=f"r-{uuid.uuid4().hex[:10]}", source="hotline",
                            refers_to=tuple(ids), reason="platform replayed a test batch",
                            at=datetime.now(UTC))
    await js.publish(ns.signal("hotline", "retraction"), retraction.model_dump_json().encode(),
                     headers={"Nats-Msg-Id": f"hotline:{retraction.retraction_id}"})
    banner = supervisor.locator("#alerts .desk-alert")
    await expect(banner).to_contain_text(f"take back {len(ids)} signals", timeout=LIVE)
    await expect(dispatcher.locator("#alerts .desk-alert")).to_contain_text(
        "A supervisor acts on this.", timeout=LIVE)
    await expect(dispatcher.locator("#alerts button")).to_have_count(0)
    await banner.locator("button[data-outcome=confirmed]").click()
    await expect(supervisor.locator("#alerts")).to_be_hidden(timeout=LIVE)
    await expect(dispatcher.locator("#alerts")).to_be_hidden(timeout=LIVE)
    assert await store.pool.fetchval("SELECT count(*) FROM incidents WHERE is_open") == 0
