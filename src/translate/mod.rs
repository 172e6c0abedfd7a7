//! ECS -> Kubernetes, keeping ECS semantics (the mapping table is in
//! README.md). One pure function serves `ecskube convert` and the
//! controller: a validated task + service in, Kubernetes objects and
//! warnings (for every field with no faithful equivalent) out.

mod autoscaling;
mod container;
mod efs;
mod external_secrets;
mod links;
mod placement;
mod pod;
mod probes;
pub mod resources;
mod service;
mod target_groups;
mod unsupported;
mod volumes;
mod workload;

use crate::diag::{Code, Report};
use crate::ecs::model::{Service as EcsService, TaskDefinition};
use crate::ecs::scaling::{ScalableTarget, ScalingPolicy};
use crate::validate::{Analysis, Definition};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Service, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::DynamicObject;
use serde::Serialize;
use std::collections::BTreeMap;

pub use crate::validate::rules::k8s_container_name;

/// The label every child carries and selects on; it never changes for the object's life.
pub const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGER: &str = "ecskube";
/// IAM roles for service accounts (EKS): the pod's AWS role.
pub const ROLE_ARN_ANNOTATION: &str = "eks.amazonaws.com/role-arn";

/// The ECSDeployment's identity: children are named and labelled after it.
#[derive(Debug, Clone, Default)]
pub struct Meta {
    pub name: String,
    pub namespace: Option<String>,
    pub labels: BTreeMap<String, String>,
}

/// What the cluster adds to every translation, beyond the ECS definitions
/// (from the admin policy: `Policy::translate_options`, and from what the
/// cluster runs: [`Integrations`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Options {
    /// `spec.loadBalancerSourceRanges` of every LoadBalancer Service.
    pub load_balancer_source_ranges: Vec<String>,
    pub integrations: Integrations,
}

/// The projects the target cluster runs that AWS-backed ECS fields map to.
/// `ecskube serve` finds them by API discovery (re-checked periodically);
/// `ecskube convert` is told by flags. Absent: ECS's behaviour is described
/// in a warning, and the user creates the object by hand.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Integrations {
    /// External Secrets Operator (ExternalSecret, external-secrets.io), with
    /// the stores the cluster admin named.
    pub external_secrets: Option<SecretStores>,
    /// AWS Load Balancer Controller (TargetGroupBinding, elbv2.k8s.aws).
    pub target_group_binding: Option<TargetGroupBindings>,
    /// The EFS CSI driver (CSIDriver `efs.csi.aws.com`).
    pub efs_csi: bool,
}

/// The External Secrets Operator stores that read AWS: one per provider,
/// since a store has one provider and ECS mixes both in one task.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SecretStores {
    pub secrets_manager: Option<StoreRef>,
    pub parameter_store: Option<StoreRef>,
}

/// `secretStoreRef` of an ExternalSecret.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreRef {
    pub name: String,
    /// `ClusterSecretStore` or `SecretStore`.
    pub kind: String,
}

impl StoreRef {
    /// `kind/name` or `name` (a ClusterSecretStore), as the flags take it.
    pub fn parse(s: &str) -> Result<StoreRef, String> {
        let (kind, name) = match s.split_once('/') {
            Some((kind, name)) => (kind, name),
            None => ("ClusterSecretStore", s),
        };
        if !matches!(kind, "ClusterSecretStore" | "SecretStore") {
            return Err(format!("store kind {kind:?} is not ClusterSecretStore or SecretStore"));
        }
        if name.is_empty()
            || name.len() > 253
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        {
            return Err(format!("store name {name:?} is not a Kubernetes object name"));
        }
        Ok(StoreRef {
            name: name.to_string(),
            kind: kind.to_string(),
        })
    }
}

/// How TargetGroupBindings are written.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TargetGroupBindings {
    /// `spec.multiClusterTargetGroup`: the AWS Load Balancer Controller then
    /// deregisters only the targets it registered, so ECS tasks (or another
    /// cluster) can stay in the same target group during a migration.
    pub multi_cluster: bool,
}

