//! ecskube tested the way it runs once installed: `kubectl apply -k
//! webhook-config/` into the real control plane, then the two Deployments'
//! processes (on this host), each authenticated as its own ServiceAccount,
//! the webhook reached through the Service the shipped configurations name,
//! serving certificates it made and rotates itself. Nothing in
//! webhook-config/ is modified for the test.

mod support;

use ecskube::devcluster::ecskube::{Installation, SYSTEM_NAMESPACE};
use ecskube::devcluster::DevCluster;
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};
use support::{shared_cluster, wait_for, DumpLogsOnPanic};

const TIMEOUT: Duration = Duration::from_secs(180);

fn manifests() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("webhook-config")
}

fn sample(ns: &str, image: &str) -> String {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/ecsdeployment.json")).unwrap();
    let mut v: Value = serde_json::from_str(&text).unwrap();
    v["metadata"]["namespace"] = ns.into();
    v["spec"]["Task"]["Properties"]["ContainerDefinitions"][0]["Image"] = image.into();
    v.to_string()
}

fn json_of(cluster: &DevCluster, args: &[&str]) -> Value {
    serde_json::from_str(&cluster.kubectl_ok(args, None).unwrap_or_else(|e| panic!("{e:#}"))).unwrap()
}

/// The Secret's data key, decoded.
fn secret_key(cluster: &DevCluster, key: &str) -> String {
    let s = json_of(
        cluster,
        &["get", "secret", "ecskube-webhook-tls", "-n", SYSTEM_NAMESPACE, "-o", "json"],
    );
    use base64::Engine;
    let b64 = s["data"][key].as_str().unwrap_or_default();
    String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64).unwrap_or_default()).unwrap()
}

fn ca_bundles(cluster: &DevCluster) -> Vec<String> {
    use base64::Engine;
    let mut out = Vec::new();
    for kind in ["mutatingwebhookconfiguration", "validatingwebhookconfiguration"] {
        let v = json_of(cluster, &["get", kind, "ecskube", "-o", "json"]);
        for w in v["webhooks"].as_array().unwrap() {
            let b = w["clientConfig"]["caBundle"].as_str().unwrap_or_default();
            out.push(String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b).unwrap()).unwrap());
        }
    }
    out
}

/// The report a replica serving `cert_pem` would keep, renewed just now
/// and live for an hour: a replica stuck on that certificate.
fn stuck_replica_report(cert_pem: &str) -> String {
    use ecskube::webhook::serving_report::{fingerprint_pem, REPORT_LABEL, SERVING_ANNOTATION};
    serde_json::json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": "ecskube-webhook-serving-stuck-replica",
            "namespace": SYSTEM_NAMESPACE,
            "labels": { REPORT_LABEL: "true" },
            "annotations": { SERVING_ANNOTATION: fingerprint_pem(cert_pem).unwrap() },
        },
        "spec": { "holderIdentity": "stuck-replica", "leaseDurationSeconds": 3600 },
    })
    .to_string()
}

