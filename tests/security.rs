//! The promises to cluster admins, each tested by performing the attack of a
//! user who may only write ECSDeployments and ConfigMaps in one namespace.
//!
//! ecskube runs as installed: the webhook and the controller are separate
//! `ecskube serve` processes, each authenticated as its own ServiceAccount
//! (webhook-config/rbac.yaml), with webhook-config/admission-policy.yaml in
//! force, against the real control plane.

mod support;

use ecskube::devcluster::ecskube::{EcskubeProcess, Launch};
use ecskube::devcluster::DevCluster;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;
use support::{shared_cluster, test_namespace, wait_for, DumpLogsOnPanic};

const TIMEOUT: Duration = Duration::from_secs(120);

const POLICY: &str = r#"
allowedImagePrefixes: [nginx, public.ecr.aws/nginx/]
denyPrivileged: true
denyHostPid: true
denyHostPathVolumes: true
maxTaskCpu: 2048
maxContainerCpu: 1024
allowedTaskRoleArns: ["arn:aws:iam::123456789012:role/apps-*"]
namespaces:
  sec-relaxed:
    denyPrivileged: false
"#;

/// A namespace whose object exists before the webhook does.
const PREEXISTING_NS: &str = "sec-preexisting";

struct Installed {
    cluster: &'static DevCluster,
    webhook: EcskubeProcess,
    controller: EcskubeProcess,
}

fn manifest(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("webhook-config").join(name)
}

fn apply_file(cluster: &DevCluster, name: &str) {
    let path = manifest(name);
    cluster
        .kubectl_ok(&["apply", "-f", path.to_str().unwrap()], None)
        .unwrap_or_else(|e| panic!("{e:#}"));
}

fn ecsd(ns: &str, name: &str, spec: Value) -> Value {
    json!({"apiVersion": "ecskube.ecskube/v1alpha1", "kind": "ECSDeployment",
           "metadata": {"name": name, "namespace": ns}, "spec": spec})
}

fn web(extra: Value) -> Value {
    let mut c = json!({"name": "web", "image": "nginx:1.25", "memory": 128});
    c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    c
}

/// RBAC, the admission policies and both processes, once per test binary.
fn installed() -> &'static Installed {
    static INSTALLED: OnceLock<Installed> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let cluster = shared_cluster();
        for file in ["namespace.yaml", "crd.yaml", "rbac.yaml", "admission-policy.yaml"] {
            apply_file(cluster, file);
        }
        let policy = cluster.work_dir().join("security-policy.yaml");
        std::fs::write(&policy, POLICY).unwrap();
        let binary = Path::new(env!("CARGO_BIN_EXE_ecskube"));
        let as_account = |sa: &str| Some(cluster.service_account_kubeconfig("ecskube-system", sa).unwrap());
        let controller = EcskubeProcess::start_with(
            cluster,
            binary,
            "security-controller",
            &Launch {
                kubeconfig: as_account("ecskube-controller"),
                leader_election_namespace: Some("ecskube-system".into()),
                args: vec!["--controller-only".into(), format!("--policy={}", policy.display())],
                ..Default::default()
            },
        )
        .unwrap_or_else(|e| panic!("{e:#}"));
        // Written while no webhook is installed (or while it is bypassed).
        cluster.kubectl_ok(&["create", "namespace", PREEXISTING_NS], None).unwrap();
        let before = ecsd(
            PREEXISTING_NS,
            "before",
            json!({"Task": {"containerDefinitions": [web(json!({"privileged": true}))]}}),
        );
        cluster.apply(&before.to_string()).unwrap();
        let webhook = EcskubeProcess::start_with(
            cluster,
            binary,
            "security-webhook",
            &Launch {
                kubeconfig: as_account("ecskube-webhook"),
                args: vec!["--webhook-only".into(), format!("--policy={}", policy.display())],
                ..Default::default()
            },
        )
        .unwrap_or_else(|e| panic!("{e:#}"));
        webhook.install(cluster).unwrap();
        wait_until_webhook_answers(cluster);
        Installed {
            cluster,
            webhook,
            controller,
        }
    })
}

