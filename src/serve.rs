//! `ecskube serve`: the admission webhook and the controller in one process
//! (`--webhook-only` / `--controller-only` split them).

use crate::integrations::IntegrationsStore;
use crate::offload::Offload;
use crate::policy::PolicyStore;
use crate::supervisor::Supervisor;
use crate::webhook::certificates;
use crate::webhook::metrics::Metrics;
use crate::webhook::preflight::Preflight;
use crate::webhook::server::{self, Listen, State};
use crate::webhook::serving_report;
use crate::webhook::tls::{with_client_auth, ReloadingCert};
use anyhow::{bail, Context};
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address of the admission webhook (TLS only).
    #[arg(long, default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,
    /// Plain-HTTP address for /healthz, /readyz and /metrics.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub probe_listen: SocketAddr,
    /// The Secret the serving certificate is read from when no --tls-cert is
    /// given (and kept valid by ecskube unless --manage-certs=false).
    #[arg(long, default_value = "ecskube-webhook-tls")]
    pub tls_secret: String,
    /// Namespace of that Secret and of the webhook's Service.
    #[arg(long, env = "POD_NAMESPACE", default_value = "ecskube-system")]
    pub tls_secret_namespace: String,
    /// Create, renew and rotate the Secret's CA and certificate, and keep
    /// `caBundle` of the webhook configurations in step (one replica, by Lease).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub manage_certs: bool,
    /// The webhook's Service (the serving certificate's names).
    #[arg(long, default_value = "ecskube-webhook")]
    pub webhook_service: String,
    /// Name of the Mutating- and ValidatingWebhookConfiguration whose caBundle is kept.
    #[arg(long, default_value = "ecskube")]
    pub webhook_configuration: String,
    /// Lifetime of a self-managed CA (renewed in its last third).
    #[arg(long, default_value_t = 2 * 365 * 24 * 3600)]
    pub ca_lifetime_seconds: u64,
    /// Lifetime of a self-managed serving certificate (renewed in its last third).
    #[arg(long, default_value_t = 365 * 24 * 3600)]
    pub serving_cert_lifetime_seconds: u64,
    /// The least time the previous CA stays in caBundle after a CA rotation
    /// (longer while a replica still serves a certificate it signed).
    #[arg(long, default_value_t = 600)]
    pub ca_overlap_seconds: u64,
    /// How often each replica renews the Lease saying which certificate it
    /// serves (the manager drops an old CA only once every live replica
    /// serves the new certificate).
    #[arg(long, default_value_t = 5000)]
    pub serving_report_interval_ms: u64,
    /// How often the certificate manager looks at the Secret.
    #[arg(long, default_value_t = 60_000)]
    pub cert_check_interval_ms: u64,
    /// PEM certificate chain of the webhook; reloaded when it changes on disk.
    #[arg(long)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of the webhook; reloaded when it changes on disk.
    #[arg(long)]
    pub tls_key: Option<PathBuf>,
    /// Accept only clients with a certificate from this CA (PEM): the API
    /// server, configured to present one (README, "Security").
    #[arg(long)]
    pub client_ca: Option<PathBuf>,
    /// ECS field policy (YAML); reloaded when it changes on disk.
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Dry-run the children in the cluster at admission time (Pod Security, LimitRanges, ...).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub preflight: bool,
    /// Time the preflight may take before it becomes a warning (keep well under the webhook's timeoutSeconds).
    #[arg(long, default_value_t = 4000)]
    pub preflight_budget_ms: u64,
    /// Preflights at once (others wait within their budget, then warn).
    #[arg(long, default_value_t = 8)]
    pub preflight_concurrency: usize,
    /// Time the engine may take for one admission (waiting for a free worker
    /// included) before the request is refused as too expensive to check.
    #[arg(long, default_value_t = 2000)]
    pub engine_deadline_ms: u64,
    /// Serve the webhook only.
    #[arg(long, conflicts_with = "controller_only")]
    pub webhook_only: bool,
    /// Run the controller only.
    #[arg(long)]
    pub controller_only: bool,
    /// Elect one reconciling replica through a coordination.k8s.io Lease.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_election: bool,
    /// Namespace of the leader-election Lease.
    #[arg(long, env = "POD_NAMESPACE", default_value = "ecskube-system")]
    pub leader_election_namespace: String,
    /// How often the controller reconciles every object again, repairing drift
    /// nobody reported (a reconcile that finds nothing to change writes nothing).
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    pub resync_seconds: u64,
    #[command(flatten)]
    pub stores: crate::integrations::StoreArgs,
    /// Map AWS-backed ECS fields to the External Secrets Operator, the AWS
    /// Load Balancer Controller and the EFS CSI driver when the cluster has
    /// them (false: never; every such field stays a warning).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub integrations: bool,
    /// How often API discovery looks again for those projects' APIs.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub discovery_seconds: u64,
    /// How often certificates and the policy file are checked for changes.
    #[arg(long, default_value_t = 2000)]
    pub reload_interval_ms: u64,
    /// Kubeconfig to use instead of the in-cluster configuration (or $KUBECONFIG).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,kube=warn,actix_server=warn".into());
    // Colours only for a terminal: logs collected from files or pods stay plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

