//! ECS health checks as Kubernetes probes. interval -> periodSeconds,
//! timeout -> timeoutSeconds, retries -> failureThreshold; startPeriod (and
//! the service's healthCheckGracePeriodSeconds) -> a startup probe whose
//! allowance covers that period before liveness counts.

use super::int32;
use crate::ecs::model::HealthCheck;
use k8s_openapi::api::core::v1::{ExecAction, Probe};

/// The exec command: `CMD-SHELL x` runs through /bin/sh -c, `CMD a b` as is.
pub fn exec_command(h: &HealthCheck) -> Option<Vec<String>> {
    let (first, rest) = h.command.split_first()?;
    match first.as_str() {
        "CMD-SHELL" => Some(vec!["/bin/sh".into(), "-c".into(), rest.join(" ")]),
        "CMD" if !rest.is_empty() => Some(rest.to_vec()),
        _ => None, // NONE disables the check, as in Docker
    }
}

fn probe(h: &HealthCheck, command: Vec<String>, failure_threshold: i32) -> Probe {
    Probe {
        exec: Some(ExecAction { command: Some(command) }),
        period_seconds: Some(int32(h.interval.unwrap_or(30))),
        timeout_seconds: Some(int32(h.timeout.unwrap_or(5))),
        failure_threshold: Some(failure_threshold),
        ..Default::default()
    }
}

pub struct Probes {
    pub readiness: Probe,
    pub liveness: Probe,
    pub startup: Option<Probe>,
}

/// `grace` is the service's healthCheckGracePeriodSeconds, which widens the
/// startup allowance as it delays ECS's health-based replacement.
pub fn probes(h: &HealthCheck, grace: Option<i64>) -> Option<Probes> {
    let command = exec_command(h)?;
    let retries = int32(h.retries.unwrap_or(3));
    let interval = h.interval.unwrap_or(30).max(1);
    let allowance = h.start_period.unwrap_or(0).max(grace.unwrap_or(0));
    let startup = (allowance > 0).then(|| {
        let periods = allowance.saturating_add(interval - 1) / interval;
        probe(h, command.clone(), int32(periods).saturating_add(retries))
    });
    Some(Probes {
        readiness: probe(h, command.clone(), retries),
        liveness: probe(h, command, retries),
        startup,
    })
}

/// The startup probe of a native sidecar that others wait on as HEALTHY.
pub fn healthy_gate(h: &HealthCheck) -> Option<Probe> {
    let command = exec_command(h)?;
    let interval = h.interval.unwrap_or(30).max(1);
    let allowance = h.start_period.unwrap_or(0);
    let periods = allowance.saturating_add(interval - 1) / interval;
    Some(probe(h, command, int32(periods).saturating_add(int32(h.retries.unwrap_or(3)))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hc(cmd: &[&str]) -> HealthCheck {
        HealthCheck {
            command: cmd.iter().map(|s| s.to_string()).collect(),
            interval: Some(10),
            timeout: Some(2),
            retries: Some(4),
            start_period: Some(25),
        }
    }

    #[test]
    fn cmd_shell_runs_through_sh() {
        assert_eq!(
            exec_command(&hc(&["CMD-SHELL", "curl -f localhost || exit 1"])).unwrap(),
            vec!["/bin/sh", "-c", "curl -f localhost || exit 1"]
        );
        assert_eq!(exec_command(&hc(&["CMD", "pg_isready", "-q"])).unwrap(), vec!["pg_isready", "-q"]);
        assert!(exec_command(&hc(&["NONE"])).is_none());
    }

    #[test]
    fn timings_map_and_grace_widens_startup() {
        let p = probes(&hc(&["CMD", "true"]), None).unwrap();
        assert_eq!(p.liveness.period_seconds, Some(10));
        assert_eq!(p.liveness.timeout_seconds, Some(2));
        assert_eq!(p.liveness.failure_threshold, Some(4));
        assert_eq!(p.startup.as_ref().unwrap().failure_threshold, Some(3 + 4));
        let wider = probes(&hc(&["CMD", "true"]), Some(100)).unwrap();
        assert_eq!(wider.startup.unwrap().failure_threshold, Some(10 + 4));
    }
}
