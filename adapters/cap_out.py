"""Border (core part): OASIS CAP 1.2 alerts out, for incidents marked for public warning.

:func:`render` turns a :class:`PublicWarning` into a CAP 1.2 document (one
``<info>``, one ``<area>`` with a ``<circle>``); :func:`validate` checks bytes
against the OASIS CAP 1.2 schema bundled in ``adapters/schema/cap12.xsd``;
:func:`emit` does both and is what the shell calls. The shell, a consumer of
``incident.public_warning`` events that publishes what :func:`emit` returns,
lives elsewhere. Nothing here reads a clock or the network: ``sent`` comes in
with the warning, and the only file read is the bundled schema, once.

Errors::

    ValueError         a warning that cannot be rendered as valid CAP: a naive time,
     |                 an identifier or sender CAP would misread, an Update or Cancel
     |                 with no references, a point off the globe
     +-- CapInvalid    bytes the CAP 1.2 schema refuses; ``reason`` names the element

Free text (event, headline, description, instruction, area) never raises: it is
cleaned of what XML 1.0 forbids and trimmed (see ``LIMITS``).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args
from xml.etree import ElementTree as ET

from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException

from workflows.catalogue import CapMapping

if TYPE_CHECKING:
    import xmlschema

__all__ = [
    "LIMITS", "NAMESPACE", "CapInvalid", "Certainty", "Mappings", "MsgType",
    "PublicWarning", "Severity", "Urgency", "emit", "identifier", "render", "validate",
]

MsgType = Literal["Alert", "Update", "Cancel"]
Urgency = Literal["Immediate", "Expected", "Future", "Past", "Unknown"]
Severity = Literal["Extreme", "Severe", "Moderate", "Minor", "Unknown"]
Certainty = Literal["Observed", "Likely", "Possible", "Unlikely", "Unknown"]

NAMESPACE = "urn:oasis:names:tc:emergency:cap:1.2"
SCHEMA = Path(__file__).resolve().parent / "schema" / "cap12.xsd"

# Each ECC category's CAP <category> and <responseType> are its ``cap`` entry in the
# catalogue (:attr:`workflows.catalogue.Catalogue.cap`, passed in as ``cap``); a category
# not in it takes ``other``'s, else Other / Monitor. A Cancel is always "AllClear".
Mappings = Mapping[str, CapMapping]
# Characters of free text kept, trimmed with an ellipsis beyond. A headline fits a
# text message (the CAP 1.2 spec suggests 160 as a target); areaDesc matches what our
# own CAP parser keeps.
LIMITS = {"event": 200, "headline": 160, "description": 4000, "instruction": 2000,
          "area_desc": 500}
MAX_RADIUS_M = 1_000_000.0  # a warning for a city; our own parser refuses more

# What XML 1.0 forbids (C0 controls but tab and newlines, surrogates, U+FFFE/F), and
# DEL and the C1 controls it discourages: none is text anyone should see.
_UNWANTED = re.compile("[^\t\n\r\x20-\x7e\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_INCIDENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_:\-]{0,127}")  # command.model.Id
_LANGUAGE = re.compile(r"[a-zA-Z]{1,8}(-[a-zA-Z0-9]{1,8})*")  # xs:language


class CapInvalid(ValueError):
    """Bytes that are not a valid CAP 1.2 alert; ``reason`` says where and why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class PublicWarning:
    """One public warning for one incident, as the supervisor approved it."""

    incident_id: str
    sequence: int  # 1, 2, 3 ... per incident: which warning this is
    msg_type: MsgType
    sent: datetime  # aware
    sender: str  # e.g. "ecc@zhengzhou.example"
    category: str  # ECC incident category
    event: str  # e.g. "Gas leak"
    urgency: Urgency
    severity: Severity
    certainty: Certainty
    headline: str
    description: str
    instruction: str
    area_desc: str
    lat: float
    lon: float
    radius_m: float
    expires: datetime | None = None
    language: str = "en-US"
    # earlier (sender, identifier, sent) this Update or Cancel refers to
    references: tuple[tuple[str, str, datetime], ...] = ()


