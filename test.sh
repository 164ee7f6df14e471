#!/usr/bin/env bash
# The quick start's test command. As root on a fresh Debian machine it installs what the
# suite needs (the router packages the interop tests run, tools for captures) and then runs
# every check CI runs: formatting, clippy, generated files fresh, and every test.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/lib.sh

require_root
ensure_packages bird2 frr gobgpd exabgp iproute2 tcpdump procps
ensure_rust
ensure_controlplane

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

if [ -f api/src/bin/crdgen.rs ]; then
  step "generated CRDs and docs/reference.md are fresh"
  cargo run --quiet --locked -p api --bin crdgen -- --check deploy/crds
fi

scripts/check-deploy.sh

# One static release build and the two images as OCI archives in target/images/, which
# testbed/tests/images.rs unpacks and runs (no registry, no container engine).
scripts/build-images.sh >/dev/null

# Two tiers: `cargo test` alone runs the unprivileged tests (a laptop, no root); tests that
# need root, network namespaces, the routers and the control plane are #[ignore]d with that
# reason, and this command runs both tiers.
step "tests (unprivileged and privileged tiers)"
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast --run-ignored all
else
  cargo test --workspace --locked --no-fail-fast -- --include-ignored
fi
cargo test --workspace --locked --doc
