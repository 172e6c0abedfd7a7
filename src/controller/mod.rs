//! The controller of `ecskube serve`: turns every ECSDeployment into its
//! Kubernetes children (server-side apply, owned by the ECSDeployment, so
//! garbage collection deletes them) and reports how they are doing in its
//! status. With leader election, only the replica holding the Lease runs it.

pub mod children;
pub mod events;
pub mod leader;
pub mod metrics;
mod reconcile;
pub mod status;
pub mod stores;
pub mod volumes;
pub mod write;

use crate::crd::ECSDeployment;
use crate::integrations::IntegrationsStore;
use crate::offload::Offload;
use crate::policy::PolicyStore;
use children::ChildKind;
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::DynamicObject;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{controller, watcher, Controller, WatchStreamExt};
use kube::{Api, Client, Resource, ResourceExt};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

pub use leader::{LeaderConfig, LeaderElector};
pub use metrics::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("the object has no {0}")]
    MissingField(&'static str),
    #[error("{0}")]
    ApplyFailed(String),
    #[error("serializing: {0}")]
    Serialize(#[from] serde_json::Error),
    #[error("leader election stopped")]
    LeaderElection,
    #[error("the controller ended while leading")]
    ControllerEnded,
    #[error("the controller panicked: {0}")]
    ControllerPanicked(String),
}

impl Error {
    /// The `reason` label of `ecskube_reconcile_failures_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Kube(kube::Error::Api(_)) => "api_error",
            Error::Kube(_) => "api_unreachable",
            Error::MissingField(_) => "malformed_object",
            Error::ApplyFailed(_) => "apply_failed",
            Error::Serialize(_) => "serialize",
            Error::LeaderElection | Error::ControllerEnded | Error::ControllerPanicked(_) => "controller",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// None: this process always reconciles (one replica).
    pub leader_election: Option<LeaderConfig>,
    /// Reconcile every object again this often, repairing drift nobody reported.
    pub requeue_after: Duration,
    /// Watch one namespace only (None: all).
    pub namespace: Option<String>,
    /// Reconciles running at once.
    pub concurrency: u16,
    /// Wait this long after a trigger for more (a rollout changes the child's
    /// status several times a second): one reconcile instead of many.
    pub debounce: Duration,
    /// Retry delay after the first failure of an object; doubles up to `backoff_max`.
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// Reconciles, failures and writes (registered in /metrics by `ecskube serve`).
    pub metrics: Arc<Metrics>,
    /// The admin policy, judged again on what is about to be applied (the
    /// webhook's store: one policy for what is admitted and what runs).
    pub policy: PolicyStore,
    /// Where the engine runs: bounded, with a deadline per object.
    pub offload: Offload,
    /// What the cluster runs that ECS fields map to; a change reconciles everything again.
    pub integrations: IntegrationsStore,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            leader_election: None,
            requeue_after: Duration::from_secs(300),
            namespace: None,
            concurrency: 16,
            debounce: Duration::from_millis(250),
            backoff_initial: Duration::from_secs(5),
            backoff_max: Duration::from_secs(300),
            metrics: Arc::default(),
            policy: PolicyStore::empty(),
            offload: Offload::for_cores(Duration::from_secs(10)),
            integrations: IntegrationsStore::default(),
        }
    }
}

