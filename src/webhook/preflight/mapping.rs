//! Where in the ECS task a Kubernetes rejection points: the API server names
//! pod fields (`spec.template.spec.containers[0].securityContext.privileged`),
//! Pod Security names checks and containers in prose; both are mapped back to
//! the ECS field the user wrote.

use super::Rejection;
use crate::diag::{Code, Report};
use crate::translate::k8s_container_name;
use crate::validate::Definition;
use crate::{at, ecs::model::TaskDefinition};
use k8s_openapi::api::core::v1::PodSpec;
use regex::Regex;
use std::sync::LazyLock;

static CONTAINER_FIELD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(initContainers|containers)\[(\d+)\]\.?(.*)").expect("static pattern"));
static CLAUSE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r#"([A-Za-z][^(,:]*)\(([^)]*)\)"#).expect("static pattern"));
static QUOTED: LazyLock<Regex> = LazyLock::new(|| Regex::new(r#""([^"]+)""#).expect("static pattern"));

/// Where in the ECS task a Kubernetes rejection points.
pub(super) fn map_rejection(r: &Rejection, task: Option<&Definition<'_, TaskDefinition>>, pod: Option<&PodSpec>, report: &mut Report) {
    let message = format!("the cluster refuses the {}: {}", r.kind, r.message);
    let Some(task) = task else {
        report.error(Code::Preflight, "spec", message);
        return;
    };
    let mut paths: Vec<String> = r.fields.iter().filter_map(|f| field_to_ecs(f, task, pod)).collect();
    if paths.is_empty() {
        paths = pod_security_paths(&r.message, task);
    }
    if paths.is_empty() {
        paths.push(task.located.path.to_string());
    }
    paths.dedup();
    for p in paths {
        report.error(Code::Preflight, p, message.clone());
    }
}

/// The ECS container index of a Kubernetes container name.
fn container_index(task: &Definition<'_, TaskDefinition>, k8s_name: &str) -> Option<usize> {
    task.model
        .container_definitions
        .iter()
        .position(|c| c.name.as_deref().map(k8s_container_name).as_deref() == Some(k8s_name))
}

/// `spec.template.spec.containers[0].securityContext.privileged` -> the ECS field,
/// finding the container by its name in the pod the translation made.
fn field_to_ecs(field: &str, task: &Definition<'_, TaskDefinition>, pod: Option<&PodSpec>) -> Option<String> {
    let caps = CONTAINER_FIELD.captures(field)?;
    let index: usize = caps[2].parse().ok()?;
    let list = match &caps[1] {
        "initContainers" => pod?.init_containers.as_ref()?,
        _ => &pod?.containers,
    };
    let i = container_index(task, &list.get(index)?.name)?;
    Some(ecs_field(task, i, caps.get(3).map_or("", |m| m.as_str())))
}

fn ecs_field(task: &Definition<'_, TaskDefinition>, i: usize, k8s_field: &str) -> String {
    let field = if k8s_field.contains("privileged") {
        "privileged"
    } else if k8s_field.contains("capabilities") {
        return at!(task, "containerDefinitions", i, "linuxParameters", "capabilities");
    } else if k8s_field.contains("runAsUser") || k8s_field.contains("runAsNonRoot") || k8s_field.contains("runAsGroup") {
        "user"
    } else if k8s_field.contains("readOnlyRootFilesystem") {
        "readonlyRootFilesystem"
    } else if k8s_field.starts_with("image") {
        "image"
    } else if k8s_field.starts_with("ports") {
        "portMappings"
    } else if k8s_field.starts_with("env") {
        "environment"
    } else if k8s_field.starts_with("resources") {
        "memory"
    } else if k8s_field.starts_with("volumeMounts") {
        "mountPoints"
    } else {
        return at!(task, "containerDefinitions", i);
    };
    at!(task, "containerDefinitions", i, field)
}

/// Pod Security rejections name checks and containers in prose:
/// `privileged (container "web" must not set securityContext.privileged=true)`.
fn pod_security_paths(message: &str, task: &Definition<'_, TaskDefinition>) -> Vec<String> {
    let Some(start) = message.find("violates PodSecurity") else {
        return Vec::new();
    };
    let mut paths = Vec::new();
    for caps in CLAUSE.captures_iter(&message[start..]) {
        let check = caps[1].trim();
        let detail = &caps[2];
        if check.starts_with("PodSecurity") {
            continue;
        }
        let names: Vec<&str> = QUOTED.captures_iter(detail).filter_map(|c| c.get(1).map(|m| m.as_str())).collect();
        if check.starts_with("host namespaces") {
            for (field, flag) in [("networkMode", "hostNetwork"), ("pidMode", "hostPID"), ("ipcMode", "hostIPC")] {
                if detail.contains(flag) {
                    paths.push(at!(task, field));
                }
            }
            continue;
        }
        if check.starts_with("hostPath volumes") {
            for v in names {
                if let Some(j) = task
                    .model
                    .volumes
                    .iter()
                    .position(|x| x.name.as_deref().map(|n| crate::translate::k8s_name(n, "volume")).as_deref() == Some(v))
                {
                    paths.push(at!(task, "volumes", j, "host", "sourcePath"));
                }
            }
            continue;
        }
        let k8s_field = detail.split("securityContext.").nth(1).unwrap_or(check);
        let k8s_field = if check.starts_with("privileged") {
            "privileged"
        } else if check.contains("capabilities") {
            "capabilities"
        } else if check.starts_with("hostPort") {
            "ports"
        } else {
            k8s_field
        };
        for n in names {
            if let Some(i) = container_index(task, n) {
                paths.push(ecs_field(task, i, k8s_field));
            }
        }
    }
    paths
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::EcsDocument;
    use crate::webhook::preflight::pod_from;
    use serde_json::json;

    #[test]
    fn pod_security_messages_point_at_ecs_fields() {
        let doc = EcsDocument::classify(
            json!({"apiVersion": "ecskube.ecskube/v1alpha1", "kind": "ECSDeployment", "metadata": {"name": "x"},
            "spec": {"Task": {"Properties": {"ContainerDefinitions": [{"Name": "web", "Image": "i", "Memory": 64, "Privileged": true}, {"Name": "Side_Car", "Image": "i", "Memory": 64}]}}}}),
        );
        let analysis = doc.analyze();
        let task = analysis.task.as_ref().unwrap();
        let message = r#"pods "x-preflight-abc" is forbidden: violates PodSecurity "restricted:latest": privileged (container "web" must not set securityContext.privileged=true), allowPrivilegeEscalation != false (containers "web", "side-car" must set securityContext.allowPrivilegeEscalation=false), runAsNonRoot != true (pod or containers "web", "side-car" must set securityContext.runAsNonRoot=true)"#;
        let paths = pod_security_paths(message, task);
        assert!(
            paths.contains(&"spec.Task.Properties.ContainerDefinitions[0].Privileged".to_string()),
            "{paths:?}"
        );
        assert!(
            paths.contains(&"spec.Task.Properties.ContainerDefinitions[1]".to_string()),
            "{paths:?}"
        );
        assert!(
            paths.contains(&"spec.Task.Properties.ContainerDefinitions[1].User".to_string()),
            "{paths:?}"
        );
        let objects = crate::translate::convert(&analysis, &doc.meta(&analysis)).unwrap().objects;
        let pod = objects.iter().find_map(pod_from).and_then(|p| p.spec);
        assert_eq!(
            field_to_ecs("spec.containers[1].image", task, pod.as_ref()).as_deref(),
            Some("spec.Task.Properties.ContainerDefinitions[1].Image")
        );
    }
}
