//! Every file in samples/, applied the way samples/README.md says, to
//! ecskube as `kubectl apply -k webhook-config/` installs it (its shipped
//! default policy included): each is admitted, becomes its workload and
//! Service, and reports Ready. A sample added to the folder but not here,
//! or not described in samples/README.md, fails the test.

mod support;

use ecskube::devcluster::ecskube::Installation;
use ecskube::devcluster::DevCluster;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::{shared_cluster, test_namespace, wait_for, DumpLogsOnPanic};

const TIMEOUT: Duration = Duration::from_secs(180);

/// What each sample becomes: (file, ECSDeployment name, workload kind,
/// child name, whether it has a Service).
/// Samples that need what this test's cluster does not have, and the test
/// that applies them in a cluster that does.
const APPLIED_ELSEWHERE: &[(&str, &str)] = &[("aws-integrations.yaml", "tests/integrations.rs")];

const SAMPLES: &[(&str, &str, &str, &str, bool)] = &[
    ("ecsdeployment.json", "ecs-demo-deploy", "deployment", "ecs-demo-deploy", true),
    ("wordpress-links.json", "wordpress", "deployment", "wordpress", true),
    ("describe-task-definition.json", "checkout", "deployment", "checkout", true),
    ("cloudformation.yaml", "catalog", "deployment", "catalog", true),
    ("task-from-configmap/ecsdeployment.yaml", "billing", "deployment", "billing", true),
    ("fargate-nginx.json", "nginx", "deployment", "nginx", true),
    ("daemon-log-router.json", "log-router", "daemonset", "log-router", true),
    (
        "healthcheck-depends-on.json",
        "api-with-cache",
        "deployment",
        "api-with-cache",
        true,
    ),
    ("irsa.json", "orders-api", "deployment", "orders-api", true),
    ("autoscaling-cloudformation.yaml", "storefront", "deployment", "storefront", true),
];

fn samples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples")
}

/// Every manifest under samples/ (the TaskFrom folder's task definition is
/// the ConfigMap's content, not a manifest).
fn sample_files() -> Vec<String> {
    let mut out = Vec::new();
    let mut dirs = vec![samples_dir()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if matches!(path.extension().and_then(|e| e.to_str()), Some("json" | "yaml" | "yml")) {
                let rel = path.strip_prefix(samples_dir()).unwrap().to_string_lossy().into_owned();
                if rel != "task-from-configmap/task-definition.json" {
                    out.push(rel);
                }
            }
        }
    }
    out.sort();
    out
}

/// The sample as JSON, placed in `ns`.
fn in_namespace(file: &str, ns: &str) -> String {
    let text = std::fs::read_to_string(samples_dir().join(file)).unwrap();
    let mut v: Value = serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
    v["metadata"]["namespace"] = ns.into();
    v.to_string()
}

fn get(cluster: &DevCluster, ns: &str, kind: &str, name: &str) -> Option<Value> {
    let out = cluster.kubectl_run(&["get", kind, name, "-n", ns, "-o", "json"], None).unwrap();
    out.success().then(|| serde_json::from_str(&out.stdout).unwrap())
}

fn condition(ecsd: &Value, kind: &str) -> Option<String> {
    ecsd["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
        .map(|c| {
            format!(
                "{} {} {}",
                c["status"].as_str().unwrap_or(""),
                c["reason"].as_str().unwrap_or(""),
                c["message"].as_str().unwrap_or("")
            )
        })
}

#[test]
fn every_sample_is_listed_in_its_readme_and_here() {
    let readme = std::fs::read_to_string(samples_dir().join("README.md")).unwrap();
    let listed: Vec<&str> = SAMPLES.iter().map(|s| s.0).collect();
    for file in sample_files() {
        if let Some((_, by)) = APPLIED_ELSEWHERE.iter().find(|(f, _)| *f == file) {
            assert!(readme.contains(&format!("`{file}`")), "samples/README.md does not describe {file}");
            let test = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(by)).unwrap();
            assert!(test.contains(&format!("samples/{file}")), "{by} does not apply samples/{file}");
            continue;
        }
        assert!(listed.contains(&file.as_str()), "samples/{file} is not applied by this test");
        assert!(readme.contains(&format!("`{file}`")), "samples/README.md does not describe {file}");
    }
    for file in listed {
        assert!(samples_dir().join(file).exists(), "{file} is listed but missing");
    }
}

