"""Benchmark: `ecc serve` killed with ``kill -9`` while signals flow, and started again.

On embedded servers (or those of NATS_URL and DATABASE_URL), `ecc serve` runs
as its own process and this process publishes signals at a steady rate (50 a
second, each at a place of its own so each raises an incident) for the whole
run. Every few seconds (``--before``, 3) the service gets SIGKILL, as from a
crash or the OOM killer; the broker keeps taking (and acknowledging) signals
meanwhile. After a short outage (``--down``, 1 s, a process supervisor's
restart delay) the same command starts it again, and from that moment:

* ``recovery.seconds_to_ready``: until the new process logs ``service.ready``
  (its console gateway is listening, its consumers are running);
* ``recovery.seconds_after_kill``: until the first signal published after the
  kill has an incident (its ``incident.reported`` committed in PostgreSQL).

That is done ``--kills`` (5) times; the figures are the medians, and
``recovery.seconds_after_kill_max`` the worst. The worst matters: a signal the
dead process had been handed and not acknowledged (the broker counts it as
delivered) comes back only when its ack wait (``ECC_ACK_WAIT``, 30 s) runs out,
and the first signal after the kill can be one of them. Then, once signals stop:

* ``recovery.seconds_to_all_signals``: from the last restart until every signal
  published in the run has an incident;
* ``recovery.signals_lost``: signals with no incident when the benchmark gives
  up (90 s after the last restart). It must be 0.

``results/recovery.json`` has each kill: how many signals the broker counted as
held by the dead process, how many waited, and the times.

    python -m bench.recovery [--rate 50] [--before 3] [--down 1] [--after 3] [--kills 5]
                             [--quick] [--metrics FILE]
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from bench.metric import Metric, parser_for, report, sizes
from bench.servers import Serve, database, serve_env, servers
from command import bus, logs
from command.model import Signal
from command.subjects import Namespace
from workflows.geo import Location

GIVE_UP = 90.0  # seconds after the restart


async def run(rate: float, before: float, down: float, after: float,
              kills: int) -> dict[str, Any]:
    logs.configure(json=True, level=40)
    spot = itertools.count()
    sent: list[tuple[float, str]] = []  # (monotonic time the publish began, signal id)
    stop = asyncio.Event()

    async with servers() as srv, database(srv) as database_url:
        ns = Namespace(f"r{uuid.uuid4().hex[:8]}")
        service = Serve(serve_env(srv.nats_url, database_url, ns.prefix))
        nc = await bus.connect(srv.nats_url, "ecc-bench")
        js = nc.jetstream()
        db = await asyncpg.connect(database_url)

        async def incidents_for(ids: list[str]) -> set[str]:
            rows = await db.fetch(
                "SELECT data->>'signal_id' AS s FROM events WHERE type = 'incident.reported' "
                "AND data->>'signal_id' = ANY($1::text[])", ids)
            return {r["s"] for r in rows}

        async def kill_and_restart(service: Serve, killed_before: int) -> dict[str, Any]:
            """One kill -9, the outage, the restart; the times of this cycle."""
            killed_at = time.monotonic()
            service.kill()
            await service.wait()
            settled = len(await incidents_for([s for t, s in sent if t < killed_at]))
            await asyncio.sleep(down)
            # what the broker thinks the dead process holds: handed out, never acked
            info = await js.consumer_info(ns.stream("SIGNALS"), "intake")
            restarted_at = time.monotonic()
            await service.start()
            ready_s = await service.ready()
            while not (later := [s for t, s in sent if t > killed_at]):
                await asyncio.sleep(0.01)
            while not await incidents_for(later[:1]):
                if time.monotonic() - restarted_at > GIVE_UP:
                    raise TimeoutError("the first signal after a kill never had an incident")
                await asyncio.sleep(0.01)
            first_s = time.monotonic() - restarted_at
            return {"signals_before": killed_before, "with_incident_at_kill": settled,
                    "held_by_the_dead": info.num_ack_pending,
                    "waiting_in_the_broker": info.num_pending,
                    "ready_s": round(ready_s, 3), "first_new_incident_s": round(first_s, 3),
                    "kill_to_first_new_incident_s": round(first_s + restarted_at - killed_at,
                                                          3),
                    "restarted_at": restarted_at}

        async def publisher() -> None:
            subject = ns.signal("hotline", "fire")
            acks = []
            begin = time.monotonic()
            for i in itertools.count():
                if stop.is_set():
                    break
                delay = begin + i / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                n = next(spot)  # 1.1 km apart: each its own incident
                sig = Signal(signal_id=f"rec-{uuid.uuid4().hex[:12]}", source="hotline",
                             category="fire", observed_at=datetime.now(UTC), confidence=0.6,
                             location=Location(lat=34.0 + (n % 100) * 0.01,
                                               lon=113.0 + (n // 100) * 0.01))
                sent.append((time.monotonic(), sig.signal_id))
                acks.append(await js.publish_async(
                    subject, sig.model_dump_json().encode(),
                    headers={"Nats-Msg-Id": f"hotline:{sig.signal_id}"}))
            await asyncio.gather(*acks)  # every one of them was taken by the broker

        await service.start()
        flowing: asyncio.Task[None] | None = None
        cycles: list[dict[str, Any]] = []
        try:
            await service.ready()
            flowing = asyncio.create_task(publisher())
            for _ in range(kills):
                await asyncio.sleep(before)
                cycles.append(await kill_and_restart(service, killed_before=len(sent)))
            await asyncio.sleep(after)
            stop.set()
            await flowing
            ids = [s for _, s in sent]
            last_restart = cycles[-1]["restarted_at"]
            while len(have := await incidents_for(ids)) < len(ids):
                if time.monotonic() - last_restart > GIVE_UP:
                    break
                await asyncio.sleep(0.05)
            all_s = time.monotonic() - last_restart
            service.check()
        finally:
            stop.set()
            if flowing is not None and not flowing.done():
                flowing.cancel()
            await service.stop()
            await db.close()
            await nc.close()
    lost = len(ids) - len(have)
    for c in cycles:
        del c["restarted_at"]
    return {
        "benchmark": "recovery", "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "rate_per_s": rate, "signals": len(ids), "down_s": down, "kills": cycles,
        "ready_s_median": round(statistics.median(c["ready_s"] for c in cycles), 3),
        "first_new_incident_s_median": round(
            statistics.median(c["first_new_incident_s"] for c in cycles), 3),
        "first_new_incident_s_max": max(c["first_new_incident_s"] for c in cycles),
        "all_signals_s": round(all_s, 3) if not lost else None,
        "lost": lost,
    }


def metrics(r: dict[str, Any]) -> list[Metric]:
    out = [Metric("recovery.seconds_after_kill", r["first_new_incident_s_median"], "s"),
           Metric("recovery.seconds_after_kill_max", r["first_new_incident_s_max"], "s"),
           Metric("recovery.seconds_to_ready", r["ready_s_median"], "s")]
    if r["all_signals_s"] is not None:
        out.append(Metric("recovery.seconds_to_all_signals", r["all_signals_s"], "s"))
    out.append(Metric("recovery.signals_lost", r["lost"], "signals"))
    return out


SIZES: dict[bool, dict[str, Any]] = {
    False: {"rate": 50.0, "before": 3.0, "down": 1.0, "after": 3.0, "kills": 5},
    True: {"rate": 50.0, "before": 1.0, "down": 0.5, "after": 1.0, "kills": 1},
}


async def measure(quick: bool = False) -> list[Metric]:
    return metrics(await run(**SIZES[quick]))


def main() -> None:
    parser = parser_for(
        __doc__,
        rate=(float, "signals/s, all along (50)"),
        before=(float, "seconds of signals before the kill (3)"),
        down=(float, "seconds between kill and restart (1)"),
        after=(float, "seconds of signals after the last (3)"),
        kills=(int, "kill -9 and restart this many times (5)"),
    )
    args = parser.parse_args()
    r = asyncio.run(run(**sizes(args, SIZES[args.quick])))
    for n, c in enumerate(r["kills"], 1):
        print(f"kill {n}: {c['held_by_the_dead']} signals held by the dead process, "
              f"{c['waiting_in_the_broker']} waiting; ready {c['ready_s']} s after the restart,"
              f" the first signal sent after the kill has an incident "
              f"{c['first_new_incident_s']} s after it ({c['kill_to_first_new_incident_s']} s "
              f"after the kill)")
    if r["lost"]:
        print(f"{r['lost']} of {r['signals']} signals have no incident {GIVE_UP:g} s after the "
              f"last restart")
    else:
        print(f"all {r['signals']} signals have their incident {r['all_signals_s']} s after "
              f"the last restart")
    report("recovery", r, metrics(r), args)


if __name__ == "__main__":
    main()
