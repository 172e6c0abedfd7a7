//! Where the control-plane binaries built by `make control-plane` live.
//!
//! scripts/build-control-plane.sh caches them outside the clone, keyed by the
//! Kubernetes version pinned in tests/control-plane/go.mod; we read the same
//! go.mod (at compile time) so the two can never disagree.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

const WRAPPER_GO_MOD: &str = include_str!("../../tests/control-plane/go.mod");

/// Every file the launcher needs from the bin dir.
pub const REQUIRED: &[&str] = &[
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "kwok",
    "kwok-stages.yaml",
];

/// The pinned Kubernetes release, e.g. "v1.37.2".
pub fn kubernetes_version() -> &'static str {
    WRAPPER_GO_MOD
        .lines()
        .filter_map(|l| l.trim().strip_prefix("k8s.io/kubernetes "))
        .filter_map(|rest| rest.split_whitespace().next())
        .next()
        .expect("tests/control-plane/go.mod requires k8s.io/kubernetes")
}

/// `$ECSKUBE_CONTROL_PLANE_BIN`, else
/// `${ECSKUBE_CONTROL_PLANE_CACHE:-${XDG_CACHE_HOME:-~/.cache}/ecskube/control-plane}/<version>/bin`
/// (the same rule as the build script).
pub fn default_bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("ECSKUBE_CONTROL_PLANE_BIN") {
        return PathBuf::from(dir);
    }
    let root = std::env::var_os("ECSKUBE_CONTROL_PLANE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into())).join(".cache"));
            cache.join("ecskube").join("control-plane")
        });
    root.join(kubernetes_version()).join("bin")
}

/// Fails, naming the build command, if any binary is missing.
pub fn check(bin_dir: &Path) -> Result<()> {
    let missing: Vec<&str> = REQUIRED.iter().copied().filter(|f| !bin_dir.join(f).is_file()).collect();
    if !missing.is_empty() {
        bail!(
            "control-plane binaries missing in {}: {}\nbuild them with: make control-plane   \
             (runs bash scripts/build-control-plane.sh; Kubernetes {})",
            bin_dir.display(),
            missing.join(", "),
            kubernetes_version()
        );
    }
    Ok(())
}
