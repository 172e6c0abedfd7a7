//! Which serving certificate each replica serves, so that a CA rotation
//! drops the old CA from `caBundle` only once every replica serves a
//! certificate the new CA signed (a replica that stopped following the
//! Secret would otherwise fail every admission it receives).
//!
//! Each ready replica keeps a Lease of its own, labelled
//! [`REPORT_LABEL`], whose annotation is the SHA-256 of the certificate it
//! serves: kube-apiserver's identity Leases are the pattern. The
//! certificate manager judges a report live by watching it change (local
//! observation, as client-go's leader election does, so no two clocks are
//! compared), ignores a report that stopped changing, and deletes it later.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, Patch, PatchParams};
use kube::{Client, ResourceExt};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

use super::tls::ReloadingCert;

pub const REPORT_LABEL: &str = "ecskube.ecskube/serving-report";
pub const SERVING_ANNOTATION: &str = "ecskube.ecskube/serving-certificate-sha256";
const MANAGER: &str = "ecskube-serving-report";

/// How often a replica renews its report, and how long the report stays
/// live without a renewal.
#[derive(Debug, Clone, Copy)]
pub struct ReportTiming {
    pub renew: Duration,
    pub lease: Duration,
}

impl ReportTiming {
    pub fn every(renew: Duration) -> Self {
        ReportTiming { renew, lease: renew * 3 }
    }
}

/// Hex SHA-256 of a DER certificate.
pub fn fingerprint_der(der: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Hex SHA-256 of the first certificate in `pem`.
pub fn fingerprint_pem(pem: &str) -> Option<String> {
    let der = rustls_pemfile::certs(&mut pem.as_bytes()).next()?.ok()?;
    Some(fingerprint_der(der.as_ref()))
}

/// The report's name for a replica: `ecskube-webhook-serving-<identity>`,
/// made a valid object name whatever the identity holds.
pub fn report_name(identity: &str) -> String {
    let cleaned: String = identity
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let mut name = format!("ecskube-webhook-serving-{}", cleaned.trim_matches(['-', '.']));
    name.truncate(253);
    name.trim_end_matches(['-', '.']).to_string()
}

fn report(name: &str, identity: &str, fingerprint: &str, timing: ReportTiming) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(BTreeMap::from([(REPORT_LABEL.to_string(), "true".to_string())])),
            annotations: Some(BTreeMap::from([(SERVING_ANNOTATION.to_string(), fingerprint.to_string())])),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(identity.to_string()),
            lease_duration_seconds: Some(timing.lease.as_secs().max(1) as i32),
            renew_time: Some(MicroTime(k8s_openapi::jiff::Timestamp::now())),
            ..Default::default()
        }),
    }
}

/// Every replica, while ready: keep its report saying what it serves
/// (at once after a change, else every `timing.renew`); removed at shutdown.
pub async fn keep_reporting(
    client: Client,
    namespace: String,
    identity: String,
    resolver: Arc<ReloadingCert>,
    mut ready: watch::Receiver<bool>,
    timing: ReportTiming,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let api: Api<Lease> = Api::namespaced(client, &namespace);
    let name = report_name(&identity);
    let params = PatchParams::apply(MANAGER).force();
    let mut last: Option<(String, Instant)> = None;
    loop {
        if *ready.borrow_and_update() {
            let served = resolver.current().cert.first().map(|der| fingerprint_der(der.as_ref()));
            if let Some(served) = served {
                let due = match &last {
                    Some((fp, at)) => *fp != served || at.elapsed() >= timing.renew,
                    None => true,
                };
                if due {
                    let body = report(&name, &identity, &served, timing);
                    match api.patch(&name, &params, &Patch::Apply(&body)).await {
                        Ok(_) => last = Some((served, Instant::now())),
                        Err(e) => tracing::warn!(error = %e, lease = %name, "reporting the served certificate"),
                    }
                }
            }
        }
        tokio::select! {
            // Short: a new certificate is reported within a second of being served.
            _ = tokio::time::sleep(Duration::from_secs(1).min(timing.renew)) => {}
            _ = ready.changed() => {}
            _ = shutdown.wait_for(|s| *s) => break,
        }
    }
    if last.is_some() {
        let _ = api.delete(&name, &DeleteParams::default()).await;
    }
    Ok(())
}

/// One replica's report as the manager sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub name: String,
    pub fingerprint: Option<String>,
    /// Changed within its lease duration, as observed here.
    pub live: bool,
    /// Unchanged for four lease durations: its replica is gone.
    pub gone: bool,
}

/// The manager's memory of the reports: when each last changed, by its
/// resourceVersion, on this process's own clock.
#[derive(Debug, Default)]
pub struct ReportTracker {
    seen: HashMap<String, (String, Instant)>,
}

