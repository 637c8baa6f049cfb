"""The Terraform under infra/terraform, checked offline: `terraform fmt -check`, checkov's
static analysis, and the module layout (every variable typed and described). `terraform
validate` needs the AWS provider, which cannot be downloaded here (docs/deploy.md)."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from deploy_tools import ROOT, run, tool, tools_python

from replicator.stack.redis_server import ADMIN_RULES, CHECKER_RULES, READER_RULES, WRITER_RULES

TERRAFORM = ROOT / "infra" / "terraform"
MODULE_DIRS = sorted(
    p for p in [*TERRAFORM.glob("modules/*"), *TERRAFORM.glob("examples/*")] if p.is_dir()
)


def checkov(directory: Path) -> dict[str, Any]:
    python = tools_python("checkov")
    args = ["-d", str(directory), "--framework", "terraform", "--skip-download", "-o", "json"]
    done = run(
        [python, "-m", "checkov.main", *args, "--quiet"],
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"},
    )
    assert done.stdout.strip(), done.stderr[-2000:]
    report = json.loads(done.stdout)
    return report[0] if isinstance(report, list) else report


def test_terraform_is_formatted() -> None:
    done = run([tool("terraform"), "fmt", "-check", "-recursive", "-diff", str(TERRAFORM)])
    assert done.returncode == 0, done.stdout + done.stderr


def test_checkov_finds_nothing_unjustified() -> None:
    report = checkov(TERRAFORM)
    summary = report["summary"]
    failed = [
        (c["check_id"], c["resource"], c["file_path"]) for c in report["results"]["failed_checks"]
    ]
    assert failed == [] and summary["passed"] > 100
    # Every suppression says why, next to the resource it concerns.
    skips = [
        line.strip()
        for path in TERRAFORM.rglob("*.tf")
        for line in path.read_text().splitlines()
        if "checkov:skip=" in line
    ]
    assert skips and all(re.fullmatch(r"# checkov:skip=CKV\w+:.{20,}", s) for s in skips), skips


def test_checkov_would_flag_a_bucket_without_versioning(tmp_path: Path) -> None:
    module = tmp_path / "region"
    shutil.copytree(TERRAFORM / "modules" / "region", module)
    s3 = module / "s3.tf"
    s3.write_text(
        s3.read_text().replace('status = "Enabled"\n  }\n}', 'status = "Suspended"\n  }\n}')
    )
    failed = {c["check_id"] for c in checkov(module)["results"]["failed_checks"]}
    assert "CKV_AWS_21" in failed


def test_every_module_has_the_standard_files_and_typed_described_variables() -> None:
    assert {p.name for p in MODULE_DIRS} >= {"region", "three-regions", "single-region"}
    for directory in MODULE_DIRS:
        names = {p.name for p in directory.glob("*.tf")}
        assert {"main.tf", "variables.tf", "outputs.tf", "versions.tf"} <= names, directory
        text = (directory / "variables.tf").read_text()
        blocks = re.split(r'^variable "', text, flags=re.MULTILINE)[1:]
        assert blocks, directory
        for block in blocks:
            name = block.split('"', 1)[0]
            assert re.search(r"^\s+description\s+=", block, re.MULTILINE), f"{directory}: {name}"
            assert re.search(r"^\s+type\s+=", block, re.MULTILINE), f"{directory}: {name}"
        for output in re.split(r'^output "', (directory / "outputs.tf").read_text(), flags=re.M)[
            1:
        ]:
            assert "description" in output, f"{directory}: output {output.split(chr(34))[0]}"


def test_the_redis_acl_users_match_the_local_stack() -> None:
    text = (TERRAFORM / "modules" / "region" / "redis.tf").read_text()
    users = r'^\s+(writer|reader|admin|checker)\s+=\s+"([^"]+)"'
    rules = dict(re.findall(users, text, re.MULTILINE))
    assert rules == {
        "writer": f"on {WRITER_RULES}",
        "reader": f"on {READER_RULES}",
        "admin": f"on {ADMIN_RULES}",
        "checker": f"on {CHECKER_RULES}",
    }
