//! The pod template: containers in ECS's start order (dependsOn), host
//! aliases for links and extraHosts, DNS, namespaces, sysctls, pod-level
//! resources from task cpu/memory, platform, credentials.

use super::links::parse_link;
use super::probes::{healthy_gate, probes};
use super::resources::{cpu_units, gibibytes, mebibytes, mebibytes_of};
use super::{container, placement, volumes, Ctx};
use crate::at;
use crate::diag::Code;
use crate::ecs::units::{parse_task_cpu, parse_task_memory};
use k8s_openapi::api::core::v1::{
    Container, HostAlias, LocalObjectReference, PodDNSConfig, PodSecurityContext, PodSpec, PodTemplateSpec, ResourceRequirements,
    SeccompProfile, Sysctl,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::BTreeMap;

/// How a container runs in the pod, from what others wait on it for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Started with the pod (START keeps the order).
    Regular,
    /// Others wait for it to COMPLETE/SUCCEED: an init container.
    Init,
    /// Others wait for it to be HEALTHY: a native sidecar gated by a startup probe.
    Sidecar,
}

fn roles(ctx: &mut Ctx) -> Vec<Role> {
    let task = ctx.task;
    let containers = &task.model.container_definitions;
    let mut roles = vec![Role::Regular; containers.len()];
    for (i, c) in containers.iter().enumerate() {
        for (j, d) in c.depends_on.iter().enumerate() {
            let Some(t) = containers.iter().position(|o| o.name.is_some() && o.name == d.container_name) else {
                continue;
            };
            match d.condition.as_deref() {
                Some("HEALTHY") => roles[t] = Role::Sidecar,
                Some(cond @ ("COMPLETE" | "SUCCESS")) if roles[t] != Role::Sidecar => {
                    roles[t] = Role::Init;
                    if cond == "COMPLETE" {
                        ctx.warn(
                            Code::NotCarriedOver,
                            at!(task, "containerDefinitions", i, "dependsOn", j, "condition"),
                            "COMPLETE accepts any exit code, but an init container must exit 0 before the pod goes on",
                        );
                    }
                }
                _ => {}
            }
        }
    }
    roles
}

/// Init containers in dependency order (a container after those it depends on), stable otherwise.
fn init_order(ctx: &Ctx, roles: &[Role]) -> Vec<usize> {
    let containers = &ctx.task.model.container_definitions;
    let mut order = Vec::new();
    let mut placed = vec![false; containers.len()];
    let init: Vec<usize> = (0..containers.len()).filter(|i| roles[*i] != Role::Regular).collect();
    while order.len() < init.len() {
        let before = order.len();
        for &i in &init {
            if placed[i] {
                continue;
            }
            let ready = containers[i].depends_on.iter().all(|d| {
                containers
                    .iter()
                    .position(|o| o.name.is_some() && o.name == d.container_name)
                    .is_none_or(|t| roles[t] == Role::Regular || placed[t])
            });
            if ready {
                placed[i] = true;
                order.push(i);
            }
        }
        if order.len() == before {
            // A cycle (refused by validation); keep the remaining in ECS order.
            order.extend(init.iter().filter(|i| !placed[**i]));
        }
    }
    order
}

