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

/// Every error a real file may get, exactly: AWS would refuse it too (the
/// docs' all-parameters skeletons hold "" and 0 dummies, services/07 has an
/// unrendered ecspresso template where an enum is required, taskdefs/09
/// mounts a volume it never declares), or it is a CloudFormation file's one
/// unresolved-intrinsics error, which tests/cfn_parameters.rs shows goes away
/// once the values are given. Each is (file, code, path); a new error fails,
/// and so does an excuse that no longer occurs.
const EXPECTED_ERRORS: &[(&str, Code, &str)] = &[
    ("cfn/01-ec2-public-service.json", Code::Unresolved, "Task.Properties.Cpu"),
    (
        "cfn/02-fargate-private-subnet-public-service.json",
        Code::Unresolved,
        "Task.Properties.Cpu",
    ),
    (
        "cfn/03-schedule-example-volumesfrom.json",
        Code::Unresolved,
        "Task.Properties.ContainerDefinitions[0].LogConfiguration.Options.awslogs-group",
    ),
    (
        "cfn/04-refarch-website-service.json",
        Code::Unresolved,
        "Task.Properties.ContainerDefinitions[0].Environment[0].Value",
    ),
    (
        "cfn/05-continuous-deployment-fargate.json",
        Code::Unresolved,
        "Task.Properties.RequiresCompatibilities[0]",
    ),
    ("cfn/06-socketio-chat-fargate.json", Code::Unresolved, "Task.Properties.Cpu"),
    (
        "cfn/07-appmesh-envoy-xray-cloudmap.json",
        Code::Unresolved,
        "Task.Properties.TaskRoleArn",
    ),
    (
        "cfn/08-cwagent-daemon-service.json",
        Code::Unresolved,
        "Task.Properties.TaskRoleArn",
    ),
    (
        "cfn/09-capacity-provider-daemon.json",
        Code::Unresolved,
        "Task.Properties.ExecutionRoleArn",
    ),
    ("cfn/10-ec2-bridge-dynamic-port.json", Code::Unresolved, "Task.Properties.Cpu"),
    ("cfn/11-efs-durable-storage.json", Code::Unresolved, "Task.Properties.TaskRoleArn"),
    (
        "cfn/12-inferentia-jupyter-efs-secrets.json",
        Code::Unresolved,
        "Task.Properties.ExecutionRoleArn",
    ),
    ("cfn/14-cloudmap-service-registry.json", Code::Unresolved, "Task.Properties.Cpu"),
    ("cfn/15-spot-placement-strategies.json", Code::Unresolved, "Task.Properties.Cpu"),
    ("cfn/16-copilot-svc-firelens-sidecars.json", Code::Unresolved, "Task.Properties.Cpu"),
    ("cfn/17-copilot-windows-svc.json", Code::Unresolved, "Task.Properties.Cpu"),
    (
        "cfn/18-docs-service-hc-grace-placement.json",
        Code::Unresolved,
        "Task.Properties.ContainerDefinitions[0].Name",
    ),
    (
        "cfn/21-memcached-links-dockerlabels.json",
        Code::Unresolved,
        "Task.Properties.TaskRoleArn",
    ),
    ("services/04-external-deployment-controller.json", Code::Invalid, "tags[0].key"),
    ("services/04-external-deployment-controller.json", Code::Invalid, "serviceName"),
    ("services/05-service-definition-template.json", Code::Invalid, "tags[0].key"),
    ("services/05-service-definition-template.json", Code::Invalid, "launchType"),
    ("services/05-service-definition-template.json", Code::Invalid, "serviceName"),
    (
        "services/05-service-definition-template.json",
        Code::Invalid,
        "loadBalancers[0].loadBalancerName",
    ),
    (
        "services/07-ecspresso-capacity-provider-ebs.json",
        Code::NotSupported,
        "deploymentController.type",
    ),
    ("services/07-ecspresso-capacity-provider-ebs.json", Code::Invalid, "tags[0].value"),
    (
        "taskdefs/09-windows-fsx-volume.json",
        Code::NotFound,
        "containerDefinitions[0].mountPoints[0].sourceVolume",
    ),
    (
        "taskdefs/09-windows-fsx-volume.json",
        Code::NotFound,
        "containerDefinitions[1].mountPoints[0].sourceVolume",
    ),
    ("taskdefs/10-all-parameters-template.json", Code::Invalid, "tags[0].key"),
    ("taskdefs/10-all-parameters-template.json", Code::Invalid, "cpu"),
    ("taskdefs/10-all-parameters-template.json", Code::Invalid, "memory"),
    (
        "taskdefs/10-all-parameters-template.json",
        Code::Invalid,
        "ephemeralStorage.sizeInGiB",
    ),
    ("taskdefs/10-all-parameters-template.json", Code::Invalid, "family"),
    ("taskdefs/10-all-parameters-template.json", Code::Invalid, "volumes[0].name"),
    (
        "taskdefs/10-all-parameters-template.json",
        Code::Invalid,
        "containerDefinitions[0].name",
    ),
    (
        "taskdefs/10-all-parameters-template.json",
        Code::Invalid,
        "containerDefinitions[0].memory",
    ),
    (
        "taskdefs/10-all-parameters-template.json",
        Code::Invalid,
        "containerDefinitions[0].memoryReservation",
    ),
    (
        "taskdefs/10-all-parameters-template.json",
        Code::Invalid,
        "containerDefinitions[0].healthCheck.interval",
    ),
    (
        "taskdefs/10-all-parameters-template.json",
        Code::Invalid,
        "containerDefinitions[0].healthCheck.timeout",
    ),
    (
        "taskdefs/10-all-parameters-template.json",
        Code::Invalid,
        "containerDefinitions[0].healthCheck.retries",
    ),
    (
        "taskdefs/10-all-parameters-template.json",
        Code::Invalid,
        "containerDefinitions[0].user",
    ),
    (
        "taskdefs/10-all-parameters-template.json",
        Code::Invalid,
        "containerDefinitions[0].links[0]",
    ),
    (
        "taskdefs/10-all-parameters-template.json",
        Code::Invalid,
        "containerDefinitions[0].dependsOn[0].condition",
    ),
    (
        "taskdefs/10-all-parameters-template.json",
        Code::Invalid,
        "containerDefinitions[0].dependsOn[0].containerName",
    ),
    (
        "taskdefs/10-all-parameters-template.json",
        Code::Invalid,
        "containerDefinitions[0].portMappings",
    ),
    (
        "taskdefs/10-all-parameters-template.json",
        Code::Invalid,
        "containerDefinitions[0].links",
    ),
    (
        "taskdefs/10-all-parameters-template.json",
        Code::Invalid,
        "containerDefinitions[0].name",
    ),
    (
        "taskdefs/10-all-parameters-template.json",
        Code::NotSupported,
        "containerDefinitions[0].linuxParameters.capabilities.add[0]",
    ),
    (
        "taskdefs/10-all-parameters-template.json",
        Code::NotSupported,
        "containerDefinitions[0].linuxParameters.capabilities.drop[0]",
    ),
    ("taskdefs/10-all-parameters-template.json", Code::Invalid, "volumes[0]"),
    (
        "taskdefs/10-all-parameters-template.json",
        Code::Invalid,
        "volumes[0].efsVolumeConfiguration.transitEncryption",
    ),
];

#[test]
fn every_corpus_file_is_understood() {
    let mut unexpected = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for path in corpus_files() {
        let file = path.display().to_string();
        for d in errors_of(&path) {
            // Each entry excuses one error: the same path twice needs two entries.
            match (0..EXPECTED_ERRORS.len()).find(|i| {
                let (f, code, p) = EXPECTED_ERRORS[*i];
                !seen.contains(i) && file.ends_with(f) && code == d.code && p == d.path
            }) {
                Some(i) => {
                    seen.insert(i);
                }
                None => unexpected.push(format!("{file}: {d}")),
            }
        }
    }
    assert!(
        unexpected.is_empty(),
        "errors a real file should not get:\n{}",
        unexpected.join("\n")
    );
    let stale: Vec<_> = (0..EXPECTED_ERRORS.len())
        .filter(|i| !seen.contains(i))
        .map(|i| EXPECTED_ERRORS[i])
        .collect();
    assert!(stale.is_empty(), "expected errors that no longer occur: {stale:?}");
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
