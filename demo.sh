#!/usr/bin/env bash
# The quick start's demo. As root on a fresh Debian machine: installs the routers the lab runs
# (BIRD, FRR), builds Berth (debug profile, the one the test suite builds too), then runs
# berth-demo: the tor-pair lab with berth-controller and three berth-speakers, the sessions,
# the routers' ECMP route and the spread of 300 connections over the nodes, then teardown.
#   ./demo.sh           run it and tear everything down
#   ./demo.sh --keep    leave the lab running to explore (prints how; Ctrl-C tears it down)
set -euo pipefail
cd "$(dirname "$0")"
source scripts/lib.sh

require_root
ensure_packages bird2 frr iproute2 procps
ensure_rust

step "cargo build (berth-controller, berth-speaker, berthctl, berth-demo)"
cargo build --locked -p speaker -p controller -p testbed \
  --bin berth-speaker --bin berthctl --bin berth-controller --bin berth-demo

target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
step "berth-demo $*"
# exec: Ctrl-C goes to berth-demo alone, which tears the lab down before it exits.
exec "$target_dir/debug/berth-demo" "$@"
