//! The children as the controller's watches last saw them: one reflector
//! per child kind, whose events also trigger reconciles (`owns`). A
//! reconcile reads children here instead of one GET per child, so status
//! follows as fast as the watch does and the API server is asked nothing
//! to find out that nothing changed.
//!
//! A store can lag a write by a moment; the writes themselves are guarded
//! (`write`: create fails on a taken name, apply carries the uid it checked),
//! so a stale read costs a retry, never a wrong write.

use super::children::ChildKind;
use crate::translate::{MANAGED_BY_LABEL, MANAGER, OWNER_NAMESPACE_LABEL};
use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Service, ServiceAccount};
use kube::api::DynamicObject;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher;
use kube::runtime::WatchStreamExt;
use kube::{Api, Client, Resource};
use serde::Serialize;
use std::sync::Arc;

#[derive(Clone)]
pub struct ChildStores {
    pub deployments: Store<Deployment>,
    pub daemon_sets: Store<DaemonSet>,
    pub services: Store<Service>,
    pub service_accounts: Store<ServiceAccount>,
    pub claims: Store<PersistentVolumeClaim>,
    pub autoscalers: Store<HorizontalPodAutoscaler>,
    /// Cluster-wide (PersistentVolumes have no namespace), ecskube's only.
    pub volumes: Store<PersistentVolume>,
}

/// A watched child stream for `Controller::owns_stream`.
pub type Children<K> = std::pin::Pin<Box<dyn Stream<Item = Result<K, watcher::Error>> + Send>>;

pub struct ChildStreams {
    pub deployments: Children<Deployment>,
    pub daemon_sets: Children<DaemonSet>,
    pub services: Children<Service>,
    pub service_accounts: Children<ServiceAccount>,
    pub claims: Children<PersistentVolumeClaim>,
    pub autoscalers: Children<HorizontalPodAutoscaler>,
    pub volumes: Children<PersistentVolume>,
}

/// Reflectors over ecskube's children (by their managed-by label, so memory
/// stays flat in a big cluster), in `namespace` or everywhere.
pub fn watch(client: &Client, namespace: Option<&str>) -> (ChildStores, ChildStreams) {
    let config = watcher::Config::default()
        .any_semantic()
        .labels(&format!("{MANAGED_BY_LABEL}={MANAGER}"));
    fn reflect<K>(api: Api<K>, config: &watcher::Config) -> (Store<K>, Children<K>)
    where
        K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    {
        let (store, writer) = reflector::store();
        let stream = reflector::reflector(writer, watcher(api, config.clone()))
            .default_backoff()
            .touched_objects()
            .boxed();
        (store, stream)
    }
    fn one<K>(client: &Client, namespace: Option<&str>, config: &watcher::Config) -> (Store<K>, Children<K>)
    where
        K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug
            + Send
            + Sync
            + 'static,
    {
        let api: Api<K> = match namespace {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        };
        reflect(api, config)
    }
    let (deployments, d) = one::<Deployment>(client, namespace, &config);
    let (daemon_sets, ds) = one::<DaemonSet>(client, namespace, &config);
    let (services, s) = one::<Service>(client, namespace, &config);
    let (service_accounts, sa) = one::<ServiceAccount>(client, namespace, &config);
    let (claims, pvc) = one::<PersistentVolumeClaim>(client, namespace, &config);
    let (autoscalers, hpa) = one::<HorizontalPodAutoscaler>(client, namespace, &config);
    // A namespace-scoped controller still sees only its namespace's volumes.
    let volume_config = match namespace {
        Some(ns) => config
            .clone()
            .labels(&format!("{MANAGED_BY_LABEL}={MANAGER},{OWNER_NAMESPACE_LABEL}={ns}")),
        None => config.clone(),
    };
    let (volumes, pv) = reflect(Api::<PersistentVolume>::all(client.clone()), &volume_config);
    (
        ChildStores {
            deployments,
            daemon_sets,
            services,
            service_accounts,
            claims,
            autoscalers,
            volumes,
        },
        ChildStreams {
            deployments: d,
            daemon_sets: ds,
            services: s,
            service_accounts: sa,
            claims: pvc,
            autoscalers: hpa,
            volumes: pv,
        },
    )
}

impl ChildStores {
    /// The child as last seen, in the untyped form the writes use.
    pub fn get(&self, kind: ChildKind, namespace: &str, name: &str) -> Option<DynamicObject> {
        // `namespace` None: a cluster-scoped object.
        fn find<K>(store: &Store<K>, namespace: Option<&str>, name: &str) -> Option<DynamicObject>
        where
            K: Resource<DynamicType = ()> + Clone + Serialize + 'static,
        {
            let at = match namespace {
                Some(ns) => ObjectRef::new(name).within(ns),
                None => ObjectRef::new(name),
            };
            let found: Arc<K> = store.get(&at)?;
            let mut value = serde_json::to_value(&*found).ok()?;
            // Typed objects leave these out; the untyped form wants them.
            value["apiVersion"] = K::api_version(&()).into();
            value["kind"] = K::kind(&()).into();
            serde_json::from_value(value).ok()
        }
        let ns = Some(namespace);
        match kind {
            ChildKind::Deployment => find(&self.deployments, ns, name),
            ChildKind::DaemonSet => find(&self.daemon_sets, ns, name),
            ChildKind::Service => find(&self.services, ns, name),
            ChildKind::ServiceAccount => find(&self.service_accounts, ns, name),
            ChildKind::PersistentVolumeClaim => find(&self.claims, ns, name),
            ChildKind::HorizontalPodAutoscaler => find(&self.autoscalers, ns, name),
            ChildKind::PersistentVolume => find(&self.volumes, None, name),
            // Not watched (the CRD may be absent): the caller reads them.
            ChildKind::ExternalSecret | ChildKind::TargetGroupBinding => None,
        }
    }

    /// Until every store has listed once, a read would say "absent" wrongly.
    pub async fn wait_until_ready(&self) {
        let _ = futures::join!(
            self.deployments.wait_until_ready(),
            self.daemon_sets.wait_until_ready(),
            self.services.wait_until_ready(),
            self.service_accounts.wait_until_ready(),
            self.claims.wait_until_ready(),
            self.autoscalers.wait_until_ready(),
            self.volumes.wait_until_ready(),
        );
    }
}
