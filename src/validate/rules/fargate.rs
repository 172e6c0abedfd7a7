//! What Fargate forbids or requires (tasks whose requiresCompatibilities has FARGATE).
//! "A client exception is returned if the task definition doesn't validate against the compatibilities specified." (RegisterTaskDefinitionRequest.requiresCompatibilities)

use super::Task;
use crate::diag::{Code, Report};
use crate::ecs::units::{parse_task_cpu, parse_task_memory};
use crate::{at, written};

/// Valid Fargate cpu (units) -> memory (MiB) ranges, from RegisterTaskDefinitionRequest.memory:
/// (cpu, min, max, step); 256 CPU allows 512, 1024 and 2048 only.
const FARGATE_SIZES: &[(u64, u64, u64, u64)] = &[
    (256, 512, 2048, 512),
    (512, 1024, 4096, 1024),
    (1024, 2048, 8192, 1024),
    (2048, 4096, 16384, 1024),
    (4096, 8192, 30720, 1024),
    (8192, 16384, 61440, 4096),
    (16384, 32768, 122880, 8192),
];

fn fargate_memory_ok(cpu: u64, mem: u64) -> Option<bool> {
    let &(_, lo, hi, step) = FARGATE_SIZES.iter().find(|(c, ..)| *c == cpu)?;
    let ok = if cpu == 256 {
        [512, 1024, 2048].contains(&mem)
    } else {
        (lo..=hi).contains(&mem) && (mem - lo).is_multiple_of(step)
    };
    Some(ok)
}

