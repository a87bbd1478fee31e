# size: tests of consoles/commands.py: every command, allowed and refused
"""Console commands over a real websocket against the real service: every role x command
cell of the authorisation table, the audit log, masking, revocation and connection limits."""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from typing import Any

import asyncpg
import pytest
from websockets.exceptions import ConnectionClosed

from command.store import Store, hash_token
from command.subjects import Namespace
from consoles.authz import COMMANDS, CONSOLE_ROLES, TABLE
from consoles.client import ConsoleClient, open_console
from consoles.protocol import CLOSE_BUSY, CLOSE_FORBIDDEN, CLOSE_UNAUTHORIZED, Error, Welcome
from ecc.app import Service
from tests.helpers import eventually, make_signal, publish_signal


async def new_token(store: Store, role: str, agency: str | None = None) -> str:
    value = f"{role}-{uuid.uuid4().hex}"
    await store.create_token(value, name=f"{role} desk {value[-4:]}", role=role, agency=agency)
    return value


async def incident(store: Store, js: Any, ns: Namespace, **signal: Any) -> dict[str, Any]:
    """A verified incident with its plan's tasks (a sure signal verifies at once)."""
    sig = make_signal(confidence=0.95, **signal)
    await publish_signal(js, ns, sig, msg_id=sig.signal_id)

    async def found() -> Any:
        return await store.pool.fetchval(
            "SELECT view FROM incidents WHERE view->'signals' @> $1::jsonb",
            [{"signal_id": sig.signal_id}])

    return dict(await eventually(found))


async def joined(console: ConsoleClient) -> Welcome:
    welcome = await asyncio.wait_for(console.receive(), 10)
    assert isinstance(welcome, Welcome)
    await asyncio.wait_for(console.receive(), 10)  # the snapshot
    return welcome


def args_for(command: str, other: dict[str, Any], signal_id: str) -> dict[str, Any]:
    """Valid arguments for each command (so a refusal is the table's, not the schema's)."""
    return {
        "call.take": {"narrative": "smoke from a shop", "lat": 34.75, "lon": 113.62},
        "incident.reclassify": {"category": "hazmat", "reason": "chemical smell"},
        "incident.set_priority": {"priority": 1, "reason": "people trapped"},
        "incident.escalate": {"reason": "no unit free"},
        "incident.add_note": {"text": "caller on the line"},
        "incident.detach_signal": {"signal_id": signal_id, "reason": "other event"},
        "incident.link": {"other_id": other["incident_id"]},
        "incident.merge": {"into": other["incident_id"]},
        "incident.split": {"signal_ids": [signal_id]},
        "incident.warn": {"headline": "Smoke", "instruction": "Keep windows shut",
                          "radius_m": 300},
        "incident.end_warning": {"reason": "over"},
        "incident.cancel": {"reason": "false alarm"},
        "incident.reopen": {"reason": "called again"},
        "task.dispatch": {"task_id": "t1", "unit_id": "E11"},
        "task.reassign": {"task_id": "t1", "unit_id": "E12", "reason": "closer"},
        "task.cancel": {"task_id": "t1", "reason": "not needed"},
        "alert.close": {"alert_id": "no-such-alert", "outcome": "acknowledged"},
    }.get(command, {})


