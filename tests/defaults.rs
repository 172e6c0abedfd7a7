//! ECS defaults as JSON Patch: in the user's casing, only what is missing,
//! idempotent.

use ecskube::defaults::compute;
use ecskube::document::EcsDocument;
use serde_json::{json, Value};

fn patched(v: &Value) -> (Value, usize) {
    let doc = EcsDocument::classify(v.clone());
    let analysis = doc.analyze();
    let patch = compute(&analysis, doc.name());
    let n = patch.0.len();
    let mut out = v.clone();
    json_patch::patch(&mut out, &patch).expect("the patch applies");
    (out, n)
}

fn sample() -> Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/samples/ecsdeployment.json")).expect("sample");
    serde_json::from_str(&text).expect("json")
}

#[test]
fn sample_gets_ecs_defaults_in_pascal_case() {
    let (out, n) = patched(&sample());
    assert!(n > 0);
    let props = &out["spec"]["Task"]["Properties"];
    assert_eq!(props["Family"], json!("ecs-demo-deploy"));
    assert_eq!(props["ContainerDefinitions"][0]["Essential"], json!(true));
    assert_eq!(props["ContainerDefinitions"][0]["PortMappings"][0]["Protocol"], json!("tcp"));
    let svc = &out["spec"]["Service"];
    assert_eq!(svc["DesiredCount"], json!(1), "the user's own value is kept");
    // Defaults that depend on the scheduling strategy are left to the translation.
    assert!(svc.get("DeploymentConfiguration").is_none(), "{svc}");
    assert!(
        props["ContainerDefinitions"][0].get("essential").is_none(),
        "no camelCase keys in a PascalCase object"
    );
}

#[test]
fn applying_twice_adds_nothing() {
    let (once, _) = patched(&sample());
    let (twice, n) = patched(&once);
    assert_eq!(n, 0);
    assert_eq!(once, twice);
}

#[test]
fn camel_case_health_check_and_daemon_defaults() {
    let v = json!({"apiVersion": "ecskube.ecskube/v1alpha1", "kind": "ECSDeployment", "metadata": {"name": "d"}, "spec": {
        "Task": {"containerDefinitions": [{"name": "a", "image": "i", "memory": 64, "essential": false, "healthCheck": {"command": ["CMD", "true"], "retries": 5}}]},
        "Service": {"schedulingStrategy": "DAEMON", "deploymentConfiguration": {"maximumPercent": 100}}}});
    let (out, _) = patched(&v);
    let c = &out["spec"]["Task"]["containerDefinitions"][0];
    assert_eq!(c["essential"], json!(false), "never rewrites what the user wrote");
    assert_eq!(
        c["healthCheck"],
        json!({"command": ["CMD", "true"], "retries": 5, "interval": 30, "timeout": 5, "startPeriod": 0})
    );
    assert_eq!(out["spec"]["Task"]["family"], json!("d"));
    let s = &out["spec"]["Service"];
    assert!(s.get("desiredCount").is_none(), "a DAEMON service has no desired count");
    assert_eq!(
        s["deploymentConfiguration"],
        json!({"maximumPercent": 100}),
        "strategy defaults are not written"
    );
}

#[test]
fn an_object_written_in_the_other_casing_gets_keys_in_its_own_casing() {
    let v = json!({"containerDefinitions": [{"name": "a", "image": "i", "memory": 64, "portMappings": [{"ContainerPort": 80}]}]});
    let (out, _) = patched(&v);
    assert_eq!(
        out["containerDefinitions"][0]["portMappings"][0],
        json!({"ContainerPort": 80, "Protocol": "tcp"})
    );
}

#[test]
fn no_default_survives_a_switch_between_replica_and_daemon() {
    // What the webhook stores for a REPLICA service must still be valid once
    // the user switches it to DAEMON (kubectl apply keeps server-written fields).
    let replica = json!({"apiVersion": "ecskube.ecskube/v1alpha1", "kind": "ECSDeployment", "metadata": {"name": "d"}, "spec": {
        "Task": {"containerDefinitions": [{"name": "a", "image": "i", "memory": 64}]},
        "Service": {}}});
    let (mut stored, _) = patched(&replica);
    stored["spec"]["Service"]["schedulingStrategy"] = json!("DAEMON");
    let doc = EcsDocument::classify(stored);
    let errors: Vec<String> = doc.analyze().report.errors().map(ToString::to_string).collect();
    assert!(errors.is_empty(), "{errors:?}");
}
