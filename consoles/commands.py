# size: each command's args, table and handler until one registry (issue 14, part 6)
"""Shell: what a console may ask of ECC, checked, run and written to the audit log.

:class:`ConsoleCommands` takes a :class:`consoles.protocol.CommandRequest` from an
authenticated principal, validates its ``args`` (one pydantic model per command,
below), asks :func:`consoles.authz.authorize` (with the task's agency for task
commands), runs the core commands through the engine in one transaction and
writes the audit row in that same transaction: a command that took effect is
always in the audit log, and a refusal is written too, on its own.

Commands are idempotent by request id, per token: the answer to a command that took
effect is kept (``command_results``, in the command's own transaction; a day), and the
same ``request_id`` sent again on the same token gets that first answer and changes
nothing (a ``call.take`` repeated publishes the same call id, which the broker and the
intake drop). A request id reused for a different command is refused as invalid. Refused
and rejected commands changed nothing and are not kept: a repeat is judged afresh.

Queries (``incident.detail``) read the incident's timeline, its signals (callers'
personal data masked for roles that do not need it) and the dispatcher's
recommendations. ``history.period`` reads a period of the past for playback (folded
by :mod:`consoles.playback`), in a read-only transaction.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from nats.js import JetStreamContext
from pydantic import ValidationError

from adapters.hotline import CallRecord, to_signal
from command.engine import Engine, Meta, UnitOfWork, utc_now
from command.intake import apply_retraction, retraction_plan
from command.model import RecordedEvent, Reporter, Retraction, describe_errors
from command.store import Principal, Tx
from command.subjects import Namespace
from consoles.authz import SEES_CALLERS, authorize, scope_of
from consoles.playback import MAX_EVENTS, MAX_SPAN, Period, period_events, picture_at, states_at
from consoles.protocol import CommandRequest, QueryRequest, Result, in_timeline
from consoles.registry import (
    ARGS,
    DESK_WIDE,
    SPECS,
    Args,
    CancelTask,
    CloseAlertArgs,
    Dispatch,
    Link,
    Merge,
    Split,
    TakeCall,
)
from consoles.views import console_view
from workflows import incident as inc
from workflows.alert import CloseAlert
from workflows.geo import Location
from workflows.messages import Rejected

log = structlog.get_logger("ecc.console_commands")

Work = Callable[[UnitOfWork], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Caller:
    """Who sends the command, for authorisation and the audit log."""

    principal: Principal
    peer: str | None


class _Twin(Exception):
    """A twin of this request (same token, same request id) committed first."""


class _Refused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# The registry's commands with no single core command (``build=None``), by the method
# that makes their work; call.take and alert.close are run before them, in run().
SPECIAL_WORK: dict[str, str] = {
    "incident.link": "_link", "incident.merge": "_merge",
    "incident.undo_merge": "_undo_merge", "incident.split": "_split",
}
# Rows a history.period reads after its start: the shown events and the timer events
# between them (which change the views it sends); past this, the period is truncated.
_PERIOD_ROWS = 4 * MAX_EVENTS
BEFORE_WORK = frozenset({"call.take", "alert.close"})
# Units' tracks a query returns: at most this many points a unit (thinned evenly in time,
# command/store/tracks.py), in a period of history.period or since a task's offer.
TRACK_POINTS = 200
# Task statuses whose unit is still on the task: its track runs up to now.
_MANNED = frozenset({"offered", "accepted", "en_route", "on_scene"})


class ConsoleCommands:
    def __init__(self, engine: Engine, js: JetStreamContext, ns: Namespace) -> None:
        self.engine = engine
        self.store = engine.store
        self.js = js
        self.ns = ns

    # --- commands -------------------------------------------------------------------

    async def run(self, caller: Caller, req: CommandRequest) -> Result:
        p = caller.principal
        bound = log.bind(actor=p.name, role=p.role, command=req.name,
                         incident_id=req.incident_id, request_id=req.request_id)
        args_json = _safe_json(req.args)
        fingerprint = _fingerprint(req)
        if p.key:
            kept = await self.store.recall_result(p.key, req.request_id)
            if kept is not None:
                return await self._repeat(caller, req, args_json, fingerprint, kept)
        try:
            model = ARGS.get(req.name)
            if model is None:
                raise _Refused("invalid", f"there is no command {req.name!r}")
            try:
                args = model.model_validate(req.args)
            except ValidationError as exc:
                raise _Refused("invalid", describe_errors(exc)) from exc
            if req.name not in DESK_WIDE and req.incident_id is None:
                raise _Refused("invalid", f"{req.name} needs incident_id")
            decision = authorize(p.role, p.agency, req.name)  # the role, before any lookup
            if decision.allowed:
                target = await self._target_agency(req, args)
                involved = await self._involved(req, args) \
                    if p.agency is not None and scope_of(p.role, req.name) == "incident" \
                    else None
                decision = authorize(p.role, p.agency, req.name, target, involved)
            if not decision.allowed:
                raise _Refused("forbidden", decision.reason)
            if isinstance(args, TakeCall):
                data = await self._take_call(caller, req, args)  # durable once this returns
                taken = Result(request_id=req.request_id, ok=True, data=data)
                try:
                    async with self.store.transaction() as tx:
                        await _insert_audit(tx, caller, req, args_json, "ok", "", [])
                        await _keep(tx, p, req, fingerprint, taken)
                except _Twin:
                    raise
                except Exception as exc:  # the call is in the broker: the answer stands
                    log.error("audit.write_failed", command=req.name, outcome="ok",
                              actor=p.name, error=str(exc))
                bound.info("console.command", outcome="ok", call_id=data["call_id"])
                return taken
            work = self._work(caller, req, args)
            done: dict[str, Any] = {}

            async def doing(uow: UnitOfWork) -> dict[str, Any]:
                done.clear()
                done.update(await work(uow))
                return done

            async def audited(tx: Tx, recorded: list[RecordedEvent]) -> None:
                seqs = [r.seq for r in recorded]
                await _insert_audit(tx, caller, req, args_json, "ok", "", seqs)
                await _keep(tx, p, req, fingerprint, Result(
                    request_id=req.request_id, ok=True, data={**done, "seqs": seqs}))

            data, recorded = await self.engine.transact(doing, audited)
        except _Twin:
            kept = await self.store.recall_result(p.key, req.request_id)
            assert kept is not None  # the twin committed it
            return await self._repeat(caller, req, args_json, fingerprint, kept)
        except _Refused as exc:
            await self._audit(caller, req, args_json, exc.code, exc.message, [])
            bound.warning("console.command", outcome=exc.code, reason=exc.message)
            return Result(request_id=req.request_id, ok=False, code=exc.code,
                          message=exc.message)
        except Rejected as exc:
            await self._audit(caller, req, args_json, "rejected", exc.reason, [])
            bound.info("console.command", outcome="rejected", code=exc.code, reason=exc.reason)
            return Result(request_id=req.request_id, ok=False, code="rejected",
                          message=exc.reason, data={"core_code": exc.code})
        except Exception as exc:
            bound.exception("console.command_failed")
            await self._audit(caller, req, args_json, "error", type(exc).__name__, [])
            return Result(request_id=req.request_id, ok=False, code="error",
                          message="ECC could not do that just now and changed nothing; "
                                  "try again, and tell a supervisor if it keeps happening")
        seqs = [r.seq for r in recorded]
        bound.info("console.command", outcome="ok", seqs=seqs)
        return Result(request_id=req.request_id, ok=True, data={**data, "seqs": seqs})

    async def _repeat(self, caller: Caller, req: CommandRequest, args_json: dict[str, Any],
                      fingerprint: bytes, kept: tuple[bytes, dict[str, Any]]) -> Result:
        """The answer to a request id this token already used: the first answer, or, if it
        was for another command, a refusal."""
        p = caller.principal
        bound = log.bind(actor=p.name, role=p.role, command=req.name,
                         incident_id=req.incident_id, request_id=req.request_id)
        first_fingerprint, first = kept
        if first_fingerprint != fingerprint:
            message = (f"request_id {req.request_id!r} was already used for another command "
                       "on this token; send each command with a new request id")
            await self._audit(caller, req, args_json, "invalid", message, [])
            bound.warning("console.command", outcome="invalid", reason=message)
            return Result(request_id=req.request_id, ok=False, code="invalid",
                          message=message)
        await self._audit(caller, req, args_json, "ok",
                          "a repeat of this request id: answered as the first time, nothing "
                          "done again", [])
        bound.info("console.command_repeated")
        return Result.model_validate(first)

    async def _involved(self, req: CommandRequest, args: Args) -> frozenset[str]:
        """The agencies an incident-wide command's incidents all involve: each incident's
        tasks' agencies and those its type's response plans call on (the catalogue)."""
        ids = [req.incident_id] + ([args.other_id] if isinstance(args, Link) else []) \
            + ([args.into] if isinstance(args, Merge) else [])
        involved: frozenset[str] | None = None
        for incident_id in ids:
            assert incident_id is not None
            found = await self.store.incident_view(incident_id)
            if found is None:
                raise _Refused("not_found", f"no incident {incident_id}")
            view = found[1]
            plans = self.engine.catalogue.plans.get(str(view.get("category")), ())
            mine = frozenset(str(t["agency"]) for t in view.get("tasks", [])) | frozenset(
                spec.agency for plan in plans for spec in plan.tasks)
            involved = mine if involved is None else involved & mine
        return involved or frozenset()

    async def _target_agency(self, req: CommandRequest, args: Args) -> str | None:
        """The agency a task command acts on (for agency-scoped roles)."""
        if not isinstance(args, Dispatch | CancelTask) or req.incident_id is None:
            return None
        found = await self.store.incident_view(req.incident_id)
        if found is None:
            raise _Refused("not_found", f"no incident {req.incident_id}")
        for task in found[1].get("tasks", []):
            if task["task_id"] == args.task_id:
                return str(task["agency"])
        raise _Refused("not_found", f"incident {req.incident_id} has no task {args.task_id}")

    def _work(self, caller: Caller, req: CommandRequest, args: Args) -> Work:
        by = f"{caller.principal.role}:{caller.principal.name}"
        meta = Meta(actor=by, correlation_id=req.request_id)
        if isinstance(args, CloseAlertArgs):
            return _close_alert(args, utc_now(), by, meta)
        incident_id = req.incident_id
        assert incident_id is not None
        now = utc_now()

        def one(command: inc.AnyIncidentCommand) -> Work:
            async def work(uow: UnitOfWork) -> dict[str, Any]:
                await _exists(uow, incident_id)
                await uow.run(incident_id, command, meta)
                return {}
            return work

        a: Any = args
        spec = SPECS[req.name]
        if spec.build is not None:
            return one(spec.build(a, now, by))
        if req.name not in SPECIAL_WORK:
            raise _Refused("invalid", f"there is no command {req.name!r}")
        work: Callable[..., Work] = getattr(self, SPECIAL_WORK[req.name])
        return work(incident_id, a, now, by, meta)

    def _merge(self, source: str, args: Merge, now: Any, by: str, meta: Meta) -> Work:
        target = args.into

        async def work(uow: UnitOfWork) -> dict[str, Any]:
            state = await _exists(uow, source)
            await _exists(uow, target)
            await uow.run(source, inc.MergeInto(at=now, by=by, target_id=target), meta)
            await uow.run(target, inc.AbsorbMerge(at=now, by=by, source_id=source,
                                                  signals=state.signals), meta)
            return {"into": target}
        return work

    def _link(self, one_id: str, args: Link, now: Any, by: str, meta: Meta) -> Work:
        other_id = args.other_id

        async def work(uow: UnitOfWork) -> dict[str, Any]:
            await _exists(uow, one_id)
            await _exists(uow, other_id)
            await uow.run(one_id, inc.LinkIncident(at=now, by=by, other_id=other_id), meta)
            await uow.run(other_id, inc.LinkIncident(at=now, by=by, other_id=one_id), meta)
            return {"linked": other_id}
        return work

    def _undo_merge(self, source: str, args: Args, now: Any, by: str, meta: Meta) -> Work:
        async def work(uow: UnitOfWork) -> dict[str, Any]:
            state = await _exists(uow, source)
            if state.merged_into is None:
                raise Rejected("not_merged", "this incident is not merged into another")
            await uow.run(source, inc.UndoMerge(at=now, by=by), meta)
            await uow.run(state.merged_into, inc.ReleaseMerge(at=now, by=by, source_id=source),
                          meta)
            return {"from": state.merged_into}
        return work

    def _split(self, source: str, args: Split, now: Any, by: str, meta: Meta) -> Work:
        signal_ids = args.signal_ids

        async def work(uow: UnitOfWork) -> dict[str, Any]:
            state = await _exists(uow, source)
            new_id = str(uuid.uuid4())
            await uow.run(source, inc.SplitOff(at=now, by=by, new_incident_id=new_id,
                                               signal_ids=signal_ids), meta)
            refs = {s.signal_id: s for s in state.signals}
            first, *rest = [refs[s] for s in signal_ids]
            await uow.run(new_id, inc.ReportIncident(
                at=now, by=by, incident_id=new_id, signal_id=first.signal_id,
                source=first.source, category=state.category, location=state.location,
                summary=f"split from {source}: {state.summary}"[:2000],
                confidence=first.confidence, observed_at=first.observed_at,
                split_from=source), meta, new=True)
            for ref in rest:
                await uow.run(new_id, inc.AttachSignal(
                    at=now, by=by, signal_id=ref.signal_id, source=ref.source,
                    confidence=ref.confidence, observed_at=ref.observed_at,
                    reason=f"split from {source} with {first.signal_id}"), meta)
            return {"new_incident_id": new_id}
        return work

    async def _take_call(self, caller: Caller, req: CommandRequest,
                         args: TakeCall) -> dict[str, Any]:
        """A call taken on the console is a hotline call: classified, fused, durable once
        the broker acks (the console's result says so). Its id comes from the token and the
        request id, so a repeat of the request is the same call, dropped as a duplicate."""
        key = caller.principal.key
        call_id = "console-" + (hashlib.sha256(key + req.request_id.encode()).hexdigest()[:20]
                                if key else uuid.uuid4().hex[:20])
        caller_data = Reporter(name=args.caller_name, phone=args.caller_phone) \
            if args.caller_name or args.caller_phone else None
        record = CallRecord(
            call_id=call_id, platform="console", received_at=utc_now(),
            narrative=args.narrative, caller=caller_data,
            location=Location(lat=args.lat, lon=args.lon, accuracy_m=args.accuracy_m,
                              address=args.address))
        signal = to_signal(record, self.engine.catalogue.hotline)  # as the hotline adapter reads it
        await self.js.publish(self.ns.signal(signal.source, signal.category),
                              signal.model_dump_json().encode(),
                              headers={"Nats-Msg-Id": f"{signal.source}:{signal.signal_id}"})
        return {"call_id": call_id, "signal_id": signal.signal_id,
                "category": signal.category, "priority": signal.priority,
                "rule": signal.details["rule"], "matched": signal.details["matched"],
                "confidence": signal.confidence}

    async def refuse(self, caller: Caller, req: CommandRequest, outcome: str,
                     reason: str) -> None:
        """Audit a command refused before it could be read (the gateway's frame check)."""
        log.warning("console.command", actor=caller.principal.name, command=req.name,
                    request_id=req.request_id, outcome=outcome, reason=reason)
        await self._audit(caller, req, _safe_json(req.args), outcome, reason, [])

    async def _audit(self, caller: Caller, req: CommandRequest, args_json: dict[str, Any],
                     outcome: str, reason: str, seqs: list[int]) -> None:
        """An audit row on its own (refusals, and a call already in the broker): a failure
        to write it is logged loudly, never turned into a false "nothing changed"."""
        p = caller.principal
        await self.store.audit(actor=p.name, role=p.role, agency=p.agency, peer=caller.peer,
                               command=req.name, incident_id=req.incident_id, args=args_json,
                               outcome=outcome, reason=reason, seqs=seqs)

    # --- queries --------------------------------------------------------------------

    async def query(self, caller: Caller, req: QueryRequest) -> Result:
        if req.name == "history.period":
            return await self._history(caller, req)
        if req.incident_id is None:
            return Result(request_id=req.request_id, ok=False, code="invalid",
                          message="incident.detail needs incident_id")
        found = await self.store.incident_view(req.incident_id)
        if found is None:
            return Result(request_id=req.request_id, ok=False, code="not_found",
                          message=f"no incident {req.incident_id}")
        _, view = found
        events = await self.store.read_stream(f"incident:{req.incident_id}")
        timeline = [e.model_dump(mode="json") for e in events if in_timeline(e)]
        sees = caller.principal.role in SEES_CALLERS
        signals = []
        for ref in view.get("signals", []):
            evidence = await self.store.read_stream(f"signal:{ref['source']}-{ref['signal_id']}")
            if not evidence:
                continue
            data = dict(evidence[0].data)
            if data.get("reporter") and not sees:
                data["reporter"] = {"name": "(hidden)" if data["reporter"].get("name") else None,
                                    "phone": "(hidden)" if data["reporter"].get("phone")
                                    else None}
            signals.append(data)
        rows = await self.store.recommendations(req.incident_id)
        tracks = await self._task_tracks(view, events)
        shown = sees and any(s.get("reporter") for s in signals)
        await self._audit(caller, CommandRequest(type="command", request_id=req.request_id,
                                                 name="incident.detail",
                                                 incident_id=req.incident_id),
                          {"callers_shown": shown}, "ok", "", [])
        return Result(request_id=req.request_id, ok=True, data={
            "incident": console_view("incident", view), "timeline": timeline, "signals": signals,
            "recommendations": [{"task_id": task_id, "candidates": candidates}
                                for task_id, candidates in rows],
            "tracks": tracks})

    async def _task_tracks(self, view: dict[str, Any],
                           events: list[RecordedEvent]) -> list[dict[str, Any]]:
        """Each task's unit's track since the task was offered to it (at most a day, and
        ``TRACK_POINTS`` points): up to now while the unit is on it, else to its end."""
        offered: dict[tuple[Any, Any], datetime] = {}
        for e in events:
            if e.type == "task.offered":
                offered[(e.data.get("task_id"), e.data.get("unit_id"))] = e.recorded_at
        now = utc_now()
        found = []
        for task in view.get("tasks", []):
            unit_id = task.get("unit_id")
            since = offered.get((task.get("task_id"), unit_id))
            if unit_id is None or since is None:
                continue
            until = now if task.get("status") in _MANNED else \
                max(since, datetime.fromisoformat(str(task.get("updated_at"))))
            since = max(since, until - MAX_SPAN)
            points = (await self.store.tracks(since, until, TRACK_POINTS, [unit_id])) \
                .get(unit_id, []) if until > since else []
            found.append({"task_id": task["task_id"], "unit_id": unit_id,
                          "from": since.isoformat(), "points": points})
        return found


    async def _history(self, caller: Caller, req: QueryRequest) -> Result:
        """``history.period``: the picture at ``from`` folded from the event store, and the
        console-visible events of (``from``, ``to``], read in one read-only repeatable-read
        transaction (nothing live is touched); audited like ``incident.detail``."""
        p = caller.principal
        as_command = CommandRequest(type="command", request_id=req.request_id,
                                    name=req.name)
        args_json = _safe_json(req.args)
        try:
            try:
                period = Period.model_validate(req.args)
            except ValidationError as exc:
                raise _Refused("invalid", describe_errors(exc).replace(
                    "payload: Value error, ", "")) from exc
            decision = authorize(p.role, p.agency, req.name)
            if not decision.allowed:
                raise _Refused("forbidden", decision.reason)
        except _Refused as exc:
            await self._audit(caller, as_command, args_json, exc.code, exc.message, [])
            log.warning("console.query", actor=p.name, role=p.role, query=req.name,
                        outcome=exc.code, reason=exc.message)
            return Result(request_id=req.request_id, ok=False, code=exc.code,
                          message=exc.message)
        before, during = await self.store.period_events(period.start, period.end,
                                                        _PERIOD_ROWS + 1)
        start = states_at(before, period.start)
        at_start = picture_at(start, period.start)
        events, truncated = period_events(during, MAX_EVENTS, start)
        truncated = truncated or len(during) > _PERIOD_ROWS
        tracks = await self.store.tracks(period.start, period.end, TRACK_POINTS)
        await self._audit(caller, as_command, {**args_json, "events": len(events),
                                               "truncated": truncated}, "ok", "", [])
        log.info("console.query", actor=p.name, role=p.role, query=req.name,
                 outcome="ok", events=len(events), truncated=truncated)
        return Result(request_id=req.request_id, ok=True, data={
            "from": period.start.isoformat(), "to": period.end.isoformat(),
            "at_start": at_start, "events": events, "truncated": truncated,
            "tracks": tracks})


async def audit_connection(store: Any, principal: Principal | None, peer: str | None,
                           what: str, outcome: str, reason: str = "") -> None:
    """A console opening, or being shut out, in the audit log (never raises: a log that is
    away must not keep a console out; the structlog line is still written)."""
    await store.audit(actor=principal.name if principal else "(unknown token)",
                      role=principal.role if principal else "-",
                      agency=principal.agency if principal else None, peer=peer,
                      command=what, outcome=outcome, reason=reason)


def _close_alert(args: CloseAlertArgs, now: Any, by: str, meta: Meta) -> Work:
    """A supervisor closes a desk alert; confirming a held retraction applies it first,
    in the same transaction, in the supervisor's name."""
    async def work(uow: UnitOfWork) -> dict[str, Any]:
        alert = await uow.alert(args.alert_id)
        if alert is None:
            raise _Refused("not_found", f"no alert {args.alert_id}")
        touched: list[str] = []
        if alert.kind == "retraction_held" and args.outcome == "confirmed" \
                and alert.status == "open":
            retraction = Retraction.model_validate(alert.data["retraction"])
            plan = await retraction_plan(uow, retraction)
            touched = await apply_retraction(uow, retraction, plan, now, confirmed_by=by)
        await uow.run_alert(args.alert_id, CloseAlert(at=now, by=by, outcome=args.outcome,
                                                      reason=args.reason), meta)
        return {"alert_id": args.alert_id, "outcome": args.outcome, "incidents": touched}
    return work


async def _exists(uow: UnitOfWork, incident_id: str) -> inc.Incident:
    state = await uow.incident(incident_id)
    if state is None:
        raise _Refused("not_found", f"no incident {incident_id}")
    return state


async def _insert_audit(tx: Tx, caller: Caller, req: CommandRequest,
                        args_json: dict[str, Any], outcome: str, reason: str,
                        seqs: list[int]) -> None:
    p = caller.principal
    await tx.audit(actor=p.name, role=p.role, agency=p.agency, peer=caller.peer,
                   command=req.name, incident_id=req.incident_id, args=args_json,
                   outcome=outcome, reason=reason, seqs=seqs)


async def _keep(tx: Tx, p: Principal, req: CommandRequest, fingerprint: bytes,
                result: Result) -> None:
    """Keep the answer for repeats of this request id (raises :class:`_Twin` when a twin
    committed first, to roll this one back)."""
    if p.key and not await tx.remember_result(p.key, req.request_id, fingerprint,
                                              result.model_dump(mode="json")):
        raise _Twin


def _fingerprint(req: CommandRequest) -> bytes:
    """What a request asks for, to tell a repeat from a request id reused for another."""
    text = json.dumps([req.name, req.incident_id, req.args], sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def _safe_json(args: dict[str, Any]) -> dict[str, Any]:
    """The args as the audit log keeps them: callers' names and numbers are not copied."""
    kept = {k: ("(withheld)" if k in ("caller_phone", "caller_name") and v else v)
            for k, v in args.items()}
    text = json.dumps(kept, default=str)
    return json.loads(text) if len(text) <= 8192 else {"truncated": text[:8000]}