/// Webhook configurations take effect a moment after they are written.
fn wait_until_webhook_answers(cluster: &DevCluster) {
    let probe = ecsd(
        "default",
        "probe",
        json!({"Task": {"containerDefinitions": [web(json!({"Imagee": "x"}))]}}),
    );
    wait_for("the API server to call the webhook", TIMEOUT, || {
        let out = cluster
            .kubectl_run(&["apply", "--dry-run=server", "-f", "-"], Some(&probe.to_string()))
            .unwrap();
        out.stderr.contains("unknown field `Imagee`")
    });
}

struct Ns {
    i: &'static Installed,
    ns: String,
    _logs: DumpLogsOnPanic,
}

fn namespace(prefix: &str) -> Ns {
    let i = installed();
    Ns {
        ns: test_namespace(i.cluster, prefix),
        i,
        _logs: DumpLogsOnPanic(i.cluster),
    }
}

impl Ns {
    fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> ecskube::devcluster::KubectlOutput {
        let mut all = args.to_vec();
        all.extend(["-n", &self.ns]);
        self.i.cluster.kubectl_run(&all, stdin).unwrap()
    }

    fn apply(&self, v: &Value) -> ecskube::devcluster::KubectlOutput {
        self.kubectl(&["apply", "-f", "-"], Some(&v.to_string()))
    }

    fn get(&self, kind: &str, name: &str) -> Value {
        let out = self.kubectl(&["get", kind, name, "-o", "json"], None);
        if out.success() {
            serde_json::from_str(&out.stdout).unwrap()
        } else {
            assert!(out.stderr.contains("NotFound"), "{}", out.stderr);
            Value::Null
        }
    }

    fn condition(&self, name: &str, type_: &str) -> Value {
        self.get("ecsd", name)["status"]["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == type_).cloned())
            .unwrap_or(Value::Null)
    }

    /// Waits until Degraded has `reason` and its message holds every part.
    fn wait_degraded(&self, name: &str, reason: &str, parts: &[&str]) -> String {
        let mut last = Value::Null;
        wait_for(&format!("ecsd/{name} Degraded {reason} {parts:?}"), TIMEOUT, || {
            last = self.condition(name, "Degraded");
            last["status"] == "True"
                && last["reason"] == reason
                && parts.iter().all(|p| last["message"].as_str().unwrap_or_default().contains(p))
        });
        last["message"].as_str().unwrap().to_string()
    }

    fn wait_event(&self, name: &str, reason: &str) {
        wait_for(&format!("a Warning {reason} event on ecsd/{name}"), TIMEOUT, || {
            let out = self.kubectl(
                &[
                    "get",
                    "events",
                    "-o",
                    "json",
                    "--field-selector",
                    &format!("involvedObject.name={name},reason={reason},type=Warning"),
                ],
                None,
            );
            serde_json::from_str::<Value>(&out.stdout).is_ok_and(|v| v["items"].as_array().is_some_and(|i| !i.is_empty()))
        });
    }

    fn config_map(&self, name: &str, task: &Value) {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": self.ns},
                        "data": {"task.json": task.to_string()}});
        let out = self.apply(&cm);
        assert!(out.success(), "{}", out.stderr);
    }
}

