#!/usr/bin/env bash
# Fetch the External Secrets Operator CRDs (ExternalSecret, SecretStore,
# ClusterSecretStore) for a pinned ESO release via the Go module proxy.
#
# Destination: ${ECSKUBE_CRDS_DIR:-$HOME/.cache/ecskube/crds}/external-secrets-<version>/
# Idempotent: if all files are already present, nothing is downloaded.
# The last line printed on stdout is the destination directory.
set -euo pipefail

ESO_MODULE="github.com/external-secrets/external-secrets"
ESO_VERSION="${ESO_VERSION:-v0.16.2}"
CRDS_ROOT="${ECSKUBE_CRDS_DIR:-$HOME/.cache/ecskube/crds}"
DEST="${CRDS_ROOT}/external-secrets-${ESO_VERSION}"

CRD_FILES=(
  "external-secrets.io_externalsecrets.yaml"
  "external-secrets.io_secretstores.yaml"
  "external-secrets.io_clustersecretstores.yaml"
)

die() { echo "fetch-crds: error: $*" >&2; exit 1; }
log() { echo "fetch-crds: $*" >&2; }

all_present() {
  local f
  for f in "${CRD_FILES[@]}"; do
    [[ -s "${DEST}/${f}" ]] || return 1
  done
  return 0
}

if all_present; then
  log "CRDs for ${ESO_MODULE}@${ESO_VERSION} already present, skipping download"
  echo "${DEST}"
  exit 0
fi

command -v go >/dev/null 2>&1 || die "'go' is required (used to download ${ESO_MODULE}@${ESO_VERSION} through the Go module proxy)"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/ecskube-fetch-crds.XXXXXX")"
trap 'rm -rf "${WORK}"' EXIT

# A throwaway module so `go mod download` works regardless of the caller's cwd.
cat > "${WORK}/go.mod" <<GOMOD
module ecskube.invalid/fetchcrds

go 1.21
GOMOD

log "downloading ${ESO_MODULE}@${ESO_VERSION} via GOPROXY=$(go env GOPROXY)"
if ! JSON="$(cd "${WORK}" && GOFLAGS=-mod=mod go mod download -json "${ESO_MODULE}@${ESO_VERSION}")"; then
  [[ -n "${JSON:-}" ]] && echo "${JSON}" >&2
  die "go mod download ${ESO_MODULE}@${ESO_VERSION} failed"
fi

# Extract "Dir" and "Error" from the JSON without needing jq.
json_field() {
  printf '%s\n' "${JSON}" | sed -n "s/^[[:space:]]*\"$1\":[[:space:]]*\"\\(.*\\)\",\\{0,1\\}[[:space:]]*\$/\\1/p" | head -n1
}
ERR="$(json_field Error)"
[[ -z "${ERR}" ]] || die "go mod download reported: ${ERR}"
MODDIR="$(json_field Dir)"
[[ -n "${MODDIR}" && -d "${MODDIR}" ]] || die "could not determine module directory from go mod download output: ${JSON}"

SRC="${MODDIR}/config/crds/bases"
[[ -d "${SRC}" ]] || die "module has no ${SRC}"

mkdir -p "${DEST}"
for f in "${CRD_FILES[@]}"; do
  [[ -s "${SRC}/${f}" ]] || die "missing CRD file in module: ${SRC}/${f}"
  grep -q '^kind: CustomResourceDefinition' "${SRC}/${f}" || die "${SRC}/${f} is not a CustomResourceDefinition"
  # Copy atomically; module cache files are read-only, so make ours writable.
  cp "${SRC}/${f}" "${DEST}/.${f}.tmp"
  chmod u+w,go+r "${DEST}/.${f}.tmp"
  mv -f "${DEST}/.${f}.tmp" "${DEST}/${f}"
  log "copied ${f}"
done

all_present || die "CRD files not all present in ${DEST} after copy"
echo "${DEST}"
