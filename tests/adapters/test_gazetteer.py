"""The gazetteer and placement: real Reno streets, interpolation, codes, CAP, EIDO, calls."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.cap import parse_cap
from adapters.eido import EidoRejected, Place, parse_eido, to_signal
from adapters.gazetteer import Gazetteer, normalise
from adapters.gazetteer_data import GazetteerError, parse_codes, parse_osm_places
from adapters.gazetteer_load import gazetteer_of
from adapters.hotline import CallRecord, Unplaceable
from adapters.hotline import to_signal as call_signal
from adapters.placement import locate
from command.fusion import distance_m
from command.settings import builtin_catalogue
from tests.helpers import shared_data

CODES = Path(__file__).parent / "data" / "reno_codes.toml"
CENTRE = (39.525, -119.755)


@functools.cache
def reno() -> Gazetteer:
    """The test city's gazetteer: the real east Reno extract and the tiny code list."""
    streets, addresses, ways, places = parse_osm_places(
        shared_data("road_networks", "reno_east3.osm").read_bytes())
    return Gazetteer(CENTRE, streets, addresses, ways, places,
                     parse_codes(CODES.read_text(), "reno_codes.toml"))


# A synthetic excerpt in the shape of OSM (ids and numbers made up for the test; the
# geometry follows a straight east-west street at Reno's latitude).
ADDRESSED = b"""<osm version="0.6">
 <node id="1" lat="39.5300" lon="-119.7600"/>
 <node id="2" lat="39.5300" lon="-119.7500"/>
 <node id="3" lat="39.5301" lon="-119.7590"><tag k="addr:housenumber" v="100"/>
   <tag k="addr:street" v="Test Street"/></node>
 <node id="4" lat="39.5301" lon="-119.7510"><tag k="addr:housenumber" v="900"/>
   <tag k="addr:street" v="Test Street"/></node>
 <node id="5" lat="39.5299" lon="-119.7590"><tag k="addr:housenumber" v="101"/>
   <tag k="addr:street" v="Test Street"/></node>
 <node id="6" lat="39.5299" lon="-119.7510"><tag k="addr:housenumber" v="199"/>
   <tag k="addr:street" v="Test Street"/></node>
 <node id="7" lat="39.5350" lon="-119.7600"><tag k="amenity" v="hospital"/>
   <tag k="name" v="Saint Test Hospital"/></node>
 <way id="10"><nd ref="1"/><nd ref="2"/><tag k="highway" v="residential"/>
   <tag k="name" v="Test Street"/></way>
 <way id="11"><nd ref="5"/><nd ref="6"/><tag k="addr:interpolation" v="odd"/></way>
</osm>"""


def addressed() -> Gazetteer:
    return Gazetteer(CENTRE, *parse_osm_places(ADDRESSED))


def test_abbreviations_and_punctuation_normalise_alike() -> None:
    """St/Street, Ave/Avenue, N/North, case and dots are one key."""
    assert normalise("E. 2nd St.") == normalise("east 2ND street") == "east 2nd street"
    assert normalise("N McCarran Blvd") == "north mccarran boulevard"


def test_a_real_reno_street_resolves_on_its_osm_way() -> None:
    """'Pyramid Wy' (abbreviated, lower case) resolves to a point of Pyramid Way's ways."""
    found = reno().lookup("pyramid wy, Sparks NV 89431")
    best = found.best
    assert best is not None and best.matched == "street" and "Pyramid Way" in best.label
    ways = [s for s in reno().streets if s.name == "Pyramid Way"]
    nearest = min(distance_m(best.lat, best.lon, lat, lon)
                  for s in ways for line in s.lines for lat, lon in line)
    assert nearest < 50


def test_a_real_intersection_resolves_at_the_shared_osm_node() -> None:
    """'Pyramid Way & Prater Way' lands on the node both streets' ways share."""
    best = reno().lookup("Pyramid Way & Prater Way").best
    assert best is not None and best.matched == "intersection"
    one = {p for s in reno().streets if s.name == "Pyramid Way" for line in s.lines
           for p in line}
    two = {p for s in reno().streets if s.name == "Prater Way" for line in s.lines
           for p in line}
    shared = one & two
    assert shared
    assert min(distance_m(best.lat, best.lon, lat, lon) for lat, lon in shared) < 30