@pytest.mark.parametrize("role", sorted(CONSOLE_ROLES))
async def test_every_role_and_command_cell_over_the_socket(
        role: str, service: Service, store: Store, js: Any, ns: Namespace) -> None:
    """Each command a role may not send is refused as forbidden (and nothing changes);
    each it may send is not; every one of them is in the audit log with its outcome."""
    token = await new_token(store, role)
    mine, other = await incident(store, js, ns), await incident(store, js, ns)
    signal_id = mine["signals"][0]["signal_id"]
    before = await store.head()
    async with open_console(service.console_url, token) as console:
        welcome = await joined(console)
        assert set(welcome.commands) == {c for c in COMMANDS if role in TABLE[c]}
        assert welcome.sla == {"verify_s": 60, "task_pending_s": 30, "ack_s": 30}
        outcomes = {}
        for command in COMMANDS:
            target = None if command == "call.take" else mine["incident_id"]
            result = await console.command(command, target,
                                           **args_for(command, other, signal_id))
            outcomes[command] = result.code or "ok"
            if role in TABLE[command]:
                assert result.code != "forbidden", (command, result.message)
            else:
                assert result.code == "forbidden", (command, result)
                assert result.message and "ask a" in result.message
    rows = await store.pool.fetch(
        "SELECT command, outcome, actor, role FROM audit_log WHERE command NOT LIKE 'console.%'"
        " ORDER BY id")
    assert [r["command"] for r in rows] == list(COMMANDS)
    assert await store.pool.fetchval(
        "SELECT outcome FROM audit_log WHERE command = 'console.open'") == "ok"
    assert {r["command"]: r["outcome"] for r in rows} == outcomes
    assert {r["role"] for r in rows} == {role}
    if not any(role in TABLE[c] for c in COMMANDS):
        assert await store.head() == before  # a viewer changed nothing at all


async def test_a_fire_dispatcher_sends_fire_units_only(
        service: Service, store: Store, js: Any, ns: Namespace) -> None:
    token = await new_token(store, "dispatcher", agency="police")
    fire = await incident(store, js, ns, category="fire")
    fire_task = next(t for t in fire["tasks"] if t["agency"] == "fire")
    police_task = next(t for t in fire["tasks"] if t["agency"] == "police")
    async with open_console(service.console_url, token) as console:
        await joined(console)
        refused = await console.command("task.dispatch", fire["incident_id"],
                                        task_id=fire_task["task_id"], unit_id="E11")
        assert refused.code == "forbidden" and "belongs to fire" in (refused.message or "")
        allowed = await console.command("task.dispatch", fire["incident_id"],
                                        task_id=police_task["task_id"], unit_id="P11")
        assert allowed.code != "forbidden"  # (no such unit registered here: rejected)


async def test_commands_take_effect_and_the_audit_row_names_their_events(
        service: Service, store: Store, js: Any, ns: Namespace, owner_database_url: str) -> None:
    """Console commands take effect, each audited with the seqs of its events, and no
    role can change an audit row afterwards."""
    token = await new_token(store, "supervisor")
    a, b = await incident(store, js, ns), await incident(store, js, ns)
    async with open_console(service.console_url, token) as console:
        await joined(console)
        noted = await console.command("incident.add_note", a["incident_id"], text="gate locked")
        assert noted.ok and noted.data["seqs"]
        merged = await console.command("incident.merge", b["incident_id"],
                                       into=a["incident_id"])
        assert merged.ok, merged.message
        detail = await console.detail(a["incident_id"])
        assert detail.ok
        assert len(detail.data["incident"]["signals"]) == 2
        types = [e["type"] for e in detail.data["timeline"]]
        assert types[0] == "incident.reported" and "incident.note_added" in types
        assert "incident.merge_absorbed" in types
        undone = await console.command("incident.undo_merge", b["incident_id"])
        assert undone.ok, undone.message
        bad = await console.command("incident.set_priority", a["incident_id"], priority=9,
                                    reason="x")
        assert bad.code == "invalid" and "priority" in (bad.message or "")
        nowhere = await console.command("incident.verify", "no-such-incident")
        assert nowhere.code == "not_found"
    row = await store.pool.fetchrow(
        "SELECT * FROM audit_log WHERE command = 'incident.add_note'")
    assert row["outcome"] == "ok" and list(row["seqs"]) == noted.data["seqs"]
    assert row["actor"].startswith("supervisor desk") and row["peer"] == "127.0.0.1"
    assert row["args"] == {"text": "gate locked"}
    # the service's role may not change a row (no privilege); the owner, past that, meets
    # the trigger
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await store.pool.execute("UPDATE audit_log SET outcome = 'ok'")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await store.pool.execute("DELETE FROM audit_log")
    owner = await asyncpg.connect(owner_database_url)
    try:
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await owner.execute("UPDATE audit_log SET outcome = 'ok'")
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await owner.execute("DELETE FROM audit_log")
    finally:
        await owner.close()