def identifier(incident_id: str, sequence: int) -> str:
    """The CAP identifier of an incident's ``sequence``-th warning: ``ecc-<id>-<n>``.

    Stable (the same inputs always give the same identifier) and distinct for distinct
    inputs. Raises ValueError unless ``incident_id`` is an ECC id (letters, digits,
    ``_``, ``:``, ``-``, so never a space, comma, ``<`` or ``&``) and ``sequence`` >= 1.
    """
    if not _INCIDENT_ID.fullmatch(incident_id):
        raise ValueError(f"incident id {incident_id!r} is not an ECC id")
    if isinstance(sequence, bool) or not isinstance(sequence, int) or sequence < 1:
        raise ValueError(f"sequence {sequence!r} is not a whole number from 1")
    return f"ecc-{incident_id}-{sequence}"


def render(w: PublicWarning, cap: Mappings) -> bytes:
    """The warning as a UTF-8 CAP 1.2 document (status Actual, scope Public).

    ``cap`` maps ECC categories to their CAP category and responseType (the catalogue's).

    Times are written in UTC to the second, so one instant always gives one string and
    a later reference to this alert matches its ``<sent>``. Raises ValueError for a
    warning that cannot be valid CAP (see the module docstring); free text never raises.
    """
    for value, allowed in ((w.msg_type, MsgType), (w.urgency, Urgency),
                           (w.severity, Severity), (w.certainty, Certainty)):
        if value not in get_args(allowed):
            raise ValueError(f"{value!r} is not one of {get_args(allowed)}")
    if w.msg_type != "Alert" and not w.references:
        raise ValueError(f"a CAP {w.msg_type} must reference the alerts it {w.msg_type.lower()}s")
    if not _LANGUAGE.fullmatch(w.language):
        raise ValueError(f"language {w.language!r} is not a language tag")
    if not (math.isfinite(w.lat) and -90 <= w.lat <= 90
            and math.isfinite(w.lon) and -180 <= w.lon <= 180):
        raise ValueError(f"point {w.lat},{w.lon} is off the globe")
    if not (math.isfinite(w.radius_m) and 0 <= w.radius_m <= MAX_RADIUS_M):
        raise ValueError(f"radius {w.radius_m} m is not between 0 and {MAX_RADIUS_M:.0f} m")

    alert = ET.Element(_tag("alert"))
    _sub(alert, "identifier", identifier(w.incident_id, w.sequence))
    _sub(alert, "sender", _token(w.sender, "sender"))
    _sub(alert, "sent", _when(w.sent))
    _sub(alert, "status", "Actual")
    _sub(alert, "msgType", w.msg_type)
    _sub(alert, "scope", "Public")
    if w.references:
        _sub(alert, "references", " ".join(
            f"{_token(sender, 'reference sender')},{_token(ident, 'reference identifier')},"
            f"{_when(sent)}" for sender, ident, sent in w.references))
    _sub(alert, "incidents", w.incident_id)

    info = _sub(alert, "info")
    _sub(info, "language", w.language)
    mapping = cap.get(w.category) or cap.get("other") or CapMapping()
    cap_category = mapping.category
    _sub(info, "category", cap_category)
    _sub(info, "event", _clean(w.event, LIMITS["event"]) or cap_category)
    response = "AllClear" if w.msg_type == "Cancel" else mapping.response
    _sub(info, "responseType", response)
    _sub(info, "urgency", w.urgency)
    _sub(info, "severity", w.severity)
    _sub(info, "certainty", w.certainty)
    if w.expires is not None:
        _sub(info, "expires", _when(w.expires))
    _sub(info, "senderName", "ECC")
    for name, text in (("headline", w.headline), ("description", w.description),
                       ("instruction", w.instruction)):
        cleaned = _clean(text, LIMITS[name])
        if cleaned:  # optional in CAP: an empty one says nothing
            _sub(info, name, cleaned)
    parameter = _sub(info, "parameter")
    _sub(parameter, "valueName", "ECC_INCIDENT")
    _sub(parameter, "value", w.incident_id)

    area = _sub(info, "area")
    lat, lon, km = _decimal(w.lat, 6), _decimal(w.lon, 6), _decimal(w.radius_m / 1000, 3)
    _sub(area, "areaDesc", _clean(w.area_desc, LIMITS["area_desc"])
         or f"within {km} km of {lat},{lon}")
    _sub(area, "circle", f"{lat},{lon} {km}")

    ET.indent(alert)
    xml: bytes = ET.tostring(alert, encoding="utf-8", xml_declaration=True,
                             default_namespace=NAMESPACE)
    return xml


