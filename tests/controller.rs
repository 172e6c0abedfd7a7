//! The controller against a real control plane (tests/support): children
//! with owner references, status and `kubectl wait`, updates, drift repair,
//! ConfigMap-sourced tasks, conflicts, garbage collection and leader election.
//! Each test runs its own controller in-process, scoped to its namespace.
//! Needs `make control-plane`.

mod support;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use ecskube::controller::{self, ControllerConfig, LeaderConfig, Metrics};
use ecskube::devcluster::DevCluster;
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::{json, Value};
use support::{shared_cluster, test_namespace, wait_for, DumpLogsOnPanic};
use tokio::runtime::Runtime;
use tokio::sync::watch;
use tokio::task::JoinHandle;

const TIMEOUT: Duration = Duration::from_secs(120);

/// One test's namespace, tokio runtime and kube client.
struct Harness {
    cluster: &'static DevCluster,
    ns: String,
    rt: Runtime,
    client: kube::Client,
    _logs: DumpLogsOnPanic,
}

/// A controller running in the test's runtime; aborted when dropped.
struct Running {
    handle: JoinHandle<anyhow::Result<()>>,
    metrics: Arc<Metrics>,
    ready: watch::Receiver<bool>,
    shutdown: watch::Sender<bool>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

impl Running {
    fn successes(&self) -> u64 {
        self.metrics.reconcile_counts().0
    }
}

fn harness(prefix: &str) -> Harness {
    // RUST_LOG=ecskube=debug shows what the controller does.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "ecskube=info".into());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
    let cluster = shared_cluster();
    install_crd(cluster);
    let ns = test_namespace(cluster, prefix);
    let rt = Runtime::new().unwrap();
    let client = rt.block_on(async {
        let kubeconfig = Kubeconfig::read_from(cluster.kubeconfig_path()).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .unwrap();
        kube::Client::try_from(config).unwrap()
    });
    Harness {
        cluster,
        ns,
        rt,
        client,
        _logs: DumpLogsOnPanic(cluster),
    }
}

fn install_crd(cluster: &DevCluster) {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/webhook-config/crd.yaml");
        cluster.kubectl_ok(&["apply", "--server-side", "-f", path], None).unwrap();
        cluster
            .kubectl_ok(
                &[
                    "wait",
                    "--for=condition=Established",
                    "crd/ecsdeployments.ecskube.ecskube",
                    "--timeout=60s",
                ],
                None,
            )
            .unwrap();
    });
}

impl Harness {
    fn config(&self) -> ControllerConfig {
        ControllerConfig {
            namespace: Some(self.ns.clone()),
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(5),
            ..Default::default()
        }
    }

    /// Starts a controller and waits until its watches have synced.
    fn start(&self, config: ControllerConfig) -> Running {
        let (tx, ready) = watch::channel(false);
        let (shutdown, stop) = watch::channel(false);
        let metrics = config.metrics.clone();
        let handle = self.rt.spawn(controller::run(self.client.clone(), config, tx, stop));
        let running = Running {
            handle,
            metrics,
            ready,
            shutdown,
        };
        wait_for("the controller to be ready", TIMEOUT, || *running.ready.borrow());
        running
    }

