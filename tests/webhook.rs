//! The admission webhook over real TLS, in process: the real actix-web server
//! on a loopback port with certificates from `ecskube::certs`, and a client
//! that verifies the CA.

mod support;

use actix_web::{web, App, HttpServer};
use ecskube::policy::PolicyStore;
use ecskube::webhook::metrics::Metrics;
use ecskube::webhook::server::{routes, State};
use ecskube::webhook::tls::{server_config, ReloadingCert};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{mpsc, Arc};
use std::time::Duration;
use support::https::{connect, read_response, request};

struct Server {
    addr: SocketAddr,
    ca_pem: String,
    policy_file: PathBuf,
    metrics: Arc<Metrics>,
    policy: PolicyStore,
    _dir: tempfile::TempDir,
}

const POLICY: &str = "denyPrivileged: true\nallowedImagePrefixes: []\n";

fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let bundle = ecskube::certs::generate(&["localhost".into()], &["127.0.0.1".parse().unwrap()]).unwrap();
    bundle.write(dir.path()).unwrap();
    let policy_file = dir.path().join("policy.yaml");
    std::fs::write(&policy_file, POLICY).unwrap();
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let (tx, rx) = mpsc::channel();
    let policy_path = policy_file.clone();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let policy = PolicyStore::load(&policy_path).unwrap();
            policy.clone().spawn_reloader(Duration::from_millis(100));
            let shared_policy = policy.clone();
            let metrics = Metrics::new(vec![], None);
            let (_ready_tx, ready) = tokio::sync::watch::channel(true);
            let state = web::Data::new(State {
                policy,
                integrations: Default::default(),
                client: None,
                preflight: None,
                metrics: metrics.clone(),
                ready,
                health: Default::default(),
                body_timeout: Duration::from_secs(1),
                engine: ecskube::offload::Offload::for_cores(Duration::from_secs(2)),
            });
            let resolver = ReloadingCert::load(cert, key).unwrap();
            let server = HttpServer::new(move || App::new().app_data(state.clone()).configure(routes))
                .workers(2)
                .client_request_timeout(Duration::from_secs(2))
                .bind_rustls_0_23(("127.0.0.1", 0), server_config(resolver))
                .unwrap();
            tx.send((server.addrs()[0], metrics, shared_policy)).unwrap();
            server.run().await.unwrap();
        })
    });
    let (addr, metrics, policy) = rx.recv().unwrap();
    Server {
        addr,
        ca_pem: bundle.ca_pem,
        policy_file,
        metrics,
        policy,
        _dir: dir,
    }
}

fn sample() -> Value {
    serde_json::from_str(&std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/samples/ecsdeployment.json")).unwrap()).unwrap()
}

fn review(object: &Value, operation: &str) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "2f4b2b34-2b9c-4f84-9a0e-6f7f8d1c0a11",
            "kind": {"group": "ecskube.ecskube", "version": "v1alpha1", "kind": "ECSDeployment"},
            "resource": {"group": "ecskube.ecskube", "version": "v1alpha1", "resource": "ecsdeployments"},
            "name": object["metadata"]["name"],
            "namespace": "default",
            "operation": operation,
            "userInfo": {"username": "tester"},
            "object": object,
            "dryRun": false
        }
    })
}

fn post(server: &Server, path: &str, body: &Value) -> Value {
    let mut tls = connect(server.addr, &server.ca_pem).unwrap();
    let resp = request(&mut tls, "POST", path, Some("application/json"), body.to_string().as_bytes()).unwrap();
    assert_eq!(resp.status, 200, "{}", resp.body);
    serde_json::from_str(&resp.body).unwrap()
}

#[test]
fn valid_sample_is_allowed_with_warnings_and_the_uid_echoed() {
    let server = start();
    let out = post(&server, "/validate", &review(&sample(), "CREATE"));
    let resp = &out["response"];
    assert_eq!(out["kind"], "AdmissionReview");
    assert_eq!(resp["uid"], "2f4b2b34-2b9c-4f84-9a0e-6f7f8d1c0a11");
    assert_eq!(resp["allowed"], true, "{resp}");
    let warnings: Vec<&str> = resp["warnings"].as_array().unwrap().iter().map(|w| w.as_str().unwrap()).collect();
    assert!(warnings.iter().any(|w| w.contains("HostPort")), "{warnings:?}");
}

