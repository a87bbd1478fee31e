"""Shell: a console client over the real protocol, for scripts, tests and `ecc console watch`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from consoles.protocol import Delta, Error, Resync, Snapshot, Welcome, server_message

ServerMsg = Welcome | Snapshot | Delta | Resync | Error


class ConsoleClient:
    """A connected, authenticated console. Use :func:`open_console`."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def receive(self) -> ServerMsg:
        raw = await self.ws.recv()
        return server_message.validate_json(raw)

    async def __aiter__(self) -> AsyncIterator[ServerMsg]:  # pragma: no cover - sugar
        while True:
            yield await self.receive()


def ws_url(console_url: str) -> str:
    """``http://host:port/`` (as printed by `ecc up`) to its websocket ``ws://host:port/ws``."""
    base = console_url.split("#", 1)[0].rstrip("/")
    return base.replace("https://", "wss://", 1).replace("http://", "ws://", 1) + "/ws"


@asynccontextmanager
async def open_console(
    console_url: str, token: str, since: int | None = None, **kwargs: Any
) -> AsyncIterator[ConsoleClient]:
    async with connect(ws_url(console_url), **kwargs) as ws:
        await ws.send(json.dumps({"type": "hello", "token": token, "since": since}))
        yield ConsoleClient(ws)
