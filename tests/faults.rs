//! Faults, each performed for real against the real control plane and the
//! real `ecskube serve` binary: the controller SIGKILLed midway through 500
//! reconciles, the API server restarted under a running controller, the
//! leader of two replicas SIGKILLed while admissions stream in, and 200
//! invalid ECSDeployments (mutated corpus files) applied with kubectl.
//!
//! The tests take one lock and run one at a time: one restarts the API
//! server, and two point the cluster's webhook configurations at their own
//! processes. Needs `make control-plane`.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ecskube::devcluster::ecskube::{
    http_get, install_crd, local_webhook_configurations, service_webhook_configurations, wait_until_webhook_called, EcskubeProcess, Launch,
};
use ecskube::devcluster::DevCluster;
use serde_json::{json, Value};
use support::{shared_cluster, test_namespace, wait_for, DumpLogsOnPanic};

const CONVERGE: Duration = Duration::from_secs(300);

/// One fault test's hold on the cluster: the lock that keeps the others
/// out, no webhook configurations, the CRD, and a namespace of its own.
struct Fault {
    cluster: &'static DevCluster,
    ns: String,
    // Dropped in this order: the logs are printed while the lock is held.
    _logs: DumpLogsOnPanic,
    _serial: MutexGuard<'static, ()>,
}

fn begin(prefix: &str) -> Fault {
    static SERIAL: Mutex<()> = Mutex::new(());
    let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let cluster = shared_cluster();
    let logs = DumpLogsOnPanic(cluster);
    Webhooks::remove(cluster);
    install_crd(cluster).unwrap();
    Fault {
        cluster,
        ns: test_namespace(cluster, prefix),
        _logs: logs,
        _serial: serial,
    }
}

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ecskube"))
}

/// An ECSDeployment whose Deployment runs `image`, with a Service (port 80)
/// and no replicas (nothing for kube-controller-manager to wait on).
fn ecsd(ns: &str, name: &str, image: &str) -> Value {
    json!({"apiVersion": "ecskube.ecskube/v1alpha1", "kind": "ECSDeployment",
           "metadata": {"name": name, "namespace": ns},
           "spec": {"Task": {"containerDefinitions": [{"name": "web", "image": image, "memory": 64, "portMappings": [{"containerPort": 80}]}]},
                    "Service": {"desiredCount": 0}}})
}

fn list(items: Vec<Value>) -> String {
    json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string()
}

