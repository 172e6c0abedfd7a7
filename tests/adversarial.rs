//! One request must not take down the webhook: each attack below fits the
//! API server's 3 MiB request limit but, unbounded, would make the engine
//! allocate gigabytes or spin for minutes. Each is sent to a real
//! `ecskube serve --webhook-only` process over TLS and must be refused with
//! the clear error that names the limit.
//!
//! Timing is checked through the product's own deadline, not a stopwatch:
//! the process runs with `--engine-deadline-ms=1000`, so an attack the
//! engine cannot answer within 1 s gets the deadline error instead of the
//! one the test expects. Memory is the process's own peak (VmHWM), read
//! from /proc after every attack.

mod support;

use serde_json::{json, Value};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use support::https::{connect, request};

const PEAK_RSS_LIMIT_KIB: u64 = 200 * 1024;

struct Webhook {
    child: Child,
    addr: std::net::SocketAddr,
    ca_pem: String,
    _dir: tempfile::TempDir,
}

impl Drop for Webhook {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// The webhook process, shared by every attack (as it is in a cluster).
fn webhook() -> &'static Webhook {
    static WEBHOOK: OnceLock<Webhook> = OnceLock::new();
    WEBHOOK.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let bundle = ecskube::certs::generate(&["localhost".into()], &["127.0.0.1".parse().unwrap()]).unwrap();
        bundle.write(dir.path()).unwrap();
        let port = ecskube::devcluster::free_port().unwrap();
        let probes = ecskube::devcluster::free_port().unwrap();
        let log = std::fs::File::create(dir.path().join("webhook.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_ecskube"))
            .args([
                "serve",
                "--webhook-only",
                "--engine-deadline-ms=1000",
                &format!("--listen=127.0.0.1:{port}"),
                &format!("--probe-listen=127.0.0.1:{probes}"),
                &format!("--tls-cert={}", dir.path().join("tls.crt").display()),
                &format!("--tls-key={}", dir.path().join("tls.key").display()),
            ])
            // No cluster: the engine alone is under attack here.
            .env_remove("KUBECONFIG")
            .env("HOME", dir.path())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        support::wait_for("the webhook to listen", Duration::from_secs(30), || {
            connect(addr, &bundle.ca_pem).is_ok()
        });
        Webhook {
            child,
            addr,
            ca_pem: bundle.ca_pem,
            _dir: dir,
        }
    })
}

fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn deployment(spec: Value) -> Value {
    json!({
        "apiVersion": "ecskube.ecskube/v1alpha1",
        "kind": "ECSDeployment",
        "metadata": {"name": "attack", "namespace": "default"},
        "spec": spec,
    })
}

fn review(object: &Value) -> String {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "5b0f6f0e-0000-4000-8000-000000000001",
            "kind": {"group": "ecskube.ecskube", "version": "v1alpha1", "kind": "ECSDeployment"},
            "resource": {"group": "ecskube.ecskube", "version": "v1alpha1", "resource": "ecsdeployments"},
            "name": "attack",
            "namespace": "default",
            "operation": "CREATE",
            "userInfo": {"username": "attacker"},
            "object": object,
            "dryRun": false
        }
    })
    .to_string()
}

/// Sends one attack to `endpoint`; returns the response and prints what it cost.
fn attack(name: &str, endpoint: &str, object: &Value) -> Value {
    // One attack at a time: each is judged against the deadline alone, not
    // while the others share the two cores.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let w = webhook();
    let body = review(object);
    assert!(
        body.len() <= 3 * 1024 * 1024,
        "{name}: {} bytes is over the API server's limit",
        body.len()
    );
    let mut tls = connect(w.addr, &w.ca_pem).unwrap();
    let started = Instant::now();
    let resp = request(&mut tls, "POST", endpoint, Some("application/json"), body.as_bytes()).unwrap();
    let took = started.elapsed();
    let peak = peak_rss_kib(w.child.id());
    eprintln!(
        "attack {name} ({} KiB) on {endpoint}: answered in {took:.2?}, process peak RSS {} MiB",
        body.len() / 1024,
        peak / 1024
    );
    assert_eq!(resp.status, 200, "{name}: {}", resp.body);
    assert!(peak < PEAK_RSS_LIMIT_KIB, "{name}: peak RSS {peak} KiB");
    serde_json::from_str(&resp.body).unwrap()
}

/// The denial's message, which must not be the deadline's.
fn denied(name: &str, object: &Value) -> String {
    let out = attack(name, "/validate", object);
    let resp = &out["response"];
    assert_eq!(resp["allowed"], false, "{name}: {resp}");
    let message = resp["status"]["message"].as_str().unwrap().to_string();
    assert!(
        !message.contains("could not be checked within"),
        "{name} hit the deadline: {message}"
    );
    assert!(message.len() < 64 * 1024, "{name}: a {} byte denial", message.len());
    message
}

fn container(extra: Value) -> Value {
    let mut c = json!({"name": "web", "image": "nginx", "memory": 256});
    c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    c
}

#[test]
fn join_with_a_large_delimiter_is_refused_before_it_is_built() {
    // 1 MiB delimiter between 1,000 empty items: 1 GB of output.
    let delimiter = "d".repeat(1024 * 1024);
    let items = vec![json!(""); 1000];
    let object = deployment(json!({"Task": {"Properties": {"ContainerDefinitions": [
        {"Name": "web", "Image": {"Fn::Join": [delimiter, items]}, "Memory": 256}
    ]}}}));
    let message = denied("Fn::Join", &object);
    assert!(message.contains("would produce more than 1024 KiB"), "{message}");
    assert!(message.contains("ContainerDefinitions[0].Image"), "{message}");
}

