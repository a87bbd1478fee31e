"""A three-node NATS cluster with replicated streams, and two ECC services sharing it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from command import bus
from command.runtime import free_port
from command.store import Store
from command.subjects import Namespace
from tests.faults import harness
from tests.faults.cluster import Cluster


@pytest.mark.timeout(180)
async def test_a_node_and_a_service_killed_in_a_three_node_cluster_lose_nothing(
    database_url: str, store: Store, ns: Namespace, tmp_path: Path
) -> None:
    """Proves: on three clustered nats-servers with every stream kept on all three
    (``ECC_STREAM_REPLICAS=3``), two `ecc serve` processes share the work (one durable
    consumer each for intake and crews, one relay and one dispatcher leading); killing
    the node that leads the signal stream (SIGKILL) under 20 signals/s, and then one of
    the two services, loses no acknowledged signal: the cluster elects a new leader,
    the publisher and both services fail over to the live nodes, the surviving service
    takes all the work, every signal is recorded once and a console on it receives
    every event once, in order."""
    cluster = Cluster(tmp_path / "cluster")
    await cluster.start()
    token = await harness.console_token(store)
    catalogue = harness.fast_catalogue(tmp_path)
    ports = [free_port(), free_port()]
    services = []
    for i, port in enumerate(ports):
        env = harness.service_env(cluster.url, database_url, ns, port, catalogue)
        env["ECC_STREAM_REPLICAS"] = "3"
        services.append(harness.ServiceProcess(env, port, tmp_path / f"ecc-{i + 1}.log"))
    history = harness.History()
    stop = asyncio.Event()
    nc = None
    try:
        services[0].start()
        await services[0].serving(timeout=60)  # it registers the city's units first
        services[1].start()
        await services[1].serving(timeout=60)
        nc = await bus.connect(cluster.url, name="fault-publisher")
        js = nc.jetstream()
        stream = await js.stream_info(ns.stream("SIGNALS"))
        assert stream.config.num_replicas == 3
        assert stream.cluster is not None and len(stream.cluster.replicas or []) == 2
        console = harness.Console("console", f"http://127.0.0.1:{ports[1]}/", token, history)
        publisher = harness.Publisher(js, ns, history, rate=20)
        async with harness.tasks(publisher.run(stop), console.run()):
            await asyncio.wait_for(console.connected.wait(), 10)
            await asyncio.sleep(3.0)
            leader = stream.cluster.leader
            assert leader is not None
            cluster.node(leader).kill()
            history.faults.append(f"node {leader} (leader of SIGNALS) kill -9")
            await asyncio.sleep(4.0)
            services[0].kill()
            history.faults.append("ecc-1 kill -9")
            await asyncio.sleep(4.0)
            stop.set()
            snapshot = await harness.settled(database_url, history, [console], timeout=90)
            counts = await harness.check(database_url, history, snapshot)
        after = await js.stream_info(ns.stream("SIGNALS"))
        assert after.cluster is not None and after.cluster.leader not in (None, leader)
        assert services[1].proc is not None and services[1].proc.poll() is None
    finally:
        if nc is not None:
            await nc.close()
        for s in services:
            await s.stop()
        cluster.stop()
    # the load was real (publishes stall for seconds while the cluster elects a leader)
    assert counts["signals"] > 50
    both = [s.log_path.read_text() for s in services]
    assert all('"event": "incident.reported"' in text or '"event": "incident.signal_attached"'
               in text for text in both), "one service took no signals: the work was not shared"