async def test_callers_details_are_masked_for_roles_that_do_not_need_them(
        service: Service, store: Store, ns: Namespace) -> None:
    """A call taken on the console: the dispatcher sees the caller's number, a viewer sees
    that there is one but not what it is; the audit log does not copy it."""
    taker, viewer = await new_token(store, "call_taker"), await new_token(store, "viewer")
    dispatcher = await new_token(store, "dispatcher")
    async with open_console(service.console_url, taker) as console:
        await joined(console)
        taken = await console.command("call.take", narrative="三楼着火了", lat=34.7466,
                                      lon=113.6254, caller_name="Wang Fang",
                                      caller_phone="+86 139 1111 2222")
        assert taken.ok and taken.data["category"] == "fire" and taken.data["rule"] == "fire"

    async def raised() -> Any:
        return await store.pool.fetchval(
            "SELECT incident_id FROM incidents WHERE view->'signals' @> $1::jsonb",
            [{"signal_id": taken.data["signal_id"]}])

    incident_id = await eventually(raised)
    async with open_console(service.console_url, dispatcher) as console:
        await joined(console)
        [signal] = (await console.detail(incident_id)).data["signals"]
        assert signal["reporter"] == {"name": "Wang Fang", "phone": "+86 139 1111 2222"}
    async with open_console(service.console_url, viewer) as console:
        await joined(console)
        [signal] = (await console.detail(incident_id)).data["signals"]
        assert signal["reporter"] == {"name": "(hidden)", "phone": "(hidden)"}
    args = await store.pool.fetchval("SELECT args FROM audit_log WHERE command = 'call.take'")
    assert args["caller_phone"] == "(withheld)" and "139" not in str(args)


async def test_a_revoked_token_is_closed_on_open_consoles(service: Service,
                                                          store: Store) -> None:
    token = await new_token(store, "dispatcher")
    name = (await store.principal(token)).name  # type: ignore[union-attr]
    async with open_console(service.console_url, token) as console:
        await joined(console)
        assert await store.revoke_token(name) == 1
        with pytest.raises(ConnectionClosed) as closed:
            while True:  # the error, then the close
                msg = await asyncio.wait_for(console.receive(), 15)
                if isinstance(msg, Error):
                    assert msg.code == "revoked"
    assert closed.value.rcvd is not None and closed.value.rcvd.code == CLOSE_UNAUTHORIZED
    rows = await store.pool.fetch("SELECT command, outcome, actor FROM audit_log ORDER BY id")
    assert [(r["command"], r["outcome"]) for r in rows] == [
        ("console.open", "ok"), ("console.revoked", "unauthorized")]
    async with open_console(service.console_url, token) as console:
        assert isinstance(await asyncio.wait_for(console.receive(), 10), Error)
    last = await store.pool.fetchrow("SELECT * FROM audit_log ORDER BY id DESC LIMIT 1")
    assert (last["command"], last["outcome"], last["actor"]) == (
        "console.open", "unauthorized", "(unknown token)")


