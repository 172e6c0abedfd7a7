//! `ecskube-dev-cluster up [MANIFEST...]`: start the local control plane
//! (see ecskube::devcluster), print how to use it, optionally
//! `kubectl apply -f` the given manifests, and run until Ctrl-C/SIGTERM.

use std::path::PathBuf;
use std::sync::mpsc;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use ecskube::devcluster::ecskube::Installation;
use ecskube::devcluster::{default_bin_dir, kubernetes_version, ClusterOptions, DevCluster};

#[derive(Parser)]
#[command(about = "Local Kubernetes control plane (etcd, apiserver, controller-manager, scheduler, kwok)")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start the control plane and keep it running until Ctrl-C/SIGTERM.
    Up {
        /// Manifests to `kubectl apply -f` once the cluster is ready.
        manifests: Vec<PathBuf>,
        /// Directory with the binaries from `make control-plane`.
        #[arg(long, default_value_os_t = default_bin_dir())]
        bin_dir: PathBuf,
        /// Keep the work dir (kubeconfig, PKI, logs) after shutdown.
        #[arg(long)]
        keep: bool,
        /// Install ecskube as `kubectl apply -k` does (from --install-from)
        /// and run its webhook and controller, each as its own ServiceAccount,
        /// from this binary; give its path.
        #[arg(long)]
        ecskube: Option<PathBuf>,
        /// The kustomization ecskube is installed from.
        #[arg(long, default_value = "webhook-config")]
        install_from: PathBuf,
        /// After applying, show the objects with this label selector.
        #[arg(long, default_value = "demo=true")]
        show: String,
    },
}

fn main() -> Result<()> {
    let Cmd::Up {
        manifests,
        bin_dir,
        keep,
        ecskube,
        install_from,
        show,
    } = Cli::parse().command;

    // Install the handler before starting anything, so a Ctrl-C during
    // startup also ends in an orderly shutdown.
    let (stop_tx, stop_rx) = mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = stop_tx.send(());
    })
    .context("installing the Ctrl-C/SIGTERM handler")?;

    eprintln!(
        "starting Kubernetes {} control plane from {} ...",
        kubernetes_version(),
        bin_dir.display()
    );
    let cluster = DevCluster::start(ClusterOptions {
        bin_dir,
        keep_work_dir: keep,
        ..ClusterOptions::default()
    })?;

    let server = match &ecskube {
        Some(binary) => {
            eprintln!(
                "installing ecskube (kubectl apply -k {}) and starting its webhook and controller ...",
                install_from.display()
            );
            let installed = Installation::install(&cluster, binary, &install_from, &[])?;
            eprintln!(
                "ecskube webhook on https://127.0.0.1:{} (Service ecskube-webhook.ecskube-system), metrics on http://127.0.0.1:{}/metrics and http://127.0.0.1:{}/metrics",
                installed.webhook.webhook_port, installed.webhook.probe_port, installed.controller.probe_port
            );
            Some(installed)
        }
        None => None,
    };

    // What kubectl says, warnings and refusals included: a refused manifest
    // is the webhook doing its job, so the cluster stays up to fix it in.
    for m in &manifests {
        let path = m.to_string_lossy();
        let out = cluster.kubectl_run(&["apply", "-f", &path], None)?;
        eprint!("{}{}", out.stderr, out.stdout);
    }
    if server.is_some() && !manifests.is_empty() {
        show_demo(&cluster, &show);
    }

    eprintln!("control plane ready at {}", cluster.server_url());
    eprintln!("logs: {}", cluster.work_dir().join("logs").display());
    eprintln!("kubectl: {}", cluster.kubectl_path().display());
    // The one line on stdout, so `eval "$(... | head -1)"`-style use works.
    println!("export KUBECONFIG={}", cluster.kubeconfig_path().display());
    eprintln!("press Ctrl-C to stop");

    let _ = stop_rx.recv();
    eprintln!("stopping ecskube and the control plane ...");
    drop(server);
    drop(cluster);
    eprintln!("stopped");
    Ok(())
}

/// Waits (up to a minute) for the demo's pods to run, then prints what exists.
fn show_demo(cluster: &DevCluster, selector: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        let pods = cluster
            .kubectl_ok(&["get", "pods", "-A", "-l", selector, "--no-headers"], None)
            .unwrap_or_default();
        if !pods.trim().is_empty() && pods.lines().all(|l| l.contains("Running")) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    match cluster.kubectl_ok(
        &["get", "ecsdeployments,deployments,daemonsets,svc,pods", "-A", "-l", selector],
        None,
    ) {
        Ok(out) => eprintln!("\n$ kubectl get ecsdeployments,deployments,daemonsets,svc,pods -A -l {selector}\n{out}"),
        Err(e) => eprintln!("{e:#}"),
    }
}
