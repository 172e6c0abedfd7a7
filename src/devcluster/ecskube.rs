//! `ecskube serve` running against a [`DevCluster`] the way a host-process API
//! server can reach it: on loopback, with a certificate for 127.0.0.1, and
//! webhook configurations that use `clientConfig.url` (no kube-proxy here).

use super::process::{stop_all, Component};
use super::{free_port, DevCluster};
use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The admission webhook configurations shipped in webhook-config/.
const WEBHOOKS_YAML: &str = include_str!("../../webhook-config/webhooks.yaml");
/// The CRD shipped in webhook-config/.
pub const CRD_YAML: &str = include_str!("../../webhook-config/crd.yaml");

pub struct EcskubeProcess {
    component: Vec<Component>,
    pub webhook_port: u16,
    pub probe_port: u16,
    /// PEM of the CA that signed the serving certificate.
    pub ca_pem: String,
    pub cert_dir: PathBuf,
    pub log_path: PathBuf,
}

/// How to run one `ecskube serve` against a [`DevCluster`].
#[derive(Debug, Clone, Default)]
pub struct Launch {
    /// Who it runs as (default: the cluster admin); e.g.
    /// [`DevCluster::service_account_kubeconfig`] to run with shipped RBAC.
    pub kubeconfig: Option<PathBuf>,
    /// Namespace of its Lease (default: `default`).
    pub leader_election_namespace: Option<String>,
    /// Serve the certificate from the Secret ecskube manages itself, as
    /// installed, instead of from files made here.
    pub self_managed_certs: bool,
    /// More DNS names for the certificate made here (a Service name that
    /// several replicas serve behind).
    pub dns_names: Vec<String>,
    pub args: Vec<String>,
}

impl EcskubeProcess {
    /// Installs the CRD (the controller's watches need it), starts
    /// `binary serve ...` against the cluster and waits for /readyz.
    pub fn start(cluster: &DevCluster, binary: &Path, name: &str, extra_args: &[String]) -> Result<Self> {
        let launch = Launch {
            args: extra_args.to_vec(),
            ..Default::default()
        };
        Self::start_with(cluster, binary, name, &launch)
    }

    /// [`EcskubeProcess::start`] with an identity and Lease namespace of its own.
    pub fn start_with(cluster: &DevCluster, binary: &Path, name: &str, launch: &Launch) -> Result<Self> {
        let mut process = Self::start_unready(cluster, binary, name, launch)?;
        process.wait_ready(Duration::from_secs(60))?;
        Ok(process)
    }

    /// [`EcskubeProcess::start_with`] without waiting for /readyz (a webhook
    /// on self-managed certificates is ready once it serves the Secret's).
    pub fn start_unready(cluster: &DevCluster, binary: &Path, name: &str, launch: &Launch) -> Result<Self> {
        install_crd(cluster)?;
        let cert_dir = cluster.work_dir().join(format!("{name}-certs"));
        let (webhook_port, probe_port) = (free_port()?, free_port()?);
        let mut args: Vec<String> = vec![
            "serve".into(),
            format!("--listen=127.0.0.1:{webhook_port}"),
            format!("--probe-listen=127.0.0.1:{probe_port}"),
            format!(
                "--kubeconfig={}",
                launch.kubeconfig.as_deref().unwrap_or(cluster.kubeconfig_path()).display()
            ),
            format!(
                "--leader-election-namespace={}",
                launch.leader_election_namespace.as_deref().unwrap_or("default")
            ),
        ];
        let mut ca_pem = String::new();
        if !launch.self_managed_certs {
            let mut names = vec!["localhost".to_string()];
            names.extend(launch.dns_names.iter().cloned());
            let bundle = crate::certs::generate(&names, &["127.0.0.1".parse().expect("loopback")])?;
            bundle
                .write(&cert_dir)
                .with_context(|| format!("writing certificates to {}", cert_dir.display()))?;
            args.push(format!("--tls-cert={}", cert_dir.join("tls.crt").display()));
            args.push(format!("--tls-key={}", cert_dir.join("tls.key").display()));
            ca_pem = bundle.ca_pem;
        }
        args.extend(launch.args.iter().cloned());
        let log_path = cluster.work_dir().join("logs").join(format!("{name}.log"));
        let component = Component::start(name, binary, &args, &log_path)?;
        Ok(EcskubeProcess {
            component: vec![component],
            webhook_port,
            probe_port,
            ca_pem,
            cert_dir,
            log_path,
        })
    }

    pub fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(exit) = self.component[0].exited() {
                bail!("ecskube serve exited ({exit}):\n{}", self.log_tail(40));
            }
            if http_get(self.probe_port, "/readyz").is_ok_and(|(code, _)| code == 200) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("ecskube serve was not ready within {timeout:?}:\n{}", self.log_tail(40));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The process id (for /proc readings such as peak memory).
    pub fn pid(&self) -> u32 {
        self.component[0].pid()
    }