#[test]
fn a_config_map_edited_after_admission_is_judged_before_it_runs() {
    let t = namespace("sec-cm");
    // The ConfigMap does not exist yet: admission can only warn.
    let obj = ecsd(
        &t.ns,
        "web",
        json!({"TaskFrom": {"configMapKeyRef": {"name": "task", "key": "task.json"}}}),
    );
    let out = t.apply(&obj);
    assert!(out.success() && out.stderr.contains("does not exist yet"), "{}", out.stderr);
    // Then the user writes what the policy forbids.
    t.config_map("task", &json!({"containerDefinitions": [web(json!({"privileged": true}))]}));
    let message = t.wait_degraded(
        "web",
        "PolicyDenied",
        &[
            "denyPrivileged",
            r#"["configmap/task"]["task.json"].containerDefinitions[0].privileged"#,
        ],
    );
    assert!(message.contains("children were left as they are"), "{message}");
    t.wait_event("web", "PolicyDenied");
    assert!(t.get("deployment", "web").is_null(), "a denied definition was deployed");

    // A compliant edit deploys.
    t.config_map("task", &json!({"containerDefinitions": [web(json!({}))]}));
    wait_for("the compliant Deployment", TIMEOUT, || !t.get("deployment", "web").is_null());
    let deployed = t.get("deployment", "web");
    let generation = deployed["metadata"]["generation"].clone();

    // Every forbidden edit is refused, and what runs stays as it was.
    let attacks = [
        (
            json!({"pidMode": "host", "containerDefinitions": [web(json!({}))]}),
            "denyHostPid",
            "pidMode",
        ),
        (
            json!({"volumes": [{"name": "root", "host": {"sourcePath": "/"}}], "containerDefinitions": [web(json!({}))]}),
            "denyHostPathVolumes",
            "volumes[0].host.sourcePath",
        ),
        (
            json!({"containerDefinitions": [web(json!({"image": "evil.example.com/miner:1"}))]}),
            "allowedImagePrefixes",
            "containerDefinitions[0].image",
        ),
        (
            json!({"cpu": "4096", "containerDefinitions": [web(json!({}))]}),
            "maxTaskCpu",
            "task.json\"].cpu",
        ),
        (
            json!({"containerDefinitions": [web(json!({"cpu": 2048}))]}),
            "maxContainerCpu",
            "containerDefinitions[0].cpu",
        ),
        (
            json!({"taskRoleArn": "arn:aws:iam::123456789012:role/cluster-admin", "containerDefinitions": [web(json!({}))]}),
            "allowedTaskRoleArns",
            "taskRoleArn",
        ),
    ];
    for (task, rule, path) in attacks {
        t.config_map("task", &task);
        t.wait_degraded("web", "PolicyDenied", &[rule, path]);
        let now = t.get("deployment", "web");
        assert_eq!(now["metadata"]["generation"], generation, "{rule}: the Deployment changed");
        assert_eq!(
            now["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:1.25",
            "{rule}: the running image changed"
        );
        assert!(t.get("serviceaccount", "web").is_null(), "{rule}: a ServiceAccount appeared");
    }
}

#[test]
fn objects_written_before_the_webhook_are_judged_by_the_controller() {
    let i = installed();
    let t = Ns {
        i,
        ns: PREEXISTING_NS.into(),
        _logs: DumpLogsOnPanic(i.cluster),
    };
    t.wait_degraded(
        "before",
        "PolicyDenied",
        &["denyPrivileged", "spec.Task.containerDefinitions[0].privileged"],
    );
    assert!(t.get("deployment", "before").is_null());
}

#[test]
fn namespace_overrides_apply_in_the_controller_as_in_the_webhook() {
    let i = installed();
    let ns = "sec-relaxed";
    i.cluster.kubectl_ok(&["create", "namespace", ns], None).unwrap();
    let t = Ns {
        i,
        ns: ns.into(),
        _logs: DumpLogsOnPanic(i.cluster),
    };
    wait_for("the default ServiceAccount", TIMEOUT, || {
        !t.get("serviceaccount", "default").is_null()
    });
    // Privileged is allowed here by `namespaces.sec-relaxed.denyPrivileged: false`,
    // through the webhook and through a ConfigMap alike.
    let direct = ecsd(
        ns,
        "direct",
        json!({"Task": {"containerDefinitions": [web(json!({"privileged": true}))]}}),
    );
    let out = t.apply(&direct);
    assert!(out.success(), "{}", out.stderr);
    t.config_map("task", &json!({"containerDefinitions": [web(json!({"privileged": true}))]}));
    let from = ecsd(
        ns,
        "from-cm",
        json!({"TaskFrom": {"configMapKeyRef": {"name": "task", "key": "task.json"}}}),
    );
    assert!(t.apply(&from).success());
    for name in ["direct", "from-cm"] {
        wait_for(&format!("deployment/{name}"), TIMEOUT, || !t.get("deployment", name).is_null());
        let d = t.get("deployment", name);
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["securityContext"]["privileged"],
            true
        );
    }
    // The rules not overridden still hold.
    t.config_map(
        "task",
        &json!({"pidMode": "host", "containerDefinitions": [web(json!({"privileged": true}))]}),
    );
    t.wait_degraded("from-cm", "PolicyDenied", &["denyHostPid"]);
}

