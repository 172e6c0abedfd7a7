//! A real, local Kubernetes control plane for end-to-end tests and `make run`.
//!
//! [`DevCluster::start`] runs etcd, kube-apiserver, kube-controller-manager,
//! kube-scheduler and kwok (one fake Node whose pods go Running without a
//! kubelet) from the binaries built by `make control-plane`, on free loopback
//! ports with a throwaway PKI, and stops them all again when dropped. This is
//! the only launcher: tests and `ecskube-dev-cluster up` both use it.

pub mod binaries;
pub mod ecskube;
mod kubeconfig;
pub mod pki;
pub mod process;
pub mod proxy;

use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

pub use binaries::{default_bin_dir, kubernetes_version};
pub use pki::IssuedCert;
use pki::{Pki, PkiFiles};
use process::Component;

/// How to start a [`DevCluster`].
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// Directory with the binaries (default: [`default_bin_dir`]).
    pub bin_dir: PathBuf,
    /// Keep the work dir (PKI, kubeconfig, logs, etcd data) after shutdown.
    pub keep_work_dir: bool,
    /// Name of the kwok-managed fake Node.
    pub node_name: String,
    /// How long to wait for the whole control plane to become usable.
    pub startup_timeout: Duration,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            bin_dir: default_bin_dir(),
            keep_work_dir: false,
            node_name: "kwok-node-0".to_string(),
            startup_timeout: Duration::from_secs(180),
        }
    }
}

/// Result of one kubectl invocation.
#[derive(Debug)]
pub struct KubectlOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl KubectlOutput {
    pub fn success(&self) -> bool {
        self.status.success()
    }
}

/// A running control plane. Dropping it (or calling [`DevCluster::shutdown`])
/// stops every process; children also die with the process if it exits
/// without running destructors.
pub struct DevCluster {
    work_dir: Mutex<Option<tempfile::TempDir>>,
    work_path: PathBuf,
    bin_dir: PathBuf,
    kubeconfig: PathBuf,
    server_url: String,
    node_name: String,
    pki: Pki,
    pki_files: PkiFiles,
    /// The CA of the client certificate the API server presents to webhooks.
    webhook_client_ca: PathBuf,
    admission_config: PathBuf,
    /// The API server's "cluster" egress (webhook calls) goes through this proxy.
    egress: proxy::Routes,
    egress_config: PathBuf,
    components: Mutex<Vec<Component>>,
    /// kube-apiserver's command line, for [`DevCluster::restart_apiserver`].
    apiserver_args: Mutex<Vec<String>>,
}

impl DevCluster {
    /// Starts everything and returns once `/readyz` is OK, the fake Node is
    /// Ready and the `default` ServiceAccount exists in `default`.
    pub fn start(opts: ClusterOptions) -> Result<DevCluster> {
        binaries::check(&opts.bin_dir)?;
        sweep_stale_work_dirs();
        let work = tempfile::Builder::new()
            .prefix(WORK_DIR_PREFIX)
            .tempdir()
            .context("creating the cluster work dir")?;
        let work_path = work.path().to_path_buf();
        let work = if opts.keep_work_dir {
            let _ = work.keep();
            None
        } else {
            // Lets a later run delete this dir if we are SIGKILLed.
            fs::write(work_path.join(OWNER_FILE), std::process::id().to_string())?;
            Some(work)
        };
        fs::create_dir_all(work_path.join("logs"))?;

        let pki = Pki::new()?;
        let pki_files = pki.write(&work_path.join("pki"))?;
        let apiserver_port = free_port()?;
        let server_url = format!("https://127.0.0.1:{apiserver_port}");
        let kubeconfig = work_path.join("kubeconfig");
        kubeconfig::write(&kubeconfig, &server_url, &pki_files)?;
        // A CA of its own, so the webhook trusts the API server and no other
        // holder of a cluster certificate (the admin's, say).
        let client_pki = Pki::new()?;
        let client = client_pki.issue_client_cert("kube-apiserver-webhook-client", None)?;
        let pki_dir = work_path.join("pki");
        let webhook_client_ca = pki_dir.join("webhook-client-ca.crt");
        let (client_cert, client_key) = (pki_dir.join("webhook-client.crt"), pki_dir.join("webhook-client.key"));
        fs::write(&webhook_client_ca, client_pki.ca_cert_pem())?;
        fs::write(&client_cert, &client.cert_pem)?;
        fs::write(&client_key, &client.key_pem)?;
        let admission_config = kubeconfig::write_webhook_client(&pki_dir, &client_cert, &client_key)?;
        let egress = proxy::Routes::default();
        let egress_socket = work_path.join("egress.sock");
        proxy::start(egress.clone(), &egress_socket)?;
        let egress_config = work_path.join("egress-selector.yaml");
        fs::write(
            &egress_config,
            format!(
                "apiVersion: apiserver.k8s.io/v1beta1\nkind: EgressSelectorConfiguration\negressSelections:\n- name: cluster\n  connection:\n    proxyProtocol: HTTPConnect\n    transport:\n      uds:\n        udsName: {}\n",
                egress_socket.display()
            ),
        )?;

        let cluster = DevCluster {
            work_dir: Mutex::new(work),
            work_path,
            bin_dir: opts.bin_dir.clone(),
            kubeconfig,
            server_url,
            node_name: opts.node_name.clone(),
            pki,
            pki_files,
            webhook_client_ca,
            admission_config,
            egress,
            egress_config,
            components: Mutex::new(Vec::new()),
            apiserver_args: Mutex::new(Vec::new()),
        };
        // On error `cluster` is dropped, which stops whatever already started;
        // the log tails make the error actionable.
        let deadline = Instant::now() + opts.startup_timeout;
        cluster
            .boot(apiserver_port, deadline)
            .map_err(|e| anyhow::anyhow!("{e:#}\n{}", cluster.log_tails(30)))?;
        Ok(cluster)
    }

