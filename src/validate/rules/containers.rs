//! Per-container rules: names, essential, memory, ports, health checks, user.

use super::task::check_ecs_name;
use super::Task;
use crate::diag::{Code, Report};
use crate::{at, written};
use std::collections::HashMap;

pub fn check(t: Task, r: &mut Report) {
    let containers = &t.model.container_definitions;
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, c) in containers.iter().enumerate() {
        // The botocore model leaves them optional, but ECS rejects a container
        // without them, and the CloudFormation schema marks both required.
        for (field, set) in [("name", c.name.is_some()), ("image", c.image.is_some())] {
            if !set && !written!(t, "containerDefinitions", i, field) {
                r.error(
                    Code::Required,
                    at!(t, "containerDefinitions", i, field),
                    format!("required field `{field}` is missing"),
                )
                .expected(format!("`{field}`"));
            }
        }
        // "Up to 255 letters (uppercase and lowercase), numbers, hyphens, underscores,
        // colons, periods, forward slashes, and number signs are allowed." (ContainerDefinition.image)
        // The length is enforced at registration; the characters are left to the
        // image pull (template placeholders in exported files register fine).
        if let Some(image) = c.image.as_deref().filter(|i| i.chars().count() > 255) {
            r.error(Code::Invalid, at!(t, "containerDefinitions", i, "image"), "image name too long")
                .expected("at most 255 characters")
                .found(format!("{} characters", image.chars().count()));
        }
        if let Some(name) = c.name.as_deref() {
            check_ecs_name(r, at!(t, "containerDefinitions", i, "name"), name, "container name");
            if let Some(first) = seen.insert(name, i) {
                r.error(
                    Code::Duplicate,
                    at!(t, "containerDefinitions", i, "name"),
                    format!("container name \"{name}\" is already used by container {first}"),
                )
                .expected("unique container names")
                .found(format!("\"{name}\""));
            }
        }
        // "The Docker 20.10.0 or later daemon reserves a minimum of 6 MiB of memory for a container. So, don't specify less than 6 MiB" (ContainerDefinition.memory)
        for (field, v) in [("memory", c.memory), ("memoryReservation", c.memory_reservation)] {
            if let Some(v) = v.filter(|v| *v < 6) {
                r.error(
                    Code::Invalid,
                    at!(t, "containerDefinitions", i, field),
                    "container memory below the 6 MiB Docker needs",
                )
                .expected("at least 6 MiB")
                .found(v.to_string());
            }
        }
        // "If you specify both, memory must be greater than memoryReservation." (ContainerDefinition.memoryReservation)
        if let (Some(hard), Some(soft)) = (c.memory, c.memory_reservation) {
            if soft > hard {
                r.error(
                    Code::Invalid,
                    at!(t, "containerDefinitions", i, "memoryReservation"),
                    "memoryReservation exceeds the memory hard limit",
                )
                .expected(format!("at most memory ({hard} MiB)"))
                .found(soft.to_string());
            }
        }
        check_ports(t, i, r);
        check_health(t, i, r);
        check_user(t, i, r);
        check_links_format(t, i, r);
        // "You can specify up to ten environment files." (ContainerDefinition.environmentFiles)
        if c.environment_files.len() > 10 {
            r.error(
                Code::Invalid,
                at!(t, "containerDefinitions", i, "environmentFiles"),
                "too many environment files",
            )
            .expected("at most 10")
            .found(c.environment_files.len().to_string());
        }
        if let Some(lp) = &c.linux_parameters {
            // "Accepted values are whole numbers between 0 and 100." (LinuxParameters.swappiness)
            if let Some(s) = lp.swappiness.filter(|s| !(0..=100).contains(s)) {
                r.error(
                    Code::Invalid,
                    at!(t, "containerDefinitions", i, "linuxParameters", "swappiness"),
                    "swappiness out of range",
                )
                .expected("0 to 100")
                .found(s.to_string());
            }
            // "Accepted values are 0 or any positive integer." (LinuxParameters.maxSwap)
            if let Some(s) = lp.max_swap.filter(|s| *s < 0) {
                r.error(
                    Code::Invalid,
                    at!(t, "containerDefinitions", i, "linuxParameters", "maxSwap"),
                    "maxSwap must not be negative",
                )
                .expected("0 or more")
                .found(s.to_string());
            }
        }
    }
    // "All tasks must have at least one essential container." (ContainerDefinition.essential)
    if !containers.is_empty() && !containers.iter().any(|c| c.is_essential()) {
        r.error(Code::Invalid, at!(t, "containerDefinitions"), "no container is essential")
            .expected("at least one container with essential true (the default)");
    }
}

