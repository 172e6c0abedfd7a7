//! End-to-end checks of the local control plane itself (src/devcluster): it
//! starts, runs workloads on the kwok node, garbage-collects, and calls an
//! HTTPS admission webhook on 127.0.0.1 — the path the ecskube webhook uses.
//! Needs `make control-plane`; without the binaries these tests fail.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ecskube::devcluster::kubernetes_version;
use serde_json::{json, Value};
use support::{base64, shared_cluster, test_namespace, wait_for, webhook, DumpLogsOnPanic};

#[test]
fn control_plane_is_ready_and_reports_the_built_version() {
    let cluster = shared_cluster();
    let _logs = DumpLogsOnPanic(cluster);

    let readyz = cluster.kubectl_ok(&["get", "--raw", "/readyz"], None).unwrap();
    assert_eq!(readyz.trim(), "ok");

    // The kubectl we run is the one built with the control plane (its own
    // version says so below), and it is the file in the cache's bin dir.
    assert!(cluster.kubectl_path().is_file(), "{}", cluster.kubectl_path().display());
    let version: Value = serde_json::from_str(&cluster.kubectl_ok(&["version", "-o", "json"], None).unwrap()).unwrap();
    assert_eq!(version["serverVersion"]["gitVersion"], kubernetes_version());
    assert_eq!(version["clientVersion"]["gitVersion"], kubernetes_version());
}

#[test]
fn deployment_gets_a_replicaset_and_running_pods_on_the_kwok_node() {
    let cluster = shared_cluster();
    let _logs = DumpLogsOnPanic(cluster);
    let ns = test_namespace(cluster, "deploy");

    let deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": ns},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:fake"}]},
            },
        },
    });
    cluster.apply(&deployment.to_string()).unwrap();

    wait_for("a ReplicaSet owned by deployment/web", secs(60), || {
        get_json(cluster, &["get", "replicasets", "-n", &ns, "-o", "json"])["items"]
            .as_array()
            .is_some_and(|rs| {
                rs.iter().any(|r| {
                    r["metadata"]["ownerReferences"][0]["name"] == "web" && r["metadata"]["ownerReferences"][0]["kind"] == "Deployment"
                })
            })
    });
    let node = cluster.node_name().to_string();
    wait_for("2 Running pods on the kwok node", secs(90), || {
        let pods = get_json(cluster, &["get", "pods", "-n", &ns, "-l", "app=web", "-o", "json"]);
        let running = pods["items"].as_array().map_or(0, |items| {
            items
                .iter()
                .filter(|p| p["status"]["phase"] == "Running" && p["spec"]["nodeName"] == *node)
                .count()
        });
        running == 2
    });
    wait_for("deployment/web to report 2 available replicas", secs(60), || {
        get_json(cluster, &["get", "deployment", "web", "-n", &ns, "-o", "json"])["status"]["availableReplicas"] == 2
    });
}

#[test]
fn deleting_an_owner_garbage_collects_its_dependent() {
    let cluster = shared_cluster();
    let _logs = DumpLogsOnPanic(cluster);
    let ns = test_namespace(cluster, "gc");

    cluster.kubectl_ok(&["create", "configmap", "owner", "-n", &ns], None).unwrap();
    let owner = get_json(cluster, &["get", "configmap", "owner", "-n", &ns, "-o", "json"]);
    let dependent = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "dependent",
            "namespace": ns,
            "ownerReferences": [{
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "name": "owner",
                "uid": owner["metadata"]["uid"],
            }],
        },
    });
    cluster.apply(&dependent.to_string()).unwrap();

    cluster
        .kubectl_ok(&["delete", "configmap", "owner", "-n", &ns, "--wait=true"], None)
        .unwrap();
    wait_for("the garbage collector to delete the dependent", secs(60), || {
        let out = cluster.kubectl_run(&["get", "configmap", "dependent", "-n", &ns], None).unwrap();
        !out.success() && out.stderr.contains("NotFound")
    });
}

#[test]
fn validating_webhook_on_loopback_denies_and_kubectl_shows_why() {
    let cluster = shared_cluster();
    let _logs = DumpLogsOnPanic(cluster);
    let ns = test_namespace(cluster, "webhook");

    // Real TLS: a cert for IP 127.0.0.1 signed by the cluster CA, which is
    // also the caBundle the API server verifies it with.
    let cert = cluster.issue_server_cert(&["127.0.0.1"]).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let port = webhook::serve_https(
        &cert,
        Arc::new(move |path, body| {
            seen.fetch_add(1, Ordering::SeqCst);
            let review: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            let name = review["request"]["name"].as_str().unwrap_or("?");
            // The API server appends ?timeout=10s.
            let path = path.split('?').next().unwrap_or(path);
            let response = json!({
                "apiVersion": "admission.k8s.io/v1",
                "kind": "AdmissionReview",
                "response": {
                    "uid": review["request"]["uid"],
                    "allowed": false,
                    "status": {
                        "code": 403,
                        "message": format!("ecskube test webhook at {path} rejects configmap {name}"),
                    },
                },
            });
            (200, response.to_string())
        }),
    );

    // Scoped to this test's namespace so other tests are unaffected.
    let config = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": format!("deny-configmaps-{ns}")},
        "webhooks": [{
            "name": "deny.ecskube.test",
            "clientConfig": {
                "url": format!("https://127.0.0.1:{port}/validate"),
                "caBundle": base64(cluster.ca_pem().as_bytes()),
            },
            "rules": [{
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "operations": ["CREATE"],
                "resources": ["configmaps"],
            }],
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}},
            "failurePolicy": "Fail",
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "timeoutSeconds": 10,
        }],
    });
    cluster.apply(&config.to_string()).unwrap();

    // The API server picks up webhook configurations asynchronously: probe
    // with throwaway objects until the webhook is in effect.
    let mut probe = 0;
    wait_for("the webhook to take effect", secs(60), || {
        probe += 1;
        let name = format!("probe-{probe}");
        let out = cluster.kubectl_run(&["create", "configmap", &name, "-n", &ns], None).unwrap();
        !out.success()
    });

    let before = calls.load(Ordering::SeqCst);
    let out = cluster
        .kubectl_run(&["create", "configmap", "blocked", "-n", &ns, "--from-literal=a=b"], None)
        .unwrap();
    assert!(!out.success(), "create should be denied: {out:?}");
    assert!(
        out.stderr.contains("ecskube test webhook at /validate rejects configmap blocked"),
        "denial message missing from kubectl stderr: {}",
        out.stderr
    );
    assert!(out.stderr.contains("deny.ecskube.test"), "{}", out.stderr);
    assert!(calls.load(Ordering::SeqCst) > before, "webhook was not called");

    let get = cluster.kubectl_run(&["get", "configmap", "blocked", "-n", &ns], None).unwrap();
    assert!(!get.success() && get.stderr.contains("NotFound"), "{get:?}");

    cluster
        .kubectl_ok(
            &["delete", "validatingwebhookconfiguration", &format!("deny-configmaps-{ns}")],
            None,
        )
        .unwrap();
}

fn get_json(cluster: &ecskube::devcluster::DevCluster, args: &[&str]) -> Value {
    let out = cluster.kubectl_ok(args, None).unwrap();
    serde_json::from_str(&out).unwrap()
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}