    fn boot(&self, apiserver_port: u16, deadline: Instant) -> Result<()> {
        let (etcd_port, etcd_peer_port) = (free_port()?, free_port()?);
        self.spawn("etcd", &self.etcd_args(etcd_port, etcd_peer_port))?;
        let apiserver_args = self.apiserver_args(apiserver_port, etcd_port);
        self.spawn("kube-apiserver", &apiserver_args)?;
        *self.apiserver_args.lock().unwrap_or_else(|e| e.into_inner()) = apiserver_args;
        self.wait_until("kube-apiserver /readyz", deadline, || {
            Ok(self.kubectl_run(&["get", "--raw", "/readyz"], None)?.success())
        })?;

        self.spawn("kube-controller-manager", &self.controller_manager_args())?;
        self.spawn("kube-scheduler", &self.scheduler_args())?;
        self.spawn("kwok", &self.kwok_args())?;

        self.kubectl_ok(&["apply", "-f", "-"], Some(&self.node_manifest()))
            .context("creating the fake Node")?;
        let node = format!("node/{}", self.node_name);
        self.wait_until("fake Node Ready (kwok)", deadline, || {
            let out = self.kubectl_run(
                &["get", &node, "-o", "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}"],
                None,
            )?;
            Ok(out.success() && out.stdout.trim() == "True")
        })?;
        self.wait_until("ServiceAccount default/default (controller-manager)", deadline, || {
            Ok(self
                .kubectl_run(&["get", "serviceaccount", "default", "-n", "default"], None)?
                .success())
        })
    }

    /// Stops kube-apiserver (SIGTERM, as an upgrade or a node reboot of the
    /// control plane would), leaves it down for `down_for`, then starts it
    /// again with the same flags, port and etcd; returns once /readyz
    /// answers. The earlier log is kept as `kube-apiserver.<n>.log`.
    pub fn restart_apiserver(&self, down_for: Duration) -> Result<()> {
        let args = self.apiserver_args.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut old = {
            let mut components = self.components.lock().unwrap_or_else(|e| e.into_inner());
            let i = components
                .iter()
                .position(|c| c.name == "kube-apiserver")
                .context("kube-apiserver is not running")?;
            components.remove(i)
        };
        process::stop_all(std::slice::from_mut(&mut old), Duration::from_secs(10));
        let logs = self.work_path.join("logs");
        let n = (1..).find(|n| !logs.join(format!("kube-apiserver.{n}.log")).exists()).unwrap_or(1);
        fs::rename(&old.log_path, logs.join(format!("kube-apiserver.{n}.log")))?;
        thread::sleep(down_for);
        self.spawn("kube-apiserver", &args)?;
        self.wait_until(
            "kube-apiserver /readyz after its restart",
            Instant::now() + Duration::from_secs(120),
            || Ok(self.kubectl_run(&["get", "--raw", "/readyz"], None)?.success()),
        )
    }

    fn spawn(&self, name: &str, args: &[String]) -> Result<()> {
        let log = self.work_path.join("logs").join(format!("{name}.log"));
        let c = Component::start(name, &self.bin_dir.join(name), args, &log)?;
        self.components.lock().unwrap_or_else(|e| e.into_inner()).push(c);
        Ok(())
    }

