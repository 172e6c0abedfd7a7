//! Rules that keep the Kubernetes translation possible: container names
//! become DNS-1123 labels (lowercase, `_` -> `-`, at most 63 characters).

use super::Task;
use crate::at;
use crate::diag::{Code, Report};
use std::collections::HashMap;

/// The Kubernetes container name for an ECS container name.
pub fn k8s_container_name(ecs: &str) -> String {
    ecs.to_ascii_lowercase().replace('_', "-")
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Docker link variables one container may get (`<ALIAS>_ENV_<VAR>` for every
/// variable of every linked container, ...): each link copies the linked
/// container's environment, so a few kilobytes of links can ask for millions.
pub const MAX_LINK_VARIABLES: usize = 4096;

pub fn check(t: Task, r: &mut Report) {
    check_names(t, r);
    check_link_variables(t, r);
}

fn check_link_variables(t: Task, r: &mut Report) {
    let containers = &t.model.container_definitions;
    let by_name: HashMap<&str, &crate::ecs::model::ContainerDefinition> =
        containers.iter().filter_map(|c| Some((c.name.as_deref()?, c))).collect();
    for (i, c) in containers.iter().enumerate() {
        let total = c
            .links
            .iter()
            .filter_map(|l| by_name.get(l.split(':').next().unwrap_or_default()))
            .map(|linked| crate::translate::link_variable_count(linked))
            .fold(0usize, usize::saturating_add);
        if total > MAX_LINK_VARIABLES {
            r.error(
                Code::Invalid,
                at!(t, "containerDefinitions", i, "links"),
                "these links would give the container more Docker link variables than a pod can carry",
            )
            .expected(format!(
                "links making at most {MAX_LINK_VARIABLES} variables (each link copies the linked container's environment)"
            ))
            .found(format!("{total} variables"));
        }
    }
}

fn check_names(t: Task, r: &mut Report) {
    let mut seen: HashMap<String, &str> = HashMap::new();
    for (i, c) in t.model.container_definitions.iter().enumerate() {
        let Some(name) = c.name.as_deref() else { continue };
        let k8s = k8s_container_name(name);
        let path = at!(t, "containerDefinitions", i, "name");
        if !is_dns_label(&k8s) {
            r.error(Code::Invalid, path, "container name cannot become a Kubernetes container name")
                .expected("at most 63 letters, digits, '-' or '_', starting and ending with a letter or digit")
                .found(format!("\"{name}\""));
            continue;
        }
        if let Some(other) = seen.get(&k8s) {
            if *other != name {
                r.error(
                    Code::Duplicate,
                    path,
                    format!("container names \"{other}\" and \"{name}\" both become \"{k8s}\" in Kubernetes"),
                )
                .expected("names that differ after lowercasing and replacing '_' by '-'")
                .found(format!("\"{name}\""));
            }
            continue;
        }
        if k8s != name {
            r.warning(
                Code::Converted,
                path,
                format!("container \"{name}\" is named \"{k8s}\" in Kubernetes (lowercase, '-' for '_')"),
            )
            .expected(format!("\"{k8s}\""))
            .found(format!("\"{name}\""));
        }
        seen.insert(k8s, name);
    }
}