#[test]
fn a_service_account_of_the_same_name_is_never_borrowed() {
    let t = namespace("sec-sa");
    // Someone else's privileged identity, named like the object the user will create.
    let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount",
                    "metadata": {"name": "ci-deployer", "namespace": t.ns,
                                 "annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/ci"}}});
    assert!(t.apply(&sa).success());
    // Through the webhook: refused at admission.
    let direct = ecsd(
        &t.ns,
        "ci-deployer",
        json!({"Task": {"taskRoleArn": "arn:aws:iam::123456789012:role/apps-web", "containerDefinitions": [web(json!({}))]}}),
    );
    let out = t.apply(&direct);
    assert!(!out.success(), "admitted: {}", out.stderr);
    assert!(
        out.stderr.contains("ServiceAccount") && out.stderr.contains("not managed by this ECSDeployment"),
        "{}",
        out.stderr
    );

    // Past the webhook (a ConfigMap edited later): without taskRoleArn the pods
    // run as `default`, never as the same-named account.
    t.config_map("task", &json!({"containerDefinitions": [web(json!({}))]}));
    let from = ecsd(
        &t.ns,
        "ci-deployer",
        json!({"TaskFrom": {"configMapKeyRef": {"name": "task", "key": "task.json"}}}),
    );
    let out = t.apply(&from);
    assert!(out.success(), "{}", out.stderr);
    wait_for("deployment/ci-deployer", TIMEOUT, || !t.get("deployment", "ci-deployer").is_null());
    let d = t.get("deployment", "ci-deployer");
    assert_eq!(d["spec"]["template"]["spec"]["serviceAccountName"], "default");
    let generation = d["metadata"]["generation"].clone();
    // With taskRoleArn, the controller refuses to run the pods as that account.
    t.config_map(
        "task",
        &json!({"taskRoleArn": "arn:aws:iam::123456789012:role/apps-web", "containerDefinitions": [web(json!({}))]}),
    );
    let message = t.wait_degraded("ci-deployer", "ServiceAccountConflict", &["ServiceAccount/ci-deployer"]);
    assert!(message.contains("workload was not applied"), "{message}");
    let d = t.get("deployment", "ci-deployer");
    assert_eq!(d["metadata"]["generation"], generation);
    assert_eq!(d["spec"]["template"]["spec"]["serviceAccountName"], "default");
    // The other account is untouched: no owner, its own role.
    let sa = t.get("serviceaccount", "ci-deployer");
    assert!(sa["metadata"]["ownerReferences"].is_null(), "{sa}");
    assert_eq!(
        sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
        "arn:aws:iam::123456789012:role/ci"
    );
}

