//! Preflight: what would fail after admission fails now. The children the
//! controller would write (and one Pod from the template) are submitted as
//! server-side dry runs in the target namespace, so the API server's
//! validation, Pod Security admission, LimitRanges and other admission
//! policies judge them; rejections come back mapped to the ECS path that
//! caused them (`mapping`).
//!
//! What is ecskube's problem and not the user's becomes a warning, never a
//! denial: a preflight that cannot finish in its budget, or is busy, a
//! refusal of something ecskube's own account may not do (`permissions`,
//! asked with SelfSubjectAccessReview), and the dry-run Pod's own share of a
//! full ResourceQuota (`quota`).

mod mapping;
mod permissions;
mod quota;

use crate::controller::children::{self, Ownership};
use crate::diag::{Code, Diagnostic, Report};
use crate::document::EcsDocument;
use crate::offload::Offload;
use crate::translate::Object;
use k8s_openapi::api::core::v1::{Pod, ResourceQuota};
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::ObjectMeta;
use kube::Client;
use permissions::{Access, Permissions};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

pub struct Preflight {
    client: Client,
    /// Kept well inside the webhook's timeoutSeconds.
    budget: Duration,
    permissions: Permissions,
    /// Preflights at once: a tenant looping `--dry-run=server` must not take
    /// every connection to the API server (the controller shares it).
    permits: Arc<Semaphore>,
}

/// The admission a preflight is for.
pub struct Request<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    /// The ECSDeployment's uid (set on UPDATE, and on CREATE by the time
    /// validating webhooks run): a child is this object's by this uid, not by name.
    pub owner_uid: Option<&'a str>,
}

/// Why the cluster refused one object.
pub(crate) struct Rejection {
    kind: &'static str,
    message: String,
    /// Kubernetes field paths named by the API server, when it names any.
    fields: Vec<String>,
}

/// One dry run's outcome.
enum Outcome {
    Accepted,
    /// The cluster's verdict on the object.
    Refused(Rejection),
    /// ecskube's account may not do this here: not the user's fault.
    NotPermitted(Access),
    /// The Pod's share of a full ResourceQuota.
    OverQuota(String),
}

impl Preflight {
    pub fn new(client: Client, budget: Duration, concurrency: usize) -> Self {
        Preflight {
            permissions: Permissions::new(client.clone()),
            client,
            budget,
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
        }
    }

    /// What ecskube may do cluster-wide, asked once at startup.
    pub async fn warm(&self) {
        self.permissions.warm().await;
    }

    /// Dry-runs every child and a Pod; returns diagnostics at ECS paths.
    /// Mapping rejections back to ECS paths re-reads the object, so it runs on `engine`.
    pub async fn check(&self, engine: &Offload, doc: EcsDocument, req: &Request<'_>, objects: Vec<Object>) -> Vec<Diagnostic> {
        let mut report = Report::default();
        let run = async {
            let _permit = self.permits.acquire().await.map_err(|_| None)?;
            self.run(req, &objects).await.map_err(Some)
        };
        let outcomes = match tokio::time::timeout(self.budget, run).await {
            Ok(Ok(outcomes)) => outcomes,
            Ok(Err(e)) => {
                let why = e.map_or("ecskube is shutting down".to_string(), |e| e.to_string());
                report.warning(
                    Code::Preflight,
                    "spec",
                    format!("the cluster's own checks could not run ({why}); they will apply when the controller writes the children"),
                );
                return report.diagnostics;
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
                return report.diagnostics;
            }
        };
        let mut rejections = Vec::new();
        for outcome in outcomes {
            match outcome {
                Outcome::Accepted => {}
                Outcome::Refused(r) => rejections.push(r),
                Outcome::NotPermitted(a) => {
                    report.warning(
                        Code::Preflight,
                        "spec",
                        format!(
                            "ecskube may not {} {} in {:?}, so that check was skipped (see webhook-config/rbac.yaml)",
                            a.verb, a.resource, req.namespace
                        ),
                    );
                }
                Outcome::OverQuota(message) => {
                    report.warning(Code::Preflight, "spec", message);
                }
            }
        }
        if rejections.is_empty() {
            return report.diagnostics;
        }
        let mapped = engine.run(move || {
            let mut report = Report::default();
            let analysis = doc.analyze();
            let pod = objects.iter().find_map(pod_from).and_then(|p| p.spec);
            for r in rejections {
                mapping::map_rejection(&r, analysis.task.as_ref(), pod.as_ref(), &mut report);
            }
            // The Deployment and its Pod often fail for the same reason: say it once per place.
            let mut seen = std::collections::HashSet::new();
            report.diagnostics.retain(|d| seen.insert(d.path.clone()));
            report.diagnostics
        });
        match mapped.await {
            Ok(diags) => report.diagnostics.extend(diags),
            Err(e) => {
                report.error(Code::Preflight, "spec", format!("the cluster refuses the children, and {e}"));
            }
        }
        report.diagnostics
    }