    /// Polls `ready` every 250ms; fails early if any component has exited.
    fn wait_until(&self, what: &str, deadline: Instant, mut ready: impl FnMut() -> Result<bool>) -> Result<()> {
        loop {
            if ready()? {
                return Ok(());
            }
            for c in self.components.lock().unwrap_or_else(|e| e.into_inner()).iter_mut() {
                if let Some(status) = c.exited() {
                    bail!("{} exited ({status}) while waiting for {what}", c.name);
                }
            }
            if Instant::now() > deadline {
                bail!("timed out waiting for {what}");
            }
            thread::sleep(Duration::from_millis(250));
        }
    }

    fn etcd_args(&self, port: u16, peer_port: u16) -> Vec<String> {
        let client = format!("http://127.0.0.1:{port}");
        let peer = format!("http://127.0.0.1:{peer_port}");
        vec![
            "--name=default".into(),
            format!("--data-dir={}", self.work_path.join("etcd").display()),
            format!("--listen-client-urls={client}"),
            format!("--advertise-client-urls={client}"),
            format!("--listen-peer-urls={peer}"),
            format!("--initial-advertise-peer-urls={peer}"),
            format!("--initial-cluster=default={peer}"),
            // Test data is disposable; fsync dominates etcd latency.
            "--unsafe-no-fsync".into(),
            "--log-level=warn".into(),
        ]
    }

    fn apiserver_args(&self, port: u16, etcd_port: u16) -> Vec<String> {
        let p = &self.pki_files;
        vec![
            format!("--etcd-servers=http://127.0.0.1:{etcd_port}"),
            "--bind-address=127.0.0.1".into(),
            format!("--secure-port={port}"),
            // No default route on CI boxes: without these the API server
            // cannot pick an address to advertise for the `kubernetes` Service.
            "--advertise-address=127.0.0.1".into(),
            "--endpoint-reconciler-type=none".into(),
            format!("--tls-cert-file={}", p.apiserver_cert.display()),
            format!("--tls-private-key-file={}", p.apiserver_key.display()),
            format!("--client-ca-file={}", p.ca_cert.display()),
            format!("--service-account-key-file={}", p.service_account_pub.display()),
            format!("--service-account-signing-key-file={}", p.service_account_key.display()),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
            // Room for thousands of Services (make bench-control-plane creates 1,000).
            "--service-cluster-ip-range=10.96.0.0/16".into(),
            "--authorization-mode=RBAC".into(),
            // As real clusters do: privileged pods are for Pod Security admission to judge.
            "--allow-privileged=true".into(),
            // Default admission plugins stay on (incl. Mutating/ValidatingAdmissionWebhook);
            // webhooks get a client certificate they may require (`--client-ca`).
            format!("--admission-control-config-file={}", self.admission_config.display()),
            // Webhook calls by Service reference go through the test's proxy: a
            // Service reference reaches a host process as it would a pod.
            format!("--egress-selector-config-file={}", self.egress_config.display()),
            "--profiling=false".into(),
        ]
    }

    fn controller_manager_args(&self) -> Vec<String> {
        let p = &self.pki_files;
        vec![
            format!("--kubeconfig={}", self.kubeconfig.display()),
            "--controllers=*".into(),
            "--leader-elect=false".into(),
            "--bind-address=127.0.0.1".into(),
            "--secure-port=0".into(),
            format!("--service-account-private-key-file={}", p.service_account_key.display()),
            format!("--root-ca-file={}", p.ca_cert.display()),
            format!("--cluster-signing-cert-file={}", p.ca_cert.display()),
            format!("--cluster-signing-key-file={}", p.ca_key.display()),
        ]
    }

    fn scheduler_args(&self) -> Vec<String> {
        vec![
            format!("--kubeconfig={}", self.kubeconfig.display()),
            "--leader-elect=false".into(),
            "--bind-address=127.0.0.1".into(),
            "--secure-port=0".into(),
        ]
    }

    fn kwok_args(&self) -> Vec<String> {
        vec![
            format!("--kubeconfig={}", self.kubeconfig.display()),
            format!("--config={}", self.bin_dir.join("kwok-stages.yaml").display()),
            "--manage-all-nodes=false".into(),
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake".into(),
            // Heartbeat through a Lease like a kubelet (kwokctl's default).
            "--node-lease-duration-seconds=40".into(),
            "--cidr=10.244.0.0/16".into(),
            "--node-ip=127.0.0.2".into(),
        ]
    }