impl ServeArgs {
    fn cert_config(&self) -> certificates::CertConfig {
        certificates::CertConfig {
            namespace: self.tls_secret_namespace.clone(),
            secret: self.tls_secret.clone(),
            service: self.webhook_service.clone(),
            webhook_configuration: self.webhook_configuration.clone(),
            ca_lifetime: Duration::from_secs(self.ca_lifetime_seconds),
            serving_lifetime: Duration::from_secs(self.serving_cert_lifetime_seconds),
            overlap: Duration::from_secs(self.ca_overlap_seconds),
            report_interval: Duration::from_millis(self.serving_report_interval_ms),
            check_interval: Duration::from_millis(self.cert_check_interval_ms),
        }
    }
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let reload = Duration::from_millis(args.reload_interval_ms);
    let run_webhook = !args.controller_only;
    let run_controller = !args.webhook_only;

    let mut supervisor = Supervisor::new();
    let policy = match &args.policy {
        Some(path) => PolicyStore::load(path).with_context(|| format!("policy {}", path.display()))?,
        None => PolicyStore::empty(),
    };
    if let Some(reloader) = policy.spawn_reloader(reload) {
        supervisor.watch("policy-reloader", reloader);
    }
    let client = client(args.kubeconfig.as_deref()).await;
    let client = match (client, run_controller) {
        (Ok(c), _) => Some(c),
        (Err(e), true) => return Err(e).context("the controller needs a cluster (in-cluster config or KUBECONFIG)"),
        (Err(e), false) => {
            tracing::warn!(error = %e, "no cluster access: ConfigMap references and preflight are not checked");
            None
        }
    };

    let integrations = IntegrationsStore::default();
    if let Some(client) = &client {
        let config = crate::integrations::Config {
            stores: args.stores.stores(),
            multi_cluster_target_groups: args.stores.target_group_multi_cluster,
            disabled: !args.integrations,
        };
        // The first answer before anything is admitted or reconciled; then every interval.
        match crate::integrations::discover(client).await {
            Ok(found) => {
                integrations.set(found.integrations(&config));
            }
            Err(e) => tracing::warn!(error = %e, "API discovery failed; the integrations are off until it succeeds"),
        }
        tracing::info!(integrations = ?integrations.current(), "API discovery");
        let discovery = crate::integrations::run(
            client.clone(),
            config,
            integrations.clone(),
            Duration::from_secs(args.discovery_seconds),
            supervisor.shutdown_signal(),
        );
        supervisor.spawn("api-discovery", async move {
            discovery.await;
            Ok(())
        });
    }

    // Readiness is the webhook's when there is one (a replica that becomes
    // the controller's leader must not drop out of the webhook's endpoints),
    // else the controller's (its watches have synced).
    let (controller_ready_tx, controller_ready) = watch::channel(false);
    let controller_metrics = Arc::new(crate::controller::Metrics::default());
    if run_controller {
        let client = client.clone().context("cluster client")?;
        let config = crate::controller::ControllerConfig {
            leader_election: args
                .leader_election
                .then(|| crate::controller::LeaderConfig::new(args.leader_election_namespace.clone())),
            policy: policy.clone(),
            metrics: controller_metrics.clone(),
            requeue_after: Duration::from_secs(args.resync_seconds),
            integrations: integrations.clone(),
            ..Default::default()
        };
        let shutdown = supervisor.shutdown_signal();
        supervisor.spawn("controller", crate::controller::run(client, config, controller_ready_tx, shutdown));
    }

