#!/usr/bin/env bash
# Tools for the offline deployment checks (tests/unit/test_deploy_*.py and docs/deploy.md),
# installed into .tools/ beside the project's .venv. Idempotent and fast when present:
#   - Prometheus and promtool (Debian's `prometheus`): the local stack's Prometheus and
#     `promtool test rules` on infra/monitoring/;
#   - Helm (`go install`, into .tools/bin) to render infra/helm/;
#   - the ServiceMonitor and PrometheusRule CRDs, from the prometheus-operator Go module
#     (`go mod download`), for validating those objects offline (.tools/crds);
#   - Terraform (`go install`, only when none is on PATH) for `terraform fmt -check`;
#   - .tools/venv with kubernetes-validate (bundled Kubernetes JSON schemas) and checkov,
#     pinned in infra/local/deploy-tools.txt.
# Needs Go 1.24+ for Helm and Terraform; without Go those are skipped with a warning (and the
# tests that need them skip locally, fail under CI=true). Called by infra/local/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."

HELM_VERSION=v3.19.5
TERRAFORM_VERSION=v1.11.4
PROMETHEUS_OPERATOR_VERSION=v0.85.0
TOOLS=.tools
BIN="$PWD/$TOOLS/bin"

log() { printf 'install-tools: %s\n' "$*"; }
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo

mkdir -p "$BIN"

# 1. Prometheus and promtool ---------------------------------------------------------------
if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
    if command -v apt-get >/dev/null; then
        log "apt-get install prometheus (Prometheus and promtool)"
        export DEBIAN_FRONTEND=noninteractive
        $SUDO apt-get update -qq
        $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
        # The package starts a server on :9090; the local stack runs its own elsewhere.
        if [ -d /run/systemd/system ]; then
            $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
        elif command -v service >/dev/null; then
            $SUDO service prometheus stop >/dev/null 2>&1 || true
        fi
    else
        log "warning: no apt-get: install Prometheus (with promtool) yourself"
    fi
fi

# 2. Go tools: Helm, Terraform, CRDs -------------------------------------------------------
if command -v go >/dev/null; then
    # `go install` leaves Helm's own version string unset: a stamp file records it.
    if [ ! -x "$BIN/helm" ] || [ "$(cat "$BIN/.helm-version" 2>/dev/null)" != "$HELM_VERSION" ]; then
        log "go install helm.sh/helm/v3/cmd/helm@$HELM_VERSION (a few minutes the first time)"
        GOBIN="$BIN" go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
        echo "$HELM_VERSION" > "$BIN/.helm-version"
    fi
    if ! command -v terraform >/dev/null && [ ! -x "$BIN/terraform" ]; then
        log "go install github.com/hashicorp/terraform@$TERRAFORM_VERSION (a few minutes)"
        GOBIN="$BIN" go install "github.com/hashicorp/terraform@$TERRAFORM_VERSION"
    fi
    crds="$TOOLS/crds"
    if [ "$(cat "$crds/VERSION" 2>/dev/null)" != "$PROMETHEUS_OPERATOR_VERSION" ]; then
        log "prometheus-operator $PROMETHEUS_OPERATOR_VERSION CRDs (go mod download)"
        dir=$(go mod download -json "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION" |
            sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
        mkdir -p "$crds"
        for kind in servicemonitors prometheusrules; do
            install -m 0644 "$dir/example/prometheus-operator-crd/monitoring.coreos.com_$kind.yaml" "$crds/"
        done
        echo "$PROMETHEUS_OPERATOR_VERSION" > "$crds/VERSION"
    fi
else
    log "warning: Go is not installed: Helm, Terraform and the CRDs are skipped"
fi

# 3. Python tools (kubernetes-validate, checkov) -------------------------------------------
venv="$TOOLS/venv"
want="$(sha256sum infra/local/deploy-tools.txt | cut -d' ' -f1)"
if [ "$(cat "$venv/.requirements.sha256" 2>/dev/null)" != "$want" ]; then
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    log "installing infra/local/deploy-tools.txt into $venv (checkov, kubernetes-validate)"
    if [ -x .venv/bin/uv ]; then   # the project's pinned uv (make setup installs it): seconds
        .venv/bin/uv pip install --quiet --python "$venv/bin/python" -r infra/local/deploy-tools.txt
    else
        "$venv/bin/python" -m pip install -q -r infra/local/deploy-tools.txt
    fi
    echo "$want" > "$venv/.requirements.sha256"
fi
log "ready: helm, terraform, promtool, checkov, kubernetes-validate (in $TOOLS)"
