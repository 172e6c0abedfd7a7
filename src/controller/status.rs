//! The ECSDeployment's status from what a reconcile observed: the Ready,
//! Progressing and Degraded conditions, the workload's replica counts, the
//! Service's address and the children. Pure, so every case is unit-tested.

use crate::crd::ECSDeploymentStatus;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

pub const READY: &str = "Ready";
pub const PROGRESSING: &str = "Progressing";
pub const DEGRADED: &str = "Degraded";

/// Why an ECSDeployment is Degraded (condition reasons).
pub mod reason {
    pub const TRANSLATION_FAILED: &str = "TranslationFailed";
    pub const CONFIG_MAP_MISSING: &str = "ConfigMapMissing";
    pub const CHILD_CONFLICT: &str = "ChildConflict";
    pub const APPLY_FAILED: &str = "ApplyFailed";
    pub const PROGRESS_DEADLINE_EXCEEDED: &str = "ProgressDeadlineExceeded";
    /// The admin policy refuses what the definitions (or their ConfigMaps) now say.
    pub const POLICY_DENIED: &str = "PolicyDenied";
    /// The ServiceAccount the pods would run as belongs to someone else.
    pub const SERVICE_ACCOUNT_CONFLICT: &str = "ServiceAccountConflict";
    /// The definitions could not be evaluated within the engine's deadline.
    pub const EVALUATION_FAILED: &str = "EvaluationFailed";
}

/// Kubernetes allows 32k; a condition stays readable well below that.
const MAX_MESSAGE: usize = 2000;

/// Something that keeps the ECSDeployment from being what its spec says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub reason: &'static str,
    pub message: String,
}

impl Problem {
    pub fn new(reason: &'static str, message: impl Into<String>) -> Self {
        Problem {
            reason,
            message: message.into(),
        }
    }
}

/// The rollout state of the Deployment or DaemonSet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Workload {
    pub desired: i32,
    pub replicas: i32,
    pub ready: i32,
    pub updated: i32,
    pub available: i32,
    /// The workload controller has seen the current spec.
    pub observed: bool,
    pub deadline_exceeded: bool,
}

impl Workload {
    pub fn from_deployment(d: &Deployment) -> Self {
        let desired = d.spec.replicas.unwrap_or(1);
        let s = d.status.clone().unwrap_or_default();
        let deadline_exceeded = s.conditions.iter().flatten().any(|c| {
            c.type_.as_deref() == Some("Progressing")
                && c.status.as_deref() == Some("False")
                && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
        });
        Workload {
            desired,
            replicas: s.replicas.unwrap_or(0),
            ready: s.ready_replicas.unwrap_or(0),
            updated: s.updated_replicas.unwrap_or(0),
            available: s.available_replicas.unwrap_or(0),
            observed: s.observed_generation.is_some() && s.observed_generation >= d.metadata.generation,
            deadline_exceeded,
        }
    }

    pub fn from_daemon_set(d: &DaemonSet) -> Self {
        let s = d.status.clone().unwrap_or_default();
        Workload {
            desired: s.desired_number_scheduled,
            replicas: s.current_number_scheduled,
            ready: s.number_ready,
            updated: s.updated_number_scheduled.unwrap_or(0),
            available: s.number_available.unwrap_or(0),
            observed: s.observed_generation.is_some() && s.observed_generation >= d.metadata.generation,
            deadline_exceeded: false,
        }
    }

    /// Every replica runs the current template and is available, none of the old ones remain.
    pub fn complete(&self) -> bool {
        self.observed && self.updated >= self.desired && self.replicas == self.updated && self.available >= self.desired
    }
}

/// The child Service's name and external address.
pub fn service_address(s: &Service) -> Option<String> {
    let ingress = s.status.as_ref()?.load_balancer.as_ref()?.ingress.as_ref()?;
    let addresses: Vec<&str> = ingress.iter().filter_map(|i| i.ip.as_deref().or(i.hostname.as_deref())).collect();
    (!addresses.is_empty()).then(|| addresses.join(","))
}

