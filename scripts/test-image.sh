#!/usr/bin/env bash
# `make test-image`: checks the image `make image` built, from its own root
# filesystem: it exists, says it runs as a numeric non-root user and carries
# its OCI labels, and its binary (run chrooted into the image, as that user,
# with nothing of this host's libraries) prints its version, accepts the
# sample and refuses a typo with its path.
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE="${IMAGE:-localhost/ecskube:dev}"
B=(buildah --storage-driver vfs)
fail() { echo "test-image: FAIL: $*" >&2; exit 1; }

config="$("${B[@]}" inspect --type image "$IMAGE")" || fail "no image $IMAGE (make image)"
field() { python3 -c 'import json,sys; c=json.load(sys.stdin)["OCIv1"]["config"]; print(eval(sys.argv[1]))' "$1" <<<"$config"; }
user="$(field 'c.get("User","")')"
[ "$user" = "65532:65532" ] || fail "image user is '$user', want 65532:65532"
entry="$(field 'c.get("Entrypoint")')"
[ "$entry" = "['/usr/local/bin/ecskube']" ] || fail "entrypoint $entry"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
label="$(field 'c.get("Labels",{}).get("org.opencontainers.image.version","")')"
[ "$label" = "$version" ] || fail "label org.opencontainers.image.version is '$label', want $version"

ctr="$("${B[@]}" from --pull-never "$IMAGE")"
cleanup() { "${B[@]}" umount "$ctr" >/dev/null 2>&1 || true; "${B[@]}" rm "$ctr" >/dev/null 2>&1 || true; }
trap cleanup EXIT
root="$("${B[@]}" mount "$ctr")"
# Nothing but the binary and the CA certificates: no shell, no libc.
[ ! -e "$root/bin/sh" ] || fail "the image has a shell"
[ -s "$root/etc/ssl/certs/ca-certificates.crt" ] || fail "no CA certificates"
run() { chroot --userspec=65532:65532 "$root" /usr/local/bin/ecskube "$@"; }

out="$(run --version)" || fail "--version failed"
[ "$out" = "ecskube $version" ] || fail "--version printed '$out'"
echo "version: $out"
accepted="$(chroot --userspec=65532:65532 "$root" /usr/local/bin/ecskube validate - < samples/ecsdeployment.json 2>&1)" \
  || fail "the sample did not validate: $accepted"
echo "sample: $accepted"
typo="$(sed 's/"Memory"/"Memroy"/' samples/ecsdeployment.json)"
set +e
refused="$(run validate - <<<"$typo" 2>&1)"; rc=$?
set -e
[ "$rc" -eq 1 ] || fail "a typo exited $rc, want 1: $refused"
grep -q 'ContainerDefinitions\[0\]\.Memroy' <<<"$refused" || fail "the typo's path is not named: $refused"
echo "typo: refused with its path"
echo "test-image: ok ($IMAGE, user $user, $(du -h "$root/usr/local/bin/ecskube" | cut -f1) binary)"
