//! Every real ECS file in ../shared/ecs-corpus (or $ECSKUBE_CORPUS) is
//! understood: accepted, or rejected only for what truly cannot be deployed.

use ecskube::diag::{Code, Diagnostic};
use ecskube::document::parse_documents;
use std::path::PathBuf;

fn corpus_dir() -> PathBuf {
    let dir = std::env::var_os("ECSKUBE_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/ecs-corpus"));
    assert!(
        dir.join("taskdefs").is_dir(),
        "ECS corpus not found in {} (set ECSKUBE_CORPUS)",
        dir.display()
    );
    dir
}

fn corpus_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for sub in ["taskdefs", "services", "cfn"] {
        for entry in std::fs::read_dir(corpus_dir().join(sub)).expect("corpus folder") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "json") {
                files.push(path);
            }
        }
    }
    files.sort();
    assert!(files.len() >= 60, "expected the whole corpus, found {} files", files.len());
    files
}

fn errors_of(path: &PathBuf) -> Vec<Diagnostic> {
    let text = std::fs::read_to_string(path).expect("readable");
    let docs = parse_documents(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(docs.len(), 1, "{}", path.display());
    docs[0]
        .analyze()
        .report
        .diagnostics
        .into_iter()
        .filter(Diagnostic::is_error)
        .collect()
}

/// Why an error may stand in a real file: AWS would refuse it too, and no
/// deployment could come of it without the author's fix.
fn undeployable(file: &str, d: &Diagnostic) -> bool {
    let placeholder = d.message.contains("unrendered template placeholder");
    match d.code {
        // Without parameters, a CloudFormation file's intrinsics are one error
        // naming every missing value (tests/cfn_parameters.rs supplies them).
        Code::Unresolved => file.contains("/cfn/"),
        _ if placeholder => true,
        // The all-parameters skeletons list every field with "" / 0 dummies.
        _ if file.contains("10-all-parameters-template") || file.contains("05-service-definition-template") => true,
        // Skeleton-style: an empty tag key.
        Code::Invalid if file.contains("04-external-deployment-controller") => d.path == "tags[0].key" || d.path == "serviceName",
        // The AWS docs example mounts "fsx-windows-dir" but declares "fsx-windows-vol".
        Code::NotFound if file.contains("09-windows-fsx-volume") => d.path.ends_with("sourceVolume"),
        _ => false,
    }
}

#[test]
fn every_corpus_file_is_understood() {
    let mut wrong = Vec::new();
    for path in corpus_files() {
        let file = path.display().to_string();
        for d in errors_of(&path) {
            if !undeployable(&file, &d) {
                wrong.push(format!("{file}: {d}"));
            }
        }
    }
    assert!(wrong.is_empty(), "errors a real file should not get:\n{}", wrong.join("\n"));
}

#[test]
fn cloudformation_intrinsics_are_named_with_their_paths() {
    // cfn/01 uses Ref, Fn::If, Fn::Join and Fn::ImportValue: without values, ONE error
    // names every missing parameter and condition, with each place that uses it.
    let errs = errors_of(&corpus_dir().join("cfn/01-ec2-public-service.json"));
    assert_eq!(errs.len(), 1, "{errs:?}");
    let d = &errs[0];
    // At the first place that uses a missing value (the implied Family is not one).
    assert_eq!((d.code, d.path.as_str()), (Code::Unresolved, "Task.Properties.Cpu"), "{d}");
    assert!(
        d.message
            .contains("Parameters: add ContainerCpu (used at Task.Properties.Cpu, Task.Properties.ContainerDefinitions[0].Cpu)"),
        "{d}"
    );
    assert!(
        d.message
            .contains("Conditions: add HasCustomRole (used at Task.Properties.TaskRoleArn)"),
        "{d}"
    );
    // The Service's own uses are listed in the same error.
    assert!(
        d.message
            .contains("TargetGroup (used at Service.Properties.LoadBalancers[0].TargetGroupArn)"),
        "{d}"
    );
    // The implied family, cluster and task definition are never asked for.
    assert!(!d.message.contains("StackName") && !d.message.contains("TaskDefinition ("), "{d}");
    assert!(
        d.expected.contains("Parameters.ContainerCpu") && d.expected.contains("Conditions.HasCustomRole"),
        "{d}"
    );
}

#[test]
fn every_cloudformation_file_has_at_most_one_unresolved_error() {
    for path in corpus_files().into_iter().filter(|p| p.display().to_string().contains("/cfn/")) {
        let n = errors_of(&path).iter().filter(|d| d.code == Code::Unresolved).count();
        assert!(n <= 1, "{}: {n} unresolved errors", path.display());
    }
}

#[test]
fn literal_cloudformation_and_plain_task_files_are_valid() {
    for f in [
        "cfn/13-privileged-task.json",
        "cfn/20-docs-taskdef-dependson.json",
        "taskdefs/04-awslogs-wordpress-mysql-links.json",
        "taskdefs/19-firelens-efs-describe-output.json",
        "taskdefs/31-nginx-reverse-proxy-links.json",
    ] {
        let errs = errors_of(&corpus_dir().join(f));
        assert!(errs.is_empty(), "{f}: {errs:?}");
    }
}

#[test]
fn template_placeholders_where_numbers_or_enums_are_required_are_errors() {
    let errs = errors_of(&corpus_dir().join("services/07-ecspresso-capacity-provider-ebs.json"));
    assert!(
        errs.iter()
            .any(|d| d.path == "deploymentController.type" && d.message.contains("placeholder")),
        "{errs:?}"
    );
}

#[test]
fn the_sample_validates_clean() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("samples/ecsdeployment.json");
    assert!(errors_of(&path).is_empty());
}
