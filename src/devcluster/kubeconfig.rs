//! Admin kubeconfig for the dev cluster. Certificates are referenced by path
//! (they live next to it in the cluster's work dir), so no base64 is needed.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::json;

use super::pki::PkiFiles;

/// Writes a kubeconfig with one context, `ecskube-dev`, using the admin cert.
pub fn write(path: &Path, server_url: &str, pki: &PkiFiles) -> Result<()> {
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{
            "name": "ecskube-dev",
            "cluster": {
                "server": server_url,
                "certificate-authority": pki.ca_cert,
            },
        }],
        "users": [{
            "name": "ecskube-admin",
            "user": {
                "client-certificate": pki.admin_cert,
                "client-key": pki.admin_key,
            },
        }],
        "contexts": [{
            "name": "ecskube-dev",
            "context": { "cluster": "ecskube-dev", "user": "ecskube-admin", "namespace": "default" },
        }],
        "current-context": "ecskube-dev",
    });
    let yaml = serde_yaml_ng::to_string(&config)?;
    fs::write(path, yaml).with_context(|| format!("writing {}", path.display()))
}
