"""The README's main job: ``replicator demo --once`` on the local stack."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from replicator.config import Topology

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_demo_replicates_to_every_region_and_reads_match(
    topology: Topology, config_file: Path
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "replicator.cli", "--config", str(config_file), "demo", "--once"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rows = {
        line.split()[0]: line
        for line in result.stdout.splitlines()
        if line.split() and line.split()[0] in topology.regions
    }
    assert set(rows) == set(topology.regions), result.stdout
    for region, line in rows.items():
        assert "same as primary" in line, line
        assert " yes" in line, line
        applied = int(line.split()[1].replace(",", ""))
        assert applied > 0, f"{region} applied nothing: {line}"
    # The consistency checker's report follows, every region within its bounds.
    report = result.stdout.split("consistency check --once", 1)[1]
    for region in topology.regions:
        assert f"{region}: OK" in report, report
    assert "every bound holds" in report, report
