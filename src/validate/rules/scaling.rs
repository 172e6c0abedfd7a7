//! `spec.Scaling`: what Application Auto Scaling documents for a scalable
//! target and its policies (application-autoscaling-service-2.json), and that
//! the target is this ECSDeployment's own ECS service, the only thing ecskube scales.

use crate::diag::{show, Code, Report};
use crate::ecs::scaling::{ScalableTarget, ScalingPolicy};
use crate::validate::Definition;
use crate::{at, written};
use serde_json::Value;

type Target<'x, 'a> = &'x Definition<'a, ScalableTarget>;
type Policy<'x, 'a> = &'x Definition<'a, ScalingPolicy>;

/// The only target an ECSDeployment has: its service's desired count.
const NAMESPACE: &str = "ecs";
const DIMENSION: &str = "ecs:service:DesiredCount";

/// PredefinedMetricType values for an ECS service ("ECSServiceAverageCPUUtilization,
/// ECSServiceAverageMemoryUtilization, ALBRequestCountPerTarget" in the
/// Application Auto Scaling User Guide's list by service).
const ECS_METRICS: &[&str] = &[
    "ECSServiceAverageCPUUtilization",
    "ECSServiceAverageMemoryUtilization",
    "ALBRequestCountPerTarget",
];
const ALB_METRIC: &str = "ALBRequestCountPerTarget";

/// PolicyType to the configuration it takes.
const CONFIGURATIONS: &[(&str, &str)] = &[
    ("TargetTrackingScaling", "TargetTrackingScalingPolicyConfiguration"),
    ("StepScaling", "StepScalingPolicyConfiguration"),
    ("PredictiveScaling", "PredictiveScalingPolicyConfiguration"),
];

