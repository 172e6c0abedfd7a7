//! The children an ECSDeployment should have, and how they compare with what
//! is in the cluster: ownership (never touch what another owner controls),
//! whether an apply would change anything, and which children are stale.
//! Pure: the reconciler does the I/O.

use crate::crd::ECSDeployment;
use crate::translate::Object;
use crate::translate::OWNER_UID_LABEL;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, PodSpec, Service, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::ApiResource;
use kube::Resource;
use serde_json::Value;
use std::collections::BTreeSet;

/// Records which desired state a child was last applied from: a changed
/// hash means fields may have been removed, which a subset check cannot see.
pub const HASH_ANNOTATION: &str = "ecskube.ecskube/desired-hash";

/// The kinds the controller writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChildKind {
    Deployment,
    DaemonSet,
    Service,
    ServiceAccount,
    PersistentVolumeClaim,
    PersistentVolume,
    HorizontalPodAutoscaler,
    ExternalSecret,
    TargetGroupBinding,
}

impl ChildKind {
    pub const ALL: [ChildKind; 9] = [
        ChildKind::Deployment,
        ChildKind::DaemonSet,
        ChildKind::Service,
        ChildKind::ServiceAccount,
        ChildKind::PersistentVolumeClaim,
        ChildKind::PersistentVolume,
        ChildKind::HorizontalPodAutoscaler,
        ChildKind::ExternalSecret,
        ChildKind::TargetGroupBinding,
    ];

    /// The kinds named after the ECSDeployment itself: a stale one is found
    /// by name even when the status never listed it.
    pub const NAMED_AFTER_OWNER: [ChildKind; 5] = [
        ChildKind::Deployment,
        ChildKind::DaemonSet,
        ChildKind::Service,
        ChildKind::ServiceAccount,
        ChildKind::HorizontalPodAutoscaler,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ChildKind::Deployment => "Deployment",
            ChildKind::DaemonSet => "DaemonSet",
            ChildKind::Service => "Service",
            ChildKind::ServiceAccount => "ServiceAccount",
            ChildKind::PersistentVolumeClaim => "PersistentVolumeClaim",
            ChildKind::PersistentVolume => "PersistentVolume",
            ChildKind::HorizontalPodAutoscaler => "HorizontalPodAutoscaler",
            ChildKind::ExternalSecret => "ExternalSecret",
            ChildKind::TargetGroupBinding => "TargetGroupBinding",
        }
    }

    pub fn parse(kind: &str) -> Option<ChildKind> {
        ChildKind::ALL.into_iter().find(|k| k.name() == kind)
    }

    pub fn api_resource(self) -> ApiResource {
        match self {
            ChildKind::Deployment => ApiResource::erase::<Deployment>(&()),
            ChildKind::DaemonSet => ApiResource::erase::<DaemonSet>(&()),
            ChildKind::Service => ApiResource::erase::<Service>(&()),
            ChildKind::ServiceAccount => ApiResource::erase::<ServiceAccount>(&()),
            ChildKind::PersistentVolumeClaim => ApiResource::erase::<PersistentVolumeClaim>(&()),
            ChildKind::PersistentVolume => ApiResource::erase::<PersistentVolume>(&()),
            ChildKind::HorizontalPodAutoscaler => ApiResource::erase::<HorizontalPodAutoscaler>(&()),
            ChildKind::ExternalSecret => crate::translate::external_secrets_api_resource(),
            ChildKind::TargetGroupBinding => crate::translate::target_group_binding_api_resource(),
        }
    }

    /// API group and resource, as RBAC names them.
    pub fn group_resource(self) -> (&'static str, &'static str) {
        match self {
            ChildKind::Deployment => ("apps", "deployments"),
            ChildKind::DaemonSet => ("apps", "daemonsets"),
            ChildKind::Service => ("", "services"),
            ChildKind::ServiceAccount => ("", "serviceaccounts"),
            ChildKind::PersistentVolumeClaim => ("", "persistentvolumeclaims"),
            ChildKind::PersistentVolume => ("", "persistentvolumes"),
            ChildKind::HorizontalPodAutoscaler => ("autoscaling", "horizontalpodautoscalers"),
            ChildKind::ExternalSecret => ("external-secrets.io", "externalsecrets"),
            ChildKind::TargetGroupBinding => ("elbv2.k8s.aws", "targetgroupbindings"),
        }
    }

    pub fn is_workload(self) -> bool {
        matches!(self, ChildKind::Deployment | ChildKind::DaemonSet)
    }

    /// Cluster-scoped: owned by label, not by ownerReference ([`volume_ownership`]).
    pub fn is_cluster_scoped(self) -> bool {
        self == ChildKind::PersistentVolume
    }

    /// Kinds of other projects' CRDs, which may be absent: no watch store
    /// (it would never sync), so a reconcile reads them with a GET.
    pub fn is_custom(self) -> bool {
        matches!(self, ChildKind::ExternalSecret | ChildKind::TargetGroupBinding)
    }
}

