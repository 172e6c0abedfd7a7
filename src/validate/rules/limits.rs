//! Further limits the model's documentation states: capability names, log
//! driver options, credential specs, volume configurations, placement and
//! capacity-provider limits.

use super::{Svc, Task};
use crate::at;
use crate::diag::{Code, Report};
use crate::validate::structure::did_you_mean;
use serde_json::Value;

/// KernelCapabilities.add/drop: "Valid values: "ALL" | "AUDIT_CONTROL" | ... | "WAKE_ALARM""
const CAPABILITIES: &[&str] = &[
    "ALL",
    "AUDIT_CONTROL",
    "AUDIT_WRITE",
    "BLOCK_SUSPEND",
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "IPC_LOCK",
    "IPC_OWNER",
    "KILL",
    "LEASE",
    "LINUX_IMMUTABLE",
    "MAC_ADMIN",
    "MAC_OVERRIDE",
    "MKNOD",
    "NET_ADMIN",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_RAW",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_CHROOT",
    "SYS_MODULE",
    "SYS_NICE",
    "SYS_PACCT",
    "SYS_PTRACE",
    "SYS_RAWIO",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "SYSLOG",
    "WAKE_ALARM",
];

pub fn check_task(t: Task, r: &mut Report) {
    for (i, c) in t.model.container_definitions.iter().enumerate() {
        if let Some(caps) = c.linux_parameters.as_ref().and_then(|l| l.capabilities.as_ref()) {
            for (list, names) in [("add", &caps.add), ("drop", &caps.drop)] {
                for (j, cap) in names.iter().enumerate().filter(|(_, c)| !CAPABILITIES.contains(&c.as_str())) {
                    let hint = did_you_mean(cap.trim_start_matches("CAP_"), CAPABILITIES.iter().copied())
                        .map(|s| format!("; did you mean \"{s}\"?"))
                        .unwrap_or_default();
                    let path = t.at(&[
                        "containerDefinitions".into(),
                        i.into(),
                        "linuxParameters".into(),
                        "capabilities".into(),
                        list.into(),
                        j.into(),
                    ]);
                    r.error(Code::NotSupported, path, format!("unknown Linux capability{hint}"))
                        .expected("a capability name without CAP_, e.g. \"NET_ADMIN\"")
                        .found(format!("\"{cap}\""));
                }
            }
        }
        // "The maximum number of ARNs is 1." (ContainerDefinition.credentialSpecs)
        if c.credential_specs.len() > 1 {
            r.error(
                Code::Invalid,
                at!(t, "containerDefinitions", i, "credentialSpecs"),
                "at most one credential spec",
            )
            .expected("1 ARN")
            .found(c.credential_specs.len().to_string());
        }
        if let Some(log) = c.log_configuration.as_ref().filter(|l| l.log_driver.as_deref() == Some("awslogs")) {
            let opts = &log.options;
            let path = || at!(t, "containerDefinitions", i, "logConfiguration", "options");
            // "You cannot configure both the awslogs-datetime-format and awslogs-multiline-pattern options."
            if opts.contains_key("awslogs-datetime-format") && opts.contains_key("awslogs-multiline-pattern") {
                r.error(
                    Code::Invalid,
                    path(),
                    "awslogs-datetime-format and awslogs-multiline-pattern exclude each other",
                )
                .expected("only one of them");
            }
            // awslogs-stream-prefix: "Required: Yes, when using Fargate."
            let prefix = crate::written!(t, "containerDefinitions", i, "logConfiguration", "options", "awslogs-stream-prefix");
            if t.model.is_fargate() && !prefix {
                r.error(Code::Required, path(), "the awslogs driver on Fargate needs awslogs-stream-prefix")
                    .expected("options.awslogs-stream-prefix");
            }
        }
    }
    for (i, v) in t.model.volumes.iter().enumerate() {
        // A volume is one of host, docker, EFS, FSx, S3 Files or configured at launch (Volume).
        let kinds = [
            v.host.is_some(),
            v.docker_volume_configuration.is_some(),
            v.efs_volume_configuration.is_some(),
            v.fsx_windows_file_server_volume_configuration.is_some(),
            v.configured_at_launch == Some(true),
        ];
        if kinds.iter().filter(|k| **k).count() > 1 {
            r.error(Code::Invalid, at!(t, "volumes", i), "a volume has one configuration").expected("one of host, dockerVolumeConfiguration, efsVolumeConfiguration, fsxWindowsFileServerVolumeConfiguration, configuredAtLaunch");
        }
        if let Some(efs) = &v.efs_volume_configuration {
            // "If an access point is used, transit encryption must be on" / iam "ENABLED ... transit encryption must be turned on"
            let auth = efs.get("authorizationConfig");
            let needs_tls = auth.and_then(|a| a.get("accessPointId")).is_some()
                || auth.and_then(|a| a.get("iam")).and_then(Value::as_str) == Some("ENABLED");
            if needs_tls && efs.get("transitEncryption").and_then(Value::as_str) != Some("ENABLED") {
                r.error(
                    Code::Invalid,
                    at!(t, "volumes", i, "efsVolumeConfiguration", "transitEncryption"),
                    "an EFS access point or IAM authorization needs transit encryption",
                )
                .expected("\"ENABLED\"")
                .found(efs.get("transitEncryption").map_or("nothing".into(), |v| v.to_string()));
            }
        }
    }
    // "The expression can have a maximum length of 2000 characters." (PlacementConstraint.expression)
    for (i, c) in t.model.placement_constraints.iter().enumerate() {
        if c.expression.as_ref().is_some_and(|e| e.len() > 2000) {
            r.error(
                Code::Invalid,
                at!(t, "placementConstraints", i, "expression"),
                "placement expression too long",
            )
            .expected("at most 2000 characters");
        }
    }
}

pub fn check_service(s: Svc, r: &mut Report) {
    let m = &s.model;
    // "A capacity provider strategy can contain a maximum of 20 capacity providers."
    if m.capacity_provider_strategy.len() > 20 {
        r.error(Code::Invalid, at!(s, "capacityProviderStrategy"), "too many capacity providers")
            .expected("at most 20")
            .found(m.capacity_provider_strategy.len().to_string());
    }
    // "Only one capacity provider in a capacity provider strategy can have a base defined."
    let bases = m
        .capacity_provider_strategy
        .iter()
        .filter(|c| c.get("base").and_then(Value::as_i64).is_some_and(|b| b > 0))
        .count();
    if bases > 1 {
        r.error(
            Code::Invalid,
            at!(s, "capacityProviderStrategy"),
            "only one capacity provider may have a base",
        )
        .expected("at most one base")
        .found(format!("{bases} bases"));
    }
    // "There's a limit of 16 subnets" / "a limit of 5 security groups" (AwsVpcConfiguration)
    if let Some(vpc) = m.network_configuration.as_ref().and_then(|n| n.get("awsvpcConfiguration")) {
        for (field, max) in [("subnets", 16), ("securityGroups", 5)] {
            let n = vpc.get(field).and_then(Value::as_array).map_or(0, Vec::len);
            if n > max {
                r.error(
                    Code::Invalid,
                    at!(s, "networkConfiguration", "awsvpcConfiguration", field),
                    format!("too many {field}"),
                )
                .expected(format!("at most {max}"))
                .found(n.to_string());
            }
        }
    }
}