    pub fn log_tail(&self, lines: usize) -> String {
        super::process::tail_file(&self.log_path, lines)
    }

    /// /metrics, as Prometheus text.
    pub fn metrics(&self) -> Result<String> {
        Ok(http_get(self.probe_port, "/metrics")?.1)
    }

    /// A counter or gauge of /metrics, summed over its labels (0 when absent
    /// or unreadable: a family with no sample yet prints nothing).
    pub fn metric(&self, name: &str) -> f64 {
        let text = self.metrics().unwrap_or_default();
        text.lines()
            .filter(|l| l.strip_prefix(name).is_some_and(|rest| rest.starts_with([' ', '{'])))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// The webhook configurations pointed at this process.
    pub fn webhook_configurations(&self) -> Result<String> {
        local_webhook_configurations(&format!("https://127.0.0.1:{}", self.webhook_port), &self.ca_pem)
    }

    /// Points the API server's admission webhooks at this process (the CRD is
    /// already installed by [`EcskubeProcess::start`]).
    pub fn install(&self, cluster: &DevCluster) -> Result<()> {
        cluster.apply(&self.webhook_configurations()?)?;
        Ok(())
    }

    /// `Some(how)` once the process has exited.
    pub fn exited(&mut self) -> Option<String> {
        self.component[0].exited()
    }

    /// SIGKILL, as a crashed or OOM-killed pod: no shutdown, no Lease release.
    pub fn kill(&mut self) {
        for c in &mut self.component {
            c.kill();
        }
    }

    /// Stops the process (SIGTERM, then SIGKILL after the grace period).
    pub fn stop(&mut self) {
        stop_all(&mut self.component, Duration::from_secs(5));
    }
}

impl Drop for EcskubeProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Applies the ECSDeployment CRD and waits until it is served.
pub fn install_crd(cluster: &DevCluster) -> Result<()> {
    cluster.apply(CRD_YAML)?;
    cluster.kubectl_ok(
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/ecsdeployments.ecskube.ecskube",
        ],
        None,
    )?;
    Ok(())
}

/// webhook-config/webhooks.yaml with each `clientConfig` replaced by
/// `{url: <base><path>, caBundle}`.
pub fn local_webhook_configurations(base_url: &str, ca_pem: &str) -> Result<String> {
    configurations_with(ca_pem, |path| serde_json::json!({"url": format!("{base_url}{path}")}))
}

/// webhook-config/webhooks.yaml calling the Service `namespace/service`
/// (port 443) instead of the shipped one, trusting `ca_pem`.
pub fn service_webhook_configurations(namespace: &str, service: &str, ca_pem: &str) -> Result<String> {
    configurations_with(
        ca_pem,
        |path| serde_json::json!({"service": {"namespace": namespace, "name": service, "port": 443, "path": path}}),
    )
}

fn configurations_with(ca_pem: &str, client_config: impl Fn(&str) -> Value) -> Result<String> {
    use base64::Engine;
    let ca_bundle = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    let mut out = String::new();
    for doc in serde_yaml_ng::Deserializer::from_str(WEBHOOKS_YAML) {
        let mut v = <Value as serde::Deserialize>::deserialize(doc)?;
        for hook in v["webhooks"].as_array_mut().into_iter().flatten() {
            let path = hook
                .pointer("/clientConfig/service/path")
                .and_then(Value::as_str)
                .unwrap_or("/")
                .to_string();
            let mut config = client_config(&path);
            config["caBundle"] = ca_bundle.clone().into();
            hook["clientConfig"] = config;
        }
        out.push_str("---\n");
        out.push_str(&serde_yaml_ng::to_string(&v)?);
    }
    Ok(out)
}

