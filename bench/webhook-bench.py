#!/usr/bin/env python3
"""`make bench-webhook`, after bench/webhook-load.sh has built everything:
ecskube's webhook side by side with a Go baseline (controller-runtime's
webhook/admission: decode, unmarshal, allow) and the framework's limit (the
same actix-web + rustls stack answering a fixed review), in one run.

For the sample's review and a large one (bench/large-review.py), on
/validate and /mutate: wrk over keep-alive TLS (CONNECTIONS, DURATION),
servers alternating A B C A B C for ROUNDS rounds, the median round kept.
Then ecskube alone at a fixed RATE (oha), cold start to /readyz, and RSS.
Every figure is printed with what produced it; nothing here asserts a time.
"""
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

work = sys.argv[1]
ecskube, fixed, go = sys.argv[2], sys.argv[3], sys.argv[4]
reviews = {"sample": sys.argv[5], "large": sys.argv[6]}
cert, key = f"{work}/certs/tls.crt", f"{work}/certs/tls.key"
DURATION = os.environ.get("DURATION", "8s")
CONNECTIONS = os.environ.get("CONNECTIONS", "32")
ROUNDS = int(os.environ.get("ROUNDS", "2"))
RATE = os.environ.get("RATE", "1000")
COLD_STARTS = int(os.environ.get("COLD_STARTS", "10"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_listening(port, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.01)
    raise SystemExit(f"nothing listens on {port} after {timeout}s")


def ecskube_command(port, probe):
    return [ecskube, "serve", "--webhook-only", "--preflight=false",
            "--listen", f"127.0.0.1:{port}", "--probe-listen", f"127.0.0.1:{probe}",
            "--tls-cert", cert, "--tls-key", key]


# No cluster: the engine alone (no preflight, no ConfigMap reads).
env = dict(os.environ, KUBECONFIG="/nonexistent", RUST_LOG="warn")


def start(name):
    port = free_port()
    if name == "ecskube":
        cmd = ecskube_command(port, free_port())
    elif name == "go-baseline":
        cmd = [go, "-listen", f"127.0.0.1:{port}", "-tls-cert", cert, "-tls-key", key]
    else:
        cmd = [fixed, f"127.0.0.1:{port}", cert, key]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=open(f"{work}/{name}.log", "w"))
    wait_listening(port)
    return proc, port


def rss_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


WRK_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open(os.getenv("REVIEW"), "r"); wrk.body = f:read("*a"); f:close()
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('RESULT {"rps": %f, "p50": %f, "p99": %f, "p999": %f, "errors": %d, "requests": %d}\\n',
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency:percentile(99.9) / 1000, e.status + e.connect + e.read + e.write + e.timeout, summary.requests))
end
"""
lua = f"{work}/post.lua"
with open(lua, "w") as f:
    f.write(WRK_LUA)


def wrk(port, endpoint, review):
    out = subprocess.run(["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{DURATION}", "-s", lua,
                          f"https://127.0.0.1:{port}/{endpoint}"],
                         env=dict(os.environ, REVIEW=review), capture_output=True, text=True, check=True).stdout
    line = next(l for l in out.splitlines() if l.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def check_answer(port, endpoint, review):
    """The benchmark measures answers, not refusals: one request first."""
    import ssl
    ctx = ssl.create_default_context(cafile=f"{work}/certs/ca.crt")
    body = open(review, "rb").read()
    req = urllib.request.Request(f"https://127.0.0.1:{port}/{endpoint}", data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
        answer = json.load(r)
    if not answer.get("response", {}).get("allowed"):
        raise SystemExit(f"{endpoint} on {port} did not allow {review}: {answer}")
    return answer


servers = {name: start(name) for name in ("ecskube", "go-baseline", "fixed-response")}
ecskube_pid = servers["ecskube"][0].pid
idle_rss = rss_kib(ecskube_pid, "VmRSS")
try:
    results = {}
    for review_name, review in reviews.items():
        for endpoint in ("validate", "mutate"):
            for name, (_, port) in servers.items():
                check_answer(port, endpoint, review)
            for _ in range(ROUNDS):
                for name, (_, port) in servers.items():
                    results.setdefault((review_name, endpoint, name), []).append(wrk(port, endpoint, review))
    load_peak_rss = rss_kib(ecskube_pid, "VmHWM")

    def median_round(runs):
        return sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]

    print(f"\nwrk -t1 -c{CONNECTIONS} -d{DURATION} over keep-alive TLS, {ROUNDS} rounds A B C alternating, "
          f"median round (sample review {os.path.getsize(reviews['sample'])} bytes, "
          f"large {os.path.getsize(reviews['large'])} bytes)")
    header = f"{'review':7} {'endpoint':9} {'server':15} {'requests/s':>10} {'p50 ms':>7} {'p99 ms':>7} {'p999 ms':>8} {'errors':>6} {'x Go':>6} {'of limit':>8}"
    print(header)
    print("-" * len(header))
    for review_name in reviews:
        for endpoint in ("validate", "mutate"):
            go_rps = median_round(results[(review_name, endpoint, "go-baseline")])["rps"]
            limit_rps = median_round(results[(review_name, endpoint, "fixed-response")])["rps"]
            for name in servers:
                r = median_round(results[(review_name, endpoint, name)])
                errors = sum(x["errors"] for x in results[(review_name, endpoint, name)])
                print(f"{review_name:7} {endpoint:9} {name:15} {r['rps']:10.0f} {r['p50']:7.3f} {r['p99']:7.3f} "
                      f"{r['p999']:8.3f} {errors:6d} {r['rps'] / go_rps:6.2f} {r['rps'] / limit_rps:8.0%}")
finally:
    for proc, _ in servers.values():
        proc.terminate()
        proc.wait()

# A steady rate, ecskube alone: the latency a cluster's API server sees.
proc, port = start("ecskube")
try:
    print(f"\necskube at a fixed {RATE} requests/s for {DURATION} (oha, 16 connections)")
    for review_name, review in reviews.items():
        out = subprocess.run(["oha", "--no-tui", "--output-format", "json", "--insecure", "-m", "POST",
                              "-H", "Content-Type: application/json", "-D", review, "-z", DURATION, "-c", "16",
                              "-q", RATE, f"https://127.0.0.1:{port}/validate"],
                             capture_output=True, text=True, check=True).stdout
        o = json.loads(out)
        p = o["latencyPercentiles"]
        print(f"  {review_name:7} /validate: {o['summary']['requestsPerSec']:.0f} requests/s, p50 {p['p50'] * 1000:.3f} ms, "
              f"p99 {p['p99'] * 1000:.3f} ms, p999 {p['p99.9'] * 1000:.3f} ms, success rate {o['summary']['successRate']:.4f}")
finally:
    proc.terminate()
    proc.wait()

# Cold start: process start to a 200 from /readyz (--webhook-only, certificate files).
starts = []
for _ in range(COLD_STARTS):
    port, probe = free_port(), free_port()
    began = time.monotonic()
    p = subprocess.Popen(ecskube_command(port, probe), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        try:
            with socket.create_connection(("127.0.0.1", probe), timeout=1) as s:
                s.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    break
        except OSError:
            pass
        time.sleep(0.0005)
    starts.append((time.monotonic() - began) * 1000)
    p.terminate()
    p.wait()

print(f"\ncold start to /readyz (--webhook-only), {COLD_STARTS} starts: median {statistics.median(starts):.1f} ms, "
      f"max {max(starts):.1f} ms")
print(f"binary: {os.path.getsize(ecskube) / 2**20:.1f} MiB (target/release/ecskube; the image strips it)")
print(f"ecskube RSS: idle {idle_rss / 1024:.1f} MiB, peak under the load above {load_peak_rss / 1024:.1f} MiB")