    /// A Node that kwok manages (by annotation) and that accepts any pod (no
    /// taint, unlike kwok's docs example, so test pods need no tolerations).
    fn node_manifest(&self) -> String {
        format!(
            r#"apiVersion: v1
kind: Node
metadata:
  name: {name}
  annotations:
    node.alpha.kubernetes.io/ttl: "0"
    kwok.x-k8s.io/node: fake
  labels:
    kubernetes.io/arch: amd64
    kubernetes.io/hostname: {name}
    kubernetes.io/os: linux
    kubernetes.io/role: agent
    node-role.kubernetes.io/agent: ""
    type: kwok
status:
  allocatable: {{cpu: "32", memory: 256Gi, pods: "2000"}}
  capacity: {{cpu: "32", memory: 256Gi, pods: "2000"}}
"#,
            name = self.node_name
        )
    }

    /// Path of the admin kubeconfig (cluster-admin via O=system:masters).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// Routes the API server's calls to the Service `namespace/service` on
    /// `port` (by its DNS name, and by its ClusterIP, which the API server's
    /// service resolver dials) to `to`, a host process, as kube-proxy would
    /// to the Service's pods. The Service must exist.
    pub fn route_service(&self, service: &str, namespace: &str, port: u16, to: std::net::SocketAddr) -> Result<()> {
        self.route_service_to_all(service, namespace, port, vec![to])
    }

    /// [`DevCluster::route_service`] to several processes, in turn (see
    /// [`proxy::Routes::set_all`]): replicas behind one Service.
    pub fn route_service_to_all(&self, service: &str, namespace: &str, port: u16, to: Vec<std::net::SocketAddr>) -> Result<()> {
        self.egress.set_all(&format!("{service}.{namespace}.svc:{port}"), to.clone());
        let ip = self.kubectl_ok(
            &["get", "service", service, "-n", namespace, "-o", "jsonpath={.spec.clusterIP}"],
            None,
        )?;
        if !ip.trim().is_empty() {
            self.egress.set_all(&format!("{}:{port}", ip.trim()), to);
        }
        Ok(())
    }

    /// The CA whose certificate the API server presents to admission webhooks
    /// (`ecskube serve --client-ca`).
    pub fn webhook_client_ca(&self) -> &Path {
        &self.webhook_client_ca
    }

    /// A kubeconfig authenticating as ServiceAccount `namespace/name` (a
    /// TokenRequest token, valid for an hour), written into the work dir.
    pub fn service_account_kubeconfig(&self, namespace: &str, name: &str) -> Result<PathBuf> {
        let token = self.kubectl_ok(&["create", "token", name, "-n", namespace, "--duration=1h"], None)?;
        let path = self.work_path.join(format!("kubeconfig-{namespace}-{name}"));
        let user = format!("system:serviceaccount:{namespace}:{name}");
        kubeconfig::write_token(&path, &self.server_url, &self.pki_files.ca_cert, &user, token.trim())?;
        Ok(path)
    }