#[test]
fn installed_with_kubectl_apply_k_it_runs_rotates_and_uninstalls_cleanly() {
    let cluster = shared_cluster();
    let _logs = DumpLogsOnPanic(cluster);
    let binary = Path::new(env!("CARGO_BIN_EXE_ecskube"));
    // Short lifetimes, so the test sees serving renewals and a CA rotation.
    let lifetimes = [
        "--serving-cert-lifetime-seconds=24",
        "--ca-lifetime-seconds=60",
        "--ca-overlap-seconds=12",
        "--cert-check-interval-ms=1000",
    ]
    .map(String::from);
    let installed = Installation::install(cluster, binary, &manifests(), &lifetimes).unwrap_or_else(|e| panic!("{e:#}"));

    // The certificates bootstrapped themselves: the Secret, and its CA in caBundle.
    let ca = secret_key(cluster, "ca.crt");
    assert!(ca.contains("BEGIN CERTIFICATE"), "{ca}");
    assert!(
        ca_bundles(cluster).iter().all(|b| b.contains(ca.trim())),
        "caBundle does not trust the Secret's CA"
    );

    cluster.kubectl_ok(&["create", "namespace", "installed"], None).unwrap();
    wait_for("the namespace's default ServiceAccount", TIMEOUT, || {
        cluster
            .kubectl_run(&["get", "sa", "default", "-n", "installed"], None)
            .unwrap()
            .success()
    });
    // The sample applies, and the controller (as its own account) makes its children.
    let out = cluster
        .kubectl_run(&["apply", "-f", "-"], Some(&sample("installed", "wordpress:6")))
        .unwrap();
    assert!(out.success(), "{}\n{}", out.stderr, installed.webhook.log_tail(20));
    wait_for("the sample's Deployment", TIMEOUT, || {
        cluster
            .kubectl_run(&["get", "deployment", "ecs-demo-deploy", "-n", "installed"], None)
            .unwrap()
            .success()
    });
    // A typo is refused with its path; a server-side dry run stores nothing.
    let mut typo: Value = serde_json::from_str(&sample("installed", "wordpress:6")).unwrap();
    let c = typo["spec"]["Task"]["Properties"]["ContainerDefinitions"][0]
        .as_object_mut()
        .unwrap();
    let memory = c.remove("Memory").unwrap();
    c.insert("Memroy".into(), memory);
    let typo = typo.to_string();
    let out = cluster.kubectl_run(&["apply", "-f", "-"], Some(&typo)).unwrap();
    assert!(
        !out.success() && out.stderr.contains("ContainerDefinitions[0].Memroy"),
        "{}",
        out.stderr
    );
    let dry = sample("installed", "wordpress:dry-run");
    assert!(cluster
        .kubectl_run(&["apply", "--dry-run=server", "-f", "-"], Some(&dry))
        .unwrap()
        .success());
    let stored = json_of(cluster, &["get", "ecsd", "ecs-demo-deploy", "-n", "installed", "-o", "json"]);
    assert_eq!(
        stored["spec"]["Task"]["Properties"]["ContainerDefinitions"][0]["Image"],
        "wordpress:6"
    );
    // An update rolls.
    assert!(cluster
        .kubectl_run(&["apply", "-f", "-"], Some(&sample("installed", "wordpress:7")))
        .unwrap()
        .success());
    wait_for("the new image in the Deployment", TIMEOUT, || {
        let d = json_of(cluster, &["get", "deployment", "ecs-demo-deploy", "-n", "installed", "-o", "json"]);
        d["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["image"] == "wordpress:7")
    });

    // Certificates rotate (serving renewals, then a new CA) under a steady
    // stream of admissions: not one may fail. When the CA rotates, a
    // replica that stopped following the Secret (its report, fresh, still
    // names the first certificate) keeps the old CA in caBundle past the
    // overlap; once that replica is gone, the old CA leaves.
    let first_ca = ca.clone();
    let first_cert = secret_key(cluster, "tls.crt");
    let started = Instant::now();
    let (mut admitted, mut failed, mut certs_seen) = (0, Vec::new(), std::collections::BTreeSet::new());
    certs_seen.insert(first_cert.clone());
    let mut rotated_and_settled = false;
    let (mut stuck_since, mut held_for_the_stuck_replica) = (None::<Instant>, false);
    while started.elapsed() < Duration::from_secs(180) {
        let out = cluster.kubectl_run(&["apply", "--dry-run=server", "-f", "-"], Some(&dry)).unwrap();
        if out.success() {
            admitted += 1;
        } else {
            failed.push(out.stderr);
        }
        certs_seen.insert(secret_key(cluster, "tls.crt"));
        let ca_now = secret_key(cluster, "ca.crt");
        if ca_now == first_ca {
            continue;
        }
        let since = *stuck_since.get_or_insert_with(|| {
            cluster
                .kubectl_ok(&["apply", "-f", "-"], Some(&stuck_replica_report(&first_cert)))
                .unwrap_or_else(|e| panic!("{e:#}"));
            Instant::now()
        });
        if !held_for_the_stuck_replica {
            // The overlap is 12 s: past it, the old CA must still be trusted.
            if since.elapsed() > Duration::from_secs(20) {
                let serving = secret_key(cluster, "tls.crt");
                assert_ne!(serving, first_cert, "the serving certificate was not reissued by the new CA");
                assert!(
                    ca_bundles(cluster).iter().all(|b| b.contains(first_ca.trim())),
                    "the old CA left caBundle while a live replica still served a certificate it signed\n{}",
                    installed.webhook.log_tail(30)
                );
                assert!(
                    installed.webhook.log_tail(200).contains("ecskube-webhook-serving-stuck-replica"),
                    "the manager does not say which replica it waits for\n{}",
                    installed.webhook.log_tail(30)
                );
                held_for_the_stuck_replica = true;
                cluster
                    .kubectl_ok(
                        &["delete", "lease", "ecskube-webhook-serving-stuck-replica", "-n", SYSTEM_NAMESPACE],
                        None,
                    )
                    .unwrap();
            }
            continue;
        }
        // Done once a new CA signs the serving certificate and the old CA has left caBundle.
        if ca_bundles(cluster).iter().all(|b| !b.contains(first_ca.trim())) && certs_seen.len() >= 3 {
            rotated_and_settled = true;
            break;
        }
    }
    eprintln!(
        "{admitted} admissions through {} serving certificates and a CA rotation in {:.0?}, {} failed",
        certs_seen.len(),
        started.elapsed(),
        failed.len()
    );
    assert!(
        rotated_and_settled,
        "no full rotation within the time\n{}",
        installed.webhook.log_tail(30)
    );
    assert!(failed.is_empty(), "admissions failed during the rotation: {failed:?}");
    let metrics = installed.webhook.metrics().unwrap();
    assert!(metrics.contains("ecskube_certificate_expiry_timestamp_seconds"), "{metrics}");

    // Recovering from an outage: an admin deleted both configurations so
    // writes go through; ecskube re-creates them when it starts again.
    cluster
        .kubectl_ok(
            &["delete", "mutatingwebhookconfiguration,validatingwebhookconfiguration", "ecskube"],
            None,
        )
        .unwrap();
    let mut installed = installed;
    installed.restart_webhook(cluster).unwrap_or_else(|e| panic!("{e:#}"));
    let ca = secret_key(cluster, "ca.crt");
    assert!(
        ca_bundles(cluster).iter().all(|b| b.contains(ca.trim())),
        "re-created without the CA"
    );
    let namespace_uid = json_of(cluster, &["get", "namespace", SYSTEM_NAMESPACE, "-o", "json"])["metadata"]["uid"].clone();
    for kind in ["mutatingwebhookconfiguration", "validatingwebhookconfiguration"] {
        let v = json_of(cluster, &["get", kind, "ecskube", "-o", "json"]);
        assert_eq!(v["metadata"]["ownerReferences"][0]["uid"], namespace_uid, "{kind}: {v}");
        assert_eq!(
            v["webhooks"][0]["clientConfig"]["service"]["name"], "ecskube-webhook",
            "{kind}: {v}"
        );
    }
    let out = cluster.kubectl_run(&["apply", "-f", "-"], Some(&typo)).unwrap();
    assert!(
        !out.success() && out.stderr.contains("ContainerDefinitions[0].Memroy"),
        "{}",
        out.stderr
    );

    // Deleting the ECSDeployment garbage-collects its children.
    cluster
        .kubectl_ok(&["delete", "ecsd", "ecs-demo-deploy", "-n", "installed", "--wait=true"], None)
        .unwrap();
    wait_for("the children to go", TIMEOUT, || {
        !cluster
            .kubectl_run(&["get", "deployment", "ecs-demo-deploy", "-n", "installed"], None)
            .unwrap()
            .success()
    });

    // Uninstall: nothing of ecskube is left.
    drop(installed);
    cluster
        .kubectl_ok(
            &["delete", "-k", &manifests().to_string_lossy(), "--wait=true", "--timeout=180s"],
            None,
        )
        .unwrap_or_else(|e| panic!("{e:#}"));
    let left = cluster
        .kubectl_ok(
            &[
                "get",
                "crd,clusterrole,clusterrolebinding,mutatingwebhookconfiguration,validatingwebhookconfiguration,validatingadmissionpolicy,validatingadmissionpolicybinding,namespace",
                "-o",
                "name",
            ],
            None,
        )
        .unwrap();
    let ours: Vec<&str> = left.lines().filter(|l| l.contains("ecskube")).collect();
    assert!(ours.is_empty(), "left behind: {ours:?}");
}

/// The example overlay renders with what it says it sets, and its policy is
/// one ecskube accepts (a policy ecskube refuses would keep it from starting).
#[test]
fn the_example_overlay_sets_image_replicas_and_a_valid_policy() {
    let cluster = shared_cluster();
    let overlay = Path::new(env!("CARGO_MANIFEST_DIR")).join("overlays/example");
    let rendered = cluster.kubectl_ok(&["kustomize", &overlay.to_string_lossy()], None).unwrap();
    let docs: Vec<Value> = serde_yaml_ng::Deserializer::from_str(&rendered)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    let find = |kind: &str, name: &str| {
        docs.iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {name}"))
    };
    // Still webhook configurations first, so `kubectl delete -k` removes them first.
    assert_eq!(docs[0]["kind"], "MutatingWebhookConfiguration");
    let webhook = find("Deployment", "ecskube-webhook");
    assert_eq!(webhook["spec"]["replicas"], 3);
    let image = webhook["spec"]["template"]["spec"]["containers"][0]["image"].as_str().unwrap();
    assert_eq!(image, "123456789012.dkr.ecr.us-east-1.amazonaws.com/ecskube:0.1.0");
    let policy = find("ConfigMap", "ecskube-policy")["data"]["policy.yaml"].as_str().unwrap();
    assert_eq!(policy, std::fs::read_to_string(overlay.join("policy.yaml")).unwrap());
    let parsed = ecskube::policy::Policy::from_yaml(policy).unwrap_or_else(|e| panic!("{e}"));
    assert!(parsed.namespaces.contains_key("monitoring"), "{parsed:?}");
    let np = find("NetworkPolicy", "ecskube-webhook");
    assert_eq!(np["spec"]["ingress"][0]["from"][0]["ipBlock"]["cidr"], "10.0.32.0/19");
}
