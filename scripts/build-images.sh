#!/usr/bin/env bash
# Builds Berth's two container images, berth-controller and berth-speaker, without a
# registry or a container engine, and writes each as an OCI archive:
#
#   $BERTH_IMAGES_DIR (default: the cargo target directory's images/)
#     berth-controller.oci.tar   docker.io/library/berth-controller:VERSION
#     berth-speaker.oci.tar      docker.io/library/berth-speaker:VERSION
#
# which `ctr -n k8s.io images import`, `kind load image-archive` and `podman load` take as
# they are (deploy/README.md shows how). It then prints each image's size.
#
# How: one release build of the three binaries on this machine, statically linked against
# glibc (`crt-static`; the musl target cannot be installed here), refused if anything links
# dynamically; then buildah assembles each image FROM scratch: what distroless/static gives
# (CA certificates, /etc/passwd and /etc/group with root and the nonroot user 65532, /tmp),
# plus what the Dockerfile's final stage `controller` or `speaker` says. The Dockerfile is the
# one description: this script reads its COPY, USER, EXPOSE, ENTRYPOINT, WORKDIR, ARG and
# LABEL instructions and refuses any other, and testbed/tests/images.rs checks the built
# images against the Dockerfile again.
#
# Up to date is cheap: cargo decides whether to rebuild, and the images are reassembled only
# when their inputs (binaries, Dockerfile, this script, CA bundle, labels) changed.
#
# Needs root (buildah's storage; test.sh runs it as root). Installs buildah, skopeo and
# containerd from Debian when missing. Prints progress on stderr and the two archive paths on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

require_root
ensure_packages buildah skopeo ca-certificates file
# Not needed to build: testbed/tests/images.rs imports the archives into a containerd of its
# own and runs them with runc, as a node would. Only when missing, so that a node's own
# containerd (Docker's containerd.io, say) is left alone.
if ! command -v containerd >/dev/null || ! command -v ctr >/dev/null || ! command -v runc >/dev/null; then
  ensure_packages containerd runc
fi
ensure_rust

die() {
  echo "error: $*" >&2
  exit 1
}

target_dir=${CARGO_TARGET_DIR:-target}
out=${BERTH_IMAGES_DIR:-$target_dir/images}
mkdir -p "$out"
out=$(cd "$out" && pwd)

# --- what the labels say ---------------------------------------------------------------------

version=$(sed -n '/^\[workspace\.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' Cargo.toml)
[ -n "$version" ] || die "no version in Cargo.toml's [workspace.package]"
revision=unknown
if git rev-parse --verify -q HEAD >/dev/null 2>&1; then
  revision=$(git rev-parse HEAD)
  git diff --quiet HEAD -- 2>/dev/null || revision="$revision-dirty"
fi
# Where the source is: BERTH_IMAGE_SOURCE, else Cargo.toml's `repository`, else the git remote.
source_url=${BERTH_IMAGE_SOURCE:-$(sed -n '/^\[workspace\.package\]/,/^\[/s/^repository *= *"\(.*\)"/\1/p' Cargo.toml)}
if [ -z "$source_url" ]; then
  source_url=$(git remote get-url origin 2>/dev/null | sed 's#://[^/@]*@#://#' || true)
fi
source_url=${source_url:-unknown}

# --- the binaries ----------------------------------------------------------------------------

triple="$(uname -m)-unknown-linux-gnu"
step "release build of berth-controller, berth-speaker, berthctl (static, $triple)" >&2
# An explicit --target keeps these static artifacts in their own directory (target/$triple),
# so they never displace target/release, and keeps crt-static off build scripts and proc
# macros, which must stay dynamic. Full debug info stays out (image size); symbols stay.
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
  CARGO_PROFILE_RELEASE_DEBUG=line-tables-only CARGO_PROFILE_RELEASE_STRIP=debuginfo \
  cargo build --release --locked --target "$triple" \
  -p controller --bin berth-controller \
  -p speaker --bin berth-speaker --bin berthctl >&2
