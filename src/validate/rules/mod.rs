//! Semantic rules AWS documents (cited from the model's documentation strings
//! in each module), plus what the Kubernetes translation needs.

mod containers;
mod fargate;
mod kubernetes;
pub use kubernetes::k8s_container_name;
pub use task::is_ecs_name;
mod limits;
mod network;
mod references;
mod scaling;
mod service;
mod task;
mod windows;

use super::Definition;
use crate::diag::Report;
use crate::ecs::model::{Service, TaskDefinition};
use crate::ecs::scaling::{ScalableTarget, ScalingPolicy};

pub type Task<'x, 'a> = &'x Definition<'a, TaskDefinition>;
pub type Svc<'x, 'a> = &'x Definition<'a, Service>;

/// Whether every container name the user wrote is known (not an unresolved
/// intrinsic or placeholder); reference checks are only sound then.
pub fn container_names_known(t: Task) -> bool {
    t.model
        .container_definitions
        .iter()
        .enumerate()
        .all(|(i, c)| c.name.is_some() || !crate::written!(t, "containerDefinitions", i, "name"))
}

pub fn volume_names_known(t: Task) -> bool {
    t.model
        .volumes
        .iter()
        .enumerate()
        .all(|(i, v)| v.name.is_some() || !crate::written!(t, "volumes", i, "name"))
}

/// The family and service name an ECSDeployment implies are its own name,
/// which Kubernetes lets hold dots ECS names cannot: say so, where the user
/// can act (`metadata.name`), not at a field they never wrote.
pub fn check_implied_names(
    name: Option<&str>,
    task: Option<&Definition<'_, TaskDefinition>>,
    service: Option<&Definition<'_, Service>>,
    report: &mut Report,
) {
    let Some(name) = name.filter(|n| !is_ecs_name(n)) else { return };
    let mut unusable = |what: &str, field: String| {
        report
            .error(
                crate::diag::Code::Invalid,
                "metadata.name",
                format!("the {what} defaults to the object's name, {name:?}, which ECS cannot hold (letters, numbers, `_` and `-` only): set {field}, or rename the object"),
            )
            .expected(format!("a name ECS takes, or {field}"))
            .found(format!("\"{name}\""));
    };
    if let Some(t) = task.filter(|t| t.model.family.is_none() && !crate::written!(t, "family")) {
        unusable("task family", crate::at!(t, "family"));
    }
    if let Some(s) = service.filter(|s| s.model.service_name.is_none() && !crate::written!(s, "serviceName")) {
        unusable("service name", crate::at!(s, "serviceName"));
    }
}

pub fn check_all(task: Option<&Definition<'_, TaskDefinition>>, service: Option<&Definition<'_, Service>>, report: &mut Report) {
    if let Some(t) = task {
        task::check(t, report);
        containers::check(t, report);
        references::check(t, report);
        network::check(t, report);
        if t.model.is_fargate() {
            fargate::check(t, report);
        }
        if t.model.is_windows() {
            windows::check(t, report);
        }
        kubernetes::check(t, report);
        limits::check_task(t, report);
    }
    if let Some(s) = service {
        service::check(s, task, report);
        limits::check_service(s, report);
    }
}

/// `spec.Scaling`: the target is the service, capacities and policy types agree.
/// `target_id` is the scalable target's logical ID (CloudFormation form).
pub fn check_scaling(
    target: Option<&Definition<'_, ScalableTarget>>,
    target_id: Option<&str>,
    policies: &[Definition<'_, ScalingPolicy>],
    report: &mut Report,
) {
    scaling::check(target, target_id, policies, report);
}