pub fn check(target: Option<Target>, target_id: Option<&str>, policies: &[Definition<'_, ScalingPolicy>], report: &mut Report) {
    if let Some(t) = target {
        check_target(t, report);
    }
    for (i, p) in policies.iter().enumerate() {
        check_policy(p, report);
        check_target_ref(p, target_id, report);
        // PutScalingPolicy with a name already used replaces that policy.
        if let Some(name) = &p.model.policy_name {
            if policies[..i].iter().any(|q| q.model.policy_name.as_ref() == Some(name)) {
                report
                    .error(
                        Code::Duplicate,
                        at!(p, "PolicyName"),
                        format!("another policy is named \"{name}\": AWS would replace it with this one"),
                    )
                    .expected("a PolicyName of its own")
                    .found(format!("\"{name}\""));
            }
        }
    }
}

/// ServiceNamespace and ScalableDimension, when given, must name the ECS service.
fn check_ecs_service<T>(d: &Definition<'_, T>, report: &mut Report) {
    for (member, only) in [("ServiceNamespace", NAMESPACE), ("ScalableDimension", DIMENSION)] {
        let Some(value) = d.canonical.get(member) else { continue };
        if value.as_str() != Some(only) {
            report
                .error(
                    Code::NotSupported,
                    at!(d, member),
                    "ecskube scales only the ECSDeployment's own ECS service",
                )
                .expected(format!("\"{only}\" (or nothing: it is implied)"))
                .found(show(value));
        }
    }
}

fn check_target(t: Target, report: &mut Report) {
    check_ecs_service(t, report);
    // "This property is required when registering a new scalable target": an
    // ECSDeployment's target always is one.
    for member in ["MinCapacity", "MaxCapacity"] {
        if !written!(t, member) {
            report
                .error(
                    Code::Required,
                    at!(t, member),
                    format!("required field `{member}` is missing (AWS requires it to register a scalable target)"),
                )
                .expected(format!("`{member}`"));
        }
    }
    if let (Some(min), Some(max)) = (t.model.min_capacity, t.model.max_capacity) {
        if min > max {
            report
                .error(Code::Invalid, at!(t, "MinCapacity"), "MinCapacity is above MaxCapacity")
                .expected(format!("at most MaxCapacity ({max})"))
                .found(min.to_string());
        }
    }
}

fn check_policy(p: Policy, report: &mut Report) {
    check_ecs_service(p, report);
    // "This parameter is required if you are creating a scaling policy."
    let Some(policy_type) = p.model.policy_type.as_deref() else {
        if !written!(p, "PolicyType") {
            report
                .error(
                    Code::Required,
                    at!(p, "PolicyType"),
                    "required field `PolicyType` is missing (AWS requires it to create a scaling policy)",
                )
                .expected(format!(
                    "one of {}",
                    CONFIGURATIONS
                        .iter()
                        .map(|(t, _)| format!("\"{t}\""))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
        }
        return;
    };
    // "This parameter is required if you are creating a policy and the policy type is ...".
    for &(kind, configuration) in CONFIGURATIONS {
        let given = written!(p, configuration);
        if kind == policy_type && !given {
            report
                .error(
                    Code::Required,
                    at!(p, configuration),
                    format!("a {kind} policy needs `{configuration}`"),
                )
                .expected(format!("`{configuration}`"));
        } else if kind != policy_type && given {
            let own = CONFIGURATIONS.iter().find(|(k, _)| *k == policy_type).map_or("", |(_, c)| c);
            report
                .error(
                    Code::Invalid,
                    at!(p, configuration),
                    format!("PolicyType is {policy_type}, whose configuration is `{own}`: this one belongs to a {kind} policy"),
                )
                .expected(format!("`{own}` (or PolicyType {kind})"))
                .found(format!("`{configuration}`"));
        }
    }
    if policy_type == "TargetTrackingScaling" && written!(p, "TargetTrackingScalingPolicyConfiguration") {
        check_target_tracking(p, report);
    }
}

fn check_target_tracking(p: Policy, report: &mut Report) {
    const TT: &str = "TargetTrackingScalingPolicyConfiguration";
    let predefined = written!(p, TT, "PredefinedMetricSpecification");
    let customized = written!(p, TT, "CustomizedMetricSpecification");
    match (predefined, customized) {
        (false, false) => {
            report
                .error(
                    Code::Required,
                    at!(p, TT, "PredefinedMetricSpecification"),
                    "a target tracking policy tracks a metric: give a predefined or a customized one",
                )
                .expected("PredefinedMetricSpecification or CustomizedMetricSpecification");
        }
        (true, true) => {
            report
                .error(
                    Code::Invalid,
                    at!(p, TT, "CustomizedMetricSpecification"),
                    "a target tracking policy tracks one metric: a predefined or a customized one, not both",
                )
                .expected("PredefinedMetricSpecification or CustomizedMetricSpecification")
                .found("both");
        }
        _ => {}
    }
    let Some(metric) = p
        .model
        .target_tracking_scaling_policy_configuration
        .as_ref()
        .and_then(|c| c.predefined_metric_specification.as_ref())
    else {
        return;
    };
    let Some(kind) = metric.predefined_metric_type.as_deref() else {
        return;
    };
    let label = written!(p, TT, "PredefinedMetricSpecification", "ResourceLabel");
    if !ECS_METRICS.contains(&kind) {
        report
            .error(
                Code::NotSupported,
                at!(p, TT, "PredefinedMetricSpecification", "PredefinedMetricType"),
                "not a metric of an ECS service, the only thing ecskube scales",
            )
            .expected(format!(
                "one of {}",
                ECS_METRICS.iter().map(|m| format!("\"{m}\"")).collect::<Vec<_>>().join(", ")
            ))
            .found(format!("\"{kind}\""));
    } else if kind == ALB_METRIC && !label {
        // "You create the resource label by appending the final portion of the load
        // balancer ARN and the final portion of the target group ARN ...".
        report
            .error(
                Code::Required,
                at!(p, TT, "PredefinedMetricSpecification", "ResourceLabel"),
                "ALBRequestCountPerTarget counts the requests of one target group: name it",
            )
            .expected("app/<load-balancer>/<id>/targetgroup/<target-group>/<id>");
    } else if kind != ALB_METRIC && label {
        // "You can't specify a resource label unless the metric type is ALBRequestCountPerTarget".
        report
            .error(
                Code::Invalid,
                at!(p, TT, "PredefinedMetricSpecification", "ResourceLabel"),
                format!("{kind} takes no resource label (only ALBRequestCountPerTarget does)"),
            )
            .expected("no ResourceLabel")
            .found("a ResourceLabel");
    }
}

/// In the CloudFormation form, a policy's `ScalingTargetId: {Ref: X}` names
/// the scalable target by its logical ID: it must be the one in Scaling.
fn check_target_ref(p: Policy, target_id: Option<&str>, report: &mut Report) {
    let Some(target_id) = target_id else { return };
    let referenced = p
        .located
        .body
        .get("ScalingTargetId")
        .and_then(|v| v.get("Ref"))
        .and_then(Value::as_str);
    if let Some(name) = referenced.filter(|n| *n != target_id) {
        report
            .error(
                Code::NotFound,
                format!("{}.Ref", at!(p, "ScalingTargetId")),
                format!("Scaling has no scalable target `{name}`; its scalable target is `{target_id}`"),
            )
            .expected(format!("\"{target_id}\""))
            .found(format!("\"{name}\""));
    }
}

#[cfg(test)]
mod tests;