/// Runs the controller until `shutdown` turns true (then, if leading, it
/// releases the Lease so another replica takes over at once). `ready` turns
/// true once the watches have synced; a standby replica, not holding the
/// Lease, is ready too: it is healthy and waiting.
pub async fn run(
    client: Client,
    config: ControllerConfig,
    ready: watch::Sender<bool>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let metrics = config.metrics.clone();
    let Some(election) = config.leader_election.clone() else {
        metrics.leading.set(1);
        tokio::select! {
            _ = run_controller(client, config, ready, None) => {}
            _ = shutdown.wait_for(|s| *s) => {}
        }
        metrics.leading.set(0);
        return Ok(());
    };
    let elector = LeaderElector::spawn(client.clone(), election);
    let mut leading = elector.is_leader();
    let result = loop {
        ready.send_replace(true);
        tokio::select! {
            became = leading.wait_for(|l| *l) => if became.is_err() { break Err(Error::LeaderElection) },
            _ = shutdown.wait_for(|s| *s) => break Ok(()),
        }
        tracing::info!("leading: starting the controller");
        metrics.leading.set(1);
        ready.send_replace(false);
        let mut task = AbortOnDrop(tokio::spawn(run_controller(
            client.clone(),
            config.clone(),
            ready.clone(),
            Some(leading.clone()),
        )));
        tokio::select! {
            lost = leading.wait_for(|l| !*l) => {
                if lost.is_err() {
                    break Err(Error::LeaderElection);
                }
                // Dropping the task aborts it, and with it every reconcile in flight.
                drop(task);
                metrics.leading.set(0);
                tracing::warn!("lost the lease: stopped the controller");
            }
            ended = &mut task.0 => {
                break match ended {
                    Ok(()) => Err(Error::ControllerEnded),
                    Err(e) => Err(Error::ControllerPanicked(e.to_string())),
                };
            }
            _ = shutdown.wait_for(|s| *s) => {
                drop(task);
                break Ok(());
            }
        }
    };
    // Before the Lease is released, nothing of ours may still be reconciling.
    metrics.leading.set(0);
    elector.release().await;
    result.map_err(Into::into)
}

struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn scoped<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

async fn run_controller(client: Client, config: ControllerConfig, ready: watch::Sender<bool>, leader: Option<watch::Receiver<bool>>) {
    let ns = config.namespace.as_deref();
    // From the API server's watch cache: cheaper lists, same result.
    let all = watcher::Config::default().any_semantic();
    let main = Controller::new(scoped::<ECSDeployment>(&client, ns), all.clone()).with_config(
        controller::Config::default()
            .concurrency(config.concurrency)
            .debounce(config.debounce),
    );
    let store = main.store();
    let referrers = store.clone();
    let (children, streams) = stores::watch(&client, ns);
    // Only the names of ConfigMaps matter here (which ECSDeployment to wake):
    // their data, possibly megabytes each across the cluster, is read when used.
    let config_maps = watcher(scoped::<PartialObjectMeta<ConfigMap>>(&client, ns), all)
        .default_backoff()
        .touched_objects();
    let main = main
        .owns_stream(streams.deployments)
        .owns_stream(streams.daemon_sets)
        .owns_stream(streams.services)
        .owns_stream(streams.service_accounts)
        .owns_stream(streams.claims)
        .owns_stream(streams.autoscalers)
        .watches_stream(streams.volumes, |pv| volume_owner(&pv))
        .reconcile_on(custom_children(&client, ns, &config.integrations, ChildKind::ExternalSecret))
        .reconcile_on(custom_children(&client, ns, &config.integrations, ChildKind::TargetGroupBinding))
        .watches_stream(config_maps, move |cm| referencing(&referrers, &cm))
        .reconcile_all_on(config.integrations.changes());

    let instance = config
        .leader_election
        .as_ref()
        .map_or_else(leader::default_identity, |l| l.identity.clone());
    let ctx_client = client.clone();
    let ctx = Arc::new(reconcile::Context {
        events: events::Events::new(client.clone(), instance),
        client,
        children: children.clone(),
        objects: store.clone(),
        requeue_after: config.requeue_after,
        backoff_initial: config.backoff_initial,
        backoff_max: config.backoff_max,
        metrics: config.metrics.clone(),
        failures: Default::default(),
        leader,
        policy: config.policy.clone(),
        offload: config.offload.clone(),
        integrations: config.integrations.clone(),
    });
    let readiness = async {
        if store.wait_until_ready().await.is_ok() {
            children.wait_until_ready().await;
            ready.send_replace(true);
        }
    };
    let running = main
        .run(reconcile::reconcile, reconcile::error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok((obj, _)) => tracing::debug!(name = %obj.name, namespace = ?obj.namespace, "reconciled"),
                Err(controller::Error::ReconcilerFailed(..)) => {} // logged by error_policy
                Err(e) => tracing::warn!(error = %e, "controller"),
            }
        });
    let cleanup = volumes::keep_sweeping(ctx_client, store.clone(), children.volumes.clone(), config.metrics.clone());
    // The cleanup never ends by itself: the controller's end is the task's.
    tokio::select! {
        _ = async { tokio::join!(readiness, running) } => {}
        () = async { cleanup.await; std::future::pending::<()>().await } => {}
    }
}

