"""CAP in: every OASIS example and the NWS alert parse; unsafe or broken XML is refused."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.cap import CapRejected, alert_key, parse_cap, understand
from tests.helpers import shared_data


def cap_files() -> list[str]:
    return sorted(p.name for p in shared_data("cap").glob("*.xml"))


def test_every_cap_file_in_the_shared_data_parses() -> None:
    """CAP 1.0, 1.1 and 1.2 examples, the Amber alert and the NWS alert all parse."""
    names = cap_files()
    assert len(names) == 14
    versions = {parse_cap(shared_data("cap", n).read_bytes()).version for n in names}
    assert versions == {"1.0", "1.1", "1.2"}


def test_areas_become_located_signals_and_updates_resolve_their_references() -> None:
    """A circle gives a point; an Update names the alert it updates."""
    quake = parse_cap(shared_data("cap", "v1dot2_appendix_adot3.xml").read_bytes())
    assert quake.msg_type == "Update"
    assert quake.references == [("trinet@caltech.edu", "TRI13970876.1",
                                 "2003-06-11T20:30:00-07:00")]
    [signal] = quake.signals
    assert (signal.location.lat, signal.location.lon) == (32.9525, -115.5527)
    assert signal.source == "cap" and signal.details["identifier"] == "TRI13970876.2"
    storm = parse_cap(shared_data("cap", "v1dot2_appendix_adot2.xml").read_bytes())
    assert storm.signals[0].location.lat == pytest.approx(38.49, abs=0.05)  # polygon centroid
    amber = parse_cap(shared_data("cap", "cap_amber_alert_example.xml").read_bytes())
    assert amber.signals == [] and "Los Angeles County" in amber.unplaced
    assert any("updates TRI13970876.1" in line for line in understand(quake))
    assert quake.signals[0].refers_to == (alert_key(quake.references[0][0], "TRI13970876.1"),)


def test_entity_expansion_and_external_entities_are_refused() -> None:
    """A billion-laughs bomb or an external entity is refused, not expanded."""
    bomb = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
            b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
            b'<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">&lol2;</alert>')
    xxe = (b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
           b'<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">&x;</alert>')
    for data in (bomb, xxe):
        with pytest.raises(CapRejected, match="unsafe XML"):
            parse_cap(data)


@given(st.binary(max_size=600))
def test_garbage_is_refused_with_a_reason(data: bytes) -> None:
    """Random bytes are refused (or, vanishingly rarely, parse); nothing else escapes."""
    try:
        parse_cap(data)
    except CapRejected as exc:
        assert exc.reason


@given(st.text(max_size=200))
def test_mangled_alerts_are_refused_with_a_reason(junk: str) -> None:
    """A real alert with junk in its time, references or coordinates is refused cleanly."""
    base = shared_data("cap", "v1dot2_appendix_adot3.xml").read_text()
    for target in ("2003-06-11T20:56:00-07:00", "32.9525,-115.5527 0",
                   "trinet@caltech.edu,TRI13970876.1,2003-06-11T20:30:00-07:00"):
        mangled = base.replace(target, junk.replace("<", "").replace("&", ""), 1)
        try:
            parse_cap(mangled.encode())
        except CapRejected as exc:
            assert exc.reason


def test_cap_check_prints_what_it_understood_and_fails_on_a_refusal(tmp_path: Path) -> None:
    """ecc cap check: one summary per file, judged in the city's area (a quake near El
    Centro is placed in a city around it and "outside the city's area" of the demo city);
    exit 2 when any file is refused."""
    good = str(shared_data("cap", "v1dot2_appendix_adot3.xml"))
    city = tmp_path / "city.toml"
    city.write_text("[area]\npolygon = [[32.5, -116.0], [33.5, -116.0], [33.5, -115.0], "
                    "[32.5, -115.0]]\n")
    env = {**os.environ, "ECC_CITY": str(city)}
    out = subprocess.run([sys.executable, "-m", "ecc.cli", "cap", "check", good],
                         capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0 and "TRI13970876.2" in out.stdout and "signal cap-" in out.stdout
    assert "signature: unsigned" in out.stdout and "schema: valid" in out.stdout
    demo = {k: v for k, v in os.environ.items() if k != "ECC_CITY"}
    away = subprocess.run([sys.executable, "-m", "ecc.cli", "cap", "check", good],
                          capture_output=True, text=True, timeout=60, env=demo)
    assert "outside the city's area, dropped: 1 mi. WSW of Brawley, CA" in away.stdout
    assert "signal cap-" not in away.stdout
    bad = subprocess.run([sys.executable, "-m", "ecc.cli", "cap", "check", good, "/nope"],
                         capture_output=True, text=True, timeout=60, env=env)
    assert bad.returncode == 2 and "1 of 2 files refused" in bad.stderr


def test_cap_check_refuses_a_file_over_the_limit_without_reading_it_whole(
        tmp_path: Path) -> None:
    """A 100 MB file is refused by its size (exit 2, the size and the limit said); a
    stream with no size (/dev/zero) is read no further than the limit and one byte."""
    from adapters.cap import MAX_ALERT_BYTES

    huge = tmp_path / "huge.xml"
    with huge.open("wb") as f:
        f.truncate(100 * 1024 * 1024)  # sparse: nothing is written, st_size says 100 MB
    out = subprocess.run([sys.executable, "-m", "ecc.cli", "cap", "check", str(huge),
                          "/dev/zero"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "2 of 2 files refused" in out.stderr
    assert f"REFUSED: the alert is {100 * 1024 * 1024} bytes; the limit is " \
           f"{MAX_ALERT_BYTES}" in out.stdout
    assert f"/dev/zero: REFUSED: the alert is over {MAX_ALERT_BYTES} bytes" in out.stdout