#[test]
fn creation_never_takes_over_an_object_made_meanwhile() {
    use ecskube::controller::write::{self, WriteError};
    use kube::api::{Api, ApiResource, DynamicObject};
    let t = namespace("sec-race");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = rt.block_on(async {
        let kc = kube::config::Kubeconfig::read_from(t.i.cluster.kubeconfig_path()).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.unwrap();
        kube::Client::try_from(config).unwrap()
    });
    let resource = ApiResource::erase::<k8s_openapi::api::core::v1::ServiceAccount>(&());
    let api: Api<DynamicObject> = Api::namespaced_with(client, &t.ns, &resource);
    let desired = |name: &str, role: &str| {
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
               "metadata": {"name": name, "namespace": t.ns, "labels": {"app.kubernetes.io/managed-by": "ecskube"},
                            "annotations": {"eks.amazonaws.com/role-arn": role}}})
    };
    // Someone else's account appears between ecskube's read and its write.
    let theirs = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "web", "namespace": t.ns}});
    assert!(t.apply(&theirs).success());
    let raced = rt.block_on(write::create(&api, &desired("web", "arn:aws:iam::1:role/x")));
    assert!(matches!(raced, Err(WriteError::Raced)), "{raced:?}");
    let left = t.get("serviceaccount", "web");
    assert!(
        left["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].is_null() && left["metadata"]["labels"].is_null(),
        "{left}"
    );

    // An update aimed at the checked object refuses its replacement.
    let created = rt.block_on(write::create(&api, &desired("mine", "arn:aws:iam::1:role/a"))).unwrap();
    let uid = created.metadata.uid.clone().unwrap();
    assert!(t.kubectl(&["delete", "serviceaccount", "mine"], None).success());
    let replacement = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "mine", "namespace": t.ns}});
    assert!(t.apply(&replacement).success());
    let raced = rt.block_on(write::apply_over(&api, &desired("mine", "arn:aws:iam::1:role/b"), &uid));
    assert!(matches!(raced, Err(WriteError::Raced)), "{raced:?}");
    assert!(t.get("serviceaccount", "mine")["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].is_null());
    assert!(t.kubectl(&["delete", "serviceaccount", "mine"], None).success());
    let raced = rt.block_on(write::apply_over(&api, &desired("mine", "arn:aws:iam::1:role/b"), &uid));
    assert!(matches!(raced, Err(WriteError::Raced)), "{raced:?}");

    // What ecskube created is later applied like any apply: a dropped field goes.
    let created = rt.block_on(write::create(&api, &desired("ours", "arn:aws:iam::1:role/a"))).unwrap();
    let uid = created.metadata.uid.clone().unwrap();
    let mut smaller = desired("ours", "unused");
    smaller["metadata"].as_object_mut().unwrap().remove("annotations");
    rt.block_on(write::apply_over(&api, &smaller, &uid)).unwrap();
    let now = t.get("serviceaccount", "ours");
    assert!(
        now["metadata"]["annotations"].is_null(),
        "the annotation ecskube dropped lingers: {now}"
    );
    assert_eq!(now["metadata"]["labels"]["app.kubernetes.io/managed-by"], "ecskube");
}

#[test]
fn the_webhook_account_can_only_dry_run_and_the_controller_stays_out_of_system_namespaces() {
    let t = namespace("sec-rbac");
    let cluster = t.i.cluster;
    let webhook = cluster.service_account_kubeconfig("ecskube-system", "ecskube-webhook").unwrap();
    let controller = cluster.service_account_kubeconfig("ecskube-system", "ecskube-controller").unwrap();
    let deployment = |ns: &str| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "stolen", "namespace": ns},
               "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}},
                        "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})
        .to_string()
    };
    let run = |kc: &PathBuf, args: &[&str], stdin: Option<&str>| cluster.kubectl_as(kc, args, stdin).unwrap();

    // The webhook's token: RBAC lets it create workloads (for dry runs), the policy refuses real ones.
    let out = run(&webhook, &["create", "-f", "-"], Some(&deployment(&t.ns)));
    assert!(!out.success(), "a real write by the webhook account succeeded");
    assert!(
        out.stderr.contains("ecskube-webhook-dry-run-only") && out.stderr.contains("may only make dry-run requests"),
        "{}",
        out.stderr
    );
    let out = run(&webhook, &["create", "--dry-run=server", "-f", "-"], Some(&deployment(&t.ns)));
    assert!(out.success(), "{}", out.stderr);
    assert!(t.get("deployment", "stolen").is_null());

    // It may (re-)create its own webhook configurations, but not one that
    // would send it other objects (every Secret written, say), under any name.
    let hook = |name: &str, resource: &str| {
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
               "metadata": {"name": name},
               "webhooks": [{"name": "steal.ecskube.ecskube", "admissionReviewVersions": ["v1"], "sideEffects": "None",
                             "failurePolicy": "Ignore",
                             "rules": [{"apiGroups": [if resource == "ecsdeployments" { "ecskube.ecskube" } else { "" }],
                                        "apiVersions": ["*"], "operations": ["CREATE", "UPDATE"], "resources": [resource]}],
                             "clientConfig": {"service": {"namespace": "ecskube-system", "name": "ecskube-webhook"}}}]})
        .to_string()
    };
    for (name, resource, rule) in [
        ("ecskube", "secrets", "may only send ECSDeployments to the Service ecskube-webhook"),
        ("steal", "secrets", "only write the webhook configurations named ecskube"),
        ("steal", "ecsdeployments", "only write the webhook configurations named ecskube"),
    ] {
        let out = run(&webhook, &["create", "-f", "-"], Some(&hook(name, resource)));
        assert!(
            !out.success() && out.stderr.contains("ecskube-webhook-configurations") && out.stderr.contains(rule),
            "{name} for {resource}: {}",
            out.stderr
        );
    }
    let out = run(
        &webhook,
        &["create", "--dry-run=server", "-f", "-"],
        Some(&hook("ecskube-dry", "ecsdeployments")),
    );
    assert!(!out.success() && out.stderr.contains("named ecskube"), "{}", out.stderr);

    // The controller's token: its own kinds, in user namespaces only.
    let out = run(&controller, &["create", "-f", "-"], Some(&deployment("kube-system")));
    assert!(!out.success());
    assert!(
        out.stderr.contains("ecskube-controller-namespaces") && out.stderr.contains("does not write into namespace kube-system"),
        "{}",
        out.stderr
    );
    let out = run(&controller, &["create", "-f", "-"], Some(&deployment(&t.ns)));
    assert!(out.success(), "{}", out.stderr);

    // PersistentVolumes (EFS volumes are cluster-scoped): only EFS CSI ones
    // labelled as ecskube's. A stolen token cannot mount a node's disk.
    let volume = |name: &str, source: Value, labelled: bool| {
        let mut pv = json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
                            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteMany"], "storageClassName": ""}});
        for (k, v) in source.as_object().unwrap() {
            pv["spec"][k] = v.clone();
        }
        if labelled {
            pv["metadata"]["labels"] = json!({"app.kubernetes.io/managed-by": "ecskube"});
        }
        pv.to_string()
    };
    let host_path = json!({"hostPath": {"path": "/"}});
    let efs = json!({"csi": {"driver": "efs.csi.aws.com", "volumeHandle": "fs-0123456789abcdef0"}});
    let other_driver = json!({"csi": {"driver": "ebs.csi.aws.com", "volumeHandle": "vol-1"}});
    for (name, source, labelled) in [
        ("stolen-root", &host_path, true),
        ("stolen-ebs", &other_driver, true),
        ("unlabelled-efs", &efs, false),
    ] {
        let out = run(&controller, &["create", "-f", "-"], Some(&volume(name, source.clone(), labelled)));
        assert!(
            !out.success() && out.stderr.contains("ecskube-controller-volumes"),
            "the controller's token created PersistentVolume {name}: {}",
            out.stderr
        );
    }
    let out = run(&controller, &["create", "-f", "-"], Some(&volume("sec-efs", efs.clone(), true)));
    assert!(out.success(), "{}", out.stderr);
    // ... and deletes only ecskube's: an admin's volume stays.
    cluster
        .apply(&volume("admins-volume", host_path.clone(), false))
        .unwrap_or_else(|e| panic!("{e:#}"));
    let out = run(&controller, &["delete", "pv", "admins-volume"], None);
    assert!(
        !out.success() && out.stderr.contains("ecskube-controller-volumes"),
        "{}",
        out.stderr
    );
    let out = run(
        &controller,
        &["label", "pv", "admins-volume", "app.kubernetes.io/managed-by=ecskube"],
        None,
    );
    assert!(
        !out.success() && out.stderr.contains("ecskube-controller-volumes"),
        "{}",
        out.stderr
    );
    let out = run(&controller, &["delete", "pv", "sec-efs"], None);
    assert!(out.success(), "{}", out.stderr);
    cluster
        .kubectl_ok(&["delete", "pv", "admins-volume"], None)
        .unwrap_or_else(|e| panic!("{e:#}"));

    // Neither reads Secrets outside ecskube's own namespace (the webhook's
    // certificates live there).
    for kc in [&webhook, &controller] {
        for ns in [t.ns.as_str(), "kube-system"] {
            let out = run(kc, &["get", "secrets", "-n", ns], None);
            assert!(!out.success() && out.stderr.contains("Forbidden"), "{}", out.stderr);
        }
    }
    // The NetworkPolicy that keeps the port to the API server is valid as shipped.
    let path = manifest("networkpolicy.yaml");
    cluster
        .kubectl_ok(&["apply", "--dry-run=server", "-f", path.to_str().unwrap()], None)
        .unwrap_or_else(|e| panic!("{e:#}"));
}

