//! Self-managed serving certificates: no cert-manager, no `sed` of a CA
//! bundle. The Secret `ecskube-webhook-tls` holds a CA (with its key) and
//! the serving certificate it signed; every replica serves what the Secret
//! holds and follows it as it changes ([`follow`]); the replica holding the
//! `ecskube-webhook-certs` Lease keeps it valid ([`manage`]):
//!
//! - missing or unusable: a new CA and serving certificate, then the CA
//!   into `caBundle` of both webhook configurations;
//! - serving certificate within 1/3 of its lifetime of expiry (or not for
//!   the Service's names, or not signed by the current CA): a new one from
//!   the same CA;
//! - CA within 1/3 of its lifetime of expiry: a new CA, first added to
//!   `caBundle` beside the old one, only then used to sign the serving
//!   certificate, and the old one dropped from `caBundle` only once every
//!   live replica reports serving the new certificate
//!   ([`super::serving_report`]) and at least `overlap` has passed
//!   (Kyverno's scheme), so no admission fails during a rotation.

use crate::certs::Authority;
use base64::Engine as _;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::watcher;
use kube::{Client, Resource};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

use super::configurations;
use super::serving_report::{self, ReportTracker};
use super::tls::ReloadingCert;

pub const CERT_KEY: &str = "tls.crt";
pub const KEY_KEY: &str = "tls.key";
pub const CA_KEY: &str = "ca.crt";
pub const CA_PRIVATE_KEY: &str = "ca.key";
/// The CA the serving certificate was signed by before a rotation, kept in
/// `caBundle` until the overlap ends (annotation below).
pub const PREVIOUS_CA_KEY: &str = "ca-previous.crt";
pub const PREVIOUS_UNTIL: &str = "ecskube.ecskube/previous-ca-until";

/// Where the certificates live and what they are for.
#[derive(Debug, Clone)]
pub struct CertConfig {
    pub namespace: String,
    pub secret: String,
    /// The Service in front of the webhook: the serving certificate's names.
    pub service: String,
    /// Both webhook configurations' name (`caBundle` is kept there).
    pub webhook_configuration: String,
    pub ca_lifetime: Duration,
    pub serving_lifetime: Duration,
    /// The least time the previous CA stays in `caBundle` after a rotation
    /// (longer while a replica still serves a certificate it signed).
    pub overlap: Duration,
    /// How often each replica renews the report of what it serves.
    pub report_interval: Duration,
    /// How often the leader looks.
    pub check_interval: Duration,
}

impl CertConfig {
    fn target(&self) -> configurations::Target {
        configurations::Target {
            name: self.webhook_configuration.clone(),
            service_namespace: self.namespace.clone(),
            service: self.service.clone(),
        }
    }

    /// The Service's DNS names, as the API server calls it.
    pub fn dns_names(&self) -> Vec<String> {
        let base = format!("{}.{}.svc", self.service, self.namespace);
        vec![base.clone(), format!("{base}.cluster.local")]
    }
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// (not before, not after) of the first certificate in `pem`, in seconds since the epoch.
pub fn validity(pem: &str) -> Option<(i64, i64)> {
    let der = rustls_pemfile::certs(&mut pem.as_bytes()).next()?.ok()?;
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    Some((cert.validity().not_before.timestamp(), cert.validity().not_after.timestamp()))
}

/// Within the last third of its lifetime (or past it). Certificates made
/// here are backdated by `certs::CLOCK_SKEW` for slow clocks; that is not
/// lifetime, so it does not count.
fn due(validity: Option<(i64, i64)>, now: i64) -> bool {
    match validity {
        Some((from, until)) => {
            let lifetime = until - from - crate::certs::CLOCK_SKEW.as_secs() as i64;
            until - now < lifetime.max(0) / 3
        }
        None => true,
    }
}

/// Whether `cert_pem` is a serving certificate for `name` that `ca_pem` signed, valid now.
fn verifies(cert_pem: &str, ca_pem: &str, name: &str) -> bool {
    use rustls::client::danger::ServerCertVerifier;
    let (Some(Ok(cert)), Some(Ok(ca))) = (
        rustls_pemfile::certs(&mut cert_pem.as_bytes()).next(),
        rustls_pemfile::certs(&mut ca_pem.as_bytes()).next(),
    ) else {
        return false;
    };
    let mut roots = rustls::RootCertStore::empty();
    if roots.add(ca).is_err() {
        return false;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let Ok(verifier) = rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider).build() else {
        return false;
    };
    let Ok(name) = rustls::pki_types::ServerName::try_from(name.to_string()) else {
        return false;
    };
    let at = rustls::pki_types::UnixTime::now();
    verifier.verify_server_cert(&cert, &[], &name, &[], at).is_ok()
}

/// What the Secret holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Material {
    pub ca_cert: Option<String>,
    pub ca_key: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
    pub previous_ca: Option<String>,
    pub previous_until: Option<i64>,
}

