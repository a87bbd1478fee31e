"""The authorisation table, checked cell by cell (pure: no servers)."""

from __future__ import annotations

import pytest

from consoles.authz import COMMANDS, CONSOLE_ROLES, ROLES, SEES_CALLERS, TABLE, authorize
from consoles.commands import ARGS


def test_every_command_has_args_and_a_row() -> None:
    assert set(ARGS) == set(TABLE) == set(COMMANDS)


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
