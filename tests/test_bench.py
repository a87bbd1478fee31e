"""The benchmark runner: `python -m bench.run` writes latest.json in the agreed shape."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(60)
def test_bench_run_quick_writes_the_metrics_list_and_the_machine(tmp_path: Path) -> None:
    """A quick run of the workflow benchmark writes named metrics, each rate with its
    baseline from the same run and ratio = value / baseline_value, and the machine."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--only", "workflow", "--out",
         str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=50, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    metrics = json.loads((tmp_path / "latest.json").read_text())
    assert isinstance(metrics, list)
    by_name = {m["name"]: m for m in metrics}
    assert set(by_name) == {"workflow.steps_per_s", "workflow.python_statemachine_steps_per_s"}
    for m in metrics:
        assert {"name", "value", "unit"} <= m.keys()
        assert isinstance(m["value"], int | float) and m["value"] > 0
    rate = by_name["workflow.steps_per_s"]
    assert rate["unit"] == "steps/s"
    assert rate["baseline"] == "workflow.python_statemachine_steps_per_s"
    assert rate["baseline_value"] == by_name[rate["baseline"]]["value"]
    assert math.isclose(rate["ratio"], rate["value"] / rate["baseline_value"], rel_tol=1e-3)
    meta = json.loads((tmp_path / "latest-meta.json").read_text())
    assert {"cores", "python", "platform", "date", "commit", "quick"} <= meta.keys()
    assert meta["quick"] is True and meta["benchmarks"]["workflow"]["exit"] == 0
    assert (tmp_path / "workflow.json").exists()  # the benchmark's own detail
    assert "workflow.steps_per_s" in done.stdout  # the table


def test_bench_run_refuses_an_unknown_benchmark(tmp_path: Path) -> None:
    """--only with a name that is no benchmark stops with status 2 and the list."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--only", "nosuch", "--out", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 2
    assert "workflow" in done.stderr
    assert not (tmp_path / "latest.json").exists()
