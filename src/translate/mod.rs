//! ECS -> Kubernetes, keeping ECS semantics (the mapping table is in
//! README.md). One pure function serves `ecskube convert` and the
//! controller: a validated task + service in, Kubernetes objects and
//! warnings (for every field with no faithful equivalent) out.

mod container;
mod links;
mod placement;
mod pod;
mod probes;
pub mod resources;
mod service;
mod unsupported;
mod volumes;
mod workload;

use crate::diag::{Code, Report};
use crate::ecs::model::{Service as EcsService, TaskDefinition};
use crate::validate::{Analysis, Definition};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{Service, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
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
/// (from the admin policy: `Policy::translate_options`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Options {
    /// `spec.loadBalancerSourceRanges` of every LoadBalancer Service.
    pub load_balancer_source_ranges: Vec<String>,
}

pub use links::link_variable_count;
pub use service::service_type;

/// One Kubernetes object the controller writes.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(untagged)]
pub enum Object {
    Deployment(Box<Deployment>),
    DaemonSet(Box<DaemonSet>),
    Service(Box<Service>),
    ServiceAccount(Box<ServiceAccount>),
}

impl Object {
    pub fn kind(&self) -> &'static str {
        match self {
            Object::Deployment(_) => "Deployment",
            Object::DaemonSet(_) => "DaemonSet",
            Object::Service(_) => "Service",
            Object::ServiceAccount(_) => "ServiceAccount",
        }
    }

    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Object::Deployment(o) => &o.metadata,
            Object::DaemonSet(o) => &o.metadata,
            Object::Service(o) => &o.metadata,
            Object::ServiceAccount(o) => &o.metadata,
        }
    }

    pub fn metadata_mut(&mut self) -> &mut ObjectMeta {
        match self {
            Object::Deployment(o) => &mut o.metadata,
            Object::DaemonSet(o) => &mut o.metadata,
            Object::Service(o) => &mut o.metadata,
            Object::ServiceAccount(o) => &mut o.metadata,
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
    pub meta: &'x Meta,
    pub options: &'x Options,
    pub report: Report,
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
        meta,
        options,
        report: Report::default(),
    };
    unsupported::warn_all(&mut ctx);
    let mut objects = Vec::new();
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
    if let Some(svc) = service::build(&mut ctx) {
        objects.push(Object::Service(Box::new(svc)));
    }
    if let Some(sa) = service_account {
        objects.push(Object::ServiceAccount(Box::new(sa)));
    }
    Ok(Converted {
        objects,
        report: ctx.report,
    })
}
