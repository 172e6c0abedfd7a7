#!/usr/bin/env bash
# Load benchmark for the validating webhook: drives POST /validate with the
# sample's AdmissionReview over keep-alive TLS using oha (installed from
# crates.io if missing), then reports requests/s and p50/p99 latency:
#   1. open throughput (concurrency $CONCURRENCY for $DURATION),
#   2. a fixed rate of $RATE requests/s for $DURATION (latency under load).
# Bounded in time and count; talks only to 127.0.0.1.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
DURATION="${DURATION:-10s}"
CONCURRENCY="${CONCURRENCY:-32}"
RATE="${RATE:-1000}"
export PATH="$HOME/.cargo/bin:$PATH"

command -v oha >/dev/null || cargo install oha --locked
command -v jq >/dev/null || { echo "webhook-load: jq is needed (apt-get install jq)" >&2; exit 1; }
cargo build --release --quiet --bin ecskube --manifest-path "$repo/Cargo.toml"
bin="$repo/target/release/ecskube"

work="$(mktemp -d)"
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
"$bin" certs --ip 127.0.0.1 --dns-name localhost --out "$work/certs" >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
probe=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# No cluster: the engine alone (no preflight, no ConfigMap reads), as offline validation.
KUBECONFIG=/nonexistent RUST_LOG=warn "$bin" serve --webhook-only --preflight=false \
  --listen "127.0.0.1:$port" --probe-listen "127.0.0.1:$probe" \
  --tls-cert "$work/certs/tls.crt" --tls-key "$work/certs/tls.key" 2>"$work/serve.log" &
pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$probe/readyz" >/dev/null && break; sleep 0.1; done

jq -n --slurpfile obj "$repo/samples/ecsdeployment.json" '{
  apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview",
  request: {uid: "bench", kind: {group: "ecskube.ecskube", version: "v1alpha1", kind: "ECSDeployment"},
            resource: {group: "ecskube.ecskube", version: "v1alpha1", resource: "ecsdeployments"},
            name: "ecs-demo-deploy", namespace: "default", operation: "CREATE",
            userInfo: {username: "bench"}, object: $obj[0], dryRun: false}}' > "$work/review.json"

run() { # run LABEL oha-args...
  local label=$1; shift
  oha --no-tui --output-format json --insecure -m POST -H 'Content-Type: application/json' \
    -D "$work/review.json" "$@" "https://127.0.0.1:$port/validate" > "$work/out.json"
  jq -r --arg name "$label" '"\($name): \(.summary.requestsPerSec | floor) requests/s, p50 \(.latencyPercentiles.p50 * 1000 * 1000 | floor / 1000) ms, p99 \(.latencyPercentiles.p99 * 1000 * 1000 | floor / 1000) ms, success rate \(.summary.successRate)"' "$work/out.json"
}
run "throughput (c=$CONCURRENCY, $DURATION)" -z "$DURATION" -c "$CONCURRENCY"
run "fixed rate ($RATE/s, $DURATION)" -z "$DURATION" -c 16 -q "$RATE"