/// `Kind/name`, as status.children and messages show a child.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChildId {
    pub kind: ChildKind,
    pub name: String,
}

impl std::fmt::Display for ChildId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.kind.name(), self.name)
    }
}

impl ChildId {
    pub fn parse(s: &str) -> Option<ChildId> {
        let (kind, name) = s.split_once('/')?;
        Some(ChildId {
            kind: ChildKind::parse(kind)?,
            name: name.to_string(),
        })
    }
}

/// One child as it will be applied: the full object with owner and hash.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub id: ChildId,
    pub value: Value,
    /// A HorizontalPodAutoscaler owns the replica count: `spec.replicas`
    /// (desiredCount) is the initial count only, sent when creating.
    pub replicas_from_autoscaler: bool,
}

/// The kind of a translated object.
pub fn kind_of(object: &Object) -> ChildKind {
    match object {
        Object::Deployment(_) => ChildKind::Deployment,
        Object::DaemonSet(_) => ChildKind::DaemonSet,
        Object::Service(_) => ChildKind::Service,
        Object::ServiceAccount(_) => ChildKind::ServiceAccount,
        Object::PersistentVolumeClaim(_) => ChildKind::PersistentVolumeClaim,
        Object::PersistentVolume(_) => ChildKind::PersistentVolume,
        Object::HorizontalPodAutoscaler(_) => ChildKind::HorizontalPodAutoscaler,
        Object::ExternalSecret(_) => ChildKind::ExternalSecret,
        Object::TargetGroupBinding(_) => ChildKind::TargetGroupBinding,
    }
}

/// The controller ownerReference: GC deletes the child with its owner, and
/// `blockOwnerDeletion` keeps foreground deletion of the owner honest.
pub fn owner_reference(owner: &ECSDeployment) -> Option<OwnerReference> {
    let mut r = owner.controller_owner_ref(&())?;
    r.block_owner_deletion = Some(true);
    Some(r)
}

/// The translated objects, made children of `owner`, in its namespace.
pub fn desired(objects: &[Object], owner: &ECSDeployment) -> Vec<Desired> {
    let owner_ref = owner_reference(owner);
    let autoscaled: BTreeSet<String> = objects
        .iter()
        .filter_map(|o| match o {
            Object::HorizontalPodAutoscaler(h) => Some(h.spec.scale_target_ref.name.clone()),
            _ => None,
        })
        .collect();
    objects
        .iter()
        .map(|o| {
            let mut o = o.clone();
            let cluster_scoped = kind_of(&o).is_cluster_scoped();
            let meta = o.metadata_mut();
            if cluster_scoped {
                // No ownerReference can point from a cluster-scoped object to a
                // namespaced one: the owner's uid goes in a label instead.
                meta.namespace = None;
                if let Some(uid) = &owner.metadata.uid {
                    meta.labels
                        .get_or_insert_with(Default::default)
                        .insert(OWNER_UID_LABEL.to_string(), uid.clone());
                }
            } else {
                meta.namespace = owner.metadata.namespace.clone();
                meta.owner_references = owner_ref.clone().map(|r| vec![r]);
            }
            let mut value = serde_json::to_value(&o).unwrap_or(Value::Null);
            let hash = format!("{:016x}", fnv1a(value.to_string().as_bytes()));
            value["metadata"]["annotations"][HASH_ANNOTATION] = Value::String(hash);
            let name = o.metadata().name.clone().unwrap_or_default();
            Desired {
                replicas_from_autoscaler: matches!(o, Object::Deployment(_)) && autoscaled.contains(&name),
                id: ChildId { kind: kind_of(&o), name },
                value,
            }
        })
        .collect()
}

