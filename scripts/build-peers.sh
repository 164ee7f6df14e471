#!/usr/bin/env bash
# Builds the load balancers Berth is compared with (benches/src/bin/compare.rs) into a cache
# outside the tree, keyed by the pinned versions and the Go version, and prints one line per
# product on stdout: `metallb DIR` (DIR holds `speaker`, `controller` and `crd-dir`, the path of
# MetalLB's CRDs in the module cache) and, when a kube-vip source is given, `kube-vip BIN`.
# Cached binaries are reused without building.
# Test and benchmark infrastructure only: nothing built here is part of what users run, and
# no code of these projects enters this tree.
#   scripts/build-peers.sh                   build MetalLB (testbed/peers/metallb, module proxy)
#   BERTH_KUBEVIP_SRC=DIR                    also build kube-vip from DIR, a read-only checkout
#                                            of github.com/kube-vip/kube-vip (it is not served
#                                            by the module proxy); the newest v1.2.x tag is
#                                            extracted with `git archive` into a scratch dir
#   BERTH_CACHE_DIR=DIR                      cache root (default ${XDG_CACHE_HOME:-~/.cache}/berth)
set -euo pipefail
cd "$(dirname "$0")/../testbed/peers"

if ! command -v go >/dev/null 2>&1; then
  [ -x /usr/local/go/bin/go ] && export PATH="/usr/local/go/bin:$PATH"
fi
if ! command -v go >/dev/null 2>&1; then
  echo "error: Go is needed to build the peers (Debian: golang-go >= 1.26, or /usr/local/go)" >&2
  exit 1
fi
root="${BERTH_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/berth}"

# MetalLB: speaker and controller from the module proxy at the version pinned in go.mod.
metallb_version=$(cd metallb && go list -m -f '{{.Version}}' go.universe.tf/metallb)
key=$( { cat metallb/go.mod metallb/go.sum metallb/tools.go; go version; } | sha256sum | cut -c1-16)
cache="$root/metallb-$metallb_version-$key"
if [ ! -x "$cache/speaker" ] || [ ! -x "$cache/controller" ]; then
  echo "building MetalLB $metallb_version (speaker, controller) into $cache" >&2
  mkdir -p "$cache"
  for program in speaker controller; do
    start=$(date +%s)
    (cd metallb && go build -trimpath -ldflags "-s -w" -o "$cache/$program.tmp" "go.universe.tf/metallb/$program")
    mv "$cache/$program.tmp" "$cache/$program"
    echo "MetalLB $program built in $(( $(date +%s) - start )) s, $(du -m "$cache/$program" | cut -f1) MB" >&2
  done
fi
# Their CRDs stay in the module cache; the benchmark fixes up a scratch copy at run time.
(cd metallb && go mod download go.universe.tf/metallb)
moddir=$(cd metallb && go list -m -f '{{.Dir}}' go.universe.tf/metallb)
echo "$moddir/config/crd/bases" > "$cache/crd-dir"
echo "$metallb_version" > "$cache/version"
echo "metallb $cache"

# kube-vip: not on the module proxy; built from a read-only checkout given by the caller.
if [ -n "${BERTH_KUBEVIP_SRC:-}" ]; then
  src="$BERTH_KUBEVIP_SRC"
  tag=$(git --git-dir="$src" tag -l 'v1.2.*' 2>/dev/null | sort -V | tail -1 || true)
  [ -n "$tag" ] || tag=$(git -C "$src" tag -l 'v1.2.*' | sort -V | tail -1)
  [ -n "$tag" ] || { echo "error: no v1.2.x tag in $src" >&2; exit 1; }
  commit=$(git --git-dir="$src" rev-parse "$tag^{commit}" 2>/dev/null || git -C "$src" rev-parse "$tag^{commit}")
  ldflags="-s -w -X main.Version=$tag -X main.Build=${commit:0:12}"
  key=$( { echo "$commit $ldflags"; go version; } | sha256sum | cut -c1-16)
  cache="$root/kube-vip-$tag-$key"
  if [ ! -x "$cache/kube-vip" ]; then
    echo "building kube-vip $tag ($commit) into $cache" >&2
    mkdir -p "$cache/src"
    (git --git-dir="$src" archive "$tag" 2>/dev/null || git -C "$src" archive "$tag") | tar -x -C "$cache/src"
    start=$(date +%s)
    (cd "$cache/src" && GOFLAGS=-mod=mod go build -trimpath -ldflags "$ldflags" -o "$cache/kube-vip.tmp" .)
    mv "$cache/kube-vip.tmp" "$cache/kube-vip"
    echo "kube-vip built in $(( $(date +%s) - start )) s, $(du -m "$cache/kube-vip" | cut -f1) MB" >&2
  fi
  echo "$tag" > "$cache/version"
  echo "kube-vip $cache/kube-vip"
fi
