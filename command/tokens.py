"""Core: what a token is good for, and for how long (pure: no I/O, no clock).

Every token has an end (:data:`DEFAULT_TTL` by role, or ``ecc token create --ttl``), and
an adapter token names the HTTP ingress doors it may post to (:data:`DOORS`). The store
keeps these on the token's row; the ingress asks :func:`door_refusal` before it reads a
body, and the CLI parses ``--ttl``, ``--grace`` and ``--kinds`` with :func:`parse_duration`
and :func:`parse_kinds`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import timedelta

__all__ = ["DEFAULT_TTL", "DOORS", "INGRESS_ROLES", "MAX_TTL", "TokenError", "default_ttl",
           "door_refusal", "parse_duration", "parse_kinds"]

# The ingress doors (adapters/http.py routes), by the kind of record each takes.
DOORS: tuple[str, ...] = ("hotline", "video", "cap", "eido")

# Who may post records at the ingress. Not admin: a real centre feeds records with the
# platform's own token (revocable and audited as that platform), never with a person's.
INGRESS_ROLES: frozenset[str] = frozenset({"adapter"})

SHIFT = timedelta(hours=12)
DEFAULT_TTL: dict[str, timedelta] = {
    "viewer": SHIFT, "call_taker": SHIFT, "dispatcher": SHIFT, "supervisor": SHIFT,
    "admin": SHIFT, "field_unit": timedelta(days=90), "adapter": timedelta(days=90),
}
MAX_TTL = timedelta(days=366)

_DURATION = re.compile(r"^\s*(\d{1,6})\s*([smhdw])\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class TokenError(ValueError):
    """A token option that cannot be used; the message says what to write instead."""


def default_ttl(role: str) -> timedelta:
    """How long a token of ``role`` lives unless told otherwise (a shift when unknown)."""
    return DEFAULT_TTL.get(role, SHIFT)


def parse_duration(text: str, *, what: str = "--ttl", allow_zero: bool = False) -> timedelta:
    """``"8h"``, ``"30d"``, ``"10m"``, ``"90s"``, ``"2w"`` as a timedelta, at most a year.

    Raises :class:`TokenError` naming the option and the forms it takes.
    """
    found = _DURATION.match(text)
    if found is None:
        raise TokenError(f"{what} {text!r} is not a duration; write a number and a unit: "
                         "90s, 10m, 8h, 30d or 2w")
    value = timedelta(seconds=int(found[1]) * _UNIT[found[2]])
    if value <= timedelta(0) and not allow_zero:
        raise TokenError(f"{what} must be longer than nothing; e.g. 8h")
    if value > MAX_TTL:
        raise TokenError(f"{what} {text!r} is over a year; a token must be renewed at least "
                         "yearly (ecc token rotate)")
    return value


def parse_kinds(text: str | None, role: str) -> tuple[str, ...] | None:
    """The doors of ``--kinds hotline,cap`` for an adapter token (required for one, refused
    for every other role); None for roles that post nothing."""
    if role != "adapter":
        if text:
            raise TokenError(f"--kinds is for adapter tokens; a {role} token posts nothing "
                             "at the ingress")
        return None
    if not text or not text.strip():
        raise TokenError("an adapter token needs --kinds: the doors it may post to, from "
                         f"{', '.join(DOORS)} (e.g. --kinds hotline)")
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in DOORS]
    if unknown or not kinds:
        raise TokenError(f"unknown kind {', '.join(map(repr, unknown))} in --kinds; "
                         f"the ingress doors are {', '.join(DOORS)}")
    return tuple(sorted(set(kinds), key=DOORS.index))


def door_refusal(role: str, kinds: Iterable[str] | None, door: str) -> str | None:
    """Why a token of ``role`` with ``kinds`` may not post at ``door`` (a reason a person can
    act on), or None when it may."""
    if role not in INGRESS_ROLES:
        return (f"a {role} token cannot feed records; the platform needs its own token: "
                f"ecc token create --role adapter --name <platform> --kinds {door}")
    may = tuple(kinds or ())
    if door not in may:
        sends = ", ".join(may) if may else "nothing"
        return (f"this token may send {sends}, not {door}; ask an admin for a token with "
                f"--kinds {door} (ecc token rotate --name <platform> --kinds ...)")
    return None
