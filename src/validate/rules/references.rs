//! References between parts of a task: links, dependsOn, volumesFrom,
//! mountPoints, and the dependency graph.

use super::Task;
use crate::at;
use crate::diag::{Code, Report};
use std::collections::{HashMap, HashSet};

pub fn check(t: Task, r: &mut Report) {
    let m = &t.model;
    let names: HashMap<&str, usize> = m
        .container_definitions
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.name.as_deref().map(|n| (n, i)))
        .collect();
    let volumes: HashSet<&str> = m.volumes.iter().filter_map(|v| v.name.as_deref()).collect();
    // With an unresolved name anywhere, "unknown container" cannot be told.
    let names_known = super::container_names_known(t);
    let volumes_known = super::volume_names_known(t);
    let known = |n: &str| !names_known || names.contains_key(n);
    // Named once, and at most a few names: every bad reference repeats it.
    let container_list = {
        let mut v: Vec<&str> = names.keys().copied().collect();
        v.sort();
        let shown = v.iter().take(10).copied().collect::<Vec<_>>().join(", ");
        if v.len() > 10 {
            format!("{shown}, ... ({} containers)", v.len())
        } else {
            shown
        }
    };
    let container_list = || container_list.clone();

    for (i, c) in m.container_definitions.iter().enumerate() {
        // "The name of another container within the same task definition" (links, dependsOn, volumesFrom)
        for (j, link) in c.links.iter().enumerate() {
            let target = link.split(':').next().unwrap_or_default();
            if !target.is_empty() && !known(target) {
                r.error(
                    Code::NotFound,
                    at!(t, "containerDefinitions", i, "links", j),
                    format!("link to unknown container \"{target}\""),
                )
                .expected(format!("one of: {}", container_list()))
                .found(format!("\"{link}\""));
            }
        }
        for (j, d) in c.depends_on.iter().enumerate() {
            let Some(target) = d.container_name.as_deref() else { continue };
            let path = at!(t, "containerDefinitions", i, "dependsOn", j, "containerName");
            let Some(&ti) = names.get(target) else {
                if !names_known {
                    continue;
                }
                r.error(Code::NotFound, path, format!("depends on unknown container \"{target}\""))
                    .expected(format!("one of: {}", container_list()))
                    .found(format!("\"{target}\""));
                continue;
            };
            let dep = &m.container_definitions[ti];
            match d.condition.as_deref() {
                // "This condition can't be set on an essential container." (ContainerDependency.condition)
                Some(cond @ ("COMPLETE" | "SUCCESS")) if dep.is_essential() => {
                    r.error(
                        Code::Invalid,
                        at!(t, "containerDefinitions", i, "dependsOn", j, "condition"),
                        format!("{cond} needs the container \"{target}\" to be non-essential"),
                    )
                    .expected(format!("essential: false on \"{target}\""))
                    .found(format!("\"{target}\" is essential"));
                }
                // "This requires that the dependent container has health checks configured." (ContainerDependency.condition)
                Some("HEALTHY") if dep.health_check.is_none() => {
                    r.error(
                        Code::Invalid,
                        at!(t, "containerDefinitions", i, "dependsOn", j, "condition"),
                        format!("HEALTHY needs a healthCheck on \"{target}\""),
                    )
                    .expected(format!("a healthCheck on \"{target}\""));
                }
                _ => {}
            }
        }
        for (j, v) in c.volumes_from.iter().enumerate() {
            if let Some(src) = v.source_container.as_deref().filter(|s| !known(s)) {
                r.error(
                    Code::NotFound,
                    at!(t, "containerDefinitions", i, "volumesFrom", j, "sourceContainer"),
                    format!("volumes from unknown container \"{src}\""),
                )
                .expected(format!("one of: {}", container_list()))
                .found(format!("\"{src}\""));
            }
        }
        // "Must be a volume name referenced in the name parameter of task definition volume." (MountPoint.sourceVolume)
        for (j, mp) in c.mount_points.iter().enumerate() {
            if let Some(src) = mp.source_volume.as_deref().filter(|s| volumes_known && !volumes.contains(s)) {
                let mut declared: Vec<&str> = volumes.iter().copied().collect();
                declared.sort();
                let expected = if declared.is_empty() {
                    "a volume declared in the task's volumes (none are)".to_string()
                } else {
                    format!("one of: {}", declared.join(", "))
                };
                r.error(
                    Code::NotFound,
                    at!(t, "containerDefinitions", i, "mountPoints", j, "sourceVolume"),
                    format!("mount of undeclared volume \"{src}\""),
                )
                .expected(expected)
                .found(format!("\"{src}\""));
            }
        }
    }
    check_cycles(t, &names, r);
    // ProxyConfiguration.containerName: "The name of the container that will serve as the App Mesh proxy."
    if let Some(name) = m
        .proxy_configuration
        .as_ref()
        .and_then(|p| p.get("containerName"))
        .and_then(|v| v.as_str())
    {
        if !known(name) {
            r.error(
                Code::NotFound,
                at!(t, "proxyConfiguration", "containerName"),
                format!("proxy container \"{name}\" is not in the task"),
            )
            .expected(format!("one of: {}", container_list()));
        }
    }
}

/// A dependsOn cycle can never start; report it once, at the edge that closes it.
fn check_cycles(t: Task, names: &HashMap<&str, usize>, r: &mut Report) {
    let m = &t.model;
    let edges: Vec<Vec<(usize, usize)>> = m
        .container_definitions
        .iter()
        .map(|c| {
            c.depends_on
                .iter()
                .enumerate()
                .filter_map(|(j, d)| d.container_name.as_deref().and_then(|n| names.get(n)).map(|&ti| (j, ti)))
                .collect()
        })
        .collect();
    // 0 = unvisited, 1 = on the stack, 2 = done
    let mut state = vec![0u8; edges.len()];
    let mut reported = false;
    for start in 0..edges.len() {
        if state[start] == 0 && !reported {
            let mut stack = vec![(start, 0usize)];
            state[start] = 1;
            while let Some((node, next)) = stack.pop() {
                if next < edges[node].len() {
                    stack.push((node, next + 1));
                    let (j, to) = edges[node][next];
                    if state[to] == 1 {
                        let cycle: Vec<&str> = stack
                            .iter()
                            .map(|(n, _)| m.container_definitions[*n].name.as_deref().unwrap_or("?"))
                            .skip_while(|n| Some(*n) != m.container_definitions[to].name.as_deref())
                            .collect();
                        r.error(
                            Code::Invalid,
                            at!(t, "containerDefinitions", node, "dependsOn", j, "containerName"),
                            "dependsOn forms a cycle, so no container of it can start",
                        )
                        .expected("an acyclic dependsOn graph")
                        .found(format!(
                            "{} -> {}",
                            cycle.join(" -> "),
                            m.container_definitions[to].name.as_deref().unwrap_or("?")
                        ));
                        reported = true;
                        break;
                    } else if state[to] == 0 {
                        state[to] = 1;
                        stack.push((to, 0));
                    }
                } else {
                    state[node] = 2;
                }
            }
        }
    }
}