def test_a_house_number_on_a_street_with_none_is_the_street_said_so() -> None:
    """The Reno extract has no addr:* at all: a house number gives the street, lower
    scored, and the label says the number is not on the map."""
    best = reno().lookup("1200 Kietzke Ln Apt 4").best
    assert best is not None and best.matched == "street"
    assert "no house numbers" in best.label and best.score < 1


def test_an_osm_address_resolves_at_its_node_and_others_are_interpolated() -> None:
    """100 is its node; 500 lies halfway between 100 and 900 on the street; 151 is on
    the odd addr:interpolation way."""
    g = addressed()
    exact = g.lookup("100 Test St").best
    assert exact is not None and exact.matched == "address"
    assert distance_m(exact.lat, exact.lon, 39.5301, -119.7590) < 1
    middle = g.lookup("500 test street").best
    assert middle is not None and middle.matched == "interpolated"
    assert distance_m(middle.lat, middle.lon, 39.5300, -119.7550) < 20
    odd = g.lookup("151 Test Street").best
    assert odd is not None and odd.matched == "interpolated" and "OSM" in odd.label
    assert distance_m(odd.lat, odd.lon, 39.5299, -119.7550) < 20


def test_a_named_place_is_found_by_name() -> None:
    """name= on a non-road (a hospital) is a place."""
    best = addressed().lookup("saint test hospital").best
    assert best is not None and best.matched == "place"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=600))
def test_garbage_text_never_crashes_and_gives_candidates_or_a_reason(text: str) -> None:
    """Any text: candidates with scores in (0, 1], or none and a reason."""
    found = reno().lookup(text)
    assert bool(found.candidates) != bool(found.reason)
    assert all(0 < c.score <= 1 for c in found.candidates)


def test_codes_resolve_with_their_fallbacks() -> None:
    """FIPS6 with its leading 0, a SAME part-county code, a GB2260 county of a listed
    prefecture."""
    g = Gazetteer(CENTRE, codes=parse_codes(CODES.read_text()) + parse_codes(
        ZHENGZHOU))
    assert g.code("FIPS", "032031") is not None
    assert g.code("SAME", "132031") is not None
    hit = g.code("GB2260", "410105")
    assert hit is not None and hit[1] == "its prefecture"
    assert g.code("UGC", "ZZZ999") is None


def test_a_bad_code_list_is_refused_naming_the_entry() -> None:
    """An entry with neither point nor polygon, or a repeated code, is named."""
    with pytest.raises(GazetteerError, match="needs a point or a polygon"):
        parse_codes(NO_POINT)
    with pytest.raises(GazetteerError, match="scheme"):
        parse_codes(BAD_SCHEME)


def test_the_real_nws_alert_is_placed_from_the_code_list() -> None:
    """The NWS blizzard warning has an empty <polygon> and FIPS6/UGC geocodes only: the
    code list places it (the centroid of its counties), with what matched."""
    alert = parse_cap(shared_data("cap", "nws-5c2cf27b1f56885d61654dc47fa411d5.xml")
                      .read_bytes(), gazetteer=reno())
    assert len(alert.signals) == 1 and not alert.unplaced
    s = alert.signals[0]
    assert s.location.unknown is None
    assert 47.0 < s.location.lat < 47.8 and -91.7 < s.location.lon < -90.3
    assert s.details["placement"]["geocodes"]


def test_geocodes_none_of_which_are_listed_give_a_location_unknown_signal() -> None:
    """An area of unknown codes is not dropped: a signal of unknown location, saying
    which codes failed."""
    xml = CAP.replace("{area}", "<area><areaDesc>Nowhere</areaDesc><geocode><valueName>"
                      "UGC</valueName><value>ZZZ999</value></geocode></area>")
    alert = parse_cap(xml.encode(), gazetteer=reno())
    (s,) = alert.signals
    assert s.location.unknown and "ZZZ999" in s.location.unknown
    assert (s.location.lat, s.location.lon) == CENTRE


