//! Which of the projects that AWS-backed ECS fields map to the cluster runs:
//! External Secrets Operator (ExternalSecret), the AWS Load Balancer
//! Controller (TargetGroupBinding) and the EFS CSI driver (CSIDriver
//! `efs.csi.aws.com`). Found by API discovery and checked again every
//! interval, so a CRD installed later is used without a restart (and one
//! removed stops being written). The webhook and the controller read the
//! same store, so what is admitted is what runs.

use crate::translate::{Integrations, SecretStores, StoreRef, TargetGroupBindings};
use k8s_openapi::api::storage::v1::CSIDriver;
use kube::{Api, Client};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The flags naming the External Secrets stores and the target group choice
/// (`ecskube serve` and `ecskube convert`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct StoreArgs {
    /// The External Secrets store for Secrets Manager references (`valueFrom`
    /// ARNs of secretsmanager, registry credentials): `NAME` (a
    /// ClusterSecretStore) or `SecretStore/NAME` (one in each namespace).
    #[arg(long, value_name = "[KIND/]NAME", value_parser = parse_store)]
    pub secret_store_secrets_manager: Option<StoreRef>,
    /// The External Secrets store for SSM Parameter Store references (ARNs of
    /// ssm, and parameter names): `NAME` or `SecretStore/NAME`.
    #[arg(long, value_name = "[KIND/]NAME", value_parser = parse_store)]
    pub secret_store_parameter_store: Option<StoreRef>,
    /// Write TargetGroupBindings with multiClusterTargetGroup: the AWS Load
    /// Balancer Controller then leaves targets it did not register (the ECS
    /// tasks) in the target group, so ECS and Kubernetes can serve together.
    #[arg(long)]
    pub target_group_multi_cluster: bool,
}

fn parse_store(s: &str) -> Result<StoreRef, String> {
    StoreRef::parse(s)
}

impl StoreArgs {
    pub fn stores(&self) -> SecretStores {
        SecretStores {
            secrets_manager: self.secret_store_secrets_manager.clone(),
            parameter_store: self.secret_store_parameter_store.clone(),
        }
    }
}

/// What the cluster admin configured (flags of `ecskube serve`).
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub stores: SecretStores,
    pub multi_cluster_target_groups: bool,
    /// Off: never map to these projects, whatever the cluster has.
    pub disabled: bool,
}

/// What discovery found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Found {
    pub external_secrets: bool,
    pub target_group_binding: bool,
    pub efs_csi: bool,
}

impl Found {
    /// The integrations to translate with: a project found, and (for
    /// External Secrets) at least one store named by the admin.
    pub fn integrations(self, config: &Config) -> Integrations {
        if config.disabled {
            return Integrations::default();
        }
        let stores = &config.stores;
        let any_store = stores.secrets_manager.is_some() || stores.parameter_store.is_some();
        Integrations {
            external_secrets: (self.external_secrets && any_store).then(|| stores.clone()),
            target_group_binding: self.target_group_binding.then_some(TargetGroupBindings {
                multi_cluster: config.multi_cluster_target_groups,
            }),
            efs_csi: self.efs_csi,
        }
    }
}

/// The current integrations, shared by the webhook and the controller.
#[derive(Clone, Debug)]
pub struct IntegrationsStore {
    tx: Arc<watch::Sender<Integrations>>,
}

impl Default for IntegrationsStore {
    fn default() -> Self {
        IntegrationsStore::fixed(Integrations::default())
    }
}

impl IntegrationsStore {
    pub fn fixed(integrations: Integrations) -> Self {
        IntegrationsStore {
            tx: Arc::new(watch::Sender::new(integrations)),
        }
    }

    pub fn current(&self) -> Integrations {
        self.tx.borrow().clone()
    }

    /// Sets the integrations; true when they changed.
    pub fn set(&self, integrations: Integrations) -> bool {
        self.tx.send_if_modified(|now| {
            let changed = *now != integrations;
            *now = integrations;
            changed
        })
    }

    /// One item per change (for the controller: reconcile everything again).
    pub fn changes(&self) -> impl futures::Stream<Item = ()> + Send + 'static {
        let mut rx = self.tx.subscribe();
        rx.mark_unchanged();
        futures::stream::unfold(rx, |mut rx| async move { rx.changed().await.ok().map(|()| ((), rx)) })
    }
}

/// Whether the API server serves `resource` in `group_version`.
async fn serves(client: &Client, group_version: &str, resource: &str) -> Result<bool, kube::Error> {
    match client.list_api_group_resources(group_version).await {
        Ok(list) => Ok(list.resources.iter().any(|r| r.name == resource)),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
        Err(e) => Err(e),
    }
}

pub async fn discover(client: &Client) -> Result<Found, kube::Error> {
    let es = crate::translate::external_secrets_api_resource();
    let tgb = crate::translate::target_group_binding_api_resource();
    let efs = async {
        match Api::<CSIDriver>::all(client.clone()).get_opt(crate::translate::EFS_DRIVER).await {
            Ok(found) => Ok(found.is_some()),
            // Without the right to read CSIDrivers, say so and assume none.
            Err(kube::Error::Api(s)) if s.code == 403 => {
                tracing::warn!("may not read CSIDrivers: EFS volumes stay claims for the user to create");
                Ok(false)
            }
            Err(e) => Err(e),
        }
    };
    let (external_secrets, target_group_binding, efs_csi) = tokio::try_join!(
        serves(client, &es.api_version, &es.plural),
        serves(client, &tgb.api_version, &tgb.plural),
        efs,
    )?;
    Ok(Found {
        external_secrets,
        target_group_binding,
        efs_csi,
    })
}

/// Discovers every `interval` (the caller discovered once at start), until
/// `shutdown`. A failed discovery keeps what was found before.
pub async fn run(client: Client, config: Config, store: IntegrationsStore, interval: Duration, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        match discover(&client).await {
            Ok(found) => {
                let integrations = found.integrations(&config);
                if store.set(integrations) {
                    tracing::info!(
                        external_secrets = found.external_secrets,
                        target_group_binding = found.target_group_binding,
                        efs_csi = found.efs_csi,
                        "integrations changed"
                    );
                }
            }
            Err(e) => tracing::warn!(error = %e, "API discovery failed; keeping the integrations found before"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(stores: bool) -> Config {
        Config {
            stores: SecretStores {
                secrets_manager: stores.then(|| StoreRef::parse("aws-sm").unwrap()),
                parameter_store: None,
            },
            ..Default::default()
        }
    }

    #[test]
    fn external_secrets_need_the_crd_and_a_store() {
        let all = Found {
            external_secrets: true,
            target_group_binding: true,
            efs_csi: true,
        };
        assert!(all.integrations(&config(true)).external_secrets.is_some());
        assert!(all.integrations(&config(false)).external_secrets.is_none());
        let none = Found::default();
        assert_eq!(none.integrations(&config(true)), Integrations::default());
        let mut disabled = config(true);
        disabled.disabled = true;
        assert_eq!(all.integrations(&disabled), Integrations::default());
    }

    #[tokio::test]
    async fn a_change_is_signalled_once() {
        use futures::StreamExt;
        let store = IntegrationsStore::default();
        let mut changes = Box::pin(store.changes());
        assert!(!store.set(Integrations::default()));
        assert!(store.set(Integrations {
            efs_csi: true,
            ..Default::default()
        }));
        assert_eq!(changes.next().await, Some(()));
        assert!(store.current().efs_csi);
    }
}