async def test_an_adapter_token_opens_no_console_and_one_token_opens_at_most_eight(
        service: Service, store: Store) -> None:
    adapter = await new_token(store, "adapter")
    async with open_console(service.console_url, adapter) as console:
        msg = await asyncio.wait_for(console.receive(), 10)
        assert isinstance(msg, Error) and msg.code == "forbidden"
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(console.receive(), 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == CLOSE_FORBIDDEN
    token = await new_token(store, "viewer")
    consoles = [open_console(service.console_url, token) for _ in range(9)]
    opened = [await c.__aenter__() for c in consoles[:8]]
    try:
        for c in opened:
            await joined(c)
        async with consoles[8] as ninth:
            msg = await asyncio.wait_for(ninth.receive(), 10)
            assert isinstance(msg, Error) and msg.code == "too_many_consoles"
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ninth.receive(), 10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == CLOSE_BUSY
    finally:
        for c in consoles[:8]:
            await c.__aexit__(None, None, None)


# make test storms with 400 consoles, past the 256-place waiting room and the 16 start
# slots; make soak with the full 1,000 (the clients share the service's one event loop
# here, so a thousand on a busy 2-core machine measure the machine, not the gateway).
STORM = int(os.environ.get("ECC_STORM_CONSOLES", "400"))


async def test_a_reconnect_storm_is_queued_or_told_to_retry_and_all_get_in(
        service: Service, store: Store, js: Any, ns: Namespace) -> None:
    """STORM consoles (8 per token) connect at once, as after a network cut: those past
    the waiting room are told to retry in a moment (4429), and with a jittered retry every
    one of them gets its snapshot; the gateway answers a new console afterwards."""
    await incident(store, js, ns)
    tokens = [await new_token(store, "viewer") for _ in range(STORM // 8)]
    busy = 0
    # all thousand come from 127.0.0.1: a centre behind one NAT, so its limit is raised
    assert service.gateway is not None
    service.gateway.max_per_peer = 1000
    # a waiting room smaller than the storm, so some are surely told to retry
    service.gateway.max_waiting = STORM // 4

    async def one(n: int) -> int:
        nonlocal busy
        # as the web console does: try again after a jittered pause that grows, until
        # in (a slow machine admits the thousand more slowly; none may be refused for good)
        deadline = time.monotonic() + 120
        pause = 0.2
        while time.monotonic() < deadline:
            async with open_console(service.console_url, tokens[n % len(tokens)]) as console:
                first = await asyncio.wait_for(console.receive(), 60)
                if isinstance(first, Error) and first.code == "busy":
                    busy += 1
                    await asyncio.sleep(random.uniform(pause, 2 * pause))
                    pause = min(2.0, pause * 1.5)
                    continue
                assert isinstance(first, Welcome)
                snapshot = await asyncio.wait_for(console.receive(), 60)
                return len(snapshot.incidents)  # type: ignore[union-attr]
        raise AssertionError("never got in")

    got = await asyncio.gather(*(one(n) for n in range(STORM)))
    assert got == [1] * STORM
    assert busy > 0, "past the waiting room, some were told to retry"
    print(f"reconnect storm: {STORM} consoles in, {busy} told to retry first")
    async with open_console(service.console_url, tokens[0]) as late:
        assert isinstance(await asyncio.wait_for(late.receive(), 10), Welcome)


async def test_ecc_token_revoke(servers: Any, database_url: str, store: Store) -> None:
    """`ecc token revoke --name` revokes; a second time it says there is none, exit 2."""
    import json
    import os
    import subprocess
    import sys

    token = await new_token(store, "viewer")
    name = (await store.principal(token)).name  # type: ignore[union-attr]
    env = {**os.environ, "NATS_URL": servers.nats_url, "DATABASE_URL": database_url}

    def revoke() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "ecc.cli", "token", "revoke", "--name",
                               name], env=env, capture_output=True, text=True, timeout=60)

    first = await asyncio.to_thread(revoke)
    assert first.returncode == 0 and json.loads(first.stdout) == {"revoked": 1, "name": name}
    assert await store.principal(token) is None
    again = await asyncio.to_thread(revoke)
    assert again.returncode == 2 and "no live token" in again.stderr


async def test_a_refused_role_learns_nothing_and_links_and_reads_are_recorded(
        service: Service, store: Store, js: Any, ns: Namespace) -> None:
    """A viewer asking to dispatch on an incident that does not exist hears "forbidden", not
    "not found"; a link is written on both incidents; a detail read is in the audit log."""
    viewer, supervisor = await new_token(store, "viewer"), await new_token(store, "supervisor")
    async with open_console(service.console_url, viewer) as console:
        await joined(console)
        probe = await console.command("task.dispatch", "no-such", task_id="t1", unit_id="E1")
        assert probe.code == "forbidden"
    a, b = await incident(store, js, ns), await incident(store, js, ns)
    async with open_console(service.console_url, supervisor) as console:
        await joined(console)
        assert (await console.command("incident.link", a["incident_id"],
                                      other_id=b["incident_id"])).ok
        missing = await console.command("incident.link", a["incident_id"], other_id="nope")
        assert missing.code == "not_found"
        [left, right] = [(await console.detail(i["incident_id"])).data["incident"]
                         for i in (a, b)]
        assert left["links"] == [b["incident_id"]] and right["links"] == [a["incident_id"]]
    reads = await store.pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE command = 'incident.detail'")
    assert reads == 2


async def test_history_period_plays_back_from_the_store_and_leaves_live_state_alone(
        service: Service, store: Store, js: Any, ns: Namespace) -> None:
    """An incident before ``from`` is in the picture at ``from``; one reported in the
    period is only in its events; the live snapshot is the same before and after; the read
    is audited; a field unit is refused, and a backwards period is invalid."""
    first = await incident(store, js, ns)
    await asyncio.sleep(0.3)
    mid = await store.pool.fetchval("SELECT clock_timestamp()")
    await asyncio.sleep(0.3)
    second = await incident(store, js, ns)
    end = await store.pool.fetchval("SELECT clock_timestamp()")
    viewer, crew = await new_token(store, "viewer"), await new_token(store, "field_unit")
    before = await store.snapshot()
    async with open_console(service.console_url, viewer) as console:
        await joined(console)
        got = await console.history(mid.isoformat(), end.isoformat())
        backwards = await console.history(end.isoformat(), mid.isoformat())
    assert await store.snapshot() == before  # nothing live moved
    assert got.ok, got.message
    ids = {v["incident_id"] for v in got.data["at_start"]["incidents"]}
    assert first["incident_id"] in ids and second["incident_id"] not in ids
    [then] = [v for v in got.data["at_start"]["incidents"]
              if v["incident_id"] == first["incident_id"]]
    assert then["status"] in ("reported", "verified", "dispatching")
    assert got.data["at_start"]["units"] == before[2]  # no unit moved: as they are now
    seqs = [e["seq"] for e in got.data["events"]]
    assert seqs == sorted(seqs) and not got.data["truncated"]
    streams = {e["stream_id"] for e in got.data["events"]}
    assert f"incident:{second['incident_id']}" in streams
    assert f"incident:{first['incident_id']}" not in streams or all(
        e["type"] != "incident.reported" for e in got.data["events"]
        if e["stream_id"] == f"incident:{first['incident_id']}")
    assert all(e["stream_id"].startswith(("incident:", "unit:"))
               and not e["type"].startswith("timer.") for e in got.data["events"])
    assert not backwards.ok and backwards.code == "invalid" and "before" in backwards.message
    async with open_console(service.console_url, crew) as console:
        await joined(console)
        refused = await console.history(mid.isoformat(), end.isoformat())
    assert not refused.ok and refused.code == "forbidden" and not refused.data
    rows = await store.pool.fetch(
        "SELECT role, outcome FROM audit_log WHERE command = 'history.period' ORDER BY id")
    assert [(r["role"], r["outcome"]) for r in rows][-3:] == [
        ("viewer", "ok"), ("viewer", "invalid"), ("field_unit", "forbidden")]


async def test_ecc_token_create_checks_its_options_and_rotate_switches_without_a_gap(
        servers: Any, database_url: str, store: Store) -> None:
    """`ecc token create` wants --kinds for an adapter, an agency of the catalogue and a
    real duration (exit 2 with what to write); a dispatcher's --ttl 8h ends in 8 h;
    `ecc token rotate --grace 0s` prints a new working token and ends the old one."""
    import json
    import os
    import subprocess
    import sys
    from datetime import timedelta

    env = {**os.environ, "NATS_URL": servers.nats_url, "DATABASE_URL": database_url}

    def ecc(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "ecc.cli", "token", *argv], env=env,
                              capture_output=True, text=True, timeout=60)

    async def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(ecc, *argv)

    no_kinds = await run("create", "--role", "adapter", "--name", "119 platform")
    assert no_kinds.returncode == 2 and "needs --kinds" in no_kinds.stderr
    moon = await run("create", "--role", "dispatcher", "--name", "d", "--agency", "moonbase")
    assert moon.returncode == 2 and "not an agency of the catalogue" in moon.stderr
    assert "fire" in moon.stderr
    forever = await run("create", "--role", "viewer", "--name", "v", "--ttl", "forever")
    assert forever.returncode == 2 and "90s, 10m, 8h, 30d or 2w" in forever.stderr
    assert await store.pool.fetchval("SELECT count(*) FROM tokens") == 0
    made = await run("create", "--role", "dispatcher", "--name", "fire desk", "--agency",
                     "fire", "--ttl", "8h")
    assert made.returncode == 0, made.stderr
    first = json.loads(made.stdout)
    left = await store.pool.fetchval("SELECT expires_at - now() FROM tokens")
    assert timedelta(hours=7, minutes=59) < left <= timedelta(hours=8)
    feed = await run("create", "--role", "adapter", "--name", "cad", "--kinds", "eido")
    assert feed.returncode == 0 and json.loads(feed.stdout)["kinds"] == ["eido"]
    rotated = await run("rotate", "--name", "fire desk", "--grace", "0s")
    assert rotated.returncode == 0, rotated.stderr
    second = json.loads(rotated.stdout)
    assert second["token"] != first["token"] and second["old_tokens"] == 1
    assert (second["role"], second["agency"]) == ("dispatcher", "fire")
    assert await store.principal(first["token"]) is None
    assert await store.principal(second["token"]) is not None
    nobody = await run("rotate", "--name", "nobody")
    assert nobody.returncode == 2 and "no live token" in nobody.stderr