    fn kubectl(&self, args: &[&str]) -> String {
        let mut all = args.to_vec();
        all.extend(["-n", &self.ns]);
        self.cluster.kubectl_ok(&all, None).unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// The object as JSON, or Null when it does not exist.
    fn get(&self, kind: &str, name: &str) -> Value {
        let out = self
            .cluster
            .kubectl_run(&["get", kind, name, "-n", &self.ns, "-o", "json"], None)
            .unwrap();
        if out.success() {
            serde_json::from_str(&out.stdout).unwrap()
        } else {
            assert!(out.stderr.contains("NotFound"), "kubectl get {kind} {name}: {}", out.stderr);
            Value::Null
        }
    }

    fn exists(&self, kind: &str, name: &str) -> bool {
        !self.get(kind, name).is_null()
    }

    fn apply(&self, manifest: &Value) {
        self.cluster.apply(&manifest.to_string()).unwrap_or_else(|e| panic!("{e:#}"));
    }

    fn ecsd(&self, name: &str, spec: Value) -> Value {
        json!({
            "apiVersion": "ecskube.ecskube/v1alpha1",
            "kind": "ECSDeployment",
            "metadata": {"name": name, "namespace": self.ns, "labels": {"team": "test"}},
            "spec": spec,
        })
    }

    fn condition(&self, name: &str, type_: &str) -> Value {
        let obj = self.get("ecsd", name);
        obj["status"]["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == type_).cloned())
            .unwrap_or(Value::Null)
    }

    fn wait_condition(&self, name: &str, type_: &str, status: &str, reason: Option<&str>) -> Value {
        let mut last = Value::Null;
        wait_for(&format!("ecsd/{name} {type_}={status} {reason:?}"), TIMEOUT, || {
            last = self.condition(name, type_);
            last["status"] == status && reason.is_none_or(|r| last["reason"] == r)
        });
        last
    }

    fn wait_ready(&self, name: &str) {
        let out = self.cluster.kubectl_run(
            &[
                "wait",
                "--for=condition=Ready",
                &format!("ecsd/{name}"),
                "-n",
                &self.ns,
                "--timeout=120s",
            ],
            None,
        );
        let out = out.unwrap();
        assert!(
            out.success(),
            "kubectl wait: {} {}\nstatus: {}",
            out.stdout,
            out.stderr,
            self.get("ecsd", name)["status"]
        );
    }

    fn events(&self, name: &str) -> Vec<(String, String, String)> {
        let list: Value = serde_json::from_str(&self.kubectl(&[
            "get",
            "events",
            "-o",
            "json",
            "--field-selector",
            &format!("involvedObject.name={name},involvedObject.kind=ECSDeployment"),
        ]))
        .unwrap();
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let s = |k: &str| e[k].as_str().unwrap_or_default().to_string();
                (s("type"), s("reason"), s("message"))
            })
            .collect()
    }

    fn wait_event(&self, name: &str, reason: &str, message_part: &str) {
        wait_for(
            &format!("event {reason} containing {message_part:?} on ecsd/{name}"),
            TIMEOUT,
            || self.events(name).iter().any(|(_, r, m)| r == reason && m.contains(message_part)),
        );
    }
}

fn task(image: &str, port: Option<u16>) -> Value {
    let mut container = json!({"name": "web", "image": image, "memory": 64});
    if let Some(p) = port {
        container["portMappings"] = json!([{"containerPort": p}]);
    }
    json!({"containerDefinitions": [container]})
}

fn controlled_by(child: &Value, owner: &Value) -> bool {
    child["metadata"]["ownerReferences"].as_array().is_some_and(|refs| {
        refs.iter().any(|r| {
            r["uid"] == owner["metadata"]["uid"]
                && r["controller"] == true
                && r["blockOwnerDeletion"] == true
                && r["kind"] == "ECSDeployment"
        })
    })
}

