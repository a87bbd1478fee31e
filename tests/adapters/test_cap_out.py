"""CAP out: what ECC emits is valid CAP 1.2, reads back through our parser, survives any text."""

from __future__ import annotations

import tomllib
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, get_args
from xml.etree import ElementTree as ET

import pytest
import xmlschema
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters import cap_out
from adapters.cap import parse_cap
from adapters.cap_out import (
    LIMITS,
    CapInvalid,
    MsgType,
    PublicWarning,
    emit,
    identifier,
    render,
    validate,
)
from command.settings import builtin_catalogue
from tests.helpers import shared_data

NS = {"cap": "urn:oasis:names:tc:emergency:cap:1.2"}
CST = timezone(timedelta(hours=8))
ROOT = Path(__file__).resolve().parents[2]


CAT = builtin_catalogue()
CATEGORY = {k: m.category for k, m in CAT.cap.items()}
RESPONSE = {k: m.response for k, m in CAT.cap.items()}


def emit_(w: PublicWarning) -> bytes:
    return emit(w, CAT.cap)


def warning(**overrides: Any) -> PublicWarning:
    """A gas-leak Alert in Zhengzhou, sent in China Standard Time."""
    fields: dict[str, Any] = {
        "incident_id": "inc-42", "sequence": 1, "msg_type": "Alert",
        "sent": datetime(2026, 11, 22, 12, 5, 6, 789_000, tzinfo=CST),
        "sender": "ecc@zhengzhou.example", "category": "gas_leak", "event": "Gas leak",
        "urgency": "Immediate", "severity": "Severe", "certainty": "Observed",
        "headline": "Gas leak on Jinshui Road: leave the area",
        "description": "A gas main has ruptured outside No. 18 Jinshui Road.",
        "instruction": "Leave on foot; do not use switches, phones or flames nearby.",
        "area_desc": "Jinshui Road, 200 m around No. 18",
        "lat": 34.7466, "lon": 113.6254, "radius_m": 200.0,
    }
    fields.update(overrides)
    return PublicWarning(**fields)


def field(xml: bytes, path: str) -> str | None:
    """The text of the first element at ``path`` (``cap:`` prefixed), or None."""
    return ET.fromstring(xml).findtext(path, namespaces=NS)


def test_public_names_are_pinned() -> None:
    """The names other helpers code against change only on purpose."""
    assert sorted(cap_out.__all__) == [
        "CapInvalid", "Certainty", "LIMITS", "Mappings", "MsgType", "NAMESPACE",
        "PublicWarning", "Severity", "Urgency", "emit", "identifier", "render",
        "validate",
    ]


def test_an_alert_is_valid_against_the_bundled_and_the_shared_oasis_schema() -> None:
    """A rendered Alert passes xmlschema with the bundled XSD and with shared/data's own."""
    xml = emit_(warning())
    shared_xsd = shared_data("cap", "schema", "cap12.xsd")
    bundled_xsd = ROOT / "adapters" / "schema" / "cap12.xsd"
    assert bundled_xsd.read_bytes() == shared_xsd.read_bytes()  # bundled unmodified
    for xsd in (shared_xsd, bundled_xsd):
        schema = xmlschema.XMLSchema(str(xsd))
        schema.validate(ET.fromstring(xml))  # raises XMLSchemaValidationError if not
        assert schema.is_valid(ET.fromstring(xml))
    assert xml.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    assert field(xml, "cap:status") == "Actual" and field(xml, "cap:scope") == "Public"
    assert field(xml, "cap:info/cap:senderName") == "ECC"
    assert field(xml, "cap:info/cap:parameter/cap:valueName") == "ECC_INCIDENT"
    assert field(xml, "cap:info/cap:parameter/cap:value") == "inc-42"
    assert field(xml, "cap:references") is None  # an Alert refers to nothing


