//! Leader election on a coordination.k8s.io/v1 Lease, so that of several
//! replicas only one reconciles. kube-rs has none built in; this follows
//! client-go's scheme: take the Lease when it is absent or expired, renew it
//! with optimistic concurrency (replace with resourceVersion), and stop
//! leading as soon as a renewal cannot be proven in time.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub const DEFAULT_LEASE_NAME: &str = "ecskube-controller";

#[derive(Debug, Clone)]
pub struct LeaderConfig {
    pub namespace: String,
    pub name: String,
    /// Unique per replica: the pod name, or hostname and pid.
    pub identity: String,
    /// How long a Lease is valid after its last renewal (whole seconds in the Lease).
    pub lease_duration: Duration,
    /// How often the leader renews (and a follower retries).
    pub renew_interval: Duration,
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
    if let Ok(pod) = std::env::var("POD_NAME") {
        if !pod.is_empty() {
            return pod;
        }
    }
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok().map(|h| h.trim().to_string()))
        .unwrap_or_else(|| "ecskube".into());
    format!("{host}-{}", std::process::id())
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

/// A running election. Dropping it stops campaigning (the Lease then expires).
pub struct LeaderElector {
    is_leader: watch::Receiver<bool>,
    task: JoinHandle<()>,
}

impl LeaderElector {
    pub fn spawn(client: Client, config: LeaderConfig) -> Self {
        let (tx, is_leader) = watch::channel(false);
        let task = tokio::spawn(campaign(Api::namespaced(client, &config.namespace), config, tx));
        LeaderElector { is_leader, task }
    }

    /// True while this replica holds the Lease.
    pub fn is_leader(&self) -> watch::Receiver<bool> {
        self.is_leader.clone()
    }
}

impl Drop for LeaderElector {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn campaign(api: Api<Lease>, config: LeaderConfig, tx: watch::Sender<bool>) {
    let mut last_renewal: Option<Instant> = None;
    loop {
        // A hung request must not keep a leader past its deadline.
        let budget = match last_renewal {
            Some(t) => config.renew_deadline().saturating_sub(t.elapsed()),
            None => config.renew_deadline(),
        };
        let result = match tokio::time::timeout(budget, try_acquire_or_renew(&api, &config)).await {
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
        tokio::time::sleep(config.renew_interval).await;
    }
}

/// Ok(true): we hold the Lease now. Ok(false): someone else validly does.
async fn try_acquire_or_renew(api: &Api<Lease>, config: &LeaderConfig) -> Result<bool, kube::Error> {
    let now = Timestamp::now();
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
            Ok(_) => Ok(true),
            Err(e) if is_status(&e, 409) => Ok(false),
            Err(e) => Err(e),
        };
    };
    let spec = lease.spec.get_or_insert_default();
    let ours = spec.holder_identity.as_deref() == Some(config.identity.as_str());
    if !ours {
        if !expired(spec, now) {
            return Ok(false);
        }
        spec.holder_identity = Some(config.identity.clone());
        spec.acquire_time = Some(MicroTime(now));
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
    }
    spec.renew_time = Some(MicroTime(now));
    spec.lease_duration_seconds = Some(config.lease_seconds());
    // The resourceVersion from the read makes this fail if anyone wrote in between;
    // that is reported as an error and decided by the next round's read.
    api.replace(&config.name, &PostParams::default(), &lease).await?;
    Ok(true)
}

/// Unheld, never renewed, or not renewed within its duration.
pub fn expired(spec: &LeaseSpec, now: Timestamp) -> bool {
    if spec.holder_identity.as_deref().is_none_or(str::is_empty) {
        return true;
    }
    match (&spec.renew_time, spec.lease_duration_seconds) {
        (Some(MicroTime(renewed)), Some(secs)) => *renewed + SignedDuration::from_secs(i64::from(secs)) < now,
        _ => true,
    }
}

fn is_status(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(holder: Option<&str>, renewed: i64, secs: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: holder.map(str::to_string),
            renew_time: Some(MicroTime(Timestamp::from_second(renewed).unwrap())),
            lease_duration_seconds: Some(secs),
            ..Default::default()
        }
    }

    #[test]
    fn a_lease_expires_after_its_duration_since_renewal() {
        let now = Timestamp::from_second(1_000).unwrap();
        assert!(!expired(&spec(Some("a"), 995, 10), now));
        assert!(expired(&spec(Some("a"), 989, 10), now));
        assert!(expired(&spec(None, 999, 10), now));
        assert!(expired(&spec(Some(""), 999, 10), now));
        assert!(expired(&LeaseSpec::default(), now));
    }

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
    fn identities_are_unique_per_process() {
        assert!(default_identity().ends_with(&std::process::id().to_string()) || std::env::var("POD_NAME").is_ok());
    }
}
