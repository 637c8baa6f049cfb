"""RUNBOOK.md covers every alert rule, and its commands are real ones."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from consistency import cli as consistency_cli
from replicator import cli as replicator_cli

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = (ROOT / "RUNBOOK.md").read_text(encoding="utf-8")
RULES = yaml.safe_load((ROOT / "infra/monitoring/prometheus-rules.yaml").read_text())
FAILURES = [
    "region-down",
    "region-lost-its-data",
    "region-cut-off",
    "stale-region",
    "broker-loss",
    "dead-letter-growth",
    "registry-or-model-version-mismatch-stuck-rollout",
    "cost-spike",
    "clock-skew",
]
PARTS = ["**Alert:**", "**Confirm:**", "**Fix:**", "**Verify:**", "**Drill:**"]


def anchor(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def sections() -> dict[str, str]:
    parts = re.split(r"^## (.+)$", RUNBOOK, flags=re.MULTILINE)
    return {anchor(title): body for title, body in zip(parts[1::2], parts[2::2], strict=True)}


def test_every_alert_rule_names_a_runbook_section_that_exists() -> None:
    known = sections()
    rules = [rule for group in RULES["groups"] for rule in group["rules"]]
    assert len(rules) >= 15
    for rule in rules:
        url = rule["annotations"].get("runbook_url", "")
        page, _, section = url.partition("#")
        assert page == "RUNBOOK.md" and section in known, f"{rule['alert']}: {url!r}"
        assert f"`{rule['alert']}`" in known[section], f"{rule['alert']} not named in #{section}"


@pytest.mark.parametrize("section", FAILURES)
def test_each_failure_has_alert_confirm_fix_verify_and_drill(section: str) -> None:
    body = sections()[section]
    assert [part for part in PARTS if part not in body] == []


def commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", RUNBOOK, flags=re.DOTALL)
    lines = [line.split("  #")[0].strip() for block in blocks for line in block.splitlines()]
    inline = re.findall(r"`((?:replicator|consistency) [^`]+)`", RUNBOOK)
    found = [c for c in lines + inline if c.startswith(("replicator ", "consistency "))]
    assert len(found) >= 20
    return found


def test_every_command_in_the_runbook_parses_with_the_real_cli() -> None:
    parsers = {
        "replicator": replicator_cli.build_parser(),
        "consistency": consistency_cli.build_parser(),
    }
    bad = []
    for command in commands():
        program, *args = shlex.split(command)
        try:
            parsers[program].parse_args(args)
        except SystemExit:
            bad.append(command)
    assert bad == []
