//! `spec.Scaling` (Application Auto Scaling of the ECS service) -> an
//! `autoscaling/v2` HorizontalPodAutoscaler of the Deployment:
//!
//! - `MinCapacity` / `MaxCapacity` -> `minReplicas` / `maxReplicas`;
//! - target tracking on `ECSServiceAverageCPUUtilization` /
//!   `ECSServiceAverageMemoryUtilization` -> a Resource metric with that
//!   average utilization. Several policies are several metrics: the HPA
//!   scales out when any asks and in only when all allow, as ECS does;
//! - `ScaleOutCooldown` / `ScaleInCooldown` -> the scale-up / scale-down
//!   stabilization windows (ECS's default cooldown is 300 s each way);
//!   `DisableScaleIn` -> scale-down `selectPolicy: Disabled`;
//! - `ALBRequestCountPerTarget`, customized metrics, step scaling,
//!   predictive scaling, scheduled actions and a suspended target -> a
//!   warning naming what is not carried over.
//!
//! With an HPA, `desiredCount` is the Deployment's initial count only: the
//! controller stops applying it (`controller::children::Desired`).

use super::{int32, Ctx, Object};
use crate::at;
use crate::diag::Code;
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HPAScalingRules, HorizontalPodAutoscaler, HorizontalPodAutoscalerBehavior, HorizontalPodAutoscalerSpec,
    MetricSpec, MetricTarget, ResourceMetricSource,
};

/// Application Auto Scaling's default cooldown for ECS services, both ways.
pub const DEFAULT_COOLDOWN_SECONDS: i64 = 300;

pub fn build(ctx: &mut Ctx) -> Option<Object> {
    let target = ctx.scalable_target?;
    if ctx.service.is_some_and(|s| s.model.is_daemon()) {
        ctx.warn(
            Code::NotCarriedOver,
            target.located.path.to_string(),
            "a DAEMON service runs one task per node and is not scaled: spec.Scaling is not carried over",
        );
        return None;
    }
    let m = &target.model;
    let mut min = m.min_capacity.unwrap_or(1);
    if min < 1 {
        ctx.warn(
            Code::NotCarriedOver,
            at!(target, "MinCapacity"),
            format!("a HorizontalPodAutoscaler keeps at least 1 replica (scaling to {min} needs the HPAScaleToZero feature gate): minReplicas is 1"),
        );
        min = 1;
    }
    let max = m.max_capacity.unwrap_or(min).max(min);
    if !m.scheduled_actions.is_empty() {
        ctx.warn(
            Code::NotCarriedOver,
            at!(target, "ScheduledActions"),
            "scheduled scaling has no HorizontalPodAutoscaler equivalent: schedule `kubectl patch hpa` (e.g. from a CronJob), or use KEDA's cron scaler",
        );
    }
    let suspended = m
        .suspended_state
        .as_ref()
        .and_then(serde_json::Value::as_object)
        .is_some_and(|s| s.values().any(|v| v == true));
    if suspended {
        ctx.warn(
            Code::NotCarriedOver,
            at!(target, "SuspendedState"),
            "a suspended scalable target is not carried over: the HorizontalPodAutoscaler scales",
        );
    }

    let mut metrics = Vec::new();
    let (mut scale_out, mut scale_in, mut disable_in) = (Vec::new(), Vec::new(), Vec::new());
    let policies = ctx.scaling_policies;
    for p in policies {
        let name = p.model.policy_name.clone().unwrap_or_default();
        let Some(tt) = p.model.target_tracking_scaling_policy_configuration.as_ref() else {
            let kind = p.model.policy_type.as_deref().unwrap_or("this");
            ctx.warn(
                Code::NotCarriedOver,
                p.located.path.to_string(),
                format!(
                    "{kind} policy \"{name}\" is not carried over: the HorizontalPodAutoscaler tracks targets (CPU or memory utilization)"
                ),
            );
            continue;
        };
        let metric = tt
            .predefined_metric_specification
            .as_ref()
            .and_then(|s| s.predefined_metric_type.as_deref());
        let resource = match metric {
            Some("ECSServiceAverageCPUUtilization") => "cpu",
            Some("ECSServiceAverageMemoryUtilization") => "memory",
            Some(other) => {
                ctx.warn(
                    Code::NotCarriedOver,
                    at!(p, "TargetTrackingScalingPolicyConfiguration", "PredefinedMetricSpecification", "PredefinedMetricType"),
                    format!("policy \"{name}\" tracks {other}, which needs the load balancer's metrics: not carried over (an HPA on an external metric, e.g. with KEDA's CloudWatch scaler, can track it)"),
                );
                continue;
            }
            None => {
                ctx.warn(
                    Code::NotCarriedOver,
                    at!(p, "TargetTrackingScalingPolicyConfiguration", "CustomizedMetricSpecification"),
                    format!("policy \"{name}\" tracks a CloudWatch metric: not carried over (an HPA on an external metric can track it)"),
                );
                continue;
            }
        };
        let target_value = tt.target_value.unwrap_or(0.0);
        metrics.push(MetricSpec {
            type_: "Resource".into(),
            resource: Some(ResourceMetricSource {
                name: resource.into(),
                target: MetricTarget {
                    type_: "Utilization".into(),
                    average_utilization: Some(int32(target_value.round() as i64).max(1)),
                    ..Default::default()
                },
            }),
            ..Default::default()
        });
        scale_out.push(tt.scale_out_cooldown.unwrap_or(DEFAULT_COOLDOWN_SECONDS));
        scale_in.push(tt.scale_in_cooldown.unwrap_or(DEFAULT_COOLDOWN_SECONDS));
        disable_in.push(tt.disable_scale_in == Some(true));
    }
    if metrics.is_empty() {
        ctx.warn(
            Code::NotCarriedOver,
            target.located.path.to_string(),
            "no policy tracks CPU or memory utilization, so no HorizontalPodAutoscaler is made: desiredCount stays the replica count",
        );
        return None;
    }
    // One window per direction for all metrics: the longest, as the most cautious.
    let window = |v: &[i64]| v.iter().copied().max().map(|s| int32(s.clamp(0, 3600)));
    // Scale-in is off only if every policy disables it (ECS: any policy may scale in).
    let no_scale_in = disable_in.iter().all(|d| *d);
    let name = ctx.meta.name.clone();
    let hpa = HorizontalPodAutoscaler {
        metadata: ctx.object_meta(&name),
        spec: HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".into()),
                kind: "Deployment".into(),
                name,
            },
            min_replicas: Some(int32(min)),
            max_replicas: int32(max),
            metrics: Some(metrics),
            behavior: Some(HorizontalPodAutoscalerBehavior {
                scale_up: Some(HPAScalingRules {
                    stabilization_window_seconds: window(&scale_out),
                    ..Default::default()
                }),
                scale_down: Some(HPAScalingRules {
                    stabilization_window_seconds: window(&scale_in),
                    select_policy: no_scale_in.then(|| "Disabled".into()),
                    ..Default::default()
                }),
            }),
        },
        ..Default::default()
    };
    Some(Object::HorizontalPodAutoscaler(Box::new(hpa)))
}
