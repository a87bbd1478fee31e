"""Core: which commands an incident's state takes now, from the transition table.

A console shows the buttons these name (filtered by what its role may send, which the
gateway tells it too), so the rules live once, here and in :data:`ALLOWED`, instead of
being copied into the page. A command listed here may still be refused for what only
its arguments say (a unit that already declined, a category the incident already has):
the decider has the last word.

Pure: no I/O.
"""

from __future__ import annotations

from workflows.incident import ALLOWED, TASK_ALLOWED, Incident, Task

__all__ = ["incident_actions", "task_actions"]

# Besides the status, a few rules the state alone decides (the decider checks them too).
_NEEDS_TWO_SIGNALS = frozenset({"incident.split", "incident.detach_signal"})
_NEEDS_WARNING = frozenset({"incident.end_warning"})


def incident_actions(state: Incident) -> frozenset[str]:
    """The core command types (incident-wide, not task commands) ``state`` takes now."""
    found = set()
    for name, statuses in ALLOWED.items():
        if name in TASK_ALLOWED or state.status not in statuses:
            continue
        if name in _NEEDS_TWO_SIGNALS and len(state.signals) < 2:
            continue
        if name in _NEEDS_WARNING and not state.warning_active:
            continue
        found.add(name)
    return frozenset(found)


def task_actions(state: Incident, task: Task) -> frozenset[str]:
    """The task command types ``task`` of ``state`` takes now."""
    return frozenset(name for name, statuses in TASK_ALLOWED.items()
                     if task.status in statuses and state.status in ALLOWED[name])
