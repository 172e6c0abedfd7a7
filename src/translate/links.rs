//! Docker links (bridge mode) emulated inside one pod. Containers of a pod
//! share localhost, so every link name and alias resolves to 127.0.0.1, and
//! the linking container gets Docker's legacy link variables:
//! `<ALIAS>_NAME`, `<ALIAS>_ENV_<VAR>` for each variable the linked container
//! declares, and `<ALIAS>_PORT`, `<ALIAS>_PORT_<port>_<PROTO>` (+ `_ADDR`,
//! `_PORT`, `_PROTO`) for its port mappings. Images written for links (the
//! classic wordpress image reads `MYSQL_ENV_MYSQL_ROOT_PASSWORD`) work as is.

use crate::ecs::model::ContainerDefinition;

/// `mysql` or `mysql:db` -> (container, alias).
pub fn parse_link(link: &str) -> (&str, &str) {
    match link.split_once(':') {
        Some((name, alias)) => (name, alias),
        None => (link, link),
    }
}

fn env_prefix(alias: &str) -> String {
    alias
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' })
        .collect()
}

/// The link variables for `linking` linking to `linked` under `alias`, in Docker's order.
pub fn link_env(linking: &str, linked: &ContainerDefinition, alias: &str) -> Vec<(String, String)> {
    let p = env_prefix(alias);
    let mut vars = vec![(format!("{p}_NAME"), format!("/{linking}/{alias}"))];
    let mut ports: Vec<(i64, String)> = linked
        .port_mappings
        .iter()
        .filter_map(|m| {
            m.container_port
                .map(|port| (port, m.protocol.clone().unwrap_or_else(|| "tcp".into())))
        })
        .collect();
    ports.sort();
    ports.dedup();
    if let Some((port, proto)) = ports.first() {
        vars.push((format!("{p}_PORT"), format!("{proto}://127.0.0.1:{port}")));
    }
    for (port, proto) in &ports {
        let base = format!("{p}_PORT_{port}_{}", proto.to_ascii_uppercase());
        vars.push((base.clone(), format!("{proto}://127.0.0.1:{port}")));
        vars.push((format!("{base}_ADDR"), "127.0.0.1".into()));
        vars.push((format!("{base}_PORT"), port.to_string()));
        vars.push((format!("{base}_PROTO"), proto.clone()));
    }
    for kv in &linked.environment {
        if let (Some(name), Some(value)) = (&kv.name, &kv.value) {
            vars.push((format!("{p}_ENV_{name}"), value.clone()));
        }
    }
    vars
}

/// How many variables [`link_env`] makes for one link to `linked`, without making them.
pub fn link_variable_count(linked: &ContainerDefinition) -> usize {
    let mut ports: Vec<(i64, &str)> = linked
        .port_mappings
        .iter()
        .filter_map(|m| m.container_port.map(|p| (p, m.protocol.as_deref().unwrap_or("tcp"))))
        .collect();
    ports.sort();
    ports.dedup();
    let env = linked
        .environment
        .iter()
        .filter(|kv| kv.name.is_some() && kv.value.is_some())
        .count();
    let port_vars = if ports.is_empty() { 0 } else { 1 + 4 * ports.len() };
    1 + port_vars + env
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecs::model::{KeyValuePair, PortMapping};

    #[test]
    fn docker_link_variables() {
        let mysql = ContainerDefinition {
            name: Some("mysql".into()),
            environment: vec![KeyValuePair {
                name: Some("MYSQL_ROOT_PASSWORD".into()),
                value: Some("pw".into()),
            }],
            port_mappings: vec![PortMapping {
                container_port: Some(3306),
                ..Default::default()
            }],
            ..Default::default()
        };
        let vars = link_env("wordpress", &mysql, "db-1");
        let get = |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("DB_1_NAME"), Some("/wordpress/db-1"));
        assert_eq!(get("DB_1_PORT"), Some("tcp://127.0.0.1:3306"));
        assert_eq!(get("DB_1_PORT_3306_TCP_ADDR"), Some("127.0.0.1"));
        assert_eq!(get("DB_1_PORT_3306_TCP_PORT"), Some("3306"));
        assert_eq!(get("DB_1_PORT_3306_TCP_PROTO"), Some("tcp"));
        assert_eq!(get("DB_1_ENV_MYSQL_ROOT_PASSWORD"), Some("pw"));
        assert_eq!(link_variable_count(&mysql), vars.len());
        assert_eq!(parse_link("mysql:db"), ("mysql", "db"));
        assert_eq!(parse_link("mysql"), ("mysql", "mysql"));
    }
}
