"""The actions a state offers are exactly the commands the decider does not refuse for
the state's sake (status, signals, a standing warning)."""

from __future__ import annotations

from tests.workflows.test_incident import at, report, run
from workflows import incident as inc
from workflows.actions import incident_actions, task_actions
from workflows.catalogue import Catalogue
from workflows.incident import Incident
from workflows.messages import Rejected


def test_a_reported_incident_offers_its_status_row_and_no_more(catalogue: Catalogue) -> None:
    """A new incident with one signal: verify yes; split, detach, end warning, close no."""
    state: Incident = run(None, report(), catalogue)[0]
    offered = incident_actions(state)
    assert {"incident.verify", "incident.merge_into", "incident.warn",
            "incident.add_note"} <= offered
    assert not offered & {"incident.split", "incident.detach_signal", "incident.end_warning",
                          "incident.close", "incident.reopen", "incident.undo_merge"}


def test_each_offered_command_passes_the_status_check(catalogue: Catalogue) -> None:
    """Every offered command is in the transition table's row for the state's status."""
    state: Incident = run(None, report(), catalogue)[0]
    state = run(state, inc.VerifyIncident(at=at(10), by="desk 3"), catalogue)[0]
    for name in incident_actions(state):
        assert state.status in inc.ALLOWED[name], name
    for task in state.tasks:
        assert task_actions(state, task) == {"task.offer", "task.cancel"}, task.status


def test_a_standing_warning_offers_its_end(catalogue: Catalogue) -> None:
    """End warning is offered exactly while a warning stands, and then it is not refused."""
    state: Incident = run(None, report(), catalogue)[0]
    warned = run(state, inc.IssueWarning(at=at(5), by="sup", headline="Smoke",
                                         instruction="Shut windows", radius_m=500), catalogue)[0]
    assert "incident.end_warning" in incident_actions(warned)
    inc.decide(warned, inc.EndWarning(at=at(6), by="sup", reason="out"), catalogue)
    try:
        inc.decide(state, inc.EndWarning(at=at(6), by="sup", reason="out"), catalogue)
    except Rejected:
        pass
    else:
        raise AssertionError("ending no warning should be refused")