#[test]
fn creates_owned_children_reports_ready_and_garbage_collects_them() {
    let h = harness("ctrl-create");
    let running = h.start(h.config());
    let mut t = task("nginx:1", Some(80));
    t["taskRoleArn"] = json!("arn:aws:iam::123456789012:role/web");
    h.apply(&h.ecsd(
        "web",
        json!({"Task": t, "Service": {"desiredCount": 2, "loadBalancers": [{"containerName": "web", "containerPort": 80}]}}),
    ));

    h.wait_ready("web");
    let owner = h.get("ecsd", "web");
    for kind in ["deployment", "service", "serviceaccount"] {
        let child = h.get(kind, "web");
        assert!(controlled_by(&child, &owner), "{kind}/web is not controlled by ecsd/web: {child}");
        assert_eq!(child["metadata"]["labels"]["app.kubernetes.io/instance"], "web");
        assert_eq!(child["metadata"]["labels"]["app.kubernetes.io/managed-by"], "ecskube");
        assert_eq!(child["metadata"]["labels"]["team"], "test");
    }
    let status = &owner["status"];
    assert_eq!(status["observedGeneration"], owner["metadata"]["generation"]);
    assert_eq!((status["replicas"].as_i64(), status["readyReplicas"].as_i64()), (Some(2), Some(2)));
    assert_eq!(status["updatedReplicas"], 2);
    assert_eq!(status["service"], "web");
    assert_eq!(status["children"], json!(["Deployment/web", "Service/web", "ServiceAccount/web"]));
    assert_eq!(h.condition("web", "Degraded")["status"], "False");
    assert_eq!(h.condition("web", "Progressing")["reason"], "Complete");
    h.wait_event("web", "Created", "Deployment/web");

    // The Service's external address (no cloud here: set it as a load balancer controller would).
    h.kubectl(&[
        "patch",
        "service",
        "web",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"loadBalancer":{"ingress":[{"ip":"203.0.113.7"}]}}}"#,
    ]);
    wait_for("status.address", TIMEOUT, || {
        h.get("ecsd", "web")["status"]["address"] == "203.0.113.7"
    });

    // A reconcile that changes nothing writes nothing: touch the object, let it
    // reconcile, and count every write ecskube made (children and status).
    let writes = |m: &Metrics| {
        ["Deployment", "Service", "ServiceAccount"]
            .map(|k| m.child_writes(k))
            .iter()
            .sum::<u64>()
            + m.writes
                .get_or_create(&ecskube::controller::metrics::WriteLabels {
                    kind: "ECSDeployment".into(),
                    operation: "status".into(),
                })
                .get()
    };
    let before_writes = writes(&running.metrics);
    let before = running.successes();
    h.kubectl(&["annotate", "ecsd", "web", "touched=1"]);
    wait_for("a reconcile after the annotation", TIMEOUT, || running.successes() > before);
    assert_eq!(writes(&running.metrics), before_writes, "a reconcile of an unchanged object wrote");

    h.kubectl(&["delete", "ecsd", "web", "--wait=true"]);
    wait_for("garbage collection of the children", TIMEOUT, || {
        !h.exists("deployment", "web") && !h.exists("service", "web") && !h.exists("serviceaccount", "web")
    });
}

