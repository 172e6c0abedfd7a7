//! Settings ECS documents as "not supported for Windows containers". The docs
//! do not say whether registration rejects them, so these are warnings.

use super::Task;
use crate::at;
use crate::diag::{Code, Report};

pub fn check(t: Task, r: &mut Report) {
    let warn = |r: &mut Report, path: String, what: &str| {
        r.warning(
            Code::NotCarriedOver,
            path,
            format!("{what} is not supported for Windows containers; ECS ignores it"),
        );
    };
    if t.model.pid_mode.is_some() {
        warn(r, at!(t, "pidMode"), "pidMode");
    }
    if t.model.ipc_mode.is_some() {
        warn(r, at!(t, "ipcMode"), "ipcMode");
    }
    for (i, c) in t.model.container_definitions.iter().enumerate() {
        let fields: [(&str, bool); 9] = [
            ("privileged", c.privileged.is_some()),
            ("links", !c.links.is_empty()),
            ("user", c.user.is_some()),
            ("readonlyRootFilesystem", c.readonly_root_filesystem.is_some()),
            ("disableNetworking", c.disable_networking.is_some()),
            ("dnsServers", !c.dns_servers.is_empty()),
            ("linuxParameters", c.linux_parameters.is_some()),
            ("ulimits", !c.ulimits.is_empty()),
            ("systemControls", !c.system_controls.is_empty()),
        ];
        for (field, set) in fields {
            if set {
                warn(r, at!(t, "containerDefinitions", i, field), field);
            }
        }
    }
}
