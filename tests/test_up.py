"""`ecc up` as a newcomer runs it: embedded servers, a token, a console, a signal, a restart."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from consoles.client import open_console
from consoles.protocol import Delta, Snapshot, Welcome
from tests.conftest import Servers
from tests.helpers import eventually


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="ecc-up-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def embedded_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NATS_URL", "DATABASE_URL")}
    env.update(ECC_DATA_DIR=str(data_dir), ECC_CONSOLE_PORT="0", ECC_INGRESS_PORT="0")
    return env


async def start_up(env: dict[str, str], data_dir: Path,
                   command: tuple[str, ...] = ("up",)) -> tuple[subprocess.Popen[bytes], Any]:
    endpoints = data_dir / "endpoints.json"
    proc = subprocess.Popen([sys.executable, "-m", "ecc.cli", *command], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    async def written() -> Any:
        assert proc.poll() is None, "ecc up exited early"
        if not endpoints.exists():
            return None
        found = json.loads(endpoints.read_text())
        return found if found.get("pid") == proc.pid else None  # this run's, not the last one's

    return proc, await eventually(written, timeout=60, interval=0.1)


async def stop(proc: subprocess.Popen[bytes]) -> int:
    """Ctrl-C, and its exit status; a process still running 60 s later is killed (so it
    cannot outlive the test and hold up the session) and the test fails."""
    proc.send_signal(signal.SIGINT)
    try:
        return await asyncio.wait_for(asyncio.to_thread(proc.wait), 60)
    except BaseException:
        proc.kill()
        raise


def children_alive(data_dir: Path) -> list[str]:
    """Processes whose command line names this data folder (nats-server, postgres)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if str(data_dir) in cmd:
                found.append(cmd)
    return found


def send_signal_cli(env: dict[str, str], summary: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "ecc.cli", "signal", "send", "--category", "fire",
         "--summary", summary], env=env, capture_output=True, check=True, timeout=60)
    return dict(json.loads(out.stdout))


@pytest.mark.slow
async def test_up_on_the_embedded_default_survives_a_restart(data_dir: Path) -> None:
    """ecc up starts everything, a console sees `ecc signal send` live, Ctrl-C stops it all,
    and a second `ecc up` still has the incident and the same token."""
    env = embedded_env(data_dir)
    proc, endpoints = await start_up(env, data_dir)
    try:
        assert set(endpoints) >= {"nats_url", "database_url", "mqtt_url", "console_url", "token"}
        assert endpoints["mqtt_url"].startswith("mqtt://127.0.0.1:")
        assert (data_dir / "endpoints.json").stat().st_mode & 0o077 == 0  # holds a token
        async with open_console(endpoints["console_url"], endpoints["token"]) as console:
            assert isinstance(await asyncio.wait_for(console.receive(), 10), Welcome)
            snap = await asyncio.wait_for(console.receive(), 10)
            assert isinstance(snap, Snapshot) and snap.incidents == []
            sent_at = time.monotonic()
            ack = await asyncio.to_thread(send_signal_cli, env, "smoke on Jinshui Road")
            delta = await asyncio.wait_for(console.receive(), 10)
            latency = time.monotonic() - sent_at
        assert isinstance(delta, Delta) and delta.event.data["summary"] == "smoke on Jinshui Road"
        assert delta.event.data["signal_id"] == ack["signal_id"]
        assert latency < 10  # the figure that matters is in `make bench`; this only bounds it
    finally:
        code = await stop(proc)
    assert code == 0
    assert children_alive(data_dir) == []

    proc, again = await start_up(env, data_dir)
    try:
        assert again["token"] == endpoints["token"]
        async with open_console(again["console_url"], again["token"]) as console:
            await asyncio.wait_for(console.receive(), 10)
            snap = await asyncio.wait_for(console.receive(), 10)
        assert [i["summary"] for i in snap.incidents] == ["smoke on Jinshui Road"]
    finally:
        assert await stop(proc) == 0
    assert children_alive(data_dir) == []


@pytest.mark.slow
async def test_up_with_external_servers_starts_nothing_embedded(
    servers: Servers, database_url: str, data_dir: Path
) -> None:
    """With NATS_URL and DATABASE_URL set, ecc up uses them and runs no server of its own."""
    env = embedded_env(data_dir)
    env.update(NATS_URL=servers.nats_url, DATABASE_URL=database_url,
               ECC_NAMESPACE=f"up{os.getpid()}")
    proc, endpoints = await start_up(env, data_dir)
    try:
        assert endpoints["nats_url"] == servers.nats_url
        assert endpoints["database_url"] == database_url
        assert endpoints["mqtt_url"] is None
        assert not (data_dir / "postgres").exists() and not (data_dir / "nats").exists()
    finally:
        assert await stop(proc) == 0


def test_half_external_configuration_is_refused(data_dir: Path) -> None:
    """Only one of NATS_URL / DATABASE_URL set: a clear error, exit code 2, nothing started."""
    env = embedded_env(data_dir)
    env["NATS_URL"] = "nats://127.0.0.1:1"
    out = subprocess.run([sys.executable, "-m", "ecc.cli", "up"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "set both NATS_URL and DATABASE_URL" in out.stderr
    assert not (data_dir / "postgres").exists()


def test_a_missing_catalogue_file_is_a_clear_error(data_dir: Path) -> None:
    """ECC_CATALOGUE pointing nowhere: exit 2 and a message naming the setting."""
    env = embedded_env(data_dir)
    env["ECC_CATALOGUE"] = str(data_dir / "nope.toml")
    out = subprocess.run([sys.executable, "-m", "ecc.cli", "catalogue", "check"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "check ECC_CATALOGUE" in out.stderr


@pytest.mark.slow
@pytest.mark.timeout(300)  # start, up to 90 s for the first incident, and a clean stop
async def test_demo_starts_serves_the_console_and_the_city_comes_alive(data_dir: Path) -> None:
    """`ecc demo` (what `make demo` runs), sped up: the console page is served, and the
    simulated city's emergencies reach a console as incidents; Ctrl-C stops it all."""
    import urllib.request

    env = embedded_env(data_dir)
    proc, endpoints = await start_up(env, data_dir, ("demo", "--speed", "60", "--seed", "3"))
    try:
        page = await asyncio.to_thread(
            lambda: urllib.request.urlopen(endpoints["console_url"], timeout=10).read())
        assert b"<title>" in page and b"/static/app.js" in page
        async with open_console(endpoints["console_url"], endpoints["token"]) as console:
            assert isinstance(await asyncio.wait_for(console.receive(), 10), Welcome)
            await asyncio.wait_for(console.receive(), 10)  # the snapshot

            async def an_incident() -> Any:
                msg = await asyncio.wait_for(console.receive(), 60)
                return isinstance(msg, Delta) and msg.event.type == "incident.reported"

            await eventually(an_incident, timeout=90)
    finally:
        code = await stop(proc)
    assert code == 0
    assert children_alive(data_dir) == []