#[test]
fn updates_roll_the_deployment_and_remove_children_no_longer_wanted() {
    let h = harness("ctrl-update");
    let _running = h.start(h.config());
    let mut t = task("nginx:1", Some(80));
    h.apply(&h.ecsd("app", json!({"Task": t, "Service": {"desiredCount": 1}})));
    h.wait_ready("app");
    assert!(h.exists("service", "app"));
    assert!(!h.exists("serviceaccount", "app"));

    // A new image rolls the Deployment: a second ReplicaSet.
    t = task("nginx:2", Some(80));
    h.apply(&h.ecsd("app", json!({"Task": t, "Service": {"desiredCount": 1}})));
    wait_for("the new image in the Deployment", TIMEOUT, || {
        h.get("deployment", "app")["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:2"
    });
    wait_for("a second ReplicaSet", TIMEOUT, || {
        let rs: Value = serde_json::from_str(&h.kubectl(&["get", "replicasets", "-o", "json"])).unwrap();
        rs["items"].as_array().unwrap().len() == 2
    });
    h.wait_event("app", "Updated", "Deployment/app");
    wait_for("observedGeneration to follow", TIMEOUT, || {
        let o = h.get("ecsd", "app");
        o["status"]["observedGeneration"] == o["metadata"]["generation"]
    });
    h.wait_ready("app");

    // desiredCount.
    h.apply(&h.ecsd("app", json!({"Task": t, "Service": {"desiredCount": 3}})));
    wait_for("3 replicas", TIMEOUT, || h.get("deployment", "app")["spec"]["replicas"] == 3);
    wait_for("status.readyReplicas 3", TIMEOUT, || {
        h.get("ecsd", "app")["status"]["readyReplicas"] == 3
    });

    // taskRoleArn adds the ServiceAccount, removing it deletes it.
    t["taskRoleArn"] = json!("arn:aws:iam::123456789012:role/app");
    h.apply(&h.ecsd("app", json!({"Task": t, "Service": {"desiredCount": 3}})));
    wait_for("the ServiceAccount", TIMEOUT, || h.exists("serviceaccount", "app"));
    wait_for("the pods to use it", TIMEOUT, || {
        h.get("deployment", "app")["spec"]["template"]["spec"]["serviceAccountName"] == "app"
    });
    t.as_object_mut().unwrap().remove("taskRoleArn");
    h.apply(&h.ecsd("app", json!({"Task": t, "Service": {"desiredCount": 3}})));
    wait_for("the ServiceAccount to be deleted", TIMEOUT, || !h.exists("serviceaccount", "app"));
    h.wait_event("app", "Deleted", "ServiceAccount/app");

    // No ports and no Service section: no Service.
    h.apply(&h.ecsd("app", json!({"Task": task("nginx:2", None)})));
    wait_for("the Service to be deleted", TIMEOUT, || !h.exists("service", "app"));
    wait_for("status without the Service", TIMEOUT, || {
        let s = &h.get("ecsd", "app")["status"];
        s["service"].is_null() && s["children"] == json!(["Deployment/app"])
    });
    assert_eq!(h.get("deployment", "app")["spec"]["replicas"], 1, "no Service section: one replica");
    h.wait_ready("app");
}

#[test]
fn switching_replica_and_daemon_replaces_the_workload() {
    let h = harness("ctrl-daemon");
    let _running = h.start(h.config());
    h.apply(&h.ecsd(
        "agent",
        json!({"Task": task("agent:1", None), "Service": {"schedulingStrategy": "REPLICA"}}),
    ));
    wait_for("the Deployment", TIMEOUT, || h.exists("deployment", "agent"));

    h.apply(&h.ecsd(
        "agent",
        json!({"Task": task("agent:1", None), "Service": {"schedulingStrategy": "DAEMON"}}),
    ));
    wait_for("a DaemonSet instead of the Deployment", TIMEOUT, || {
        h.exists("daemonset", "agent") && !h.exists("deployment", "agent")
    });
    assert!(controlled_by(&h.get("daemonset", "agent"), &h.get("ecsd", "agent")));
    h.wait_ready("agent");
    assert_eq!(h.get("ecsd", "agent")["status"]["children"], json!(["DaemonSet/agent"]));

    h.apply(&h.ecsd(
        "agent",
        json!({"Task": task("agent:1", None), "Service": {"schedulingStrategy": "REPLICA"}}),
    ));
    wait_for("the Deployment back instead of the DaemonSet", TIMEOUT, || {
        h.exists("deployment", "agent") && !h.exists("daemonset", "agent")
    });
    h.wait_ready("agent");

    // A DaemonSet goes with its ECSDeployment, as a Deployment does.
    h.apply(&h.ecsd(
        "daemon",
        json!({"Task": task("agent:1", None), "Service": {"schedulingStrategy": "DAEMON"}}),
    ));
    wait_for("the DaemonSet", TIMEOUT, || h.exists("daemonset", "daemon"));
    h.kubectl(&["delete", "ecsd", "daemon", "--wait=true"]);
    wait_for("garbage collection of the DaemonSet", TIMEOUT, || !h.exists("daemonset", "daemon"));
}

#[test]
fn drift_is_put_back_and_deleted_children_come_back() {
    let h = harness("ctrl-drift");
    let _running = h.start(h.config());
    h.apply(&h.ecsd("web", json!({"Task": task("nginx:1", Some(80)), "Service": {"desiredCount": 2}})));
    h.wait_ready("web");

    h.kubectl(&["scale", "deployment", "web", "--replicas=5"]);
    wait_for("the replica count to be put back", TIMEOUT, || {
        h.get("deployment", "web")["spec"]["replicas"] == 2
    });

    h.kubectl(&["set", "image", "deployment/web", "web=evil:1"]);
    wait_for("the image to be put back", TIMEOUT, || {
        h.get("deployment", "web")["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1"
    });

    let old_uid = h.get("service", "web")["metadata"]["uid"].clone();
    h.kubectl(&["delete", "service", "web"]);
    wait_for("the Service to come back", TIMEOUT, || {
        let s = h.get("service", "web");
        !s.is_null() && s["metadata"]["uid"] != old_uid
    });

    let old_uid = h.get("deployment", "web")["metadata"]["uid"].clone();
    h.kubectl(&["delete", "deployment", "web", "--wait=true"]);
    wait_for("the Deployment to come back", TIMEOUT, || {
        let d = h.get("deployment", "web");
        !d.is_null() && d["metadata"]["uid"] != old_uid
    });
    h.wait_ready("web");
}

#[test]
fn task_from_a_config_map_follows_its_edits() {
    let h = harness("ctrl-cm");
    let _running = h.start(h.config());
    let spec = json!({"TaskFrom": {"configMapKeyRef": {"name": "defs", "key": "task.yaml"}}, "Service": {"desiredCount": 1}});
    h.apply(&h.ecsd("fromcm", spec));
    let missing = h.wait_condition("fromcm", "Degraded", "True", Some("ConfigMapMissing"));
    assert!(missing["message"].as_str().unwrap().contains("defs"), "{missing}");
    assert_eq!(h.condition("fromcm", "Ready")["status"], "False");
    h.wait_event("fromcm", "ConfigMapMissing", "defs");

    let config_map = |image: &str| {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "defs", "namespace": h.ns},
               "data": {"task.yaml": format!("containerDefinitions:\n  - name: web\n    image: {image}\n    memory: 64\n")}})
    };
    h.apply(&config_map("nginx:1"));
    h.wait_ready("fromcm");
    assert_eq!(
        h.get("deployment", "fromcm")["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1"
    );

    h.apply(&config_map("nginx:2"));
    wait_for("the ConfigMap edit to reach the Deployment", TIMEOUT, || {
        h.get("deployment", "fromcm")["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:2"
    });

    // A definition that does not translate: Degraded, the children stay as they were.
    let broken = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "defs", "namespace": h.ns},
                        "data": {"task.yaml": "containerDefinitions:\n  - name: web\n    memory: 64\n"}});
    h.apply(&broken);
    let failed = h.wait_condition("fromcm", "Degraded", "True", Some("TranslationFailed"));
    assert!(failed["message"].as_str().unwrap().contains("image"), "{failed}");
    assert_eq!(
        h.get("deployment", "fromcm")["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:2"
    );
}

