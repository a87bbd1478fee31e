"""Shell (with a pure core part): CAP alerts pulled from Atom and RSS index feeds.

An index feed lists alerts by link (the US National Weather Service's
https://api.weather.gov/alerts/active.atom: one ``<entry>`` per alert, its
``<link href>`` the alert's CAP XML). :class:`CapPoller` reads the index every
``every`` seconds and fetches each entry's alert once, then hands the alert to
the same door the HTTP ``POST /v1/cap`` path uses (:func:`adapters.http.check_cap`
then ``<ns>.ingress.cap``), so trust checks, size limits and dead letters apply
alike; the cap adapter takes it from there.

- **Once.** An entry is named by the alert's CAP identifier and sent time when the
  index carries them (NWS: ``cap:identifier``, ``cap:sent``), else by the entry's id
  and updated time (RSS: guid and pubDate). What was fetched is remembered in
  ``CAPSEEN`` (``<ns>.capseen.feed.<key>``), so a restart fetches nothing again;
  adapters never touch PostgreSQL. An entry whose alert is refused is remembered too
  (the refusal is a verdict, dead-lettered with its reason); one whose fetch failed
  is not, and is tried at the next poll.
- **Politely.** The index is asked with ``If-None-Match`` / ``If-Modified-Since`` when
  the server gave an ``ETag`` / ``Last-Modified``; a 304 costs nothing.
- **Bounded.** No response is read past :data:`MAX_INDEX_BYTES` (an index) or
  :data:`adapters.cap.MAX_ALERT_BYTES` (an alert); only http and https links are
  followed (a feed naming ``file:///etc/passwd`` is refused); XML is read with the
  same no-entity, no-DTD, no-network parser as CAP itself.
- **Backoff.** A failed index (HTTP 5xx or other error status, a timeout, a refused
  connection, bad XML, too big) waits ``every * 2**n`` seconds (at most
  ``max_backoff``), with full jitter, before the next try, and logs why; a success
  returns to ``every``.

:func:`read_index` (pure) reads an index; :func:`backoff` (pure) says how long to wait.
HTTP is the standard library's urllib, in a thread (no client dependency at run time).
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.message import Message
from http.client import HTTPMessage
from typing import Any
from urllib.parse import urljoin, urlparse

import structlog
from nats.js import JetStreamContext
from nats.js.errors import BadRequestError, NotFoundError

from adapters.cap import MAX_ALERT_BYTES, CapRejected, read_xml
from adapters.cap_feed import WRONG_LAST_SEQUENCE
from command.bus import Undeliverable, dead_letter_bytes
from command.subjects import Namespace

log = structlog.get_logger("ecc.adapters")

# The NWS national active.atom is about 2-6 MB on a busy day; 16 MiB leaves room
# without letting one response fill the adapter's memory.
MAX_INDEX_BYTES = 16 * 1024 * 1024
ATOM = "{http://www.w3.org/2005/Atom}"
CAP_NAMESPACES = ("urn:oasis:names:tc:emergency:cap:1.2", "urn:oasis:names:tc:emergency:cap:1.1",
                  "http://www.incident.com/cap/1.0")
USER_AGENT = "ECC-cap-poller/1 (emergency command and coordination)"


class FeedError(Exception):
    """An index or alert that could not be had; ``reason`` says why, ``status`` is the
    HTTP status when there was one."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class Entry:
    """One alert an index lists: where its CAP is, and its name for fetching once."""

    link: str
    key: str  # what names it across polls: "cap <identifier> <sent>" or "entry <id> <updated>"

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.key.encode()).hexdigest()[:32]


def _text(el: object) -> str:
    return (getattr(el, "text", None) or "").strip()


def _cap_name(entry: object) -> tuple[str, str] | None:
    """The CAP identifier and sent an index entry carries (NWS Atom), if it does."""
    for ns in CAP_NAMESPACES:
        ident = _text(entry.find(f"{{{ns}}}identifier"))  # type: ignore[attr-defined]
        sent = _text(entry.find(f"{{{ns}}}sent"))  # type: ignore[attr-defined]
        if ident and sent:
            return ident, sent
    return None