/// Webhook configurations take effect a moment after they are written:
/// waits until a bad object is refused by ecskube (not merely stored), by
/// a server-side dry run that names an unknown field.
pub fn wait_until_webhook_called(cluster: &DevCluster, timeout: Duration) -> Result<()> {
    let probe = serde_json::json!({"apiVersion": "ecskube.ecskube/v1alpha1", "kind": "ECSDeployment",
        "metadata": {"name": "probe", "namespace": "default"},
        "spec": {"Task": {"containerDefinitions": [{"name": "web", "image": "nginx", "memory": 64, "Imagee": "x"}]}}});
    let deadline = Instant::now() + timeout;
    loop {
        let out = cluster.kubectl_run(&["apply", "--dry-run=server", "-f", "-"], Some(&probe.to_string()))?;
        if out.stderr.contains("unknown field `Imagee`") {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("ecskube was not called within {timeout:?}: {}", out.stderr);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A plain HTTP/1.1 GET on loopback: (status, body).
pub fn http_get(port: u16, path: &str) -> Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context("no HTTP status")?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Ok((code, body))
}

/// ecskube as `kubectl apply -k webhook-config/` installs it, with its two
/// Deployments' processes run on this host: each authenticated as its own
/// ServiceAccount (a TokenRequest token), the webhook reached by the API
/// server through the Service the shipped configurations name (the cluster's
/// egress proxy routes it here), serving the certificates it manages itself.
pub struct Installation {
    pub webhook: EcskubeProcess,
    pub controller: EcskubeProcess,
    /// The policy file the processes read (the ConfigMap's key, as kubelet mounts it).
    pub policy_file: PathBuf,
    binary: PathBuf,
    webhook_launch: Launch,
}

pub const SYSTEM_NAMESPACE: &str = "ecskube-system";

impl Installation {
    /// `kubectl apply -k <manifests>`, then both processes; returns once the
    /// certificates have bootstrapped and the API server calls the webhook.
    /// `webhook_args` are extra flags (certificate lifetimes, for tests).
    pub fn install(cluster: &DevCluster, binary: &Path, manifests: &Path, webhook_args: &[String]) -> Result<Self> {
        Self::install_with(cluster, binary, manifests, webhook_args, &[])
    }

    /// [`Installation::install`] with flags for both processes (`both_args`).
    pub fn install_with(
        cluster: &DevCluster,
        binary: &Path,
        manifests: &Path,
        webhook_args: &[String],
        both_args: &[String],
    ) -> Result<Self> {
        cluster.kubectl_ok(&["apply", "-k", &manifests.to_string_lossy()], None)?;
        install_crd(cluster)?;
        let policy = cluster.kubectl_ok(
            &[
                "get",
                "configmap",
                "ecskube-policy",
                "-n",
                SYSTEM_NAMESPACE,
                "-o",
                "jsonpath={.data.policy\\.yaml}",
            ],
            None,
        )?;
        let policy_file = cluster.work_dir().join("installed-policy.yaml");
        std::fs::write(&policy_file, policy)?;
        let account = |sa: &str| cluster.service_account_kubeconfig(SYSTEM_NAMESPACE, sa);
        let mut args = vec![
            "--webhook-only".to_string(),
            format!("--policy={}", policy_file.display()),
            format!("--tls-secret-namespace={SYSTEM_NAMESPACE}"),
            "--log-format=json".to_string(),
        ];
        args.extend(webhook_args.iter().cloned());
        args.extend(both_args.iter().cloned());
        let webhook_launch = Launch {
            kubeconfig: Some(account("ecskube-webhook")?),
            self_managed_certs: true,
            args,
            ..Default::default()
        };
        let webhook = Self::start_webhook(cluster, binary, &webhook_launch)?;
        let controller = EcskubeProcess::start_with(
            cluster,
            binary,
            "installed-controller",
            &Launch {
                kubeconfig: Some(account("ecskube-controller")?),
                leader_election_namespace: Some(SYSTEM_NAMESPACE.into()),
                args: [
                    "--controller-only".to_string(),
                    format!("--policy={}", policy_file.display()),
                    "--log-format=json".to_string(),
                ]
                .into_iter()
                .chain(both_args.iter().cloned())
                .collect(),
                ..Default::default()
            },
        )?;
        let mut installation = Installation {
            webhook,
            controller,
            policy_file,
            binary: binary.to_path_buf(),
            webhook_launch,
        };
        installation.webhook.wait_ready(Duration::from_secs(120))?;
        installation.wait_until_called(cluster)?;
        Ok(installation)
    }

    /// The webhook's process, with the Service routed to it.
    fn start_webhook(cluster: &DevCluster, binary: &Path, launch: &Launch) -> Result<EcskubeProcess> {
        let webhook = EcskubeProcess::start_unready(cluster, binary, "installed-webhook", launch)?;
        cluster.route_service(
            "ecskube-webhook",
            SYSTEM_NAMESPACE,
            443,
            format!("127.0.0.1:{}", webhook.webhook_port).parse()?,
        )?;
        Ok(webhook)
    }

    /// Stops the webhook's process and starts a new one (as a Pod restart
    /// would); returns once the API server calls it again.
    pub fn restart_webhook(&mut self, cluster: &DevCluster) -> Result<()> {
        self.webhook.stop();
        self.webhook = Self::start_webhook(cluster, &self.binary, &self.webhook_launch)?;
        self.webhook.wait_ready(Duration::from_secs(120))?;
        self.wait_until_called(cluster)
    }

    /// The API server has the caBundle and calls the webhook through the Service.
    fn wait_until_called(&self, cluster: &DevCluster) -> Result<()> {
        wait_until_webhook_called(cluster, Duration::from_secs(120)).map_err(|e| {
            anyhow::anyhow!(
                "the API server never reached the installed webhook: {e:#}\n{}",
                self.webhook.log_tail(30)
            )
        })
    }
}