pub fn check(t: Task, r: &mut Report) {
    let m = &t.model;
    let forbid = |r: &mut Report, path: String, what: &str| {
        r.error(Code::Invalid, path, format!("{what} is not supported on Fargate"))
            .expected("no such setting with requiresCompatibilities FARGATE");
    };
    // "For Amazon ECS tasks on Fargate, the awsvpc network mode is required."
    if m.network_mode() != "awsvpc" {
        r.error(Code::Invalid, at!(t, "networkMode"), "Fargate needs the awsvpc network mode")
            .expected("\"awsvpc\"")
            .found(format!("\"{}\"", m.network_mode()));
    }
    // cpu and memory: "This field is required for Fargate."
    let cpu = m.cpu.as_deref().and_then(parse_task_cpu);
    let mem = m.memory.as_deref().and_then(parse_task_memory);
    if m.cpu.is_none() && !written!(t, "cpu") {
        r.error(Code::Required, at!(t, "cpu"), "Fargate needs task-level cpu")
            .expected("one of 256, 512, 1024, 2048, 4096, 8192, 16384 (or \"1 vCPU\" ...)");
    }
    if m.memory.is_none() && !written!(t, "memory") {
        r.error(Code::Required, at!(t, "memory"), "Fargate needs task-level memory")
            .expected("MiB or GB valid for the task cpu");
    }
    if let (Some(c), Some(mm)) = (cpu, mem) {
        match fargate_memory_ok(c, mm) {
            None => {
                r.error(Code::Invalid, at!(t, "cpu"), "not a Fargate cpu size")
                    .expected("256, 512, 1024, 2048, 4096, 8192 or 16384 units")
                    .found(c.to_string());
            }
            Some(false) => {
                let &(_, lo, hi, step) = FARGATE_SIZES.iter().find(|(x, ..)| *x == c).expect("size exists");
                r.error(
                    Code::Invalid,
                    at!(t, "memory"),
                    format!("memory is not valid with {c} CPU units on Fargate"),
                )
                .expected(format!("{lo} to {hi} MiB in steps of {step}"))
                .found(format!("{mm} MiB"));
            }
            Some(true) => {}
        }
        // "The CPU units cannot be less than 1 vCPU when you use Windows containers on Fargate."
        if m.is_windows() && c < 1024 {
            r.error(Code::Invalid, at!(t, "cpu"), "Windows on Fargate needs at least 1 vCPU")
                .expected("1024 units or more")
                .found(c.to_string());
        }
    }
    // "On Fargate for Linux containers, the only valid value is task." (pidMode)
    if m.pid_mode.as_deref().is_some_and(|p| p != "task") {
        forbid(r, at!(t, "pidMode"), "pidMode host");
    }
    // "This parameter is not supported for Windows containers or tasks run on Fargate." (ipcMode)
    if m.ipc_mode.is_some() {
        forbid(r, at!(t, "ipcMode"), "ipcMode");
    }
    // "Task placement constraints aren't supported for tasks run on Fargate."
    if !m.placement_constraints.is_empty() {
        forbid(r, at!(t, "placementConstraints"), "placementConstraints");
    }
    for (i, v) in m.volumes.iter().enumerate() {
        // "If you're using the Fargate launch type, the sourcePath parameter is not supported."
        if v.host.as_ref().is_some_and(|h| h.source_path.is_some()) {
            forbid(r, at!(t, "volumes", i, "host", "sourcePath"), "a host sourcePath volume");
        }
        // "Docker volumes aren't supported by tasks run on Fargate."
        if v.docker_volume_configuration.is_some() {
            forbid(r, at!(t, "volumes", i, "dockerVolumeConfiguration"), "dockerVolumeConfiguration");
        }
    }
    for (i, c) in m.container_definitions.iter().enumerate() {
        let at_c = |f: &[&str]| {
            let mut segs = vec![crate::path::Seg::from("containerDefinitions"), crate::path::Seg::from(i)];
            segs.extend(f.iter().map(|s| crate::path::Seg::from(*s)));
            t.at(&segs)
        };
        if c.privileged == Some(true) {
            forbid(r, at_c(&["privileged"]), "privileged");
        }
        // "This field isn't valid for containers in tasks using the Fargate launch type." (dockerSecurityOptions)
        if !c.docker_security_options.is_empty() {
            forbid(r, at_c(&["dockerSecurityOptions"]), "dockerSecurityOptions");
        }
        if let Some(lp) = &c.linux_parameters {
            if !lp.devices.is_empty() {
                forbid(r, at_c(&["linuxParameters", "devices"]), "devices");
            }
            if lp.shared_memory_size.is_some() {
                forbid(r, at_c(&["linuxParameters", "sharedMemorySize"]), "sharedMemorySize");
            }
            if lp.max_swap.is_some() {
                forbid(r, at_c(&["linuxParameters", "maxSwap"]), "maxSwap");
            }
            if lp.swappiness.is_some() {
                forbid(r, at_c(&["linuxParameters", "swappiness"]), "swappiness");
            }
            // "Tasks launched on Fargate only support adding the SYS_PTRACE kernel capability."
            if let Some(caps) = &lp.capabilities {
                for (j, cap) in caps.add.iter().enumerate() {
                    if cap != "SYS_PTRACE" {
                        let path = t.at(&[
                            "containerDefinitions".into(),
                            i.into(),
                            "linuxParameters".into(),
                            "capabilities".into(),
                            "add".into(),
                            j.into(),
                        ]);
                        r.error(Code::Invalid, path, "Fargate only allows adding SYS_PTRACE")
                            .expected("\"SYS_PTRACE\"")
                            .found(format!("\"{cap}\""));
                    }
                }
            }
        }
        // "For tasks on Fargate, the supported log drivers are awslogs, splunk, and awsfirelens."
        if let Some(driver) = c.log_configuration.as_ref().and_then(|l| l.log_driver.as_deref()) {
            if !["awslogs", "splunk", "awsfirelens"].contains(&driver) {
                r.error(
                    Code::Invalid,
                    at_c(&["logConfiguration", "logDriver"]),
                    "log driver not supported on Fargate",
                )
                .expected("awslogs, splunk or awsfirelens")
                .found(format!("\"{driver}\""));
            }
        }
        // startTimeout / stopTimeout: "The valid values for Fargate are 2-120 seconds."
        for (field, v) in [("startTimeout", c.start_timeout), ("stopTimeout", c.stop_timeout)] {
            if let Some(v) = v.filter(|v| !(2..=120).contains(v)) {
                r.error(Code::Invalid, at_c(&[field]), format!("{field} out of range on Fargate"))
                    .expected("2 to 120 seconds")
                    .found(v.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fargate_memory_ok;

    #[test]
    fn fargate_size_table() {
        assert_eq!(fargate_memory_ok(256, 512), Some(true));
        assert_eq!(fargate_memory_ok(256, 1536), Some(false));
        assert_eq!(fargate_memory_ok(1024, 3072), Some(true));
        assert_eq!(fargate_memory_ok(4096, 30720), Some(true));
        assert_eq!(fargate_memory_ok(8192, 20480), Some(true));
        assert_eq!(fargate_memory_ok(8192, 18432), Some(false));
        assert_eq!(fargate_memory_ok(300, 1024), None);
    }
}