/// What one reconcile saw.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub generation: Option<i64>,
    pub problems: Vec<Problem>,
    /// None when the workload could not be read (e.g. translation failed).
    pub workload: Option<Workload>,
    pub service: Option<String>,
    pub address: Option<String>,
    /// `Kind/name` of every child that exists; None keeps the previous list.
    pub children: Option<Vec<String>>,
    /// The ConfigMap content the children were made from (None: inline, or kept).
    pub source_digest: Option<String>,
}

/// The new status. Conditions whose status did not change keep their
/// lastTransitionTime, so an unchanged world yields an equal status (no write).
pub fn compute(observed: &Observed, previous: Option<&ECSDeploymentStatus>, now: &Time) -> ECSDeploymentStatus {
    let mut problems = observed.problems.clone();
    if let Some(w) = observed.workload.as_ref().filter(|w| w.deadline_exceeded) {
        problems.push(Problem::new(
            reason::PROGRESS_DEADLINE_EXCEEDED,
            format!(
                "the rollout made no progress within its deadline ({} of {} updated replicas available)",
                w.available.min(w.updated),
                w.desired
            ),
        ));
    }
    let problem = summarize(&problems);
    let workload = observed.workload.as_ref();
    let complete = workload.is_some_and(Workload::complete);

    let ready = match (&problem, workload) {
        (Some(p), _) => (false, p.reason, p.message.clone()),
        (None, None) => (false, "NoWorkload", "the workload has not been read yet".into()),
        (None, Some(w)) if complete => (true, "Available", format!("{} of {} replicas available", w.available, w.desired)),
        (None, Some(w)) => (false, "RollingOut", rollout_message(w)),
    };
    let progressing = match workload {
        Some(w) if w.deadline_exceeded => (false, reason::PROGRESS_DEADLINE_EXCEEDED, rollout_message(w)),
        Some(w) if !complete => (true, "RollingOut", rollout_message(w)),
        Some(_) => (false, "Complete", "the rollout is complete".into()),
        None => match &problem {
            Some(p) => (false, p.reason, p.message.clone()),
            None => (false, "NoWorkload", "the workload has not been read yet".into()),
        },
    };
    let degraded = match &problem {
        Some(p) => (true, p.reason, p.message.clone()),
        None => (false, "AsExpected", "no problems".into()),
    };

    let prev = previous.cloned().unwrap_or_default();
    let condition = |type_: &str, (status, reason, message): (bool, &str, String)| {
        let status = if status { "True" } else { "False" }.to_string();
        let last_transition_time = prev
            .conditions
            .iter()
            .find(|c| c.type_ == type_ && c.status == status)
            .map_or_else(|| now.clone(), |c| c.last_transition_time.clone());
        Condition {
            type_: type_.to_string(),
            status,
            reason: reason.to_string(),
            message: truncate(message),
            observed_generation: observed.generation,
            last_transition_time,
        }
    };
    ECSDeploymentStatus {
        observed_generation: observed.generation,
        conditions: vec![
            condition(READY, ready),
            condition(PROGRESSING, progressing),
            condition(DEGRADED, degraded),
        ],
        desired_replicas: workload.map(|w| w.desired).or(prev.desired_replicas),
        replicas: workload.map(|w| w.replicas).or(prev.replicas),
        ready_replicas: workload.map(|w| w.ready).or(prev.ready_replicas),
        updated_replicas: workload.map(|w| w.updated).or(prev.updated_replicas),
        service: observed.service.clone(),
        address: observed.address.clone(),
        children: observed.children.clone().unwrap_or(prev.children),
        // Only a reconcile that applied the children moves it on.
        source_digest: match (&observed.children, &observed.source_digest) {
            (Some(_), digest) if observed.problems.is_empty() => digest.clone(),
            _ => prev.source_digest,
        },
    }
}

fn rollout_message(w: &Workload) -> String {
    if !w.observed {
        return "waiting for the workload controller to see the new spec".into();
    }
    format!(
        "{} of {} replicas updated, {} available, {} in total",
        w.updated, w.desired, w.available, w.replicas
    )
}

