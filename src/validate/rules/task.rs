//! Task-level rules: cpu/memory, and their relation to the containers.

use super::Task;
use crate::diag::{Code, Report};
use crate::ecs::units::{parse_task_cpu, parse_task_memory};
use crate::{at, written};

pub fn check(t: Task, r: &mut Report) {
    let m = &t.model;
    // "Supported values are between 128 CPU units (0.125 vCPUs) and 196608 CPU units (192 vCPUs)." (RegisterTaskDefinitionRequest.cpu)
    let cpu = m.cpu.as_deref().map(|s| (s, parse_task_cpu(s)));
    match cpu {
        Some((s, None)) => {
            r.error(Code::Invalid, at!(t, "cpu"), "task cpu must be CPU units or vCPUs")
                .expected("e.g. \"1024\" or \"1 vCPU\"")
                .found(format!("\"{s}\""));
        }
        Some((_, Some(u))) if !(128..=196_608).contains(&u) => {
            r.error(Code::Invalid, at!(t, "cpu"), "task cpu out of range")
                .expected("128 to 196608 CPU units")
                .found(u.to_string());
        }
        _ => {}
    }
    let memory = m.memory.as_deref().map(|s| (s, parse_task_memory(s)));
    if let Some((s, None)) = memory {
        r.error(Code::Invalid, at!(t, "memory"), "task memory must be MiB or GB")
            .expected("e.g. \"2048\" or \"2 GB\"")
            .found(format!("\"{s}\""));
    }
    let task_memory = memory.and_then(|(_, v)| v);
    let task_cpu = cpu.and_then(|(_, v)| v);

    // What RegisterTaskDefinition enforces ("The sum of all container
    // 'memoryReservation' values cannot be greater than the value of the task
    // 'memory'"): reservations only. A container with just a hard `memory`
    // may use up to the task's memory, so hard limits do not add up.
    if let Some(limit) = task_memory {
        let total = saturating_sum(m.container_definitions.iter().map(|c| c.memory_reservation));
        if total > limit {
            r.error(
                Code::Invalid,
                at!(t, "memory"),
                "the containers' memoryReservation values add up to more than the task's memory",
            )
            .expected(format!("reservations totalling at most {limit} MiB"))
            .found(format!("{total} MiB"));
        }
        for (i, c) in m.container_definitions.iter().enumerate() {
            if let Some(hard) = c.memory.filter(|h| u64::try_from(*h).is_ok_and(|h| h > limit)) {
                r.error(
                    Code::Invalid,
                    at!(t, "containerDefinitions", i, "memory"),
                    "a container's memory limit is above the task's memory",
                )
                .expected(format!("at most the task's {limit} MiB"))
                .found(format!("{hard} MiB"));
            }
        }
    } else if !m.is_fargate() && !written!(t, "memory") {
        // "If a task-level memory value is not specified, you must specify a non-zero integer for one or both of memory or memoryReservation in a container definition." (ContainerDefinition.memory)
        for (i, c) in m.container_definitions.iter().enumerate() {
            let unresolved = (c.memory.is_none() && written!(t, "containerDefinitions", i, "memory"))
                || (c.memory_reservation.is_none() && written!(t, "containerDefinitions", i, "memoryReservation"));
            if c.memory.unwrap_or(0) == 0 && c.memory_reservation.unwrap_or(0) == 0 && !unresolved {
                // ECS on EC2 refuses such a task at registration or launch; Kubernetes runs
                // it without a memory limit, so this is a warning here.
                r.warning(Code::NotCarriedOver, at!(t, "containerDefinitions", i, "memory"), "without task-level memory, ECS on EC2 needs memory or memoryReservation on each container; Kubernetes will run it without a memory limit")
                    .expected("a non-zero memory or memoryReservation (MiB)");
            }
        }
    }
    // "the total amount of CPU reserved for all containers within a task be lower than the task-level cpu value." (ContainerDefinition.cpu)
    if let Some(limit) = task_cpu {
        let total = saturating_sum(m.container_definitions.iter().map(|c| c.cpu));
        if total > limit {
            r.error(Code::Invalid, at!(t, "cpu"), "the containers reserve more CPU than the task has")
                .expected(format!("container cpu totalling at most {limit} units"))
                .found(format!("{total} units"));
        }
    }
    // "Container definitions per task definition: 10" (Amazon ECS service quotas,
    // https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-quotas.html; not adjustable).
    if m.container_definitions.len() > MAX_CONTAINERS {
        r.error(
            Code::Invalid,
            at!(t, "containerDefinitions", MAX_CONTAINERS),
            format!("a task definition holds at most {MAX_CONTAINERS} containers (an ECS service quota)"),
        )
        .expected(format!("at most {MAX_CONTAINERS} container definitions"))
        .found(m.container_definitions.len().to_string());
    }
    // "You can specify a maximum of 10 constraints for each task." (RegisterTaskDefinitionRequest.placementConstraints)
    if m.placement_constraints.len() > 10 {
        r.error(Code::Invalid, at!(t, "placementConstraints"), "too many placement constraints")
            .expected("at most 10")
            .found(m.placement_constraints.len().to_string());
    }
    // "The minimum supported value is 21 GiB and the maximum supported value is 200 GiB." (EphemeralStorage.sizeInGiB)
    if let Some(size) = m.ephemeral_storage.as_ref().and_then(|e| e.size_in_gib) {
        if !(21..=200).contains(&size) {
            r.error(
                Code::Invalid,
                at!(t, "ephemeralStorage", "sizeInGiB"),
                "ephemeral storage out of range",
            )
            .expected("21 to 200 GiB")
            .found(size.to_string());
        }
    }
    if let Some(family) = &m.family {
        check_ecs_name(r, at!(t, "family"), family, "family");
    }
    // "Each task definition revision may only have one volume configured at launch" (Volume.configuredAtLaunch)
    let at_launch = m.volumes.iter().filter(|v| v.configured_at_launch == Some(true)).count();
    if at_launch > 1 {
        r.error(Code::Invalid, at!(t, "volumes"), "only one volume may be configured at launch")
            .expected("at most 1")
            .found(at_launch.to_string());
    }
    for (i, v) in m.volumes.iter().enumerate() {
        if let Some(name) = &v.name {
            check_ecs_name(r, at!(t, "volumes", i, "name"), name, "volume name");
        }
    }
}

/// Containers per task definition (ECS service quotas).
pub const MAX_CONTAINERS: usize = 10;

/// Non-negative values added up, without wrapping (negative ones are the structural check's).
fn saturating_sum(values: impl Iterator<Item = Option<i64>>) -> u64 {
    values
        .flatten()
        .fold(0u64, |sum, v| sum.saturating_add(u64::try_from(v).unwrap_or(0)))
}

/// Whether ECS takes `name` as a family, container, volume or service name.
pub fn is_ecs_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 255 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// "Up to 255 letters (uppercase and lowercase), numbers, underscores, and hyphens are allowed." (family, ContainerDefinition.name, Volume.name)
pub fn check_ecs_name(r: &mut Report, path: String, name: &str, what: &str) {
    if !is_ecs_name(name) {
        r.error(Code::Invalid, path, format!("invalid {what}"))
            .expected("1 to 255 letters, numbers, underscores and hyphens")
            .found(format!("\"{name}\""));
    }
}