/// The ECSDeployments in the ConfigMap's namespace whose TaskFrom/ServiceFrom name it.
fn referencing(store: &Store<ECSDeployment>, cm: &PartialObjectMeta<ConfigMap>) -> Vec<ObjectRef<ECSDeployment>> {
    let (ns, name) = (cm.namespace(), cm.name_any());
    store
        .state()
        .iter()
        .filter(|o| o.namespace() == ns)
        .filter(|o| {
            let refs = [&o.spec.task_from, &o.spec.service_from];
            refs.iter().any(|r| r.as_ref().is_some_and(|r| r.config_map_key_ref.name == name))
        })
        .map(|o| ObjectRef::from_obj(&**o))
        .collect()
}

/// The ECSDeployment an EFS PersistentVolume belongs to (by its labels).
fn volume_owner(pv: &k8s_openapi::api::core::v1::PersistentVolume) -> Option<ObjectRef<ECSDeployment>> {
    let labels = pv.metadata.labels.as_ref()?;
    let name = labels.get(crate::translate::INSTANCE_LABEL)?;
    let namespace = labels.get(crate::translate::OWNER_NAMESPACE_LABEL)?;
    Some(ObjectRef::new(name).within(namespace))
}

/// The ECSDeployment controlling a child, by its controller ownerReference.
fn controller_of(o: &DynamicObject) -> Option<ObjectRef<ECSDeployment>> {
    let r = o.owner_references().iter().find(|r| r.controller == Some(true))?;
    let namespace = o.namespace()?;
    (r.kind == "ECSDeployment").then(|| ObjectRef::new(&r.name).within(&namespace))
}

/// ecskube's children of a kind from another project's CRD: watched while
/// discovery finds the CRD, so deleting or editing one triggers a repair
/// (of the ECSDeployment controlling it).
/// Until then (or once it is gone) the stream waits and reports nothing.
fn custom_children(
    client: &Client,
    namespace: Option<&str>,
    integrations: &IntegrationsStore,
    kind: ChildKind,
) -> impl futures::Stream<Item = ObjectRef<ECSDeployment>> + Send + 'static {
    let ar = kind.api_resource();
    let api: Api<DynamicObject> = match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    };
    let present = {
        let integrations = integrations.clone();
        move || {
            let now = integrations.current();
            match kind {
                ChildKind::ExternalSecret => now.external_secrets.is_some(),
                _ => now.target_group_binding.is_some(),
            }
        }
    };
    let config =
        watcher::Config::default()
            .any_semantic()
            .labels(&format!("{}={}", crate::translate::MANAGED_BY_LABEL, crate::translate::MANAGER));
    let changes = integrations.changes();
    // Wait for the kind (checking at each change), then watch; the watch's
    // errors (the CRD removed) are retried with backoff, never surfaced.
    let ready = futures::stream::once(futures::future::ready(()))
        .chain(changes)
        .filter(move |_| futures::future::ready(present()))
        .take(1);
    ready
        .map(move |()| watcher(api.clone(), config.clone()).default_backoff().touched_objects())
        .flatten()
        .filter_map(|r| futures::future::ready(r.ok().as_ref().and_then(controller_of)))
}
