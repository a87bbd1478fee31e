"""CAP index feeds polled against a real local HTTP server (http.server in a thread)
serving Atom and RSS indexes that link to the real CAP files of the shared data, through
real NATS; and one alert from a feed to an incident through the whole service."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.area import Area
from adapters.cap_poll import CapPoller, FeedError, backoff, read_index
from adapters.http import check_cap
from adapters.ingest import AdapterConfig
from command.store import Store
from command.subjects import Namespace
from ecc.app import Service
from tests.adapters.test_ingest import dead_letter, incidents
from tests.adapters.test_ingest import with_adapters as with_adapters  # the fixture
from tests.helpers import eventually, shared_data

pytestmark = pytest.mark.timeout(60)

NWS = "nws-5c2cf27b1f56885d61654dc47fa411d5.xml"
STORM = "v1dot2_appendix_adot2.xml"
QUAKE = "v1dot1_appendix_adot3.xml"

# The format of the US National Weather Service's index, https://api.weather.gov/alerts/
# active.atom (NWS CAP v1.2 Atom feed, its documentation at
# https://www.weather.gov/documentation/services-web-alerts): an Atom 1.0 feed, one
# <entry> per alert with its id and updated time, a <link rel="alternate"> to the alert's
# CAP XML and a cap: summary of it. Here its links are to the real CAP files, served by
# the test's own server.
ATOM = """<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:cap="urn:oasis:names:tc:emergency:cap:1.2"
      xml:lang="en-US">
  <id>{base}/alerts/active.atom</id>
  <generator>NWS CAP Server</generator>
  <updated>2021-12-27T16:08:00+00:00</updated>
  <author><name>w-nws.webmaster@noaa.gov</name></author>
  <title>Current watches, warnings, and advisories for the United States</title>
  <link rel="self" href="{base}/alerts/active.atom"/>
{entries}
</feed>"""
ENTRY = """  <entry>
    <id>{base}/alerts/{name}</id>
    <updated>{updated}</updated>
    <published>2021-12-27T10:08:00-06:00</published>
    <author><name>w-nws.webmaster@noaa.gov</name></author>
    <title>{name} issued by NWS</title>
    <summary>An alert.</summary>
    <link rel="alternate" href="/alerts/{name}"/>
    <cap:event>Blizzard Warning</cap:event>
    <cap:sent>2021-12-27T10:08:00-06:00</cap:sent>
    <cap:status>Actual</cap:status>
    <cap:msgType>Alert</cap:msgType>
    <cap:category>Met</cap:category>
  </entry>"""
# RSS 2.0 (the format of many national alert hubs' feeds, e.g. the WMO Alert Hub's
# rss.xml): one <item> per alert, its <link> the CAP XML, <guid> and <pubDate>.
RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Alerts</title><link>{base}/</link>
<description>CAP alerts</description>
{items}
</channel></rss>"""
ITEM = """<item><title>{name}</title><link>{base}/alerts/{name}</link>
<guid>{name}</guid><pubDate>Tue, 17 Jun 2003 21:57:00 GMT</pubDate></item>"""


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    no_length: bool = False  # close-delimited: no Content-Length to refuse it by


@dataclass
class Site:
    """What the server answers, by path: a list of replies (the last repeats)."""

    base: str = ""
    routes: dict[str, list[Reply]] = field(default_factory=dict)
    asked: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def count(self, path: str) -> int:
        return sum(1 for p, _ in self.asked if p == path)

    def serve(self, path: str, *replies: Reply) -> None:
        self.routes[path] = list(replies)

    def alerts(self, *names: str) -> None:
        for name in names:
            self.serve(f"/alerts/{name}", Reply(body=shared_data("cap", name).read_bytes(),
                                                headers={"Content-Type":
                                                         "application/cap+xml"}))

    def atom(self, *names: str, updated: str = "2021-12-27T16:08:00+00:00") -> bytes:
        entries = "\n".join(ENTRY.format(base=self.base, name=n, updated=updated)
                            for n in names)
        return ATOM.format(base=self.base, entries=entries).encode()


