#!/usr/bin/env bash
# The quick start's demo. As root on a fresh Debian machine: installs the routers the lab runs
# (BIRD, FRR), builds Berth (debug profile, the one the test suite builds too) and, by default,
# the test Kubernetes control plane (once; cached), then runs berth-demo: the tor-pair lab with
# a real control plane (etcd, kube-apiserver, kube-controller-manager), Berth installed from
# deploy/, berth-controller and three berth-speakers; kubectl shows the Service's EXTERNAL-IP,
# the Eip and BgpPeers, then the routers' ECMP route and the spread of 300 connections over the
# nodes, then teardown.
#   ./demo.sh               run it and tear everything down
#   ./demo.sh --keep        leave it running to explore with kubectl (prints how; Ctrl-C ends it)
#   ./demo.sh --standalone  the same without Kubernetes: the daemons read manifest files
set -euo pipefail
cd "$(dirname "$0")"
source scripts/lib.sh

standalone=false
for arg in "$@"; do
  [ "$arg" = "--standalone" ] && standalone=true
done

require_root
ensure_packages bird2 frr iproute2 procps
ensure_rust
if ! $standalone; then
  # Prints the cached binary's path at once, or builds it first (about 6 minutes on 2 cores,
  # once; the build script says so when it starts).
  ensure_controlplane
fi

step "cargo build (berth-controller, berth-speaker, berthctl, berth-demo)"
cargo build --locked -p speaker -p controller -p testbed \
  --bin berth-speaker --bin berthctl --bin berth-controller --bin berth-demo

target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
step "berth-demo $*"
# exec: Ctrl-C goes to berth-demo alone, which tears the lab down before it exits.
exec "$target_dir/debug/berth-demo" "$@"
