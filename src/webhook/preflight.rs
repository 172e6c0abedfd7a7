//! Preflight: what would fail after admission fails now. The children the
//! controller would write (and one Pod from the template) are submitted as
//! server-side dry runs in the target namespace, so the API server's
//! validation, Pod Security admission, LimitRanges and other admission
//! policies judge them; rejections come back mapped to the ECS path that
//! caused them. A preflight that cannot finish in its budget is a warning.

use crate::diag::{Code, Diagnostic, Report};
use crate::document::EcsDocument;
use crate::offload::Offload;
use crate::translate::{k8s_container_name, Object};
use crate::validate::Definition;
use crate::{at, ecs::model::TaskDefinition};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{Pod, PodSpec, Service, ServiceAccount};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::core::ObjectMeta;
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::time::Duration;

pub struct Preflight {
    pub client: Client,
    /// Kept well inside the webhook's timeoutSeconds.
    pub budget: Duration,
}

/// Why the cluster refused one object.
struct Rejection {
    kind: &'static str,
    message: String,
    /// Kubernetes field paths named by the API server, when it names any.
    fields: Vec<String>,
}

impl Preflight {
    /// Dry-runs every child and a Pod; returns diagnostics at ECS paths.
    /// Mapping rejections back to ECS paths re-reads the object, so it runs on `engine`.
    pub async fn check(&self, engine: &Offload, doc: EcsDocument, name: &str, namespace: &str, objects: Vec<Object>) -> Vec<Diagnostic> {
        let mut report = Report::default();
        match tokio::time::timeout(self.budget, self.run(name, namespace, &objects)).await {
            Ok(Ok(rejections)) if rejections.is_empty() => {}
            Ok(Ok(rejections)) => {
                let mapped = engine.run(move || {
                    let mut report = Report::default();
                    let analysis = doc.analyze();
                    let pod = objects.iter().find_map(pod_from).and_then(|p| p.spec);
                    for r in rejections {
                        map_rejection(&r, analysis.task.as_ref(), pod.as_ref(), &mut report);
                    }
                    // The Deployment and its Pod often fail for the same reason: say it once per place.
                    let mut seen = std::collections::HashSet::new();
                    report.diagnostics.retain(|d| seen.insert(d.path.clone()));
                    report.diagnostics
                });
                match mapped.await {
                    Ok(diags) => report.diagnostics = diags,
                    Err(e) => {
                        report.error(Code::Preflight, "spec", format!("the cluster refuses the children, and {e}"));
                    }
                }
            }
            Ok(Err(e)) => {
                report.warning(
                    Code::Preflight,
                    "spec",
                    format!("the cluster's own checks could not run ({e}); they will apply when the controller writes the children"),
                );
            }
            Err(_) => {
                report.warning(
                    Code::Preflight,
                    "spec",
                    format!(
                        "the cluster's own checks did not finish within {:?}; they will apply when the controller writes the children",
                        self.budget
                    ),
                );
            }
        }
        report.diagnostics
    }

    /// Every child and the Pod are checked at once: the admission waits for the slowest, not the sum.
    async fn run(&self, name: &str, namespace: &str, objects: &[Object]) -> Result<Vec<Rejection>, kube::Error> {
        let children = objects.iter().map(|object| async move {
            let outcome = match object {
                Object::Deployment(d) => self.dry_apply::<Deployment>(namespace, name, d).await?,
                Object::DaemonSet(d) => self.dry_apply::<DaemonSet>(namespace, name, d).await?,
                Object::Service(s) => self.dry_apply::<Service>(namespace, name, s).await?,
                Object::ServiceAccount(s) => self.dry_apply::<ServiceAccount>(namespace, name, s).await?,
            };
            Ok::<_, kube::Error>(outcome.map(|(message, fields)| Rejection {
                kind: object.kind(),
                message,
                fields,
            }))
        });
        let pod = async {
            let Some(pod) = objects.iter().find_map(pod_from) else {
                return Ok(None);
            };
            let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
            let params = PostParams {
                dry_run: true,
                field_manager: Some("ecskube".into()),
            };
            match api.create(&params, &pod).await {
                Ok(_) => Ok(None),
                Err(e) => rejection("Pod", e),
            }
        };
        let (children, pod) = futures::future::join(futures::future::try_join_all(children), pod).await;
        Ok(children?.into_iter().chain(std::iter::once(pod?)).flatten().collect())
    }

