"""The promises of the layout: a pure core, and public names pinned."""

from __future__ import annotations

import ast
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