impl Material {
    pub fn from_secret(secret: &Secret) -> Self {
        let data = secret.data.clone().unwrap_or_default();
        let text = |k: &str| data.get(k).and_then(|b| String::from_utf8(b.0.clone()).ok());
        Material {
            ca_cert: text(CA_KEY),
            ca_key: text(CA_PRIVATE_KEY),
            cert: text(CERT_KEY),
            key: text(KEY_KEY),
            previous_ca: text(PREVIOUS_CA_KEY),
            previous_until: secret
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(PREVIOUS_UNTIL))
                .and_then(|v| v.parse().ok()),
        }
    }

    fn authority(&self) -> Option<Authority> {
        Some(Authority {
            cert_pem: self.ca_cert.clone()?,
            key_pem: self.ca_key.clone()?,
        })
    }

    /// The CAs the API server must trust: the current one, and the
    /// previous one until [`Step::DropPreviousCa`] removes it (never by the
    /// clock alone: a replica may still serve what it signed).
    pub fn bundle(&self) -> String {
        let mut out = self.ca_cert.clone().unwrap_or_default();
        if let Some(prev) = &self.previous_ca {
            out.push_str(prev);
        }
        out
    }
}

/// The one change the leader makes next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Nothing usable: a new CA and serving certificate.
    Bootstrap,
    /// The CA is due: a new one, beside the old in `caBundle`.
    RotateCa,
    /// A serving certificate from the current CA (due, for other names, or
    /// signed by the previous CA); waits until `caBundle` trusts the current CA.
    IssueServing,
    /// The overlap is over and every live replica serves the current
    /// certificate: the previous CA leaves `caBundle`.
    DropPreviousCa,
    /// All is well.
    Keep,
}

/// What the cluster says besides the Secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observed {
    /// Both webhook configurations' `caBundle` trusts the current CA.
    pub bundle_has_current: bool,
    /// Every live replica reports serving the Secret's serving certificate.
    pub replicas_serve_current: bool,
}

/// Decides from what the Secret holds, what the cluster says, and the time.
pub fn next_step(m: &Material, name: &str, observed: Observed, now: i64) -> Step {
    let Observed {
        bundle_has_current,
        replicas_serve_current,
    } = observed;
    let (Some(ca), Some(_), Some(cert), Some(_)) = (&m.ca_cert, &m.ca_key, &m.cert, &m.key) else {
        return Step::Bootstrap;
    };
    let ca_validity = validity(ca);
    if ca_validity.is_none_or(|(_, until)| until <= now) {
        return Step::Bootstrap;
    }
    let good = verifies(cert, ca, name) && !due(validity(cert), now);
    if m.previous_ca.is_some() && m.previous_until.is_none_or(|until| until <= now) && good && replicas_serve_current {
        return Step::DropPreviousCa;
    }
    // During an overlap the CA was just made: do not rotate again.
    if m.previous_ca.is_none() && due(ca_validity, now) {
        return Step::RotateCa;
    }
    if !good && bundle_has_current {
        return Step::IssueServing;
    }
    Step::Keep
}