impl ReportTracker {
    /// Judges `leases` at `now`. A report seen for the first time counts
    /// as live: it may only prove itself stale by not changing.
    pub fn observe(&mut self, leases: &[Lease], now: Instant) -> Vec<Report> {
        let mut out = Vec::new();
        let mut current = HashMap::new();
        for lease in leases {
            let name = lease.name_any();
            let version = lease.resource_version().unwrap_or_default();
            let changed_at = match self.seen.get(&name) {
                Some((v, at)) if *v == version => *at,
                _ => now,
            };
            let duration = lease
                .spec
                .as_ref()
                .and_then(|s| s.lease_duration_seconds)
                .map_or(Duration::from_secs(15), |s| Duration::from_secs(s.max(1) as u64));
            let quiet = now.saturating_duration_since(changed_at);
            out.push(Report {
                fingerprint: lease.annotations().get(SERVING_ANNOTATION).cloned(),
                live: quiet < duration,
                gone: quiet >= duration * 4,
                name: name.clone(),
            });
            current.insert(name, (version, changed_at));
        }
        self.seen = current;
        out
    }
}

/// The live reports that serve something other than `current`: the
/// replicas the old CA must stay for. No live report at all is not a
/// confirmation either (the manager's own replica reports too).
pub fn lagging(reports: &[Report], current: &str) -> Result<(), Vec<String>> {
    let live: Vec<&Report> = reports.iter().filter(|r| r.live).collect();
    if live.is_empty() {
        return Err(Vec::new());
    }
    let behind: Vec<String> = live
        .iter()
        .filter(|r| r.fingerprint.as_deref() != Some(current))
        .map(|r| r.name.clone())
        .collect();
    if behind.is_empty() {
        Ok(())
    } else {
        Err(behind)
    }
}

/// Lists the reports, deletes those whose replicas are gone, and says
/// whether every live one serves `current_cert` (the Err names the others).
pub async fn confirm(
    client: &Client,
    namespace: &str,
    tracker: &mut ReportTracker,
    current_cert: &str,
) -> anyhow::Result<Result<(), Vec<String>>> {
    let api: Api<Lease> = Api::namespaced(client.clone(), namespace);
    let leases = api.list(&ListParams::default().labels(&format!("{REPORT_LABEL}=true"))).await?;
    let reports = tracker.observe(&leases.items, Instant::now());
    for gone in reports.iter().filter(|r| r.gone) {
        tracing::info!(lease = %gone.name, "removing the serving report of a replica that stopped renewing it");
        let _ = api.delete(&gone.name, &DeleteParams::default()).await;
    }
    let Some(current) = fingerprint_pem(current_cert) else {
        return Ok(Err(Vec::new()));
    };
    Ok(lagging(&reports, &current))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(name: &str, version: &str, fingerprint: &str, seconds: i32) -> Lease {
        let mut l = report(name, name, fingerprint, ReportTiming::every(Duration::from_secs(5)));
        l.metadata.resource_version = Some(version.into());
        l.spec.as_mut().unwrap().lease_duration_seconds = Some(seconds);
        l
    }

    #[test]
    fn names_are_valid_objects_whatever_the_identity() {
        assert_eq!(report_name("ecskube-7d9f-abc"), "ecskube-webhook-serving-ecskube-7d9f-abc");
        assert_eq!(report_name("Host_Name:42"), "ecskube-webhook-serving-host-name-42");
        assert!(report_name(&"x".repeat(400)).len() <= 253);
    }

    #[test]
    fn a_report_is_live_while_it_changes_and_gone_after_four_durations_of_silence() {
        let mut tracker = ReportTracker::default();
        let t0 = Instant::now();
        let a = lease("a", "1", "new", 10);
        // First sight: live.
        assert!(tracker.observe(std::slice::from_ref(&a), t0)[0].live);
        // Unchanged for 9 s: still live; 11 s: not live; 41 s: gone.
        assert!(tracker.observe(std::slice::from_ref(&a), t0 + Duration::from_secs(9))[0].live);
        let quiet = tracker.observe(std::slice::from_ref(&a), t0 + Duration::from_secs(11));
        assert!(!quiet[0].live && !quiet[0].gone);
        // A renewal (new resourceVersion) makes it live again.
        let renewed = lease("a", "2", "new", 10);
        assert!(tracker.observe(std::slice::from_ref(&renewed), t0 + Duration::from_secs(12))[0].live);
        let gone = tracker.observe(std::slice::from_ref(&renewed), t0 + Duration::from_secs(53));
        assert!(gone[0].gone);
    }

    #[test]
    fn the_old_ca_stays_for_every_live_replica_serving_an_older_certificate() {
        let mut tracker = ReportTracker::default();
        let t0 = Instant::now();
        let reports = tracker.observe(&[lease("a", "1", "new", 10), lease("b", "1", "old", 10)], t0);
        assert_eq!(lagging(&reports, "new"), Err(vec!["b".to_string()]));
        // b stops renewing (its pod is gone): after its lease duration it no longer holds the CA.
        let later = tracker.observe(
            &[lease("a", "2", "new", 10), lease("b", "1", "old", 10)],
            t0 + Duration::from_secs(11),
        );
        assert_eq!(lagging(&later, "new"), Ok(()));
        // No live report confirms nothing.
        assert_eq!(lagging(&[], "new"), Err(vec![]));
    }

    #[test]
    fn fingerprints_are_of_the_first_certificate() {
        let generated = crate::certs::generate(&["a.example".to_string()], &[]).unwrap();
        let fp = fingerprint_pem(&generated.cert_pem).unwrap();
        assert_eq!(fp.len(), 64);
        assert_eq!(fingerprint_pem("no certificate"), None);
    }
}
