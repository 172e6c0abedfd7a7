#!/usr/bin/env bash
# Load benchmark for the validating webhook: drives POST /validate with the
# sample's AdmissionReview over keep-alive TLS and reports requests/s and
# p50/p99 latency:
#   1. open throughput with wrk (Debian's package; a C client that leaves the
#      webhook most of the 2 cores), concurrency $CONCURRENCY for $DURATION;
#   2. a fixed rate of $RATE requests/s for $DURATION with oha (crates.io),
#      which holds a rate: latency under a steady load.
# Bounded in time and count; talks only to 127.0.0.1.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
DURATION="${DURATION:-10s}"
CONCURRENCY="${CONCURRENCY:-32}"
RATE="${RATE:-1000}"
export PATH="$HOME/.cargo/bin:$PATH"

command -v oha >/dev/null || cargo install oha --locked
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
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
cat > "$work/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("$work/review.json", "r"); wrk.body = f:read("*a"); f:close()
done = function(summary, latency, requests)
  io.write(string.format("throughput (wrk, c=$CONCURRENCY, $DURATION): %d requests/s, p50 %.3f ms, p99 %.3f ms, errors %d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA
wrk -t1 -c"$CONCURRENCY" -d"$DURATION" -s "$work/post.lua" "https://127.0.0.1:$port/validate" | tail -1
run "fixed rate (oha, $RATE/s, $DURATION)" -z "$DURATION" -c 16 -q "$RATE"
