//! CloudFormation intrinsic functions evaluated against supplied values:
//! every CloudFormation file of the ECS corpus validates and converts once
//! tests/cfn-params/<same name>.yaml supplies its values; ECSDeployments carry
//! spec.Parameters/Conditions/Mappings; the CLI takes --param/--param-file.

use ecskube::defaults::compute;
use ecskube::diag::{Code, Diagnostic};
use ecskube::document::{parse_documents, EcsDocument};
use ecskube::ecs::intrinsics::Stack;
use ecskube::path::Path;
use ecskube::translate::convert;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn corpus_cfn() -> PathBuf {
    let dir = std::env::var_os("ECSKUBE_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("../shared/ecs-corpus"))
        .join("cfn");
    assert!(dir.is_dir(), "ECS corpus not found in {} (set ECSKUBE_CORPUS)", dir.display());
    dir
}

/// The corpus's own genuine defects that values cannot fix: none. Every
/// CloudFormation file becomes valid with plausible values.
const GENUINE_DEFECTS: &[(&str, &str)] = &[];

fn stack_from_file(path: &std::path::Path) -> Stack {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let value: Value = serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut report = ecskube::Report::default();
    let stack = Stack::from_file_value(&value, Path::root(), &mut report);
    assert!(report.diagnostics.is_empty(), "{}: {:?}", path.display(), report.diagnostics);
    stack
}

fn errors(doc: &EcsDocument) -> Vec<Diagnostic> {
    doc.analyze().report.diagnostics.into_iter().filter(Diagnostic::is_error).collect()
}

#[test]
fn every_cloudformation_corpus_file_validates_and_converts_with_its_parameters() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_cfn())
        .expect("cfn folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 21, "the corpus has 21 CloudFormation files");
    let mut failures = Vec::new();
    for path in &files {
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let params = root().join("tests/cfn-params").join(format!("{name}.yaml"));
        assert!(params.is_file(), "no parameter file {}", params.display());
        let text = std::fs::read_to_string(path).unwrap();
        let mut docs = parse_documents(&text).unwrap();
        assert_eq!(docs.len(), 1, "{name}");
        let mut doc = docs.remove(0);
        // Without values, a file with intrinsics has exactly one error: the missing values.
        let without = errors(&doc);
        assert!(
            without.is_empty() || (without.len() == 1 && without[0].code == Code::Unresolved),
            "{name} without parameters: {without:?}"
        );
        doc.params = stack_from_file(&params);
        let errs = errors(&doc);
        if GENUINE_DEFECTS.iter().any(|(f, _)| *f == name) {
            assert!(!errs.is_empty(), "{name} is listed as defective but validates");
            continue;
        }
        if !errs.is_empty() {
            failures.push(format!(
                "{name}:\n  {}",
                errs.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  ")
            ));
            continue;
        }
        let analysis = doc.analyze();
        match convert(&analysis, &doc.meta(&analysis)) {
            Ok(c) => {
                let kinds: Vec<&str> = c.objects.iter().map(|o| o.kind()).collect();
                assert!(kinds.contains(&"Deployment") || kinds.contains(&"DaemonSet"), "{name}: {kinds:?}");
            }
            Err(e) => failures.push(format!("{name}: does not convert: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn evaluated_values_reach_the_kubernetes_objects() {
    let text = std::fs::read_to_string(corpus_cfn().join("16-copilot-svc-firelens-sidecars.json")).unwrap();
    let mut doc = parse_documents(&text).unwrap().remove(0);
    doc.params = stack_from_file(&root().join("tests/cfn-params/16-copilot-svc-firelens-sidecars.yaml"));
    let analysis = doc.analyze();
    let task = analysis.task.as_ref().expect("task");
    let fe = &task.model.container_definitions[0];
    assert_eq!(fe.name.as_deref(), Some("fe"));
    assert_eq!(
        fe.image.as_deref(),
        Some("123456789123.dkr.ecr.us-west-2.amazonaws.com/my-app/fe:v1")
    );
    // Fn::Sub with pseudo parameters, and the Fn::If-guarded env file (HasEnvFile is an expression).
    let canonical = &task.canonical["containerDefinitions"][0];
    assert_eq!(
        canonical["secrets"][0]["valueFrom"],
        json!("arn:aws:secretsmanager:us-west-2:123456789123:secret:demo/testing/mysql")
    );
    assert_eq!(
        canonical["environmentFiles"],
        json!([{"type": "s3", "value": "arn:aws:s3:::my-app-prod-env/fe.env"}])
    );
    // The other containers' Fn::If removed their env files (AWS::NoValue).
    assert_eq!(task.canonical["containerDefinitions"][1]["environmentFiles"], json!([]));
    let service = analysis.service.as_ref().expect("service");
    assert_eq!(
        service.canonical["networkConfiguration"]["awsvpcConfiguration"]["subnets"],
        json!(["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"])
    );
    assert_eq!(service.canonical["desiredCount"], json!(2));
}

fn deployment(spec: Value) -> EcsDocument {
    EcsDocument::classify(json!({
        "apiVersion": "ecskube.ecskube/v1alpha1",
        "kind": "ECSDeployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": spec,
    }))
}

fn task_with(image: Value, extra: Value) -> Value {
    let mut properties = json!({
        "ContainerDefinitions": [{"Name": "web", "Image": image, "Memory": {"Ref": "Memory"}, "PortMappings": [{"ContainerPort": 80}]}],
    });
    for (k, v) in extra.as_object().unwrap() {
        properties[k] = v.clone();
    }
    json!({"Type": "AWS::ECS::TaskDefinition", "Properties": properties})
}

#[test]
fn an_ecsdeployment_supplies_parameters_conditions_and_mappings() {
    let doc = deployment(json!({
        "Task": task_with(
            json!({"Fn::Sub": "${Repo}:${Tag}"}),
            json!({"Cpu": {"Fn::FindInMap": ["Sizes", {"Ref": "Env"}, "Cpu"]},
                   "TaskRoleArn": {"Fn::If": ["HasRole", {"Ref": "Role"}, {"Ref": "AWS::NoValue"}]}})
        ),
        "Parameters": {"Repo": "nginx", "Tag": "1.25", "Memory": 512, "Env": "prod"},
        "Conditions": {"HasRole": {"Fn::Not": [{"Fn::Equals": [{"Ref": "Env"}, "prod"]}]}},
        "Mappings": {"Sizes": {"prod": {"Cpu": "1024"}}},
    }));
    let analysis = doc.analyze();
    let errs: Vec<_> = analysis.report.errors().collect();
    assert!(errs.is_empty(), "{errs:?}");
    let task = analysis.task.as_ref().unwrap();
    assert_eq!(task.canonical["containerDefinitions"][0]["image"], json!("nginx:1.25"));
    assert_eq!(task.canonical["cpu"], json!("1024"));
    assert!(task.canonical.get("taskRoleArn").is_none());
    // Defaults patch the user's object, never inside an intrinsic.
    let patch = compute(&analysis, doc.name());
    let paths: Vec<String> = patch.0.iter().map(|op| op.path().to_string()).collect();
    assert!(
        paths.contains(&"/spec/Task/Properties/ContainerDefinitions/0/Essential".to_string()),
        "{paths:?}"
    );
    assert!(paths.iter().all(|p| !p.contains("Fn::")), "{paths:?}");
}

#[test]
fn an_evaluated_value_is_validated_and_the_error_names_its_parameter() {
    let doc = deployment(json!({
        "Task": task_with(json!("nginx"), json!({})),
        "Parameters": {"Memory": "lots"},
    }));
    let errs = errors(&doc);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].path, "spec.Task.Properties.ContainerDefinitions[0].Memory");
    assert!(errs[0].message.ends_with("(value from spec.Parameters.Memory)"), "{}", errs[0]);
}

#[test]
fn an_error_inside_the_chosen_branch_points_into_the_branch() {
    let doc = deployment(json!({
        "Task": task_with(json!("nginx"), json!({"NetworkMode": {"Fn::If": ["Vpc", "awsvpcc", "bridge"]}})),
        "Parameters": {"Memory": 512},
        "Conditions": {"Vpc": true},
    }));
    let errs = errors(&doc);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].code, Code::NotSupported);
    assert_eq!(errs[0].path, "spec.Task.Properties.NetworkMode[\"Fn::If\"][1]");
}