#[test]
fn a_pre_existing_unowned_deployment_is_a_conflict_and_left_alone() {
    let h = harness("ctrl-conflict");
    let _running = h.start(h.config());
    let theirs = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "taken", "namespace": h.ns},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "theirs"}},
            "template": {"metadata": {"labels": {"app": "theirs"}}, "spec": {"containers": [{"name": "c", "image": "theirs:1"}]}},
        },
    });
    h.apply(&theirs);
    let before = h.get("deployment", "taken");

    h.apply(&h.ecsd("taken", json!({"Task": task("nginx:1", None)})));
    let degraded = h.wait_condition("taken", "Degraded", "True", Some("ChildConflict"));
    assert!(degraded["message"].as_str().unwrap().contains("Deployment/taken"), "{degraded}");
    assert_eq!(h.condition("taken", "Ready")["status"], "False");
    h.wait_event("taken", "ChildConflict", "Deployment/taken");

    let after = h.get("deployment", "taken");
    // The deployment controller keeps writing the foreign object's status, so its
    // resourceVersion moves; what ecskube must not touch is everything else.
    assert_eq!(after["spec"], before["spec"], "the foreign Deployment's spec was modified");
    assert_eq!(after["metadata"]["generation"], before["metadata"]["generation"]);
    assert_eq!(after["metadata"]["labels"], before["metadata"]["labels"]);
    // (The deployment controller adds its revision annotation; ecskube adds none.)
    let annotations = after["metadata"]["annotations"].as_object().cloned().unwrap_or_default();
    assert!(!annotations.keys().any(|k| k.starts_with("ecskube.ecskube/")), "{annotations:?}");
    assert!(after["metadata"]["ownerReferences"].is_null());
    let managers: Vec<&str> = after["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["manager"].as_str())
        .collect();
    assert!(
        !managers.contains(&"ecskube"),
        "ecskube wrote to the foreign Deployment: {managers:?}"
    );

    // Deleting the ECSDeployment leaves it too: a foreground deletion ends only
    // once the garbage collector has dealt with every dependent.
    h.kubectl(&["delete", "ecsd", "taken", "--cascade=foreground", "--wait=true"]);
    assert_eq!(h.get("ecsd", "taken"), Value::Null);
    assert!(h.exists("deployment", "taken"));
}