def test_a_cap_polygon_is_placed_at_its_centroid_and_kept_for_the_map() -> None:
    """A <polygon> area: its centroid, and the polygon in details["area"]."""
    xml = CAP.replace("{area}", "<area><areaDesc>East Reno</areaDesc><polygon>39.51,-119.78 "
                      "39.53,-119.78 39.53,-119.74 39.51,-119.74 39.51,-119.78</polygon></area>")
    (s,) = parse_cap(xml.encode(), gazetteer=reno()).signals
    assert abs(s.location.lat - 39.52) < 1e-6 and abs(s.location.lon + 119.76) < 1e-6
    assert s.details["area"]["type"] == "Polygon"


def test_an_eido_with_only_a_civic_address_is_placed() -> None:
    """The NENA sample with its point taken away and a Reno civic address: placed by the
    gazetteer; without one it is refused as before."""
    h = parse_eido(shared_data("nena_eido", "Sample_call_transfer_EIDO.json").read_bytes())
    civic = h.model_copy(update={"location": Place(address="Victorian Ave & Pyramid Way")})
    s = to_signal(civic, builtin_catalogue(), reno())
    assert s.location.unknown is None and s.details["placement"]["matched"] == "intersection"
    with pytest.raises(EidoRejected, match="no gazetteer"):
        to_signal(civic, builtin_catalogue())
    lost = h.model_copy(update={"location": Place(address="42 W Cellular Street")})
    assert to_signal(lost, builtin_catalogue(), reno()).location.unknown


def call(**fields: object) -> CallRecord:
    return CallRecord.model_validate({"call_id": "c-1", "narrative": "car crash",
                                      "received_at": datetime(2026, 1, 1, tzinfo=UTC),
                                      **fields})


def test_an_address_only_call_is_geocoded_and_an_empty_one_is_location_unknown() -> None:
    """A call with an address and no coordinates is placed; an empty address is a
    location unknown with the reason; with no gazetteer it is unplaceable."""
    rules = builtin_catalogue().hotline
    placed = call_signal(call(address="Victorian Avenue and Pyramid Way"), rules, reno())
    assert placed.location.unknown is None and placed.details["placement"]["candidates"]
    empty = call_signal(call(address="  "), rules, reno())
    assert empty.location.unknown == "no address given"
    with pytest.raises(Unplaceable):
        call_signal(call(address="Pyramid Way"), rules, None)


def test_a_city_file_names_its_gazetteer(tmp_path: Path) -> None:
    """[gazetteer] codes beside the city file, OSM from road_network."""
    (tmp_path / "codes.toml").write_text(CODES.read_text())
    doc = {"road_network": str(shared_data("road_networks", "reno_east3.osm")),
           "gazetteer": {"codes": "codes.toml"},
           "station": [{"lat": 39.52, "lon": -119.75}]}
    g = gazetteer_of(doc, tmp_path)
    assert g is not None and g.code("UGC", "NVZ003") and g.lookup("Mill St").best
    loc, record = locate(g, "Sparks")
    assert loc.unknown is None and record["matched"] in ("area", "street")


CAP = """<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>t-1</identifier>
<sender>test@example.org</sender><sent>2026-01-01T10:00:00-08:00</sent><status>Actual</status>
<msgType>Alert</msgType><scope>Public</scope><info><category>Met</category>
<event>Flood Warning</event><urgency>Immediate</urgency><severity>Severe</severity>
<certainty>Observed</certainty>{area}</info></alert>"""

ZHENGZHOU = """[[code]]
scheme = "GB2260"
code = "410100"
name = "Zhengzhou"
point = [34.75, 113.62]
"""
NO_POINT = """[[code]]
scheme = "FIPS"
code = "1"
name = "x"
"""
BAD_SCHEME = """[[code]]
scheme = "ZIP"
code = "1"
name = "x"
point = [1, 2]
"""