/// Applies `step` to the material (pure; the caller writes the result).
pub fn apply(step: Step, m: &Material, config: &CertConfig, now: i64) -> Result<Material, crate::certs::CertError> {
    let mut next = m.clone();
    match step {
        Step::Bootstrap => {
            let ca = Authority::generate(config.ca_lifetime)?;
            let (cert, key) = ca.issue(&config.dns_names(), config.serving_lifetime)?;
            next = Material {
                ca_cert: Some(ca.cert_pem),
                ca_key: Some(ca.key_pem),
                cert: Some(cert),
                key: Some(key),
                previous_ca: None,
                previous_until: None,
            };
        }
        Step::RotateCa => {
            let ca = Authority::generate(config.ca_lifetime)?;
            next.previous_ca = m.ca_cert.clone();
            next.previous_until = Some(now + config.overlap.as_secs() as i64);
            next.ca_cert = Some(ca.cert_pem);
            next.ca_key = Some(ca.key_pem);
        }
        Step::IssueServing => {
            if let Some(ca) = m.authority() {
                let (cert, key) = ca.issue(&config.dns_names(), config.serving_lifetime)?;
                next.cert = Some(cert);
                next.key = Some(key);
            }
        }
        Step::DropPreviousCa => {
            next.previous_ca = None;
            next.previous_until = None;
        }
        Step::Keep => {}
    }
    Ok(next)
}

fn secret_of(m: &Material, config: &CertConfig, base: Option<Secret>) -> Secret {
    let mut data = BTreeMap::new();
    for (k, v) in [
        (CA_KEY, &m.ca_cert),
        (CA_PRIVATE_KEY, &m.ca_key),
        (CERT_KEY, &m.cert),
        (KEY_KEY, &m.key),
        (PREVIOUS_CA_KEY, &m.previous_ca),
    ] {
        if let Some(v) = v {
            data.insert(k.to_string(), ByteString(v.clone().into_bytes()));
        }
    }
    let mut secret = base.unwrap_or_else(|| Secret {
        metadata: ObjectMeta {
            name: Some(config.secret.clone()),
            namespace: Some(config.namespace.clone()),
            ..Default::default()
        },
        type_: Some("kubernetes.io/tls".into()),
        ..Default::default()
    });
    let annotations = secret.metadata.annotations.get_or_insert_with(Default::default);
    match m.previous_until {
        Some(until) => {
            annotations.insert(PREVIOUS_UNTIL.into(), until.to_string());
        }
        None => {
            annotations.remove(PREVIOUS_UNTIL);
        }
    }
    secret.data = Some(data);
    secret
}

/// Every replica: serve what the Secret holds, from the first valid version
/// on (`ready` turns true), and every later one.
pub async fn follow(client: Client, config: CertConfig, resolver: Arc<ReloadingCert>, ready: watch::Sender<bool>) -> anyhow::Result<()> {
    let api: Api<Secret> = Api::namespaced(client, &config.namespace);
    let selector = watcher::Config::default().fields(&format!("metadata.name={}", config.secret));
    let mut events = watcher(api, selector).boxed();
    while let Some(event) = events.next().await {
        let secret = match event {
            Ok(watcher::Event::Apply(s) | watcher::Event::InitApply(s)) => s,
            Ok(_) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "watching the serving certificate's Secret");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let m = Material::from_secret(&secret);
        let (Some(cert), Some(key)) = (&m.cert, &m.key) else { continue };
        match resolver.replace(cert.as_bytes(), key.as_bytes()) {
            Ok(changed) => {
                if changed {
                    tracing::info!(secret = %config.secret, "serving the certificate from the Secret");
                }
                ready.send_replace(true);
            }
            Err(e) => tracing::warn!(error = %e, "the Secret's certificate cannot be served; keeping the previous one"),
        }
    }
    anyhow::bail!("the watch of Secret {}/{} ended", config.namespace, config.secret)
}