#[test]
fn with_leader_election_only_the_leader_reconciles_and_a_standby_takes_over() {
    let h = harness("ctrl-leader");
    let lease = |identity: &str| LeaderConfig {
        namespace: h.ns.clone(),
        name: "ecskube-controller".into(),
        identity: identity.into(),
        lease_duration: Duration::from_secs(2),
        renew_interval: Duration::from_millis(500),
        ..LeaderConfig::new("unused")
    };
    let a = h.start(ControllerConfig {
        leader_election: Some(lease("a")),
        ..h.config()
    });
    wait_for("a to hold the lease", TIMEOUT, || {
        h.get("lease", "ecskube-controller")["spec"]["holderIdentity"] == "a"
    });
    let b = h.start(ControllerConfig {
        leader_election: Some(lease("b")),
        ..h.config()
    });

    h.apply(&h.ecsd("one", json!({"Task": task("nginx:1", None)})));
    wait_for("a to create the children", TIMEOUT, || h.exists("deployment", "one"));
    h.wait_ready("one");
    assert!(a.successes() > 0);
    assert_eq!(b.metrics.reconcile_counts(), (0, 0), "the standby reconciled");
    assert_eq!(h.get("lease", "ecskube-controller")["spec"]["holderIdentity"], "a");

    // The leader goes away (its process ends): b takes over once the lease expires.
    let stopped = Instant::now();
    drop(a);
    h.apply(&h.ecsd("two", json!({"Task": task("nginx:1", None)})));
    wait_for("b to take over and create the children", TIMEOUT, || h.exists("deployment", "two"));
    // How long a leading b takes from an apply to its child: the window below.
    let applied = Instant::now();
    h.apply(&h.ecsd("two-b", json!({"Task": task("nginx:1", None)})));
    wait_for("b to create two-b's children", TIMEOUT, || h.exists("deployment", "two-b"));
    let reaction = applied.elapsed();
    eprintln!("takeover after the leader stopped: {:.1?}", stopped.elapsed());
    assert_eq!(h.get("lease", "ecskube-controller")["spec"]["holderIdentity"], "b");
    assert!(b.successes() > 0);

    // A leader that loses the lease stops at once: someone else takes it (for an hour).
    let now = json!(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
        k8s_openapi::jiff::Timestamp::now()
    ));
    let stolen = json!({"spec": {"holderIdentity": "intruder", "renewTime": now, "leaseDurationSeconds": 3600}});
    h.kubectl(&["patch", "lease", "ecskube-controller", "--type=merge", "-p", &stolen.to_string()]);
    wait_for("b to notice it lost the lease", TIMEOUT, || !b.metrics.is_leading());
    let frozen = b.successes();
    h.apply(&h.ecsd("three", json!({"Task": task("nginx:1", None)})));
    // Three times as long as a leading b needed (at least 3 s), "three" stays without children.
    let window = (reaction * 3).max(Duration::from_secs(3));
    let watching = Instant::now();
    while watching.elapsed() < window {
        assert!(!h.exists("deployment", "three"), "a replica without the lease reconciled");
    }
    assert_eq!(b.successes(), frozen);
    assert!(*b.ready.borrow(), "a standby is ready");

    // Lease gone: b takes it again, and only then is "three" made.
    h.kubectl(&["delete", "lease", "ecskube-controller"]);
    wait_for("b to lead again", TIMEOUT, || h.exists("deployment", "three"));
    assert!(b.metrics.is_leading());
}

