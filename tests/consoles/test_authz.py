"""The authorisation table, checked cell by cell (pure: no servers)."""

from __future__ import annotations

import pytest

from consoles.authz import (
    COMMANDS,
    CONSOLE_ROLES,
    ROLES,
    SEES_CALLERS,
    TABLE,
    authorize,
    scope_of,
)
from consoles.commands import ARGS, BEFORE_WORK, SPECIAL_WORK, ConsoleCommands
from consoles.registry import DESK_WIDE, REGISTRY, SPECIAL, Spec


def test_every_command_has_args_and_a_row() -> None:
    """The tables are the registry's, one row per command."""
    assert set(ARGS) == set(TABLE) == set(COMMANDS) == {s.name for s in REGISTRY}
    assert len(REGISTRY) == len(COMMANDS)


def test_every_command_without_a_core_builder_has_work_in_the_shell() -> None:
    """A registry row with no builder is one of the shell's special commands, each with a
    method that exists; a row with a builder builds a core command from valid args."""
    assert SPECIAL == set(SPECIAL_WORK) | BEFORE_WORK
    assert all(callable(getattr(ConsoleCommands, m)) for m in SPECIAL_WORK.values())
    for spec in REGISTRY:
        assert spec.incident == (spec.name not in DESK_WIDE)
        if spec.build is not None:
            assert spec.name not in SPECIAL_WORK


@pytest.mark.parametrize("spec", [s for s in REGISTRY if s.build is not None],
                         ids=lambda s: s.name)
def test_each_builder_makes_the_core_command_its_args_describe(spec: Spec) -> None:
    """Each builder turns valid args into a core command the incident core knows (its type is
    in the transition table), carrying the args it was given."""
    from datetime import UTC, datetime

    from workflows.incident import ALLOWED

    sample = {"text": "gate locked", "category": "hazmat", "reason": "chemical smell",
              "priority": 1, "signal_id": "s1", "task_id": "t1", "unit_id": "E11",
              "headline": "Smoke", "instruction": "Keep windows shut", "radius_m": 300}
    fields = {k: v for k, v in sample.items() if k in spec.args.model_fields}
    args = spec.args.model_validate(fields)
    at = datetime(2026, 7, 20, 8, 30, tzinfo=UTC)
    command = spec.build(args, at, "dispatcher:desk 3")  # type: ignore[misc]
    assert command.type in ALLOWED, spec.name
    assert command.at == at and command.by == "dispatcher:desk 3"
    dumped = command.model_dump()
    for key, value in fields.items():
        assert dumped.get(key) == value, (spec.name, key)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("command", COMMANDS)
def test_every_cell(role: str, command: str) -> None:
    """Allowed exactly where the table says; a refusal says who may."""
    decision = authorize(role, None, command, None)
    assert decision.allowed == (role in TABLE[command])
    if not decision.allowed:
        assert "ask a" in decision.reason and role in decision.reason


@pytest.mark.parametrize("command", [c for c in COMMANDS if c.startswith("task.")])
def test_a_dispatcher_of_one_agency_sends_only_its_units(command: str) -> None:
    assert authorize("dispatcher", "fire", command, "fire").allowed
    refused = authorize("dispatcher", "fire", command, "police")
    assert not refused.allowed and "belongs to police" in refused.reason
    assert authorize("dispatcher", None, command, "police").allowed  # a city-wide desk
    assert authorize("supervisor", "fire", command, "police").allowed  # not scoped


def test_the_roles_in_brief() -> None:
    """A viewer and a field unit change nothing; only supervisors speak to the public and
    close; an adapter token opens no console; callers' details are for the desks."""
    assert not [c for c in COMMANDS if authorize("viewer", None, c).allowed]
    assert not [c for c in COMMANDS if authorize("field_unit", None, c).allowed]
    assert {r for r in ROLES if authorize(r, None, "incident.warn").allowed} == {
        "supervisor", "admin"}
    assert "adapter" not in CONSOLE_ROLES
    assert "viewer" not in SEES_CALLERS and "field_unit" not in SEES_CALLERS
    assert not authorize("dispatcher", None, "no.such").allowed


WIDE = [c for c in COMMANDS if TABLE[c].get("dispatcher") == "incident"]


def test_the_incident_wide_commands_are_scoped_and_the_desk_ones_are_not() -> None:
    """Changing an incident's picture or ending it is incident-scoped for a dispatcher;
    taking calls, notes, verifying and asking for help stay anyone's at a desk."""
    assert set(WIDE) == {"incident.reclassify", "incident.set_priority",
                         "incident.detach_signal", "incident.link", "incident.merge",
                         "incident.undo_merge", "incident.split", "incident.control",
                         "incident.resolve", "incident.cancel"}
    for command in ("call.take", "incident.add_note", "incident.verify", "incident.escalate"):
        assert scope_of("dispatcher", command) == "any"
        assert scope_of("call_taker", command) == "any"
        assert authorize("dispatcher", "police", command, None, frozenset({"fire"})).allowed


@pytest.mark.parametrize("command", WIDE)
@pytest.mark.parametrize(("role", "agency", "involved", "allowed"), [
    ("dispatcher", "police", {"fire", "police"}, True),    # police hold the cordon
    ("dispatcher", "police", {"fire"}, False),             # nothing for police to do
    ("dispatcher", "police", set(), False),                # no agency involved yet
    ("dispatcher", None, {"fire"}, True),                  # a city-wide desk
    ("supervisor", "police", {"fire"}, True),              # a watch commander
    ("admin", "police", {"fire"}, True),
    ("call_taker", None, {"fire"}, False),                 # not a call taker's change
    ("viewer", None, {"fire"}, False),
])
def test_every_incident_scope_cell(command: str, role: str, agency: str | None,
                                   involved: set[str], allowed: bool) -> None:
    """Each role, bound or not, on an incident that involves its agency or not; a refusal
    names the agencies involved and whom to ask."""
    decision = authorize(role, agency, command, None, frozenset(involved))
    assert decision.allowed == allowed, decision.reason
    if not allowed and role == "dispatcher":
        assert "not police" in decision.reason and "supervisor" in decision.reason
        assert ("fire" in decision.reason) == bool(involved)


def test_the_scope_is_judged_only_once_the_incident_is_known() -> None:
    """Before the lookup (involved None) the role alone is judged, as for task commands."""
    assert authorize("dispatcher", "police", "incident.set_priority").allowed
    assert not authorize("viewer", "police", "incident.set_priority").allowed
    assert scope_of("viewer", "incident.set_priority") is None
