"""The promises of the layout: a pure core, layers that import downwards only, one
importer of the database driver, modules small or saying why, and public names pinned."""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

import workflows

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {"nats", "asyncpg", "websockets", "asyncio", "structlog", "command", "adapters",
             "consoles", "socket", "subprocess", "random", "time"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_workflows_is_pure() -> None:
    """workflows/ imports no I/O library, no shell package and no clock or randomness."""
    for path in sorted((ROOT / "workflows").rglob("*.py")):
        bad = imported_modules(path) & FORBIDDEN
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"
        text = path.read_text()
        for call in ("datetime.now(", "uuid4(", "time.time("):
            assert call not in text, f"{path.relative_to(ROOT)} calls {call}"


def test_core_modules_of_command_do_no_io() -> None:
    """command's pure modules (wire models, subjects, the report and the SF records) stay
    free of I/O libraries."""
    for name in ("model.py", "subjects.py", "report.py", "report_html.py", "sf_fire.py"):
        bad = imported_modules(ROOT / "command" / name) & (FORBIDDEN - {"command"})
        assert not bad, f"command/{name} imports {sorted(bad)}"
    bad = imported_modules(ROOT / "consoles" / "protocol.py") & (FORBIDDEN - {"command"})
    assert not bad, f"consoles/protocol.py imports {sorted(bad)}"


def test_workflows_public_names_are_pinned() -> None:
    """The core's public names change only on purpose."""
    assert sorted(workflows.__all__) == [
        "Catalogue", "CatalogueError", "Incident", "IncidentCommand", "IncidentEvent",
        "IncidentReported", "Location", "Rejected", "ReportIncident", "Task", "Unit",
        "UnitCommand", "UnitEvent", "decide", "evolve", "fold", "is_open", "parse_catalogue",
    ]


# --- layers ---------------------------------------------------------------------------

# Our top-level packages; ``ecc`` is the wiring (above all others).
OURS = {"workflows", "command", "adapters", "consoles", "sim", "bench", "tests", "ecc"}
PRODUCT = ("workflows", "command", "adapters", "consoles", "sim", "bench", "ecc")
# The service and the adapters never reach up into what people see, the simulator, the
# benchmarks or the wiring.
ABOVE_THE_SERVICE = {"consoles", "sim", "bench", "tests", "ecc"}
# Exceptions, each by name with its reason. Each must still need its exemption (the test
# fails when it no longer does), so the list can only shrink. None today: the composition
# root and the CLI moved up into ecc/ (issue 14, part 3).
LAYER_EXEMPT: dict[str, set[str]] = {}
ASYNCPG_EXEMPT = {
    # benchmarks measure the database as it is, beside the service
    "bench/memory.py": "measures the service's memory with its own pool",
    "bench/recovery.py": "kills and restarts the database to time recovery",
    "bench/servers.py": "starts the servers the benchmarks use",
}
MAX_LINES = 500


def modules(*packages: str) -> list[Path]:
    return sorted(p for package in packages for p in (ROOT / package).rglob("*.py"))


def name_of(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_workflows_imports_nothing_of_ours() -> None:
    """The core stands alone: no module of workflows/ imports another package of ECC."""
    for path in modules("workflows"):
        bad = imported_modules(path) & (OURS - {"workflows"})
        assert not bad, f"{name_of(path)} imports {sorted(bad)}"


def test_the_service_and_the_adapters_import_no_package_above_them() -> None:
    """command/ and adapters/ import neither consoles/, sim/, bench/ nor the wiring; a
    module exempt still needs its exemption, and only it."""
    for path in modules("command", "adapters"):
        bad = imported_modules(path) & ABOVE_THE_SERVICE
        allowed = LAYER_EXEMPT.get(name_of(path), set())
        assert bad <= allowed, f"{name_of(path)} imports {sorted(bad - allowed)}"
        assert bad == allowed, f"{name_of(path)} no longer needs its exemption: drop it"
    assert all((ROOT / name).exists() for name in LAYER_EXEMPT)


def in_the_store(path: Path) -> bool:
    """Whether ``path`` is a module of the store package (command/store/)."""
    return path.is_relative_to(ROOT / "command" / "store")


def package_imports() -> dict[str, set[str]]:
    """Each product package and the other packages of ours its modules import."""
    return {package: set().union(*(imported_modules(p) for p in modules(package)))
            & (OURS - {package}) for package in PRODUCT}


def test_nothing_imports_the_wiring() -> None:
    """ecc/ is the top of the house: no product package imports it (tests may)."""
    for package, imported in package_imports().items():
        assert "ecc" not in imported, f"{package}/ imports ecc"


def test_the_wiring_alone_brings_the_service_the_adapters_and_the_consoles_together() -> None:
    """ecc/ imports command, adapters, consoles and sim (it builds them all), and below it
    the packages import each other without a cycle."""
    graph = package_imports()
    assert {"workflows", "command", "adapters", "consoles", "sim"} <= graph["ecc"]
    done: set[str] = set()

    def visit(package: str, path: tuple[str, ...]) -> None:
        assert package not in path, f"a cycle: {' -> '.join((*path, package))}"
        if package in done or package not in graph:
            return
        for other in sorted(graph[package]):
            visit(other, (*path, package))
        done.add(package)

    for package in PRODUCT:
        visit(package, ())


def test_the_frigate_topic_root_lives_in_the_video_adapter_only() -> None:
    """The service, the consoles and the wiring read Frigate's MQTT topic root from the video
    adapter's spec (adapters/video.py); no other module of theirs spells it."""
    for path in modules("command", "adapters", "consoles", "ecc"):
        if name_of(path) == "adapters/video.py":
            continue
        found = [node.lineno for node in ast.walk(ast.parse(path.read_text()))
                 if isinstance(node, ast.Constant) and isinstance(node.value, str)
                 and node.value.startswith(("frigate", "ecc.frigate"))]
        assert not found, f"{name_of(path)} spells the Frigate topic root at lines {found}"


def test_only_the_store_imports_asyncpg() -> None:
    """The store package (command/store/) is the database's one door; each module exempt
    today is named with its reason and still imports the driver (a stale exemption fails)."""
    for path in modules(*PRODUCT):
        if "asyncpg" not in imported_modules(path) or in_the_store(path):
            continue
        assert name_of(path) in ASYNCPG_EXEMPT, f"{name_of(path)} imports asyncpg"
    for name in ASYNCPG_EXEMPT:
        assert "asyncpg" in imported_modules(ROOT / name), \
            f"{name} no longer imports asyncpg: drop its exemption"


def size_reason(path: Path) -> str | None:
    """The reason in a ``# size: <reason>`` comment in the first 30 lines, if any."""
    text = path.read_text()
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.start[0] > 30:
            break
        if token.type == tokenize.COMMENT and token.string.startswith("# size:"):
            return token.string.removeprefix("# size:").strip()
    return None


def test_no_module_is_over_500_lines_without_a_reason_at_its_top() -> None:
    """A module (tests too) over 500 lines says why in a ``# size:`` comment among its
    first 30 lines; a reason on a module back under the limit is dropped."""
    for path in modules(*PRODUCT, "tests"):
        lines = len(path.read_text().splitlines())
        reason = size_reason(path)
        if lines > MAX_LINES:
            assert reason and len(reason) >= 20, \
                f"{name_of(path)} has {lines} lines: split it, or say why in a " \
                "'# size: <reason>' comment in its first 30 lines"
        else:
            assert reason is None, f"{name_of(path)} has {lines} lines: drop its size reason"
