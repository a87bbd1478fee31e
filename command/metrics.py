"""Shell: what the service tells its operators. Prometheus metrics and readiness.

:class:`Metrics` holds every metric of one service in a registry of its own
(several services in one process, as in the tests, never collide). The hot
paths only bump counters and observe histograms; what needs a query (open
incidents by state, the outbox backlog, consumer lag) is read by
:class:`Sampler` every couple of seconds, and :class:`Readiness` asks
PostgreSQL, NATS and the service's loops whether this process can do its work.
The HTTP doors (:mod:`consoles.gateway`, :mod:`adapters.http`) only read what
these keep, so a scrape or a probe never waits on a database.

docs/operations.md lists the metrics and the health endpoints.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import Any

import structlog
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from command.bus import STREAM_NAMES
from command.store import Probe, Store
from command.subjects import Namespace
from command.tasks import check_cancelled
from workflows.incident_messages import OPEN

log = structlog.get_logger("ecc.metrics")

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
# No ``*_created`` series beside every counter: they double the series and no dashboard
# here reads them. (A process-wide switch of prometheus_client.)
disable_created_metrics()  # type: ignore[no-untyped-call]  # unannotated upstream

# What became of a signal (or a retraction) the intake took from SIGNALS.
SIGNAL_OUTCOMES = ("new_incident", "attached", "duplicate", "rejected", "dead_lettered",
                   "retracted", "retraction_unmatched")

_FAST = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_HUMAN = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)


class _Totals(Collector):
    """Counters read from a component's own tally at scrape time (no hot-path cost)."""

    def __init__(self) -> None:
        self.sources: dict[str, tuple[str, Callable[[], float]]] = {}

    def collect(self) -> Iterable[Metric]:
        for name, (doc, read) in sorted(self.sources.items()):
            yield CounterMetricFamily(name, doc, value=read())


class Metrics:
    """The metrics of one service, in ``registry`` (a fresh one unless given)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.signals = Counter(
            "ecc_signals", "Signals and retractions the intake settled, by source and outcome",
            ["source", "outcome"], registry=r)
        self.incidents = Gauge(
            "ecc_incidents", "Open incidents by state (sampled)", ["state"], registry=r)
        self.recommend_seconds = Histogram(
            "ecc_recommend_seconds",
            "Time to compute one dispatch round's assignment, recommendations and stacking",
            buckets=_FAST, registry=r)
        self.offer_wait_seconds = Histogram(
            "ecc_task_offer_wait_seconds",
            "From a task becoming pending to the dispatcher offering it to a unit",
            buckets=_HUMAN, registry=r)
        self.accept_seconds = Histogram(
            "ecc_order_accept_seconds", "From an order offered to its crew accepting it",
            buckets=_HUMAN, registry=r)
        self.offers = Counter("ecc_dispatch_offers", "Tasks the dispatcher offered to a unit",
                              registry=r)
        self.crew_reports = Counter("ecc_crew_reports", "Crew status reports, by outcome",
                                    ["outcome"], registry=r)
        self.consumer_pending = Gauge(
            "ecc_consumer_pending",
            "Messages a durable consumer has yet to settle: num_pending + num_ack_pending "
            "(sampled)", ["stream", "consumer"], registry=r)
        self.outbox_backlog = Gauge(
            "ecc_outbox_backlog", "Outbox rows committed but not yet published (sampled)",
            registry=r)
        self.outbox_oldest_seconds = Gauge(
            "ecc_outbox_oldest_seconds", "Age of the oldest unpublished outbox row; 0 when "
            "empty (sampled)", registry=r)
        self.outbox_published = Counter(
            "ecc_outbox_published", "Outbox rows (events and orders) this process published",
            registry=r)
        self.event_seq = Gauge("ecc_event_seq",
                               "The highest committed event seq: events committed so far "
                               "(sampled)", registry=r)
        self.console_connections = Gauge("ecc_console_connections",
                                         "Consoles connected to this gateway", registry=r)
        self.console_refusals = Counter(
            "ecc_console_refusals", "Console connections the gateway refused or dropped at "
            "the start, by reason (docs/consoles.md)", ["reason"], registry=r)
        self.ingress_refusals = Counter(
            "ecc_ingress_refusals", "Requests the HTTP ingress refused, by door and status "
            "(400 invalid, 401 no valid token, 403 wrong role or door, 413 too large, "
            "415 wrong content type)", ["door", "status"], registry=r)
        self.ready = Gauge("ecc_ready", "1 when the check passes, by check", ["check"],
                           registry=r)
        self.sampled_at = Gauge("ecc_sample_timestamp_seconds",
                                "When a sampled group of gauges was last read successfully",
                                ["part"], registry=r)
        self.sample_failures = Counter("ecc_sample_failures", "Samples that failed, by part",
                                       ["part"], registry=r)
        self._totals = _Totals()
        r.register(self._totals)

    def count_from(self, name: str, doc: str, read: Callable[[], float]) -> None:
        """Expose ``read()`` as the counter ``<name>_total`` (replacing one of that name)."""
        self._totals.sources[name] = (doc, read)

    def signal(self, source: str, outcome: str, n: int = 1) -> None:
        self.signals.labels(source=source, outcome=outcome).inc(n)

    def render(self) -> tuple[bytes, str]:
        """The registry in the Prometheus text format, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE


