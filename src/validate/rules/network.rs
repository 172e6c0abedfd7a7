//! What each network mode allows.

use super::Task;
use crate::at;
use crate::diag::{Code, Report};

pub fn check(t: Task, r: &mut Report) {
    let mode = t.model.network_mode();
    for (i, c) in t.model.container_definitions.iter().enumerate() {
        // "If the network mode of a task definition is set to none, then you can't specify port mappings." (ContainerDefinition.portMappings)
        if mode == "none" && !c.port_mappings.is_empty() {
            r.error(
                Code::Invalid,
                at!(t, "containerDefinitions", i, "portMappings"),
                "network mode none allows no port mappings",
            )
            .expected("no portMappings")
            .found(format!("{} mappings", c.port_mappings.len()));
        }
        // "The hostPort can be left blank or it must be the same value as the containerPort." (PortMapping.hostPort, awsvpc and host modes)
        if mode == "awsvpc" || mode == "host" {
            for (j, p) in c.port_mappings.iter().enumerate() {
                if let (Some(h), Some(cp)) = (p.host_port, p.container_port) {
                    if h != cp && !(mode == "awsvpc" && h == 0) {
                        r.error(
                            Code::Invalid,
                            at!(t, "containerDefinitions", i, "portMappings", j, "hostPort"),
                            format!("in {mode} network mode hostPort must equal containerPort or be absent"),
                        )
                        .expected(format!("{cp} or no hostPort"))
                        .found(h.to_string());
                    }
                }
            }
        }
        // "This parameter is only supported if the network mode of a task definition is bridge." (ContainerDefinition.links)
        if !c.links.is_empty() && mode != "bridge" {
            r.error(
                Code::Invalid,
                at!(t, "containerDefinitions", i, "links"),
                format!("links need the bridge network mode, this task uses {mode}"),
            )
            .expected("networkMode bridge (the default) or no links")
            .found(mode.to_string());
        }
        if mode == "awsvpc" {
            // "The hostname parameter is not supported if you're using the awsvpc network mode." (ContainerDefinition.hostname)
            if c.hostname.is_some() {
                r.error(
                    Code::Invalid,
                    at!(t, "containerDefinitions", i, "hostname"),
                    "hostname is not supported in the awsvpc network mode",
                )
                .expected("no hostname");
            }
            // "This parameter isn't supported for Windows containers or tasks that use the awsvpc network mode." (ContainerDefinition.extraHosts)
            if !c.extra_hosts.is_empty() {
                r.error(
                    Code::Invalid,
                    at!(t, "containerDefinitions", i, "extraHosts"),
                    "extraHosts is not supported in the awsvpc network mode",
                )
                .expected("no extraHosts");
            }
        }
    }
}
