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

/// A kubeconfig that authenticates with a bearer token only (no client
/// certificate, which the API server would otherwise prefer): how a
/// ServiceAccount's token is used from outside a pod.
pub fn write_token(path: &Path, server_url: &str, ca_cert: &Path, user: &str, token: &str) -> Result<()> {
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "ecskube-dev", "cluster": {"server": server_url, "certificate-authority": ca_cert}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": user, "context": {"cluster": "ecskube-dev", "user": user, "namespace": "default"}}],
        "current-context": user,
    });
    fs::write(path, serde_yaml_ng::to_string(&config)?).with_context(|| format!("writing {}", path.display()))
}

/// The API server's AdmissionConfiguration: it presents `client_cert` to every
/// admission webhook (kubeconfig user `*`), so a webhook can require it.
pub fn write_webhook_client(dir: &Path, cert: &Path, key: &Path) -> Result<std::path::PathBuf> {
    let kubeconfig = dir.join("webhook-client.kubeconfig");
    let users = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "users": [{"name": "*", "user": {"client-certificate": cert, "client-key": key}}],
    });
    fs::write(&kubeconfig, serde_yaml_ng::to_string(&users)?)?;
    let plugin = |name: &str| {
        json!({"name": name, "configuration": {
            "apiVersion": "apiserver.config.k8s.io/v1",
            "kind": "WebhookAdmissionConfiguration",
            "kubeConfigFile": kubeconfig,
        }})
    };
    let config = json!({
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "AdmissionConfiguration",
        "plugins": [plugin("ValidatingAdmissionWebhook"), plugin("MutatingAdmissionWebhook")],
    });
    let path = dir.join("admission-config.yaml");
    fs::write(&path, serde_yaml_ng::to_string(&config)?).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}
