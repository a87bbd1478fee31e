"""Three nats-server processes on loopback, clustered, from the same wheel as the
embedded runtime: what docker-compose's `cluster` profile runs, in one test.

Test-only: the nodes admit anyone (the per-component users are tested on their own,
tests/command/test_nats_security.py); JetStream fsyncs every write, as in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import time
from pathlib import Path

import nats

from command.runtime import free_port, nats_server_binary


class Node:
    def __init__(self, name: str, folder: Path, port: int, cluster_port: int,
                 routes: list[int]) -> None:
        self.name, self.dir = name, folder / name
        self.port, self.cluster_port, self.routes = port, cluster_port, routes
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def config(self) -> str:
        routes = ", ".join(f"nats-route://127.0.0.1:{p}" for p in self.routes)
        return "\n".join([
            f'server_name: "{self.name}"',
            f"listen: 127.0.0.1:{self.port}",
            "max_payload: 5MB",
            f'log_file: "{self.dir / "nats-server.log"}"',
            "jetstream {",
            f'  store_dir: "{self.dir / "jetstream"}"',
            "  sync_interval: always",
            "}",
            "cluster {",
            '  name: "ecc"',
            f"  listen: 127.0.0.1:{self.cluster_port}",
            f"  routes: [{routes}]",
            "}",
            "",
        ])

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        conf = self.dir / "nats-server.conf"
        conf.write_text(self.config())
        self.proc = subprocess.Popen([nats_server_binary(), "-c", str(conf)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class Cluster:
    def __init__(self, folder: Path, size: int = 3) -> None:
        ports = [free_port() for _ in range(size)]
        cluster_ports = [free_port() for _ in range(size)]
        self.nodes = [Node(f"n{i + 1}", folder, ports[i], cluster_ports[i],
                           [p for j, p in enumerate(cluster_ports) if j != i])
                      for i in range(size)]

    @property
    def url(self) -> str:
        """Every node, comma-separated: how ECC's NATS_URL names a cluster."""
        return ",".join(n.url for n in self.nodes)

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    async def start(self, timeout: float = 30.0) -> None:
        for n in self.nodes:
            n.start()
        deadline = time.monotonic() + timeout
        while True:  # ready: JetStream answers with a leader for its metadata
            try:
                nc = await nats.connect(servers=[n.url for n in self.nodes], connect_timeout=1,
                                        allow_reconnect=False,
                                        max_reconnect_attempts=0)
                try:
                    info = await nc.jetstream(timeout=2).account_info()
                    if info is not None:
                        return
                finally:
                    await nc.close()
            except Exception:
                if time.monotonic() > deadline:
                    self.stop()
                    raise
            await asyncio.sleep(0.2)

    def stop(self) -> None:
        for n in self.nodes:
            with contextlib.suppress(Exception):
                n.stop()
