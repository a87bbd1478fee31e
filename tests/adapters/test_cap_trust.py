"""CAP alerts you can trust: real alerts signed here (XML-DSig, enveloped, signxml) and
their tampered copies, the schema check, each sender's policy, the area test by
intersection, same-sender Cancels and Updates, and copies told apart by content."""

from __future__ import annotations

import base64
import datetime as dt
import math
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree
from signxml import methods
from signxml.signer import XMLSigner

from adapters.area import Area
from adapters.cap import MAX_ALERT_BYTES, CapRejected, alert_key, copy_key, parse_cap, understand
from adapters.cap_trust import SenderRule, Trust
from adapters.ingest import config_from_city
from tests.helpers import shared_data

NOW = dt.datetime.now(dt.UTC)
# one real alert of each CAP version, with its <sender>
REAL = {"1.2": ("v1dot2_appendix_adot3.xml", "trinet@caltech.edu"),
        "1.1": ("nws-5c2cf27b1f56885d61654dc47fa411d5.xml", "w-nws.webmaster@noaa.gov"),
        "1.0": ("v1dot0_appendix_adot1.xml", "hsas@dhs.gov")}


@dataclass(frozen=True)
class Signer:
    """A key and its certificate (self-signed, or issued by ``issuer``)."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @classmethod
    def make(cls, name: str, issuer: Signer | None = None, *, ca: bool = False,
             days: int = 30) -> Signer:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        builder = (x509.CertificateBuilder().subject_name(subject)
                   .issuer_name(issuer.cert.subject if issuer else subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(NOW - dt.timedelta(days=1))
                   .not_valid_after(NOW + dt.timedelta(days=days))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        return cls(key, builder.sign(issuer.key if issuer else key, hashes.SHA256()))

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def sign(self, data: bytes) -> bytes:
        """An enveloped XML signature over the whole alert, as a national met service
        signs (ECDSA-SHA256, the certificate in KeyInfo)."""
        root = etree.fromstring(data)
        key = self.key.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())
        signed = XMLSigner(method=methods.enveloped, signature_algorithm="ecdsa-sha256",
                           digest_algorithm="sha256").sign(root, key=key,
                                                           cert=self.pem.decode())
        return etree.tostring(signed, xml_declaration=True, encoding="UTF-8")


@pytest.fixture(scope="module")
def met() -> Signer:
    return Signer.make("Met Service Alerts")


@pytest.fixture(scope="module")
def stranger() -> Signer:
    return Signer.make("Not The Met Service")


def real(version: str) -> bytes:
    return shared_data("cap", REAL[version][0]).read_bytes()


def required(sender: str, *anchors: x509.Certificate, schema: bool = False) -> Trust:
    return Trust((SenderRule(sender, signature_required=True, schema_required=schema,
                             anchors=anchors),))


def broken_value(signed: bytes) -> bytes:
    """The same alert with its SignatureValue's bytes changed."""
    root = etree.fromstring(signed)
    value = root.find(".//{http://www.w3.org/2000/09/xmldsig#}SignatureValue")
    assert value is not None and value.text
    raw = bytearray(base64.b64decode(value.text))
    raw[len(raw) // 2] ^= 0xFF
    value.text = base64.b64encode(bytes(raw)).decode()
    return etree.tostring(root)


def test_no_shared_alert_carries_a_signature_so_the_tests_sign_real_ones() -> None:
    """None of the real alerts in shared/data/cap is signed: each case below signs a copy."""
    for path in shared_data("cap").glob("*.xml"):
        assert b"xmldsig" not in path.read_bytes(), path.name


@pytest.mark.parametrize("version", sorted(REAL))
def test_a_signed_real_alert_is_valid_and_carries_its_verdict(version: str,
                                                               met: Signer) -> None:
    """A real CAP 1.0/1.1/1.2 alert signed with a trust anchor's key: signed_valid, the
    signer's subject and a clean schema verdict on every signal it raises."""
    _, sender = REAL[version]
    alert = parse_cap(met.sign(real(version)), required(sender, met.cert), now=NOW)
    assert alert.verdict.status == "signed_valid"
    assert alert.verdict.signer == "CN=Met Service Alerts"
    assert alert.violation_count == 0
    assert understand(alert)[1] == "  signature: signed_valid by CN=Met Service Alerts"
    for signal in alert.signals:
        assert signal.details["cap"]["signature"] == "signed_valid"
        assert signal.details["cap"]["schema"] == "valid"


@pytest.mark.parametrize("version", sorted(REAL))
def test_every_tampered_copy_gets_its_own_refusal(version: str, met: Signer,
                                                  stranger: Signer) -> None:
    """A broken signature value, changed content, a certificate that is not a trust
    anchor and no signature at all: each refused with the reason that fits."""
    _, sender = REAL[version]
    trust = required(sender, met.cert)
    signed = met.sign(real(version))
    cases = {
        "the signature value does not verify": broken_value(signed),
        "the digest does not match": signed.replace(b"<status>Actual", b"<status>Test", 1)
        if b"<status>Actual" in signed else signed.replace(b"<status>Exercise",
                                                           b"<status>Actual", 1),
        "is not among the trust anchors": stranger.sign(real(version)),
    }
    for reason, copy in cases.items():
        assert copy != signed
        with pytest.raises(CapRejected, match=reason) as refused:
            parse_cap(copy, trust, now=NOW)
        assert refused.value.code == "cap_signature"
    with pytest.raises(CapRejected, match="must sign its alerts") as unsigned:
        parse_cap(real(version), trust, now=NOW)
    assert unsigned.value.code == "cap_unsigned"


def test_a_schema_error_is_flagged_by_default_and_refused_when_required(met: Signer) -> None:
    """A signed 1.2 alert without <certainty>: taken with the violation named (default),
    refused under schema_required; the signature itself is valid either way."""
    _, sender = REAL["1.2"]
    text = real("1.2").replace(b"<certainty>Observed</certainty>", b"", 1)
    signed = met.sign(text)
    flagged = parse_cap(signed, Trust((SenderRule(sender, anchors=(met.cert,)),)), now=NOW)
    assert flagged.verdict.status == "signed_valid" and flagged.violation_count >= 1
    assert "certainty" in " ".join(flagged.violations)
    assert "violation(s) of the CAP 1.2 schema" in flagged.signals[0].details["cap"]["schema"]
    with pytest.raises(CapRejected, match="schema_required") as refused:
        parse_cap(signed, required(sender, met.cert, schema=True), now=NOW)
    assert refused.value.code == "cap_schema"


def test_a_sender_without_a_rule_may_be_unsigned_but_never_broken(met: Signer) -> None:
    """No rule: unsigned is taken (flagged), a self-consistent signature is
    signed_untrusted, and a broken one is refused all the same."""
    assert parse_cap(real("1.2")).verdict.status == "unsigned"
    intact = parse_cap(met.sign(real("1.2")), now=NOW)
    assert intact.verdict.status == "signed_untrusted"
    assert intact.signals[0].details["cap"]["signer"] == "CN=Met Service Alerts"
    with pytest.raises(CapRejected, match="does not verify"):
        parse_cap(broken_value(met.sign(real("1.2"))), now=NOW)


def test_a_rule_for_every_sender_applies_to_those_without_their_own(met: Signer) -> None:
    """``sender = "*"`` with signature_required refuses every unsigned alert."""
    trust = Trust((SenderRule("*", signature_required=True, anchors=(met.cert,)),))
    with pytest.raises(CapRejected, match="must sign"):
        parse_cap(real("1.1"), trust)
    assert parse_cap(met.sign(real("1.1")), trust, now=NOW).verdict.status == "signed_valid"


def test_a_certificate_issued_by_an_anchor_is_trusted_and_an_expired_one_is_not() -> None:
    """A national CA as the trust anchor: its issued signing certificate verifies; the
    same alert checked after the certificate expired is refused."""
    ca = Signer.make("National Alerting CA", ca=True, days=3650)
    leaf = Signer.make("Met Service Alerts", ca, days=10)
    _, sender = REAL["1.2"]
    signed = leaf.sign(real("1.2"))
    assert parse_cap(signed, required(sender, ca.cert), now=NOW).verdict.status == \
        "signed_valid"
    with pytest.raises(CapRejected, match="certificate"):
        parse_cap(signed, required(sender, ca.cert), now=NOW + dt.timedelta(days=30))


def test_a_signature_over_part_of_the_alert_is_refused(met: Signer) -> None:
    """A signature moved inside an <info> block (signing only part of the alert, or
    wrapped around foreign content) is refused, never read as signed."""
    root = etree.fromstring(met.sign(real("1.2")))
    ns = "{urn:oasis:names:tc:emergency:cap:1.2}"
    signature = root.find("{http://www.w3.org/2000/09/xmldsig#}Signature")
    info = root.find(f"{ns}info")
    assert signature is not None and info is not None
    info.append(signature)
    with pytest.raises(CapRejected, match="not a child of <alert>"):
        parse_cap(etree.tostring(root), now=NOW)


def test_copies_are_told_apart_by_content_not_by_signature(met: Signer,
                                                           stranger: Signer) -> None:
    """The same alert unsigned and signed has one digest (a repeat); a copy with other
    content has the same copy key and another digest (a conflict)."""
    plain = parse_cap(real("1.2"))
    signed = parse_cap(met.sign(real("1.2")), now=NOW)
    other = parse_cap(real("1.2").replace(b"3.4 Ml", b"6.1 Ml"))
    assert plain.digest == signed.digest and copy_key(plain) == copy_key(signed)
    assert copy_key(other) == copy_key(plain) and other.digest != plain.digest


CITY = Area.from_points([(34.60, 113.50), (34.90, 113.50), (34.90, 113.90), (34.60, 113.90)])


def alert_with(area_xml: str, msg_type: str = "Alert", refs: str = "") -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>AREA-1</identifier><sender>met@weather.example</sender>
  <sent>2026-07-20T08:00:00+08:00</sent><status>Actual</status><msgType>{msg_type}</msgType>
  <scope>Public</scope>{refs}
  <info><category>Met</category><event>Rainstorm</event><urgency>Immediate</urgency>
    <severity>Severe</severity><certainty>Likely</certainty>
    <headline>Rainstorm warning</headline>
    <area><areaDesc>Warning area</areaDesc>{area_xml}</area>
  </info>
</alert>""".encode()


def test_a_polygon_over_the_city_centred_elsewhere_is_placed_inside_the_city() -> None:
    """A province-wide warning polygon whose vertices' mean lies far outside the city
    still meets it: the signal is placed where the two overlap."""
    # a long band from the city east for 5 degrees: its centre is ~300 km away
    band = "34.5,113.6 35.0,113.6 35.0,119.0 34.5,119.0 34.5,113.6"
    alert = parse_cap(alert_with(f"<polygon>{band}</polygon>"), area=CITY)
    [signal] = alert.signals
    assert CITY.holds(signal.location.lat, signal.location.lon)
    assert alert.outside == []


def test_circles_meet_the_city_by_intersection_and_outside_is_said() -> None:
    """A circle centred 20 km outside the city with a 30 km radius meets it; one 200 km
    away does not, and what is understood says it is outside the city's area."""
    grazing = parse_cap(alert_with("<circle>34.75,114.12 30</circle>"), area=CITY)
    [signal] = grazing.signals
    assert CITY.holds(signal.location.lat, signal.location.lon)
    far = parse_cap(alert_with("<circle>36.5,113.7 5</circle>"), area=CITY)
    assert far.signals == [] and far.outside == ["Warning area"]
    said = "\n".join(understand(far))
    assert "outside the city's area, dropped: Warning area" in said
    assert "raises nothing" in said


def test_a_cancel_or_update_acts_only_on_the_senders_own_alerts() -> None:
    """A Cancel naming another sender's alert retracts nothing (and says so); an Update
    naming one of each refers only to the sender's own."""
    other = "<references>police@city.example,P-9,2026-07-20T07:00:00+08:00</references>"
    cancel = parse_cap(alert_with("", "Cancel", other).replace(b"<area><areaDesc>Warning "
                                                              b"area</areaDesc></area>", b""))
    assert cancel.retraction is None and cancel.foreign[0][1] == "P-9"
    said = "\n".join(understand(cancel))
    assert "ignored: P-9 from police@city.example is another sender's alert" in said
    assert "cancels nothing" in said
    both = ("<references>police@city.example,P-9,2026-07-20T07:00:00+08:00 "
            "met@weather.example,AREA-0,2026-07-20T07:00:00+08:00</references>")
    update = parse_cap(alert_with("<circle>34.75,113.7 5</circle>", "Update", both),
                       area=CITY)
    assert update.signals[0].refers_to == (alert_key("met@weather.example", "AREA-0"),)


def test_a_national_sized_alert_parses_and_one_over_the_limit_is_refused() -> None:
    """A 1 MB alert (a 50,000-point warning polygon, like a country's) parses and is
    placed within two seconds; one over 4 MiB is refused with its size and the limit."""
    turn = [2 * math.pi * i / 50_000 for i in range(50_000)]
    ring = [(34.0 + 1.5 * math.sin(a), 113.0 + 1.5 * math.cos(a)) for a in turn]
    text = " ".join(f"{lat:.6f},{lon:.6f}" for lat, lon in [*ring, ring[0]])
    big = alert_with(f"<polygon>{text}</polygon>")
    assert 900_000 < len(big) < MAX_ALERT_BYTES
    started = time.perf_counter()
    alert = parse_cap(big, area=CITY)
    took = time.perf_counter() - started
    assert len(alert.signals) == 1 and took < 2.0, took
    huge = big + b" " * (MAX_ALERT_BYTES + 1 - len(big))
    with pytest.raises(CapRejected, match=f"is {MAX_ALERT_BYTES + 1} bytes; the limit is "
                                          f"{MAX_ALERT_BYTES}") as refused:
        parse_cap(huge)
    assert refused.value.code == "oversized"


@pytest.fixture(scope="module")
def signed_alert(met: Signer) -> bytes:
    return met.sign(real("1.2"))


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_garbage_in_a_signed_alert_is_refused_with_a_reason_or_understood(
        signed_alert: bytes, met: Signer, data: st.DataObject) -> None:
    """Random bytes spliced anywhere into a signed alert, with a policy and an area:
    refused with a reason and a code, or understood; never any other exception."""
    at = data.draw(st.integers(0, len(signed_alert)))
    cut = data.draw(st.integers(0, 40))
    junk = data.draw(st.binary(max_size=60) | st.text(max_size=60).map(
        lambda t: t.encode("utf-8", "surrogatepass")))
    mangled = signed_alert[:at] + junk + signed_alert[at + cut:]
    _, sender = REAL["1.2"]
    for trust in (None, required(sender, met.cert)):
        try:
            alert = parse_cap(mangled, trust, CITY, now=NOW)
        except CapRejected as exc:
            assert exc.reason and exc.code
        else:
            assert understand(alert)[0]


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=300))
def test_garbage_areas_are_refused_with_a_reason_or_placed(junk: str) -> None:
    """Arbitrary text as a polygon or a circle: refused with a reason, or placed."""
    clean = junk.replace("<", "").replace("&", "")
    for element in ("polygon", "circle"):
        try:
            parse_cap(alert_with(f"<{element}>{clean}</{element}>").replace(
                b"\x00", b""), area=CITY)
        except CapRejected as exc:
            assert exc.reason


