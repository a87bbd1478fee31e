"""Core: whether a CAP alert can be trusted, and what each sender's policy makes of it.

Three checks, each with a verdict carried on the alert's signals
(``details["cap"]``) and shown on the console:

* **signature** (XML-DSig, enveloped, a child of ``<alert>``, checked with
  signxml): ``signed_valid`` (it verifies with a certificate that is one of
  the sender's trust anchors or issued directly by one), ``signed_untrusted``
  (it verifies with the certificate it carries, but the sender has no trust
  anchors: the content is intact, its author unproven), ``unsigned``, or
  ``invalid`` with the reason (a broken signature value, changed content, a
  certificate that is not a trust anchor, an expired one, SHA-1);
* **schema**: the OASIS XSD of the alert's CAP version (1.0, 1.1, 1.2, bundled
  in ``adapters/schema/``), each violation in words;
* the **policy** of the sender (:class:`SenderRule`): ``signature_required``
  refuses an unsigned alert, ``unsigned_accepted`` takes it (flagged), and
  ``schema_required`` refuses one that breaks the schema (otherwise it is
  taken, flagged). An invalid signature is refused under every policy: a
  broken signature is never accepted silently.

A sender with no rule of its own gets the rule for ``*`` when there is one,
else :data:`DEFAULT_RULE` (unsigned accepted and flagged, schema flagged).
Pure: the trust anchors arrive as certificates (the shell reads the PEM
files), the time to check certificates at arrives as an argument.
"""

from __future__ import annotations

import base64
import functools
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from cryptography import x509
from lxml import etree

if TYPE_CHECKING:
    import xmlschema

DSIG = "http://www.w3.org/2000/09/xmldsig#"
POLICIES = frozenset({"signature_required", "unsigned_accepted", "schema_required"})
SCHEMAS = {"1.0": "cap10.xsd", "1.1": "cap11.xsd", "1.2": "cap12.xsd"}
SCHEMA_DIR = Path(__file__).resolve().parent / "schema"
MAX_VIOLATIONS = 10  # carried on the signal; the count says how many there were

Status = Literal["signed_valid", "signed_untrusted", "unsigned", "invalid"]


@dataclass(frozen=True)
class SenderRule:
    """What one sender (or ``*``, every sender without a rule) must meet."""

    sender: str
    signature_required: bool = False
    schema_required: bool = False
    anchors: tuple[x509.Certificate, ...] = ()


DEFAULT_RULE = SenderRule("*")


@dataclass(frozen=True)
class Trust:
    """The senders' rules, by sender (compared case-insensitively)."""

    rules: tuple[SenderRule, ...] = ()
    by_sender: dict[str, SenderRule] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_sender", {r.sender.casefold(): r for r in self.rules})

    def rule(self, sender: str) -> SenderRule:
        return self.by_sender.get(sender.casefold()) or self.by_sender.get("*") or DEFAULT_RULE


def policy_of(value: object, where: str) -> tuple[bool, bool]:
    """``(signature_required, schema_required)`` from a city file's ``policy`` (one word or
    a list of them). Raises ValueError naming ``where`` and the choices."""
    words = [value] if isinstance(value, str) else value
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        raise ValueError(f"{where}: policy must be one of {sorted(POLICIES)} or a list of them")
    unknown = set(words) - POLICIES
    if unknown:
        raise ValueError(f"{where}: unknown policy {sorted(unknown)}; choose from "
                         f"{sorted(POLICIES)}")
    if {"signature_required", "unsigned_accepted"} <= set(words):
        raise ValueError(f"{where}: signature_required and unsigned_accepted contradict")
    return "signature_required" in words, "schema_required" in words


@dataclass(frozen=True)
class Verdict:
    """The signature check's outcome; ``signer`` is the certificate's subject (RFC 4514)."""

    status: Status
    reason: str = ""
    signer: str | None = None

    @property
    def label(self) -> str:
        return f"invalid: {self.reason}" if self.status == "invalid" else self.status


def _subject(cert: x509.Certificate) -> str:
    try:
        return cert.subject.rfc4514_string()[:300]
    except ValueError:
        return "<unreadable subject>"


def _embedded(signature: etree._Element) -> x509.Certificate | None:
    el = signature.find(f"{{{DSIG}}}KeyInfo/{{{DSIG}}}X509Data/{{{DSIG}}}X509Certificate")
    text = el.text if el is not None else None
    if text is None or not text.strip():
        return None
    return x509.load_der_x509_certificate(base64.b64decode("".join(text.split())))


