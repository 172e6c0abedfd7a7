//! Shared helpers for end-to-end tests against a real control plane.
//!
//! Every test binary that does `mod support;` gets ONE control plane
//! ([`shared_cluster`]), started on first use and stopped at process exit;
//! each test works in its own namespace ([`test_namespace`]).
#![allow(dead_code)] // each test binary uses a different subset

pub mod https;
pub mod webhook;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use ecskube::devcluster::{ClusterOptions, DevCluster};

static SHARED: OnceLock<Result<DevCluster, String>> = OnceLock::new();

/// The test binary's control plane. Panics (failing the test, never skipping
/// it) if it cannot start, e.g. with the `make control-plane` hint when the
/// binaries are missing.
pub fn shared_cluster() -> &'static DevCluster {
    let cluster = SHARED.get_or_init(|| {
        let started = Instant::now();
        let result = DevCluster::start(ClusterOptions::default()).map_err(|e| format!("{e:#}"));
        if result.is_ok() {
            eprintln!("control plane up in {:.1?}", started.elapsed());
            // Statics are never dropped: stop the cluster from an atexit hook
            // (the test harness ends with exit()) and on Ctrl-C. If even that
            // is skipped, PR_SET_PDEATHSIG still kills the children.
            // SAFETY: registering a plain extern "C" fn.
            unsafe { libc::atexit(shutdown_shared) };
            let _ = ctrlc::set_handler(|| {
                shutdown_shared();
                std::process::exit(130);
            });
        }
        result
    });
    match cluster {
        Ok(c) => c,
        Err(e) => panic!("could not start the test control plane:\n{e}"),
    }
}

extern "C" fn shutdown_shared() {
    if let Some(Ok(c)) = SHARED.get() {
        c.shutdown();
    }
}

/// Prints the tail of every component log if the test panics while this
/// guard is alive: `let _logs = DumpLogsOnPanic(cluster);`.
pub struct DumpLogsOnPanic(pub &'static DevCluster);

impl Drop for DumpLogsOnPanic {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("{}", self.0.log_tails(40));
        }
    }
}

/// Creates a fresh namespace `<prefix>-<n>` and waits until its `default`
/// ServiceAccount exists (pods are rejected before that).
pub fn test_namespace(cluster: &DevCluster, prefix: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let name = format!("{prefix}-{}", COUNTER.fetch_add(1, Ordering::Relaxed));
    cluster
        .kubectl_ok(&["create", "namespace", &name], None)
        .unwrap_or_else(|e| panic!("{e:#}"));
    wait_for(&format!("ServiceAccount {name}/default"), Duration::from_secs(60), || {
        cluster
            .kubectl_run(&["get", "serviceaccount", "default", "-n", &name], None)
            .map(|o| o.success())
            .unwrap_or(false)
    });
    name
}

/// Polls `cond` every 250ms until it holds; panics after `timeout`.
pub fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        thread::sleep(Duration::from_millis(250));
    }
}

/// Standard base64 (for `caBundle` fields).
pub fn base64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}