#[test]
fn without_parameters_one_error_names_every_missing_value() {
    let doc = deployment(json!({"Task": task_with(json!({"Ref": "Image"}), json!({}))}));
    let errs = errors(&doc);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].code, Code::Unresolved);
    assert_eq!(errs[0].path, "spec.Task.Properties.ContainerDefinitions[0].Image");
    assert!(
        errs[0].message.contains(
            "spec.Parameters: add Image (used at spec.Task.Properties.ContainerDefinitions[0].Image), \
             Memory (used at spec.Task.Properties.ContainerDefinitions[0].Memory)"
        ),
        "{}",
        errs[0]
    );
}

#[test]
fn a_false_resource_condition_is_an_error_that_says_so() {
    let mut task = task_with(json!("nginx"), json!({}));
    task["Condition"] = json!("Create");
    task["DependsOn"] = json!(["Role"]);
    task["Metadata"] = json!({"a": 1});
    task["DeletionPolicy"] = json!("Retain");
    task["UpdateReplacePolicy"] = json!("Retain");
    let doc = deployment(json!({"Task": task, "Parameters": {"Memory": 512}, "Conditions": {"Create": false}}));
    let errs = errors(&doc);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].path, "spec.Task.Condition");
    assert!(errs[0].message.contains("Condition \"Create\" is false"), "{}", errs[0]);
    let mut ok = doc.value.clone();
    ok["spec"]["Conditions"]["Create"] = json!(true);
    assert!(errors(&EcsDocument::classify(ok)).is_empty());
}