    let client_verifier = match (&args.client_ca, run_webhook) {
        (Some(path), true) => Some(crate::webhook::tls::client_verifier(path).context("--client-ca")?),
        _ => None,
    };
    // Files (`--tls-cert`/`--tls-key`: cert-manager's mounted Secret, or
    // `ecskube certs`), else the Secret itself, read (and, unless
    // `--manage-certs=false`, kept valid) through the API.
    let (cert_ready_tx, cert_ready) = watch::channel(false);
    let cert = if run_webhook {
        let resolver = match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => {
                let resolver = ReloadingCert::load(cert, key)?;
                supervisor.watch("certificate-watcher", resolver.clone().spawn_watcher(reload));
                cert_ready_tx.send_replace(true);
                resolver
            }
            (None, None) => {
                let client = client
                    .clone()
                    .context("self-managed certificates need the cluster (or give --tls-cert and --tls-key)")?;
                let config = args.cert_config();
                // Until the Secret's certificate is served, a throwaway one lets
                // the listener bind; /readyz says not ready meanwhile.
                let placeholder = crate::certs::generate(&config.dns_names(), &[])?;
                let resolver = ReloadingCert::from_pem(
                    placeholder.cert_pem.as_bytes(),
                    placeholder.key_pem.as_bytes(),
                    &format!("secret {}/{}", config.namespace, config.secret),
                )?;
                supervisor.spawn(
                    "certificate-follower",
                    certificates::follow(client.clone(), config.clone(), resolver.clone(), cert_ready_tx),
                );
                if args.manage_certs {
                    supervisor.spawn(
                        "serving-report",
                        serving_report::keep_reporting(
                            client.clone(),
                            config.namespace.clone(),
                            crate::controller::leader::default_identity(),
                            resolver.clone(),
                            cert_ready.clone(),
                            serving_report::ReportTiming::every(config.report_interval),
                            supervisor.shutdown_signal(),
                        ),
                    );
                    supervisor.spawn(
                        "certificate-manager",
                        certificates::manage(client, config, supervisor.shutdown_signal()),
                    );
                }
                resolver
            }
            _ => bail!("give both --tls-cert and --tls-key, or neither (the Secret --tls-secret is then used)"),
        };
        Some(resolver)
    } else {
        None
    };

    let gauges: Vec<(&'static str, &'static str, crate::webhook::metrics::ReadGauge)> = match &cert {
        Some(c) => {
            let c = c.clone();
            vec![(
                "certificate_expiry_timestamp_seconds",
                "When the serving certificate in use expires (seconds since the epoch)",
                Box::new(move || c.not_after()),
            )]
        }
        None => Vec::new(),
    };
    let metrics = Metrics::with_gauges(external_counters(&policy, cert.as_ref()), gauges, Some(&controller_metrics));
    let preflight = match (&client, args.preflight && run_webhook) {
        (Some(c), true) => {
            let p = Preflight::new(
                c.clone(),
                Duration::from_millis(args.preflight_budget_ms),
                args.preflight_concurrency,
            );
            p.warm().await;
            Some(p)
        }
        _ => None,
    };
    let ready = if run_webhook { cert_ready } else { controller_ready };
    let state = Arc::new(State {
        policy,
        integrations,
        client,
        preflight,
        metrics,
        ready,
        health: supervisor.health(),
        body_timeout: Duration::from_secs(5),
        engine: Offload::for_cores(Duration::from_millis(args.engine_deadline_ms)),
    });

    // The HTTP servers own SIGTERM handling (graceful: finish in-flight requests).
    let served = match cert {
        Some(resolver) => {
            let listen = Listen {
                tls: args.listen,
                probes: Some(args.probe_listen),
                tls_config: with_client_auth(resolver, client_verifier),
                request_timeout: Duration::from_secs(5),
            };
            server::run(listen, state).await
        }
        None => {
            let probes = actix_web::HttpServer::new({
                let data = actix_web::web::Data::from(state);
                move || actix_web::App::new().app_data(data.clone()).configure(server::probe_routes)
            })
            .workers(1)
            .bind(args.probe_listen)?
            .run();
            probes.await.map_err(Into::into)
        }
    };
    // Then the controller stops and hands its Lease over.
    supervisor.shutdown(Duration::from_secs(10)).await;
    served
}

/// A counter another part keeps: (name, help, read at scrape time).
type ExternalCounter = (&'static str, &'static str, crate::webhook::metrics::Read);

fn external_counters(policy: &PolicyStore, cert: Option<&Arc<ReloadingCert>>) -> Vec<ExternalCounter> {
    let mut out: Vec<ExternalCounter> = Vec::new();
    let (p1, p2) = (policy.clone(), policy.clone());
    out.push(("policy_reloads", "Policy file changes applied", Box::new(move || p1.reloads())));
    out.push((
        "policy_reload_failures",
        "Policy file changes rejected (the last good policy stays)",
        Box::new(move || p2.reload_failures()),
    ));
    if let Some(c) = cert {
        let (c1, c2) = (c.clone(), c.clone());
        out.push((
            "certificate_reloads",
            "Serving certificate changes applied",
            Box::new(move || c1.reloads()),
        ));
        out.push((
            "certificate_reload_failures",
            "Serving certificate changes rejected",
            Box::new(move || c2.reload_failures()),
        ));
    }
    out
}

async fn client(kubeconfig: Option<&std::path::Path>) -> anyhow::Result<kube::Client> {
    let Some(path) = kubeconfig else {
        return Ok(kube::Client::try_default().await?);
    };
    let kc = kube::config::Kubeconfig::read_from(path).with_context(|| format!("reading {}", path.display()))?;
    let config = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default()).await?;
    Ok(kube::Client::try_from(config)?)
}
