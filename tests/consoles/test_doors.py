"""The console gateway's doors over raw sockets: one Host and one Origin, the gateway's
own names only (DNS rebinding), and garbage handshakes and hellos answered 4xx or closed
cleanly, never a 500, with a good console still let in after."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from command.store import Store
from command.subjects import Namespace
from consoles.client import open_console, ws_url
from consoles.protocol import Error, Welcome
from ecc.app import Service
from tests.helpers import running_gateway

UPGRADE = ("Upgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n")


async def ask(port: int, request: bytes, timeout: float = 5.0,
              eof: bool = False) -> tuple[int | None, bytes]:
    """Send raw bytes (``eof``: then end the stream, so a request cut short is not waited
    for); the answer's status (None: closed without one) and its bytes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    data = b""
    try:
        writer.write(request)
        if eof:
            writer.write_eof()
        await writer.drain()
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in data:
            left = deadline - time.monotonic()
            assert left > 0, f"no answer within {timeout}s: {data!r}"
            chunk = await asyncio.wait_for(reader.read(65536), left)
            if not chunk:
                break
            data += chunk
        if data.startswith(b"HTTP/1.1 ") and b"\r\n\r\n" in data:
            head, _, body = data.partition(b"\r\n\r\n")
            length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            while len(body) < length and time.monotonic() < deadline:
                chunk = await asyncio.wait_for(reader.read(65536), deadline - time.monotonic())
                if not chunk:
                    break
                body += chunk
            data = head + b"\r\n\r\n" + body
    except (ConnectionResetError, BrokenPipeError):
        pass  # the gateway dropped a request it could not read: a clean refusal
    finally:
        writer.close()
    if not data.startswith(b"HTTP/1.1 "):
        return None, data
    return int(data[9:12]), data


def request(path: str, headers: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\n{headers}\r\n".encode()


def port_of(service: Service) -> int:
    assert service.gateway is not None
    return service.gateway.port


async def test_duplicate_host_or_origin_headers_are_a_400(service: Service) -> None:
    """Two Host or two Origin headers get 400 naming the header, on the page and the socket."""
    port = port_of(service)
    host = f"Host: 127.0.0.1:{port}\r\n"
    for path, headers, name in [
        ("/", host + host, b"Host"),
        ("/ws", host + "Host: evil.example\r\n" + UPGRADE, b"Host"),
        ("/ws", host + "Origin: http://a.example\r\nOrigin: http://b.example\r\n" + UPGRADE,
         b"Origin"),
    ]:
        status, answer = await ask(port, request(path, headers))
        assert status == 400, answer
        assert b"send one " + name in answer


async def test_a_rebinding_host_is_refused_on_every_path_but_the_probes(
        service: Service) -> None:
    """Host == Origin == evil.example (DNS rebinding) gets 421 on the page, static files and
    the socket; /healthz, /readyz and /metrics still answer a probe's Host."""
    port = port_of(service)
    evil = "Host: evil.example\r\nOrigin: http://evil.example\r\n"
    for path in ("/", "/static/app.js", "/ws"):
        status, answer = await ask(port, request(path, evil + (UPGRADE if path == "/ws" else "")))
        assert status == 421, (path, answer)
        assert b"ECC_CONSOLE_HOSTS" in answer
    assert (await ask(port, request("/healthz", "Host: 10.1.2.3:9\r\n")))[0] == 200
    assert (await ask(port, request("/readyz", "Host: probe.internal\r\n")))[0] in (200, 503)
    status, answer = await ask(port, request("/metrics", "Host: evil.example\r\n"))
    assert status == 200
    assert b'ecc_console_refusals_total{reason="host"} 3.0' in answer
    # the gateway's own address still opens the socket
    status, answer = await ask(port, request("/ws", f"Host: 127.0.0.1:{port}\r\n" + UPGRADE))
    assert status == 101, answer


async def test_a_configured_public_name_is_let_in(store: Store, nc: Any, js: Any,
                                                  ns: Namespace, token: str) -> None:
    """A name in the gateway's hosts (ECC_CONSOLE_HOSTS) upgrades with its own origin."""
    async with running_gateway(store, nc, ns, hosts=("ecc.city.example",)) as gateway:
        headers = "Host: ECC.city.example:443\r\nOrigin: https://ECC.city.example:443\r\n"
        status, answer = await ask(gateway.port, request("/ws", headers + UPGRADE))
        assert status == 101, answer
        status, _ = await ask(gateway.port, request("/ws", "Host: other.example\r\n" + UPGRADE))
        assert status == 421


header_names = st.sampled_from(
    ["Host", "Origin", "Upgrade", "Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version",
     "Sec-WebSocket-Extensions", "Sec-WebSocket-Protocol", "Content-Length",
     "Transfer-Encoding", "X-Junk", "host", "ORIGIN"])
header_values = st.one_of(
    # mostly values the parser takes (so the gateway's own code is reached), some not
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80),
    st.text(st.characters(min_codepoint=0, max_codepoint=255), max_size=20),
    st.sampled_from(["127.0.0.1", "localhost:1", "[::1]", "evil.example", "http://evil.example",
                     "websocket", "Upgrade", "13", "dGhlIHNhbXBsZSBub25jZQ==", "null", "",
                     "permessage-deflate; client_max_window_bits", "-1", "99999999999"]))
