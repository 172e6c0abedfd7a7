//! Leader election on a coordination.k8s.io/v1 Lease, so that of several
//! replicas only one reconciles. It follows client-go's scheme, where no
//! decision reads another machine's clock:
//!
//! - a follower notes, on its own monotonic clock, when it last saw the
//!   Lease record change, and takes the Lease only once it has stayed
//!   unchanged for the record's duration (the holder's `renewTime` is
//!   written for people and other tools, never compared with local time);
//! - the leader renews with optimistic concurrency (replace with the
//!   resourceVersion it read), and steps down as soon as it cannot prove a
//!   renewal within its deadline, which is shorter than the duration;
//! - on shutdown the leader releases the Lease (empty holder), so a
//!   successor takes it at its next try instead of after the duration.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

pub const DEFAULT_LEASE_NAME: &str = "ecskube-controller";

/// The wall clock written into the Lease (for people and tools); injectable,
/// so a test can give replicas clocks that disagree.
pub type WallClock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

#[derive(Clone)]
pub struct LeaderConfig {
    pub namespace: String,
    pub name: String,
    /// Unique per replica: the pod name, or hostname and pid.
    pub identity: String,
    /// How long a Lease is valid after its last renewal (whole seconds in the Lease).
    pub lease_duration: Duration,
    /// How often the leader renews (and a follower retries).
    pub renew_interval: Duration,
    pub wall_clock: WallClock,
}

impl fmt::Debug for LeaderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeaderConfig")
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .field("identity", &self.identity)
            .field("lease_duration", &self.lease_duration)
            .field("renew_interval", &self.renew_interval)
            .finish_non_exhaustive()
    }
}

impl LeaderConfig {
    /// Lease `ecskube-controller` in `namespace`, 10s duration, renewed every 2s.
    pub fn new(namespace: impl Into<String>) -> Self {
        LeaderConfig {
            namespace: namespace.into(),
            name: DEFAULT_LEASE_NAME.into(),
            identity: default_identity(),
            lease_duration: Duration::from_secs(10),
            renew_interval: Duration::from_secs(2),
            wall_clock: Arc::new(Timestamp::now),
        }
    }

    fn lease_seconds(&self) -> i32 {
        self.lease_duration.as_secs_f64().ceil().max(1.0) as i32
    }

    /// A leader that could not renew for this long steps down: before the
    /// Lease expires for the others, so two leaders never overlap.
    fn renew_deadline(&self) -> Duration {
        let d = Duration::from_secs(self.lease_seconds() as u64);
        d.saturating_sub(self.renew_interval).max(d / 2)
    }
}

/// `POD_NAME` (downward API), else hostname and pid.
pub fn default_identity() -> String {
    let hostname = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok().map(|h| h.trim().to_string()));
    identity(std::env::var("POD_NAME").ok(), hostname, std::process::id())
}

fn identity(pod_name: Option<String>, hostname: Option<String>, pid: u32) -> String {
    if let Some(pod) = pod_name.filter(|p| !p.is_empty()) {
        return pod;
    }
    let host = hostname.filter(|h| !h.is_empty()).unwrap_or_else(|| "ecskube".into());
    format!("{host}-{pid}")
}

/// The pod's namespace (`POD_NAMESPACE`, else the service account's), else `default`.
pub fn default_namespace() -> String {
    std::env::var("POD_NAMESPACE")
        .ok()
        .filter(|n| !n.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
                .ok()
                .map(|n| n.trim().to_string())
        })
        .unwrap_or_else(|| "default".into())
}

