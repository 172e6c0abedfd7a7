//! webhook-config/crd.yaml is `ecskube crd`'s output: this fails when the
//! ECSDeployment type changes and the file was not regenerated
//! (`cargo run -- crd > webhook-config/crd.yaml`).

use serde_json::Value;

#[test]
fn crd_yaml_in_webhook_config_matches_the_generated_crd() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/webhook-config/crd.yaml");
    let on_disk = std::fs::read_to_string(path).expect("webhook-config/crd.yaml");
    let generated = ecskube::crd::crd_yaml();
    // Compare as data first for a readable failure, then as text (comments, order).
    let parse = |s: &str| serde_yaml_ng::from_str::<Value>(s).expect("valid YAML");
    assert_eq!(
        parse(&on_disk),
        parse(&generated),
        "webhook-config/crd.yaml drifted from the ECSDeployment type: run `cargo run -- crd > webhook-config/crd.yaml`"
    );
    assert_eq!(
        on_disk.trim_end(),
        generated.trim_end(),
        "webhook-config/crd.yaml differs from `ecskube crd` in formatting: regenerate it"
    );
}

#[test]
fn the_crd_has_the_status_subresource_and_the_short_name() {
    let crd: Value = serde_yaml_ng::from_str(&ecskube::crd::crd_yaml()).unwrap();
    assert_eq!(crd["spec"]["names"]["shortNames"][0], "ecsd");
    let version = &crd["spec"]["versions"][0];
    assert_eq!(version["name"], "v1alpha1");
    assert!(version["subresources"]["status"].is_object(), "status subresource missing");
    let status = &version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"];
    for field in [
        "observedGeneration",
        "conditions",
        "replicas",
        "readyReplicas",
        "updatedReplicas",
        "address",
        "children",
    ] {
        assert!(status[field].is_object(), "status.{field} missing from the schema");
    }
}