BASE = [("Host", "127.0.0.1"), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13")]
garbage_requests = st.one_of(
    st.binary(max_size=600),
    st.tuples(st.sampled_from(["/", "/ws", "/static/app.js", "/static/../x", "//[x", "/%00",
                               "/ws?x=1", "*", "http://evil.example/ws", "/healthz"]),
              # a good handshake, a part of one, or none, then garbage headers on top
              st.sampled_from([BASE, BASE[:1], BASE[1:], []]),
              st.lists(st.tuples(header_names, header_values), max_size=8)).map(
        lambda t: f"GET {t[0]} HTTP/1.1\r\n".encode("latin-1")
        + b"".join(f"{k}: {v}\r\n".encode("latin-1") for k, v in [*t[1], *t[2]]) + b"\r\n"))


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=garbage_requests)
async def test_garbage_handshakes_get_a_4xx_or_a_clean_close(
        service: Service, token: str, raw: bytes) -> None:
    """Any bytes as a handshake: an answer below 500 (a 4xx, or what a lenient parse makes
    of it) or a closed socket, never a 5xx; a good console still gets its welcome after."""
    # bytes cut short of a header block's end are ended by the client, or the gateway
    # would rightly wait for the rest (a websockets open_timeout)
    status, answer = await ask(port_of(service), raw, eof=b"\r\n\r\n" not in raw)
    assert status is None or status < 500, answer[:300]
    async with open_console(service.console_url, token) as console:
        assert isinstance(await asyncio.wait_for(console.receive(), 10), Welcome)


hellos = st.one_of(
    st.text(max_size=300), st.binary(max_size=300),
    st.dictionaries(st.sampled_from(["type", "token", "since", "x"]),
                    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=300),
                              st.just("hello")), max_size=4).map(json.dumps))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(hello=hellos)
async def test_garbage_hellos_are_refused_with_a_reason(service: Service, token: str,
                                                        hello: str | bytes) -> None:
    """Any first frame that is not a good hello is answered with an error and a 44xx close
    (or, being valid, a welcome); the gateway keeps letting good consoles in."""
    async with connect(ws_url(service.console_url)) as ws:
        await ws.send(hello)
        first = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if first["type"] == "error":
            assert first["code"] in ("bad_hello", "unauthorized") and first["message"]
            try:
                await asyncio.wait_for(ws.recv(), 10)
                raise AssertionError("still open after a refusal")
            except ConnectionClosed as closed:
                assert closed.rcvd is not None and 4400 <= closed.rcvd.code < 4500
        else:
            assert first["type"] == "welcome"
    async with open_console(service.console_url, token) as console:
        assert isinstance(await asyncio.wait_for(console.receive(), 10), Welcome)


async def test_an_unauthenticated_hello_is_an_error_not_a_crash(service: Service) -> None:
    """A token of the right shape but unknown is refused with what to do."""
    async with open_console(service.console_url, "x" * 200) as console:
        msg = await asyncio.wait_for(console.receive(), 10)
    assert isinstance(msg, Error) and "administrator" in msg.message
