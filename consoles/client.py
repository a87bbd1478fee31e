"""Shell: a console client over the real protocol, for scripts, tests and `ecc console watch`."""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import socket
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from consoles.protocol import (
    Delta,
    Error,
    Positions,
    Result,
    Resync,
    Snapshot,
    UnitPosition,
    Welcome,
    server_message,
)

ServerMsg = Welcome | Snapshot | Delta | Positions | Resync | Error | Result


class ConsoleClient:
    """A connected, authenticated console. Use :func:`open_console`."""

    def __init__(self, ws: ClientConnection, *, positions: bool = False) -> None:
        self.ws = ws
        # ``positions`` messages: returned by receive() when ``positions``; otherwise
        # folded here (latest per unit) and counted, so a reader of deltas never sees them
        self.keep_positions = positions
        self.positions: dict[str, UnitPosition] = {}
        self.positions_received = 0
        self.backlog: deque[ServerMsg] = deque()  # what arrived while awaiting a result
        self._ids = itertools.count(1)
        # request ids are kept per token for a day (a repeat gets the first answer): each
        # connection numbers its own, so a reconnect or a second console never reuses one
        self._prefix = f"r{secrets.token_hex(6)}-"

    def _next_id(self) -> str:
        return f"{self._prefix}{next(self._ids)}"

    async def receive(self) -> ServerMsg:
        if self.backlog:
            return self.backlog.popleft()
        while True:
            got = server_message.validate_json(await self.ws.recv())
            if self.keep_positions or not self._folded(got):
                return got

    def _folded(self, got: ServerMsg) -> bool:
        """Fold a ``positions`` message into :attr:`positions` (True), or leave it."""
        if not isinstance(got, Positions):
            return False
        self.positions_received += 1
        for unit in got.units:
            self.positions[unit.unit_id] = unit
        return True

    async def request(self, message: dict[str, Any]) -> Result:
        """Send a command or query and wait for its result; deltas meanwhile are kept."""
        await self.ws.send(json.dumps(message))
        while True:
            got = server_message.validate_json(await self.ws.recv())
            if isinstance(got, Result) and got.request_id == message["request_id"]:
                return got
            if self.keep_positions or not self._folded(got):
                self.backlog.append(got)

    async def command(self, name: str, incident_id: str | None = None, *,
                      request_id: str | None = None, **args: Any) -> Result:
        """Send a command (``request_id``: to repeat one, as a console retrying does)."""
        message: dict[str, Any] = {"type": "command",
                                   "request_id": request_id or self._next_id(),
                                   "name": name, "args": args}
        if incident_id is not None:
            message["incident_id"] = incident_id
        return await self.request(message)

    async def detail(self, incident_id: str) -> Result:
        return await self.request({"type": "query", "request_id": self._next_id(),
                                   "name": "incident.detail", "incident_id": incident_id})

    async def history(self, start: str, end: str) -> Result:
        """``history.period``: the picture at ``start`` and the events up to ``end``."""
        return await self.request({"type": "query", "request_id": self._next_id(),
                                   "name": "history.period",
                                   "args": {"from": start, "to": end}})

    async def __aiter__(self) -> AsyncIterator[ServerMsg]:  # pragma: no cover - sugar
        while True:
            yield await self.receive()


def ws_url(console_url: str) -> str:
    """``http://host:port/`` (as printed by `ecc up`) to its websocket ``ws://host:port/ws``."""
    base = console_url.split("#", 1)[0].rstrip("/")
    return base.replace("https://", "wss://", 1).replace("http://", "ws://", 1) + "/ws"


@asynccontextmanager
async def open_console(
    console_url: str, token: str, since: int | None = None, *, positions: bool = False,
    **kwargs: Any
) -> AsyncIterator[ConsoleClient]:
    """A console on ``console_url``; ``positions``: receive() returns ``positions``
    messages too (by default they are folded into ``client.positions``)."""
    async with connect(ws_url(console_url), **kwargs) as ws:
        await ws.send(json.dumps({"type": "hello", "token": token, "since": since}))
        yield ConsoleClient(ws, positions=positions)


async def stalled_console(port: int, token: str) -> asyncio.StreamWriter:
    """A console that says hello and then never reads: a frozen tab on a thin link.

    Built on websockets' sans-I/O client protocol over a raw socket with a tiny
    receive buffer, so the gateway's sends really back up.
    """
    from websockets.client import ClientProtocol
    from websockets.protocol import State
    from websockets.uri import parse_uri

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock, limit=4096)
    proto = ClientProtocol(parse_uri(f"ws://127.0.0.1:{port}/ws"))
    proto.send_request(proto.connect())
    for data in proto.data_to_send():
        writer.write(data)
    while proto.state is State.CONNECTING:
        proto.receive_data(await reader.read(4096))
    proto.send_text(json.dumps({"type": "hello", "token": token}).encode())
    for data in proto.data_to_send():
        writer.write(data)
    await writer.drain()
    return writer