pub fn template(ctx: &mut Ctx, service_account: bool) -> PodTemplateSpec {
    let task = ctx.task;
    let m = &task.model;
    let host_network = m.network_mode() == "host";
    let grace = ctx.service.and_then(|s| s.model.health_check_grace_period_seconds);
    let roles = roles(ctx);
    let vols = volumes::build(ctx);

    let mut built: Vec<Option<Container>> = Vec::new();
    for (i, mounts) in vols.mounts.into_iter().enumerate() {
        let mut k = container::build(ctx, i, mounts, host_network);
        let c = &m.container_definitions[i];
        match (roles[i], c.health_check.as_ref()) {
            (Role::Sidecar, Some(h)) => {
                k.restart_policy = Some("Always".into());
                k.startup_probe = healthy_gate(h);
            }
            (Role::Sidecar, None) => k.restart_policy = Some("Always".into()),
            (Role::Regular, Some(h)) if c.is_essential() => {
                if let Some(p) = probes(h, grace) {
                    k.readiness_probe = Some(p.readiness);
                    k.liveness_probe = Some(p.liveness);
                    k.startup_probe = p.startup;
                }
            }
            (Role::Regular, Some(_)) => ctx.warn(
                Code::NotCarriedOver,
                at!(task, "containerDefinitions", i, "healthCheck"),
                "the health check of a non-essential container does not affect the task in ECS; it is not turned into probes",
            ),
            _ => {}
        }
        if roles[i] == Role::Regular && !c.is_essential() {
            ctx.warn(
                Code::NotCarriedOver,
                at!(task, "containerDefinitions", i, "essential"),
                "a non-essential container that exits is restarted by Kubernetes (ECS leaves it stopped); nothing else in the pod stops with it",
            );
        }
        built.push(Some(k));
    }

    let mut init: Vec<Container> = init_order(ctx, &roles).into_iter().filter_map(|i| built[i].take()).collect();
    let mut containers: Vec<Container> = built.into_iter().flatten().collect();
    spread_ephemeral_storage(ctx, &mut containers);
    fit_memory_requests(ctx, containers.iter_mut().chain(init.iter_mut()));

    let mut spec = PodSpec {
        containers,
        init_containers: (!init.is_empty()).then_some(init),
        volumes: (!vols.volumes.is_empty()).then_some(vols.volumes),
        host_aliases: host_aliases(ctx),
        // Always named: without taskRoleArn the namespace's `default`, never
        // an account that merely shares the object's name.
        service_account_name: Some(if service_account { ctx.meta.name.clone() } else { "default".into() }),
        termination_grace_period_seconds: m.container_definitions.iter().filter_map(|c| c.stop_timeout).max(),
        node_selector: node_selector(ctx),
        image_pull_secrets: image_pull_secrets(ctx),
        resources: pod_resources(ctx),
        ..Default::default()
    };
    if host_network {
        spec.host_network = Some(true);
        spec.dns_policy = Some("ClusterFirstWithHostNet".into());
    }
    if m.network_mode() == "none" {
        ctx.warn(
            Code::NotCarriedOver,
            at!(task, "networkMode"),
            "network mode none: Kubernetes pods always have a network interface",
        );
    }
    namespaces(ctx, &mut spec);
    // Docker applies its default seccomp profile to every ECS container
    // unless told otherwise (dockerSecurityOptions `seccomp:unconfined`, set
    // per container): the runtime's default is the same promise.
    if !m.is_windows() {
        spec.security_context.get_or_insert_with(Default::default).seccomp_profile = Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            localhost_profile: None,
        });
    }
    dns(ctx, &mut spec);
    placement::apply(ctx, &mut spec);

    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(ctx.labels()),
            ..Default::default()
        }),
        spec: Some(spec),
    }
}

/// Links and extraHosts as /etc/hosts entries, grouped by address.
fn host_aliases(ctx: &Ctx) -> Option<Vec<HostAlias>> {
    let mut by_ip: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in &ctx.task.model.container_definitions {
        for link in &c.links {
            let (name, alias) = parse_link(link);
            let names = by_ip.entry("127.0.0.1".into()).or_default();
            for n in [alias, name] {
                if !names.iter().any(|x| x == n) {
                    names.push(n.to_string());
                }
            }
        }
        for h in &c.extra_hosts {
            if let (Some(host), Some(ip)) = (&h.hostname, &h.ip_address) {
                let names = by_ip.entry(ip.clone()).or_default();
                if !names.contains(host) {
                    names.push(host.clone());
                }
            }
        }
    }
    let aliases: Vec<HostAlias> = by_ip
        .into_iter()
        .map(|(ip, hostnames)| HostAlias {
            ip,
            hostnames: Some(hostnames),
        })
        .collect();
    (!aliases.is_empty()).then_some(aliases)
}