async def test_an_open_console_is_closed_when_its_token_ends_and_rotation_has_no_gap(
        service: Service, store: Store) -> None:
    """A rotation with a grace keeps the old token's console open and lets the new token
    in; once the old token ends, its open console is closed as on revocation."""
    from datetime import timedelta

    token = await new_token(store, "dispatcher")
    name = (await store.principal(token)).name  # type: ignore[union-attr]
    async with open_console(service.console_url, token) as old:
        await joined(old)
        rotated = await store.rotate_token(name, f"new-{uuid.uuid4().hex}",
                                           grace=timedelta(minutes=10))
        assert rotated is not None
        new_value = f"new2-{uuid.uuid4().hex}"
        await store.rotate_token(name, new_value, grace=timedelta(minutes=10))
        async with open_console(service.console_url, new_value) as new:
            await joined(new)
            ping = await old.command("incident.verify", "no-such")
            assert ping.code == "not_found"  # the old console still works in the grace
            await store.pool.execute(  # the grace runs out (as ten minutes later)
                "UPDATE tokens SET expires_at = now() WHERE token_hash = $1",
                hash_token(token))
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    msg = await asyncio.wait_for(old.receive(), 15)
                    if isinstance(msg, Error):
                        assert msg.code == "revoked" and "ended" in msg.message
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == CLOSE_UNAUTHORIZED
            assert (await new.command("incident.verify", "no-such")).code == "not_found"