def test_the_city_file_names_senders_anchors_and_area(tmp_path: Path, met: Signer) -> None:
    """[[cap_sender]] entries (PEM paths relative to the city file, a "*" rule) and an
    [area] polygon are read into the adapter's settings; faults name the entry."""
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "met.pem").write_bytes(met.pem)
    doc = {"cap_sender": [
        {"sender": "alerts@met.example", "policy": "signature_required",
         "trust": ["certs/met.pem"]},
        {"sender": "*", "policy": ["unsigned_accepted", "schema_required"]}],
        "area": {"polygon": [[34.6, 113.5], [34.9, 113.5], [34.9, 113.9]]}}
    config = config_from_city(doc, base=tmp_path)
    assert config.cap_trust is not None and config.area is not None
    rule = config.cap_trust.rule("ALERTS@met.example")
    assert rule.signature_required and rule.anchors == (met.cert,)
    other = config.cap_trust.rule("someone@else.example")
    assert other.schema_required and not other.signature_required
    assert config.area.holds(34.7, 113.6) and not config.area.holds(34.62, 113.88)
    faults = {
        "signature_required needs trust": {"sender": "a@b", "policy": "signature_required"},
        "unknown policy": {"sender": "a@b", "policy": "trust_me"},
        "cannot read trust anchor": {"sender": "a@b", "trust": ["nope.pem"]},
        "unknown keys": {"sender": "a@b", "key": "x"},
        "needs sender": {"policy": "unsigned_accepted"},
        "contradict": {"sender": "a@b", "policy": ["signature_required",
                                                   "unsigned_accepted"]},
    }
    for words, entry in faults.items():
        with pytest.raises(ValueError, match=words) as refused:
            config_from_city({"cap_sender": [entry]}, base=tmp_path, origin="city.toml")
        assert "city.toml: [[cap_sender]] 1" in str(refused.value)
    with pytest.raises(ValueError, match=r"\[area\]"):
        config_from_city({"area": {"polygon": [[34.6, 113.5], [34.9, 113.5]]}})


TOML = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() |
                    st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                        st.sampled_from(["sender", "policy", "trust", "polygon", "x"]), inner,
                        max_size=4), max_leaves=12)


@settings(max_examples=150, deadline=None)
@given(senders=TOML, area=TOML)
def test_garbage_in_the_city_files_cap_sections_is_refused_with_a_reason(
        tmp_path_factory: pytest.TempPathFactory, senders: object, area: object) -> None:
    """Arbitrary values as [[cap_sender]] and [area]: read, or refused with ValueError."""
    base = tmp_path_factory.getbasetemp()
    for doc in ({"cap_sender": senders}, {"area": area}):
        try:
            config_from_city(doc, base=base)
        except ValueError as exc:
            assert str(exc)


@pytest.mark.parametrize("name", ["cap10.xsd", "cap11.xsd", "cap12.xsd"])
def test_the_bundled_cap_schemas_are_the_oasis_ones(name: str) -> None:
    """Each bundled CAP schema is byte for byte the OASIS file in the shared data."""
    from adapters.cap_trust import SCHEMA_DIR

    assert (SCHEMA_DIR / name).read_bytes() == shared_data("cap", "schema", name).read_bytes()