/// The first problem's reason; every message.
fn summarize(problems: &[Problem]) -> Option<Problem> {
    let first = problems.first()?;
    let message = problems.iter().map(|p| p.message.as_str()).collect::<Vec<_>>().join("; ");
    Some(Problem::new(first.reason, message))
}

fn truncate(mut s: String) -> String {
    if s.len() > MAX_MESSAGE {
        let mut end = MAX_MESSAGE;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push_str("...");
    }
    s
}

/// The condition of that type, if any.
pub fn condition<'s>(status: &'s ECSDeploymentStatus, type_: &str) -> Option<&'s Condition> {
    status.conditions.iter().find(|c| c.type_ == type_)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{DeploymentCondition, DeploymentSpec, DeploymentStatus};
    use k8s_openapi::api::core::v1::{LoadBalancerIngress, LoadBalancerStatus, ServiceStatus};
    use k8s_openapi::jiff::Timestamp;

    fn at(secs: i64) -> Time {
        Time(Timestamp::from_second(secs).unwrap())
    }

    fn done(n: i32) -> Workload {
        Workload {
            desired: n,
            replicas: n,
            ready: n,
            updated: n,
            available: n,
            observed: true,
            deadline_exceeded: false,
        }
    }

    fn cond<'s>(s: &'s ECSDeploymentStatus, t: &str) -> &'s Condition {
        condition(s, t).unwrap()
    }

    #[test]
    fn a_complete_rollout_is_ready_and_mirrors_the_counts() {
        let o = Observed {
            generation: Some(3),
            workload: Some(done(2)),
            service: Some("web".into()),
            address: Some("1.2.3.4".into()),
            children: Some(vec!["Deployment/web".into(), "Service/web".into()]),
            ..Default::default()
        };
        let s = compute(&o, None, &at(100));
        assert_eq!(cond(&s, READY).status, "True");
        assert_eq!(cond(&s, PROGRESSING).status, "False");
        assert_eq!(cond(&s, PROGRESSING).reason, "Complete");
        assert_eq!(cond(&s, DEGRADED).status, "False");
        assert_eq!(cond(&s, READY).observed_generation, Some(3));
        assert_eq!((s.replicas, s.ready_replicas, s.updated_replicas), (Some(2), Some(2), Some(2)));
        assert_eq!(s.observed_generation, Some(3));
        assert_eq!(s.address.as_deref(), Some("1.2.3.4"));
        assert_eq!(s.children.len(), 2);
    }

    #[test]
    fn a_rollout_in_progress_is_progressing_and_not_ready() {
        let w = Workload {
            updated: 1,
            replicas: 3,
            available: 2,
            ..done(2)
        };
        let s = compute(
            &Observed {
                workload: Some(w),
                ..Default::default()
            },
            None,
            &at(0),
        );
        assert_eq!(cond(&s, READY).status, "False");
        assert_eq!(cond(&s, READY).reason, "RollingOut");
        assert_eq!(cond(&s, PROGRESSING).status, "True");
        assert_eq!(cond(&s, DEGRADED).status, "False");
    }

    #[test]
    fn an_unobserved_generation_is_not_ready() {
        let w = Workload {
            observed: false,
            ..done(1)
        };
        assert!(!w.complete());
    }

    #[test]
    fn problems_degrade_and_unready_with_the_first_reason() {
        let o = Observed {
            workload: Some(done(1)),
            problems: vec![
                Problem::new(
                    reason::CHILD_CONFLICT,
                    "Deployment/web exists and is not managed by this ECSDeployment",
                ),
                Problem::new(reason::APPLY_FAILED, "Service/web: invalid"),
            ],
            ..Default::default()
        };
        let s = compute(&o, None, &at(0));
        let d = cond(&s, DEGRADED);
        assert_eq!((d.status.as_str(), d.reason.as_str()), ("True", "ChildConflict"));
        assert!(d.message.contains("Deployment/web") && d.message.contains("Service/web"));
        assert_eq!(cond(&s, READY).status, "False");
        assert_eq!(cond(&s, READY).reason, "ChildConflict");
    }

    #[test]
    fn a_failed_translation_keeps_the_last_counts_and_children() {
        let prev = compute(
            &Observed {
                workload: Some(done(2)),
                children: Some(vec!["Deployment/web".into()]),
                ..Default::default()
            },
            None,
            &at(0),
        );
        let o = Observed {
            problems: vec![Problem::new(reason::TRANSLATION_FAILED, "spec.Task: bad")],
            ..Default::default()
        };
        let s = compute(&o, Some(&prev), &at(10));
        assert_eq!(s.replicas, Some(2));
        assert_eq!(s.children, ["Deployment/web"]);
        assert_eq!(cond(&s, PROGRESSING).reason, "TranslationFailed");
        assert_eq!(cond(&s, DEGRADED).last_transition_time, at(10));
    }

    #[test]
    fn the_progress_deadline_from_the_deployment_degrades() {
        let d = Deployment {
            spec: DeploymentSpec {
                replicas: Some(2),
                ..Default::default()
            },
            status: Some(DeploymentStatus {
                observed_generation: Some(1),
                replicas: Some(3),
                updated_replicas: Some(1),
                available_replicas: Some(2),
                conditions: Some(vec![DeploymentCondition {
                    type_: Some("Progressing".into()),
                    status: Some("False".into()),
                    reason: Some("ProgressDeadlineExceeded".into()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let w = Workload::from_deployment(&d);
        assert!(w.deadline_exceeded && !w.complete());
        let s = compute(
            &Observed {
                workload: Some(w),
                ..Default::default()
            },
            None,
            &at(0),
        );
        assert_eq!(cond(&s, DEGRADED).reason, "ProgressDeadlineExceeded");
        assert_eq!(cond(&s, PROGRESSING).status, "False");
        assert_eq!(cond(&s, PROGRESSING).reason, "ProgressDeadlineExceeded");
    }

    #[test]
    fn an_unchanged_world_gives_an_equal_status() {
        let o = Observed {
            generation: Some(1),
            workload: Some(done(1)),
            ..Default::default()
        };
        let first = compute(&o, None, &at(0));
        let again = compute(&o, Some(&first), &at(500));
        assert_eq!(first, again);
        // A flip moves only that condition's time.
        let flipped = compute(
            &Observed {
                workload: Some(Workload { available: 0, ..done(1) }),
                ..o.clone()
            },
            Some(&first),
            &at(600),
        );
        assert_eq!(cond(&flipped, READY).last_transition_time, at(600));
        assert_eq!(cond(&flipped, DEGRADED).last_transition_time, at(0));
    }

    #[test]
    fn the_service_address_is_the_load_balancer_ingress() {
        let mut s = Service::default();
        assert_eq!(service_address(&s), None);
        s.status = Some(ServiceStatus {
            load_balancer: Some(LoadBalancerStatus {
                ingress: Some(vec![
                    LoadBalancerIngress {
                        ip: Some("10.0.0.1".into()),
                        ..Default::default()
                    },
                    LoadBalancerIngress {
                        hostname: Some("lb.example.com".into()),
                        ..Default::default()
                    },
                ]),
            }),
            ..Default::default()
        });
        assert_eq!(service_address(&s).as_deref(), Some("10.0.0.1,lb.example.com"));
    }

    #[test]
    fn daemon_sets_count_scheduled_pods() {
        let mut d = DaemonSet::default();
        d.metadata.generation = Some(2);
        d.status = Some(k8s_openapi::api::apps::v1::DaemonSetStatus {
            desired_number_scheduled: 1,
            current_number_scheduled: 1,
            number_ready: 1,
            updated_number_scheduled: Some(1),
            number_available: Some(1),
            observed_generation: Some(2),
            ..Default::default()
        });
        assert!(Workload::from_daemon_set(&d).complete());
        d.metadata.generation = Some(3);
        assert!(!Workload::from_daemon_set(&d).complete());
    }
}