def test_times_are_utc_to_the_second_with_an_explicit_offset() -> None:
    """CAP forbids "Z" and fractions: 12:05:06.789 at +08:00 is written 04:05:06+00:00."""
    expires = datetime(2026, 11, 22, 1, 30, 0, 999_999, tzinfo=timezone(timedelta(hours=-5)))
    xml = emit_(warning(expires=expires))
    assert field(xml, "cap:sent") == "2026-11-22T04:05:06+00:00"
    assert field(xml, "cap:info/cap:expires") == "2026-11-22T06:30:00+00:00"


def test_the_alert_reads_back_through_our_own_cap_parser() -> None:
    """parse_cap gives the same identifier, sender and msgType and a signal at the centre."""
    w = warning()
    alert = parse_cap(emit_(w))
    assert (alert.version, alert.status, alert.scope) == ("1.2", "Actual", "Public")
    assert alert.identifier == identifier("inc-42", 1) == "ecc-inc-42-1"
    assert (alert.sender, alert.msg_type, alert.references) == (w.sender, "Alert", [])
    assert alert.sent == w.sent.replace(microsecond=0)
    [signal] = alert.signals
    assert (signal.location.lat, signal.location.lon) == (w.lat, w.lon)
    assert signal.location.accuracy_m == pytest.approx(200.0)
    assert signal.location.address == w.area_desc
    assert signal.summary == w.headline


def test_updates_and_cancels_carry_references_that_read_back() -> None:
    """An Update names the Alert; a Cancel names both; the sent strings match exactly."""
    first = warning()
    first_xml = emit_(first)
    # The shell may hold the first alert's time in UTC: one instant, one string.
    ref1 = (first.sender, identifier(first.incident_id, 1), first.sent.astimezone(UTC))
    update = warning(sequence=2, msg_type="Update", references=(ref1,),
                     sent=datetime(2026, 11, 22, 4, 20, tzinfo=UTC), headline="Leak spreading")
    update_xml = emit_(update)
    parsed = parse_cap(update_xml)
    assert parsed.msg_type == "Update" and parsed.identifier == "ecc-inc-42-2"
    assert parsed.references == [("ecc@zhengzhou.example", "ecc-inc-42-1",
                                  field(first_xml, "cap:sent"))]

    ref2 = (update.sender, identifier(update.incident_id, 2), update.sent)
    cancel_xml = emit_(warning(sequence=3, msg_type="Cancel", references=(ref1, ref2),
                              sent=datetime(2026, 11, 22, 6, 0, tzinfo=UTC)))
    cancel = parse_cap(cancel_xml)
    assert cancel.msg_type == "Cancel"
    assert cancel.references == [
        ("ecc@zhengzhou.example", "ecc-inc-42-1", "2026-11-22T04:05:06+00:00"),
        ("ecc@zhengzhou.example", "ecc-inc-42-2", field(update_xml, "cap:sent")),
    ]
    assert field(cancel_xml, "cap:info/cap:responseType") == "AllClear"


@pytest.mark.parametrize("msg_type", ["Update", "Cancel"])
def test_an_update_or_cancel_without_references_is_refused(msg_type: str) -> None:
    """CAP requires an Update or Cancel to name what it updates or cancels."""
    with pytest.raises(ValueError, match="must reference"):
        render(warning(msg_type=msg_type, sequence=2), CAT.cap)
    with pytest.raises(ValueError, match="must reference"):
        emit_(warning(msg_type=msg_type, sequence=2))


def test_identifier_is_stable_and_refuses_what_cap_would_misread() -> None:
    """ecc-<incident>-<n>; an id with a space, comma, '<' or '&', or a sequence below 1, raises."""
    assert identifier("inc-42", 3) == identifier("inc-42", 3) == "ecc-inc-42-3"
    assert identifier("a-1", 2) != identifier("a", 12)
    for bad in ("inc 42", "inc,42", "inc<42", "inc&42", "", "-inc", "x" * 129):
        with pytest.raises(ValueError, match="not an ECC id"):
            identifier(bad, 1)
    for seq in (0, -1):
        with pytest.raises(ValueError, match="sequence"):
            identifier("inc-42", seq)