/// pidMode/ipcMode, sysctls (systemControls) and the hostname.
fn namespaces(ctx: &mut Ctx, spec: &mut PodSpec) {
    let task = ctx.task;
    let m = &task.model;
    match m.pid_mode.as_deref() {
        Some("host") => spec.host_pid = Some(true),
        Some("task") => spec.share_process_namespace = Some(true),
        _ => {}
    }
    match m.ipc_mode.as_deref() {
        Some("host") => spec.host_ipc = Some(true),
        Some("none") => ctx.warn(
            Code::NotCarriedOver,
            at!(task, "ipcMode"),
            "ipcMode none: containers of a pod always share an IPC namespace",
        ),
        _ => {}
    }
    let mut sysctls: Vec<Sysctl> = Vec::new();
    for (i, c) in m.container_definitions.iter().enumerate() {
        for (j, s) in c.system_controls.iter().enumerate() {
            let (Some(name), Some(value)) = (&s.namespace, &s.value) else {
                continue;
            };
            match sysctls.iter().find(|x| &x.name == name) {
                Some(existing) if &existing.value != value => ctx.warn(
                    Code::NotCarriedOver,
                    at!(task, "containerDefinitions", i, "systemControls", j),
                    format!(
                        "sysctl {name} is pod-wide in Kubernetes; the first value ({}) is kept",
                        existing.value
                    ),
                ),
                Some(_) => {}
                None => sysctls.push(Sysctl {
                    name: name.clone(),
                    value: value.clone(),
                }),
            }
        }
    }
    if !sysctls.is_empty() {
        spec.security_context = Some(PodSecurityContext {
            sysctls: Some(sysctls),
            ..Default::default()
        });
    }
    let hostnames: Vec<(usize, &String)> = m
        .container_definitions
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.hostname.as_ref().map(|h| (i, h)))
        .collect();
    if let Some((_, h)) = hostnames.first() {
        spec.hostname = Some(super::k8s_name(h.split('.').next().unwrap_or(h), "host"));
        for (i, _) in hostnames.iter().skip(1) {
            ctx.warn(
                Code::NotCarriedOver,
                at!(task, "containerDefinitions", *i, "hostname"),
                "a pod has one hostname; the first container's is used",
            );
        }
    }
}

/// dnsServers replace the resolver as in ECS (dnsPolicy None); search domains are added.
fn dns(ctx: &mut Ctx, spec: &mut PodSpec) {
    let mut servers: Vec<String> = Vec::new();
    let mut searches: Vec<String> = Vec::new();
    for c in &ctx.task.model.container_definitions {
        for s in &c.dns_servers {
            if !servers.contains(s) {
                servers.push(s.clone());
            }
        }
        for s in &c.dns_search_domains {
            if !searches.contains(s) {
                searches.push(s.clone());
            }
        }
    }
    if servers.is_empty() && searches.is_empty() {
        return;
    }
    if !servers.is_empty() {
        spec.dns_policy = Some("None".into());
    }
    spec.dns_config = Some(PodDNSConfig {
        nameservers: (!servers.is_empty()).then_some(servers),
        searches: (!searches.is_empty()).then_some(searches),
        options: None,
    });
}

/// runtimePlatform -> kubernetes.io/os and kubernetes.io/arch.
fn node_selector(ctx: &Ctx) -> Option<BTreeMap<String, String>> {
    let p = ctx.task.model.runtime_platform.as_ref()?;
    let mut sel = BTreeMap::new();
    if let Some(os) = &p.operating_system_family {
        sel.insert(
            "kubernetes.io/os".into(),
            if os.starts_with("WINDOWS") { "windows" } else { "linux" }.into(),
        );
    }
    if let Some(arch) = &p.cpu_architecture {
        sel.insert("kubernetes.io/arch".into(), if arch == "ARM64" { "arm64" } else { "amd64" }.into());
    }
    (!sel.is_empty()).then_some(sel)
}

/// The Secret that holds private registry credentials.
pub fn registry_secret_name(object: &str) -> String {
    format!("{object}-registry")
}

