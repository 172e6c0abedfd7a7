//! ECS task placement as Kubernetes scheduling: spread on availability zone /
//! instance -> topologySpreadConstraints; distinctInstance -> pod
//! anti-affinity on hostname; memberOf expressions on zone, instance type, OS
//! or architecture -> required node affinity. Anything else -> a warning.

use super::{selector, Ctx};
use crate::at;
use crate::diag::Code;
use crate::ecs::model::PlacementConstraint;
use k8s_openapi::api::core::v1::{
    Affinity, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, PodAffinityTerm, PodAntiAffinity, PodSpec,
    TopologySpreadConstraint,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

const ZONE: &str = "topology.kubernetes.io/zone";
const HOSTNAME: &str = "kubernetes.io/hostname";

pub fn apply(ctx: &mut Ctx, spec: &mut PodSpec) {
    let pods = LabelSelector {
        match_labels: Some(selector(&ctx.meta.name)),
        ..Default::default()
    };
    let mut spread = Vec::new();
    let mut anti = Vec::new();
    let mut node_terms: Vec<NodeSelectorRequirement> = Vec::new();

    if let Some(s) = ctx.service {
        for (i, st) in s.model.placement_strategy.iter().enumerate() {
            let field = st.field.as_deref().unwrap_or_default().to_ascii_lowercase();
            let key = match (st.kind.as_deref(), field.as_str()) {
                (Some("spread"), "attribute:ecs.availability-zone") => Some(ZONE),
                (Some("spread"), "instanceid" | "host") => Some(HOSTNAME),
                _ => None,
            };
            match key {
                Some(key) => spread.push(TopologySpreadConstraint {
                    max_skew: 1,
                    topology_key: key.into(),
                    when_unsatisfiable: "ScheduleAnyway".into(),
                    label_selector: Some(pods.clone()),
                    ..Default::default()
                }),
                None => ctx.warn(
                    Code::NotCarriedOver,
                    at!(s, "placementStrategy", i),
                    format!(
                        "placement strategy {} {} has no Kubernetes equivalent; the scheduler's default scoring applies",
                        st.kind.as_deref().unwrap_or("?"),
                        st.field.as_deref().unwrap_or("")
                    ),
                ),
            }
        }
        for (i, c) in s.model.placement_constraints.iter().enumerate() {
            let path = at!(s, "placementConstraints", i);
            constraint(ctx, c, path, &pods, &mut anti, &mut node_terms);
        }
    }
    for (i, c) in ctx.task.model.placement_constraints.iter().enumerate() {
        let path = at!(ctx.task, "placementConstraints", i);
        constraint(ctx, c, path, &pods, &mut anti, &mut node_terms);
    }

    if !spread.is_empty() {
        spec.topology_spread_constraints = Some(spread);
    }
    if !anti.is_empty() || !node_terms.is_empty() {
        spec.affinity = Some(Affinity {
            pod_anti_affinity: (!anti.is_empty()).then(|| PodAntiAffinity {
                required_during_scheduling_ignored_during_execution: Some(anti),
                ..Default::default()
            }),
            node_affinity: (!node_terms.is_empty()).then(|| NodeAffinity {
                required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                    node_selector_terms: vec![NodeSelectorTerm {
                        match_expressions: Some(node_terms),
                        match_fields: None,
                    }],
                }),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
}

fn constraint(
    ctx: &mut Ctx,
    c: &PlacementConstraint,
    path: String,
    pods: &LabelSelector,
    anti: &mut Vec<PodAffinityTerm>,
    terms: &mut Vec<NodeSelectorRequirement>,
) {
    match c.kind.as_deref() {
        Some("distinctInstance") if anti.is_empty() => {
            anti.push(PodAffinityTerm { label_selector: Some(pods.clone()), topology_key: HOSTNAME.into(), ..Default::default() });
        }
        Some("memberOf") => match c.expression.as_deref().map(parse_member_of) {
            Some(Some(parsed)) => terms.extend(parsed),
            _ => ctx.warn(
                Code::NotCarriedOver,
                path,
                format!("memberOf expression {:?} has no node-affinity equivalent (only zone, instance type, OS and architecture attributes with ==, !=, in, not_in joined by and); ignored", c.expression.as_deref().unwrap_or("")),
            ),
        },
        _ => {}
    }
}

/// `attribute:ecs.availability-zone in [us-east-1a, us-east-1b] and attribute:ecs.os-type == linux`
fn parse_member_of(expr: &str) -> Option<Vec<NodeSelectorRequirement>> {
    expr.split(" and ").map(|t| parse_term(t.trim())).collect()
}

fn parse_term(term: &str) -> Option<NodeSelectorRequirement> {
    let rest = term.strip_prefix("attribute:")?;
    let (attr, rest) = rest.split_once(char::is_whitespace)?;
    let rest = rest.trim();
    let (op, value) = ["not_in", "in", "==", "!="]
        .iter()
        .find_map(|op| rest.strip_prefix(op).map(|v| (*op, v.trim())))?;
    let (key, map): (&str, fn(&str) -> String) = match attr {
        "ecs.availability-zone" => (ZONE, |v| v.to_string()),
        "ecs.instance-type" => ("node.kubernetes.io/instance-type", |v| v.to_string()),
        "ecs.os-type" => ("kubernetes.io/os", |v| v.to_ascii_lowercase()),
        "ecs.cpu-architecture" => ("kubernetes.io/arch", |v| {
            if v.eq_ignore_ascii_case("x86_64") {
                "amd64".into()
            } else {
                v.to_ascii_lowercase()
            }
        }),
        _ => return None,
    };
    let values: Vec<String> = value
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split(',')
        .map(|v| map(v.trim()))
        .filter(|v| !v.is_empty())
        .collect();
    if values.is_empty() || values.iter().any(|v| v.contains('*')) {
        return None;
    }
    let operator = if op == "==" || op == "in" { "In" } else { "NotIn" };
    Some(NodeSelectorRequirement {
        key: key.into(),
        operator: operator.into(),
        values: Some(values),
    })
}

#[cfg(test)]
mod tests {
    use super::parse_member_of;

    #[test]
    fn member_of_expressions() {
        let t = parse_member_of("attribute:ecs.availability-zone in [us-east-1a, us-east-1b] and attribute:ecs.cpu-architecture == x86_64")
            .unwrap();
        assert_eq!(t[0].key, "topology.kubernetes.io/zone");
        assert_eq!(
            t[0].values.as_deref(),
            Some(&["us-east-1a".to_string(), "us-east-1b".to_string()][..])
        );
        assert_eq!(t[1].values.as_deref(), Some(&["amd64".to_string()][..]));
        assert_eq!(
            parse_member_of("attribute:ecs.instance-type != t2.micro").unwrap()[0].operator,
            "NotIn"
        );
        assert!(parse_member_of("attribute:ecs.instance-type =~ t2.*").is_none());
        assert!(parse_member_of("task:group == web").is_none());
    }
}
