#!/usr/bin/env bash
# Builds the real control-plane binaries (kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl, etcd, kwok) from the Go module proxy, using the pinned
# wrapper modules in tests/control-plane/. Output is cached outside the clone,
# keyed by Kubernetes version, so CI and fresh clones reuse it:
#
#   ~/.cache/ecskube/control-plane/<kubernetes version>/bin
#
# A stamp (hash of the wrapper go.mod/go.sum files) decides whether the cache is
# current; FORCE=1 rebuilds anyway. The Rust launcher (src/devcluster) reads the
# same path. ECSKUBE_CONTROL_PLANE_CACHE overrides ~/.cache/ecskube/control-plane.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
mod_dir="$repo/tests/control-plane"
kwok_dir="$mod_dir/kwok"

export GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly
if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
  export PATH="/usr/local/go/bin:$PATH"
fi
command -v go >/dev/null || { echo "build-control-plane: go not found (need Go >= 1.26)" >&2; exit 1; }

modver() { # modver DIR MODULE -> version required in DIR/go.mod
  (cd "$1" && go list -m -f '{{.Version}}' "$2")
}

k8s_version="$(modver "$mod_dir" k8s.io/kubernetes)"
etcd_version="$(modver "$mod_dir" go.etcd.io/etcd/server/v3)"
kwok_version="$(modver "$kwok_dir" sigs.k8s.io/kwok)"

cache_root="${ECSKUBE_CONTROL_PLANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ecskube/control-plane}"
out="$cache_root/$k8s_version"
bin="$out/bin"
stamp_want="$(cat "$mod_dir/go.mod" "$mod_dir/go.sum" "$kwok_dir/go.mod" "$kwok_dir/go.sum" |
  sha256sum | cut -d' ' -f1)"
tools=(kube-apiserver kube-controller-manager kube-scheduler kubectl etcd kwok kwok-stages.yaml)

cached=1
for t in "${tools[@]}"; do [[ -e "$bin/$t" ]] || cached=0; done
if [[ "$cached" == 1 && "${FORCE:-0}" != 1 && "$(cat "$out/stamp" 2>/dev/null)" == "$stamp_want" ]]; then
  echo "control-plane: using cached binaries in $bin (kubernetes $k8s_version, etcd $etcd_version, kwok $kwok_version)"
  exit 0
fi

echo "control-plane: building kubernetes $k8s_version, etcd $etcd_version, kwok $kwok_version -> $bin"
echo "control-plane: $(go version); this takes a while on a cold Go build cache"
start=$(date +%s)
tmp="$out/bin.tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT

# Same version stamps as Kubernetes' hack/lib/version.sh, so `kubectl version`
# and /version report the real release instead of v0.0.0-master.
minor="${k8s_version#v1.}"
minor="${minor%%.*}"
build_date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
done

step() { echo "control-plane: [$(($(date +%s) - start))s] $*"; }

step "downloading modules"
(cd "$mod_dir" && go mod download)
(cd "$kwok_dir" && go mod download)

# One `go build` for all Kubernetes mains shares the compile of common packages.
step "building kube-apiserver kube-controller-manager kube-scheduler kubectl"
(cd "$mod_dir" && go build -trimpath -ldflags "$ldflags" -o "$tmp/" \
  k8s.io/kubernetes/cmd/kube-apiserver \
  k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler \
  k8s.io/kubernetes/cmd/kubectl)

step "building etcd $etcd_version"
(cd "$mod_dir" && go build -trimpath -ldflags "-s -w" -o "$tmp/etcd" go.etcd.io/etcd/server/v3)

step "building kwok $kwok_version"
(cd "$kwok_dir" && go build -trimpath -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${kwok_version#v}" \
  -o "$tmp/kwok" sigs.k8s.io/kwok/cmd/kwok)

# The kwok binary has no built-in stages (kwokctl normally supplies them), so
# ship the release's own "fast" stages: nodes become Ready (with a Lease
# heartbeat) and pods go Running, then Succeeded/deleted like with a kubelet.
step "writing kwok-stages.yaml"
stages="$(cd "$kwok_dir" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)/kustomize/stage"
for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
  pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
  echo "---"
  cat "$stages/$f"
done >"$tmp/kwok-stages.yaml"

rm -rf "$bin"
mv "$tmp" "$bin"
echo "$stamp_want" >"$out/stamp"
step "done; binaries in $bin"
"$bin/kubectl" version --client