    /// A collision with an object this ECSDeployment does not own, or the
    /// cluster's verdict on a dry-run server-side apply.
    async fn dry_apply<K>(&self, namespace: &str, owner: &str, object: &K) -> Result<Option<(String, Vec<String>)>, kube::Error>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()> + Clone + Serialize + DeserializeOwned + std::fmt::Debug,
    {
        let api: Api<K> = Api::namespaced(self.client.clone(), namespace);
        let name = object.meta().name.clone().unwrap_or_default();
        if let Some(existing) = api.get_opt(&name).await? {
            let ours = existing
                .meta()
                .owner_references
                .iter()
                .flatten()
                .any(|r| r.controller == Some(true) && r.kind == "ECSDeployment" && r.name == owner);
            if !ours {
                return Ok(Some((format!("a {} named {name:?} already exists in {namespace:?} and is not managed by this ECSDeployment; it would not be overwritten", K::kind(&())), Vec::new())));
            }
        }
        let mut object = object.clone();
        object.meta_mut().namespace = Some(namespace.to_string());
        let params = PatchParams::apply("ecskube").force().dry_run();
        match api.patch(&name, &params, &Patch::Apply(&object)).await {
            Ok(_) => Ok(None),
            Err(e) => Ok(rejection(K::kind(&()).as_ref(), e)?.map(|r| (r.message, r.fields))),
        }
    }
}

/// An API rejection is a finding; any other failure stops the preflight.
fn rejection(kind: &str, e: kube::Error) -> Result<Option<Rejection>, kube::Error> {
    match e {
        kube::Error::Api(status) if (400..500).contains(&status.code) && status.code != 401 && status.code != 429 => {
            // The webhook's own account lacking rights is our problem, not the user's.
            if status.code == 403 && !status.message.contains("violates PodSecurity") && status.message.contains("cannot") {
                return Err(kube::Error::Api(status));
            }
            let fields = status
                .details
                .as_ref()
                .map(|d| d.causes.iter().map(|c| c.field.clone()).filter(|f| !f.is_empty()).collect())
                .unwrap_or_default();
            Ok(Some(Rejection {
                kind: leak(kind),
                message: status.message.clone(),
                fields,
            }))
        }
        other => Err(other),
    }
}

fn leak(kind: &str) -> &'static str {
    match kind {
        "Deployment" => "Deployment",
        "DaemonSet" => "DaemonSet",
        "Service" => "Service",
        "ServiceAccount" => "ServiceAccount",
        _ => "Pod",
    }
}

/// One Pod as the workload would create it.
fn pod_from(object: &Object) -> Option<Pod> {
    let template = match object {
        Object::Deployment(d) => d.spec.template.clone(),
        Object::DaemonSet(d) => d.spec.template.clone(),
        _ => return None,
    };
    let name = object.metadata().name.clone().unwrap_or_default();
    Some(Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{name}-preflight-")),
            labels: template.metadata.and_then(|m| m.labels),
            ..Default::default()
        },
        spec: template.spec,
        status: None,
    })
}

/// Where in the ECS task a Kubernetes rejection points.
fn map_rejection(r: &Rejection, task: Option<&Definition<'_, TaskDefinition>>, pod: Option<&PodSpec>, report: &mut Report) {
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
    let re = regex::Regex::new(r"(initContainers|containers)\[(\d+)\]\.?(.*)").ok()?;
    let caps = re.captures(field)?;
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
    let clause = regex::Regex::new(r#"([A-Za-z][^(,:]*)\(([^)]*)\)"#).expect("static pattern");
    let quoted = regex::Regex::new(r#""([^"]+)""#).expect("static pattern");
    let mut paths = Vec::new();
    for caps in clause.captures_iter(&message[start..]) {
        let check = caps[1].trim();
        let detail = &caps[2];
        if check.starts_with("PodSecurity") {
            continue;
        }
        let names: Vec<&str> = quoted.captures_iter(detail).filter_map(|c| c.get(1).map(|m| m.as_str())).collect();
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