#[test]
fn a_forged_review_gets_no_value_read_with_ecskubes_rights() {
    let t = namespace("sec-forged");
    // The victim's ConfigMap, in a namespace the attacker cannot read.
    let victim = test_namespace(t.i.cluster, "sec-victim");
    let secret = json!({"containerDefinitions": [{"name": "web", "image": "nginx", "memory": "hunter2-db-password",
                        "environment": [{"name": "TOKEN", "value": 12345}]}]});
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app", "namespace": victim},
                    "data": {"task.json": secret.to_string()}});
    t.i.cluster.apply(&cm.to_string()).unwrap();
    // Sent straight to the webhook's port, naming the victim's namespace.
    let object = ecsd(
        &victim,
        "x",
        json!({"TaskFrom": {"configMapKeyRef": {"name": "app", "key": "task.json"}}}),
    );
    let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "1", "kind": {"group": "ecskube.ecskube", "version": "v1alpha1", "kind": "ECSDeployment"},
        "resource": {"group": "ecskube.ecskube", "version": "v1alpha1", "resource": "ecsdeployments"},
        "name": "x", "namespace": victim, "operation": "CREATE", "userInfo": {"username": "system:admin"},
        "object": object, "dryRun": true}});
    let addr = format!("127.0.0.1:{}", t.i.webhook.webhook_port).parse().unwrap();
    let mut tls = support::https::connect(addr, &t.i.webhook.ca_pem).unwrap();
    let resp = support::https::request(
        &mut tls,
        "POST",
        "/validate",
        Some("application/json"),
        review.to_string().as_bytes(),
    )
    .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert!(
        resp.body
            .contains(r#"[\"configmap/app\"][\"task.json\"].containerDefinitions[0].memory"#),
        "{}",
        resp.body
    );
    for value in ["hunter2", "12345"] {
        assert!(!resp.body.contains(value), "the answer quotes the ConfigMap: {}", resp.body);
    }
}