@pytest.mark.parametrize(("overrides", "message"), [
    ({"sent": datetime(2026, 11, 22, 4, 5, 6)}, "no time zone"),
    ({"expires": datetime(2026, 11, 22, 9, 0)}, "no time zone"),
    ({"sender": "ecc zhengzhou"}, "sender"),
    ({"sender": "ecc,zhengzhou"}, "sender"),
    ({"sender": ""}, "sender"),
    ({"msg_type": "Update", "references": (("a,b", "ecc-x-1", datetime(2026, 1, 1, tzinfo=UTC)),)},
     "reference sender"),
    ({"msg_type": "Update", "references": (("a", "ecc x 1", datetime(2026, 1, 1, tzinfo=UTC)),)},
     "reference identifier"),
    ({"msg_type": "Ack"}, "is not one of"),
    ({"urgency": "Soon"}, "is not one of"),
    ({"language": "en US"}, "language"),
    ({"lat": 90.5}, "off the globe"),
    ({"lon": float("nan")}, "off the globe"),
    ({"radius_m": -1.0}, "radius"),
    ({"radius_m": float("inf")}, "radius"),
    ({"radius_m": 2_000_000.0}, "radius"),
])
def test_a_warning_that_cannot_be_valid_cap_is_refused(overrides: dict[str, Any],
                                                       message: str) -> None:
    """A naive time, a sender CAP would split, a bad enum, a point off the globe: ValueError."""
    with pytest.raises(ValueError, match=message):
        render(warning(**overrides), CAT.cap)


def test_text_is_escaped_cleaned_and_trimmed() -> None:
    """Markup and CDATA ends read back verbatim; XML-forbidden characters go; long text trims."""
    tricky = "<b>Gas</b> & ]]> 郑州 😀 \"'"
    xml = emit_(warning(headline=tricky, instruction="a\x00b\x0bc\x1bd\x7fe\x85f\ufffeg\r\nh\ri",
                       description="x" * 10_000, area_desc="   "))
    assert field(xml, "cap:info/cap:headline") == tricky
    assert b"<b>" not in xml and b"]]>" not in xml
    assert field(xml, "cap:info/cap:instruction") == "abcdefg\nh\ni"
    description = field(xml, "cap:info/cap:description")
    assert description is not None and len(description) == LIMITS["description"]
    assert description.endswith("…")
    assert field(xml, "cap:info/cap:area/cap:areaDesc") == "within 0.2 km of 34.7466,113.6254"
    empty = emit_(warning(event="\x00", headline="", description=" ", instruction="\x01"))
    assert field(empty, "cap:info/cap:event") == "Safety"  # event is required: the category
    for optional in ("headline", "description", "instruction"):
        assert field(empty, f"cap:info/cap:{optional}") is None


def test_the_circle_is_lat_lon_and_radius_in_km() -> None:
    """200 m is 0.2 km; coordinates are fixed point, never 1e-05 or -0."""
    xml = emit_(warning(lat=-0.0, lon=1e-5, radius_m=0.0))
    assert field(xml, "cap:info/cap:area/cap:circle") == "0,0.00001 0"
    xml = emit_(warning(lat=-33.8688, lon=151.2093, radius_m=100_000))
    assert field(xml, "cap:info/cap:area/cap:circle") == "-33.8688,151.2093 100"


def test_every_catalogue_type_has_a_cap_category_and_a_response() -> None:
    """No ECC incident type silently becomes "Other"; an unknown one does, with Monitor."""
    catalogue = tomllib.loads((ROOT / "workflows" / "data" / "catalogue.toml").read_text())
    types = {t["id"] for t in catalogue["type"]}
    assert types <= CATEGORY.keys() and types <= RESPONSE.keys()
    assert set(RESPONSE.values()) <= {"Shelter", "Evacuate", "Avoid", "Monitor", "None"}
    for category, cap, response in [("gas_leak", "Safety", "Evacuate"),
                                    ("hazmat", "CBRNE", "Shelter"), ("fire", "Fire", "Avoid"),
                                    ("flood", "Met", "Avoid"), ("volcano", "Other", "Monitor")]:
        xml = emit_(warning(category=category))
        assert field(xml, "cap:info/cap:category") == cap
        assert field(xml, "cap:info/cap:responseType") == response


