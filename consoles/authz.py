"""Core: who may do what, in one table.

Every console command is authorised here and nowhere else: ``TABLE`` maps each
command to the roles that may send it and the scope they have. A role missing
from a command's row may not send it. ``agency`` scope means a principal bound
to an agency (a fire dispatcher) acts only on what belongs to that agency (the
task's agency); a principal with no agency acts on all. :func:`authorize` is
pure; :class:`consoles.commands.ConsoleCommands` asks it (for the role, before
any lookup; then, for a task command, with the task's agency) before anything
runs, and writes its answer, either way, to the audit log.

Personal data of callers (name, phone) is shown only to :data:`SEES_CALLERS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Role = Literal["viewer", "call_taker", "dispatcher", "supervisor", "admin", "field_unit",
               "adapter"]
ROLES: tuple[Role, ...] = ("viewer", "call_taker", "dispatcher", "supervisor", "admin",
                           "field_unit", "adapter")
Scope = Literal["any", "agency"]

# Roles that may open a console at all (an adapter token is for the HTTP ingress).
CONSOLE_ROLES: frozenset[str] = frozenset(ROLES) - {"adapter"}
# Roles that see callers' names and numbers (they call back, they brief crews).
SEES_CALLERS: frozenset[str] = frozenset({"call_taker", "dispatcher", "supervisor", "admin"})

_ALL: dict[Role, Scope] = {"dispatcher": "any", "supervisor": "any", "admin": "any"}
_DESK: dict[Role, Scope] = {"call_taker": "any", **_ALL}
_SENIOR: dict[Role, Scope] = {"supervisor": "any", "admin": "any"}
_TASKS: dict[Role, Scope] = {"dispatcher": "agency", "supervisor": "any", "admin": "any"}

TABLE: dict[str, dict[Role, Scope]] = {
    # taking calls: the call taker's job, and anyone's at a desk in a surge
    "call.take": _DESK,
    "incident.add_note": _DESK,
    "incident.verify": _DESK,
    # shaping the picture
    "incident.reclassify": _ALL,
    "incident.set_priority": _ALL,
    "incident.escalate": {"call_taker": "any", **_ALL},
    "incident.detach_signal": _ALL,
    "incident.link": _ALL,
    "incident.merge": _ALL,
    "incident.undo_merge": _ALL,
    "incident.split": _ALL,
    # units: a dispatcher bound to an agency sends only that agency's units
    "task.dispatch": _TASKS,
    "task.reassign": _TASKS,
    "task.cancel": _TASKS,
    # ending an incident
    "incident.control": _ALL,
    "incident.resolve": _ALL,
    "incident.cancel": _ALL,
    "incident.close": _SENIOR,
    "incident.reopen": _SENIOR,
    # speaking to the public
    "incident.warn": _SENIOR,
    "incident.end_warning": _SENIOR,
    # the desk's alerts (a held retraction, an acknowledged input that was lost)
    "alert.close": _SENIOR,
}
COMMANDS: tuple[str, ...] = tuple(TABLE)

# Queries that read more than the live picture, by the same rule. ``incident.detail`` is
# any console's (it opened on the live picture); playback of a period is for the desks
# and those who review them, not for a crew's field console.
QUERIES: dict[str, dict[Role, Scope]] = {
    "history.period": {"viewer": "any", **_DESK},
}


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str  # why not, in words a person can act on; "" when allowed


def authorize(role: str, agency: str | None, command: str,
              target_agency: str | None = None) -> Decision:
    """May a principal of ``role`` (bound to ``agency``, or not) send ``command`` about
    something of ``target_agency`` (a task's agency; None for incident-wide commands)?"""
    row = TABLE.get(command) or QUERIES.get(command)
    if row is None:
        return Decision(False, f"there is no command {command!r}")
    scope = row.get(role)  # type: ignore[call-overload]
    if scope is None:
        who = " or ".join(f"{_article(r)} {r}" for r in sorted(row))
        return Decision(False, f"{_article(role)} {role} may not "
                               f"{command.replace('.', ' ').replace('_', ' ')}; ask {who}")
    if scope == "agency" and agency is not None and target_agency is not None \
            and target_agency != agency:
        return Decision(False, f"this task belongs to {target_agency}; a {agency} {role} "
                               f"dispatches only {agency} units — ask the {target_agency} desk "
                               "or a supervisor")
    return Decision(True, "")


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def allowed_commands(role: str, agency: str | None) -> list[str]:
    """What a console of this role may offer (agency-scoped ones included: they are
    checked per task)."""
    return [c for c in COMMANDS if role in TABLE[c]]