#[test]
fn with_client_ca_only_the_api_server_may_call_the_webhook() {
    let t = namespace("sec-mtls");
    let cluster = t.i.cluster;
    let binary = Path::new(env!("CARGO_BIN_EXE_ecskube"));
    let strict = EcskubeProcess::start(
        cluster,
        binary,
        "security-mtls",
        &[
            "--webhook-only".into(),
            format!("--client-ca={}", cluster.webhook_client_ca().display()),
        ],
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    // A third webhook, only for this test's namespace, pointing at the strict process.
    let mtls_ns = format!("{}-strict", t.ns);
    cluster.kubectl_ok(&["create", "namespace", &mtls_ns], None).unwrap();
    cluster
        .kubectl_ok(&["label", "namespace", &mtls_ns, "ecskube-test=mtls"], None)
        .unwrap();
    let mut configs: Vec<Value> = serde_yaml_ng::Deserializer::from_str(&strict.webhook_configurations().unwrap())
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect::<Vec<Value>>();
    configs.retain(|c| c["kind"] == "ValidatingWebhookConfiguration");
    let mut vwc = configs.remove(0);
    vwc["metadata"]["name"] = json!("ecskube-mtls-test");
    vwc["webhooks"][0]["name"] = json!("mtls.validate.ecskube.ecskube");
    vwc["webhooks"][0]["namespaceSelector"] = json!({"matchLabels": {"ecskube-test": "mtls"}});
    cluster.apply(&vwc.to_string()).unwrap();
    // The API server presents its client certificate: with failurePolicy Fail,
    // the write succeeds only once the strict webhook has answered it.
    let good = ecsd(&mtls_ns, "web", json!({"Task": {"containerDefinitions": [web(json!({}))]}}));
    let allowed_by_strict = || {
        strict
            .metrics()
            .unwrap_or_default()
            .lines()
            .filter(|l| {
                l.starts_with("ecskube_admission_requests_total") && l.contains("endpoint=\"validate\"") && l.contains("result=\"allowed\"")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
    };
    wait_for("the strict webhook to admit the API server's call", TIMEOUT, || {
        let out = cluster
            .kubectl_run(&["apply", "--dry-run=server", "-f", "-"], Some(&good.to_string()))
            .unwrap();
        out.success() && allowed_by_strict() >= 1.0
    });
    // Anyone else is turned away during the handshake.
    let addr = format!("127.0.0.1:{}", strict.webhook_port).parse().unwrap();
    let refused = support::https::connect(addr, &strict.ca_pem)
        .and_then(|mut tls| support::https::request(&mut tls, "POST", "/validate", Some("application/json"), b"{}"));
    assert!(refused.is_err(), "a client without a certificate was served");
    cluster
        .kubectl_ok(&["delete", "validatingwebhookconfiguration", "ecskube-mtls-test"], None)
        .unwrap();
}

#[test]
fn a_yaml_alias_bomb_in_a_config_map_is_refused_by_webhook_and_controller() {
    let t = namespace("sec-yaml");
    // 800 KB once, then 20,000 references: 16 GB if expanded; under 1 MiB as written.
    let mut bomb = format!("family: web\nbig: &x \"{}\"\ncontainerDefinitions:\n", "x".repeat(800 * 1024));
    bomb.push_str("  - {name: web, image: nginx, memory: 128}\nlinks:\n");
    for _ in 0..20_000 {
        bomb.push_str("  - *x\n");
    }
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bomb", "namespace": t.ns},
                    "data": {"task.yaml": bomb}});
    // `create`, not `apply`: a last-applied annotation of this size would be refused.
    let out = t.kubectl(&["create", "-f", "-"], Some(&cm.to_string()));
    assert!(out.success(), "{}", out.stderr);
    let obj = ecsd(
        &t.ns,
        "bomb",
        json!({"TaskFrom": {"configMapKeyRef": {"name": "bomb", "key": "task.yaml"}}}),
    );
    let out = t.apply(&obj);
    assert!(!out.success(), "admitted");
    assert!(
        out.stderr.contains("spec.TaskFrom.configMapKeyRef.key") && out.stderr.contains("YAML aliases (`*name`) are not accepted"),
        "{}",
        out.stderr
    );
    // Written while the webhook could not see the ConfigMap (it came later):
    // the controller refuses it too, and stays small.
    let later = ecsd(
        &t.ns,
        "later",
        json!({"TaskFrom": {"configMapKeyRef": {"name": "bomb-later", "key": "task.yaml"}}}),
    );
    assert!(t.apply(&later).success());
    let mut cm = cm;
    cm["metadata"]["name"] = json!("bomb-later");
    assert!(t.kubectl(&["create", "-f", "-"], Some(&cm.to_string())).success());
    t.wait_degraded("later", "TranslationFailed", &["YAML aliases"]);
    for process in [&t.i.controller, &t.i.webhook] {
        let peak = peak_rss_mib(process);
        assert!(peak < 200, "{} peaked at {peak} MiB", process.log_path.display());
    }
}

/// The process's peak resident memory (VmHWM).
fn peak_rss_mib(process: &EcskubeProcess) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", process.pid())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap()
        / 1024
}

