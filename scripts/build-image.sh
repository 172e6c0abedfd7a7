#!/usr/bin/env bash
# `make image`: the ecskube image, built here with buildah (no Docker engine,
# no registry): the static musl binary from cargo, then the Dockerfile's
# release-local stage (FROM scratch). IMAGE names it (localhost/ecskube:dev).
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE="${IMAGE:-localhost/ecskube:dev}"
TARGET=x86_64-unknown-linux-musl
STORAGE=(--storage-driver vfs)

# What the build needs, from Debian and rustup (idempotent).
need_apt=()
command -v buildah >/dev/null || need_apt+=(buildah)
command -v musl-gcc >/dev/null || need_apt+=(musl-tools)
if [ ! -f /etc/ssl/certs/ca-certificates.crt ]; then need_apt+=(ca-certificates); fi
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing ${need_apt[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
rustup target list --installed | grep -qx "$TARGET" || rustup target add "$TARGET"

# ring compiles C: musl-gcc for the musl target.
CC_x86_64_unknown_linux_musl=musl-gcc cargo build --release --locked --target "$TARGET" --bin ecskube

stage=target/image
rm -rf "$stage" && mkdir -p "$stage"
# Symbols stripped: the image carries what runs, not what debugs.
strip -o "$stage/ecskube" "target/$TARGET/release/ecskube"
cp /etc/ssl/certs/ca-certificates.crt "$stage/ca-certificates.crt"

version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
revision="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
buildah "${STORAGE[@]}" bud --isolation chroot --target release-local \
  --build-arg VERSION="$version" --build-arg REVISION="$revision" \
  -t "$IMAGE" -f Dockerfile .
echo "built $IMAGE ($(du -h "$stage/ecskube" | cut -f1) binary)"