#[test]
fn ill_formed_spec_sections_are_reported_at_their_place() {
    let doc = deployment(json!({
        "Task": task_with(json!("nginx"), json!({})),
        "Parameters": {"Memory": 512, "Nested": {"a": 1}},
        "Conditions": ["not", "a", "map"],
    }));
    let errs: Vec<(Code, String)> = errors(&doc).into_iter().map(|d| (d.code, d.path)).collect();
    assert_eq!(
        errs,
        vec![
            (Code::InvalidType, "spec.Parameters.Nested".to_string()),
            (Code::InvalidType, "spec.Conditions".to_string())
        ]
    );
}

fn ecskube(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ecskube"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn cli_param_and_param_file() {
    let file = corpus_cfn().join("01-ec2-public-service.json");
    let file = file.to_str().unwrap();
    // Without values: one error, with the flags as the way to supply them.
    let (code, stdout, _) = ecskube(&["validate", file]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("Parameters: add ContainerCpu") && stdout.contains("--param NAME=VALUE"),
        "{stdout}"
    );
    // A parameter file makes it valid; it converts.
    let params = "tests/cfn-params/01-ec2-public-service.yaml";
    let (code, stdout, stderr) = ecskube(&["validate", "--param-file", params, file]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let (code, stdout, stderr) = ecskube(&["convert", "--param-file", params, file]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("image: nginx:1.25"), "{stdout}");
    // --param overrides the file (JSON values parse: numbers, lists) and is named in diagnostics.
    let (code, stdout, _) = ecskube(&["validate", "--param-file", params, "--param", "ContainerMemory=[1]", file]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("(value from --param ContainerMemory)"), "{stdout}");
    let (code, stdout, stderr) = ecskube(&["convert", "--param-file", params, "--param", "ImageUrl=httpd:2.4", file]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("image: httpd:2.4"), "{stdout}");
    // Bad flags are usage errors.
    let (code, _, stderr) = ecskube(&["validate", "--param", "NoEquals", file]);
    assert_eq!(code, 2);
    assert!(stderr.contains("expected NAME=VALUE"), "{stderr}");
    let (code, _, stderr) = ecskube(&["validate", "--param-file", "does-not-exist.yaml", file]);
    assert_eq!(code, 2, "{stderr}");
}
