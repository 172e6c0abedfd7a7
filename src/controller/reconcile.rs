//! One reconcile: read the definitions (inline or from ConfigMaps), translate,
//! server-side apply every child this ECSDeployment controls, delete the
//! children it no longer wants, and write the status when it changed.

use super::children::{self, ChildId, ChildKind, Desired, Ownership, Reference};
use super::events::{self, Events};
use super::status::{self, reason, Observed, Problem, Workload};
use super::stores::ChildStores;
use super::write::{self, WriteError};
use super::{Error, Metrics};
use crate::crd::ECSDeployment;
use crate::document::{config_map_path, config_map_refs, definition_from_config_map, shareable, source_digest, EcsDocument};
use crate::policy::Policy;
use crate::translate::{convert_with, ConvertError, Integrations, Object, Options, MANAGER};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams, Preconditions};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

pub(crate) struct Context {
    pub client: Client,
    /// The children as the watches last saw them (reads cost no API call).
    pub children: ChildStores,
    /// The ECSDeployments, to forget the backoff of objects that are gone.
    pub objects: Store<ECSDeployment>,
    pub requeue_after: Duration,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    pub metrics: Arc<Metrics>,
    pub events: Events,
    /// Consecutive failures per object, for exponential backoff.
    pub failures: Mutex<HashMap<ObjectRef<ECSDeployment>, u32>>,
    /// Set with leader election: a reconcile that starts after leadership is lost does nothing.
    pub leader: Option<watch::Receiver<bool>>,
    pub policy: crate::policy::PolicyStore,
    pub offload: crate::offload::Offload,
    /// What the cluster runs that ECS fields map to (API discovery).
    pub integrations: crate::integrations::IntegrationsStore,
}

pub(crate) async fn reconcile(obj: Arc<ECSDeployment>, ctx: Arc<Context>) -> Result<Action, Error> {
    if ctx.leader.as_ref().is_some_and(|l| !*l.borrow()) {
        return Ok(Action::await_change());
    }
    // Deletion is garbage collection's job (ownerReferences); nothing to do.
    if obj.metadata.deletion_timestamp.is_some() {
        ctx.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&ObjectRef::from_obj(&*obj));
        return Ok(Action::await_change());
    }
    let started = std::time::Instant::now();
    let result = Reconciler { obj: &obj, ctx: &ctx }.run().await;
    ctx.metrics
        .reconciled(started.elapsed().as_secs_f64(), result.as_ref().err().map(Error::reason));
    if result.is_ok() {
        ctx.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&ObjectRef::from_obj(&*obj));
    }
    result
}

/// Exponential backoff per object: initial, doubling, capped.
pub(crate) fn error_policy(obj: Arc<ECSDeployment>, error: &Error, ctx: Arc<Context>) -> Action {
    let mut failures = ctx.failures.lock().unwrap_or_else(|e| e.into_inner());
    // Objects deleted while failing never reconcile again: forget them here.
    failures.retain(|o, _| ctx.objects.get(o).is_some());
    let n = failures.entry(ObjectRef::from_obj(&*obj)).or_insert(0);
    *n = n.saturating_add(1);
    let delay = backoff(ctx.backoff_initial, ctx.backoff_max, *n);
    tracing::warn!(name = %obj.name_any(), namespace = ?obj.namespace(), %error, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

pub(crate) fn backoff(initial: Duration, max: Duration, failures: u32) -> Duration {
    let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(20));
    initial.saturating_mul(factor).min(max)
}

struct Reconciler<'a> {
    obj: &'a ECSDeployment,
    ctx: &'a Context,
}

/// A child as it is in the cluster after this reconcile.
struct Live {
    id: ChildId,
    object: DynamicObject,
}

