"""Core: deploy/nats-auth.conf, generated from the grants.

:func:`nats_auth_conf` writes the users file that deploy/nats.conf and the
cluster's nats-1.conf .. nats-3.conf include: the service, one user per adapter
(from the adapters' declarations, :class:`command.specs.AdapterSpec`), the MQTT
devices, and a commented entry for a field unit to copy. The grants are
:func:`command.natsauth.entry`'s, the same the embedded runtime writes for
``ecc up``. Passwords are environment variables (:func:`password_var`), which
nats-server reads when it starts. ``ecc nats-auth --out deploy/nats-auth.conf``
writes the file; tests/test_deploy.py checks that the committed one is what this
writes, so nobody edits it by hand. Pure: specs in, text out.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence

from command import natsauth
from command.specs import AdapterSpec

__all__ = ["UNIT_EXAMPLE", "nats_auth_conf", "password_var"]

UNIT_EXAMPLE = "E12"
WIDTH = 88

_HEADER = """\
# Who may connect to nats-server, and what each may publish and subscribe.
# Included by deploy/nats.conf (one node) and deploy/nats-1.conf .. nats-3.conf
# (the cluster). docs/deploy.md ("NATS users") explains it.
#
# GENERATED: do not edit. `ecc nats-auth --out deploy/nats-auth.conf` writes it
# from the adapters' declarations (the SPEC of each adapter module, the type in
# command/specs.py) and the grants of command/natsauth.py, which the embedded
# runtime writes for `ecc up` too; tests/test_deploy.py checks that this file is
# what the generator writes. Change those, then run the command.
#
# Passwords come from the environment: nats-server reads an unquoted $NAME
# that this file does not define from its environment, and refuses to start
# when it is missing. docker-compose.yml passes them in from .env, and
# deploy/.env.example names them. Make each one a letter followed by letters
# and digits (`echo p$(openssl rand -hex 24)`): the service and the adapters
# carry theirs inside NATS_URL, and nats-server reads a value made of digits
# alone as a number and refuses it.
#
# The subjects assume ECC_NAMESPACE=ecc (the default). A string in double
# quotes is never a variable, so every "$JS..." subject stays as written.
#
# Every user but `ecc` receives its replies on an inbox of its own,
# _INBOX_<user>.>; with the shared _INBOX.> any component could read every
# other one's replies. An adapter may read its own durable consumers and
# check that its streams exist, but not create, change or delete a stream:
# only the service does that.
"""

_UNIT_HOWTO = (
    "A field unit's device (`ecc unit --id E12`): one user per unit. To add one, copy "
    "the entry between the two markers below, uncomment it, put a comma after the entry "
    "before it, change E12 to the unit's id everywhere (and to its id with - as _ in the "
    "variable's name), and give the nats-server containers the variable "
    "(docker-compose.yml, .env).")


def password_var(user: str) -> str:
    """The environment variable that holds ``user``'s password: ``ECC_NATS_PASSWORD`` for
    the service, ``ECC_NATS_<KIND>_PASSWORD`` for an adapter, ``ECC_NATS_DEVICES_PASSWORD``,
    ``ECC_NATS_UNIT_<ID>_PASSWORD`` for a unit (``-`` as ``_``)."""
    if user == natsauth.SERVICE:
        return "ECC_NATS_PASSWORD"
    name = user.removeprefix("adapter-")
    return f"ECC_NATS_{name.upper().replace('-', '_')}_PASSWORD"


def _comment(text: str, indent: str = "    ") -> list[str]:
    return textwrap.wrap(text, WIDTH - len(indent) - 2, initial_indent=f"{indent}# ",
                         subsequent_indent=f"{indent}# ", break_on_hyphens=False)


def _verb(verb: str, rules: dict[str, list[str]], indent: str) -> list[str]:
    """``"publish": {"allow": [...]}``, on one line if it fits, else one subject list
    wrapped under its opening line."""
    ((rule, subjects),) = rules.items()
    quoted = [json.dumps(s) for s in subjects]
    one = f'{indent}"{verb}": {{"{rule}": [{", ".join(quoted)}]}}'
    if len(one) <= WIDTH:
        return [one]
    lines, line = [f'{indent}"{verb}": {{"{rule}": ['], ""
    inner = indent + "  "
    for i, item in enumerate(quoted):
        piece = item + ("]}" if i == len(quoted) - 1 else ",")
        if line and len(inner) + len(line) + 1 + len(piece) > WIDTH:
            lines.append(inner + line)
            line = ""
        line = f"{line} {piece}" if line else piece
    lines.append(inner + line)
    return lines


def _entry(user: str, adapters: Sequence[AdapterSpec], last: bool) -> list[str]:
    """One user's entry as nats-server reads it (JSON, the password a variable)."""
    found = natsauth.entry(user, "", adapters=adapters)
    types = json.dumps(found["allowed_connection_types"])
    lines = [f'    {{"user": {json.dumps(user)}, "password": ${password_var(user)},',
             f'     "allowed_connection_types": {types}']
    end = "" if last else ","
    permissions = found.get("permissions")
    if not isinstance(permissions, dict):
        lines[-1] += "}" + end
        return lines
    lines[-1] += ","
    lines.append('     "permissions": {')
    verbs = list(permissions.items())
    for i, (verb, rules) in enumerate(verbs):
        part = _verb(verb, rules, "       ")
        part[-1] += "," if i < len(verbs) - 1 else "}}" + end
        lines += part
    return lines


def nats_auth_conf(adapters: Sequence[AdapterSpec]) -> str:
    """deploy/nats-auth.conf for these adapters: the service, each adapter, the devices,
    and the commented template of a unit's entry."""
    lines = [_HEADER, "authorization {", "  users = ["]
    lines += _comment("The service (`ecc serve`, and the `ecc` commands run beside it): "
                      "everything.")
    lines += _entry(natsauth.SERVICE, adapters, last=False)
    for spec in adapters:
        lines += ["", *_comment(spec.about or f"The {spec.kind} adapter."),
                  *_entry(spec.user, adapters, last=False)]
    roots = dict.fromkeys(r for spec in adapters for r in spec.mqtt_roots())
    lines += ["", *_comment("Sensors and camera platforms, over MQTT only: they publish "
                            f"{' and '.join(f'{r}/#' for r in roots)} and read nothing."),
              *_entry(natsauth.DEVICES, adapters, last=True), "", *_comment(_UNIT_HOWTO),
              "    # unit template begin"]
    unit = _entry(natsauth.unit_user(UNIT_EXAMPLE), adapters, last=True)
    lines += [f"    # {line[4:]}" if line.startswith("    ") else f"    # {line}"
              for line in unit]
    lines += ["    # unit template end", "  ]", "}", ""]
    return "\n".join(lines)
