"""Shell: desk alerts raised from dead letters that mean something acknowledged was lost.

Most dead letters are refusals the sender heard about (a 400 at the ingress) or
garbage from a device. Three are not: an input ECC had acknowledged and could then not
use (``data_error``: the database refused its content; ``gave_up``: handling failed on
every try) and a second copy of a CAP alert that differs from the first
(``cap_conflict``). Each of those raises a desk alert (workflows/alert.py) for the
supervisors, who see it on top of their console until one of them acknowledges it.

A durable consumer on DEADLETTER; the alert's id is the dead letter's stream sequence,
so a redelivery raises nothing new.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from nats.aio.msg import Msg

from command.bus import ConsumerSpec
from command.engine import Engine, Meta, UnitOfWork, utc_now
from command.subjects import Namespace
from workflows.alert import AlertKind, RaiseAlert

log = structlog.get_logger("ecc.alerts")

CONSUMER = "desk-alerts"

# The dead letters that raise an alert, and the alert's title.
# (The message itself is not copied into the alert: it may hold a caller's name and
# number, and alerts reach every console.)
ALERTING: dict[str, tuple[AlertKind, str]] = {
    "data_error": ("data_error", "A {source} message ECC had accepted could not be stored"),
    "gave_up": ("gave_up", "A {source} message ECC had accepted failed on every try"),
    "cap_conflict": ("cap_conflict", "Two different copies of one CAP alert arrived"),
}


@dataclass(frozen=True)
class _Letter:
    alert: RaiseAlert | None


class DeadLetterAlerts:
    """The consumer that turns alerting dead letters into desk alerts."""

    def __init__(self, engine: Engine, ns: Namespace) -> None:
        self.engine = engine
        self.ns = ns

    def spec(self) -> ConsumerSpec:
        return ConsumerSpec(stream=self.ns.stream("DEADLETTER"), durable=CONSUMER,
                            subject=self.ns.deadletters)

    def source_of(self, msg: Msg) -> str:
        return "desk_alerts"

    def decode(self, msg: Msg) -> _Letter:
        headers = msg.headers or {}
        code = headers.get("Ecc-Reason-Code", "")
        if code not in ALERTING:
            return _Letter(None)
        kind, title = ALERTING[code]
        source = msg.subject.rpartition(".")[2]
        seq = msg.metadata.sequence.stream if msg.reply else 0
        reason = headers.get("Ecc-Reason", "")
        original = headers.get("Ecc-Original-Subject", "")
        detail = (f"{reason[:1500]}. The original is kept as dead letter {seq} of "
                  f"{self.ns.stream('DEADLETTER')} (subject {original}): read it, then act "
                  "on what it held by hand (take the call again, or ask the sender).")
        return _Letter(RaiseAlert(
            at=utc_now(), by="system", alert_id=f"deadletter-{seq}", kind=kind,
            title=title.format(source=source), detail=detail,
            data={"code": code, "source": source, "deadletter_seq": seq,
                  "original_subject": original[:200],
                  "original_stream": headers.get("Ecc-Original-Stream", ""),
                  "original_seq": headers.get("Ecc-Original-Seq", "")}))

    async def handle(self, items: list[_Letter]) -> None:
        raised = [i.alert for i in items if i.alert is not None]
        if not raised:
            return

        async def work(uow: UnitOfWork) -> None:
            for alert in raised:
                await uow.run_alert(alert.alert_id, alert,
                                    Meta(actor="system", correlation_id=alert.alert_id))

        await self.engine.transact(work)
        for alert in raised:
            log.warning("alert.raised", alert_id=alert.alert_id, kind=alert.kind,
                        source=alert.data.get("source"))