impl Reconciler<'_> {
    fn namespace(&self) -> Result<String, Error> {
        self.obj.namespace().ok_or(Error::MissingField("metadata.namespace"))
    }

    fn api(&self, kind: ChildKind) -> Result<Api<DynamicObject>, Error> {
        if kind.is_cluster_scoped() {
            return Ok(Api::all_with(self.ctx.client.clone(), &kind.api_resource()));
        }
        Ok(Api::namespaced_with(
            self.ctx.client.clone(),
            &self.namespace()?,
            &kind.api_resource(),
        ))
    }

    /// The child as it is: from the watch store, or read (kinds not watched).
    async fn live(&self, api: &Api<DynamicObject>, id: &ChildId) -> Result<Option<DynamicObject>, Error> {
        if id.kind.is_custom() {
            return match api.get_opt(&id.name).await {
                Ok(found) => Ok(found),
                // The CRD is gone (uninstalled): nothing of that kind exists.
                Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
                Err(e) => Err(e.into()),
            };
        }
        Ok(self.ctx.children.get(id.kind, &self.namespace()?, &id.name))
    }

    async fn run(&self) -> Result<Action, Error> {
        let uid = self.obj.uid().ok_or(Error::MissingField("metadata.uid"))?;
        let previous = self.obj.status.clone();
        let mut observed = Observed {
            generation: self.obj.metadata.generation,
            ..Default::default()
        };
        let requeue = self.ctx.requeue_after;
        let mut apply_failed = None;

        match self.translate().await? {
            Err(problem) => observed.problems.push(problem),
            Ok((name, desired, digest)) => {
                observed.source_digest = digest;
                let mut live = Vec::new();
                // The ServiceAccount goes first: pods must never run as an
                // identity this ECSDeployment does not own.
                let mut identity_ours = true;
                for d in children::in_apply_order(&desired) {
                    if d.id.kind.is_workload() && !identity_ours {
                        continue;
                    }
                    match self.write_child(d, &uid).await? {
                        Ok(Some(object)) => live.push(Live { id: d.id.clone(), object }),
                        Ok(None) => {}
                        Err(mut problem) => {
                            if d.id.kind == ChildKind::ServiceAccount && problem.reason == reason::CHILD_CONFLICT {
                                identity_ours = false;
                                problem = Problem::new(
                                    reason::SERVICE_ACCOUNT_CONFLICT,
                                    format!("{}; the workload was not applied, since its pods would run as that ServiceAccount (rename the ECSDeployment, or remove taskRoleArn)", problem.message),
                                );
                            }
                            if problem.reason == reason::APPLY_FAILED {
                                apply_failed = Some(problem.message.clone());
                            }
                            observed.problems.push(problem);
                        }
                    }
                }
                if identity_ours {
                    let previous_children = previous.as_ref().map(|s| s.children.clone()).unwrap_or_default();
                    for stale in children::stale_candidates(&desired, &name, &previous_children) {
                        self.delete_if_ours(&stale, &uid).await?;
                    }
                }
                for r in children::pod_references(&desired) {
                    if let Some(problem) = self.check_reference(&r).await? {
                        observed.problems.push(problem);
                    }
                }
                observe_children(&mut observed, &desired, &live);
            }
        }

        let now = Time(Timestamp::now());
        let new_status = status::compute(&observed, previous.as_ref(), &now);
        if previous.as_ref() != Some(&new_status) {
            self.ctx.events.degraded_changed(self.obj, previous.as_ref(), &new_status).await;
            self.write_status(&new_status).await?;
        }
        match apply_failed {
            // After the status says why: retry with backoff.
            Some(message) => Err(Error::ApplyFailed(message)),
            None => Ok(Action::requeue(requeue)),
        }
    }

    /// The children's name and desired objects, or why there are none. The
    /// engine and the admin policy run off the async workers, with a deadline.
    async fn translate(&self) -> Result<Result<(String, Vec<Desired>, Option<String>), Problem>, Error> {
        let value = serde_json::to_value(self.obj)?;
        let mut doc = self.obj.document();
        let mut texts = Vec::new();
        for (which, name, key) in config_map_refs(&value) {
            let (definition, text) = match self.read_config_map_key(which, &name, &key).await? {
                Ok(v) => v,
                Err(problem) => return Ok(Err(problem)),
            };
            let source = Some((definition, config_map_path(&name, &key)));
            match which {
                "Task" => doc.from_config_maps.task = source,
                _ => doc.from_config_maps.service = source,
            }
            texts.push((which, name, key, text));
        }
        let digest = (!texts.is_empty()).then(|| source_digest(texts.iter().map(|(w, n, k, t)| (*w, n.as_str(), k.as_str(), t.as_str()))));
        let namespace = self.namespace()?;
        let policy = self.ctx.policy.current();
        let integrations = self.ctx.integrations.current();
        let judged = self.ctx.offload.run(move || judge(&doc, &namespace, &policy, &integrations)).await;
        Ok(match judged {
            Ok(Ok((name, objects))) => Ok((name, children::desired(&objects, self.obj), digest)),
            Ok(Err(problem)) => Err(problem),
            Err(e) => Err(Problem::new(reason::EVALUATION_FAILED, e.to_string())),
        })
    }

    /// The definition in a ConfigMap key (JSON or YAML; one document, or a
    /// Task/Service pair), and the key's text.
    async fn read_config_map_key(&self, which: &str, name: &str, key: &str) -> Result<Result<(Value, String), Problem>, Error> {
        let api: Api<ConfigMap> = Api::namespaced(self.ctx.client.clone(), &self.namespace()?);
        let missing = |message: String| Ok(Err(Problem::new(reason::CONFIG_MAP_MISSING, message)));
        let Some(cm) = api.get_opt(name).await? else {
            return missing(format!("ConfigMap {name} (spec.{which}From) does not exist"));
        };
        let Some(text) = cm.data.as_ref().and_then(|d| d.get(key)) else {
            return missing(format!("ConfigMap {name} (spec.{which}From) has no key {key}"));
        };
        Ok(definition_from_config_map(which, name, key, text)
            .map(|v| (v, text.clone()))
            .map_err(|message| Problem::new(reason::TRANSLATION_FAILED, message)))
    }

    /// Applies one child unless another owner controls it. Ok(Ok(Some)) is the
    /// child as it now is; Ok(Err) a problem for the status; Err a transient failure.
    async fn write_child(&self, d: &Desired, uid: &str) -> Result<Result<Option<DynamicObject>, Problem>, Error> {
        let api = self.api(d.id.kind)?;
        let live = self.live(&api, &d.id).await?;
        let live = match live {
            Some(live) => live,
            // Not in the store: create it. A store that lags (or an object
            // without ecskube's label) shows as a taken name: read it then.
            None => match write::create(&api, &d.value).await {
                Ok(created) => {
                    self.ctx.metrics.wrote(d.id.kind.name(), "create");
                    self.ctx.events.child(self.obj, events::CREATED, &d.id).await;
                    return Ok(Ok(Some(created)));
                }
                Err(WriteError::Raced) => match api.get_opt(&d.id.name).await? {
                    Some(live) => live,
                    None => {
                        return Err(Error::ApplyFailed(format!(
                            "{} was deleted while ecskube was creating it; retrying",
                            d.id
                        )))
                    }
                },
                Err(e) => return refused(&d.id, e),
            },
        };
        if let Ownership::Foreign(why) = children::ownership_of(d.id.kind, Some(&live.metadata), uid) {
            let message = format!("{} already exists and is {why}; it was left unchanged", d.id);
            return Ok(Err(Problem::new(reason::CHILD_CONFLICT, message)));
        }
        let mut value = std::borrow::Cow::Borrowed(&d.value);
        if d.replicas_from_autoscaler {
            // The autoscaler owns the count now: never send it again.
            if let Some(spec) = value.to_mut().get_mut("spec").and_then(Value::as_object_mut) {
                spec.remove("replicas");
            }
        }
        if !children::needs_apply(&value, &serde_json::to_value(&live)?) {
            return Ok(Ok(Some(live)));
        }
        if d.replicas_from_autoscaler && children::applies_replicas(&live.metadata, MANAGER) {
            // Dropping a field we own by apply would delete it (back to 1
            // replica) before the autoscaler sets it: hand it over first.
            if let Err(e) = write::hand_over_replicas(&api, &live).await {
                return refused(&d.id, e);
            }
        }
        match write::apply_over(&api, &value, live.metadata.uid.as_deref().unwrap_or_default()).await {
            Ok(applied) => {
                self.ctx.metrics.wrote(d.id.kind.name(), "apply");
                if live.metadata.resource_version != applied.metadata.resource_version {
                    self.ctx.events.child(self.obj, events::UPDATED, &d.id).await;
                }
                Ok(Ok(Some(applied)))
            }
            // Replaced or deleted since it was read: look again, with backoff.
            Err(WriteError::Raced) => Err(Error::ApplyFailed(format!("{} changed while it was being updated; retrying", d.id))),
            Err(e) => refused(&d.id, e),
        }
    }

    async fn delete_if_ours(&self, id: &ChildId, uid: &str) -> Result<(), Error> {
        let api = self.api(id.kind)?;
        let Some(live) = self.live(&api, id).await? else {
            return Ok(());
        };
        if children::ownership_of(id.kind, Some(&live.metadata), uid) != Ownership::Ours {
            return Ok(());
        }
        let params = DeleteParams {
            // Exactly the object we checked, even if it was replaced meanwhile.
            preconditions: Some(Preconditions {
                uid: live.metadata.uid.clone(),
                resource_version: None,
            }),
            ..DeleteParams::background()
        };
        match api.delete(&id.name, &params).await {
            Ok(_) => {
                self.ctx.metrics.wrote(id.kind.name(), "delete");
                self.ctx.events.child(self.obj, events::DELETED, id).await;
                Ok(())
            }
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// ConfigMaps the pods need. Secrets are not checked: reading them (even
    /// their metadata) would need `get` on every Secret of the cluster.
    async fn check_reference(&self, r: &Reference) -> Result<Option<Problem>, Error> {
        let Reference::ConfigMap(name) = r else { return Ok(None) };
        let api = Api::<ConfigMap>::namespaced(self.ctx.client.clone(), &self.namespace()?);
        let exists = api.get_metadata_opt(name).await?.is_some();
        Ok((!exists).then(|| {
            Problem::new(
                reason::CONFIG_MAP_MISSING,
                format!("ConfigMap {name}, which the pods need, does not exist"),
            )
        }))
    }

    /// Server-side apply of the status subresource: fields no longer set are removed.
    async fn write_status(&self, status: &crate::crd::ECSDeploymentStatus) -> Result<(), Error> {
        let api: Api<ECSDeployment> = Api::namespaced(self.ctx.client.clone(), &self.namespace()?);
        let patch = json!({
            "apiVersion": ECSDeployment::api_version(&()),
            "kind": ECSDeployment::kind(&()),
            "metadata": {"name": self.obj.name_any()},
            "status": status,
        });
        api.patch_status(&self.obj.name_any(), &PatchParams::apply(MANAGER).force(), &Patch::Apply(&patch))
            .await?;
        self.ctx.metrics.wrote("ECSDeployment", "status");
        Ok(())
    }
}

/// Replica counts from the workload, the Service's address, and the children that exist.
fn observe_children(observed: &mut Observed, desired: &[Desired], live: &[Live]) {
    for l in live {
        match l.id.kind {
            ChildKind::Deployment => {
                observed.workload = l
                    .object
                    .clone()
                    .try_parse::<Deployment>()
                    .ok()
                    .map(|d| Workload::from_deployment(&d));
            }
            ChildKind::DaemonSet => {
                observed.workload = l
                    .object
                    .clone()
                    .try_parse::<DaemonSet>()
                    .ok()
                    .map(|d| Workload::from_daemon_set(&d));
            }
            ChildKind::Service => {
                observed.service = Some(l.id.name.clone());
                observed.address = l
                    .object
                    .clone()
                    .try_parse::<Service>()
                    .ok()
                    .and_then(|s| status::service_address(&s));
            }
            // Their own controllers report on them (ESO, the AWS Load
            // Balancer Controller, the HPA); ecskube lists that they exist.
            _ => {}
        }
    }
    // Children we could not write are not ours to list.
    let mut ids: Vec<String> = desired
        .iter()
        .filter(|d| live.iter().any(|l| l.id == d.id))
        .map(|d| d.id.to_string())
        .collect();
    ids.sort();
    observed.children = Some(ids);
}

/// Any answer of the API server that refused a child becomes a problem in the
/// status (the user sees why, e.g. a full Service IP range, which answers 500),
/// then the reconcile retries with backoff; no answer at all is an error.
fn refused(id: &ChildId, e: WriteError) -> Result<Result<Option<DynamicObject>, Problem>, Error> {
    match e {
        WriteError::Kube(kube::Error::Api(s)) => {
            // 400/403/404/422: the object itself is refused; retrying as-is cannot help.
            let retrying = if matches!(s.code, 400 | 403 | 404 | 422) {
                ""
            } else {
                " (retrying)"
            };
            let message = format!("{id} could not be written{retrying}: {}", s.message);
            Ok(Err(Problem::new(reason::APPLY_FAILED, message)))
        }
        WriteError::Kube(e) => Err(e.into()),
        WriteError::Malformed(e) => Err(e.into()),
        WriteError::Raced => Err(Error::ApplyFailed(format!("{id} changed while it was being written; retrying"))),
    }
}

/// The engine's verdict on one object: the children's name and objects, or
/// why there are none. The same checks as admission: the definitions' own
/// errors, then the admin policy for the object's namespace.
fn judge(doc: &EcsDocument, namespace: &str, policy: &Policy, integrations: &Integrations) -> Result<(String, Vec<Object>), Problem> {
    let analysis = doc.analyze();
    let meta = doc.meta(&analysis);
    if analysis.report.has_errors() {
        return Err(Problem::new(
            reason::TRANSLATION_FAILED,
            describe(&ConvertError::Invalid(analysis.report.clone())),
        ));
    }
    let denials = policy.check_in(namespace, &analysis, integrations);
    if !denials.is_empty() {
        let listed = summarize(&shareable(denials), 5);
        return Err(Problem::new(
            reason::POLICY_DENIED,
            format!("the cluster policy refuses the definitions, so the children were left as they are: {listed}"),
        ));
    }
    let options = Options {
        integrations: integrations.clone(),
        ..policy.translate_options(namespace)
    };
    match convert_with(&analysis, &meta, &options) {
        Ok(converted) => Ok((meta.name.clone(), converted.objects)),
        Err(e) => Err(Problem::new(reason::TRANSLATION_FAILED, describe(&e))),
    }
}

/// The first `n` diagnostics, and how many more there are.
fn summarize(diags: &[crate::diag::Diagnostic], n: usize) -> String {
    let shown: Vec<String> = diags.iter().take(n).map(ToString::to_string).collect();
    let mut message = shown.join("; ");
    if diags.len() > n {
        message.push_str(&format!(" (and {} more)", diags.len() - n));
    }
    message
}

/// The translation error with the first few diagnostics.
fn describe(e: &ConvertError) -> String {
    match e {
        ConvertError::Invalid(report) => {
            let errors: Vec<_> = report.errors().cloned().collect();
            format!("the ECS definitions have errors: {}", summarize(&shareable(errors), 5))
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_error(code: u16, message: &str) -> WriteError {
        let status = kube::core::Status::failure(message, "InternalError").with_code(code);
        WriteError::Kube(kube::Error::Api(Box::new(status)))
    }

    #[test]
    fn every_refusal_of_the_api_server_is_a_problem_for_the_status() {
        let id = ChildId {
            kind: ChildKind::Service,
            name: "web".into(),
        };
        let full = "failed to allocate a serviceIP for Service \"web\": range is full";
        let problem = refused(&id, api_error(500, full)).unwrap().unwrap_err();
        assert_eq!(problem.reason, reason::APPLY_FAILED);
        assert!(
            problem.message.contains("(retrying)") && problem.message.ends_with(full),
            "{}",
            problem.message
        );
        let invalid = refused(&id, api_error(422, "spec.ports: Required value")).unwrap().unwrap_err();
        assert!(!invalid.message.contains("retrying"), "{}", invalid.message);
        assert!(refused(&id, WriteError::Raced).is_err(), "a race is retried, not reported");
    }

    #[test]
    fn backoff_doubles_from_the_initial_delay_up_to_the_cap() {
        let (i, m) = (Duration::from_secs(5), Duration::from_secs(300));
        let delays: Vec<u64> = (1..=8).map(|n| backoff(i, m, n).as_secs()).collect();
        assert_eq!(delays, [5, 10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(backoff(i, m, u32::MAX), m);
    }
}