def read_index(data: bytes, base: str) -> list[Entry]:
    """The entries of an Atom or RSS 2.0 index, links resolved against ``base``.

    Raises :class:`FeedError` for XML that is not well-formed or not a feed. An entry
    with no http(s) link is skipped (there is nothing to fetch)."""
    try:
        root = read_xml(data)
    except CapRejected as exc:
        raise FeedError(exc.reason) from exc
    if root.tag == f"{ATOM}feed":
        items = root.findall(f"{ATOM}entry")
        entries = []
        for item in items:
            links = item.findall(f"{ATOM}link")
            best = [lk for lk in links if "cap" in (lk.get("type") or "")] or \
                [lk for lk in links if (lk.get("rel") or "alternate") == "alternate"] or links
            href = best[0].get("href", "") if best else _text(item.find(f"{ATOM}id"))
            name = _cap_name(item)
            key = (f"cap {name[0]} {name[1]}" if name else
                   f"entry {_text(item.find(f'{ATOM}id')) or href} "
                   f"{_text(item.find(f'{ATOM}updated'))}")
            entries.append((href, key))
    elif root.tag == "rss" and root.find("channel") is not None:
        entries = []
        for item in root.findall("channel/item"):
            href = _text(item.find("link")) or _text(item.find("guid"))
            name = _cap_name(item)
            key = (f"cap {name[0]} {name[1]}" if name else
                   f"entry {_text(item.find('guid')) or href} {_text(item.find('pubDate'))}")
            entries.append((href, key))
    else:
        raise FeedError(f"not an Atom or RSS feed: root element {str(root.tag)[:200]!r}")
    out: list[Entry] = []
    for href, key in entries:
        link = urljoin(base, href.strip())
        if urlparse(link).scheme in ("http", "https"):
            out.append(Entry(link, key[:1000]))
    return out


def backoff(failures: int, every: float, max_backoff: float,
            rand: Callable[[], float] = random.random) -> float:
    """Seconds before the next poll after ``failures`` failures in a row: ``every`` with
    none; else ``every * 2**failures`` capped at ``max_backoff``, with full jitter (a
    uniform draw up to it, but never under ``every``), so many pollers that failed
    together do not come back together."""
    if failures <= 0:
        return every
    top = min(max_backoff, every * 2.0 ** min(failures, 30))
    return max(every, top * rand())