/// The replica holding the Lease: keep the Secret and `caBundle` valid.
pub async fn manage(client: Client, config: CertConfig, mut shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    let mut lease = crate::controller::LeaderConfig::new(config.namespace.clone());
    lease.name = "ecskube-webhook-certs".into();
    let elector = crate::controller::LeaderElector::spawn(client.clone(), lease);
    let leading = elector.is_leader();
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "ecskube-webhook".into(),
            instance: Some(crate::controller::leader::default_identity()),
        },
    );
    // Only this process's first pass re-creates deleted configurations: a
    // `kubectl delete -k` in progress must not see them come back.
    let mut first_pass = true;
    let mut reports = ReportTracker::default();
    loop {
        if *leading.borrow() {
            match manage_once(&client, &config, &recorder, &mut reports, first_pass).await {
                Ok(_) => first_pass = false,
                Err(e) => tracing::warn!(error = %e, "certificate management: will retry"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(config.check_interval) => {}
            _ = shutdown.wait_for(|s| *s) => break,
        }
    }
    elector.release().await;
    Ok(())
}

/// One look: at most one step, then `caBundle` brought in line (with
/// `recreate_missing`, missing webhook configurations re-created first).
async fn manage_once(
    client: &Client,
    config: &CertConfig,
    recorder: &Recorder,
    reports: &mut ReportTracker,
    recreate_missing: bool,
) -> anyhow::Result<Step> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &config.namespace);
    let live = secrets.get_opt(&config.secret).await?;
    let material = live.as_ref().map(Material::from_secret).unwrap_or_default();
    let now = now();
    let trusted = configurations::trusted_bundles(client, &config.target()).await?;
    let has_current = material
        .ca_cert
        .as_deref()
        .is_some_and(|ca| trusted.iter().all(|t| t.contains(ca.trim())));
    // Asked only while an old CA is still trusted: that is when it matters.
    let replicas_serve_current = match (&material.previous_ca, &material.cert) {
        (Some(_), Some(cert)) => match serving_report::confirm(client, &config.namespace, reports, cert).await? {
            Ok(()) => true,
            Err(behind) => {
                tracing::info!(
                    replicas = ?behind,
                    "the previous CA stays in caBundle: not every live replica reports serving the current certificate"
                );
                false
            }
        },
        _ => false,
    };
    let observed = Observed {
        bundle_has_current: has_current,
        replicas_serve_current,
    };
    let name = config.dns_names()[0].clone();
    let step = next_step(&material, &name, observed, now);
    let next = apply(step, &material, config, now)?;
    if step != Step::Keep {
        tracing::info!(?step, secret = %config.secret, "certificate management");
        let secret = secret_of(&next, config, live.clone());
        match live {
            Some(_) => secrets.replace(&config.secret, &PostParams::default(), &secret).await?,
            None => secrets.create(&PostParams::default(), &secret).await?,
        };
    }
    configurations::keep(client, &config.target(), &next.bundle(), recreate_missing).await?;
    if let Some((_, until)) = next.cert.as_deref().and_then(validity) {
        if until - now < 30 * 24 * 3600 {
            let secret = secrets.get(&config.secret).await?;
            let event = Event {
                type_: EventType::Warning,
                reason: "CertificateExpiring".into(),
                note: Some(format!(
                    "the webhook's serving certificate expires in {} days and was not renewed",
                    (until - now) / 86_400
                )),
                action: "Renew".into(),
                secondary: None,
            };
            let _ = recorder.publish(&event, &secret.object_ref(&())).await;
        }
    }
    Ok(step)
}

