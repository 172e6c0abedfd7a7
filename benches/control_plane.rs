//! Measurements against the real local control plane (not tests: they report
//! figures, they do not judge them). `make bench-control-plane`, or
//! `cargo bench --bench control_plane -- [preflight] [scale]`.
//!
//! - preflight: the admission latency the preflight adds, from the
//!   webhook's own log lines (median and p99 over 50 server-side dry runs),
//!   with and without it.
//! - scale: `ECSKUBE_BENCH_N` (default 1000) ECSDeployments with desiredCount
//!   0 created at once under `ecskube serve --controller-only`: time until
//!   every child exists and every status is observed, reconciles, the
//!   process's CPU time and peak RSS, ecskube's writes per object; then, for
//!   comparison in the same run, how long kube-controller-manager takes to
//!   create the ReplicaSets of those Deployments.

use ecskube::devcluster::ecskube::EcskubeProcess;
use ecskube::devcluster::{ClusterOptions, DevCluster};
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

fn main() {
    // `cargo test --all-targets` runs bench binaries too, without `--bench`:
    // measurements take minutes and are not checks, so they run only as benches.
    if !std::env::args().any(|a| a == "--bench") {
        println!("control_plane: measurements run with `cargo bench --bench control_plane` only");
        return;
    }
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let wants = |m: &str| args.is_empty() || args.iter().any(|a| a == m);
    let cluster = DevCluster::start(ClusterOptions::default()).unwrap_or_else(|e| panic!("{e:#}"));
    if wants("preflight") {
        preflight_latency(&cluster);
    }
    if wants("scale") {
        let n = std::env::var("ECSKUBE_BENCH_N").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
        scale(&cluster, n);
    }
}

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ecskube"))
}

fn sample(ns: &str) -> String {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/ecsdeployment.json")).unwrap();
    let mut v: Value = serde_json::from_str(&text).unwrap();
    v["metadata"]["namespace"] = ns.into();
    v.to_string()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn preflight_latency(cluster: &DevCluster) {
    cluster.kubectl_ok(&["create", "namespace", "bench-preflight"], None).unwrap();
    let manifest = sample("bench-preflight");
    let mut results = Vec::new();
    for (name, preflight) in [("lat-preflight", "true"), ("lat-plain", "false")] {
        let args = vec![
            "--webhook-only".to_string(),
            "--log-format=json".to_string(),
            format!("--preflight={preflight}"),
        ];
        let server = EcskubeProcess::start(cluster, binary(), name, &args).unwrap();
        server.install(cluster).unwrap();
        std::thread::sleep(Duration::from_secs(2)); // the configuration takes effect
        let calls_before = api_requests(cluster);
        for _ in 0..50 {
            cluster
                .kubectl_ok(&["apply", "--dry-run=server", "-f", "-"], Some(&manifest))
                .unwrap();
        }
        let calls = api_requests(cluster);
        let mut per_admission = Vec::new();
        for (key, after) in &calls {
            let delta = after - calls_before.get(key).copied().unwrap_or(0.0);
            if delta > 0.0 {
                per_admission.push(format!("{} {key}", delta / 50.0));
            }
        }
        let total: f64 = calls.iter().map(|(k, v)| v - calls_before.get(k).copied().unwrap_or(0.0)).sum();
        println!(
            "preflight={preflight}: {:.1} API requests per admission besides kubectl's own: {}",
            total / 50.0,
            per_admission.join(", ")
        );
        let log = std::fs::read_to_string(&server.log_path).unwrap();
        let mut ms: Vec<f64> = log
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["fields"]["endpoint"] == "validate")
            .filter_map(|v| v["fields"]["latency_ms"].as_f64())
            .collect();
        ms.sort_by(f64::total_cmp);
        results.push((preflight, percentile(&ms, 0.5), percentile(&ms, 0.99), ms.len()));
    }
    // The configurations point at the processes just stopped: without them
    // the API server refuses every later ECSDeployment (failurePolicy: Fail).
    cluster
        .kubectl_ok(
            &["delete", "mutatingwebhookconfiguration,validatingwebhookconfiguration", "ecskube"],
            None,
        )
        .unwrap();
    for (preflight, p50, p99, n) in &results {
        println!("preflight={preflight}: /validate median {p50:.2} ms, p99 {p99:.2} ms over {n} admissions");
    }
    println!("the preflight adds {:.2} ms at the median", results[0].1 - results[1].1);
}

/// kube-apiserver's request counts (apiserver_request_total, WATCH aside)
/// for what the preflight reads and dry-runs, by `resource verb dry_run`:
/// everything an admission costs the API server besides the ECSDeployment
/// request kubectl itself makes.
fn api_requests(cluster: &DevCluster) -> std::collections::BTreeMap<String, f64> {
    const PREFLIGHT_RESOURCES: &[&str] = &[
        "deployments",
        "daemonsets",
        "services",
        "serviceaccounts",
        "pods",
        "resourcequotas",
        "configmaps",
        "selfsubjectaccessreviews",
    ];
    let text = cluster.kubectl_ok(&["get", "--raw", "/metrics"], None).unwrap();
    let mut counts = std::collections::BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("apiserver_request_total{")) {
        let label = |name: &str| {
            line.split(&format!("{name}=\""))
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap_or("")
                .to_string()
        };
        let (resource, verb) = (label("resource"), label("verb"));
        if verb == "WATCH" || !PREFLIGHT_RESOURCES.contains(&resource.as_str()) {
            continue;
        }
        let dry = if label("dry_run").is_empty() { "" } else { " dry-run" };
        let value: f64 = line.rsplit(' ').next().and_then(|v| v.parse().ok()).unwrap_or(0.0);
        *counts.entry(format!("{verb} {resource}{dry}")).or_insert(0.0) += value;
    }
    counts
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command (which may hold spaces) end with ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the ')'.
    (ticks(11) + ticks(12)) / 100.0
}

fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

fn count(cluster: &DevCluster, kind: &str, ns: &str) -> usize {
    cluster
        .kubectl_ok(&["get", kind, "-n", ns, "-o", "name"], None)
        .unwrap_or_default()
        .lines()
        .count()
}

fn wait(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !cond() {
        assert!(started.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
    started.elapsed()
}

fn scale(cluster: &DevCluster, n: usize) {
    let ns = "bench-scale";
    cluster.kubectl_ok(&["create", "namespace", ns], None).unwrap();
    let resync: u64 = std::env::var("ECSKUBE_BENCH_RESYNC_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let controller = EcskubeProcess::start(
        cluster,
        binary(),
        "scale-controller",
        &["--controller-only".to_string(), format!("--resync-seconds={resync}")],
    )
    .unwrap();
    let (cpu_before, pid) = (cpu_seconds(controller.pid()), controller.pid());
    let items: Vec<Value> = (0..n)
        .map(|i| {
            json!({"apiVersion": "ecskube.ecskube/v1alpha1", "kind": "ECSDeployment",
                   "metadata": {"name": format!("svc-{i}"), "namespace": ns},
                   "spec": {"Task": {"containerDefinitions": [{"name": "web", "image": "nginx:1", "memory": 64, "portMappings": [{"containerPort": 80}]}]},
                            "Service": {"desiredCount": 0}}})
        })
        .collect();
    let list = json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string();
    let started = Instant::now();
    cluster.kubectl_ok(&["create", "-f", "-"], Some(&list)).unwrap();
    let applied = started.elapsed();
    println!("{n} ECSDeployments created with kubectl in {applied:.1?}");
    wait("every Deployment and Service", Duration::from_secs(1200), || {
        count(cluster, "deployments", ns) == n && count(cluster, "services", ns) == n
    });
    let t_children = started.elapsed();
    println!("every Deployment and Service exists {t_children:.1?} after the create began");
    wait("every status", Duration::from_secs(1200), || {
        let out = cluster
            .kubectl_ok(
                &[
                    "get",
                    "ecsd",
                    "-n",
                    ns,
                    "-o",
                    "jsonpath={range .items[*]}{.status.observedGeneration}{\"\\n\"}{end}",
                ],
                None,
            )
            .unwrap_or_default();
        out.lines().filter(|l| !l.trim().is_empty()).count() == n
    });
    let t_status = started.elapsed();
    println!(
        "every status observed {t_status:.1?} after the create began ({:.1?} after the children)",
        t_status - t_children
    );
    let reconciles = controller.metric("ecskube_reconciles_total");
    let writes = controller.metric("ecskube_child_writes_total");
    let cpu = cpu_seconds(pid) - cpu_before;
    println!(
        "reconciles {reconciles}, writes {writes} ({:.1} per object), controller CPU {cpu:.1} s ({:.2} ms per reconcile), peak RSS {:.0} MiB",
        writes / n as f64,
        cpu * 1000.0 / reconciles.max(1.0),
        peak_rss_mib(pid)
    );
    // kube-controller-manager on the same Deployments: their ReplicaSets.
    wait("every ReplicaSet", Duration::from_secs(1800), || {
        count(cluster, "replicasets", ns) >= n
    });
    let t_rs = started.elapsed();
    println!(
        "kube-controller-manager made every ReplicaSet {t_rs:.1?} after the create began; ecskube's statuses took {:.2}x that",
        t_status.as_secs_f64() / t_rs.as_secs_f64()
    );
    // Steady state: no write for 15 s (the Deployments' own statuses have settled).
    let mut last = (controller.metric("ecskube_child_writes_total"), Instant::now());
    wait("a steady state", Duration::from_secs(1800), || {
        let now = controller.metric("ecskube_child_writes_total");
        if now != last.0 {
            last = (now, Instant::now());
        }
        last.1.elapsed() > Duration::from_secs(15)
    });
    // A whole resync period: every object reconciled once more, nothing written.
    let (r0, w0) = (
        controller.metric("ecskube_reconciles_total"),
        controller.metric("ecskube_child_writes_total"),
    );
    let window = Instant::now();
    wait("a resync of every object", Duration::from_secs(resync * 3 + 120), || {
        controller.metric("ecskube_reconciles_total") >= r0 + n as f64
    });
    println!(
        "steady state, one resync period ({resync} s, {:.1?}): {} reconciles, {} writes",
        window.elapsed(),
        controller.metric("ecskube_reconciles_total") - r0,
        controller.metric("ecskube_child_writes_total") - w0
    );
}