fn hour_lease(ns: &str, identity: &str) -> LeaderConfig {
    LeaderConfig {
        namespace: ns.into(),
        name: "ecskube-controller".into(),
        identity: identity.into(),
        // An hour: a takeover in this test can only come from a release.
        lease_duration: Duration::from_secs(3600),
        renew_interval: Duration::from_millis(300),
        ..LeaderConfig::new("unused")
    }
}

#[test]
fn a_leader_that_shuts_down_hands_the_lease_over_at_once() {
    let h = harness("ctrl-release");
    let a = h.start(ControllerConfig {
        leader_election: Some(hour_lease(&h.ns, "a")),
        ..h.config()
    });
    wait_for("a to lead", TIMEOUT, || a.metrics.is_leading());
    let b = h.start(ControllerConfig {
        leader_election: Some(hour_lease(&h.ns, "b")),
        ..h.config()
    });
    a.shutdown.send_replace(true);
    wait_for("b to take the released lease", TIMEOUT, || b.metrics.is_leading());
    assert_eq!(h.get("lease", "ecskube-controller")["spec"]["holderIdentity"], "b");
    assert!(!a.metrics.is_leading());
}

#[test]
fn a_follower_whose_clock_runs_ahead_never_takes_a_renewed_lease() {
    let h = harness("ctrl-skew");
    let lease = |identity: &str, skew_seconds: i64| LeaderConfig {
        namespace: h.ns.clone(),
        name: "ecskube-controller".into(),
        identity: identity.into(),
        lease_duration: Duration::from_secs(2),
        renew_interval: Duration::from_millis(200),
        wall_clock: Arc::new(move || k8s_openapi::jiff::Timestamp::now() + k8s_openapi::jiff::SignedDuration::from_secs(skew_seconds)),
    };
    let a = h.start(ControllerConfig {
        leader_election: Some(lease("a", 0)),
        ..h.config()
    });
    wait_for("a to lead", TIMEOUT, || a.metrics.is_leading());
    // b's clock is an hour ahead: by its clock, a's renewTime is an hour old.
    let b = h.start(ControllerConfig {
        leader_election: Some(lease("b", 3600)),
        ..h.config()
    });
    let version = |h: &Harness| h.get("lease", "ecskube-controller")["metadata"]["resourceVersion"].clone();
    let mut renewals = 0;
    let mut last = version(&h);
    while renewals < 20 {
        assert!(!(a.metrics.is_leading() && b.metrics.is_leading()), "two leaders");
        assert!(!b.metrics.is_leading(), "b took a lease that a kept renewing");
        let now = version(&h);
        if now != last {
            renewals += 1;
            last = now;
            assert_eq!(h.get("lease", "ecskube-controller")["spec"]["holderIdentity"], "a");
        }
    }
    assert!(a.metrics.is_leading());
}

#[test]
fn a_steady_object_causes_no_writes_over_several_resyncs() {
    let h = harness("ctrl-steady");
    // Resync every second: each is a full reconcile of an unchanged object.
    let running = h.start(ControllerConfig {
        requeue_after: Duration::from_secs(1),
        ..h.config()
    });
    // Fargate sizes (2048 MiB is stored as 2Gi), a Service and an IRSA ServiceAccount.
    let spec = json!({"Task": {"cpu": "1024", "memory": "2048", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
                               "taskRoleArn": "arn:aws:iam::123456789012:role/web",
                               "containerDefinitions": [{"name": "web", "image": "nginx:1", "cpu": 512, "memory": 1024,
                                                         "portMappings": [{"containerPort": 80}]}]},
                      "Service": {"desiredCount": 2}});
    h.apply(&h.ecsd("steady", spec));
    h.wait_ready("steady");
    let status = h.get("ecsd", "steady")["status"].clone();
    assert_eq!(status["desiredReplicas"], 2, "{status}");
    let writes = |m: &Metrics| ["Deployment", "Service", "ServiceAccount"].map(|k| m.child_writes(k));
    let before = writes(&running.metrics);
    let reconciles = running.successes();
    wait_for("five more reconciles", TIMEOUT, || running.successes() >= reconciles + 5);
    assert_eq!(writes(&running.metrics), before, "a steady object was written again");
    assert_eq!(h.get("ecsd", "steady")["status"], status, "the status was rewritten");
}