async def test_a_command_repeated_with_its_request_id_is_applied_once(
        service: Service, store: Store, js: Any, ns: Namespace) -> None:
    """The same note sent four times with one request id makes one note; all four answers
    are ok with the same result; a second console on the same token repeating it changes
    nothing either, the request id reused for another command is refused, and another
    token's same request id is its own command."""
    token = await new_token(store, "dispatcher")
    target = await incident(store, js, ns)
    incident_id = target["incident_id"]

    async def notes() -> int:
        return int(await store.pool.fetchval(
            "SELECT count(*) FROM events WHERE stream_id = $1 AND type = "
            "'incident.note_added'", f"incident:{incident_id}"))

    async with open_console(service.console_url, token) as console:
        await joined(console)
        answers = [await console.command("incident.add_note", incident_id,
                                         request_id="note-1", text="gate locked")
                   for _ in range(4)]
        assert all(a.ok for a in answers), answers
        assert len({a.model_dump_json() for a in answers}) == 1
        other = await console.command("incident.add_note", incident_id, request_id="note-1",
                                      text="something else")
        assert other.code == "invalid" and "new request id" in (other.message or "")
    async with open_console(service.console_url, token) as again, \
            open_console(service.console_url, token) as twin:
        await joined(again)
        await joined(twin)
        later = await again.command("incident.add_note", incident_id, request_id="note-1",
                                    text="gate locked")
        assert later == answers[0]
        raced = await asyncio.gather(*(c.command("incident.add_note", incident_id,
                                                 request_id="note-2", text="raced")
                                       for c in (again, twin)))
        assert raced[0].ok and raced[0] == raced[1], raced
    assert await notes() == 2
    stranger = await new_token(store, "dispatcher")
    async with open_console(service.console_url, stranger) as console:
        await joined(console)
        own = await console.command("incident.add_note", incident_id, request_id="note-1",
                                    text="gate locked")
        assert own.ok and own.data["seqs"] != answers[0].data["seqs"]
    assert await notes() == 3
    outcomes = [r["reason"] for r in await store.pool.fetch(
        "SELECT reason FROM audit_log WHERE command = 'incident.add_note' ORDER BY id")]
    assert outcomes[0] == "" and sum("repeat of this request id" in r for r in outcomes) == 5