@dataclass
class Fetched:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def fetch(url: str, limit: int, timeout: float, headers: dict[str, str] | None = None
          ) -> Fetched:
    """GET ``url`` (blocking: run it in a thread), reading at most ``limit`` bytes.

    Returns 200 with the body or 304 with none; raises :class:`FeedError` for anything
    else (an error status, a timeout, a refused connection, a body over ``limit``)."""
    if urlparse(url).scheme not in ("http", "https"):
        raise FeedError(f"only http and https are fetched, not {url[:200]!r}")
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, **(headers or {})})
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            declared = response.headers.get("Content-Length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                raise FeedError(f"{url[:200]}: the response is {declared} bytes; the limit is "
                                f"{limit}")
            body = response.read(limit + 1)
            if len(body) > limit:
                raise FeedError(f"{url[:200]}: the response is over {limit} bytes (the limit)")
            return Fetched(response.status, body, _headers(response.headers))
    except urllib.error.HTTPError as exc:
        if exc.code == 304:
            return Fetched(304, b"", _headers(exc.headers))
        raise FeedError(f"{url[:200]}: HTTP {exc.code} {exc.reason}", exc.code) from exc
    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
        why = getattr(exc, "reason", exc)
        raise FeedError(f"{url[:200]}: {why}"[:500]) from exc


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to http or https (urllib's own would follow ftp too)."""

    def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str,
                         headers: HTTPMessage, newurl: str) -> urllib.request.Request | None:
        if urlparse(newurl).scheme not in ("http", "https"):
            raise FeedError(f"{req.full_url[:200]}: refused a redirect to {newurl[:200]!r}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_HttpOnlyRedirects())


def _headers(msg: Message | None) -> dict[str, str]:
    if msg is None:
        return {}
    return {k: v for k, v in ((k, msg.get(k)) for k in ("ETag", "Last-Modified")) if v}


# (body) -> (message id, what ECC understood); raises Undeliverable: adapters.http.check_cap
Check = Callable[[bytes], tuple[str, str]]


class FeedMemory:
    """Which entries were fetched: ``<ns>.capseen.feed.<digest>`` in ``CAPSEEN`` (first
    writer wins at the broker), with a copy in memory so a poll asks NATS only about
    entries it has not met in this process."""

    def __init__(self, js: JetStreamContext, ns: Namespace) -> None:
        self.js = js
        self.ns = ns
        self.known: set[str] = set()

    def subject(self, entry: Entry) -> str:
        return f"{self.ns.prefix}.capseen.feed.{entry.digest}"

    async def seen(self, entry: Entry) -> bool:
        if entry.digest in self.known:
            return True
        try:
            await self.js.get_last_msg(self.ns.stream("CAPSEEN"), self.subject(entry))
        except NotFoundError:
            return False
        self.known.add(entry.digest)
        return True

    async def remember(self, entry: Entry) -> None:
        try:
            await self.js.publish(self.subject(entry), entry.key.encode(),
                                  headers={"Nats-Expected-Last-Subject-Sequence": "0"})
        except BadRequestError as exc:
            if exc.err_code != WRONG_LAST_SEQUENCE:
                raise
        self.known.add(entry.digest)


class CapPoller:
    """Polls one index feed until cancelled (see the module docstring)."""

    def __init__(self, js: JetStreamContext, ns: Namespace, url: str, check: Check, *,
                 every: float = 60.0, max_backoff: float = 900.0, timeout: float = 30.0,
                 index_limit: int = MAX_INDEX_BYTES, alert_limit: int = MAX_ALERT_BYTES,
                 rand: Callable[[], float] = random.random,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        if urlparse(url).scheme not in ("http", "https"):
            raise ValueError(f"--feed must be an http or https URL, not {url!r}")
        self.js = js
        self.ns = ns
        self.url = url
        self.check = check
        self.every = every
        self.max_backoff = max_backoff
        self.timeout = timeout
        self.index_limit = index_limit
        self.alert_limit = alert_limit
        self.rand = rand
        self.sleep = sleep
        self.memory = FeedMemory(js, ns)
        self.validators: dict[str, str] = {}  # the index's ETag / Last-Modified
        self.failures = 0
        self.polls = 0  # finished polls, good or bad (for tests and logs)

    async def run(self) -> None:
        log.info("cap_poll.started", url=self.url, every=self.every)
        while True:
            try:
                fetched = await self.poll()
                self.failures = 0
                log.info("cap_poll.polled", url=self.url, fetched=fetched)
            except FeedError as exc:
                self.failures += 1
                log.warning("cap_poll.failed", url=self.url, reason=exc.reason,
                            status=exc.status, failures=self.failures)
            self.polls += 1
            await self.sleep(backoff(self.failures, self.every, self.max_backoff, self.rand))

    async def poll(self) -> int:
        """Read the index once and fetch what is new; the number of alerts handed in.
        Raises :class:`FeedError` when the index cannot be had or read."""
        headers = {"Accept": "application/atom+xml, application/rss+xml, application/xml"}
        if "ETag" in self.validators:
            headers["If-None-Match"] = self.validators["ETag"]
        if "Last-Modified" in self.validators:
            headers["If-Modified-Since"] = self.validators["Last-Modified"]
        got = await asyncio.to_thread(fetch, self.url, self.index_limit, self.timeout, headers)
        if got.status == 304:
            return 0
        entries = read_index(got.body, self.url)
        self.validators = got.headers  # only once the index was read: a bad one is re-read
        handed = 0
        for entry in entries:
            if await self.memory.seen(entry):
                continue
            try:
                alert = await asyncio.to_thread(
                    fetch, entry.link, self.alert_limit, self.timeout,
                    {"Accept": "application/cap+xml, application/xml"})
            except FeedError as exc:
                # not remembered: tried again at the next poll
                log.warning("cap_poll.entry_failed", url=entry.link, reason=exc.reason,
                            status=exc.status)
                continue
            await self.hand_in(entry, alert.body)
            await self.memory.remember(entry)
            handed += 1
        return handed

    async def hand_in(self, entry: Entry, body: bytes) -> None:
        """What ``POST /v1/cap`` does with a body: check it, then the ingress or a dead
        letter with the reason."""
        try:
            msg_id, understood = await asyncio.to_thread(self.check, body)
        except Undeliverable as exc:
            await dead_letter_bytes(self.js, self.ns, body, "cap", exc.code, exc.reason,
                                    f"GET {entry.link[:150]} (feed {self.url[:150]})")
            log.warning("cap_poll.refused", url=entry.link, code=exc.code, reason=exc.reason)
            return
        ack = await self.js.publish(self.ns.ingress("cap"), body,
                                    headers={"Nats-Msg-Id": f"cap:{msg_id}"})
        log.info("cap_poll.accepted", url=entry.link, id=msg_id, seq=ack.seq,
                 duplicate=ack.duplicate, understood=understood[:300])
