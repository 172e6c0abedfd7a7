//! The children an ECSDeployment should have, and how they compare with what
//! is in the cluster: ownership (never touch what another owner controls),
//! whether an apply would change anything, and which children are stale.
//! Pure: the reconciler does the I/O.

use crate::crd::ECSDeployment;
use crate::translate::Object;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{PodSpec, Service, ServiceAccount};
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
}

impl ChildKind {
    pub const ALL: [ChildKind; 4] = [
        ChildKind::Deployment,
        ChildKind::DaemonSet,
        ChildKind::Service,
        ChildKind::ServiceAccount,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ChildKind::Deployment => "Deployment",
            ChildKind::DaemonSet => "DaemonSet",
            ChildKind::Service => "Service",
            ChildKind::ServiceAccount => "ServiceAccount",
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
        }
    }

    pub fn is_workload(self) -> bool {
        matches!(self, ChildKind::Deployment | ChildKind::DaemonSet)
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
}

fn kind_of(object: &Object) -> ChildKind {
    match object {
        Object::Deployment(_) => ChildKind::Deployment,
        Object::DaemonSet(_) => ChildKind::DaemonSet,
        Object::Service(_) => ChildKind::Service,
        Object::ServiceAccount(_) => ChildKind::ServiceAccount,
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
    objects
        .iter()
        .map(|o| {
            let mut o = o.clone();
            let meta = o.metadata_mut();
            meta.namespace = owner.metadata.namespace.clone();
            meta.owner_references = owner_ref.clone().map(|r| vec![r]);
            let mut value = serde_json::to_value(&o).unwrap_or(Value::Null);
            let hash = format!("{:016x}", fnv1a(value.to_string().as_bytes()));
            value["metadata"]["annotations"][HASH_ANNOTATION] = Value::String(hash);
            Desired {
                id: ChildId {
                    kind: kind_of(&o),
                    name: o.metadata().name.clone().unwrap_or_default(),
                },
                value,
            }
        })
        .collect()
}

/// The order children are applied in: the ServiceAccount before the
/// workload whose pods run as it, so a ServiceAccount that turns out to be
/// someone else's stops the workload from being applied at all.
pub fn in_apply_order(desired: &[Desired]) -> Vec<&Desired> {
    let rank = |d: &Desired| match d.id.kind {
        ChildKind::ServiceAccount => 0,
        ChildKind::Service => 1,
        ChildKind::Deployment | ChildKind::DaemonSet => 2,
    };
    let mut ordered: Vec<&Desired> = desired.iter().collect();
    ordered.sort_by_key(|d| rank(d));
    ordered
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
    let mut candidates: BTreeSet<ChildId> = ChildKind::ALL
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
        assert_eq!(stale, ["DaemonSet/web", "Service/old", "Service/web", "ServiceAccount/web"]);
    }

    #[test]
    fn pod_references_find_required_secrets_and_config_maps() {
        let d = Desired {
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