def test_validate_rejects_a_missing_element_a_bad_msgtype_and_not_xml() -> None:
    """Each refusal is a CapInvalid whose reason names what is wrong."""
    xml = emit_(warning())
    cases = [
        (xml.replace(b"<sender>ecc@zhengzhou.example</sender>", b""), "sender"),
        (xml.replace(b"<msgType>Alert</msgType>", b"<msgType>Warning</msgType>"), "msgType"),
        (xml.replace(b"+00:00</sent>", b"Z</sent>"), "/alert/sent"),
        (b"this is not XML", "not well-formed XML"),
        (b'<?xml version="1.0"?><!DOCTYPE alert [<!ENTITY x "y">]>' + xml[xml.index(b"<alert"):],
         "unsafe XML"),
        (shared_data("cap", "v1dot1_appendix_adot1.xml").read_bytes(), "alert"),
    ]
    for bad, named in cases:
        assert bad != xml
        with pytest.raises(CapInvalid) as caught:
            validate(bad)
        assert named in caught.value.reason, caught.value.reason
    validate(xml)  # and the untouched one passes


any_text = st.one_of(
    st.text(),
    st.text(st.characters(exclude_categories=())),  # lone surrogates too
    st.lists(st.sampled_from(["<", "&", "]]>", "\x00", "\x1b", "\r", "\x85", "\ufffe", "郑州",
                              "😀", " ", "a", "\n"])).map("".join),
)
aware = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 12, 31, 23, 59, 59),
    timezones=st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m))),
)


@st.composite
def warnings(draw: st.DrawFn) -> PublicWarning:
    msg_type: MsgType = draw(st.sampled_from(get_args(MsgType)))
    references = () if msg_type == "Alert" else tuple(draw(st.lists(
        st.tuples(st.just("ecc@zhengzhou.example"),
                  st.integers(1, 99).map(lambda n: identifier("inc-42", n)), aware),
        min_size=1, max_size=3)))
    return replace(
        warning(), msg_type=msg_type, references=references, sent=draw(aware),
        expires=draw(st.none() | aware),
        category=draw(st.sampled_from(sorted(CATEGORY)) | st.text()),
        event=draw(any_text), headline=draw(any_text), description=draw(any_text),
        instruction=draw(any_text), area_desc=draw(any_text),
        lat=draw(st.floats(-90, 90)), lon=draw(st.floats(-180, 180)),
        radius_m=draw(st.floats(0, 100_000)),
    )


@settings(max_examples=200, deadline=None)
@given(warnings())
def test_any_text_place_and_time_gives_valid_cap(w: PublicWarning) -> None:
    """emit never raises on free text, any point, radius or offset; parse_cap reads it back."""
    xml = emit_(w)
    alert = parse_cap(xml)
    assert alert.sent == w.sent.replace(microsecond=0)
    assert [r[1] for r in alert.references] == [r[1] for r in w.references]
    if w.msg_type != "Cancel":  # parse_cap makes no signal of a Cancel: it retracts
        [signal] = alert.signals
        assert signal.location.lat == pytest.approx(w.lat, abs=5e-7)
        assert signal.location.lon == pytest.approx(w.lon, abs=5e-7)
        assert signal.location.accuracy_m == pytest.approx(w.radius_m, abs=0.5)
    headline = field(xml, "cap:info/cap:headline") or ""
    assert len(headline) <= LIMITS["headline"]
    assert field(xml, "cap:info/cap:event")  # required, so never empty