#[test]
fn sub_repeating_a_large_variable_is_refused() {
    // A 900 KB parameter expanded 1,000 times: 900 MB.
    let template = "${Big}".repeat(1000);
    let object = deployment(json!({
        "Parameters": {"Big": "b".repeat(900 * 1024)},
        "Task": {"Properties": {"ContainerDefinitions": [
            {"Name": "web", "Image": {"Fn::Sub": template}, "Memory": 256}
        ]}}
    }));
    let message = denied("Fn::Sub", &object);
    assert!(message.contains("would produce more than 1024 KiB"), "{message}");
}

#[test]
fn split_into_a_million_pieces_is_refused_before_the_list_exists() {
    let object = deployment(json!({"Task": {"Properties": {"ContainerDefinitions": [
        {"Name": "web", "Image": "nginx", "Memory": 256,
         "Command": {"Fn::Split": [",", ",".repeat(1024 * 1024)]}}
    ]}}}));
    let message = denied("Fn::Split", &object);
    assert!(message.contains("would produce more than 1024 KiB"), "{message}");
}

#[test]
fn links_copying_every_variable_are_bounded() {
    // 1,000 variables linked under 1,000 aliases: 10^6 link variables.
    let env: Vec<Value> = (0..1000).map(|i| json!({"name": format!("V{i}"), "value": ""})).collect();
    let links: Vec<String> = (0..1000).map(|i| format!("db:a{i}")).collect();
    let object = deployment(json!({"Task": {
        "networkMode": "bridge",
        "containerDefinitions": [
            container(json!({"name": "db", "environment": env})),
            container(json!({"links": links})),
        ]
    }}));
    let message = denied("links x environment", &object);
    assert!(
        message.contains("containerDefinitions[1].links") && message.contains("Docker link variables"),
        "{message}"
    );
}

#[test]
fn many_containers_with_bad_references_give_a_bounded_answer() {
    // Every reference error used to list every container name: errors x containers.
    let containers: Vec<Value> = (0..1000)
        .map(|i| json!({"name": format!("c{i}"), "image": "i", "memory": 8, "links": ["nope"]}))
        .collect();
    let object = deployment(json!({"Task": {"networkMode": "bridge", "containerDefinitions": containers}}));
    let message = denied("references x containers", &object);
    assert!(message.contains("a task definition holds at most 10 containers"), "{message}");
    assert!(message.contains("more errors (run `ecskube validate`"), "{message}");
}

#[test]
fn a_task_definition_over_ecs_size_limit_is_refused_unread() {
    let env: Vec<Value> = (0..4000)
        .map(|i| json!({"name": format!("VARIABLE_{i}"), "value": "x".repeat(40)}))
        .collect();
    let object = deployment(json!({"Task": {"containerDefinitions": [container(json!({"environment": env}))]}}));
    let message = denied("64 KiB task definition", &object);
    assert!(message.contains("larger than ECS allows (64 KiB of JSON"), "{message}");
}

#[test]
fn many_structural_and_semantic_errors_are_filtered_in_linear_time() {
    // 5,000 unknown keys plus 5,000 load balancers naming no container:
    // the old filter compared every rule finding with every structural error.
    let mut service = serde_json::Map::new();
    for i in 0..5_000 {
        service.insert(format!("k{i}"), json!(1));
    }
    let lbs: Vec<Value> = (0..5_000)
        .map(|_| json!({"containerName": "x", "containerPort": 1, "targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/t/1"}))
        .collect();
    service.insert("loadBalancers".into(), Value::Array(lbs));
    let object = deployment(json!({
        "Task": {"containerDefinitions": [container(json!({}))]},
        "Service": service,
    }));
    let message = denied("structural x semantic", &object);
    assert!(message.contains("spec.Service.k0: error: unknown field"), "{message}");
    assert!(message.contains("more errors"), "{message}");
}

#[test]
fn a_megabyte_long_unknown_key_gets_no_quadratic_suggestion() {
    // In the Service, which has no size quota of its own.
    let key = format!("desiredCount{}", "t".repeat(1024 * 1024));
    let object = deployment(json!({
        "Task": {"containerDefinitions": [container(json!({}))]},
        "Service": {key: 1},
    }));
    let message = denied("did-you-mean on a huge key", &object);
    assert!(message.contains("unknown field"), "{message}");
}

#[test]
fn the_mutating_webhook_is_bounded_too() {
    let delimiter = "d".repeat(1024 * 1024);
    let object = deployment(json!({"Task": {"Properties": {"ContainerDefinitions": [
        {"Name": "web", "Image": {"Fn::Join": [delimiter, vec![json!(""); 1000]]}}
    ]}}}));
    let out = attack("Fn::Join on /mutate", "/mutate", &object);
    assert_eq!(out["response"]["allowed"], true, "{out}");
    // And the webhook still serves an ordinary review afterwards.
    let sample: Value =
        serde_json::from_str(&std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/ecsdeployment.json")).unwrap())
            .unwrap();
    let out = attack("the sample, after the attacks", "/validate", &sample);
    assert_eq!(out["response"]["allowed"], true, "{out}");
}
