#!/usr/bin/env bash
# `make bench-webhook`: ecskube's admission webhook side by side with a Go
# baseline (bench/go-baseline, controller-runtime) and the framework's limit
# (examples/fixed_response.rs), in one run; then a fixed rate, cold start and
# RSS (bench/webhook-bench.py says how each figure is made). Release builds;
# talks only to 127.0.0.1. DURATION, CONNECTIONS, ROUNDS, RATE, COLD_STARTS
# tune it. Tools: wrk (Debian), oha (crates.io), Go (the module proxy).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
export PATH="$HOME/.cargo/bin:$PATH"

command -v oha >/dev/null || cargo install oha --locked
if ! command -v wrk >/dev/null; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk >/dev/null
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "building (release): ecskube, the fixed-response server, the Go baseline ..." >&2
cargo build --release --quiet --locked --manifest-path "$repo/Cargo.toml" --bin ecskube --example fixed_response
(cd "$repo/bench/go-baseline" && go build -trimpath -o "$work/go-baseline" .)

"$repo/target/release/ecskube" certs --ip 127.0.0.1 --dns-name localhost --out "$work/certs" >/dev/null
python3 "$repo/bench/large-review.py" "$repo/samples/ecsdeployment.json" > "$work/sample-review.json"
python3 "$repo/bench/large-review.py" > "$work/large-review.json"

python3 "$repo/bench/webhook-bench.py" "$work" "$repo/target/release/ecskube" \
  "$repo/target/release/examples/fixed_response" "$work/go-baseline" \
  "$work/sample-review.json" "$work/large-review.json"