async def test_a_call_taken_twice_with_one_request_id_is_one_call(
        service: Service, store: Store) -> None:
    """`call.take` repeated with one request id answers with one call id and makes one
    signal."""
    token = await new_token(store, "call_taker")
    async with open_console(service.console_url, token) as console:
        await joined(console)
        first = await console.command("call.take", request_id="c-1", narrative="smoke",
                                      lat=34.75, lon=113.62)
        again = await console.command("call.take", request_id="c-1", narrative="smoke",
                                      lat=34.75, lon=113.62)
    assert first.ok and again == first

    async def signals() -> int:
        return int(await store.pool.fetchval(
            "SELECT count(*) FROM events WHERE type = 'signal.received' AND data->>'signal_id' "
            "= $1", first.data["signal_id"]))

    assert await eventually(signals) == 1
    assert await store.pool.fetchval("SELECT count(*) FROM events WHERE type = "
                                     "'signal.received'") == 1


async def test_a_dispatcher_changes_only_incidents_its_agency_works_on(
        service: Service, store: Store, js: Any, ns: Namespace) -> None:
    """A police dispatcher re-grades a fire (police hold its cordon) but not a medical call
    (health and fire only), nor merges it; a note is still anyone's; a police-bound
    supervisor acts everywhere; a refusal changes nothing and is audited."""
    police = await new_token(store, "dispatcher", agency="police")
    chief = await new_token(store, "supervisor", agency="police")
    fire = await incident(store, js, ns, category="fire")
    medical = await incident(store, js, ns, category="medical")
    async with open_console(service.console_url, police) as console:
        await joined(console)
        ok = await console.command("incident.set_priority", fire["incident_id"], priority=1,
                                   reason="people trapped")
        assert ok.ok, ok.message
        before = await store.head()
        refused = await console.command("incident.set_priority", medical["incident_id"],
                                        priority=1, reason="x")
        assert refused.code == "forbidden", refused
        assert "fire, health" in (refused.message or "") and "not police" in refused.message
        merged = await console.command("incident.merge", medical["incident_id"],
                                       into=fire["incident_id"])
        assert merged.code == "forbidden"
        assert await store.head() == before
        noted = await console.command("incident.add_note", medical["incident_id"],
                                      text="patrol saw the patient collapse")
        assert noted.ok
    async with open_console(service.console_url, chief) as console:
        await joined(console)
        regraded = await console.command("incident.set_priority", medical["incident_id"],
                                         priority=1, reason="not breathing")
        assert regraded.ok, regraded.message
    assert await store.pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE outcome = 'forbidden' AND agency = 'police'"
    ) == 2
