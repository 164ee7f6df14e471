# Shared shell helpers for the quick start's commands (test.sh, demo.sh). Sourced, not run.

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

require_root() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: run as root (the interop tests create network namespaces and start routers)" >&2
    exit 1
  fi
}

# ensure_packages PKG...: installs the Debian packages that are missing, once.
ensure_packages() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    step "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
  # FRR and BIRD come with system services; the labs start their own instances in namespaces.
  for svc in frr bird; do
    systemctl is-active --quiet "$svc" 2>/dev/null && systemctl stop "$svc" 2>/dev/null || true
  done
  return 0
}

ensure_rust() {
  if ! command -v cargo >/dev/null 2>&1; then
    [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
  fi
  if ! command -v cargo >/dev/null 2>&1; then
    ensure_packages cargo rustc rustfmt rust-clippy
  fi
  return 0
}

# ensure_go: a Go toolchain for the test infrastructure (the control plane is built from the
# Go module proxy; no Go enters what users run). testbed/controlplane/go.mod needs Go 1.26:
# an older Go (Debian's golang-go) fetches that toolchain from the module proxy by itself
# when GOTOOLCHAIN names it.
ensure_go() {
  if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
    export PATH="/usr/local/go/bin:$PATH"
  fi
  if ! command -v go >/dev/null 2>&1; then
    ensure_packages golang-go ca-certificates
  fi
  local have
  have=$(go env GOVERSION 2>/dev/null | sed 's/^go//')
  if [ "$(printf '%s\n1.26\n' "$have" | sort -V | head -n1)" != "1.26" ]; then
    export GOTOOLCHAIN=go1.26.8
  fi
  return 0
}

# ensure_controlplane: builds the test control plane when it is not cached yet and exports
# BERTH_CONTROLPLANE_BIN (the testbed's ControlPlane lab part runs it).
ensure_controlplane() {
  ensure_go
  step "test control plane (etcd, kube-apiserver, kube-controller-manager, kubectl)"
  BERTH_CONTROLPLANE_BIN=$(scripts/build-controlplane.sh)
  export BERTH_CONTROLPLANE_BIN
  echo "$BERTH_CONTROLPLANE_BIN"
}