bin_dir="$target_dir/$triple/release"

for b in berth-controller berth-speaker berthctl; do
  kind=$(file -b "$bin_dir/$b")
  case "$kind" in
    *dynamically\ linked* | *interpreter*) die "$bin_dir/$b links dynamically: $kind" ;;
    *statically\ linked* | *static-pie\ linked*) ;;
    *) die "$bin_dir/$b: not a static executable: $kind" ;;
  esac
done

# --- the Dockerfile's final stages -----------------------------------------------------------

# stage_instructions NAME: the instructions of the Dockerfile stage `FROM … AS NAME`, one a
# line, continuation lines joined and comments dropped.
stage_instructions() {
  awk -v want="$1" '
    /^[[:space:]]*#/ { next }
    {
      s = $0
      if (s ~ /\\[[:space:]]*$/) { sub(/\\[[:space:]]*$/, "", s); buf = buf s " "; next }
      s = buf s; buf = ""
      sub(/^[[:space:]]+/, "", s)
      if (s == "") next
      n = split(s, f, /[[:space:]]+/)
      if (toupper(f[1]) == "FROM") inside = (n >= 4 && toupper(f[n - 1]) == "AS" && f[n] == want)
      if (inside) print s
    }' Dockerfile
}

# The CA bundle is Debian's, as in distroless/static-debian12.
ca_bundle=/etc/ssl/certs/ca-certificates.crt
[ -s "$ca_bundle" ] || die "$ca_bundle is missing (package ca-certificates)"

stamp_now=$(
  {
    sha256sum "$bin_dir/berth-controller" "$bin_dir/berth-speaker" "$bin_dir/berthctl" \
      Dockerfile scripts/build-images.sh "$ca_bundle"
    echo "$version $revision $source_url"
  } | sha256sum | cut -d' ' -f1
)
images=(berth-controller berth-speaker)
archive() { echo "$out/$1.oci.tar"; }
up_to_date=yes
for image in "${images[@]}"; do
  [ -s "$(archive "$image")" ] && [ -s "$out/sizes.txt" ] || up_to_date=no
done
if [ "$up_to_date" = yes ] && [ "$(cat "$out/.inputs" 2>/dev/null)" = "$stamp_now" ]; then
  step "images up to date in $out" >&2
  cat "$out/sizes.txt" >&2
  for image in "${images[@]}"; do archive "$image"; done
  exit 0
fi
rm -f "$out/.inputs"

work=$(mktemp -d "$out/.work.XXXXXX")
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
bah() { buildah --root "$work/storage" --runroot "$work/run" --storage-driver vfs "$@"; }

# What distroless/static gives, laid out once and copied into each image.
base="$work/base"
mkdir -p "$base/etc/ssl/certs" "$base/tmp" "$base/root" "$base/home/nonroot"
cat >"$base/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
cat >"$base/etc/group" <<'EOF'
root:x:0:
nobody:x:65534:
nonroot:x:65532:
EOF
printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$base/etc/nsswitch.conf"
cp "$ca_bundle" "$base/etc/ssl/certs/ca-certificates.crt"
chmod 0644 "$base/etc/passwd" "$base/etc/group" "$base/etc/nsswitch.conf" \
  "$base/etc/ssl/certs/ca-certificates.crt"
chmod 1777 "$base/tmp"
chmod 0700 "$base/root" "$base/home/nonroot"
chown 65532:65532 "$base/home/nonroot"

created=$(git log -1 --format=%ct 2>/dev/null || date +%s)

