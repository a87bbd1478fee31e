"""The report's figures, the SF Fire Department's records and the text formats, as plain
function calls on hand-checked inputs (and the real SF records once)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from command import report, report_html, sf_fire
from tests.helpers import shared_data
from workflows.intervals import Measure

HEADER = ("Call Number,Unit ID,Incident Number,Call Type,Received DtTm,Dispatch DtTm,"
          "Response DtTm,On Scene DtTm,Priority,Unit Type,Unit sequence in call dispatch")


def m(interval: str, seconds: float, agency: str = "fire", category: str = "fire",
      priority: str = "P2") -> Measure:
    return Measure(interval, seconds, "i1", category, priority, agency)  # type: ignore[arg-type]


def test_nearest_rank_percentiles_by_hand() -> None:
    """Ten values 1..10: p50 is the 5th, p90 the 9th, p99 the 10th; one value is every
    percentile; p10 of 1..10 is 1."""
    ten = [float(v) for v in (7, 3, 10, 1, 9, 2, 8, 4, 6, 5)]
    assert [report.percentile(ten, p) for p in (10, 50, 90, 99, 100)] == [1, 5, 9, 10, 10]
    assert report.percentile([42.0], 50) == report.percentile([42.0], 99) == 42.0
    with pytest.raises(ValueError):
        report.percentile([], 50)


@given(st.lists(st.integers(0, 600), min_size=1, max_size=60), st.integers(1, 600))
def test_p90_within_the_target_is_ninety_percent_within_it(values: list[int],
                                                          target: int) -> None:
    """With nearest rank, 'p90 <= target' and 'at least 90 % within target' agree."""
    within = sum(v <= target for v in values) / len(values)
    assert (report.percentile([float(v) for v in values], 90) <= target) == (within >= 0.9)


def test_targets_are_nfpas_and_only_where_a_standard_sets_one() -> None:
    """Call processing 60 s; turnout 80 s fire, 60 s EMS, none for police; first engine's
    travel 240 s; verification, first-unit travel and total response have none."""
    assert report.target_for("call_processing", "police") == 60
    assert report.target_for("turnout", "fire") == 80
    assert report.target_for("turnout", "health") == 60
    assert report.target_for("turnout", "police") is None
    assert report.target_for("travel_first_engine", "fire") == 240
    for interval in ("verification", "travel", "total_response"):
        assert report.target_for(interval, "fire") is None  # type: ignore[arg-type]


def test_summarise_groups_and_counts_against_each_measures_own_target() -> None:
    """Turnouts fire 70, 90 and EMS 50, 70: all four together have no single target, and
    2 of 4 are within their own (fire 70 <= 80, EMS 50 <= 60); fire alone is 1 of 2 against
    80; a negative turnout is dropped and counted; verification has no agency group."""
    rows = report.summarise("ecc", [
        m("turnout", 70), m("turnout", 90), m("turnout", -4),
        m("turnout", 50, "health", "medical", "P1"), m("turnout", 70, "health", "medical", "P1"),
        m("verification", 30, ""),
    ])
    by = {(r.dimension, r.group, r.interval): r for r in rows}
    whole = by[("all", "all", "turnout")]
    assert (whole.n, whole.target, whole.within, whole.dropped) == (4, None, 0.5, 1)
    assert (whole.p50, whole.p90, whole.p99) == (70, 90, 90)
    assert whole.target_label == "by agency" and whole.met is False
    fire = by[("agency", "fire", "turnout")]
    assert (fire.n, fire.target, fire.within, fire.target_label) == (2, 80, 0.5, "80")
    assert by[("priority", "P1", "turnout")].within == 0.5  # EMS 50 in, 70 out
    assert by[("all", "all", "verification")].within is None
    assert ("agency", "", "verification") not in by
    assert [r.dimension for r in rows] == sorted((r.dimension for r in rows),
                                                 key=report.DIMENSIONS.index)


def test_side_by_side_lines_up_groups_and_leaves_gaps() -> None:
    """ECC's 'fire' type and SF's 'Structure Fire' both appear, each with a gap on the
    other side; 'all' pairs up."""
    ecc = report.summarise("ecc", [m("call_processing", 30)])
    sf = report.summarise("sf", [m("call_processing", 80, category="Structure Fire",
                                   priority="3")])
    pairs = report.side_by_side(ecc, sf)
    keyed = {(p[0] or p[1]).dimension + ":" + (p[0] or p[1]).group: p  # type: ignore[union-attr]
             for p in pairs}
    assert keyed["all:all"][0] is not None and keyed["all:all"][1] is not None
    assert keyed["type:fire"][1] is None and keyed["type:Structure Fire"][0] is None
    text = io.StringIO()
    Console(file=text, width=220).print(report.table(pairs, ["ECC", "SF"]))
    assert "Structure Fire" in text.getvalue() and "—" in text.getvalue()


def sf_csv(*rows: str) -> str:
    return "\n".join((HEADER, *rows)) + "\n"


def test_sf_rows_give_the_same_intervals_checked_by_hand() -> None:
    """Call 1: received 11:47:55; engine E1 (seq 2) dispatched 11:49:16, en route 11:49:26,
    on scene 11:53:10; medic 63 (seq 1) dispatched 11:49:16 too, en route 11:50:20, on
    scene 11:52:59; truck T1 dispatched 11:49:20, never responded. So: call processing
    81 s (the medic: same time, lower sequence), turnouts 64 s, 10 s; travel of the first
    on scene (the medic) 159 s, first engine 224 s; total response 304 s. A row repeated
    in a second file counts once."""
    text = sf_csv(
        "1,E1,9,Structure Fire,01/01/2017 11:47:55 AM,01/01/2017 11:49:16 AM,"
        "01/01/2017 11:49:26 AM,01/01/2017 11:53:10 AM,3,ENGINE,2",
        "1,63,9,Structure Fire,01/01/2017 11:47:55 AM,01/01/2017 11:49:16 AM,"
        "01/01/2017 11:50:20 AM,01/01/2017 11:52:59 AM,3,MEDIC,1",
        "1,T1,9,Structure Fire,01/01/2017 11:47:55 AM,01/01/2017 11:49:20 AM,,,3,TRUCK,3",
    )
    rows = sf_fire.read_rows([text, text])
    assert len(rows) == 3
    got = [(x.interval, x.seconds, x.agency, x.unit_id) for x in sf_fire.measures(rows)]
    assert got == [
        ("call_processing", 81.0, "health", "63"),
        ("turnout", 64.0, "health", "63"),
        ("turnout", 10.0, "fire", "E1"),
        ("travel", 159.0, "health", "63"),
        ("travel_first_engine", 224.0, "fire", "E1"),
        ("total_response", 304.0, "health", "63"),
    ]
    assert {(x.category, x.priority, x.incident_id) for x in sf_fire.measures(rows)} == {
        ("Structure Fire", "3", "1")}


def test_sf_times_are_pacific_across_a_clock_change_and_bad_times_are_missing_steps() -> None:
    """Received 01:59:30 PST on 12 Mar 2017, dispatched 03:00:30 PDT (the clock jumped an
    hour): 60 s, not 3660 s. A call whose only unit has no readable dispatch gives nothing.
    The hour that repeats in November reads as its first pass (PDT)."""
    text = sf_csv(
        "2,E2,8,Outside Fire,03/12/2017 01:59:30 AM,03/12/2017 03:00:30 AM,,,3,ENGINE,1",
        "3,E3,7,Outside Fire,11/05/2017 03:00:00 AM,garbage,,,3,ENGINE,1",
    )
    assert sf_fire.parse_time("11/05/2017 01:00:30 AM") == datetime(2017, 11, 5, 8, 0, 30,
                                                                  tzinfo=UTC)
    got = [(x.incident_id, x.interval, x.seconds) for x in sf_fire.measures(
        sf_fire.read_rows([text]))]
    assert got == [("2", "call_processing", 60.0)]
    assert sf_fire.read_rows(["a,b\n1,2\n"]) == []  # not the SF export


def test_the_real_sf_records_read_whole() -> None:
    """Both files of the shared data: 4,340 unit rows of 901 calls (the 2017 file is a
    subset of the other), every call with a call-processing measure."""
    folder = shared_data("sf_fire_calls_usf")
    texts = [p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.csv"))]
    rows = sf_fire.read_rows(texts)
    assert (len(rows), len({r.call for r in rows})) == (4340, 901)
    found = sf_fire.measures(rows)
    assert sum(x.interval == "call_processing" for x in found) == 901
    assert {x.agency for x in found} == {"fire", "health"}


def test_the_csv_has_one_line_per_row_and_defuses_formulas() -> None:
    """Header, then each row with seconds to 0.1 s; a group that looks like a formula is
    written with a leading quote, and plain negative numbers are left alone."""
    rows = report.summarise("sf", [m("call_processing", 61.26, category="=HYPERLINK(1)")])
    lines = list(csv.reader(io.StringIO(report.to_csv(rows))))
    assert lines[0] == list(report.CSV_COLUMNS)
    typed = next(line for line in lines if line[1] == "type")
    assert typed == ["sf", "type", "'=HYPERLINK(1)", "call_processing", "1", "61.3", "61.3",
                     "61.3", "60", "0.000", "0"]
    assert report.safe_cell("-3.5") == "-3.5" and report.safe_cell("-") == "-"
    assert report.safe_cell("-cmd") == "'-cmd" and report.safe_cell("@x") == "'@x"


def test_the_html_page_escapes_every_text_and_draws_each_interval() -> None:
    """A group named like a script tag comes out as text in the table and in the SVG; the
    page has one chart per interval with measures, and the targets drawn."""
    evil = '<script>alert("x")</script>'
    ecc = report.summarise("ecc", [m("call_processing", 30), m("turnout", 70),
                                   m("travel_first_engine", 200)])
    sf = report.summarise("sf", [m("call_processing", 90, category=evil)])
    page = report_html.render(report.side_by_side(ecc, sf), ["ECC", "S<F>"],
                              title="Times & <things>", lines=[evil])
    assert "<script" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "Times &amp; &lt;things&gt;" in page and "S&lt;F&gt;" in page
    assert page.count("<svg") == 3  # call processing, turnout, first engine's travel
    assert page.count('stroke="#000"') >= 3  # a target tick on each targeted bar
    assert page.startswith("<!doctype html>") and "http" not in page.split("<svg")[0][:200]


def test_the_audit_csv_is_the_log_as_kept() -> None:
    """Each audit row is one line: UTC time, who, role, agency, peer, command, incident,
    outcome, reason, the args as sorted JSON (withheld caller details stay withheld),
    the event seqs; a token name that looks like a formula is defused."""
    rows = [
        {"at": datetime(2026, 7, 20, 2, 0, 1, tzinfo=UTC), "actor": "desk 3",
         "role": "dispatcher", "agency": None, "peer": "10.0.0.7", "command": "task.dispatch",
         "incident_id": "i1", "outcome": "ok", "reason": "",
         "args": {"unit_id": "E11", "task_id": "t1"}, "seqs": [41, 42]},
        {"at": datetime(2026, 7, 20, 2, 0, 2, tzinfo=UTC), "actor": "=cmd|' /C calc'!A0",
         "role": "call_taker", "agency": "health", "peer": None, "command": "call.take",
         "incident_id": None, "outcome": "forbidden", "reason": "not allowed",
         "args": {"caller_phone": "(withheld)", "narrative": "smoke"}, "seqs": []},
    ]
    lines = list(csv.reader(io.StringIO(report.audit_csv(rows))))
    assert lines[0] == list(report.AUDIT_COLUMNS)
    assert lines[1] == ["2026-07-20T02:00:01+00:00", "desk 3", "dispatcher", "", "10.0.0.7",
                        "task.dispatch", "i1", "ok", "", '{"task_id":"t1","unit_id":"E11"}',
                        "41 42"]
    assert lines[2][1].startswith("'=")
    assert json.loads(lines[2][9]) == {"caller_phone": "(withheld)", "narrative": "smoke"}
