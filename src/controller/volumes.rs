//! Deleting the EFS PersistentVolumes whose ECSDeployment is gone.
//!
//! A PersistentVolume is cluster-scoped, so it cannot have an ownerReference
//! to a namespaced ECSDeployment and garbage collection never removes it. A
//! finalizer on the ECSDeployment would, but would also leave every
//! ECSDeployment undeletable (and its namespace stuck Terminating) whenever
//! ecskube is not running or was uninstalled. So this is a cleanup step
//! instead: the leader looks every [`SWEEP_INTERVAL`] for volumes labelled as
//! ecskube's whose owner (by uid) no longer exists, confirms with a read of
//! the owner, and deletes exactly that volume (uid precondition). Their
//! claims went with the ECSDeployment; the volumes are `Retain`, so the file
//! system's data is never touched.

use super::Metrics;
use crate::crd::ECSDeployment;
use crate::translate::{INSTANCE_LABEL, OWNER_NAMESPACE_LABEL, OWNER_UID_LABEL};
use k8s_openapi::api::core::v1::PersistentVolume;
use kube::api::{DeleteParams, Preconditions};
use kube::runtime::reflector::Store;
use kube::{Api, Client, ResourceExt};
use std::sync::Arc;
use std::time::Duration;

pub const SWEEP_INTERVAL: Duration = Duration::from_secs(15);

/// The owner a volume's labels name: namespace, name, uid.
pub fn owner_of(pv: &PersistentVolume) -> Option<(String, String, String)> {
    let labels = pv.metadata.labels.as_ref()?;
    Some((
        labels.get(OWNER_NAMESPACE_LABEL)?.clone(),
        labels.get(INSTANCE_LABEL)?.clone(),
        labels.get(OWNER_UID_LABEL)?.clone(),
    ))
}

/// The volumes whose owner uid is not among the live ECSDeployments'.
pub fn orphan_candidates(volumes: &[Arc<PersistentVolume>], live_uids: &std::collections::HashSet<String>) -> Vec<Arc<PersistentVolume>> {
    volumes
        .iter()
        .filter(|pv| owner_of(pv).is_some_and(|(_, _, uid)| !live_uids.contains(&uid)))
        .cloned()
        .collect()
}

/// One sweep: deletes every volume whose owner is confirmed gone.
pub async fn sweep(client: &Client, objects: &Store<ECSDeployment>, volumes: &Store<PersistentVolume>, metrics: &Metrics) {
    let live: std::collections::HashSet<String> = objects.state().iter().filter_map(|o| o.uid()).collect();
    for pv in orphan_candidates(&volumes.state(), &live) {
        let Some((namespace, name, uid)) = owner_of(&pv) else { continue };
        // The store may lag: ask the API server before deleting anything.
        let owners: Api<ECSDeployment> = Api::namespaced(client.clone(), &namespace);
        match owners.get_opt(&name).await {
            Ok(Some(owner)) if owner.uid().as_deref() == Some(uid.as_str()) => continue,
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(error = %e, "volume cleanup: could not read the owner; next sweep");
                continue;
            }
        }
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: pv.metadata.uid.clone(),
                resource_version: None,
            }),
            ..DeleteParams::background()
        };
        let api: Api<PersistentVolume> = Api::all(client.clone());
        match api.delete(&pv.name_any(), &params).await {
            Ok(_) => {
                metrics.wrote("PersistentVolume", "delete");
                tracing::info!(volume = %pv.name_any(), %namespace, owner = %name, "deleted the EFS volume of a deleted ECSDeployment");
            }
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
            Err(e) => tracing::warn!(error = %e, volume = %pv.name_any(), "volume cleanup failed; next sweep"),
        }
    }
}

/// Sweeps until dropped (it runs inside the leader's controller task).
pub async fn keep_sweeping(client: Client, objects: Store<ECSDeployment>, volumes: Store<PersistentVolume>, metrics: Arc<Metrics>) {
    if objects.wait_until_ready().await.is_err() || volumes.wait_until_ready().await.is_err() {
        return;
    }
    loop {
        sweep(&client, &objects, &volumes, &metrics).await;
        tokio::time::sleep(SWEEP_INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashSet};

    fn volume(uid: Option<&str>) -> Arc<PersistentVolume> {
        let mut labels = BTreeMap::from([
            (INSTANCE_LABEL.to_string(), "web".to_string()),
            (OWNER_NAMESPACE_LABEL.to_string(), "team".to_string()),
        ]);
        if let Some(uid) = uid {
            labels.insert(OWNER_UID_LABEL.to_string(), uid.to_string());
        }
        let mut pv = PersistentVolume::default();
        pv.metadata.labels = Some(labels);
        Arc::new(pv)
    }

    #[test]
    fn only_volumes_of_owners_that_are_gone_are_candidates() {
        let live = HashSet::from(["uid-live".to_string()]);
        let volumes = [volume(Some("uid-live")), volume(Some("uid-gone")), volume(None)];
        let candidates = orphan_candidates(&volumes, &live);
        assert_eq!(candidates.len(), 1);
        assert_eq!(owner_of(&candidates[0]).map(|o| o.2), Some("uid-gone".to_string()));
    }
}