class Sampler:
    """Reads the gauges that need a query, every ``interval`` seconds, until cancelled.

    PostgreSQL and NATS are sampled apart, so one being away does not blank the
    other; a failed part keeps its last values, logs, and counts in
    ``ecc_sample_failures_total`` (``ecc_sample_timestamp_seconds`` shows how old
    they are).
    """

    def __init__(self, metrics: Metrics, store: Store, js: JetStreamContext, ns: Namespace, *,
                 interval: float = 2.0, timeout: float = 2.0) -> None:
        self.metrics = metrics
        self.store = store
        self.js = js
        self.ns = ns
        self.interval = interval
        self.timeout = timeout

    async def run(self) -> None:
        while True:
            check_cancelled()
            await self.sample()
            await asyncio.sleep(self.interval)

    async def sample(self) -> None:
        """One round: each part on its own; failures are logged, never raised."""
        for part, read in (("postgres", self.sample_store), ("nats", self.sample_consumers)):
            try:
                async with asyncio.timeout(self.timeout):
                    await read()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.metrics.sample_failures.labels(part=part).inc()
                log.warning("metrics.sample_failed", part=part, error=_describe(exc))
            else:
                self.metrics.sampled_at.labels(part=part).set_to_current_time()

    async def sample_store(self) -> None:
        sample = await self.store.sample()
        m = self.metrics
        # All set at once, after the awaits: a scrape never sees half a sample.
        counts = dict.fromkeys(OPEN, 0) | sample.open_incidents
        for state, n in counts.items():
            m.incidents.labels(state=state).set(n)
        m.outbox_backlog.set(sample.outbox_backlog)
        m.outbox_oldest_seconds.set(sample.outbox_oldest_seconds)
        m.event_seq.set(sample.head)

    async def sample_consumers(self) -> None:
        pending: dict[tuple[str, str], int] = {}
        for name in STREAM_NAMES:
            stream = self.ns.stream(name)
            for info in await self.js.consumers_info(stream):
                durable = info.config.durable_name
                if not durable:
                    continue  # ordered (ephemeral) consumers: the gateway's, the dispatcher's
                pending[(stream, durable)] = (info.num_pending or 0) + (info.num_ack_pending or 0)
        self.metrics.consumer_pending.clear()  # a deleted consumer disappears
        for (stream, durable), n in pending.items():
            self.metrics.consumer_pending.labels(stream=stream, consumer=durable).set(n)


class Readiness:
    """Whether this process can do its work, kept fresh by :meth:`run`.

    Ready means: PostgreSQL answers ``SELECT 1`` within ``timeout`` (on a
    connection of the probe's own, so a busy pool does not read as an outage),
    the NATS connection is up, and none of the service's loops has stopped.
    :meth:`report` only reads the last result; a result older than
    ``stale_after`` (the probe itself is stuck) reads as not ready.
    """

    def __init__(self, database_url: str, nc: NATS | None = None, *,
                 loops: Callable[[], list[str]] = list, metrics: Metrics | None = None,
                 interval: float = 0.5, timeout: float = 1.0, stale_after: float = 5.0) -> None:
        self.database_url = database_url
        self.nc = nc
        self.loops = loops
        self.metrics = metrics
        self.interval = interval
        self.timeout = timeout
        self.stale_after = stale_after
        self._checks: dict[str, str] = {"service": "starting"}
        self._checked_at: float | None = None
        self._probe = Probe(database_url)
        self._probing = asyncio.Lock()  # one probe at a time on the one connection

    def report(self) -> dict[str, Any]:
        """``{"ready": bool, <check>: "ok" or what is wrong and what to do, ...}``."""
        checks = dict(self._checks)
        if self._checked_at is not None and \
                time.monotonic() - self._checked_at > self.stale_after:
            checks["probe"] = (f"no result for over {self.stale_after:g} s: the event loop is "
                               "blocked or overloaded; see the service's log")
        return {"ready": all(v == "ok" for v in checks.values()), **checks}

    async def run(self) -> None:
        try:
            while True:
                check_cancelled()
                await self.check()
                await asyncio.sleep(self.interval)
        finally:
            self._drop()

    async def check(self) -> dict[str, Any]:
        """Probe everything once and keep the result; returns :meth:`report`."""
        async with self._probing:
            postgres = await self._postgres()
        checks = {"postgres": postgres, "nats": self._nats(), "loops": self._loops()}
        self._checks, self._checked_at = checks, time.monotonic()
        if self.metrics is not None:
            for name, verdict in checks.items():
                self.metrics.ready.labels(check=name).set(verdict == "ok")
        return self.report()

    async def _postgres(self) -> str:
        try:
            async with asyncio.timeout(self.timeout):
                await self._probe.ping()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._drop()
            return (f"unreachable: {_describe(exc)}; check that PostgreSQL is running and "
                    "that DATABASE_URL points at it")
        return "ok"

    def _nats(self) -> str:
        nc = self.nc
        if nc is None:
            return "not connected yet"
        if nc.is_connected:
            return "ok"
        state = "closed" if nc.is_closed else "reconnecting" if nc.is_reconnecting \
            else "disconnected"
        return f"{state}: check that nats-server is running and that NATS_URL points at it"

    def _loops(self) -> str:
        stopped = self.loops()
        if not stopped:
            return "ok"
        return (f"stopped: {', '.join(sorted(stopped))}; restart the service (its log says "
                "why they stopped)")

    def _drop(self) -> None:
        self._probe.drop()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
