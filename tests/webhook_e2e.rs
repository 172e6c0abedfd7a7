//! The admission webhook end to end: the real kube-apiserver calls
//! `ecskube serve` (a separate process, real TLS), and `kubectl` shows what
//! users see.

mod support;

use ecskube::devcluster::ecskube::{wait_until_webhook_called, EcskubeProcess};
use ecskube::devcluster::DevCluster;
use std::sync::OnceLock;
use support::{shared_cluster, test_namespace, DumpLogsOnPanic};

const POLICY: &str = "allowedImagePrefixes: []\nfields:\n  - path: task.containerDefinitions[*].dockerLabels\n    action: forbid\n    name: no-docker-labels\n";

/// One `ecskube serve` (webhook and controller, as deployed) for the test
/// binary, installed into the shared cluster once the API server calls it.
fn webhook() -> (&'static DevCluster, &'static EcskubeProcess) {
    static SERVER: OnceLock<EcskubeProcess> = OnceLock::new();
    let cluster = shared_cluster();
    let server = SERVER.get_or_init(|| {
        let policy = cluster.work_dir().join("e2e-policy.yaml");
        std::fs::write(&policy, POLICY).unwrap();
        let args = vec![format!("--policy={}", policy.display())];
        let server = EcskubeProcess::start(cluster, std::path::Path::new(env!("CARGO_BIN_EXE_ecskube")), "ecskube-serve", &args)
            .unwrap_or_else(|e| panic!("{e:#}"));
        server.install(cluster).unwrap_or_else(|e| panic!("{e:#}\n{}", server.log_tail(40)));
        wait_until_webhook_called(cluster, std::time::Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e:#}"));
        server
    });
    (cluster, server)
}

/// `kubectl get` of something that must not exist: NotFound, not any failure.
fn assert_not_found(cluster: &DevCluster, kind: &str, name: &str, ns: &str) {
    let out = cluster.kubectl_run(&["get", kind, name, "-n", ns], None).unwrap();
    assert!(
        !out.success() && out.stderr.contains("NotFound"),
        "{kind}/{name}: {}{}",
        out.stdout,
        out.stderr
    );
}

fn sample(name: &str) -> String {
    std::fs::read_to_string(format!("{}/samples/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// The sample, placed in a namespace (its own says `default`).
fn in_namespace(manifest: &str, ns: &str) -> String {
    let mut v: serde_json::Value = serde_json::from_str(manifest).unwrap();
    v["metadata"]["namespace"] = ns.into();
    v.to_string()
}

#[test]
fn applying_each_sample_succeeds_and_stores_the_defaults() {
    let (cluster, server) = webhook();
    let _logs = DumpLogsOnPanic(cluster);
    let ns = test_namespace(cluster, "wh-samples");
    for file in ["ecsdeployment.json", "wordpress-links.json"] {
        let out = cluster
            .kubectl_run(&["apply", "-f", "-"], Some(&in_namespace(&sample(file), &ns)))
            .unwrap();
        assert!(out.success(), "{file}: {}\n{}", out.stderr, server.log_tail(20));
    }
    let stored = cluster
        .kubectl_ok(&["get", "ecsd", "ecs-demo-deploy", "-n", &ns, "-o", "json"], None)
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(
        v["spec"]["Task"]["Properties"]["Family"], "ecs-demo-deploy",
        "mutating webhook injected the family"
    );
    assert_eq!(v["spec"]["Task"]["Properties"]["ContainerDefinitions"][0]["Essential"], true);
    assert_eq!(
        v["spec"]["Task"]["Properties"]["ContainerDefinitions"][0]["PortMappings"][0]["Protocol"],
        "tcp"
    );
}

#[test]
fn an_invalid_object_fails_and_kubectl_shows_every_error_with_its_path() {
    let (cluster, _) = webhook();
    let _logs = DumpLogsOnPanic(cluster);
    let ns = test_namespace(cluster, "wh-invalid");
    let mut v: serde_json::Value = serde_json::from_str(&sample("ecsdeployment.json")).unwrap();
    v["metadata"]["namespace"] = ns.clone().into();
    v["spec"]["Task"]["Properties"]["ContainerDefinitions"][0]["Imagee"] = "x".into();
    v["spec"]["Service"]["LoadBalancers"][0]["ContainerPort"] = 8080.into();
    for dry_run in [false, true] {
        let mut args = vec!["apply", "-f", "-"];
        if dry_run {
            args.push("--dry-run=server");
        }
        let out = cluster.kubectl_run(&args, Some(&v.to_string())).unwrap();
        assert!(!out.success());
        assert!(
            out.stderr.contains("spec.Task.Properties.ContainerDefinitions[0].Imagee"),
            "{}",
            out.stderr
        );
        assert!(out.stderr.contains("did you mean `Image`"), "{}", out.stderr);
        assert!(out.stderr.contains("spec.Service.LoadBalancers[0].ContainerPort"), "{}", out.stderr);
    }
    assert_not_found(cluster, "ecsd", "ecs-demo-deploy", &ns);
}

#[test]
fn warnings_are_printed_by_kubectl_and_server_dry_run_stores_nothing() {
    let (cluster, _) = webhook();
    let _logs = DumpLogsOnPanic(cluster);
    let ns = test_namespace(cluster, "wh-dry");
    let manifest = in_namespace(&sample("ecsdeployment.json"), &ns);
    let out = cluster
        .kubectl_run(&["apply", "--dry-run=server", "-f", "-"], Some(&manifest))
        .unwrap();
    assert!(out.success(), "{}", out.stderr);
    assert!(out.stderr.contains("Warning:") && out.stderr.contains("HostPort"), "{}", out.stderr);
    assert_not_found(cluster, "ecsd", "ecs-demo-deploy", &ns);
    // Nor did the preflight leave anything of its own dry runs behind.
    for kind in ["pods", "deployments", "services", "serviceaccounts"] {
        let out = cluster.kubectl_ok(&["get", kind, "-n", &ns, "-o", "name"], None).unwrap();
        let left: Vec<&str> = out
            .lines()
            .filter(|l| !l.ends_with("/default") && !l.ends_with("/kube-root-ca.crt"))
            .collect();
        assert!(left.is_empty(), "{kind} left behind: {left:?}");
    }
}

#[test]
fn a_policy_denial_reaches_kubectl() {
    let (cluster, _) = webhook();
    let _logs = DumpLogsOnPanic(cluster);
    let ns = test_namespace(cluster, "wh-policy");
    let mut v: serde_json::Value = serde_json::from_str(&sample("ecsdeployment.json")).unwrap();
    v["metadata"]["namespace"] = ns.into();
    v["spec"]["Task"]["Properties"]["ContainerDefinitions"][1]["DockerLabels"] = serde_json::json!({"team": "a"});
    let out = cluster.kubectl_run(&["apply", "-f", "-"], Some(&v.to_string())).unwrap();
    assert!(!out.success());
    assert!(out.stderr.contains("no-docker-labels"), "{}", out.stderr);
    assert!(
        out.stderr.contains("spec.Task.Properties.ContainerDefinitions[1].DockerLabels"),
        "{}",
        out.stderr
    );
}

#[test]
fn preflight_rejects_a_privileged_container_in_a_baseline_namespace() {
    let (cluster, _) = webhook();
    let _logs = DumpLogsOnPanic(cluster);
    let ns = test_namespace(cluster, "wh-baseline");
    // `baseline` admits the unmodified sample: only Privileged can be the reason.
    cluster
        .kubectl_ok(&["label", "namespace", &ns, "pod-security.kubernetes.io/enforce=baseline"], None)
        .unwrap();
    let out = cluster
        .kubectl_run(
            &["apply", "--dry-run=server", "-f", "-"],
            Some(&in_namespace(&sample("ecsdeployment.json"), &ns)),
        )
        .unwrap();
    assert!(out.success(), "the unmodified sample: {}", out.stderr);
    let mut v: serde_json::Value = serde_json::from_str(&sample("ecsdeployment.json")).unwrap();
    v["metadata"]["namespace"] = ns.into();
    v["spec"]["Task"]["Properties"]["ContainerDefinitions"][1]["Privileged"] = true.into();
    let out = cluster.kubectl_run(&["apply", "-f", "-"], Some(&v.to_string())).unwrap();
    assert!(!out.success());
    assert!(out.stderr.contains("PodSecurity"), "{}", out.stderr);
    assert!(
        out.stderr.contains("spec.Task.Properties.ContainerDefinitions[1].Privileged"),
        "{}",
        out.stderr
    );
}

#[test]
fn task_from_a_config_map_is_read_and_checked_and_a_missing_one_only_warns() {
    let (cluster, _) = webhook();
    let _logs = DumpLogsOnPanic(cluster);
    let ns = test_namespace(cluster, "wh-configmap");
    let object = |name: &str, cm: &str| {
        serde_json::json!({"apiVersion": "ecskube.ecskube/v1alpha1", "kind": "ECSDeployment", "metadata": {"name": name, "namespace": ns},
            "spec": {"TaskFrom": {"configMapKeyRef": {"name": cm, "key": "task.json"}}}})
        .to_string()
    };
    // Create order does not matter: a missing ConfigMap is a warning.
    let out = cluster
        .kubectl_run(&["apply", "-f", "-"], Some(&object("later", "not-yet")))
        .unwrap();
    assert!(out.success(), "{}", out.stderr);
    assert!(out.stderr.contains("Warning:") && out.stderr.contains("not-yet"), "{}", out.stderr);
    // A ConfigMap with a broken task: the error points into the ConfigMap key.
    let task = r#"{"family": "web", "containerDefinitions": [{"name": "web", "image": "nginx", "memory": 2}]}"#;
    cluster
        .kubectl_ok(
            &[
                "create",
                "configmap",
                "web-task",
                "-n",
                &ns,
                &format!("--from-literal=task.json={task}"),
            ],
            None,
        )
        .unwrap();
    let out = cluster
        .kubectl_run(&["apply", "-f", "-"], Some(&object("web", "web-task")))
        .unwrap();
    assert!(!out.success());
    assert!(
        out.stderr
            .contains(r#"["configmap/web-task"]["task.json"].containerDefinitions[0].memory"#),
        "{}",
        out.stderr
    );
}

#[test]
fn preflight_refuses_to_take_over_an_object_it_does_not_own() {
    let (cluster, _) = webhook();
    let _logs = DumpLogsOnPanic(cluster);
    let ns = test_namespace(cluster, "wh-collision");
    cluster
        .kubectl_ok(&["create", "deployment", "ecs-demo-deploy", "--image=nginx", "-n", &ns], None)
        .unwrap();
    let out = cluster
        .kubectl_run(&["apply", "-f", "-"], Some(&in_namespace(&sample("ecsdeployment.json"), &ns)))
        .unwrap();
    assert!(!out.success());
    assert!(
        out.stderr.contains("already exists") && out.stderr.contains("not managed by this ECSDeployment"),
        "{}",
        out.stderr
    );
}

fn object(ns: &str, name: &str, spec: serde_json::Value) -> serde_json::Value {
    serde_json::json!({"apiVersion": "ecskube.ecskube/v1alpha1", "kind": "ECSDeployment",
        "metadata": {"name": name, "namespace": ns}, "spec": spec})
}

fn apply(cluster: &DevCluster, v: &serde_json::Value) -> ecskube::devcluster::KubectlOutput {
    cluster.kubectl_run(&["apply", "-f", "-"], Some(&v.to_string())).unwrap()
}

fn wait_deployment(cluster: &DevCluster, ns: &str, name: &str) -> serde_json::Value {
    let mut found = serde_json::Value::Null;
    support::wait_for(&format!("deployment/{name}"), std::time::Duration::from_secs(120), || {
        let out = cluster
            .kubectl_run(&["get", "deployment", name, "-n", ns, "-o", "json"], None)
            .unwrap();
        out.success() && {
            found = serde_json::from_str(&out.stdout).unwrap();
            true
        }
    });
    found
}

#[test]
fn the_irsa_sample_applies_with_and_without_pod_security_restricted() {
    let (cluster, server) = webhook();
    let _logs = DumpLogsOnPanic(cluster);
    for restricted in [false, true] {
        let ns = test_namespace(cluster, "wh-irsa");
        if restricted {
            cluster
                .kubectl_ok(&["label", "namespace", &ns, "pod-security.kubernetes.io/enforce=restricted"], None)
                .unwrap();
        }
        // The ServiceAccount does not exist yet: the dry-run Pod must not trip over that.
        let out = apply(cluster, &serde_json::from_str(&in_namespace(&sample("irsa.json"), &ns)).unwrap());
        assert!(out.success(), "restricted={restricted}: {}\n{}", out.stderr, server.log_tail(20));
        let d = wait_deployment(cluster, &ns, "orders-api");
        assert_eq!(d["spec"]["template"]["spec"]["serviceAccountName"], "orders-api");
        let sa = cluster
            .kubectl_ok(&["get", "serviceaccount", "orders-api", "-n", &ns, "-o", "json"], None)
            .unwrap();
        assert!(sa.contains("arn:aws:iam::123456789012:role/apps-orders-api"), "{sa}");
    }
}

#[test]
fn a_dotted_name_is_updated_once_its_children_exist() {
    let (cluster, _) = webhook();
    let _logs = DumpLogsOnPanic(cluster);
    let ns = test_namespace(cluster, "wh-dotted");
    let spec = |image: &str| {
        serde_json::json!({"Task": {"family": "web-v2", "containerDefinitions": [
            {"name": "web", "image": image, "memory": 64, "portMappings": [{"containerPort": 80}]}]}})
    };
    let out = apply(cluster, &object(&ns, "web.v2", spec("nginx:1")));
    assert!(out.success(), "{}", out.stderr);
    wait_deployment(cluster, &ns, "web-v2");
    // Children named `web-v2` are owned (by uid) by `web.v2`: an update is not a collision.
    let out = apply(cluster, &object(&ns, "web.v2", spec("nginx:2")));
    assert!(out.success(), "{}", out.stderr);
    support::wait_for("the update to roll", std::time::Duration::from_secs(120), || {
        wait_deployment(cluster, &ns, "web-v2")["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:2"
    });
}

#[test]
fn an_admission_policys_denial_is_an_error_whatever_its_wording() {
    let (cluster, _) = webhook();
    let _logs = DumpLogsOnPanic(cluster);
    let ns = test_namespace(cluster, "wh-vap");
    cluster
        .kubectl_ok(&["label", "namespace", &ns, "ecskube-test=no-latest"], None)
        .unwrap();
    // A policy whose message contains "cannot", as RBAC's do.
    let vap = format!(
        r#"{{"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy", "metadata": {{"name": "no-latest-{ns}"}},
            "spec": {{"failurePolicy": "Fail", "matchConstraints": {{"resourceRules": [{{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}}],
                     "namespaceSelector": {{"matchLabels": {{"ecskube-test": "no-latest"}}}}}},
            "validations": [{{"expression": "object.spec.containers.all(c, !c.image.endsWith(':latest'))", "message": "you cannot run :latest images here"}}]}}}}"#
    );
    let binding = format!(
        r#"{{"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding", "metadata": {{"name": "no-latest-{ns}"}},
            "spec": {{"policyName": "no-latest-{ns}", "validationActions": ["Deny"]}}}}"#
    );
    cluster.apply(&vap).unwrap();
    cluster.apply(&binding).unwrap();
    let latest = object(
        &ns,
        "web",
        serde_json::json!({"Task": {"containerDefinitions": [{"name": "web", "image": "nginx:latest", "memory": 64}]}}),
    );
    support::wait_for("the policy to refuse the preflight Pod", std::time::Duration::from_secs(60), || {
        let out = cluster
            .kubectl_run(&["apply", "--dry-run=server", "-f", "-"], Some(&latest.to_string()))
            .unwrap();
        !out.success() && out.stderr.contains("you cannot run :latest images here")
    });
    let out = apply(cluster, &latest);
    assert!(!out.success(), "admitted: {}", out.stderr);
    assert!(out.stderr.contains("spec.Task: the cluster refuses the Pod"), "{}", out.stderr);
    assert_not_found(cluster, "ecsd", "web", &ns);
    cluster
        .kubectl_ok(&["delete", "validatingadmissionpolicybinding", &format!("no-latest-{ns}")], None)
        .unwrap();
    cluster
        .kubectl_ok(&["delete", "validatingadmissionpolicy", &format!("no-latest-{ns}")], None)
        .unwrap();
}

#[test]
fn a_full_resource_quota_warns_unless_the_workload_itself_does_not_fit() {
    let (cluster, server) = webhook();
    let _logs = DumpLogsOnPanic(cluster);
    let ns = test_namespace(cluster, "wh-quota");
    let quota = format!(
        r#"{{"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {{"name": "team", "namespace": "{ns}"}}, "spec": {{"hard": {{"pods": "2"}}}}}}"#
    );
    cluster.apply(&quota).unwrap();
    let spec = |count: i64, image: &str| {
        serde_json::json!({"Task": {"containerDefinitions": [{"name": "web", "image": image, "memory": 64}]},
                           "Service": {"desiredCount": count, "deploymentConfiguration": {"maximumPercent": 100, "minimumHealthyPercent": 0}}})
    };
    assert!(apply(cluster, &object(&ns, "web", spec(2, "nginx:1"))).success());
    // Both pods run: the namespace is at its quota.
    support::wait_for("2 running pods", std::time::Duration::from_secs(120), || {
        let out = cluster
            .kubectl_ok(
                &["get", "pods", "-n", &ns, "--field-selector=status.phase=Running", "-o", "name"],
                None,
            )
            .unwrap();
        out.lines().count() == 2
    });
    // Scaling down (and changing the image) must not be blocked by the dry-run Pod's own share.
    let out = apply(cluster, &object(&ns, "web", spec(1, "nginx:2")));
    assert!(out.success(), "{}\n{}", out.stderr, server.log_tail(10));
    assert!(
        out.stderr.contains("Warning:") && out.stderr.contains("ResourceQuota has no room"),
        "{}",
        out.stderr
    );
    // Three replicas cannot fit two pods of quota, now or ever.
    let out = apply(cluster, &object(&ns, "web", spec(3, "nginx:2")));
    assert!(!out.success(), "admitted");
    assert!(out.stderr.contains("more than ResourceQuota \"team\" allows"), "{}", out.stderr);
}

#[test]
fn unchanged_specs_and_deletions_are_never_judged_again() {
    let (cluster, _) = webhook();
    let _logs = DumpLogsOnPanic(cluster);
    let ns = test_namespace(cluster, "wh-noop");
    let mut v: serde_json::Value = serde_json::from_str(&sample("ecsdeployment.json")).unwrap();
    v["metadata"]["namespace"] = ns.clone().into();
    v["spec"]["Task"]["Properties"]["ContainerDefinitions"][1]["Privileged"] = true.into();
    assert!(apply(cluster, &v).success());
    wait_deployment(cluster, &ns, "ecs-demo-deploy");
    // The namespace tightens: the stored object would be refused if it came now.
    cluster
        .kubectl_ok(&["label", "namespace", &ns, "pod-security.kubernetes.io/enforce=baseline"], None)
        .unwrap();
    let mut changed = v.clone();
    changed["spec"]["Service"]["DesiredCount"] = 2.into();
    let out = apply(cluster, &changed);
    assert!(!out.success() && out.stderr.contains("Privileged"), "{}", out.stderr);
    // A label is not a change of what runs.
    let out = cluster
        .kubectl_run(&["label", "ecsd", "ecs-demo-deploy", "-n", &ns, "team=web"], None)
        .unwrap();
    assert!(out.success(), "{}", out.stderr);
    // Foreground deletion (the garbage collector edits finalizers) finishes.
    let out = cluster
        .kubectl_run(
            &[
                "delete",
                "ecsd",
                "ecs-demo-deploy",
                "-n",
                &ns,
                "--cascade=foreground",
                "--timeout=120s",
            ],
            None,
        )
        .unwrap();
    assert!(out.success(), "{}", out.stderr);
    assert_not_found(cluster, "ecsd", "ecs-demo-deploy", &ns);
}

#[test]
fn updates_through_kubectl_are_judged_and_warned_like_creates() {
    let (cluster, _) = webhook();
    let _logs = DumpLogsOnPanic(cluster);
    let ns = test_namespace(cluster, "wh-update");
    let spec = |strategy: &str, image: &str| {
        serde_json::json!({"Task": {"containerDefinitions": [{"name": "agent", "image": image, "memory": 64}]},
                           "Service": {"schedulingStrategy": strategy}})
    };
    assert!(apply(cluster, &object(&ns, "agent", spec("REPLICA", "agent:1"))).success());
    // An edit that becomes invalid is refused, and the stored object stays as it was.
    let mut bad = object(&ns, "agent", spec("REPLICA", "agent:2"));
    bad["spec"]["Task"]["containerDefinitions"][0]["memory"] = 2.into();
    let out = apply(cluster, &bad);
    assert!(
        !out.success() && out.stderr.contains("containerDefinitions[0].memory"),
        "{}",
        out.stderr
    );
    let stored = cluster
        .kubectl_ok(&["get", "ecsd", "agent", "-n", &ns, "-o", "json"], None)
        .unwrap();
    assert!(stored.contains("agent:1") && !stored.contains("agent:2"), "{stored}");
    // Switching to DAEMON is allowed, with the warning that every task is recreated.
    let out = apply(cluster, &object(&ns, "agent", spec("DAEMON", "agent:1")));
    assert!(out.success(), "{}", out.stderr);
    assert!(
        out.stderr.contains("Warning:") && out.stderr.contains("replaces the Deployment with a DaemonSet"),
        "{}",
        out.stderr
    );

    // ServiceFrom: the service definition from a ConfigMap, checked on update too.
    let service = |count: i64| serde_json::json!({"desiredCount": count}).to_string();
    cluster
        .kubectl_ok(
            &[
                "create",
                "configmap",
                "svc",
                "-n",
                &ns,
                &format!("--from-literal=service.json={}", service(1)),
            ],
            None,
        )
        .unwrap();
    let from = |image: &str| {
        object(
            &ns,
            "web",
            serde_json::json!({"Task": {"containerDefinitions": [{"name": "web", "image": image, "memory": 64}]},
                                               "ServiceFrom": {"configMapKeyRef": {"name": "svc", "key": "service.json"}}}),
        )
    };
    assert!(apply(cluster, &from("nginx:1")).success());
    let bad_service = serde_json::json!({"desiredCount": -3}).to_string();
    cluster
        .kubectl_ok(
            &[
                "create",
                "configmap",
                "svc",
                "-n",
                &ns,
                &format!("--from-literal=service.json={bad_service}"),
                "--dry-run=client",
                "-o",
                "yaml",
            ],
            None,
        )
        .and_then(|yaml| cluster.kubectl_ok(&["replace", "-f", "-"], Some(&yaml)))
        .unwrap();
    let out = apply(cluster, &from("nginx:2"));
    assert!(!out.success(), "admitted");
    assert!(
        out.stderr.contains(r#"["configmap/svc"]["service.json"].desiredCount"#),
        "{}",
        out.stderr
    );
}

#[test]
fn probes_and_metrics_answer_over_http_and_count_what_happens() {
    let (cluster, server) = webhook();
    let _logs = DumpLogsOnPanic(cluster);
    let ns = test_namespace(cluster, "wh-metrics");
    let get = |path: &str| ecskube::devcluster::ecskube::http_get(server.probe_port, path).unwrap();
    assert_eq!(get("/healthz"), (200, "ok".to_string()));
    assert_eq!(get("/readyz").0, 200);
    let counter = |prefix: &str| -> f64 {
        get("/metrics")
            .1
            .lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    let allowed = r#"ecskube_admission_requests_total{endpoint="validate",result="allowed"}"#;
    let denied = r#"ecskube_admission_requests_total{endpoint="validate",result="denied"}"#;
    let (allowed_before, denied_before) = (counter(allowed), counter(denied));
    let reconciles_before = counter("ecskube_reconciles_total");
    assert!(apply(
        cluster,
        &serde_json::from_str(&in_namespace(&sample("ecsdeployment.json"), &ns)).unwrap()
    )
    .success());
    let mut bad: serde_json::Value = serde_json::from_str(&in_namespace(&sample("ecsdeployment.json"), &ns)).unwrap();
    bad["spec"]["Task"]["Properties"]["ContainerDefinitions"][0]["Memory"] = 1.into();
    assert!(!apply(cluster, &bad).success());
    // Other tests share the server: at least ours were counted.
    assert!(counter(allowed) >= allowed_before + 1.0);
    assert!(counter(denied) >= denied_before + 1.0);
    support::wait_for("a reconcile of the new object", std::time::Duration::from_secs(60), || {
        counter("ecskube_reconciles_total") > reconciles_before
    });
    let (code, text) = get("/metrics");
    assert_eq!(code, 200);
    assert!(text.ends_with("# EOF\n"), "OpenMetrics text ends with # EOF");
    assert!(text.contains("ecskube_controller_leading 1"), "{text}");
}

#[test]
fn kubectl_prints_every_warning_the_webhook_sends_clipped_as_designed() {
    let (cluster, _) = webhook();
    let _logs = DumpLogsOnPanic(cluster);
    let ns = test_namespace(cluster, "wh-warnings");
    let mut v: serde_json::Value = serde_json::from_str(&in_namespace(&sample("ecsdeployment.json"), &ns)).unwrap();
    let c = v["spec"]["Task"]["Properties"]["ContainerDefinitions"][0].clone();
    let list: Vec<serde_json::Value> = (0..10)
        .map(|i| {
            let mut c = c.clone();
            c["Name"] = format!("app-{i}").into();
            c["Secrets"] = (0..15)
                .map(|j| serde_json::json!({"Name": format!("SOME_RATHER_LONG_SECRET_NAME_{j:02}"), "ValueFrom": "arn:aws:ssm:us-east-1:1:parameter/p"}))
                .collect();
            c
        })
        .collect();
    v["spec"]["Task"]["Properties"]["ContainerDefinitions"] = list.into();
    v["spec"]["Service"]["LoadBalancers"][0]["ContainerName"] = "app-0".into();
    let out = cluster
        .kubectl_run(&["apply", "--dry-run=server", "-f", "-"], Some(&v.to_string()))
        .unwrap();
    assert!(out.success(), "{}", out.stderr);
    let warnings: Vec<&str> = out.stderr.lines().filter_map(|l| l.strip_prefix("Warning: ")).collect();
    assert!(warnings.len() > 5, "{}", out.stderr);
    assert!(warnings.iter().all(|w| w.len() <= 256), "{warnings:?}");
    assert!(
        warnings.iter().any(|w| w.ends_with("...") && w.len() == 256),
        "none clipped: {warnings:?}"
    );
    assert!(
        warnings.last().unwrap().contains("more warnings (run `ecskube validate`"),
        "{warnings:?}"
    );
}
