//! The Deployment (REPLICA, or no service) or DaemonSet (DAEMON) that runs
//! the task. desiredCount -> replicas; maximumPercent / minimumHealthyPercent
//! -> maxSurge / maxUnavailable; deploymentCircuitBreaker -> progressDeadlineSeconds.

use super::{int32, selector, Ctx, Object};
use crate::at;
use crate::diag::Code;
use k8s_openapi::api::apps::v1::{
    DaemonSet, DaemonSetSpec, DaemonSetUpdateStrategy, Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDaemonSet,
    RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// How long a rollout may make no progress before Kubernetes reports it failed,
/// standing in for ECS's circuit breaker.
pub const CIRCUIT_BREAKER_DEADLINE_SECONDS: i32 = 300;

pub fn build(ctx: &mut Ctx, template: PodTemplateSpec) -> Object {
    let name = ctx.meta.name.clone();
    let selector = LabelSelector {
        match_labels: Some(selector(&name)),
        ..Default::default()
    };
    let daemon = ctx.service.is_some_and(|s| s.model.is_daemon());
    let (surge, unavailable) = rolling(ctx, daemon);
    if daemon {
        return Object::DaemonSet(Box::new(DaemonSet {
            metadata: ctx.object_meta(&name),
            spec: DaemonSetSpec {
                selector,
                template,
                update_strategy: Some(DaemonSetUpdateStrategy {
                    type_: Some("RollingUpdate".into()),
                    rolling_update: Some(RollingUpdateDaemonSet {
                        max_surge: Some(surge),
                        max_unavailable: Some(unavailable),
                    }),
                }),
                ..Default::default()
            },
            ..Default::default()
        }));
    }
    let replicas = int32(ctx.service.and_then(|s| s.model.desired_count).unwrap_or(1));
    let breaker = ctx.service.and_then(|s| {
        let b = s.model.deployment_configuration.as_ref()?.deployment_circuit_breaker.as_ref()?;
        b.enable.filter(|e| *e).map(|_| (s, b.rollback == Some(true)))
    });
    if let Some((s, true)) = breaker {
        ctx.warn(
            Code::NotCarriedOver,
            at!(s, "deploymentConfiguration", "deploymentCircuitBreaker", "rollback"),
            "a stalled rollout is reported (progressDeadlineSeconds) but Kubernetes does not roll back by itself: use `kubectl rollout undo`",
        );
    }
    Object::Deployment(Box::new(Deployment {
        metadata: ctx.object_meta(&name),
        spec: DeploymentSpec {
            replicas: Some(replicas),
            selector,
            template,
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(surge),
                    max_unavailable: Some(unavailable),
                }),
            }),
            progress_deadline_seconds: breaker.map(|_| CIRCUIT_BREAKER_DEADLINE_SECONDS),
            ..Default::default()
        },
        ..Default::default()
    }))
}

/// The service's deployment percentages, with ECS's defaults (200/100 for
/// REPLICA, 100/0 for DAEMON).
fn percentages(ctx: &Ctx, daemon: bool) -> (i64, i64) {
    let (default_max, default_min) = if daemon { (100, 0) } else { (200, 100) };
    let dc = ctx.service.and_then(|s| s.model.deployment_configuration.as_ref());
    let max = dc.and_then(|d| d.maximum_percent).unwrap_or(default_max);
    let min = dc.and_then(|d| d.minimum_healthy_percent).unwrap_or(default_min);
    (max, min)
}

fn percent(p: i64) -> IntOrString {
    IntOrString::String(format!("{p}%"))
}

/// Deployments: maxSurge = maximumPercent - 100, maxUnavailable = 100 -
/// minimumHealthyPercent. Kubernetes refuses both at zero.
fn rolling(ctx: &mut Ctx, daemon: bool) -> (IntOrString, IntOrString) {
    if daemon {
        return daemon_rolling(ctx);
    }
    let (max, min) = percentages(ctx, false);
    let surge = (max - 100).max(0);
    let unavailable = (100 - min).clamp(0, 100);
    if surge == 0 && unavailable == 0 {
        if let Some(s) = ctx.service {
            ctx.warn(
                Code::NotCarriedOver,
                at!(s, "deploymentConfiguration"),
                format!("maximumPercent {max} with minimumHealthyPercent {min} leaves no room to roll out; Kubernetes needs one of maxSurge/maxUnavailable above zero, so maxSurge is 1 pod"),
            );
        }
        return (IntOrString::Int(1), IntOrString::Int(0));
    }
    (percent(surge), percent(unavailable))
}

/// DAEMON, as ECS rolls it: on each instance the old task stops before the
/// new one starts, keeping minimumHealthyPercent of them running
/// (maxUnavailable = 100 - minimumHealthyPercent). Only when that leaves no
/// room (minimumHealthyPercent 100) does the new task start first, as
/// maximumPercent above 100 allows (maxSurge, at most 100%). A DaemonSet
/// takes exactly one of the two.
fn daemon_rolling(ctx: &mut Ctx) -> (IntOrString, IntOrString) {
    let (max, min) = percentages(ctx, true);
    let unavailable = (100 - min).clamp(0, 100);
    let surge = (max - 100).clamp(0, 100);
    let Some(s) = ctx.service else {
        return (IntOrString::Int(0), percent(unavailable.max(1)));
    };
    if unavailable > 0 {
        if surge > 0 {
            ctx.warn(
                Code::NotCarriedOver,
                at!(s, "deploymentConfiguration", "maximumPercent"),
                format!("a DaemonSet rolls either by stopping first or by starting first: with minimumHealthyPercent {min}, each node stops its old pod first ({unavailable}% at a time) and maximumPercent {max} is not used"),
            );
        }
        return (IntOrString::Int(0), percent(unavailable));
    }
    if surge > 0 {
        return (percent(surge), IntOrString::Int(0));
    }
    // 100/100: neither may move. A new pod next to the old one needs the node's
    // ports free, which host networking does not give.
    let host = ctx.task.model.network_mode() == "host";
    let (surge, unavailable, how) = if host {
        (
            IntOrString::Int(0),
            IntOrString::Int(1),
            "maxUnavailable is 1 node (host networking keeps two pods from sharing a node)",
        )
    } else {
        (IntOrString::Int(1), IntOrString::Int(0), "maxSurge is 1 node")
    };
    ctx.warn(
        Code::NotCarriedOver,
        at!(s, "deploymentConfiguration"),
        format!("maximumPercent {max} with minimumHealthyPercent {min} leaves no room to roll out; a DaemonSet needs one of maxSurge/maxUnavailable above zero, so {how}"),
    );
    (surge, unavailable)
}