/// The webhook configurations, removed again when the test ends (however it
/// ends): a configuration left pointing at a dead process refuses every
/// later ECSDeployment (failurePolicy: Fail).
struct Webhooks(&'static DevCluster);

impl Webhooks {
    /// `configurations`: local_webhook_configurations or service_webhook_configurations.
    fn install(cluster: &'static DevCluster, configurations: &str) -> Webhooks {
        cluster.apply(configurations).unwrap_or_else(|e| panic!("{e:#}"));
        let hooks = Webhooks(cluster);
        wait_until_webhook_called(cluster, Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e:#}"));
        hooks
    }

    fn remove(cluster: &DevCluster) {
        let _ = cluster.kubectl_run(
            &[
                "delete",
                "mutatingwebhookconfiguration,validatingwebhookconfiguration",
                "ecskube",
                "--ignore-not-found",
            ],
            None,
        );
    }
}

impl Drop for Webhooks {
    fn drop(&mut self) {
        Webhooks::remove(self.0);
    }
}

fn kubectl_json(cluster: &DevCluster, args: &[&str]) -> Value {
    let out = cluster.kubectl_ok(args, None).unwrap_or_else(|e| panic!("{e:#}"));
    serde_json::from_str(&out).unwrap()
}

fn items(cluster: &DevCluster, kind: &str, ns: &str) -> Vec<Value> {
    kubectl_json(cluster, &["get", kind, "-n", ns, "-o", "json"])["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn count(cluster: &DevCluster, kind: &str, ns: &str) -> usize {
    items(cluster, kind, ns).len()
}

/// What keeps `ns` from having converged: every ECSDeployment has exactly
/// one Deployment and one Service of its name, controlled by it, made from
/// its current spec (the image), and a status of its current generation
/// that is not Degraded; nothing else is there. Empty when converged.
fn convergence_problems(cluster: &DevCluster, ns: &str) -> Vec<String> {
    let ecsds = items(cluster, "ecsd", ns);
    let owners: BTreeMap<String, &Value> = ecsds
        .iter()
        .map(|o| (o["metadata"]["uid"].as_str().unwrap_or_default().to_string(), o))
        .collect();
    let mut problems = Vec::new();
    for kind in ["deployments", "services"] {
        let children = items(cluster, kind, ns);
        let mut by_owner: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
        for child in &children {
            let name = child["metadata"]["name"].as_str().unwrap_or_default();
            let controllers: Vec<&Value> = child["metadata"]["ownerReferences"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|r| r["controller"] == true)
                .collect();
            match controllers.as_slice() {
                [r] if owners.contains_key(r["uid"].as_str().unwrap_or_default()) => by_owner
                    .entry(r["uid"].as_str().unwrap_or_default().to_string())
                    .or_default()
                    .push(child),
                _ => problems.push(format!("{kind}/{name} has no live ECSDeployment as its one controller")),
            }
        }
        for (uid, owner) in &owners {
            let name = owner["metadata"]["name"].as_str().unwrap_or_default();
            match by_owner.get(uid).map(Vec::as_slice) {
                None | Some([]) => problems.push(format!("{name}: no {kind}")),
                Some([child]) => {
                    if child["metadata"]["name"] != name {
                        problems.push(format!("{name}: its {kind} is named {}", child["metadata"]["name"]));
                    }
                    if kind == "deployments" {
                        let want = &owner["spec"]["Task"]["containerDefinitions"][0]["image"];
                        let got = &child["spec"]["template"]["spec"]["containers"][0]["image"];
                        if want != got {
                            problems.push(format!("{name}: Deployment runs {got}, the spec says {want}"));
                        }
                    }
                }
                Some(many) => problems.push(format!("{name}: {} {kind}", many.len())),
            }
        }
    }
    for owner in &ecsds {
        let name = owner["metadata"]["name"].as_str().unwrap_or_default();
        let status = &owner["status"];
        if status["observedGeneration"] != owner["metadata"]["generation"] {
            problems.push(format!(
                "{name}: status of generation {}, the object is at {}",
                status["observedGeneration"], owner["metadata"]["generation"]
            ));
            continue;
        }
        let degraded = status["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "Degraded");
        match degraded {
            Some(c) if c["status"] == "False" => {}
            other => problems.push(format!("{name}: Degraded condition {other:?}")),
        }
    }
    problems
}

fn wait_converged(cluster: &DevCluster, ns: &str, what: &str) -> Duration {
    let started = Instant::now();
    let mut last = Vec::new();
    while started.elapsed() < CONVERGE {
        last = convergence_problems(cluster, ns);
        if last.is_empty() {
            return started.elapsed();
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!(
        "{what}: {ns} did not converge within {CONVERGE:?}; {} problems, the first: {:#?}",
        last.len(),
        &last[..last.len().min(10)]
    );
}

fn controller_launch(ns: &str) -> Launch {
    Launch {
        leader_election_namespace: Some(ns.to_string()),
        args: vec!["--controller-only".into()],
        ..Default::default()
    }
}

#[test]
fn a_controller_killed_midway_through_500_reconciles_converges_after_its_restart() {
    let fault = begin("fault-kill");
    let (cluster, ns) = (fault.cluster, fault.ns.clone());
    let n = 500;
    let objects = (0..n).map(|i| ecsd(&ns, &format!("svc-{i}"), &format!("nginx:1.{i}"))).collect();
    cluster.kubectl_ok(&["create", "-f", "-"], Some(&list(objects))).unwrap();

    let launch = controller_launch(&ns);
    let mut first = EcskubeProcess::start_with(cluster, binary(), "kill-first", &launch).unwrap();
    // SIGKILL once a fifth of the objects are reconciled: writes are in flight.
    let started = Instant::now();
    while first.metric("ecskube_reconciles_total") < 100.0 {
        assert!(started.elapsed() < CONVERGE, "no 100 reconciles within {CONVERGE:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    first.kill();
    let at_kill = (count(cluster, "deployments", &ns), count(cluster, "services", &ns));
    eprintln!("killed with {} Deployments and {} Services of {n}", at_kill.0, at_kill.1);
    assert!(
        at_kill.0 < n && at_kill.1 < n,
        "the kill came too late to test anything: {at_kill:?} children of {n} existed"
    );
    assert!(!convergence_problems(cluster, &ns).is_empty());

    // The Lease still names the dead process: the new one takes over when it expires.
    let second = EcskubeProcess::start_with(cluster, binary(), "kill-second", &launch).unwrap();
    let took = wait_converged(cluster, &ns, "after the restart");
    eprintln!(
        "converged {took:.1?} after the restart, with {} reconciles by the new process",
        second.metric("ecskube_reconciles_total")
    );
    assert_eq!(count(cluster, "deployments", &ns), n);
    assert_eq!(count(cluster, "services", &ns), n);
}

#[test]
fn the_api_server_restarted_under_a_running_controller_leaves_nothing_half_applied() {
    let fault = begin("fault-apiserver");
    let (cluster, ns) = (fault.cluster, fault.ns.clone());
    let mut controller = EcskubeProcess::start_with(cluster, binary(), "restart-controller", &controller_launch(&ns)).unwrap();
    let pid = controller.pid();
    let n = 100;
    let version = |image: &str| (0..n).map(|i| ecsd(&ns, &format!("svc-{i}"), image)).collect::<Vec<_>>();
    cluster
        .kubectl_ok(&["create", "--save-config", "-f", "-"], Some(&list(version("nginx:1"))))
        .unwrap();
    wait_converged(cluster, &ns, "before the restart");

    // Every object changes, and the API server goes away while the
    // controller is applying those changes.
    cluster.kubectl_ok(&["apply", "-f", "-"], Some(&list(version("nginx:2")))).unwrap();
    let reconciles_before = controller.metric("ecskube_reconciles_total");
    cluster.restart_apiserver(Duration::from_secs(3)).unwrap();
    assert_eq!(controller.exited(), None, "ecskube exited:\n{}", controller.log_tail(40));
    eprintln!(
        "the API server is back; {} reconciles since the change",
        controller.metric("ecskube_reconciles_total") - reconciles_before
    );

    // Its watches resume: a change and a new object made after the restart are reconciled too.
    cluster
        .kubectl_ok(&["apply", "-f", "-"], Some(&list(vec![ecsd(&ns, "svc-0", "nginx:3")])))
        .unwrap();
    cluster
        .kubectl_ok(&["create", "-f", "-"], Some(&list(vec![ecsd(&ns, "after-restart", "nginx:3")])))
        .unwrap();
    let took = wait_converged(cluster, &ns, "after the API server's restart");
    eprintln!("converged {took:.1?} after the API server was back");
    assert_eq!(count(cluster, "deployments", &ns), n + 1);
    let images: BTreeSet<String> = items(cluster, "deployments", &ns)
        .iter()
        .map(|d| {
            d["spec"]["template"]["spec"]["containers"][0]["image"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(images, BTreeSet::from(["nginx:2".to_string(), "nginx:3".to_string()]));
    assert_eq!(controller.exited(), None, "ecskube exited:\n{}", controller.log_tail(40));
    assert_eq!(controller.pid(), pid);
}

/// One admission of the load: when it was sent, when answered, and how.
struct Admission {
    sent: Instant,
    answered: Instant,
    outcome: Result<(), String>,
}

#[test]
fn with_two_replicas_the_leader_killed_under_load_admissions_go_on_and_leadership_moves() {
    let fault = begin("fault-ha");
    let (cluster, ns) = (fault.cluster, fault.ns.clone());
    // Both replicas behind one Service, as installed (in a namespace of its own).
    let system = test_namespace(cluster, "fault-ha-system");
    let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ecskube-ha", "namespace": system},
        "spec": {"ports": [{"port": 443, "targetPort": 8443}]}});
    cluster.apply(&service.to_string()).unwrap();
    let launch = Launch {
        leader_election_namespace: Some(system.clone()),
        dns_names: vec![format!("ecskube-ha.{system}.svc")],
        ..Default::default()
    };
    let mut replicas = vec![
        EcskubeProcess::start_with(cluster, binary(), "ha-a", &launch).unwrap(),
        EcskubeProcess::start_with(cluster, binary(), "ha-b", &launch).unwrap(),
    ];
    let endpoints = replicas
        .iter()
        .map(|r| format!("127.0.0.1:{}", r.webhook_port).parse().unwrap())
        .collect();
    cluster.route_service_to_all("ecskube-ha", &system, 443, endpoints).unwrap();
    let ca_bundle = format!("{}{}", replicas[0].ca_pem, replicas[1].ca_pem);
    let _hooks = Webhooks::install(cluster, &service_webhook_configurations(&system, "ecskube-ha", &ca_bundle).unwrap());
    let leading = |r: &EcskubeProcess| r.metric("ecskube_controller_leading") == 1.0;
    wait_for("a leader", Duration::from_secs(60), || replicas.iter().any(leading));
    let leader = replicas.iter().position(leading).unwrap();

    // The load: 4 clients each sending server-side dry-run creates of the
    // sample, back to back, and one creating an object for real every 200 ms.
    let stop = Arc::new(AtomicBool::new(false));
    let sample = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/samples/ecsdeployment.json")).unwrap();
    let mut sample: Value = serde_json::from_str(&sample).unwrap();
    sample["metadata"]["namespace"] = ns.clone().into();
    let load: Vec<_> = (0..5)
        .map(|client| {
            let (stop, ns, sample) = (stop.clone(), ns.clone(), sample.clone());
            std::thread::spawn(move || {
                let mut done = Vec::new();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let (args, body) = if client == 4 {
                        i += 1;
                        (vec!["create", "-f", "-"], ecsd(&ns, &format!("load-{i}"), "nginx:1"))
                    } else {
                        (vec!["create", "--dry-run=server", "-f", "-"], sample.clone())
                    };
                    let sent = Instant::now();
                    let out = cluster.kubectl_run(&args, Some(&body.to_string())).unwrap();
                    let outcome = if out.success() { Ok(()) } else { Err(out.stderr) };
                    done.push(Admission {
                        sent,
                        answered: Instant::now(),
                        outcome,
                    });
                    if client == 4 {
                        std::thread::sleep(Duration::from_millis(200));
                    }
                }
                done
            })
        })
        .collect();

    std::thread::sleep(Duration::from_secs(5));
    let killed = Instant::now();
    replicas[leader].kill();
    let standby = &replicas[1 - leader];
    wait_for("the standby to lead", Duration::from_secs(60), || leading(standby));
    let takeover = killed.elapsed();
    std::thread::sleep(Duration::from_secs(5));
    stop.store(true, Ordering::Relaxed);
    let admissions: Vec<Admission> = load.into_iter().flat_map(|t| t.join().unwrap()).collect();

    let before = admissions.iter().filter(|a| a.answered < killed).count();
    let after = admissions.iter().filter(|a| a.sent > killed).count();
    let failed: Vec<&Admission> = admissions.iter().filter(|a| a.outcome.is_err()).collect();
    eprintln!(
        "{} admissions ({before} answered before the kill, {after} sent after it), {} failed; leadership moved {takeover:.1?} after the kill",
        admissions.len(),
        failed.len()
    );
    assert!(
        before > 20 && after > 20,
        "too little load to judge: {before} before, {after} after"
    );
    // A SIGKILL drops the requests the process was answering (the API server
    // does not resend a POST whose connection ended with no answer), so those
    // may fail, as with any kill -9 behind failurePolicy Fail. Every admission
    // sent once the kill's connections are gone (1 s) must succeed: the
    // Service's other replica answers.
    let settled = killed + Duration::from_secs(1);
    for a in &failed {
        assert!(
            a.answered >= killed,
            "an admission failed before the kill: {}",
            a.outcome.as_ref().unwrap_err()
        );
        assert!(
            a.sent < settled,
            "an admission sent {:?} after the kill failed: {}",
            a.sent.saturating_duration_since(killed),
            a.outcome.as_ref().unwrap_err()
        );
        eprintln!(
            "in flight at the kill (sent {:?} before it): {}",
            killed.saturating_duration_since(a.sent),
            a.outcome.as_ref().unwrap_err().trim()
        );
    }
    // The standby judges the Lease by its own clock (as client-go does): it
    // sees the last renewal up to one 2 s round late, waits the Lease's 10 s
    // from then, and tries once a round: at most 14 s after the kill.
    assert!(takeover <= Duration::from_secs(14), "leadership took {takeover:?} to move");
    // The new leader made the children of what was created while it took over.
    let took = wait_converged(cluster, &ns, "after the takeover");
    eprintln!("every object created under load converged {took:.1?} after the load stopped");
    let survivor = replicas.remove(1 - leader);
    assert!(http_get(survivor.probe_port, "/readyz").is_ok_and(|(code, _)| code == 200));
}

/// Corpus task definitions (camelCase, as `aws ecs` takes them) that the
/// engine accepts without an error once pasted into an ECSDeployment.
fn valid_corpus_tasks() -> Vec<(String, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/ecs-corpus/taskdefs");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .filter_map(|p| {
            let task: Value = serde_json::from_str(&std::fs::read_to_string(&p).ok()?).ok()?;
            task.get("containerDefinitions")?;
            let stem = p.file_stem()?.to_string_lossy().to_string();
            errors(&ecsd_with_task("default", "probe", &task))
                .is_empty()
                .then_some((stem, task))
        })
        .collect()
}

fn ecsd_with_task(ns: &str, name: &str, task: &Value) -> Value {
    json!({"apiVersion": "ecskube.ecskube/v1alpha1", "kind": "ECSDeployment",
           "metadata": {"name": name, "namespace": ns}, "spec": {"Task": task}})
}

/// The engine's errors for an object, offline: (path, message).
fn errors(object: &Value) -> Vec<(String, String)> {
    let docs = ecskube::document::parse_documents(&object.to_string()).unwrap();
    docs[0]
        .analyze()
        .report
        .diagnostics
        .into_iter()
        .filter(|d| d.severity == ecskube::diag::Severity::Error)
        .map(|d| (d.path, d.message))
        .collect()
}

/// Ways to break a valid task definition, each with the path (under
/// `spec.Task`) of the error it must cause: wrong types, unknown keys, bad
/// enum values, references to containers and volumes that do not exist.
fn mutations(task: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut with = |path: String, change: &dyn Fn(&mut Value)| {
        let mut t = task.clone();
        change(&mut t);
        out.push((path, t));
    };
    with("networkMode".into(), &|t| t["networkMode"] = "bogus".into());
    with("requiresCompatibilities[0]".into(), &|t| {
        t["requiresCompatibilities"] = json!(["BOGUS"])
    });
    with("volumes[0].name".into(), &|t| t["volumes"] = json!([{"name": {"a": 1}}]));
    with("family".into(), &|t| t["family"] = json!(["not", "a", "string"]));
    let containers = task["containerDefinitions"].as_array().map_or(0, Vec::len);
    for i in 0..containers {
        let c = &task["containerDefinitions"][i];
        let at = |rest: &str| format!("containerDefinitions[{i}].{rest}");
        let number = ["memory", "cpu", "memoryReservation"].into_iter().find(|k| c.get(*k).is_some());
        if let Some(key) = number {
            with(at(key), &|t| t["containerDefinitions"][i][key] = json!({"not": "a number"}));
        }
        with(at("essential"), &|t| t["containerDefinitions"][i]["essential"] = json!([true]));
        with(at("imagee"), &|t| {
            let c = t["containerDefinitions"][i].as_object_mut().unwrap();
            let image = c.remove("image").unwrap_or_else(|| "nginx".into());
            c.insert("imagee".into(), image);
        });
        with(at("environment"), &|t| t["containerDefinitions"][i]["environment"] = "A=1".into());
        with(at("portMappings[0].containerPort"), &|t| {
            t["containerDefinitions"][i]["portMappings"] = json!([{"containerPort": "eighty"}])
        });
        with(at("portMappings[0].protocol"), &|t| {
            t["containerDefinitions"][i]["portMappings"] = json!([{"containerPort": 8080, "protocol": "bogus"}])
        });
        with(at("logConfiguration.logDriver"), &|t| {
            t["containerDefinitions"][i]["logConfiguration"] = json!({"logDriver": "bogus"})
        });
        with(at("dependsOn[0].containerName"), &|t| {
            t["containerDefinitions"][i]["dependsOn"] = json!([{"containerName": "no-such-container", "condition": "START"}])
        });
        with(at("mountPoints[0].sourceVolume"), &|t| {
            t["containerDefinitions"][i]["mountPoints"] = json!([{"sourceVolume": "no-such-volume", "containerPath": "/data"}])
        });
        with(at("volumesFrom[0].sourceContainer"), &|t| {
            t["containerDefinitions"][i]["volumesFrom"] = json!([{"sourceContainer": "no-such-container"}])
        });
    }
    out
}

#[test]
fn two_hundred_invalid_objects_from_the_corpus_are_each_refused_with_their_path_and_leave_nothing() {
    let fault = begin("fault-invalid");
    let (cluster, ns) = (fault.cluster, fault.ns.clone());
    // Webhook and controller in one process: anything stored would get children.
    let _server = EcskubeProcess::start_with(
        cluster,
        binary(),
        "invalid-serve",
        &Launch {
            leader_election_namespace: Some(ns.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    let _hooks = Webhooks::install(
        cluster,
        &local_webhook_configurations(&format!("https://127.0.0.1:{}", _server.webhook_port), &_server.ca_pem).unwrap(),
    );

    // Round robin over the files, so every file and kind of break is used.
    let tasks = valid_corpus_tasks();
    assert!(tasks.len() >= 10, "only {} corpus task definitions are valid", tasks.len());
    let per_file: Vec<Vec<(String, Value)>> = tasks.iter().map(|(_, t)| mutations(t)).collect();
    let mut cases = Vec::new();
    for round in 0.. {
        let before = cases.len();
        for (f, muts) in per_file.iter().enumerate() {
            if let Some((path, task)) = muts.get(round) {
                let name = format!("bad-{}", cases.len());
                cases.push((tasks[f].0.clone(), format!("spec.Task.{path}"), ecsd_with_task(&ns, &name, task)));
            }
        }
        if cases.len() >= 200 || cases.len() == before {
            break;
        }
    }
    let ways: usize = per_file.iter().map(Vec::len).sum();
    cases.truncate(200);
    assert_eq!(cases.len(), 200);
    eprintln!(
        "{} valid corpus task definitions, {ways} ways to break them, 200 applied",
        tasks.len()
    );
    // The engine itself puts an error at exactly that path (offline).
    for (file, path, object) in &cases {
        let errs = errors(object);
        assert!(errs.iter().any(|(p, _)| p == path), "{file}: no error at {path}: {errs:#?}");
    }

    let refused: Vec<Result<(), String>> = std::thread::scope(|s| {
        let workers: Vec<_> = cases
            .chunks(50)
            .map(|chunk| {
                s.spawn(move || {
                    chunk
                        .iter()
                        .map(|(file, path, object)| {
                            let out = cluster.kubectl_run(&["apply", "-f", "-"], Some(&object.to_string())).unwrap();
                            // kubectl prints a 422's causes as `The ECSDeployment "x" is
                            // invalid: <path>: <message>`, or one per line (`* <path>: ...`).
                            let named = [format!(" is invalid: {path}: "), format!("\n* {path}: ")];
                            if out.success() {
                                Err(format!("{file}, broken at {path}: accepted"))
                            } else if !named.iter().any(|n| out.stderr.contains(n.as_str())) {
                                Err(format!("{file}, broken at {path}: {}", out.stderr))
                            } else {
                                Ok(())
                            }
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
    });
    let wrong: Vec<&String> = refused.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(wrong.is_empty(), "{} of 200 not refused as expected: {wrong:#?}", wrong.len());
    assert_eq!(count(cluster, "ecsd", &ns), 0);
    for kind in ["deployments", "services", "daemonsets", "serviceaccounts"] {
        let left: Vec<String> = items(cluster, kind, &ns)
            .iter()
            .map(|o| o["metadata"]["name"].as_str().unwrap_or_default().to_string())
            .filter(|n| n != "default")
            .collect();
        assert!(left.is_empty(), "{kind} left behind: {left:?}");
    }
}
