"""Validate rendered Kubernetes manifests offline, every object, no cluster.

    .tools/venv/bin/python infra/helm/validate.py --kube-version 1.31 \
        --crds .tools/crds rendered.yaml

Built-in kinds are checked against the JSON schemas bundled in the ``kubernetes-validate``
package (strict: unknown fields are errors). Custom resources (ServiceMonitor,
PrometheusRule) are checked against the ``openAPIV3Schema`` of their CRDs in ``--crds``
(from the prometheus-operator Go module, see infra/local/install-tools.sh), also strictly.
An object with no schema is an error, not a warning. Exit 0 when every object is valid, 1
otherwise; one line per object on stdout.

Runs in the tools virtualenv (infra/local/install-tools.sh), not the project's.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml


def strict(schema: Any) -> Any:
    """The schema with ``additionalProperties: false`` wherever properties are listed and the
    API server would prune unknown fields (as ``kubectl apply --validate=strict`` rejects)."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: strict(value) for key, value in schema.items()}
    pattern = out.get("pattern")
    if isinstance(pattern, str) and "(?i)" in pattern:  # Go puts the flag anywhere, Python first
        out["pattern"] = "(?i)" + pattern.replace("(?i)", "")
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def crd_schemas(directory: Path | None) -> dict[tuple[str, str], Any]:
    """(apiVersion, kind) -> JSON schema, from every CRD YAML file in ``directory``."""
    schemas: dict[tuple[str, str], Any] = {}
    for path in sorted(directory.glob("*.yaml")) if directory else []:
        for crd in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                schema = strict(version["schema"]["openAPIV3Schema"])
                schema["properties"]["metadata"] = {"type": "object"}
                schemas[(f"{group}/{version['name']}", kind)] = schema
    return schemas


def check(obj: dict[str, Any], kube_version: str, crds: dict[tuple[str, str], Any]) -> str | None:
    """None when ``obj`` is valid, else what is wrong."""
    key = (obj.get("apiVersion", ""), obj.get("kind", ""))
    try:
        if key in crds:
            error = jsonschema.exceptions.best_match(
                jsonschema.Draft7Validator(crds[key]).iter_errors(obj)
            )
            if error is not None:
                raise error
        else:
            kubernetes_validate.validate(obj, kube_version, strict=True)
    except jsonschema.ValidationError as exc:
        where = ".".join(str(p) for p in exc.absolute_path) or "(top)"
        return f"{where}: {exc.message}"
    except kubernetes_validate.SchemaNotFoundError as exc:
        return f"no schema: {exc.message}"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path, help="multi-document YAML; - for stdin")
    parser.add_argument("--kube-version", default="1.31", help="Kubernetes version (default 1.31)")
    parser.add_argument("--crds", type=Path, help="directory of CustomResourceDefinition YAML")
    args = parser.parse_args(argv)
    crds = crd_schemas(args.crds)
    failures = total = 0
    for path in args.files:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
        for obj in yaml.safe_load_all(text):
            if not obj:
                continue
            total += 1
            name = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
            problem = check(obj, args.kube_version, crds)
            if problem:
                failures += 1
                print(f"INVALID {name}: {problem}")
            else:
                print(f"ok      {name}")
    print(f"{total - failures} valid, {failures} invalid")
    return 1 if failures or not total else 0


if __name__ == "__main__":
    sys.exit(main())