#[test]
fn many_long_warnings_are_clipped_and_counted_within_the_api_servers_limits() {
    let server = start();
    let mut obj = sample();
    // Ten containers, each with a secrets warning longer than the API server
    // keeps (it names every key) beside its HostPort warning.
    let c = obj["spec"]["Task"]["Properties"]["ContainerDefinitions"][0].clone();
    let mut list = Vec::new();
    for i in 0..10 {
        let mut c = c.clone();
        c["Name"] = json!(format!("app-{i}"));
        let secrets: Vec<Value> = (0..15)
            .map(|j| json!({"Name": format!("SOME_RATHER_LONG_SECRET_NAME_{j:02}"), "ValueFrom": format!("arn:aws:ssm:us-east-1:1:parameter/p{j}")}))
            .collect();
        c["Secrets"] = json!(secrets);
        list.push(c);
    }
    obj["spec"]["Task"]["Properties"]["ContainerDefinitions"] = json!(list);
    obj["spec"]["Service"]["LoadBalancers"][0]["ContainerName"] = json!("app-0");
    let out = post(&server, "/validate", &review(&obj, "CREATE"));
    let resp = &out["response"];
    assert_eq!(resp["allowed"], true, "{resp}");
    let warnings: Vec<&str> = resp["warnings"].as_array().unwrap().iter().map(|w| w.as_str().unwrap()).collect();
    assert!(
        warnings.iter().any(|w| w.len() == 256 && w.ends_with("...")),
        "nothing was clipped: {warnings:?}"
    );
    assert!(warnings.iter().all(|w| w.len() <= 256), "{warnings:?}");
    assert!(warnings.iter().map(|w| w.len()).sum::<usize>() <= 4096);
    let last = warnings.last().unwrap();
    assert!(last.starts_with("... and ") && last.contains("more warnings"), "{last}");
}

