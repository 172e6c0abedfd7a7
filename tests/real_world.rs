//! Definitions in the shapes real deployed files take (tests/real-world/,
//! see its README) are accepted, and every object ecskube makes of them is
//! accepted by the API server too (server-side dry run), as are the
//! DaemonSet rollouts of every DAEMON deployment configuration.

mod support;

use ecskube::document::parse_documents;
use ecskube::translate::convert;
use serde_json::{json, Value};
use support::{shared_cluster, test_namespace, DumpLogsOnPanic};

/// The objects ecskube makes of `text`, placed in `ns`; the engine must find no error.
fn converted(name: &str, text: &str, ns: &str) -> Vec<Value> {
    let docs = parse_documents(text).unwrap_or_else(|e| panic!("{name}: {e}"));
    let doc = &docs[0];
    let analysis = doc.analyze();
    let errors: Vec<String> = analysis.report.errors().map(ToString::to_string).collect();
    assert!(errors.is_empty(), "{name}: {errors:?}");
    let mut meta = doc.meta(&analysis);
    meta.namespace = Some(ns.to_string());
    let out = convert(&analysis, &meta).unwrap_or_else(|e| panic!("{name}: {e}"));
    out.objects.iter().map(|o| serde_json::to_value(o).unwrap()).collect()
}

fn accepted_by_the_api_server(what: &str, objects: &[Value]) {
    let cluster = shared_cluster();
    for o in objects {
        let out = cluster
            .kubectl_run(&["create", "--dry-run=server", "-f", "-"], Some(&o.to_string()))
            .unwrap();
        assert!(
            out.success(),
            "{what}: the API server refuses the {}: {}\n{o}",
            o["kind"],
            out.stderr
        );
    }
}

#[test]
fn every_real_world_shape_converts_into_objects_the_api_server_accepts() {
    let cluster = shared_cluster();
    let _logs = DumpLogsOnPanic(cluster);
    let ns = test_namespace(cluster, "real-world");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/real-world");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "json"));
    files.sort();
    assert_eq!(files.len(), 5, "{files:?}");
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let objects = converted(&name, &std::fs::read_to_string(&path).unwrap(), &ns);
        assert!(objects.iter().any(|o| o["kind"] == "Deployment"), "{name}");
        accepted_by_the_api_server(&name, &objects);
    }
}

#[test]
fn every_daemon_rollout_is_one_the_api_server_accepts() {
    let cluster = shared_cluster();
    let _logs = DumpLogsOnPanic(cluster);
    let ns = test_namespace(cluster, "daemon-rollouts");
    for (max, min, mode) in [
        (100, 0, "bridge"),
        (200, 100, "bridge"),
        (100, 50, "bridge"),
        (0, 0, "bridge"),
        (200, 50, "bridge"),
        (100, 100, "bridge"),
        (100, 100, "host"),
    ] {
        let pair = json!({
            "Task": {"family": "agent", "networkMode": mode, "containerDefinitions": [{"name": "agent", "image": "a", "memory": 64}]},
            "Service": {"serviceName": "agent", "schedulingStrategy": "DAEMON",
                        "deploymentConfiguration": {"maximumPercent": max, "minimumHealthyPercent": min}}
        });
        let objects = converted(&format!("DAEMON {max}/{min} {mode}"), &pair.to_string(), &ns);
        assert_eq!(objects[0]["kind"], "DaemonSet");
        accepted_by_the_api_server(&format!("DAEMON {max}/{min} {mode}"), &objects);
    }
}