/// A running election. Dropping it stops campaigning (the Lease then
/// expires); [`LeaderElector::release`] hands it over at once.
pub struct LeaderElector {
    is_leader: watch::Receiver<bool>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl LeaderElector {
    pub fn spawn(client: Client, config: LeaderConfig) -> Self {
        let (tx, is_leader) = watch::channel(false);
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(campaign(Api::namespaced(client, &config.namespace), config, tx, stopped));
        LeaderElector {
            is_leader,
            stop: Some(stop),
            task,
        }
    }

    /// True while this replica holds the Lease.
    pub fn is_leader(&self) -> watch::Receiver<bool> {
        self.is_leader.clone()
    }

    /// Stops campaigning and, if leading, gives the Lease up.
    pub async fn release(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for LeaderElector {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What a replica last saw of the Lease, and when, by its own clock.
struct Observation {
    resource_version: Option<String>,
    at: Instant,
}

async fn campaign(api: Api<Lease>, config: LeaderConfig, tx: watch::Sender<bool>, mut stopped: oneshot::Receiver<()>) {
    let mut last_renewal: Option<Instant> = None;
    let mut observed: Option<Observation> = None;
    loop {
        // A hung request must not keep a leader past its deadline.
        let budget = match last_renewal {
            Some(t) => config.renew_deadline().saturating_sub(t.elapsed()),
            None => config.renew_deadline(),
        };
        let attempt = try_acquire_or_renew(&api, &config, &mut observed);
        let result = match tokio::time::timeout(budget, attempt).await {
            Ok(r) => r,
            Err(_) => Err(kube::Error::Service("lease request timed out".into())),
        };
        match result {
            Ok(true) => last_renewal = Some(Instant::now()),
            Ok(false) => last_renewal = None,
            Err(e) => {
                tracing::warn!(lease = %config.name, error = %e, "leader election: could not renew or acquire the lease");
                if last_renewal.is_some_and(|t| t.elapsed() >= config.renew_deadline()) {
                    last_renewal = None;
                }
            }
        }
        let leading = last_renewal.is_some();
        tx.send_if_modified(|l| {
            let changed = *l != leading;
            if changed {
                tracing::info!(identity = %config.identity, leading, "leader election: leadership changed");
            }
            *l = leading;
            changed
        });
        tokio::select! {
            _ = tokio::time::sleep(config.renew_interval) => {}
            _ = &mut stopped => {
                tx.send_replace(false);
                if leading {
                    release(&api, &config).await;
                }
                return;
            }
        }
    }
}

/// Ok(true): we hold the Lease now. Ok(false): someone else validly does.
async fn try_acquire_or_renew(api: &Api<Lease>, config: &LeaderConfig, observed: &mut Option<Observation>) -> Result<bool, kube::Error> {
    let now = (config.wall_clock)();
    let Some(mut lease) = api.get_opt(&config.name).await? else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(config.name.clone()),
                namespace: Some(config.namespace.clone()),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(config.identity.clone()),
                lease_duration_seconds: Some(config.lease_seconds()),
                acquire_time: Some(MicroTime(now)),
                renew_time: Some(MicroTime(now)),
                lease_transitions: Some(0),
                ..Default::default()
            }),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(created) => {
                *observed = Some(Observation {
                    resource_version: created.metadata.resource_version,
                    at: Instant::now(),
                });
                Ok(true)
            }
            Err(e) if is_status(&e, 409) => Ok(false),
            Err(e) => Err(e),
        };
    };
    // Any write to the record (a renewal, a new holder) restarts the count.
    let version = lease.metadata.resource_version.clone();
    if observed.as_ref().is_none_or(|o| o.resource_version != version) {
        *observed = Some(Observation {
            resource_version: version,
            at: Instant::now(),
        });
    }
    let spec = lease.spec.get_or_insert_default();
    let holder = spec.holder_identity.clone().unwrap_or_default();
    if holder != config.identity {
        let duration = Duration::from_secs(u64::try_from(spec.lease_duration_seconds.unwrap_or(0)).unwrap_or(0));
        let unchanged_for = observed.as_ref().map_or(Duration::ZERO, |o| o.at.elapsed());
        if !holder.is_empty() && unchanged_for <= duration {
            return Ok(false);
        }
        spec.holder_identity = Some(config.identity.clone());
        spec.acquire_time = Some(MicroTime(now));
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
    }
    spec.renew_time = Some(MicroTime(now));
    spec.lease_duration_seconds = Some(config.lease_seconds());
    // The resourceVersion from the read makes this fail if anyone wrote in
    // between; that is reported as an error and decided by the next round's read.
    let written = api.replace(&config.name, &PostParams::default(), &lease).await?;
    *observed = Some(Observation {
        resource_version: written.metadata.resource_version,
        at: Instant::now(),
    });
    Ok(true)
}

/// Gives the Lease up if we still hold it (holder cleared, as client-go's
/// ReleaseOnCancel does), so the next replica need not wait it out.
async fn release(api: &Api<Lease>, config: &LeaderConfig) {
    let Ok(Some(mut lease)) = api.get_opt(&config.name).await else {
        return;
    };
    let spec = lease.spec.get_or_insert_default();
    if spec.holder_identity.as_deref() != Some(config.identity.as_str()) {
        return;
    }
    spec.holder_identity = None;
    spec.lease_duration_seconds = Some(1);
    spec.renew_time = Some(MicroTime((config.wall_clock)()));
    match api.replace(&config.name, &PostParams::default(), &lease).await {
        Ok(_) => tracing::info!(identity = %config.identity, "leader election: released the lease"),
        Err(e) => tracing::warn!(error = %e, "leader election: could not release the lease; it will expire"),
    }
}

fn is_status(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_leader_steps_down_before_the_lease_expires_for_others() {
        let mut c = LeaderConfig::new("ns");
        assert_eq!(c.lease_seconds(), 10);
        assert_eq!(c.renew_deadline(), Duration::from_secs(8));
        c.lease_duration = Duration::from_millis(2500);
        c.renew_interval = Duration::from_millis(500);
        assert_eq!(c.lease_seconds(), 3);
        assert!(c.renew_deadline() < Duration::from_secs(3));
    }

    #[test]
    fn identities_come_from_the_pod_name_else_host_and_pid() {
        assert_eq!(
            identity(Some("ecskube-7d9f-abcde".into()), Some("node".into()), 7),
            "ecskube-7d9f-abcde"
        );
        assert_eq!(identity(Some(String::new()), Some("node-1".into()), 7), "node-1-7");
        assert_eq!(identity(None, None, 42), "ecskube-42");
        // Two processes on one host never share an identity.
        assert_ne!(identity(None, Some("h".into()), 1), identity(None, Some("h".into()), 2));
    }
}