def validate(xml: bytes) -> None:
    """Check ``xml`` against the bundled CAP 1.2 schema.

    Raises :class:`CapInvalid` for bytes that are not XML (or carry a DTD), or for the
    first schema violation, its ``reason`` naming the element, e.g.
    ``/alert/msgType: value must be one of [...]``.
    """
    try:
        root = SafeET.fromstring(xml, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise CapInvalid(f"unsafe XML refused: {type(exc).__name__}") from exc
    except SafeET.ParseError as exc:
        raise CapInvalid(f"not well-formed XML: {exc}") from exc
    error = next(_schema().iter_errors(root), None)
    if error is not None:
        where = re.sub(r"\{[^}]*\}", "", error.path or "") or "/"
        raise CapInvalid(f"{where}: {error.reason or error.message}")


def emit(w: PublicWarning, cap: Mappings) -> bytes:
    """:func:`render`, then :func:`validate`: the bytes to publish, known valid CAP 1.2.

    Raises ValueError as :func:`render` does, and :class:`CapInvalid` (a bug here, not
    in the warning) if the result is not valid.
    """
    xml = render(w, cap)
    validate(xml)
    return xml


@functools.cache
def _schema() -> xmlschema.XMLSchema:
    # The CAP schema imports nothing; the sandbox makes sure nothing is ever fetched.
    # xmlschema takes a third of a second to import: paid at the first warning, not
    # by every start of the service.
    import xmlschema

    return xmlschema.XMLSchema(str(SCHEMA), base_url=str(SCHEMA.parent), allow="sandbox",
                               defuse="always")


def _tag(name: str) -> str:
    return f"{{{NAMESPACE}}}{name}"


def _sub(parent: ET.Element, name: str, text: str | None = None) -> ET.Element:
    child = ET.SubElement(parent, _tag(name))
    child.text = text
    return child


def _when(t: datetime) -> str:
    """CAP's dateTime: seconds, an explicit offset, never ``Z``; always UTC here."""
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"time {t.isoformat()} has no time zone")
    try:
        return t.astimezone(UTC).replace(microsecond=0).isoformat()
    except OverflowError as exc:
        raise ValueError(f"time {t.isoformat()} is out of range in UTC") from exc


def _token(value: str, what: str) -> str:
    """A sender or identifier: CAP forbids spaces, commas, ``<`` and ``&`` in them."""
    if (not value or _UNWANTED.search(value)
            or any(c.isspace() or c in ",<&" for c in value)):
        raise ValueError(f"{what} {value!r} has a space, comma, '<', '&' or control character")
    return value


def _clean(text: str, limit: int) -> str:
    """Text as XML can carry it: unwanted characters gone, newlines ``\\n``, trimmed."""
    text = _UNWANTED.sub("", text).replace("\r\n", "\n").replace("\r", "\n").strip()
    if len(text) > limit:
        text = text[:limit - 1].rstrip() + "…"
    return text


def _decimal(x: float, places: int) -> str:
    """Fixed point to ``places`` (never ``1e-05``), no trailing zeros, never ``-0``."""
    return f"{round(x, places) + 0.0:.{places}f}".rstrip("0").rstrip(".")