    /// kubectl as the user of `kubeconfig` (e.g. [`DevCluster::service_account_kubeconfig`]).
    pub fn kubectl_as(&self, kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> Result<KubectlOutput> {
        let mut cmd = Command::new(self.kubectl_path());
        cmd.arg(format!("--kubeconfig={}", kubeconfig.display())).env_remove("KUBECONFIG");
        run_captured(cmd, args, stdin)
    }

    /// Path of the kubectl built with the control plane.
    pub fn kubectl_path(&self) -> PathBuf {
        self.bin_dir.join("kubectl")
    }

    /// Directory with all control-plane binaries.
    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// `https://127.0.0.1:PORT`.
    pub fn server_url(&self) -> &str {
        &self.server_url
    }

    /// PEM of the cluster CA (trust anchor for the API server's cert; also a
    /// valid `caBundle` for certs from [`DevCluster::issue_server_cert`]).
    pub fn ca_pem(&self) -> &str {
        self.pki.ca_cert_pem()
    }

    /// Name of the kwok fake Node.
    pub fn node_name(&self) -> &str {
        &self.node_name
    }

    /// Work dir holding pki/, kubeconfig, logs/ and etcd data.
    pub fn work_dir(&self) -> &Path {
        &self.work_path
    }

    /// A serving cert signed by the cluster CA, e.g. for a webhook at
    /// `https://127.0.0.1:PORT` (pass `&["127.0.0.1"]`).
    pub fn issue_server_cert(&self, sans: &[&str]) -> Result<IssuedCert> {
        self.pki.issue_server_cert(sans.first().copied().unwrap_or("server"), sans)
    }

    /// A `kubectl` command preset with `--kubeconfig` for this cluster.
    pub fn kubectl(&self) -> Command {
        let mut cmd = Command::new(self.kubectl_path());
        cmd.arg(format!("--kubeconfig={}", self.kubeconfig.display()))
            .env_remove("KUBECONFIG");
        cmd
    }

    /// Runs kubectl with `args` (and optional stdin), capturing its output.
    pub fn kubectl_run(&self, args: &[&str], stdin: Option<&str>) -> Result<KubectlOutput> {
        run_captured(self.kubectl(), args, stdin)
    }

    /// Like [`DevCluster::kubectl_run`] but fails (with stderr) unless kubectl
    /// exits 0; returns stdout.
    pub fn kubectl_ok(&self, args: &[&str], stdin: Option<&str>) -> Result<String> {
        let out = self.kubectl_run(args, stdin)?;
        if !out.success() {
            bail!("kubectl {} failed ({}):\n{}{}", args.join(" "), out.status, out.stderr, out.stdout);
        }
        Ok(out.stdout)
    }

    /// `kubectl apply -f -` of a YAML/JSON manifest.
    pub fn apply(&self, manifest: &str) -> Result<String> {
        self.kubectl_ok(&["apply", "-f", "-"], Some(manifest))
    }

    /// The last `lines` lines of every component's log, for failure reports.
    pub fn log_tails(&self, lines: usize) -> String {
        let components = self.components.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        for c in components.iter() {
            out.push_str(&format!(
                "----- {} (pid {}, {}) last {lines} lines -----\n{}\n",
                c.name,
                c.pid(),
                c.log_path.display(),
                c.log_tail(lines)
            ));
        }
        out
    }

    /// Stops every component (SIGTERM, then SIGKILL after 1s) and
    /// removes the work dir unless it was kept. Idempotent.
    pub fn shutdown(&self) {
        let mut components = self.components.lock().unwrap_or_else(|e| e.into_inner());
        // The data is disposable, so a short grace is enough: the API server
        // and etcd take several seconds to drain on SIGTERM and are killed.
        process::stop_all(&mut components, Duration::from_secs(1));
        components.clear();
        drop(self.work_dir.lock().unwrap_or_else(|e| e.into_inner()).take());
    }
}

impl Drop for DevCluster {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Runs `cmd args...` with optional stdin, capturing stdout and stderr.
fn run_captured(mut cmd: Command, args: &[&str], stdin: Option<&str>) -> Result<KubectlOutput> {
    cmd.args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().with_context(|| format!("running kubectl {}", args.join(" ")))?;
    if let Some(input) = stdin {
        // Write from a thread: kubectl may fill its stdout pipe first.
        let mut pipe = child.stdin.take().expect("piped stdin");
        let input = input.to_string();
        thread::spawn(move || {
            let _ = pipe.write_all(input.as_bytes());
        });
    }
    let out = child.wait_with_output()?;
    Ok(KubectlOutput {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

const WORK_DIR_PREFIX: &str = "ecskube-devcluster-";
const OWNER_FILE: &str = "owner.pid";

/// Removes work dirs (etcd data can be tens of MB) left behind by runs that
/// died without cleaning up, i.e. whose owner process no longer exists.
fn sweep_stale_work_dirs() {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with(WORK_DIR_PREFIX) {
            continue;
        }
        let owner = fs::read_to_string(entry.path().join(OWNER_FILE))
            .ok()
            .and_then(|s| s.trim().parse::<libc::pid_t>().ok());
        // SAFETY: signal 0 only checks whether the pid exists.
        let dead = owner.is_some_and(|pid| {
            let rc = unsafe { libc::kill(pid, 0) };
            rc == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
        });
        if dead {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// A currently free TCP port on 127.0.0.1 (the OS picks it; it is released
/// before use, so a race is possible but unlikely on a test box).
pub fn free_port() -> Result<u16> {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Mutex;
    // A port the kernel hands out as a connection's local port may be taken
    // between this check and the component's bind ("address already in use"
    // seen in a full run): choose below the ephemeral range, where only other
    // listeners can take it, at random, never the same twice in a process.
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (low, high) = (10_000u16, ephemeral_low.max(10_001));
    let seed = (u64::from(std::process::id()) << 32)
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::from(d.subsec_nanos()));
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..200 {
        // splitmix64: well spread whatever the seed.
        let mut z = seed.wrapping_add(SEQ.fetch_add(1, Ordering::Relaxed).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let port = low + (z % u64::from(high - low)) as u16;
        if given.contains(&port) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.push(port);
            return Ok(port);
        }
    }
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