fn check_ports(t: Task, i: usize, r: &mut Report) {
    let c = &t.model.container_definitions[i];
    let mut by_port: HashMap<(i64, &str), usize> = HashMap::new();
    for (j, p) in c.port_mappings.iter().enumerate() {
        for (field, v) in [("containerPort", p.container_port), ("hostPort", p.host_port)] {
            if let Some(v) = v.filter(|v| !(0..=65535).contains(v)) {
                r.error(
                    Code::Invalid,
                    at!(t, "containerDefinitions", i, "portMappings", j, field),
                    "port out of range",
                )
                .expected("0 to 65535")
                .found(v.to_string());
            }
        }
        // PortMapping.protocol's documentation says a port takes one protocol, but
        // ECS registers tcp and udp on one port (DNS 53, Consul 8301) and Docker
        // publishes both: a port is keyed by port and protocol. The same pair twice is a mistake.
        if let Some(port) = p.container_port {
            let proto = p.protocol.as_deref().unwrap_or("tcp");
            if let Some(first) = by_port.insert((port, proto), j) {
                r.error(
                    Code::Duplicate,
                    at!(t, "containerDefinitions", i, "portMappings", j),
                    format!("container port {port}/{proto} is mapped twice (also portMappings[{first}])"),
                )
                .expected("each container port and protocol once")
                .found(format!("{port}/{proto}"));
            }
        }
        // "The name can include up to 64 characters ... lowercase letters, numbers, underscores (_), and hyphens (-). The name can't start with a hyphen." (PortMapping.name)
        if let Some(name) = &p.name {
            let ok = !name.is_empty()
                && name.len() <= 64
                && !name.starts_with('-')
                && name
                    .chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_' || ch == '-');
            if !ok {
                r.error(
                    Code::Invalid,
                    at!(t, "containerDefinitions", i, "portMappings", j, "name"),
                    "invalid port mapping name",
                )
                .expected("up to 64 lowercase letters, numbers, _ and -, not starting with -")
                .found(format!("\"{name}\""));
            }
        }
        let unresolved = written!(t, "containerDefinitions", i, "portMappings", j, "containerPort")
            || written!(t, "containerDefinitions", i, "portMappings", j, "containerPortRange");
        if p.container_port.is_none() && p.container_port_range.is_none() && !unresolved {
            r.error(
                Code::Required,
                at!(t, "containerDefinitions", i, "portMappings", j, "containerPort"),
                "a port mapping needs containerPort (or containerPortRange)",
            )
            .expected("containerPort");
        }
    }
}

fn check_health(t: Task, i: usize, r: &mut Report) {
    let Some(h) = &t.model.container_definitions[i].health_check else {
        return;
    };
    let base = |f: &str| at!(t, "containerDefinitions", i, "healthCheck", f);
    // "The string array must start with CMD to run the command arguments directly, or CMD-SHELL" (HealthCheck.command)
    match h.command.first().map(String::as_str) {
        Some("CMD") | Some("CMD-SHELL") | Some("NONE") => {}
        // ECS registers it and Docker ignores a test that starts otherwise (it
        // logs it): the task runs with no health check, and so does the pod.
        first => {
            r.warning(
                Code::NotCarriedOver,
                base("command"),
                "a health check command that starts with neither CMD nor CMD-SHELL is ignored by Docker: no health check runs (no probe is created)",
            )
            .expected("[\"CMD\", ...] or [\"CMD-SHELL\", \"...\"]")
            .found(first.map_or("an empty list".into(), |f| format!("\"{f}\" first")));
        }
    }
    // HealthCheck.interval "between 5 and 300", timeout "between 2 and 60", retries "between 1 and 10", startPeriod "between 0 and 300".
    for (field, v, lo, hi) in [
        ("interval", h.interval, 5, 300),
        ("timeout", h.timeout, 2, 60),
        ("retries", h.retries, 1, 10),
        ("startPeriod", h.start_period, 0, 300),
    ] {
        if let Some(v) = v.filter(|v| !(lo..=hi).contains(v)) {
            r.error(Code::Invalid, base(field), format!("health check {field} out of range"))
                .expected(format!("{lo} to {hi}"))
                .found(v.to_string());
        }
    }
}

/// "If specifying a UID or GID, you must specify it as a positive integer." (ContainerDefinition.user)
fn check_user(t: Task, i: usize, r: &mut Report) {
    let Some(user) = &t.model.container_definitions[i].user else {
        return;
    };
    let parts: Vec<&str> = user.split(':').collect();
    let bad = parts.len() > 2 || parts.iter().any(|p| p.is_empty() || p.starts_with('-'));
    if bad {
        r.error(Code::Invalid, at!(t, "containerDefinitions", i, "user"), "invalid user")
            .expected("user, user:group, uid, uid:gid, user:gid or uid:group")
            .found(format!("\"{user}\""));
    }
}

/// "The name:internalName construct is analogous to name:alias in Docker links." (ContainerDefinition.links)
fn check_links_format(t: Task, i: usize, r: &mut Report) {
    for (j, link) in t.model.container_definitions[i].links.iter().enumerate() {
        let parts: Vec<&str> = link.split(':').collect();
        let ok = parts.len() <= 2
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'));
        if !ok {
            r.error(Code::Invalid, at!(t, "containerDefinitions", i, "links", j), "invalid link")
                .expected("name or name:alias")
                .found(format!("\"{link}\""));
        }
    }
}
