#!/usr/bin/env bash
# Builds the testbed's Kubernetes control plane (testbed/controlplane: etcd, kube-apiserver,
# kube-controller-manager and kubectl in one binary, from the Go module proxy at the versions
# pinned in its go.mod) into a cache outside the tree, keyed by the pinned sources and the Go
# version, and prints the binary's path on stdout. A cached binary is reused without building.
# Test infrastructure only: nothing built here is part of what users run.
#   scripts/build-controlplane.sh            build if missing, print the path
#   BERTH_CACHE_DIR=DIR                      cache root (default ${XDG_CACHE_HOME:-~/.cache}/berth)
set -euo pipefail
cd "$(dirname "$0")/../testbed/controlplane"

if ! command -v go >/dev/null 2>&1; then
  [ -x /usr/local/go/bin/go ] && export PATH="/usr/local/go/bin:$PATH"
fi
if ! command -v go >/dev/null 2>&1; then
  echo "error: Go is needed to build the test control plane (Debian: golang-go >= 1.26, or /usr/local/go)" >&2
  exit 1
fi

version=v1.37.2
key=$( { cat go.mod go.sum main.go; go version; } | sha256sum | cut -c1-16)
cache="${BERTH_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/berth}/controlplane-$version-$key"
bin="$cache/berth-controlplane"

if [ ! -x "$bin" ]; then
  echo "building the test control plane (etcd, kube-apiserver $version, kube-controller-manager, kubectl) into $cache;" >&2
  echo "a cold build takes about 6 minutes on 2 cores, later runs reuse it" >&2
  mkdir -p "$cache"
  start=$(date +%s)
  ldflags="-s -w"
  for v in "gitVersion=$version" "gitMajor=1" "gitMinor=37" "gitTreeState=clean"; do
    ldflags="$ldflags -X k8s.io/component-base/version.$v"
  done
  go build -buildvcs=false -trimpath -ldflags "$ldflags" -o "$bin.tmp" .
  mv "$bin.tmp" "$bin"
  echo "built in $(( $(date +%s) - start )) s, $(du -m "$bin" | cut -f1) MB" >&2
fi
echo "$bin"