#[test]
fn every_sample_applies_to_the_installed_ecskube_and_becomes_ready() {
    let cluster = shared_cluster();
    let _logs = DumpLogsOnPanic(cluster);
    let binary = Path::new(env!("CARGO_BIN_EXE_ecskube"));
    let manifests = Path::new(env!("CARGO_MANIFEST_DIR")).join("webhook-config");
    let installed = Installation::install(cluster, binary, &manifests, &[]).unwrap_or_else(|e| panic!("{e:#}"));

    let mut applied = Vec::new();
    for &(file, name, kind, child, has_service) in SAMPLES {
        let ns = test_namespace(cluster, "sample");
        if file.starts_with("task-from-configmap/") {
            // As samples/README.md says: the task definition file becomes a ConfigMap.
            let task = samples_dir().join("task-from-configmap/task-definition.json");
            let from_file = format!("--from-file={}", task.display());
            cluster
                .kubectl_ok(&["create", "configmap", "billing-task", &from_file, "-n", &ns], None)
                .unwrap_or_else(|e| panic!("{e:#}"));
        }
        let out = cluster.kubectl_run(&["apply", "-f", "-"], Some(&in_namespace(file, &ns))).unwrap();
        assert!(out.success(), "{file}: {}\n{}", out.stderr, installed.webhook.log_tail(20));
        assert!(!out.stderr.contains("Error"), "{file}: {}", out.stderr);
        eprintln!(
            "{file}: applied; {} warning line(s)",
            out.stderr.lines().filter(|l| l.starts_with("Warning")).count()
        );
        applied.push((file, ns, name, kind, child, has_service));
    }
    for (file, ns, name, kind, child, has_service) in &applied {
        wait_for(&format!("{file}: Ready"), TIMEOUT, || {
            get(cluster, ns, "ecsd", name)
                .and_then(|e| condition(&e, "Ready"))
                .is_some_and(|c| c.starts_with("True"))
        });
        let workload = get(cluster, ns, kind, child).unwrap_or_else(|| panic!("{file}: no {kind} {child}"));
        let owner = &workload["metadata"]["ownerReferences"][0];
        assert_eq!(
            (owner["kind"].as_str(), owner["name"].as_str()),
            (Some("ECSDeployment"), Some(*name)),
            "{file}"
        );
        if *has_service {
            assert!(get(cluster, ns, "service", child).is_some(), "{file}: no Service {child}");
        }
    }
    // What the samples say about themselves, checked where it is specific.
    let ns_of = |f: &str| applied.iter().find(|a| a.0 == f).map(|a| a.1.clone()).unwrap();
    let catalog = get(cluster, &ns_of("cloudformation.yaml"), "deployment", "catalog").unwrap();
    let c = &catalog["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["image"], "public.ecr.aws/nginx/nginx:1.27", "Fn::Join of a parameter");
    assert_eq!(catalog["spec"]["replicas"], 2, "Fn::If on a condition");
    assert!(
        c["env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "STAGE" && e["value"] == "staging"),
        "{c}"
    );
    let nginx = get(cluster, &ns_of("fargate-nginx.json"), "deployment", "nginx").unwrap();
    assert_eq!(nginx["spec"]["replicas"], 3);
    // Task-level cpu/memory: the pod's own resources (512 CPU units are half a core).
    let task_level = &nginx["spec"]["template"]["spec"]["resources"];
    assert_eq!(
        (task_level["limits"]["cpu"].as_str(), task_level["limits"]["memory"].as_str()),
        (Some("500m"), Some("1Gi")),
        "{task_level}"
    );
    let billing = get(cluster, &ns_of("task-from-configmap/ecsdeployment.yaml"), "deployment", "billing").unwrap();
    let env = &billing["spec"]["template"]["spec"]["containers"][0]["env"];
    assert!(env.as_array().unwrap().iter().any(|e| e["name"] == "CURRENCY"), "{env}");
    let cached = get(cluster, &ns_of("healthcheck-depends-on.json"), "deployment", "api-with-cache").unwrap();
    // dependsOn HEALTHY: the dependency starts first, as a sidecar the app waits for (its startupProbe).
    let cache = &cached["spec"]["template"]["spec"]["initContainers"][0];
    assert_eq!(
        (cache["name"].as_str(), cache["restartPolicy"].as_str()),
        (Some("cache"), Some("Always")),
        "{cache}"
    );
    assert!(cache["startupProbe"]["exec"]["command"][0] == "redis-cli", "{cache}");
}