def _issued_by(cert: x509.Certificate, anchor: x509.Certificate) -> bool:
    if cert == anchor:
        return True
    try:
        cert.verify_directly_issued_by(anchor)
    # a name mismatch (ValueError), another key type (TypeError) or a signature that does
    # not verify (InvalidSignature): each means "not issued by this anchor"
    except Exception:
        return False
    return True


def _reason(exc: Exception) -> str:
    from signxml.exceptions import InvalidCertificate, InvalidDigest, InvalidSignature

    if isinstance(exc, InvalidDigest):
        return "the digest does not match: the signed content was changed after signing"
    if isinstance(exc, InvalidCertificate):
        return f"the certificate is not acceptable: {exc}"[:300]
    if isinstance(exc, InvalidSignature):
        return "the signature value does not verify with the signing certificate"
    return f"the signature cannot be checked: {type(exc).__name__}: {exc}"[:300]


def verify(root: etree._Element, rule: SenderRule,
           now: datetime | None) -> tuple[Verdict, etree._Element]:
    """The verdict on ``root``'s signature and the element to read the alert from: the
    signed copy signxml returns (never the unsigned bytes around it) when it verifies,
    else ``root`` itself. ``now`` is when certificates must be valid (None: the clock)."""
    signatures = root.findall(f"{{{DSIG}}}Signature")
    if not signatures:
        if root.find(f".//{{{DSIG}}}Signature") is not None:
            return Verdict("invalid", "a signature inside the alert, not a child of "
                                      "<alert>, signs only part of it"), root
        return Verdict("unsigned"), root
    if len(signatures) > 1:
        return Verdict("invalid", f"{len(signatures)} signatures; one is expected"), root
    try:
        carried = _embedded(signatures[0])
    except (ValueError, TypeError) as exc:
        return Verdict("invalid", f"the certificate in the signature cannot be read: {exc}"
                       [:300]), root
    candidates: list[x509.Certificate]
    if rule.anchors:
        if carried is None:
            candidates = list(rule.anchors)  # pinned keys: any anchor may have signed
        elif any(_issued_by(carried, anchor) for anchor in rule.anchors):
            candidates = [carried]
        else:
            return Verdict("invalid", f"the signing certificate ({_subject(carried)}) is not "
                                      f"among the trust anchors of {rule.sender}",
                           _subject(carried)), root
    elif carried is None:
        return Verdict("invalid", "the signature carries no certificate and the sender has "
                                  "no trust anchor to check it with"), root
    else:
        candidates = [carried]
    from signxml.verifier import SignatureConfiguration, XMLVerifier

    config = SignatureConfiguration(location="./", verification_time=now)
    failure: Exception | None = None
    for cert in candidates:
        try:
            result = XMLVerifier().verify(root, x509_cert=cert, expect_config=config)
        # signxml raises its own tree, but odd input can surface lxml, base64 or
        # cryptography errors: every one of them means "this signature does not hold"
        except Exception as exc:
            failure = failure or exc
            continue
        signed = getattr(result, "signed_xml", None)
        if signed is None or signed.tag != root.tag:
            return Verdict("invalid", "the signature does not cover the whole alert"), root
        status: Status = "signed_valid" if rule.anchors else "signed_untrusted"
        return Verdict(status, "", _subject(cert)), signed
    assert failure is not None
    return Verdict("invalid", _reason(failure),
                   _subject(carried) if carried is not None else None), root


@functools.cache
def _schema(version: str) -> xmlschema.XMLSchema:
    # xmlschema takes a third of a second to import: paid at the first alert
    import xmlschema

    path = SCHEMA_DIR / SCHEMAS[version]
    return xmlschema.XMLSchema(str(path), base_url=str(SCHEMA_DIR), allow="sandbox",
                               defuse="always")


def violations(root: etree._Element, version: str) -> tuple[int, list[str]]:
    """How many ways ``root`` breaks its CAP version's schema, and the first few in words."""
    found: list[str] = []
    count = 0
    for error in _schema(version).iter_errors(root):
        count += 1
        if len(found) < MAX_VIOLATIONS:
            where = error.path or "/"
            found.append(f"{where}: {error.reason or error.message}"[:300])
    return count, found
