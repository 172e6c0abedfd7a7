//! `ecskube-dev-cluster up [MANIFEST...]`: start the local control plane
//! (see ecskube::devcluster), print how to use it, optionally
//! `kubectl apply -f` the given manifests, and run until Ctrl-C/SIGTERM.

use std::path::PathBuf;
use std::sync::mpsc;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
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
    },
}

fn main() -> Result<()> {
    let Cmd::Up { manifests, bin_dir, keep } = Cli::parse().command;

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

    for m in &manifests {
        let path = m.to_string_lossy();
        let out = cluster.kubectl_ok(&["apply", "-f", &path], None)?;
        eprint!("{out}");
    }

    eprintln!("control plane ready at {}", cluster.server_url());
    eprintln!("logs: {}", cluster.work_dir().join("logs").display());
    eprintln!("kubectl: {}", cluster.kubectl_path().display());
    // The one line on stdout, so `eval "$(... | head -1)"`-style use works.
    println!("export KUBECONFIG={}", cluster.kubeconfig_path().display());
    eprintln!("press Ctrl-C to stop");

    let _ = stop_rx.recv();
    eprintln!("stopping control plane ...");
    drop(cluster);
    eprintln!("stopped");
    Ok(())
}
