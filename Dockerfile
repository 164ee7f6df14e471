# syntax=docker/dockerfile:1
#
# Two small, statically linked images from one build:
#   docker build --target controller -t REGISTRY/berth-controller:0.1.0 .
#   docker build --target speaker    -t REGISTRY/berth-speaker:0.1.0 .
#
# The binaries are linked against musl (no libc in the image, nothing to patch but Berth
# itself) and land on distroless/static: no shell, no package manager, CA certificates and
# /etc/passwd only. The controller runs as the distroless `nonroot` user (65532). The speaker
# image runs as root because binding BGP's port 179 needs CAP_NET_BIND_SERVICE and Kubernetes
# has no ambient capabilities; deploy/speaker.yaml drops every other capability.
#
# Without a registry or a container engine, scripts/build-images.sh builds the same two images
# (FROM scratch with distroless/static's files, glibc static binaries) as OCI archives: it reads
# the final stages below (COPY, USER, WORKDIR, EXPOSE, ENTRYPOINT, ARG, LABEL; nothing else),
# and testbed/tests/images.rs checks the images it built against them. Keep those stages to
# these instructions. The labels' values: --build-arg VERSION=… REVISION=$(git rev-parse HEAD)
# SOURCE=… (the script sets them from Cargo.toml and git).
# The target triple follows the build machine (`uname -m`), so a native arm64 build works too.

ARG RUST_VERSION=1.95
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=unknown

FROM rust:${RUST_VERSION}-bookworm AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# musl-tools provides musl-gcc, which ring (rustls' crypto) uses for its C and assembly parts.
# Not version-pinned: Debian's point releases replace those versions under us.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools file \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add "$(uname -m)-unknown-linux-musl"
WORKDIR /src
COPY . .
# Build the three binaries for musl; line tables stay (readable backtraces), full debug info
# does not (image size). Then fail the build if anything got linked dynamically.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    set -eux; \
    target="$(uname -m)-unknown-linux-musl"; \
    CARGO_PROFILE_RELEASE_DEBUG=line-tables-only CARGO_PROFILE_RELEASE_STRIP=debuginfo \
    TARGET_CC=musl-gcc cargo build --release --locked --target "$target" \
      -p controller --bin berth-controller \
      -p speaker --bin berth-speaker --bin berthctl; \
    mkdir -p /out; \
    for b in berth-controller berth-speaker berthctl; do \
      cp "target/$target/release/$b" /out/; \
    done; \
    for b in /out/*; do \
      if file "$b" | grep -q 'dynamically linked'; then echo "$b is not static" >&2; exit 1; fi; \
    done

FROM gcr.io/distroless/static-debian12:nonroot AS controller
ARG VERSION
ARG REVISION
ARG SOURCE
LABEL org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}"
COPY --from=build /out/berth-controller /berth-controller
USER 65532:65532
WORKDIR /home/nonroot
EXPOSE 9090
ENTRYPOINT ["/berth-controller"]

# distroless/static's root variant is tagged `latest` (`nonroot` is the same image with uid 65532).
# hadolint ignore=DL3007
FROM gcr.io/distroless/static-debian12:latest AS speaker
ARG VERSION
ARG REVISION
ARG SOURCE
LABEL org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}"
COPY --from=build /out/berth-speaker /berth-speaker
# The admin CLI, for `kubectl -n berth-system exec POD -- /berthctl`.
COPY --from=build /out/berthctl /berthctl
# Root on purpose, with only CAP_NET_BIND_SERVICE left by the DaemonSet (see header).
# hadolint ignore=DL3002
USER 0:0
WORKDIR /
EXPOSE 179 7472
ENTRYPOINT ["/berth-speaker"]
