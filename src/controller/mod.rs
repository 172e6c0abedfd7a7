//! The controller of `ecskube serve`: turns every ECSDeployment into its
//! Kubernetes children (server-side apply, owned by the ECSDeployment, so
//! garbage collection deletes them) and reports how they are doing in its
//! status. With leader election, only the replica holding the Lease runs it.

pub mod children;
pub mod events;
pub mod leader;
mod reconcile;
pub mod status;
pub mod write;

use crate::crd::ECSDeployment;
use crate::offload::Offload;
use crate::policy::PolicyStore;
use crate::translate::{MANAGED_BY_LABEL, MANAGER};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{controller, watcher, Controller};
use kube::{Api, Client, Resource, ResourceExt};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

pub use leader::{LeaderConfig, LeaderElector};

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
    /// This instance's counters (the process-wide totals are [`reconcile_counts`]).
    pub metrics: Arc<Metrics>,
    /// The admin policy, judged again on what is about to be applied (the
    /// webhook's store: one policy for what is admitted and what runs).
    pub policy: PolicyStore,
    /// Where the engine runs: bounded, with a deadline per object.
    pub offload: Offload,
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
        }
    }
}

/// Reconcile outcomes.
#[derive(Debug, Default)]
pub struct Metrics {
    success: AtomicU64,
    error: AtomicU64,
}

impl Metrics {
    pub const fn new() -> Self {
        Metrics {
            success: AtomicU64::new(0),
            error: AtomicU64::new(0),
        }
    }

    /// (successful, failed) reconciles.
    pub fn reconcile_counts(&self) -> (u64, u64) {
        (self.success.load(Ordering::Relaxed), self.error.load(Ordering::Relaxed))
    }

    fn record(&self, ok: bool) {
        let counter = if ok { &self.success } else { &self.error };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

static TOTALS: Metrics = Metrics::new();

/// (successful, failed) reconciles of every controller in this process, for /metrics.
pub fn reconcile_counts() -> (u64, u64) {
    TOTALS.reconcile_counts()
}

/// Runs the controller until the process ends. `ready` turns true once the
/// ECSDeployment watch has synced (a standby replica, not holding the Lease,
/// is ready too: it is healthy and waiting).
pub async fn run(client: Client, config: ControllerConfig, ready: watch::Sender<bool>) -> anyhow::Result<()> {
    let Some(election) = config.leader_election.clone() else {
        run_controller(client, config, ready, None).await;
        return Ok(());
    };
    let elector = LeaderElector::spawn(client.clone(), election);
    let mut leading = elector.is_leader();
    loop {
        ready.send_replace(true);
        leading.wait_for(|l| *l).await.map_err(|_| Error::LeaderElection)?;
        tracing::info!("leading: starting the controller");
        ready.send_replace(false);
        let mut task = AbortOnDrop(tokio::spawn(run_controller(
            client.clone(),
            config.clone(),
            ready.clone(),
            Some(leading.clone()),
        )));
        tokio::select! {
            lost = leading.wait_for(|l| !*l) => {
                lost.map_err(|_| Error::LeaderElection)?;
                // Dropping the task aborts it, and with it every reconcile in flight.
                drop(task);
                tracing::warn!("lost the lease: stopped the controller");
            }
            ended = &mut task.0 => {
                ended?;
                return Ok(());
            }
        }
    }
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
    // Children carry this label; watching only them keeps memory flat in big clusters.
    let children = all.clone().labels(&format!("{MANAGED_BY_LABEL}={MANAGER}"));
    let main = Controller::new(scoped::<ECSDeployment>(&client, ns), all.clone()).with_config(
        controller::Config::default()
            .concurrency(config.concurrency)
            .debounce(config.debounce),
    );
    let store = main.store();
    let referrers = store.clone();
    let main = main
        .owns(scoped::<Deployment>(&client, ns), children.clone())
        .owns(scoped::<DaemonSet>(&client, ns), children.clone())
        .owns(scoped::<Service>(&client, ns), children.clone())
        .owns(scoped::<ServiceAccount>(&client, ns), children)
        .watches(scoped::<ConfigMap>(&client, ns), all, move |cm| referencing(&referrers, &cm));

    let instance = config
        .leader_election
        .as_ref()
        .map_or_else(leader::default_identity, |l| l.identity.clone());
    let ctx = Arc::new(reconcile::Context {
        events: events::Events::new(client.clone(), instance),
        client,
        requeue_after: config.requeue_after,
        backoff_initial: config.backoff_initial,
        backoff_max: config.backoff_max,
        metrics: config.metrics.clone(),
        failures: Default::default(),
        leader,
        policy: config.policy.clone(),
        offload: config.offload.clone(),
    });
    let readiness = async {
        if store.wait_until_ready().await.is_ok() {
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
    tokio::join!(readiness, running);
}

/// The ECSDeployments in the ConfigMap's namespace whose TaskFrom/ServiceFrom name it.
fn referencing(store: &Store<ECSDeployment>, cm: &ConfigMap) -> Vec<ObjectRef<ECSDeployment>> {
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