pub use efs::{DRIVER as EFS_DRIVER, OWNER_NAMESPACE_LABEL, OWNER_UID_LABEL};
pub use external_secrets::api_resource as external_secrets_api_resource;
pub use links::link_variable_count;
pub use service::service_type;
pub use target_groups::api_resource as target_group_binding_api_resource;

/// One Kubernetes object the controller writes.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(untagged)]
pub enum Object {
    Deployment(Box<Deployment>),
    DaemonSet(Box<DaemonSet>),
    Service(Box<Service>),
    ServiceAccount(Box<ServiceAccount>),
    PersistentVolumeClaim(Box<PersistentVolumeClaim>),
    /// Cluster-scoped: labelled with its ECSDeployment instead of owned.
    PersistentVolume(Box<PersistentVolume>),
    HorizontalPodAutoscaler(Box<HorizontalPodAutoscaler>),
    /// external-secrets.io ExternalSecret.
    ExternalSecret(Box<DynamicObject>),
    /// elbv2.k8s.aws TargetGroupBinding.
    TargetGroupBinding(Box<DynamicObject>),
}

impl Object {
    pub fn kind(&self) -> &'static str {
        match self {
            Object::Deployment(_) => "Deployment",
            Object::DaemonSet(_) => "DaemonSet",
            Object::Service(_) => "Service",
            Object::ServiceAccount(_) => "ServiceAccount",
            Object::PersistentVolumeClaim(_) => "PersistentVolumeClaim",
            Object::PersistentVolume(_) => "PersistentVolume",
            Object::HorizontalPodAutoscaler(_) => "HorizontalPodAutoscaler",
            Object::ExternalSecret(_) => "ExternalSecret",
            Object::TargetGroupBinding(_) => "TargetGroupBinding",
        }
    }

    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Object::Deployment(o) => &o.metadata,
            Object::DaemonSet(o) => &o.metadata,
            Object::Service(o) => &o.metadata,
            Object::ServiceAccount(o) => &o.metadata,
            Object::PersistentVolumeClaim(o) => &o.metadata,
            Object::PersistentVolume(o) => &o.metadata,
            Object::HorizontalPodAutoscaler(o) => &o.metadata,
            Object::ExternalSecret(o) | Object::TargetGroupBinding(o) => &o.metadata,
        }
    }

    pub fn metadata_mut(&mut self) -> &mut ObjectMeta {
        match self {
            Object::Deployment(o) => &mut o.metadata,
            Object::DaemonSet(o) => &mut o.metadata,
            Object::Service(o) => &mut o.metadata,
            Object::ServiceAccount(o) => &mut o.metadata,
            Object::PersistentVolumeClaim(o) => &mut o.metadata,
            Object::PersistentVolume(o) => &mut o.metadata,
            Object::HorizontalPodAutoscaler(o) => &mut o.metadata,
            Object::ExternalSecret(o) | Object::TargetGroupBinding(o) => &mut o.metadata,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Converted {
    pub objects: Vec<Object>,
    /// Warnings only: what did not carry over and what happens instead.
    pub report: Report,
}

/// Translation state: the definitions, the object's identity, and warnings.
pub(crate) struct Ctx<'x, 'a> {
    pub task: &'x Definition<'a, TaskDefinition>,
    pub service: Option<&'x Definition<'a, EcsService>>,
    pub scalable_target: Option<&'x Definition<'a, ScalableTarget>>,
    pub scaling_policies: &'x [Definition<'a, ScalingPolicy>],
    pub meta: &'x Meta,
    pub options: &'x Options,
    pub report: Report,
    /// Objects beside the workload, the Service and the ServiceAccount
    /// (claims, volumes, ExternalSecrets, bindings), in the order made.
    pub extra: Vec<Object>,
    /// The task's `secrets` come from an ExternalSecret (no manual Secret).
    pub secrets_external: bool,
    /// The registry credentials come from an ExternalSecret.
    pub registry_external: bool,
}

impl Ctx<'_, '_> {
    pub fn warn(&mut self, code: Code, path: String, message: impl Into<String>) {
        self.report.warning(code, path, message);
    }

    /// Labels of every child: the ECSDeployment's own plus ecskube's.
    pub fn labels(&self) -> BTreeMap<String, String> {
        let mut labels = self.meta.labels.clone();
        labels.extend(selector(&self.meta.name));
        labels
    }

    pub fn object_meta(&self, name: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.to_string()),
            namespace: self.meta.namespace.clone(),
            labels: Some(self.labels()),
            ..Default::default()
        }
    }
}