    /// Every child and the Pod are checked at once: the admission waits for the slowest, not the sum.
    async fn run(&self, req: &Request<'_>, objects: &[Object]) -> Result<Vec<Outcome>, kube::Error> {
        let children = objects.iter().map(|object| self.dry_apply(req, object));
        let pod = self.dry_run_pod(req, objects);
        let (children, pod) = futures::future::join(futures::future::try_join_all(children), pod).await;
        let mut outcomes = children?;
        outcomes.push(pod?);
        Ok(outcomes)
    }

    async fn dry_run_pod(&self, req: &Request<'_>, objects: &[Object]) -> Result<Outcome, kube::Error> {
        let Some(mut pod) = objects.iter().find_map(pod_from) else {
            return Ok(Outcome::Accepted);
        };
        // The ServiceAccount this admission would create exists only as a dry
        // run, and a Pod naming a missing account is refused: the namespace's
        // `default` stands in (nothing the cluster judges about a Pod depends on which).
        if let Some(spec) = pod.spec.as_mut() {
            let ours = objects
                .iter()
                .any(|o| matches!(o, Object::ServiceAccount(_)) && o.metadata().name == spec.service_account_name);
            if ours {
                spec.service_account_name = Some("default".into());
            }
        }
        let access = Access {
            group: "",
            resource: "pods",
            verb: "create",
        };
        let api: Api<Pod> = Api::namespaced(self.client.clone(), req.namespace);
        let params = PostParams {
            dry_run: true,
            field_manager: Some("ecskube".into()),
        };
        match api.create(&params, &pod).await {
            // The dry-run Pod fitting says nothing about the workload's own
            // pods: judge those against the quotas' hard limits too, so the
            // verdict never depends on how many pods run right now.
            Ok(_) => Ok(match self.workload_over_quota(req, objects, &pod).await {
                Some(rejection) => Outcome::Refused(rejection),
                None => Outcome::Accepted,
            }),
            Err(kube::Error::Api(s)) if s.code == 403 && quota::is_quota_refusal(&s.message) => {
                Ok(match self.workload_over_quota(req, objects, &pod).await {
                    Some(rejection) => Outcome::Refused(rejection),
                    // Only the dry-run Pod's own share did not fit.
                    None => Outcome::OverQuota(format!(
                        "the namespace's ResourceQuota has no room for one more pod right now ({}); the workload itself fits, so the rollout waits for room",
                        s.message.split("exceeded quota:").nth(1).unwrap_or(&s.message).trim()
                    )),
                })
            }
            Err(e) => self.classify("Pod", access, req.namespace, e).await,
        }
    }

