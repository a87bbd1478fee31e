"""CAP classification: eventCode, then event words, then category, from the catalogue;
msgType, urgency and certainty lower or retract rather than raise."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.cap import alert_key, parse_cap, understand
from adapters.cap_classify import classify, rules_of
from command.settings import builtin_catalogue
from tests.helpers import shared_data
from workflows.catalogue import CatalogueError, parse_catalogue

RULES = rules_of(builtin_catalogue())
CATEGORIES = ["Geo", "Met", "Safety", "Security", "Rescue", "Fire", "Health", "Env",
              "Transport", "Infra", "CBRNE", "Other"]
ALL_CODES = sorted(RULES.codes)


@pytest.mark.parametrize(("event", "code", "category", "expected"), [
    ("Suspicious Person", None, "Security", "crime"),
    ("Suspicious package near the fire station", None, "Safety", "crime"),
    ("Tsunami Warning", None, "Geo", "flood"),
    ("Tsunami Warning", "TSW", "Geo", "flood"),
    ("Flood Warning", "FLW", "Met", "flood"),
    ("Flash Flood Warning", "FFW", "Met", "flood"),
    ("Child Abduction", "CAE", "Rescue", "crime"),
    ("Abducción de Niño", "CAE", "Rescue", "crime"),
    ("Tornado Warning", "TOR", "Met", "other"),
    ("Fire Weather Watch", None, "Met", "other"),
    ("Earthquake", None, "Geo", "structural"),
    ("Homeland Security Advisory System Update", None, "Security", "crime"),
    ("Something nobody listed", None, "Met", "other"),
])
def test_the_issue_examples_hold(event: str, code: str | None, category: str,
                                 expected: str) -> None:
    """A Security alert about a suspicious person is police work; tsunami, flood and
    flash flood warnings are water, never structural; an AMBER alert (CAE) is police."""
    codes = [("SAME", code)] if code else []
    got = classify(RULES, event=event, category=category, codes=codes)
    assert got.category == expected, got.reason


@given(code=st.sampled_from(ALL_CODES), event=st.text(max_size=80),
       category=st.sampled_from(CATEGORIES) | st.text(max_size=10))
def test_an_event_code_a_type_lists_always_decides(code: tuple[str, str], event: str,
                                                   category: str) -> None:
    """The strongest evidence: whatever the event text and category say."""
    scheme, value = code
    got = classify(RULES, event=event, category=category,
                   codes=[("X-OTHER", "nothing"), (scheme.upper(), value.upper())])
    assert (got.category, got.evidence) == (RULES.codes[code], "eventCode")


@given(word=st.sampled_from([w for _, w, _ in RULES.words]),
       category=st.sampled_from(CATEGORIES), pad=st.sampled_from(["", "Severe ", "Local "]))
def test_an_event_word_beats_the_category(word: str, category: str, pad: str) -> None:
    """An event holding a type's word is that type (or a longer word's) whatever its
    category: the category is the weakest evidence."""
    got = classify(RULES, event=f"{pad}{word.title()} Warning", category=category)
    assert got.evidence == "event"
    longest = next(t for p, _, t in RULES.words if p.search(f"{pad}{word} warning".lower()))
    assert got.category == longest


@given(event=st.text(alphabet="xyzq ", max_size=30), category=st.sampled_from(CATEGORIES))
def test_with_nothing_else_the_category_decides_and_nothing_is_refused(
        event: str, category: str) -> None:
    """No code and no word: the category's type; no type at all: other, with the reason."""
    got = classify(RULES, event=event, category=category)
    assert got.category == RULES.categories.get(category, "other")
    assert got.reason
    none = classify(RULES, event=event, category="Nonsense")
    assert (none.category, none.evidence) == ("other", "none") and "other" in none.reason


def test_an_event_code_or_word_claimed_by_two_types_is_refused() -> None:
    """Each code, word and category means one type: the catalogue says which line."""
    base = (Path(__file__).parents[2] / "workflows" / "data" / "catalogue.toml").read_text()
    bad = base.replace('"FRW"] }', '"FRW", "FFW"] }', 1)
    with pytest.raises(CatalogueError, match=r"(?i)eventCode .same ffw. already means type .fire."):
        parse_catalogue(bad)


def real(name: str) -> bytes:
    return shared_data("cap", name).read_bytes()


def test_real_alerts_are_classified_by_their_codes() -> None:
    """The OASIS storm (SAME SVR, CAP 1.0's same=SVR too) is weather ECC has no type for:
    other, by its code; the earthquake is structural by its event."""
    for name in ("v1dot0_appendix_adot2.xml", "v1dot2_appendix_adot2.xml"):
        [storm, *_] = parse_cap(real(name)).signals
        assert storm.category == "other" and "SVR" in storm.details["classified"]
    [quake] = parse_cap(real("v1dot1_appendix_adot3.xml")).signals
    assert quake.category == "structural" and "earthquake" in quake.details["classified"]


def test_urgency_past_lowers_rather_than_raises() -> None:
    """The appendix's earthquake (urgency Past) and its Update: priority 4, confidence
    at most 0.2, the reason in the details; the Update still joins its alert."""
    for name in ("v1dot1_appendix_adot3.xml", "v1dot2_appendix_adot3.xml"):
        alert = parse_cap(real(name))
        [signal] = alert.signals
        assert signal.priority == 4 and signal.confidence <= 0.2
        assert "Past" in signal.details["lowered"]
        assert any("lowered to priority 4" in line for line in understand(alert))
    assert signal.refers_to == (alert_key("trinet@caltech.edu", "TRI13970876.1"),)


def crafted(msg_type: str, certainty: str, urgency: str = "Immediate") -> bytes:
    base = real("v1dot2_appendix_adot2.xml").decode()
    refs = ("<references>KSTO@NWS.NOAA.GOV,KSTO1055887200,2003-06-17T14:00:00-07:00"
            "</references>")
    out = base.replace("<msgType>Alert</msgType>", f"<msgType>{msg_type}</msgType>"
                       + (refs if msg_type != "Alert" else ""))
    out = out.replace("<certainty>Observed</certainty>", f"<certainty>{certainty}</certainty>")
    return out.replace("<urgency>Immediate</urgency>", f"<urgency>{urgency}</urgency>").encode()


def test_an_unlikely_update_retracts_what_it_updates_and_raises_nothing() -> None:
    """An Update saying the storm is now Unlikely takes the referenced alert's signals back
    through the retraction path; an Unlikely Alert is lowered, an Observed Update joins."""
    sender = parse_cap(crafted("Alert", "Observed")).sender
    update = parse_cap(crafted("Update", "Unlikely"))
    assert update.signals == [] and update.retraction is not None
    assert update.retraction.refers_to == (alert_key(sender, "KSTO1055887200"),)
    assert "Unlikely" in update.retraction.reason
    assert any("retracts the signals" in line for line in understand(update))
    alert = parse_cap(crafted("Alert", "Unlikely"))
    assert alert.retraction is None and all(s.priority == 4 for s in alert.signals)
    observed = parse_cap(crafted("Update", "Observed"))
    assert observed.retraction is None and observed.signals[0].priority is None
    assert observed.signals[0].refers_to == update.retraction.refers_to
    cancel = parse_cap(crafted("Cancel", "Observed"))
    assert cancel.signals == [] and cancel.retraction is not None