/// An ECS integer as a Kubernetes int32. The engine refuses values beyond
/// 32 bits (AWS's own width), so this saturates only for a value it missed.
pub(crate) fn int32(v: i64) -> i32 {
    i32::try_from(v).unwrap_or(if v < 0 { i32::MIN } else { i32::MAX })
}

/// 32-bit FNV-1a: a short, stable (across Rust releases) suffix that keeps
/// shortened or cleaned names distinct.
pub(crate) fn fnv1a_32(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

/// The stable selector of an ECSDeployment's pods.
pub fn selector(name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (INSTANCE_LABEL.to_string(), name.to_string()),
        (MANAGED_BY_LABEL.to_string(), MANAGER.to_string()),
    ])
}

/// A DNS-1123 label from an ECS name (lowercase, `_` -> `-`, other characters dropped).
pub fn k8s_name(ecs: &str, fallback: &str) -> String {
    let mut s: String = ecs
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c == '_' || c == '.' { '-' } else { c })
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')
        .take(63)
        .collect();
    s = s.trim_matches('-').to_string();
    if s.is_empty() {
        fallback.to_string()
    } else {
        s
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("the ECS definitions have errors; validate them first")]
    Invalid(Report),
    #[error("there is no task definition to convert")]
    NoTask,
}

/// Translates a validated analysis. Errors in the analysis refuse the conversion.
pub fn convert(analysis: &Analysis<'_>, meta: &Meta) -> Result<Converted, ConvertError> {
    convert_with(analysis, meta, &Options::default())
}

/// [`convert`] with what the cluster adds (see [`Options`]).
pub fn convert_with(analysis: &Analysis<'_>, meta: &Meta, options: &Options) -> Result<Converted, ConvertError> {
    if analysis.report.has_errors() {
        return Err(ConvertError::Invalid(analysis.report.clone()));
    }
    let task = analysis.task.as_ref().ok_or(ConvertError::NoTask)?;
    let mut ctx = Ctx {
        task,
        service: analysis.service.as_ref(),
        scalable_target: analysis.scalable_target.as_ref(),
        scaling_policies: &analysis.scaling_policies,
        meta,
        options,
        report: Report::default(),
        extra: Vec::new(),
        secrets_external: false,
        registry_external: false,
    };
    unsupported::warn_all(&mut ctx);
    let mut objects = Vec::new();
    // Before the pods: their env and pull secrets say where values come from.
    let task_secrets = external_secrets::task_secrets(&mut ctx);
    ctx.secrets_external = task_secrets.is_some();
    let registry = external_secrets::registry_credentials(&mut ctx);
    ctx.registry_external = registry.is_some();
    let service_account = task.model.task_role_arn.clone().map(|arn| {
        let mut sa = ServiceAccount {
            metadata: ctx.object_meta(&meta.name),
            ..Default::default()
        };
        sa.metadata.annotations = Some(BTreeMap::from([(ROLE_ARN_ANNOTATION.to_string(), arn)]));
        sa
    });
    let pod = pod::template(&mut ctx, service_account.is_some());
    objects.push(workload::build(&mut ctx, pod));
    objects.extend(autoscaling::build(&mut ctx));
    if let Some(svc) = service::build(&mut ctx) {
        target_groups::bind(&mut ctx, &svc);
        objects.push(Object::Service(Box::new(svc)));
    }
    if let Some(sa) = service_account {
        objects.push(Object::ServiceAccount(Box::new(sa)));
    }
    objects.extend(task_secrets.map(|o| Object::ExternalSecret(Box::new(o))));
    objects.extend(registry.map(|o| Object::ExternalSecret(Box::new(o))));
    objects.append(&mut ctx.extra);
    Ok(Converted {
        objects,
        report: ctx.report,
    })
}
