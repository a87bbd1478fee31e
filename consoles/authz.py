"""Core: who may do what, in one table.

Every console command is authorised here and nowhere else: ``TABLE`` (derived from
the command registry, consoles/registry.py) maps each command to the roles that may
send it and the scope they have. A role missing
from a command's row may not send it. Scopes, for a principal bound to an agency
(a fire dispatcher; a principal with no agency, a city-wide desk, acts on all):

* ``any``: everywhere;
* ``agency``: only what belongs to that agency (a task of that agency's);
* ``incident``: only incidents that agency works on: where it has a task, or whose
  type's response plans (the catalogue) call on it. A police dispatcher may re-grade
  a fire where police hold the cordon, not a fire police have nothing to do with;
  supervisors and admins act everywhere, as a watch commander does.

:func:`authorize` is pure; :class:`consoles.commands.ConsoleCommands` asks it (for
the role, before any lookup; then with the task's agency, or the agencies the
incident involves) before anything runs, and writes its answer, either way, to the
audit log.

Personal data of callers (name, phone) is shown only to :data:`SEES_CALLERS`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from consoles.registry import COMMANDS, TABLE, Role, Scope

__all__ = ["COMMANDS", "CONSOLE_ROLES", "QUERIES", "ROLES", "SEES_CALLERS", "TABLE", "Decision",
           "Role", "Scope", "allowed_commands", "authorize", "scope_of"]

ROLES: tuple[Role, ...] = ("viewer", "call_taker", "dispatcher", "supervisor", "admin",
                           "field_unit", "adapter")

# Roles that may open a console at all (an adapter token is for the HTTP ingress).
CONSOLE_ROLES: frozenset[str] = frozenset(ROLES) - {"adapter"}
# Roles that see callers' names and numbers (they call back, they brief crews).
SEES_CALLERS: frozenset[str] = frozenset({"call_taker", "dispatcher", "supervisor", "admin"})

# Who may send each command, and with what scope: the registry's rows (consoles/registry.py).
_DESK: dict[Role, Scope] = {"call_taker": "any", "dispatcher": "any", "supervisor": "any",
                            "admin": "any"}

# Queries that read more than the live picture, by the same rule. ``incident.detail`` is
# any console's (it opened on the live picture); playback of a period is for the desks
# and those who review them, not for a crew's field console.
QUERIES: dict[str, Mapping[Role, Scope]] = {
    "history.period": {"viewer": "any", **_DESK},
}


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str  # why not, in words a person can act on; "" when allowed


def authorize(role: str, agency: str | None, command: str,
              target_agency: str | None = None,
              involved: Collection[str] | None = None) -> Decision:
    """May a principal of ``role`` (bound to ``agency``, or not) send ``command`` about
    something of ``target_agency`` (a task's agency), on an incident that ``involved``
    these agencies (its tasks' and its type's plans'; for a command on two incidents,
    those both involve)? None for either: not known yet (the role alone is judged)."""
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
    if scope == "incident" and agency is not None and involved is not None \
            and agency not in involved:
        them = ", ".join(sorted(involved))
        desk = f"the {them} desk" if len(involved) == 1 else "a desk of " + them \
            if involved else "a city-wide desk"
        return Decision(False, f"this incident involves {them or 'no agency yet'}, not "
                               f"{agency}; a {agency} {role} changes incidents where {agency} "
                               f"has a task or is in the type's plan — ask {desk} or a "
                               "supervisor")
    return Decision(True, "")


def scope_of(role: str, command: str) -> Scope | None:
    """The scope ``role`` has for ``command`` (None: it may not send it)."""
    row = TABLE.get(command) or QUERIES.get(command) or {}
    return row.get(role)  # type: ignore[call-overload, no-any-return]


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def allowed_commands(role: str, agency: str | None) -> list[str]:
    """What a console of this role may offer (agency-scoped ones included: they are
    checked per task)."""
    return [c for c in COMMANDS if role in TABLE[c]]
