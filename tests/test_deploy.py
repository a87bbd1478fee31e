"""The container files (docker-compose.yml, Dockerfile, deploy/) against the code.

No Docker engine runs here, so nothing starts a container: these tests read the
files and check what would otherwise only fail on a deployment. The compose
file is read with PyYAML; the nats-server files are read as text for the keys
that matter (a tiny reader below, not a parser of the whole format), and the
users file is compared with command/natsauth.py, which the embedded runtime
uses. Pure and fast: no network, no processes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from adapters.ingest import KINDS, SPECS
from command import natsauth
from command.bus import MAX_MSG_BYTES
from command.natsconf import nats_auth_conf

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
NODES = ("nats-1", "nats-2", "nats-3")
ECC_IMAGE = "ecc:dev"


# --- readers ----------------------------------------------------------------------


def compose() -> dict[str, Any]:
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(doc, dict)
    return doc


def services() -> dict[str, dict[str, Any]]:
    found = compose()["services"]
    assert isinstance(found, dict)
    return found


def ecc_services() -> dict[str, dict[str, Any]]:
    """The services that run the ECC image (the service replicas and the adapters)."""
    return {name: s for name, s in services().items() if s.get("image") == ECC_IMAGE}


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    assert isinstance(env, dict), "environment as a mapping, so merges and names are plain"
    return {str(k): str(v) for k, v in env.items()}


def conf_text(name: str) -> str:
    """A nats-server file without its comments (these files use # only, and no subject
    in them contains #)."""
    lines = (DEPLOY / name).read_text().splitlines()
    return "\n".join(re.sub(r"#.*$", "", line) for line in lines)


def value(text: str, key: str) -> str | None:
    """The value of a top-level-looking ``key: value`` line (first match), unquoted."""
    found = re.search(rf"^\s*{key}\s*[:=]?\s*\"?([^\"\s]+)\"?\s*$", text, re.MULTILINE)
    return found.group(1) if found else None


def block(text: str, key: str) -> str | None:
    """The text inside ``key { ... }``, braces matched."""
    found = re.search(rf"^\s*{key}\s*[:=]?\s*{{", text, re.MULTILINE)
    if found is None:
        return None
    depth, start = 1, found.end()
    for i in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[start:i]
    raise AssertionError(f"unbalanced braces after {key}")


def size(text: str) -> int:
    found = re.fullmatch(r"(\d+)([KMG]B?)?", text.upper())
    assert found, f"not a size: {text!r}"
    number, unit = found.groups()
    return int(number) * {None: 1, "K": 1000, "KB": 1024, "M": 1000**2, "MB": 1024**2,
                          "G": 1000**3, "GB": 1024**3}[unit]


def routes(text: str) -> list[str]:
    cluster = block(text, "cluster") or ""
    found = re.search(r"routes\s*[:=]?\s*\[(.*?)\]", cluster, re.DOTALL)
    return found.group(1).split() if found else []


def user_entries(text: str) -> list[dict[str, Any]]:
    """The ``users = [...]`` array of deploy/nats-auth.conf as JSON, each ``$NAME``
    password (an environment variable) read as the string ``"$NAME"``."""
    start = text.index("[", text.index("users"))
    depth, in_string = 0, False
    for i in range(start, len(text)):
        ch = text[i]
        if ch == '"':
            in_string = not in_string
        elif not in_string:
            depth += {"[": 1, "]": -1}.get(ch, 0)
            if depth == 0:
                array = text[start:i + 1]
                break
    else:
        raise AssertionError("users array not closed")
    return list(json.loads(re.sub(r'(?<!")\$([A-Z][A-Z0-9_]*)', r'"$\1"', array)))


def unit_template() -> dict[str, Any]:
    raw = (DEPLOY / "nats-auth.conf").read_text()
    body = raw[raw.index("# unit template begin"):raw.index("# unit template end")]
    lines = [re.sub(r"^\s*#\s?", "", line) for line in body.splitlines()[1:]]
    (entry,) = user_entries("users = [" + "\n".join(lines) + "]")
    return entry


def expected_entries(users: list[str]) -> dict[str, dict[str, Any]]:
    """What command/natsauth.py writes for these users, passwords left out."""
    text = natsauth.authorization({u: "x" for u in users}, adapters=SPECS)
    entries = [json.loads(line) for line in text.splitlines() if line.strip().startswith("{")]
    return {e["user"]: without_password(e) for e in entries}


def without_password(entry: dict[str, Any]) -> dict[str, Any]:
    """The entry minus its password, with subject lists sorted (order carries no meaning)."""
    out = {k: v for k, v in entry.items() if k != "password"}
    for verbs in out.get("permissions", {}).values():
        for rule, subjects in verbs.items():
            verbs[rule] = sorted(subjects)
    return out


def password_var(entry: dict[str, Any]) -> str:
    password = entry["password"]
    assert re.fullmatch(r"\$[A-Z][A-Z0-9_]*", password), \
        f"{entry['user']}: the password is an environment variable, not {password!r}"
    return str(password[1:])


def url_parts(url: str) -> tuple[str | None, str | None, str | None]:
    """``(user, password variable, host)`` of a URL whose password is ``${VAR}``."""
    parts = urlsplit(url)
    password = parts.password or ""
    var = re.fullmatch(r"\$\{([A-Z][A-Z0-9_]*)\}", password)
    return parts.username, var.group(1) if var else None, parts.hostname


def settings_names() -> set[str]:
    """Every ``ECC_*`` name command/settings.py reads from the environment."""
    return set(re.findall(r"[\"'](ECC_[A-Z_]+)[\"']",
                          (ROOT / "command" / "settings.py").read_text()))


# --- nats-server --------------------------------------------------------------------


def test_cluster_profile_runs_three_nats_nodes() -> None:
    """The `cluster` profile has exactly nats-1..3, each with its own file and volume."""
    svc = services()
    cluster = sorted(n for n, s in svc.items() if "cluster" in (s.get("profiles") or []))
    assert cluster == list(NODES)
    declared = set(compose()["volumes"])
    volumes = set()
    for node in NODES:
        mounts = svc[node]["volumes"]
        assert f"./deploy/{node}.conf:/etc/nats/nats.conf:ro" in mounts
        assert "./deploy/nats-auth.conf:/etc/nats/nats-auth.conf:ro" in mounts
        (data,) = [m.split(":")[0] for m in mounts if m.split(":")[1] == "/data"]
        assert data in declared
        volumes.add(data)
        assert svc[node]["networks"]["default"]["aliases"] == ["nats"]
    assert len(volumes) == 3, "each node keeps its own JetStream store"


def test_single_profile_runs_one_nats_node() -> None:
    """The `single` profile has one node, `nats`, on deploy/nats.conf."""
    svc = services()
    single = [n for n, s in svc.items() if "single" in (s.get("profiles") or [])]
    assert single == ["nats"]
    assert "./deploy/nats.conf:/etc/nats/nats.conf:ro" in svc["nats"]["volumes"]
    assert block(conf_text("nats.conf"), "cluster") is None


def test_cluster_nodes_route_to_each_other() -> None:
    """Each node names the other two as routes, under its own server name, in one cluster."""
    names, clusters = [], set()
    for node in NODES:
        text = conf_text(f"{node}.conf")
        names.append(value(text, "server_name"))
        cluster = block(text, "cluster")
        assert cluster is not None
        clusters.add(value(cluster, "name"))
        assert value(cluster, "listen") == "0.0.0.0:6222"
        hosts = sorted(urlsplit(r).hostname or "" for r in routes(text))
        assert hosts == sorted(n for n in NODES if n != node)
        assert all(urlsplit(r).port == 6222 for r in routes(text))
    assert names == list(NODES), "server_name is unique and matches the compose service"
    assert len(clusters) == 1


@pytest.mark.parametrize("name", ["nats.conf", *(f"{n}.conf" for n in NODES)])
def test_every_node_fsyncs_and_caps_payloads(name: str) -> None:
    """JetStream fsyncs every write, payloads stop at the streams' limit, MQTT is on,
    and the users are included."""
    text = conf_text(name)
    jetstream = block(text, "jetstream")
    assert jetstream is not None
    assert value(jetstream, "sync_interval") == "always"
    assert value(jetstream, "store_dir") == "/data"
    payload = value(text, "max_payload")
    assert payload is not None and size(payload) == MAX_MSG_BYTES
    assert value(text, "server_name"), "MQTT with JetStream needs a server name"
    mqtt = block(text, "mqtt")
    assert mqtt is not None and value(mqtt, "listen") == "0.0.0.0:1883"
    assert re.search(r'^\s*include\s+"nats-auth.conf"\s*$', text, re.MULTILINE)


@pytest.mark.parametrize("node", NODES)
def test_cluster_mqtt_keeps_three_copies(node: str) -> None:
    """MQTT's own streams (sessions, retained messages) are replicated like ECC's."""
    mqtt = block(conf_text(f"{node}.conf"), "mqtt")
    assert mqtt is not None and value(mqtt, "stream_replicas") == "3"


def test_nats_users_are_those_of_natsauth() -> None:
    """deploy/nats-auth.conf grants exactly what command/natsauth.py grants."""
    entries = user_entries(conf_text("nats-auth.conf"))
    users = [e["user"] for e in entries]
    assert users == natsauth.components(adapters=SPECS)
    expected = expected_entries(users)
    for entry in entries:
        password_var(entry)
        assert without_password(entry) == expected[entry["user"]], entry["user"]


def test_unit_template_is_that_of_natsauth() -> None:
    """The commented unit entry is what command/natsauth.py grants unit E12."""
    entry = unit_template()
    assert entry["user"] == natsauth.unit_user("E12")
    assert password_var(entry) == "ECC_NATS_UNIT_E12_PASSWORD"
    assert without_password(entry) == expected_entries([entry["user"]])[entry["user"]]


def test_nats_containers_get_every_password() -> None:
    """Each nats-server container has every password variable deploy/nats-auth.conf reads."""
    wanted = {password_var(e) for e in user_entries(conf_text("nats-auth.conf"))}
    for name in ("nats", *NODES):
        env = environment(services()[name])
        assert wanted <= set(env), name
        for var in wanted:
            assert env[var].startswith(f"${{{var}:?"), f"{name}: {var} comes from .env, required"


# --- the service and the adapters ---------------------------------------------------


def test_the_service_runs_as_two_replicas() -> None:
    """Two `ecc serve` containers, as the `ecc` user, on distinct host ports, no adapters
    in-process, ready only when /readyz says so."""
    replicas = {n: s for n, s in ecc_services().items() if s.get("command") == ["serve"]}
    assert sorted(replicas) == ["ecc-1", "ecc-2"]
    users = {password_var(e): e["user"] for e in user_entries(conf_text("nats-auth.conf"))}
    host_ports = []
    for name, service in replicas.items():
        env = environment(service)
        user, var, host = url_parts(env["NATS_URL"])
        assert (user, host) == (natsauth.SERVICE, "nats") and users[var or ""] == user
        assert urlsplit(env["DATABASE_URL"]).hostname == "postgres"
        assert env["ECC_ADAPTERS"] == "", "the adapters run in their own containers"
        assert env["ECC_STREAM_REPLICAS"].startswith("${ECC_STREAM_REPLICAS:?"), name
        assert service["healthcheck"]["test"][-1] == "/readyz"
        host_ports += [p.split(":")[0] for p in service["ports"]]
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
        for nats in ("nats", *NODES):
            assert service["depends_on"][nats] == {"condition": "service_healthy",
                                                   "required": False}
    assert len(host_ports) == len(set(host_ports))
    assert replicas["ecc-2"]["depends_on"]["ecc-1"]["condition"] == "service_healthy"


def test_each_adapter_runs_once_as_its_own_user() -> None:
    """One container per adapter kind, connected as adapter-<kind> with that user's password."""
    users = {password_var(e): e["user"] for e in user_entries(conf_text("nats-auth.conf"))}
    found = {s["command"][1]: s for s in ecc_services().values()
             if s.get("command", [None])[0] == "adapter"}
    assert sorted(found) == sorted(KINDS)
    for kind, service in found.items():
        assert service["command"] == ["adapter", kind], "no --http-port: the replicas serve it"
        user, var, host = url_parts(environment(service)["NATS_URL"])
        assert user == natsauth.adapter_user(kind) and users[var or ""] == user
        assert host == "nats"
        assert service["healthcheck"] == {"disable": True}, "no console port to probe"
        assert "postgres" not in service.get("depends_on", {})


def test_postgres_keeps_its_data_in_a_volume() -> None:
    """PostgreSQL's data directory is a named volume, and it is not published."""
    postgres = services()["postgres"]
    (data,) = [m.split(":")[0] for m in postgres["volumes"]
               if m.split(":")[1] == "/var/lib/postgresql/data"]
    assert data in compose()["volumes"]
    assert "ports" not in postgres
    assert environment(postgres)["POSTGRES_PASSWORD"].startswith("${ECC_POSTGRES_PASSWORD:?")


def test_stream_replicas_is_a_setting() -> None:
    """ECC_STREAM_REPLICAS, which the cluster profile needs, is read by command/settings.py."""
    assert "ECC_STREAM_REPLICAS" in settings_names()


def test_containers_use_only_settings_ecc_reads() -> None:
    """Every ECC_* name given to an ECC container (compose or Dockerfile) is a setting."""
    known = settings_names() | {"NATS_URL", "DATABASE_URL"}
    for name, service in ecc_services().items():
        unknown = set(environment(service)) - known
        assert not unknown, f"{name}: {sorted(unknown)} are not read by command/settings.py"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert set(re.findall(r"\b(ECC_[A-Z_]+)=", dockerfile)) <= known


def test_env_example_names_every_variable() -> None:
    """deploy/.env.example names every ${VAR} of docker-compose.yml and pairs each
    profile with its number of stream copies."""
    raw = (ROOT / "docker-compose.yml").read_text()
    used = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", raw))
    example = (DEPLOY / ".env.example").read_text()
    named = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", example, re.MULTILINE))
    assert used <= named
    lines = [line.strip() for line in example.splitlines()]
    assert {"COMPOSE_PROFILES=single", "ECC_STREAM_REPLICAS=1"} <= set(lines)
    assert {"# COMPOSE_PROFILES=cluster", "# ECC_STREAM_REPLICAS=3"} <= set(lines)


# --- the image ----------------------------------------------------------------------


def test_dockerfile_runs_ecc_as_a_user_with_a_healthcheck() -> None:
    """One Dockerfile: python:3.11-slim, not root, `ecc` as entrypoint, /healthz probed."""
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\s*$", text, re.MULTILINE)
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert users and users[-1] not in ("root", "0")
    health = re.search(r"^HEALTHCHECK .*?CMD (.*)$", text, re.MULTILINE | re.DOTALL)
    assert health and "/app/deploy/probe.py" in health.group(1) and "/healthz" in health.group(1)
    assert (DEPLOY / "probe.py").is_file()
    assert re.search(r'^ENTRYPOINT \["ecc"\]\s*$', text, re.MULTILINE)
    assert re.search(r"^EXPOSE 8780 8781\s*$", text, re.MULTILINE)
    for service in ecc_services().values():
        assert service["build"] == "."


def test_image_leaves_secrets_and_local_state_out() -> None:
    """.dockerignore keeps .env, the embedded data folder and local environments out."""
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {"**/.env", ".ecc", ".venv", ".git"} <= set(ignored)


def test_nats_auth_conf_is_what_the_generator_writes() -> None:
    """deploy/nats-auth.conf is generated from the adapters' specs (`ecc nats-auth`), so
    nobody keeps it by hand: the committed file is exactly what the generator writes."""
    assert (DEPLOY / "nats-auth.conf").read_text() == nats_auth_conf(SPECS), \
        "run `ecc nats-auth --out deploy/nats-auth.conf`"
