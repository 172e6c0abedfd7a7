//! ResourceQuota and the preflight's dry-run Pod. The dry-run Pod is counted
//! against the namespace's quota like a real one, so in a namespace at its
//! quota it is refused even when the change would shrink the workload. That
//! refusal says something only if the workload's own pods, all of them,
//! would exceed the quota's hard limits: judged here from the quota and the
//! pod, not from what else runs in the namespace.

use k8s_openapi::api::core::v1::{PodSpec, ResourceQuota, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use std::collections::BTreeMap;

/// The quota admission plugin's own wording (`exceeded quota: <name>, requested: ...`).
pub fn is_quota_refusal(message: &str) -> bool {
    message.contains("exceeded quota:")
}

/// The first hard limit `replicas` pods like `pod` exceed on their own:
/// (quota, resource, what they would need, the limit).
pub fn exceeded_by_workload(quotas: &[ResourceQuota], pod: &PodSpec, replicas: i64) -> Option<(String, String, f64, f64)> {
    let per_pod = usage(pod);
    for q in quotas {
        let name = q.metadata.name.clone().unwrap_or_default();
        let hard = q.spec.as_ref().and_then(|s| s.hard.as_ref());
        for (resource, limit) in hard.into_iter().flatten() {
            let Some(limit) = parse(limit) else { continue };
            let Some(each) = per_pod.get(resource.as_str()) else { continue };
            let needed = each * replicas as f64;
            if needed > limit {
                return Some((name, resource.clone(), needed, limit));
            }
        }
    }
    None
}

/// What one pod counts against a quota, by the quota's resource names.
fn usage(pod: &PodSpec) -> BTreeMap<&'static str, f64> {
    let mut u = BTreeMap::new();
    u.insert("pods", 1.0);
    u.insert("count/pods", 1.0);
    let sum = |which: fn(&ResourceRequirements) -> Option<&BTreeMap<String, Quantity>>, key: &str| -> f64 {
        // Pod-level resources, when set, are what the pod counts as.
        if let Some(v) = pod.resources.as_ref().and_then(which).and_then(|m| m.get(key)).and_then(parse) {
            return v;
        }
        let regular: f64 = pod
            .containers
            .iter()
            .filter_map(|c| c.resources.as_ref().and_then(which).and_then(|m| m.get(key)).and_then(parse))
            .sum();
        let init = pod
            .init_containers
            .iter()
            .flatten()
            .filter_map(|c| c.resources.as_ref().and_then(which).and_then(|m| m.get(key)).and_then(parse))
            .fold(0.0, f64::max);
        regular.max(init)
    };
    for key in ["cpu", "memory", "ephemeral-storage"] {
        let (req, lim) = (sum(requests_of, key), sum(limits_of, key));
        let (r_name, l_name, bare): (&'static str, &'static str, &'static str) = match key {
            "cpu" => ("requests.cpu", "limits.cpu", "cpu"),
            "memory" => ("requests.memory", "limits.memory", "memory"),
            _ => ("requests.ephemeral-storage", "limits.ephemeral-storage", "ephemeral-storage"),
        };
        u.insert(r_name, req);
        u.insert(bare, req);
        u.insert(l_name, lim);
    }
    u
}

fn requests_of(r: &ResourceRequirements) -> Option<&BTreeMap<String, Quantity>> {
    r.requests.as_ref()
}

fn limits_of(r: &ResourceRequirements) -> Option<&BTreeMap<String, Quantity>> {
    r.limits.as_ref()
}

/// A quantity as a number (cores, bytes, counts): `500m`, `2`, `1.5Gi`, `100M`, `1e3`.
pub fn parse(q: &Quantity) -> Option<f64> {
    let s = q.0.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(split);
    let n: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        e if e.starts_with(['e', 'E']) => 10f64.powi(e[1..].parse().ok()?),
        _ => return None,
    };
    Some(n * factor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, ResourceQuotaSpec};
    use kube::core::ObjectMeta;

    fn q(s: &str) -> Quantity {
        Quantity(s.into())
    }

    #[test]
    fn quantities_read_as_the_api_server_writes_them() {
        assert_eq!(parse(&q("500m")), Some(0.5));
        assert_eq!(parse(&q("2")), Some(2.0));
        assert_eq!(parse(&q("1Gi")), Some(1024f64.powi(3)));
        assert_eq!(parse(&q("100M")), Some(1e8));
        assert_eq!(parse(&q("1e3")), Some(1000.0));
        assert_eq!(parse(&q("1.5Ki")), Some(1536.0));
        assert_eq!(parse(&q("lots")), None);
    }

    #[test]
    fn only_the_workloads_own_pods_can_exceed_a_quota() {
        let quota = ResourceQuota {
            metadata: ObjectMeta {
                name: Some("team".into()),
                ..Default::default()
            },
            spec: Some(ResourceQuotaSpec {
                hard: Some(BTreeMap::from([("pods".into(), q("3")), ("requests.memory".into(), q("1Gi"))])),
                ..Default::default()
            }),
            status: None,
        };
        let pod = PodSpec {
            containers: vec![Container {
                name: "web".into(),
                resources: Some(ResourceRequirements {
                    requests: Some(BTreeMap::from([("memory".into(), q("256Mi"))])),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(exceeded_by_workload(std::slice::from_ref(&quota), &pod, 2), None);
        let (name, resource, needed, limit) = exceeded_by_workload(std::slice::from_ref(&quota), &pod, 4).unwrap();
        assert_eq!((name.as_str(), resource.as_str(), needed, limit), ("team", "pods", 4.0, 3.0));
        let big = PodSpec {
            resources: Some(ResourceRequirements {
                requests: Some(BTreeMap::from([("memory".into(), q("2Gi"))])),
                ..Default::default()
            }),
            ..pod
        };
        let (_, resource, ..) = exceeded_by_workload(&[quota], &big, 1).unwrap();
        assert_eq!(resource, "requests.memory");
        assert!(is_quota_refusal(
            "pods \"x\" is forbidden: exceeded quota: team, requested: pods=1, used: pods=3, limited: pods=3"
        ));
    }
}