/// The order children are applied in: the ServiceAccount before the
/// workload whose pods run as it, so a ServiceAccount that turns out to be
/// someone else's stops the workload from being applied at all.
pub fn in_apply_order(desired: &[Desired]) -> Vec<&Desired> {
    // Volumes and the Secrets' sources before the pods that mount and read
    // them; the autoscaler after the Deployment it scales.
    let rank = |d: &Desired| match d.id.kind {
        ChildKind::ServiceAccount => 0,
        ChildKind::PersistentVolume | ChildKind::PersistentVolumeClaim | ChildKind::ExternalSecret => 1,
        ChildKind::Service | ChildKind::TargetGroupBinding => 2,
        ChildKind::Deployment | ChildKind::DaemonSet => 3,
        ChildKind::HorizontalPodAutoscaler => 4,
    };
    let mut ordered: Vec<&Desired> = desired.iter().collect();
    ordered.sort_by_key(|d| rank(d));
    ordered
}

/// Whether field manager `manager` owns `spec.replicas` by apply in `live`.
pub fn applies_replicas(live: &ObjectMeta, manager: &str) -> bool {
    live.managed_fields.iter().flatten().any(|e| {
        e.manager.as_deref() == Some(manager)
            && e.operation.as_deref() == Some("Apply")
            && e.subresource.as_deref().unwrap_or("").is_empty()
            && e.fields_v1.as_ref().and_then(|f| f.0.pointer("/f:spec/f:replicas")).is_some()
    })
}

/// FNV-1a: stable across Rust releases, unlike `DefaultHasher`.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

/// Who controls a live object, seen from one ECSDeployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ownership {
    Absent,
    Ours,
    /// Exists and is not controlled by us: never overwritten or deleted.
    Foreign(String),
}

pub fn ownership(live: Option<&ObjectMeta>, owner_uid: &str) -> Ownership {
    let Some(meta) = live else { return Ownership::Absent };
    let controller = meta.owner_references.iter().flatten().find(|r| r.controller == Some(true));
    match controller {
        Some(r) if r.uid == owner_uid => Ownership::Ours,
        Some(r) => Ownership::Foreign(format!("controlled by {} {}", r.kind, r.name)),
        None => Ownership::Foreign("not managed by this ECSDeployment".into()),
    }
}

/// [`ownership`] of a cluster-scoped child: its owner-uid label.
pub fn volume_ownership(live: &ObjectMeta, owner_uid: &str) -> Ownership {
    match live.labels.as_ref().and_then(|l| l.get(OWNER_UID_LABEL)) {
        Some(uid) if uid == owner_uid => Ownership::Ours,
        Some(_) => Ownership::Foreign("labelled as another ECSDeployment's".into()),
        None => Ownership::Foreign("not managed by this ECSDeployment".into()),
    }
}

/// [`ownership`] or [`volume_ownership`], as the kind is owned.
pub fn ownership_of(kind: ChildKind, live: Option<&ObjectMeta>, owner_uid: &str) -> Ownership {
    match live {
        Some(meta) if kind.is_cluster_scoped() => volume_ownership(meta, owner_uid),
        _ => ownership(live, owner_uid),
    }
}

/// Whether applying `desired` could change `live`: yes when it was last
/// applied from another desired state, or a field we set differs (drift).
/// Fields others added (defaults, other managers) are ignored, as SSA keeps them.
pub fn needs_apply(desired: &Value, live: &Value) -> bool {
    let hash = |v: &Value| {
        v.pointer(&format!("/metadata/annotations/{}", HASH_ANNOTATION.replace('/', "~1")))
            .cloned()
    };
    hash(desired) != hash(live) || !is_subset(desired, live)
}