#[test]
fn invalid_object_is_denied_with_every_error_and_its_path() {
    let server = start();
    let mut obj = sample();
    let c = &mut obj["spec"]["Task"]["Properties"]["ContainerDefinitions"][0];
    c["Imagee"] = json!("typo");
    c["Memory"] = json!(2);
    let out = post(&server, "/validate", &review(&obj, "CREATE"));
    let resp = &out["response"];
    assert_eq!(resp["allowed"], false);
    let status = &resp["status"];
    assert_eq!(status["code"], 422);
    assert_eq!(status["reason"], "Invalid");
    let fields: Vec<&str> = status["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"spec.Task.Properties.ContainerDefinitions[0].Imagee"),
        "{fields:?}"
    );
    assert!(
        fields.contains(&"spec.Task.Properties.ContainerDefinitions[0].Memory"),
        "{fields:?}"
    );
    // kubectl prints the causes, not the message: each says what was expected.
    let memory = status["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["field"] == "spec.Task.Properties.ContainerDefinitions[0].Memory")
        .unwrap();
    assert!(memory["message"].as_str().unwrap().contains("(expected "), "{memory}");
    let message = status["message"].as_str().unwrap();
    assert!(message.contains("did you mean `Image`"), "{message}");
    assert!(message.contains("ContainerDefinitions[0].Memory"), "{message}");
}

#[test]
fn mutation_adds_defaults_once() {
    use base64::Engine;
    let server = start();
    let object = sample();
    let out = post(&server, "/mutate", &review(&object, "CREATE"));
    let resp = &out["response"];
    assert_eq!(resp["allowed"], true);
    assert_eq!(resp["patchType"], "JSONPatch");
    let patch_bytes = base64::engine::general_purpose::STANDARD
        .decode(resp["patch"].as_str().unwrap())
        .unwrap();
    let patch: json_patch::Patch = serde_json::from_slice(&patch_bytes).unwrap();
    let mut patched = object.clone();
    json_patch::patch(&mut patched, &patch).unwrap();
    assert_eq!(patched["spec"]["Task"]["Properties"]["Family"], "ecs-demo-deploy");
    assert_eq!(patched["spec"]["Task"]["Properties"]["ContainerDefinitions"][0]["Essential"], true);
    // Reinvocation (reinvocationPolicy: IfNeeded) finds nothing left to add.
    let again = post(&server, "/mutate", &review(&patched, "UPDATE"));
    assert!(again["response"].get("patch").is_none_or(Value::is_null), "{again}");
}

#[test]
fn policy_denial_names_the_rule_and_follows_policy_edits() {
    let server = start();
    let mut obj = sample();
    obj["spec"]["Task"]["Properties"]["ContainerDefinitions"][1]["Privileged"] = json!(true);
    let out = post(&server, "/validate", &review(&obj, "CREATE"));
    let status = &out["response"]["status"];
    assert_eq!(out["response"]["allowed"], false);
    let message = status["message"].as_str().unwrap();
    assert!(message.contains("denyPrivileged"), "{message}");
    assert!(
        message.contains("spec.Task.Properties.ContainerDefinitions[1].Privileged"),
        "{message}"
    );

    // An edit the store cannot read keeps the policy that denies (were it
    // read as "allow all", the object would now pass).
    let replace = |text: &str| {
        let staged = server.policy_file.with_extension("staged");
        std::fs::write(&staged, text).unwrap();
        std::fs::rename(&staged, &server.policy_file).unwrap();
    };
    replace("denyPrivilegd: [");
    support::wait_for("the broken edit to be refused", Duration::from_secs(20), || {
        server.policy.reload_failures() == 1
    });
    let out = post(&server, "/validate", &review(&obj, "CREATE"));
    assert_eq!(out["response"]["allowed"], false, "the broken edit loosened the policy: {out}");
    // Hot reload: the admin relaxes the policy; no restart.
    replace("denyPrivileged: false\n");
    support::wait_for("the relaxed policy", Duration::from_secs(20), || server.policy.reloads() == 1);
    assert_eq!(post(&server, "/validate", &review(&obj, "CREATE"))["response"]["allowed"], true);
}

#[test]
fn malformed_requests_get_clear_4xx_answers() {
    let server = start();
    let mut tls = connect(server.addr, &server.ca_pem).unwrap();
    let r = request(&mut tls, "POST", "/validate", Some("application/json"), b"{not json").unwrap();
    assert_eq!(r.status, 400, "{}", r.body);
    let r = request(&mut tls, "POST", "/validate", Some("application/json"), br#"{"kind": "Pod"}"#).unwrap();
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("AdmissionReview"), "{}", r.body);
    let r = request(&mut tls, "POST", "/validate", Some("text/plain"), b"{}").unwrap();
    assert_eq!(r.status, 415, "{}", r.body);
    // A refused body is not read, so the server may close that connection.
    let mut tls = connect(server.addr, &server.ca_pem).unwrap();
    let r = request(&mut tls, "POST", "/nope", Some("application/json"), b"{}").unwrap();
    assert_eq!(r.status, 404);
    let big = vec![b' '; 3 * 1024 * 1024 + 1];
    let mut tls = connect(server.addr, &server.ca_pem).unwrap();
    let r = request(&mut tls, "POST", "/validate", Some("application/json"), &big).unwrap();
    assert_eq!(r.status, 413, "{}", r.body);
}

#[test]
fn a_slow_client_gets_a_timeout_not_a_hung_worker() {
    use std::io::Write;
    let server = start();
    let mut tls = connect(server.addr, &server.ca_pem).unwrap();
    tls.write_all(
        b"POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"apiVersion\":",
    )
    .unwrap();
    tls.flush().unwrap();
    let r = read_response(&mut tls).unwrap();
    assert_eq!(r.status, 408, "{}", r.body);
    // The server still answers others.
    assert_eq!(
        post(&server, "/validate", &review(&sample(), "CREATE"))["response"]["allowed"],
        true
    );
}

/// Deterministic fuzzing: mutated reviews never crash the handler, never get
/// a 5xx, and never run into the engine's deadline, including replacements
/// built to amplify (huge strings, deep nesting, wide objects, intrinsics
/// that multiply their input). `ECSKUBE_FUZZ_CASES` sets how many
/// (`make fuzz-adversarial` runs many more, in a release build).
#[test]
fn mutated_reviews_never_panic_the_handler() {
    let server = start();
    let base = review(&sample(), "CREATE");
    let mut leaves = Vec::new();
    collect_paths(&base, String::new(), &mut leaves);
    let replacements = [
        json!(null),
        json!(-1),
        json!("x"),
        json!([]),
        json!({}),
        json!(true),
        json!(1e300),
        json!({"Ref": "X"}),
        json!(i64::MAX),
        json!(u64::MAX),
    ];
    let amplifying = amplifying_values();
    let cases: usize = std::env::var("ECSKUBE_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let mut seed: u64 = 0x5eed_cafe;
    let mut tls = connect(server.addr, &server.ca_pem).unwrap();
    let (mut sent, mut amplified) = (0usize, 0usize);
    for _ in 0..cases {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let path = &leaves[(seed % leaves.len() as u64) as usize];
        let mut mutated = base.clone();
        let value = if (seed >> 40).is_multiple_of(4) {
            amplified += 1;
            amplifying[(seed >> 20) as usize % amplifying.len()].clone()
        } else {
            replacements[(seed >> 32) as usize % replacements.len()].clone()
        };
        if let Some(slot) = mutated.pointer_mut(path) {
            *slot = value;
        }
        let body = mutated.to_string();
        if body.len() > 3 * 1024 * 1024 {
            continue; // the API server never sends more
        }
        sent += 1;
        let r = request(
            &mut tls,
            "POST",
            if seed.is_multiple_of(2) { "/validate" } else { "/mutate" },
            Some("application/json"),
            body.as_bytes(),
        );
        let r = match r {
            Ok(r) => r,
            // A refused body may close the connection: open another.
            Err(_) => {
                tls = connect(server.addr, &server.ca_pem).unwrap();
                continue;
            }
        };
        assert!(
            r.status == 200 || r.status == 400,
            "{path}: {} {}",
            r.status,
            &r.body[..r.body.len().min(2000)]
        );
        assert!(
            !r.body.contains("could not be checked within"),
            "{path}: the engine ran into its deadline: {}",
            &r.body[..r.body.len().min(2000)]
        );
        assert!(
            !r.body.contains("ended without an answer"),
            "{path}: the engine panicked: {}",
            &r.body[..r.body.len().min(2000)]
        );
        if r.status == 400 {
            tls = connect(server.addr, &server.ca_pem).unwrap();
        }
    }
    eprintln!("fuzzed {sent} reviews, {amplified} with size-amplifying values");
    let metrics = server.metrics.render();
    let counted: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("ecskube_admission_requests_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    // Every request is counted (other tests share nothing with this server).
    assert!(counted >= sent as f64, "{counted} counted for {sent} sent:\n{metrics}");
}

/// Values that are small to write and large to evaluate or report.
fn amplifying_values() -> Vec<Value> {
    let mut deep = json!("x");
    for _ in 0..200 {
        deep = json!([deep]);
    }
    let wide: serde_json::Map<String, Value> = (0..20_000).map(|i| (format!("Key{i}"), json!(i))).collect();
    vec![
        json!("s".repeat(1024 * 1024)),
        deep,
        Value::Object(wide),
        json!(vec![json!({"Name": "c", "Image": "i", "Links": ["x"]}); 5_000]),
        json!({"Fn::Join": ["d".repeat(512 * 1024), vec![json!(""); 2_000]]}),
        json!({"Fn::Sub": "${AWS::Region}".repeat(100_000)}),
        json!({"Fn::Split": [",", ",".repeat(1024 * 1024)]}),
        json!({"Fn::Base64": {"Fn::Join": ["", vec![json!("z".repeat(1000)); 1000]]}}),
        json!({"Fn::ToJsonString": vec![json!("\u{1}".repeat(1000)); 1000]}),
    ]
}

fn collect_paths(v: &Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match v {
        Value::Object(o) => o
            .iter()
            .for_each(|(k, c)| collect_paths(c, format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")), out)),
        Value::Array(a) => a.iter().enumerate().for_each(|(i, c)| collect_paths(c, format!("{at}/{i}"), out)),
        _ => {}
    }
}