fn image_pull_secrets(ctx: &mut Ctx) -> Option<Vec<LocalObjectReference>> {
    let task = ctx.task;
    let first = task
        .model
        .container_definitions
        .iter()
        .position(|c| c.repository_credentials.is_some())?;
    let name = registry_secret_name(&ctx.meta.name);
    if ctx.registry_external {
        return Some(vec![LocalObjectReference { name }]);
    }
    ctx.warn(
        Code::NotCarriedOver,
        at!(task, "containerDefinitions", first, "repositoryCredentials"),
        format!("private registry credentials are read from the kubernetes.io/dockerconfigjson Secret \"{name}\"; create it from the Secrets Manager secret"),
    );
    Some(vec![LocalObjectReference { name }])
}

/// Task cpu/memory are the task's hard limits: pod-level resources (Kubernetes 1.34+).
fn pod_resources(ctx: &Ctx) -> Option<ResourceRequirements> {
    let m = &ctx.task.model;
    let mut q: BTreeMap<String, Quantity> = BTreeMap::new();
    if let Some(units) = m.cpu.as_deref().and_then(parse_task_cpu) {
        q.insert("cpu".into(), cpu_units(units));
    }
    if let Some(mib) = m.memory.as_deref().and_then(parse_task_memory) {
        q.insert("memory".into(), mebibytes(mib));
    }
    (!q.is_empty()).then(|| ResourceRequirements {
        requests: Some(q.clone()),
        limits: Some(q),
        ..Default::default()
    })
}

/// ECS refuses only reservations (memoryReservation) adding up to more than
/// the task's memory; a container with just a hard `memory` may have all of
/// it (CDK gives the app the task's memory, beside sidecars' reservations).
/// Kubernetes wants the containers' requests to fit in the pod's, so when
/// they do not, each memory request is scaled down in proportion (limits
/// stay): the pod still requests, and is held to, the task's memory.
fn fit_memory_requests<'c>(ctx: &mut Ctx, containers: impl Iterator<Item = &'c mut Container>) {
    let Some(task) = ctx.task.model.memory.as_deref().and_then(parse_task_memory) else {
        return;
    };
    let mut requests: Vec<(&mut Quantity, u64)> = containers
        .filter_map(|c| c.resources.as_mut()?.requests.as_mut()?.get_mut("memory"))
        .filter_map(|q| {
            let mib = mebibytes_of(q)?;
            Some((q, mib))
        })
        .collect();
    let total = requests.iter().map(|(_, mib)| *mib).fold(0u64, u64::saturating_add);
    if total <= task {
        return;
    }
    for (q, mib) in &mut requests {
        // Floor: the scaled requests add up to at most the task's memory.
        let scaled = u128::from(*mib) * u128::from(task) / u128::from(total);
        **q = mebibytes(u64::try_from(scaled).unwrap_or(u64::MAX).max(1));
    }
    let at = crate::at!(ctx.task, "memory");
    ctx.warn(
        Code::NotCarriedOver,
        at,
        format!("the containers' memory (hard limits where there is no reservation) adds up to {total} MiB, more than the task's {task} MiB; Kubernetes needs the containers' requests to fit in the pod's, so each request is scaled down in proportion (limits are kept)"),
    );
}

/// ephemeralStorage is per task; Kubernetes counts it per container, so it is
/// divided evenly (rounded up) among the regular containers.
fn spread_ephemeral_storage(ctx: &Ctx, containers: &mut [Container]) {
    let Some(gib) = ctx
        .task
        .model
        .ephemeral_storage
        .as_ref()
        .and_then(|e| e.size_in_gib)
        .filter(|g| *g > 0)
    else {
        return;
    };
    if containers.is_empty() {
        return;
    }
    let share = gib.unsigned_abs().div_ceil(containers.len() as u64);
    for c in containers {
        let r = c.resources.get_or_insert_with(Default::default);
        r.limits
            .get_or_insert_with(Default::default)
            .insert("ephemeral-storage".into(), gibibytes(share));
    }
}