    /// The workload's own pods, all of them, against the quotas' hard limits.
    async fn workload_over_quota(&self, req: &Request<'_>, objects: &[Object], pod: &Pod) -> Option<Rejection> {
        let replicas = objects
            .iter()
            .find_map(|o| match o {
                Object::Deployment(d) => Some(i64::from(d.spec.replicas.unwrap_or(1))),
                Object::DaemonSet(_) => Some(1),
                _ => None,
            })
            .unwrap_or(1);
        let api: Api<ResourceQuota> = Api::namespaced(self.client.clone(), req.namespace);
        let quotas = match api.list(&ListParams::default()).await {
            Ok(list) => list.items,
            Err(_) => Vec::new(),
        };
        let spec = pod.spec.clone().unwrap_or_default();
        let (name, resource, needed, limit) = quota::exceeded_by_workload(&quotas, &spec, replicas)?;
        Some(Rejection {
            kind: "Pod",
            message: format!(
                "the workload's {replicas} pods need {needed} of {resource}, more than ResourceQuota {name:?} allows ({limit})"
            ),
            fields: Vec::new(),
        })
    }

    /// A collision with an object this ECSDeployment does not own (by its
    /// controller reference; a cluster-scoped EFS volume by its owner label),
    /// or the cluster's verdict on a dry-run server-side apply.
    async fn dry_apply(&self, req: &Request<'_>, object: &Object) -> Result<Outcome, kube::Error> {
        let child = children::kind_of(object);
        let (group, resource) = child.group_resource();
        let access = |verb| Access { group, resource, verb };
        let kind = child.name();
        let ar = child.api_resource();
        let api: Api<DynamicObject> = if child.is_cluster_scoped() {
            Api::all_with(self.client.clone(), &ar)
        } else {
            Api::namespaced_with(self.client.clone(), req.namespace, &ar)
        };
        let mut object: DynamicObject = serde_json::to_value(object)
            .and_then(serde_json::from_value)
            .map_err(kube::Error::SerdeError)?;
        let name = object.metadata.name.clone().unwrap_or_default();
        let existing = match api.get_opt(&name).await {
            Ok(existing) => existing,
            Err(e) => return self.classify(kind, access("get"), req.namespace, e).await,
        };
        if let Some(live) = &existing {
            if let Ownership::Foreign(why) = children::ownership_of(child, Some(&live.metadata), req.owner_uid.unwrap_or_default()) {
                let place = if child.is_cluster_scoped() {
                    String::new()
                } else {
                    format!(" in {:?}", req.namespace)
                };
                return Ok(Outcome::Refused(Rejection {
                    kind,
                    message: format!("a {kind} named {name:?} already exists{place} and is {why}; it would not be overwritten"),
                    fields: Vec::new(),
                }));
            }
        }
        if !child.is_cluster_scoped() {
            object.metadata.namespace = Some(req.namespace.to_string());
        }
        let params = PatchParams::apply("ecskube").force().dry_run();
        match api.patch(&name, &params, &Patch::Apply(&object)).await {
            Ok(_) => Ok(Outcome::Accepted),
            Err(e) => {
                let verb = if existing.is_some() { "patch" } else { "create" };
                self.classify(kind, access(verb), req.namespace, e).await
            }
        }
    }

    /// An API rejection is a finding, unless it is one of ecskube's own
    /// rights (asked, not read from the message); any other failure stops the preflight.
    async fn classify(&self, kind: &'static str, access: Access, namespace: &str, e: kube::Error) -> Result<Outcome, kube::Error> {
        match e {
            kube::Error::Api(status) if (400..500).contains(&status.code) && status.code != 401 && status.code != 429 => {
                if status.code == 403 && !self.permissions.allowed(namespace, access).await {
                    return Ok(Outcome::NotPermitted(access));
                }
                let fields = status
                    .details
                    .as_ref()
                    .map(|d| d.causes.iter().map(|c| c.field.clone()).filter(|f| !f.is_empty()).collect())
                    .unwrap_or_default();
                Ok(Outcome::Refused(Rejection {
                    kind,
                    message: status.message.clone(),
                    fields,
                }))
            }
            other => Err(other),
        }
    }
}

/// One Pod as the workload would create it.
pub(crate) fn pod_from(object: &Object) -> Option<Pod> {
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