@pytest.fixture
def site() -> Iterator[Site]:
    """A real HTTP server on a free port, answering from ``Site.routes``."""
    state = Site()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def do_GET(self) -> None:  # http.server names it so
            state.asked.append((self.path, dict(self.headers.items())))
            replies = state.routes.get(self.path) or [Reply(404, b"not here")]
            reply = replies.pop(0) if len(replies) > 1 else replies[0]
            if reply.status == 200 and "ETag" in reply.headers and \
                    self.headers.get("If-None-Match") == reply.headers["ETag"]:
                reply = Reply(304, headers=reply.headers)
            self.send_response(reply.status)
            for k, v in reply.headers.items():
                self.send_header(k, v)
            if not reply.no_length:
                self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            if reply.status != 304:
                self.wfile.write(reply.body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def poller(js: Any, ns: Namespace, url: str, **kw: Any) -> CapPoller:
    return CapPoller(js, ns, url, check_cap, timeout=5, **kw)


async def ingress(js: Any, ns: Namespace) -> int:
    info = await js.stream_info(ns.stream("INGRESS"))
    return int(info.state.messages)


async def test_an_nws_atom_index_fetches_each_alert_once_across_polls_and_restarts(
        site: Site, js: Any, ns: Namespace) -> None:
    """Three real alerts reach the ingress once; a second poll sends If-None-Match and
    gets a 304; a new poller (a restart) with the same CAPSEEN fetches nothing again; an
    entry added later (the others repeated) is the only one fetched."""
    site.alerts(NWS, STORM, QUAKE)
    site.serve("/alerts/active.atom", Reply(body=site.atom(NWS, STORM, QUAKE),
                                            headers={"ETag": '"v1"'}))
    first = poller(js, ns, f"{site.base}/alerts/active.atom")
    assert await first.poll() == 3
    assert await ingress(js, ns) == 3
    assert await first.poll() == 0
    assert site.asked[-1][1].get("If-None-Match") == '"v1"'
    again = poller(js, ns, f"{site.base}/alerts/active.atom")
    site.alerts("v1dot2_appendix_adot3.xml")
    site.serve("/alerts/active.atom", Reply(body=site.atom(NWS, STORM, QUAKE)))
    assert await again.poll() == 0  # a restart: remembered in CAPSEEN
    site.serve("/alerts/active.atom", Reply(body=site.atom(
        NWS, STORM, QUAKE, "v1dot2_appendix_adot3.xml")))
    assert await again.poll() == 1
    for name in (NWS, STORM, QUAKE):
        assert site.count(f"/alerts/{name}") == 1
    assert await ingress(js, ns) == 4


async def test_an_rss_index_is_read_and_unsafe_links_are_not_followed(
        site: Site, js: Any, ns: Namespace) -> None:
    """RSS items are fetched by their link; a file:// link is never opened."""
    site.alerts(STORM)
    items = ITEM.format(base=site.base, name=STORM) + \
        "<item><title>x</title><link>file:///etc/passwd</link><guid>x</guid></item>"
    site.serve("/rss.xml", Reply(body=RSS.format(base=site.base, items=items).encode()))
    assert [e.link for e in read_index(site.routes["/rss.xml"][0].body, site.base)] == \
        [f"{site.base}/alerts/{STORM}"]
    assert await poller(js, ns, f"{site.base}/rss.xml").poll() == 1
    assert await ingress(js, ns) == 1


async def test_a_failing_feed_backs_off_then_succeeds_and_garbage_is_survived(
        site: Site, js: Any, ns: Namespace) -> None:
    """500, then garbage XML, then a good index: two failures (the waits grow), then the
    alert is handed in and the waits return to the interval; the poller never stops."""
    site.alerts(STORM)
    site.serve("/feed", Reply(500, b"oops"), Reply(body=b"<feed><unclosed></feed>"),
               Reply(body=site.atom(STORM)))
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        await asyncio.sleep(0.01)

    p = poller(js, ns, f"{site.base}/feed", every=1.0, max_backoff=60, rand=lambda: 1.0,
               sleep=sleep)
    task = asyncio.create_task(p.run())
    try:
        await eventually(lambda: asyncio.sleep(0, p.polls >= 4), timeout=20)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert waits[:4] == [2.0, 4.0, 1.0, 1.0]
    assert await ingress(js, ns) == 1 and p.failures == 0


async def test_huge_responses_are_refused_and_a_bad_alert_is_dead_lettered_once(
        site: Site, js: Any, ns: Namespace) -> None:
    """An index over the limit is refused by its Content-Length, one with none by reading
    no further than the limit; an alert over its limit is not handed in (and tried
    again later); a linked document that is not CAP is dead-lettered with the reason,
    once."""
    site.serve("/big", Reply(body=b"x" * 5000))
    site.serve("/big-unsized", Reply(body=b"x" * 5000, no_length=True))
    for path in ("/big", "/big-unsized"):
        with pytest.raises(FeedError, match="limit"):
            await poller(js, ns, f"{site.base}{path}", index_limit=1000).poll()
    site.serve("/alerts/huge.xml", Reply(body=b"<alert>" + b" " * 5000 + b"</alert>"))
    site.serve("/alerts/junk.xml", Reply(body=b"<html>not an alert</html>"))
    site.serve("/feed", Reply(body=site.atom("huge.xml", "junk.xml")))
    p = poller(js, ns, f"{site.base}/feed", alert_limit=1000)
    assert await p.poll() == 1
    assert await p.poll() == 0
    assert site.count("/alerts/huge.xml") == 2 and site.count("/alerts/junk.xml") == 1
    letter = await eventually(lambda: dead_letter(js, ns, "cap"))
    assert "not a CAP alert" in letter.headers["Ecc-Reason"]
    assert "junk.xml" in letter.headers["Ecc-Original-Subject"]
    assert await ingress(js, ns) == 0


@given(failures=st.integers(0, 100), every=st.floats(0.1, 600), rand=st.floats(0, 1))
def test_backoff_grows_is_capped_and_never_undercuts_the_interval(
        failures: int, every: float, rand: float) -> None:
    """Exponential, capped at max_backoff (or the interval when that is larger)."""
    wait = backoff(failures, every, 900.0, lambda: rand)
    assert every <= wait <= max(every, 900.0)
    if failures == 0:
        assert wait == every


# the quake of the CAP 1.1 appendix, near El Centro; its urgency is Past: lowered
NEAR_QUAKE = Area.from_points([(32.5, -116.0), (33.5, -116.0), (33.5, -115.0),
                               (32.5, -115.0)])


@pytest.mark.parametrize("with_adapters", [AdapterConfig(kinds=("cap",), area=NEAR_QUAKE)],
                         indirect=True)
async def test_an_alert_from_a_feed_becomes_an_incident(
        with_adapters: Service, site: Site, js: Any, ns: Namespace, store: Store) -> None:
    """Feed → ingress → cap adapter → intake: the earthquake is a structural incident at
    priority 4 (urgency Past lowers it)."""
    site.alerts(QUAKE)
    site.serve("/feed", Reply(body=site.atom(QUAKE)))
    feed = CapPoller(js, ns, f"{site.base}/feed", lambda b: check_cap(b, None, NEAR_QUAKE))
    assert await feed.poll() == 1
    [incident] = await eventually(lambda: incidents(store), timeout=20)
    assert incident["category"] == "structural" and incident["priority"] == 4