# build_image STAGE IMAGE: IMAGE from the Dockerfile's final stage STAGE, as an OCI archive.
build_image() {
  local stage=$1 image=$2 ctr root instr rest unpacked
  local config=() seen_from=no
  step "image $image (Dockerfile stage $stage)" >&2
  ctr=$(bah from --quiet scratch)
  root=$(bah mount "$ctr")
  cp -a "$base/." "$root/"
  while read -r instr rest; do
    case "${instr^^}" in
      FROM)
        # The files above stand in for this base; another base needs this script changed.
        [[ "$rest" == gcr.io/distroless/static-debian12:* ]] ||
          die "Dockerfile stage $stage: FROM $rest: this script only knows distroless/static-debian12"
        seen_from=yes
        ;;
      COPY)
        local from src dst
        read -r from src dst <<<"$rest"
        if [ "$from" != "--from=build" ] || [[ "$src" != /out/* ]] || [ -z "$dst" ]; then
          die "Dockerfile stage $stage: COPY $rest: only COPY --from=build /out/BINARY /PATH is known"
        fi
        src=${src#/out/}
        [ -f "$bin_dir/$src" ] || die "Dockerfile stage $stage copies $src, which cargo did not build"
        install -D -m 0755 -o 0 -g 0 "$bin_dir/$src" "$root$dst"
        ;;
      USER) config+=(--user "$rest") ;;
      WORKDIR)
        config+=(--workingdir "$rest")
        mkdir -p "$root$rest"
        ;;
      EXPOSE)
        local port
        # As docker build records them: a port without a protocol is TCP.
        for port in $rest; do
          [[ "$port" == */* ]] || port="$port/tcp"
          config+=(--port "$port")
        done
        ;;
      ENTRYPOINT)
        [[ "$rest" == \[*\] ]] || die "Dockerfile stage $stage: ENTRYPOINT must be JSON (exec) form"
        config+=(--entrypoint "$rest")
        ;;
      ARG)
        case "$rest" in
          VERSION | REVISION | SOURCE) ;;
          *) die "Dockerfile stage $stage: ARG $rest: only VERSION, REVISION and SOURCE are known" ;;
        esac
        ;;
      LABEL)
        # key="${ARG}" pairs, values without spaces; the ARGs are this script's values.
        local pair key value
        for pair in $rest; do
          key=${pair%%=*}
          value=${pair#*=}
          value=${value//\"/}
          value=${value//\$\{VERSION\}/$version}
          value=${value//\$\{REVISION\}/$revision}
          value=${value//\$\{SOURCE\}/$source_url}
          [[ "$value" != *\$* ]] || die "Dockerfile stage $stage: LABEL $pair: unknown variable"
          config+=(--label "$key=$value")
        done
        ;;
      *) die "Dockerfile stage $stage: $instr is not an instruction this script knows" ;;
    esac
  done < <(stage_instructions "$stage")
  [ "$seen_from" = yes ] || die "Dockerfile has no stage $stage"
  unpacked=$(du -sb --apparent-size "$root" | cut -f1)
  bah umount "$ctr" >/dev/null
  bah config "${config[@]}" --created-by "scripts/build-images.sh (Dockerfile stage $stage)" "$ctr"
  bah commit --quiet --format oci --identity-label=false --timestamp "$created" --rm \
    "$ctr" "localhost/$image:$version" >/dev/null
  rm -f "$work/$image.oci.tar"
  bah push --quiet "localhost/$image:$version" \
    "oci-archive:$work/$image.oci.tar:docker.io/library/$image:$version"
  mv "$work/$image.oci.tar" "$(archive "$image")"
  printf '%-17s archive %9d bytes  unpacked %9d bytes\n' "$image" \
    "$(stat -c %s "$(archive "$image")")" "$unpacked" >>"$work/sizes.txt"
}

build_image controller berth-controller
build_image speaker berth-speaker
mv "$work/sizes.txt" "$out/sizes.txt"
echo "$stamp_now" >"$out/.inputs"

step "sizes (archive: the OCI archive, layers gzip-compressed as a registry would serve them; unpacked: the image's root file system)" >&2
cat "$out/sizes.txt" >&2
for image in "${images[@]}"; do archive "$image"; done