/// Every field of `a` is in `b` with the same value; lists match item by item.
pub fn is_subset(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => a.iter().all(|(k, v)| match b.get(k) {
            Some(bv) => is_subset(v, bv),
            // The API server drops empty values: absent is as good as empty.
            None => is_empty(v),
        }),
        (Value::Array(a), Value::Array(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| is_subset(x, y)),
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Object(o) => o.values().all(is_empty),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// Children to delete: every kind this ECSDeployment could have had under
/// the names it uses (or listed in its status) that is no longer desired.
/// The caller deletes only those it controls (`ownership` == Ours).
pub fn stale_candidates(desired: &[Desired], name: &str, previous: &[String]) -> Vec<ChildId> {
    let wanted: BTreeSet<&ChildId> = desired.iter().map(|d| &d.id).collect();
    let mut candidates: BTreeSet<ChildId> = ChildKind::NAMED_AFTER_OWNER
        .into_iter()
        .map(|kind| ChildId {
            kind,
            name: name.to_string(),
        })
        .collect();
    candidates.extend(previous.iter().filter_map(|s| ChildId::parse(s)));
    candidates.into_iter().filter(|c| !wanted.contains(c)).collect()
}

/// Objects the pods need that the controller does not create.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reference {
    Secret(String),
    ConfigMap(String),
}

/// The Secrets and ConfigMaps the workload's pods reference (optional ones excluded).
pub fn pod_references(desired: &[Desired]) -> Vec<Reference> {
    let mut refs = BTreeSet::new();
    for d in desired.iter().filter(|d| d.id.kind.is_workload()) {
        let Some(spec) = d
            .value
            .pointer("/spec/template/spec")
            .and_then(|s| serde_json::from_value::<PodSpec>(s.clone()).ok())
        else {
            continue;
        };
        for s in spec.image_pull_secrets.iter().flatten() {
            refs.insert(Reference::Secret(s.name.clone()));
        }
        for v in spec.volumes.iter().flatten() {
            if let Some(s) = v.secret.as_ref().filter(|s| s.optional != Some(true)) {
                refs.extend(s.secret_name.clone().map(Reference::Secret));
            }
            if let Some(c) = v.config_map.as_ref().filter(|c| c.optional != Some(true)) {
                refs.insert(Reference::ConfigMap(c.name.clone()));
            }
        }
        let containers = spec.containers.iter().chain(spec.init_containers.iter().flatten());
        for c in containers {
            for e in c.env.iter().flatten().filter_map(|e| e.value_from.as_ref()) {
                if let Some(s) = e.secret_key_ref.as_ref().filter(|s| s.optional != Some(true)) {
                    refs.insert(Reference::Secret(s.name.clone()));
                }
                if let Some(m) = e.config_map_key_ref.as_ref().filter(|m| m.optional != Some(true)) {
                    refs.insert(Reference::ConfigMap(m.name.clone()));
                }
            }
            for e in c.env_from.iter().flatten() {
                if let Some(s) = e.secret_ref.as_ref().filter(|s| s.optional != Some(true)) {
                    refs.insert(Reference::Secret(s.name.clone()));
                }
                if let Some(m) = e.config_map_ref.as_ref().filter(|m| m.optional != Some(true)) {
                    refs.insert(Reference::ConfigMap(m.name.clone()));
                }
            }
        }
    }
    refs.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::ECSDeploymentSpec;
    use serde_json::json;

    fn owner() -> ECSDeployment {
        let mut o = ECSDeployment::new("web", ECSDeploymentSpec::default());
        o.metadata.namespace = Some("ns".into());
        o.metadata.uid = Some("uid-1".into());
        o
    }

    fn deployment() -> Object {
        let mut d = Deployment {
            metadata: ObjectMeta {
                name: Some("web".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        d.spec.template.spec = Some(PodSpec::default());
        Object::Deployment(Box::new(d))
    }

    #[test]
    fn desired_children_carry_a_controller_owner_reference_and_a_hash() {
        let d = desired(&[deployment()], &owner());
        assert_eq!(d[0].id.to_string(), "Deployment/web");
        let refs = &d[0].value["metadata"]["ownerReferences"];
        assert_eq!(refs[0]["uid"], "uid-1");
        assert_eq!(refs[0]["controller"], true);
        assert_eq!(refs[0]["blockOwnerDeletion"], true);
        assert_eq!(refs[0]["kind"], "ECSDeployment");
        assert_eq!(d[0].value["metadata"]["namespace"], "ns");
        assert_eq!(d[0].value["apiVersion"], "apps/v1");
        assert!(d[0].value["metadata"]["annotations"][HASH_ANNOTATION].is_string());
    }

    #[test]
    fn rbac_names_of_every_kind_are_its_api_resource() {
        for kind in ChildKind::ALL {
            let ar = kind.api_resource();
            assert_eq!(kind.group_resource(), (ar.group.as_str(), ar.plural.as_str()), "{kind:?}");
            assert_eq!(kind.name(), ar.kind);
        }
    }

    #[test]
    fn the_service_account_is_applied_before_the_workload() {
        let sa = Object::ServiceAccount(Box::new(ServiceAccount {
            metadata: ObjectMeta {
                name: Some("web".into()),
                ..Default::default()
            },
            ..Default::default()
        }));
        let d = desired(&[deployment(), sa], &owner());
        let order: Vec<String> = in_apply_order(&d).iter().map(|d| d.id.to_string()).collect();
        assert_eq!(order, ["ServiceAccount/web", "Deployment/web"]);
    }

    #[test]
    fn the_hash_changes_with_the_desired_state() {
        let a = desired(&[deployment()], &owner());
        let mut other = deployment();
        if let Object::Deployment(d) = &mut other {
            d.spec.replicas = Some(3);
        }
        let b = desired(&[other], &owner());
        assert_ne!(a[0].value["metadata"]["annotations"], b[0].value["metadata"]["annotations"]);
        assert!(needs_apply(&b[0].value, &a[0].value));
    }

    #[test]
    fn ownership_is_the_controller_reference_uid() {
        let mut meta = ObjectMeta::default();
        assert_eq!(ownership(None, "uid-1"), Ownership::Absent);
        assert!(matches!(ownership(Some(&meta), "uid-1"), Ownership::Foreign(_)));
        meta.owner_references = owner_reference(&owner()).map(|r| vec![r]);
        assert_eq!(ownership(Some(&meta), "uid-1"), Ownership::Ours);
        assert!(matches!(ownership(Some(&meta), "uid-2"), Ownership::Foreign(m) if m.contains("ECSDeployment web")));
        // A non-controller reference does not make it ours.
        meta.owner_references.as_mut().unwrap()[0].controller = Some(false);
        assert!(matches!(ownership(Some(&meta), "uid-1"), Ownership::Foreign(_)));
    }

    #[test]
    fn live_objects_with_server_defaults_need_no_apply() {
        let desired = json!({"metadata": {"annotations": {HASH_ANNOTATION: "1"}, "labels": {"a": "b"}},
                             "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "c", "env": []}]}}}});
        let live = json!({"metadata": {"annotations": {HASH_ANNOTATION: "1", "x": "y"}, "labels": {"a": "b"}, "uid": "u"},
                          "spec": {"replicas": 2, "revisionHistoryLimit": 10,
                                   "template": {"spec": {"containers": [{"name": "c", "imagePullPolicy": "Always"}]}}}});
        assert!(!needs_apply(&desired, &live));
    }

    #[test]
    fn drift_and_a_changed_hash_need_an_apply() {
        let desired = json!({"metadata": {"annotations": {HASH_ANNOTATION: "1"}}, "spec": {"replicas": 2}});
        let scaled = json!({"metadata": {"annotations": {HASH_ANNOTATION: "1"}}, "spec": {"replicas": 5}});
        assert!(needs_apply(&desired, &scaled));
        let old = json!({"metadata": {"annotations": {HASH_ANNOTATION: "0"}}, "spec": {"replicas": 2}});
        assert!(needs_apply(&desired, &old));
        let no_annotation = json!({"spec": {"replicas": 2}});
        assert!(needs_apply(&desired, &no_annotation));
        // A list that lost an item.
        assert!(!is_subset(&json!({"l": [1, 2]}), &json!({"l": [1]})));
    }

    #[test]
    fn stale_candidates_are_the_other_kinds_and_previous_children() {
        let d = desired(&[deployment()], &owner());
        let stale: Vec<String> = stale_candidates(&d, "web", &["Service/old".into(), "Deployment/web".into(), "junk".into()])
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            stale,
            [
                "DaemonSet/web",
                "Service/old",
                "Service/web",
                "ServiceAccount/web",
                "HorizontalPodAutoscaler/web"
            ]
        );
    }

    #[test]
    fn pod_references_find_required_secrets_and_config_maps() {
        let d = Desired {
            replicas_from_autoscaler: false,
            id: ChildId {
                kind: ChildKind::Deployment,
                name: "web".into(),
            },
            value: json!({"spec": {"template": {"spec": {
                "imagePullSecrets": [{"name": "regcred"}],
                "containers": [{"name": "c", "env": [
                    {"name": "A", "valueFrom": {"secretKeyRef": {"name": "web-secrets", "key": "A"}}},
                    {"name": "B", "valueFrom": {"secretKeyRef": {"name": "maybe", "key": "B", "optional": true}}},
                    {"name": "C", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "C"}}}
                ]}]
            }}}}),
        };
        assert_eq!(
            pod_references(&[d]),
            [
                Reference::Secret("regcred".into()),
                Reference::Secret("web-secrets".into()),
                Reference::ConfigMap("cfg".into())
            ]
        );
    }
}
