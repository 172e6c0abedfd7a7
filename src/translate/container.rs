//! One ECS container as a Kubernetes container: entryPoint -> command,
//! command -> args (Docker ENTRYPOINT/CMD), env and secrets, ports,
//! resources, security context, mounts.

use super::links::{link_env, parse_link};
use super::resources::{cpu_units, mebibytes};
use super::{int32, k8s_container_name, Ctx};
use crate::at;
use crate::diag::Code;
use crate::ecs::model::ContainerDefinition;
use k8s_openapi::api::core::v1::{
    AppArmorProfile, Capabilities, Container, ContainerPort, EnvVar, EnvVarSource, ResourceRequirements, SeccompProfile, SecretKeySelector,
    SecurityContext, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use std::collections::BTreeMap;

/// The Secret that holds a task's `secrets`, key = variable name.
pub fn secret_name(object: &str) -> String {
    format!("{object}-secrets")
}

pub fn build(ctx: &mut Ctx, i: usize, mounts: Vec<VolumeMount>, host_network: bool) -> Container {
    let task = ctx.task;
    let c = &task.model.container_definitions[i];
    let name = k8s_container_name(c.name.as_deref().unwrap_or_default());
    Container {
        name,
        image: c.image.clone(),
        command: non_empty(&c.entry_point),
        args: non_empty(&c.command),
        working_dir: c.working_directory.clone(),
        stdin: c.interactive.filter(|b| *b),
        tty: c.pseudo_terminal.filter(|b| *b),
        env: env(ctx, i),
        ports: ports(ctx, i, host_network),
        resources: resources(c),
        security_context: security(ctx, i),
        volume_mounts: (!mounts.is_empty()).then_some(mounts),
        ..Default::default()
    }
}

/// The Secret key a variable's value is read from: the variable's name when
/// Kubernetes can hold it as a key (`[-._a-zA-Z0-9]`, at most 253), else that
/// name with every other character as `_` and a hash of the original, so two
/// names never share a key (`$$$DB$$$` -> `___DB___-9f3c1a2b`).
pub fn secret_key(var: &str) -> String {
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
    if !var.is_empty() && var.len() <= 253 && var.chars().all(valid) && var != "." && var != ".." {
        return var.to_string();
    }
    let cleaned: String = var.chars().map(|c| if valid(c) { c } else { '_' }).take(240).collect();
    let hash = super::fnv1a_32(var);
    format!("{cleaned}-{hash:08x}")
}

fn non_empty(v: &[String]) -> Option<Vec<String>> {
    (!v.is_empty()).then(|| v.to_vec())
}

/// Own environment, then Docker link variables it does not set itself, then secrets.
fn env(ctx: &mut Ctx, i: usize) -> Option<Vec<EnvVar>> {
    let task = ctx.task;
    let containers = &task.model.container_definitions;
    let c = &containers[i];
    let mut vars: Vec<EnvVar> = c
        .environment
        .iter()
        .filter_map(|kv| {
            Some(EnvVar {
                name: kv.name.clone()?,
                value: Some(kv.value.clone().unwrap_or_default()),
                value_from: None,
            })
        })
        .collect();
    // Names already set: the container's own win, then the first link's.
    let mut taken: std::collections::HashSet<String> = vars.iter().map(|v| v.name.clone()).collect();
    let linking = c.name.as_deref().unwrap_or_default();
    for link in &c.links {
        let (target, alias) = parse_link(link);
        if let Some(linked) = containers.iter().find(|o| o.name.as_deref() == Some(target)) {
            for (name, value) in link_env(linking, linked, alias) {
                if taken.insert(name.clone()) {
                    vars.push(EnvVar {
                        name,
                        value: Some(value),
                        value_from: None,
                    });
                }
            }
        }
    }
    if !c.secrets.is_empty() {
        let secret = secret_name(&ctx.meta.name);
        let keys: Vec<String> = c.secrets.iter().filter_map(|s| s.name.as_deref()).map(secret_key).collect();
        if !ctx.secrets_external {
            ctx.warn(
            Code::NotCarriedOver,
            at!(task, "containerDefinitions", i, "secrets"),
            format!("secrets are read from the Kubernetes Secret \"{secret}\" (keys: {}); create it with the values of the SSM / Secrets Manager ARNs", keys.join(", ")),
            );
        }
        for s in &c.secrets {
            let Some(var) = s.name.clone() else { continue };
            vars.push(EnvVar {
                value: None,
                value_from: Some(EnvVarSource {
                    secret_key_ref: Some(SecretKeySelector {
                        name: secret.clone(),
                        key: secret_key(&var),
                        optional: None,
                    }),
                    ..Default::default()
                }),
                name: var,
            });
        }
    }
    (!vars.is_empty()).then_some(vars)
}

/// Container port names must be IANA service names: at most 15 characters.
fn iana_name(name: &str) -> Option<String> {
    let n = name.to_ascii_lowercase().replace('_', "-");
    let ok = !n.is_empty()
        && n.len() <= 15
        && n.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && n.chars().any(|c| c.is_ascii_lowercase())
        && !n.starts_with('-')
        && !n.ends_with('-')
        && !n.contains("--");
    ok.then_some(n)
}

fn ports(ctx: &mut Ctx, i: usize, host_network: bool) -> Option<Vec<ContainerPort>> {
    let task = ctx.task;
    let c = &task.model.container_definitions[i];
    let mut out: Vec<ContainerPort> = Vec::new();
    for (j, p) in c.port_mappings.iter().enumerate() {
        let Some(port) = p.container_port else {
            ctx.warn(
                Code::NotCarriedOver,
                at!(task, "containerDefinitions", i, "portMappings", j, "containerPortRange"),
                "port ranges have no Kubernetes container-port equivalent; not declared",
            );
            continue;
        };
        if p.host_port.is_some_and(|h| h != 0) && !host_network {
            ctx.warn(
                Code::NotCarriedOver,
                at!(task, "containerDefinitions", i, "portMappings", j, "hostPort"),
                "hostPort is not copied: the pod's Service exposes the port (only host network mode binds host ports)",
            );
        }
        let protocol = p.protocol.as_deref().unwrap_or("tcp").to_ascii_uppercase();
        if out
            .iter()
            .any(|o| o.container_port == int32(port) && o.protocol.as_deref() == Some(&protocol))
        {
            continue;
        }
        let name = p.name.as_deref().and_then(|n| {
            let valid = iana_name(n);
            if valid.is_none() {
                ctx.warn(
                    Code::NotCarriedOver,
                    at!(task, "containerDefinitions", i, "portMappings", j, "name"),
                    format!("port name \"{n}\" is longer than the 15 characters Kubernetes allows; the port is unnamed"),
                );
            }
            valid
        });
        out.push(ContainerPort {
            container_port: int32(port),
            protocol: Some(protocol),
            name,
            ..Default::default()
        });
    }
    (!out.is_empty()).then_some(out)
}

/// cpu (units) -> requests.cpu; memory (hard limit) -> limits.memory and, with no
/// memoryReservation, requests.memory; memoryReservation -> requests.memory; GPUs -> nvidia.com/gpu.
fn resources(c: &ContainerDefinition) -> Option<ResourceRequirements> {
    let mut requests: BTreeMap<String, Quantity> = BTreeMap::new();
    let mut limits: BTreeMap<String, Quantity> = BTreeMap::new();
    if let Some(cpu) = c.cpu.filter(|c| *c > 0) {
        requests.insert("cpu".into(), cpu_units(u64::try_from(cpu).unwrap_or(0)));
    }
    if let Some(mem) = c.memory.filter(|m| *m > 0) {
        limits.insert("memory".into(), mebibytes(u64::try_from(mem).unwrap_or(0)));
    }
    if let Some(req) = c.memory_reservation.filter(|m| *m > 0).or(c.memory.filter(|m| *m > 0)) {
        requests.insert("memory".into(), mebibytes(u64::try_from(req).unwrap_or(0)));
    }
    for r in &c.resource_requirements {
        if r.kind.as_deref() == Some("GPU") {
            if let Some(v) = &r.value {
                limits.insert("nvidia.com/gpu".into(), Quantity(v.clone()));
            }
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return None;
    }
    Some(ResourceRequirements {
        requests: (!requests.is_empty()).then_some(requests),
        limits: (!limits.is_empty()).then_some(limits),
        ..Default::default()
    })
}

/// user `uid[:gid]` -> runAsUser/runAsGroup; privileged, read-only root, capabilities.
fn security(ctx: &mut Ctx, i: usize) -> Option<SecurityContext> {
    let task = ctx.task;
    let c = &task.model.container_definitions[i];
    let mut sc = SecurityContext {
        privileged: c.privileged.filter(|p| *p),
        read_only_root_filesystem: c.readonly_root_filesystem.filter(|r| *r),
        ..Default::default()
    };
    if let Some(user) = &c.user {
        let (u, g) = user.split_once(':').map_or((user.as_str(), None), |(u, g)| (u, Some(g)));
        // A uid other than 0 is a non-root user: said so, as Pod Security's
        // `restricted` level wants it said.
        match (u.parse::<i64>(), g.map(str::parse::<i64>)) {
            (Ok(uid), None) => {
                sc.run_as_user = Some(uid);
                sc.run_as_non_root = (uid != 0).then_some(true);
            }
            (Ok(uid), Some(Ok(gid))) => {
                sc.run_as_user = Some(uid);
                sc.run_as_group = Some(gid);
                sc.run_as_non_root = (uid != 0).then_some(true);
            }
            _ => ctx.warn(
                Code::NotCarriedOver,
                at!(task, "containerDefinitions", i, "user"),
                format!("user \"{user}\" is a name: Kubernetes needs numeric ids, so the image's default user runs"),
            ),
        }
    }
    if let Some(caps) = c.linux_parameters.as_ref().and_then(|l| l.capabilities.as_ref()) {
        if !caps.add.is_empty() || !caps.drop.is_empty() {
            sc.capabilities = Some(Capabilities {
                add: (!caps.add.is_empty()).then(|| caps.add.clone()),
                drop: (!caps.drop.is_empty()).then(|| caps.drop.clone()),
            });
        }
    }
    docker_security_options(ctx, i, &mut sc);
    (sc != SecurityContext::default()).then_some(sc)
}

/// dockerSecurityOptions: `no-new-privileges` -> allowPrivilegeEscalation
/// false; `seccomp:unconfined` and `apparmor:<profile>` -> the container's
/// profiles (Docker's default seccomp profile is the pod's RuntimeDefault).
/// SELinux labels and custom seccomp files need the node's files: warned.
fn docker_security_options(ctx: &mut Ctx, i: usize, sc: &mut SecurityContext) {
    let task = ctx.task;
    for (j, option) in task.model.container_definitions[i].docker_security_options.iter().enumerate() {
        let (key, value) = option.split_once([':', '=']).map_or((option.as_str(), ""), |(k, v)| (k, v));
        match (key, value) {
            ("no-new-privileges", "" | "true") => sc.allow_privilege_escalation = Some(false),
            ("no-new-privileges", "false") => {}
            ("seccomp", "unconfined") => {
                sc.seccomp_profile = Some(SeccompProfile {
                    type_: "Unconfined".into(),
                    localhost_profile: None,
                })
            }
            ("apparmor", "unconfined") => {
                sc.app_armor_profile = Some(AppArmorProfile {
                    type_: "Unconfined".into(),
                    localhost_profile: None,
                })
            }
            ("apparmor", profile) if !profile.is_empty() => {
                sc.app_armor_profile = Some(AppArmorProfile {
                    type_: "Localhost".into(),
                    localhost_profile: Some(profile.to_string()),
                })
            }
            _ => ctx.warn(
                Code::NotCarriedOver,
                at!(task, "containerDefinitions", i, "dockerSecurityOptions", j),
                format!("Docker security option {} has no Kubernetes equivalent here (SELinux labels and seccomp profile files belong to the node); not carried over", crate::diag::show(&serde_json::json!(option))),
            ),
        }
    }
}