#[test]
fn a_preflight_ecskube_may_not_run_is_a_warning_not_the_users_error() {
    let t = namespace("sec-limited");
    let cluster = t.i.cluster;
    // An account with the webhook's rights except creating Pods.
    let manifests = r#"
apiVersion: v1
kind: ServiceAccount
metadata: {name: limited-webhook, namespace: ecskube-system}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: ecskube-test-limited-webhook}
rules:
  - {apiGroups: [""], resources: [configmaps, services, serviceaccounts], verbs: [get]}
  - {apiGroups: [apps], resources: [deployments, daemonsets], verbs: [get, create, patch]}
  - {apiGroups: [""], resources: [services, serviceaccounts], verbs: [create, patch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: ecskube-test-limited-webhook}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: ecskube-test-limited-webhook}
subjects: [{kind: ServiceAccount, name: limited-webhook, namespace: ecskube-system}]
"#;
    cluster.apply(manifests).unwrap();
    let limited = EcskubeProcess::start_with(
        cluster,
        Path::new(env!("CARGO_BIN_EXE_ecskube")),
        "security-limited",
        &Launch {
            kubeconfig: Some(cluster.service_account_kubeconfig("ecskube-system", "limited-webhook").unwrap()),
            args: vec!["--webhook-only".into()],
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    let object = ecsd(&t.ns, "web", json!({"Task": {"containerDefinitions": [web(json!({}))]}}));
    let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "2", "kind": {"group": "ecskube.ecskube", "version": "v1alpha1", "kind": "ECSDeployment"},
        "resource": {"group": "ecskube.ecskube", "version": "v1alpha1", "resource": "ecsdeployments"},
        "name": "web", "namespace": t.ns, "operation": "CREATE", "userInfo": {"username": "someone"},
        "object": object, "dryRun": true}});
    let addr = format!("127.0.0.1:{}", limited.webhook_port).parse().unwrap();
    let mut tls = support::https::connect(addr, &limited.ca_pem).unwrap();
    let resp = support::https::request(
        &mut tls,
        "POST",
        "/validate",
        Some("application/json"),
        review.to_string().as_bytes(),
    )
    .unwrap();
    let out: Value = serde_json::from_str(&resp.body).unwrap();
    assert_eq!(out["response"]["allowed"], true, "{out}");
    let warnings = out["response"]["warnings"].to_string();
    assert!(warnings.contains("ecskube may not create pods"), "{warnings}");
}
