"""Shell: the commands at the borders. ``ecc signal send`` (publish one signal, for
trying things out), ``ecc replay FILE`` (real call records through the hotline
adapter), ``ecc cap check FILE...`` (what ECC understands of CAP alerts, non-zero if
any is refused) and ``ecc eido export ID`` (an incident as a NENA EIDO document)."""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

from command import bus
from command.model import Signal, SignalAck
from command.settings import Settings
from command.store import Store
from command.subjects import Namespace
from ecc.cli import files
from ecc.cli.endpoints import server_urls
from ecc.cli.errors import CliError
from workflows.geo import Location

__all__ = ["COMMANDS", "add_parsers", "signal_from_args"]


async def cmd_eido(settings: Settings, args: argparse.Namespace) -> None:
    """`ecc eido export ID`: the incident as a NENA EIDO document (adapters/eido.py)."""
    from adapters.eido_export import export

    agency = args.agency or settings.cap_sender.rpartition("@")[2]
    catalogue = files.catalogue(settings)
    _, database_url = server_urls(settings)
    store = await Store.connect(database_url, min_size=1, max_size=1)
    try:
        doc = await export(store, args.incident_id, agency=agency, now=datetime.now(UTC),
                           callers=not args.without_callers, catalogue=catalogue)
    finally:
        await store.close()
    if doc is None:
        raise CliError(f"no incident {args.incident_id}")
    text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    try:
        if args.out:
            Path(args.out).write_text(text, encoding="utf-8")
        else:
            sys.stdout.write(text)
    except OSError as exc:
        raise CliError(f"cannot write {args.out}: {exc.strerror}") from exc



def signal_from_args(args: argparse.Namespace) -> Signal:
    if args.json is not None:
        raw = sys.stdin.read() if args.json == "-" else Path(args.json).read_text()
        return Signal.model_validate_json(raw)
    return Signal(
        signal_id=args.signal_id or f"cli-{uuid.uuid4()}",
        source=args.source,
        category=args.category,
        location=Location(lat=args.lat, lon=args.lon, address=args.address),
        observed_at=datetime.now(UTC),
        summary=args.summary,
        confidence=args.confidence,
    )


async def cmd_signal_send(settings: Settings, args: argparse.Namespace) -> None:
    from pydantic import ValidationError

    try:
        sig = signal_from_args(args)
    except ValidationError as exc:
        raise CliError(f"not a valid signal: {exc}") from exc
    nats_url, _ = server_urls(settings)
    ns = Namespace(settings.namespace)
    nc = await bus.connect(nats_url, name="ecc-cli")
    try:
        ack = await nc.jetstream().publish(
            ns.signal(sig.source, sig.category), sig.model_dump_json().encode(),
            headers={"Nats-Msg-Id": f"{sig.source}:{sig.signal_id}"},
        )
    finally:
        await nc.close()
    print(SignalAck(signal_id=sig.signal_id, stream=ack.stream, seq=ack.seq,
                    duplicate=bool(ack.duplicate)).model_dump_json())



async def cmd_replay(settings: Settings, args: argparse.Namespace) -> None:
    from adapters.hotline import read_csv
    from adapters.replay import replay

    try:
        text = Path(args.file).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise CliError(f"cannot read {args.file}: {exc.strerror}") from exc
    nats_url, _ = server_urls(settings)
    nc = await bus.connect(nats_url, name="ecc-replay")
    try:
        stats = await replay(nc.jetstream(), Namespace(settings.namespace), read_csv(text),
                             catalogue=files.catalogue(settings), speed=args.speed,
                             limit=args.limit)
    finally:
        await nc.close()
    print(json.dumps({"published": stats.published, "duplicates": stats.duplicates}))


# --- ecc cap check --------------------------------------------------------------------


def _read_bounded(path: Path, limit: int) -> bytes:
    """The file's bytes, never more than ``limit`` + 1 of them in memory: a file over the
    limit (by its size, or by what it yields: a pipe, a growing file) is refused with
    CapRejected before it is read whole."""
    from adapters.cap import CapRejected

    size = path.stat().st_size
    if size > limit:
        raise CapRejected(f"the alert is {size} bytes; the limit is {limit}", "oversized")
    with path.open("rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise CapRejected(f"the alert is over {limit} bytes; the limit is {limit}", "oversized")
    return data


async def cmd_cap_check(settings: Settings, args: argparse.Namespace) -> None:
    from adapters.cap import MAX_ALERT_BYTES, CapRejected, parse_cap, understand

    # the city's area and CAP senders, as `ecc up` would judge the alerts
    config = files.adapters(settings, files.catalogue(settings), ("cap",))
    refused = 0
    for name in args.files:
        try:
            data = _read_bounded(Path(name), MAX_ALERT_BYTES)
            alert = parse_cap(data, config.cap_trust, config.area)
        except OSError as exc:
            print(f"{name}: cannot read: {exc.strerror}")
            refused += 1
            continue
        except CapRejected as exc:
            print(f"{name}: REFUSED: {exc.reason}")
            refused += 1
            continue
        lines = understand(alert)
        print(f"{name}: {lines[0]}")
        for line in lines[1:]:
            print(line)
    if refused:
        raise CliError(f"{refused} of {len(args.files)} files refused")



def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sig = sub.add_parser("signal", help="signals").add_subparsers(dest="signal_command",
                                                                  required=True)
    send = sig.add_parser("send", help="publish one signal")
    send.add_argument("--source", default="hotline")
    send.add_argument("--category", default="fire")
    send.add_argument("--lat", type=float, default=34.7466)
    send.add_argument("--lon", type=float, default=113.6254)
    send.add_argument("--address", default=None)
    send.add_argument("--summary", default="")
    send.add_argument("--confidence", type=float, default=0.5)
    send.add_argument("--signal-id", default=None)
    send.add_argument("--json", default=None, help="a Signal as JSON: a file, or - for stdin")
    rep = sub.add_parser("replay", help="replay real call records (Montgomery 911, SF Fire)")
    rep.add_argument("file")
    rep.add_argument("--speed", type=float, default=60.0,
                     help="how many times faster than real time (0: as fast as possible)")
    rep.add_argument("--limit", type=int, default=None)
    capp = sub.add_parser("cap", help="CAP alerts").add_subparsers(dest="cap_command",
                                                                   required=True)
    capcheck = capp.add_parser("check", help="say what ECC understands of CAP files")
    capcheck.add_argument("files", nargs="+")
    eidop = sub.add_parser("eido", help="NENA EIDO: incidents for other agencies' CADs")
    eidop.add_argument("eido_command", choices=("export",))
    eidop.add_argument("incident_id")
    eidop.add_argument("--out", default=None, help="write to this file, not stdout")
    eidop.add_argument("--agency", default=None, help="this centre's agency id (default: the "
                                                      "domain of ECC_CAP_SENDER)")
    eidop.add_argument("--without-callers", action="store_true",
                       help="leave out callers' names and numbers (personal data)")


COMMANDS = {
    ("signal", "send"): cmd_signal_send,
    ("replay", None): cmd_replay,
    ("cap", "check"): cmd_cap_check,
    ("eido", None): cmd_eido,
}