/// The base64 form of a bundle, as webhook configurations carry it in YAML.
pub fn base64_bundle(bundle: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(bundle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(ca: u64, serving: u64) -> CertConfig {
        CertConfig {
            namespace: "ecskube-system".into(),
            secret: "ecskube-webhook-tls".into(),
            service: "ecskube-webhook".into(),
            webhook_configuration: "ecskube".into(),
            ca_lifetime: Duration::from_secs(ca),
            serving_lifetime: Duration::from_secs(serving),
            overlap: Duration::from_secs(120),
            report_interval: Duration::from_secs(5),
            check_interval: Duration::from_secs(1),
        }
    }

    const NAME: &str = "ecskube-webhook.ecskube-system.svc";

    fn seen(bundle_has_current: bool, replicas_serve_current: bool) -> Observed {
        Observed {
            bundle_has_current,
            replicas_serve_current,
        }
    }

    #[test]
    fn nothing_usable_bootstraps_and_a_fresh_bundle_is_kept() {
        let c = config(3600 * 24 * 365, 3600 * 24 * 90);
        let now = now();
        assert_eq!(next_step(&Material::default(), NAME, seen(false, true), now), Step::Bootstrap);
        let m = apply(Step::Bootstrap, &Material::default(), &c, now).unwrap();
        assert!(verifies(m.cert.as_deref().unwrap(), m.ca_cert.as_deref().unwrap(), NAME));
        assert_eq!(next_step(&m, NAME, seen(true, true), now), Step::Keep);
        // Garbage in the Secret is as good as nothing.
        let mut broken = m.clone();
        broken.ca_cert = Some("not a certificate".into());
        assert_eq!(next_step(&broken, NAME, seen(true, true), now), Step::Bootstrap);
        assert_eq!(m.bundle(), m.ca_cert.clone().unwrap());
    }

    #[test]
    fn a_serving_certificate_due_for_renewal_is_reissued_by_the_same_ca() {
        let c = config(3600 * 24 * 365, 3000);
        let now = now();
        let m = apply(Step::Bootstrap, &Material::default(), &c, now).unwrap();
        // 3000 s lifetime: in the last third 2001 s from now.
        assert_eq!(next_step(&m, NAME, seen(true, true), now + 2100), Step::IssueServing);
        assert_eq!(next_step(&m, NAME, seen(true, true), now + 1000), Step::Keep);
        let renewed = apply(Step::IssueServing, &m, &c, now).unwrap();
        assert_eq!(renewed.ca_cert, m.ca_cert, "the CA stays");
        assert_ne!(renewed.cert, m.cert);
    }

    #[test]
    fn a_ca_rotation_overlaps_the_old_and_new_ca_in_the_bundle() {
        let c = config(3000, 1200);
        let now = now();
        let m = apply(Step::Bootstrap, &Material::default(), &c, now).unwrap();
        assert_eq!(next_step(&m, NAME, seen(true, true), now + 2100), Step::RotateCa);
        let rotated = apply(Step::RotateCa, &m, &c, now).unwrap();
        // Both CAs are trusted until the overlap ends.
        let bundle = rotated.bundle();
        assert!(bundle.contains(m.ca_cert.as_deref().unwrap()) && bundle.contains(rotated.ca_cert.as_deref().unwrap()));
        // The old serving certificate stays until the bundle trusts the new CA...
        assert_eq!(next_step(&rotated, NAME, seen(false, true), now), Step::Keep);
        // ... then it is reissued by the new CA.
        assert_eq!(next_step(&rotated, NAME, seen(true, true), now), Step::IssueServing);
        let reissued = apply(Step::IssueServing, &rotated, &c, now).unwrap();
        assert!(verifies(
            reissued.cert.as_deref().unwrap(),
            reissued.ca_cert.as_deref().unwrap(),
            NAME
        ));
        assert_eq!(next_step(&reissued, NAME, seen(true, true), now), Step::Keep);
        // After the overlap, the old CA stays while a live replica serves
        // an older certificate, and leaves the bundle once none does.
        assert_eq!(next_step(&reissued, NAME, seen(true, false), now + 121), Step::Keep);
        assert_eq!(next_step(&reissued, NAME, seen(true, true), now + 60), Step::Keep);
        // Not by the clock alone either: the bundle keeps it until the step.
        assert!(reissued.bundle().contains(m.ca_cert.as_deref().unwrap()));
        assert_eq!(next_step(&reissued, NAME, seen(true, true), now + 121), Step::DropPreviousCa);
        let done = apply(Step::DropPreviousCa, &reissued, &c, now + 121).unwrap();
        assert_eq!(done.bundle(), done.ca_cert.clone().unwrap());
    }

    #[test]
    fn a_certificate_for_other_names_is_replaced() {
        let c = config(3600 * 24, 3600);
        let m = apply(Step::Bootstrap, &Material::default(), &c, now()).unwrap();
        assert_eq!(
            next_step(&m, "ecskube-webhook.other.svc", seen(true, true), now()),
            Step::IssueServing
        );
    }
}
