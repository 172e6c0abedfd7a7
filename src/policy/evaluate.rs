//! The policy's rules applied to one analyzed object. Every denial names its
//! rule (`namespaces.<ns>.<rule>` when a namespace set it) and the path as the
//! user wrote it.

use super::selector::{present, Root, Step};
use super::{AwsPattern, Effective, FieldRule, Policy, ServiceType};
use crate::diag::{show, Code, Diagnostic, Severity};
use crate::ecs::model::{ContainerDefinition, Service, TaskDefinition};
use crate::ecs::units::{parse_task_cpu, parse_task_memory};
use crate::validate::{Analysis, Definition};
use crate::{at, written};
use serde_json::{json, Value};
use std::collections::BTreeSet;

impl Policy {
    /// The denials for one analyzed object in `namespace`.
    pub fn check(&self, namespace: &str, analysis: &Analysis<'_>) -> Vec<Diagnostic> {
        self.effective(namespace).check(analysis)
    }

    /// [`Policy::check`] in a cluster running `integrations`: the Service
    /// type judged is the one the translation makes there (ClusterIP or
    /// NodePort for target groups kept with TargetGroupBindings).
    pub fn check_in(&self, namespace: &str, analysis: &Analysis<'_>, integrations: &crate::translate::Integrations) -> Vec<Diagnostic> {
        self.effective(namespace)
            .check_with(analysis, integrations.target_group_binding.is_some())
    }
}

/// Collects denials, each naming its rule.
struct Denials<'e> {
    rules: &'e Effective,
    out: Vec<Diagnostic>,
}

impl Denials<'_> {
    fn deny(&mut self, rule: &str, path: String, message: &str, expected: impl Into<String>, found: impl Into<String>) {
        self.out.push(Diagnostic {
            severity: Severity::Error,
            code: Code::PolicyDenied,
            path,
            message: format!("policy rule `{rule}`: {message}"),
            expected: expected.into(),
            found: found.into(),
        });
    }

    /// `key`, or `namespaces.<ns>.key` when the namespace set it.
    fn rule(&self, key: &str) -> String {
        if self.rules.overridden.contains(key) {
            format!("namespaces.{}.{key}", self.rules.namespace)
        } else {
            key.to_string()
        }
    }
}

type Task<'d, 'a> = &'d Definition<'a, TaskDefinition>;
type Svc<'d, 'a> = &'d Definition<'a, Service>;

impl Effective {
    /// The denials for one analyzed object.
    pub fn check(&self, analysis: &Analysis<'_>) -> Vec<Diagnostic> {
        self.check_with(analysis, false)
    }

    /// `bound`: target groups are kept with TargetGroupBindings.
    pub fn check_with(&self, analysis: &Analysis<'_>, bound: bool) -> Vec<Diagnostic> {
        let mut d = Denials {
            rules: self,
            out: Vec::new(),
        };
        if let Some(t) = &analysis.task {
            self.check_host_modes(t, &mut d);
            self.check_containers(t, &mut d);
            self.check_task_size(t, &mut d);
            self.check_gpus(t, &mut d);
            self.check_volumes(t, &mut d);
            self.check_task_role(t, &mut d);
            self.check_aws_references(t, analysis.service.as_ref(), &mut d);
        }
        if let Some(s) = &analysis.service {
            self.check_service(s, &mut d);
        }
        if let Some(t) = &analysis.task {
            self.check_service_type(t, analysis.service.as_ref(), bound, &mut d);
        }
        for (i, rule) in self.fields.iter().enumerate() {
            let name = rule.name.clone().unwrap_or_else(|| format!("{}[{i}]", d.rule("fields")));
            match rule.path.root {
                Root::Task => analysis.task.iter().for_each(|t| check_field(t, rule, &name, &mut d)),
                Root::Service => analysis.service.iter().for_each(|s| check_field(s, rule, &name, &mut d)),
            }
        }
        d.out
    }

    fn check_host_modes(&self, t: Task, d: &mut Denials) {
        let m = &t.model;
        let modes = [
            (self.deny_host_network, "denyHostNetwork", "networkMode", &m.network_mode, "network"),
            (self.deny_host_pid, "denyHostPid", "pidMode", &m.pid_mode, "process"),
            (self.deny_host_ipc, "denyHostIpc", "ipcMode", &m.ipc_mode, "IPC"),
        ];
        for (on, rule, field, value, what) in modes {
            if on && value.as_deref() == Some("host") {
                d.deny(
                    &d.rule(rule),
                    at!(t, field),
                    &format!("sharing the node's {what} namespace is not allowed in this cluster"),
                    format!("a {field} other than \"host\""),
                    "\"host\"",
                );
            }
        }
    }

    fn check_containers(&self, t: Task, d: &mut Denials) {
        for (i, c) in t.model.container_definitions.iter().enumerate() {
            if let Some(image) = c.image.as_deref() {
                let prefixes = &self.allowed_image_prefixes;
                if !prefixes.is_empty() && !prefixes.iter().any(|p| image_allowed(image, p)) {
                    d.deny(
                        &d.rule("allowedImagePrefixes"),
                        at!(t, "containerDefinitions", i, "image"),
                        "images must come from a registry this cluster allows",
                        format!("an image under {}", quoted_list(prefixes)),
                        show(&json!(image)),
                    );
                }
            }
            if self.deny_privileged && c.privileged == Some(true) {
                d.deny(
                    &d.rule("denyPrivileged"),
                    at!(t, "containerDefinitions", i, "privileged"),
                    "privileged containers are not allowed in this cluster",
                    "false, or leave it out",
                    "true",
                );
            }
            if self.deny_added_capabilities {
                self.check_capabilities(t, i, c, d);
            }
            if self.require_non_root {
                self.check_user(t, i, c, d);
            }
            if let Some(max) = self.max_container_cpu {
                if let Some(cpu) = c.cpu.filter(|v| exceeds(*v, max)) {
                    d.deny(
                        &d.rule("maxContainerCpu"),
                        at!(t, "containerDefinitions", i, "cpu"),
                        "the container asks for more CPU than this cluster allows",
                        format!("at most {max} CPU units"),
                        cpu.to_string(),
                    );
                }
            }
            if let Some(max) = self.max_container_memory {
                for (field, v) in [("memory", c.memory), ("memoryReservation", c.memory_reservation)] {
                    if let Some(v) = v.filter(|v| exceeds(*v, max)) {
                        d.deny(
                            &d.rule("maxContainerMemory"),
                            at!(t, "containerDefinitions", i, field),
                            "the container asks for more memory than this cluster allows",
                            format!("at most {max} MiB"),
                            v.to_string(),
                        );
                    }
                }
            }
            // A value that failed the structural check is reported there already.
            let memory_written =
                written!(t, "containerDefinitions", i, "memory") || written!(t, "containerDefinitions", i, "memoryReservation");
            if self.require_container_memory && !memory_written {
                d.deny(
                    &d.rule("requireContainerMemory"),
                    at!(t, "containerDefinitions", i, "memory"),
                    "every container must set memory or memoryReservation",
                    "`memory` or `memoryReservation` in MiB",
                    "neither",
                );
            }
        }
    }

    fn check_capabilities(&self, t: Task, i: usize, c: &ContainerDefinition, d: &mut Denials) {
        let added = c
            .linux_parameters
            .iter()
            .filter_map(|lp| lp.capabilities.as_ref())
            .flat_map(|caps| &caps.add);
        let allowed: BTreeSet<String> = self.allowed_capabilities.iter().map(|c| capability(c)).collect();
        for (j, cap) in added.enumerate() {
            if !allowed.contains(&capability(cap)) {
                d.deny(
                    &d.rule("denyAddedCapabilities"),
                    at!(t, "containerDefinitions", i, "linuxParameters", "capabilities", "add", j),
                    "adding this Linux capability is not allowed in this cluster",
                    if allowed.is_empty() {
                        "no added capabilities".to_string()
                    } else {
                        format!("one of {}", quoted_list(&self.allowed_capabilities))
                    },
                    show(&json!(cap)),
                );
            }
        }
    }

    /// `requireNonRoot`: a numeric uid other than 0. A user name cannot be
    /// checked before the image runs (and Kubernetes' runAsNonRoot refuses it too).
    fn check_user(&self, t: Task, i: usize, c: &ContainerDefinition, d: &mut Denials) {
        let expected = "a numeric user id other than 0, e.g. \"1000\" or \"1000:1000\"";
        let found = match c.user.as_deref() {
            None if written!(t, "containerDefinitions", i, "user") => return,
            None => "nothing (the image's own user, which may be root)".to_string(),
            Some(user) => {
                let uid = user.split(':').next().unwrap_or_default().trim();
                match uid.parse::<u32>() {
                    Ok(0) => show(&json!(user)),
                    Ok(_) => return,
                    Err(_) => format!(
                        "{} (a name: whether it is root is only known when the image runs)",
                        show(&json!(user))
                    ),
                }
            }
        };
        d.deny(
            &d.rule("requireNonRoot"),
            at!(t, "containerDefinitions", i, "user"),
            "containers must run as a non-root user in this cluster",
            expected,
            found,
        );
    }

    /// Task cpu/memory; without them the task is as big as its containers together.
    fn check_task_size(&self, t: Task, d: &mut Denials) {
        let m = &t.model;
        if let Some(max) = self.max_task_cpu {
            let total = total(m.container_definitions.iter().map(|c| c.cpu.unwrap_or(0)));
            self.check_task_value(t, d, max, TaskValue::CPU, m.cpu.as_deref().map(|s| (s, parse_task_cpu(s))), total);
        }
        if let Some(max) = self.max_task_memory {
            let task = m.memory.as_deref().map(|s| (s, parse_task_memory(s)));
            if task.is_none() {
                // A container with only a reservation (or nothing) has no hard
                // limit: it may use the whole node, whatever the others add up to.
                for (i, c) in m.container_definitions.iter().enumerate() {
                    if c.memory.is_none() && !written!(t, "containerDefinitions", i, "memory") {
                        d.deny(
                            &d.rule("maxTaskMemory"),
                            at!(t, "containerDefinitions", i, "memory"),
                            "without a task memory, every container needs a hard memory limit: this one could use all of the node's memory",
                            format!("a task memory, or a container memory, of at most {max} MiB in all"),
                            match c.memory_reservation {
                                Some(r) => format!("only memoryReservation ({r} MiB, a soft limit)"),
                                None => "no memory limit".into(),
                            },
                        );
                    }
                }
            }
            let total = total(m.container_definitions.iter().map(|c| c.memory.unwrap_or(0)));
            self.check_task_value(t, d, max, TaskValue::MEMORY, task, total);
        }
    }

    fn check_task_value(
        &self,
        t: Task,
        d: &mut Denials,
        max: u64,
        what: TaskValue,
        task_value: Option<(&str, Option<u64>)>,
        containers_total: Option<u64>,
    ) {
        let TaskValue { rule, field, unit, noun } = what;
        match task_value {
            // Unparsable values are the task rules' to report.
            Some((_, None)) => {}
            Some((s, Some(v))) if v > max => d.deny(
                &d.rule(rule),
                at!(t, field),
                &format!("the task asks for more {noun} than this cluster allows"),
                format!("at most {max} {unit}"),
                if s.trim() == v.to_string() {
                    format!("\"{s}\"")
                } else {
                    format!("\"{s}\" ({v} {unit})")
                },
            ),
            Some(_) => {}
            None if containers_total.is_none_or(|sum| sum > max) => d.deny(
                &d.rule(rule),
                at!(t, field),
                &format!("the containers together ask for more {noun} than this cluster allows a task"),
                format!("at most {max} {unit} in all"),
                match containers_total {
                    Some(sum) => format!("{sum} {unit} (the containers' {field} added up)"),
                    None => format!("more than {} {unit} (the containers' {field} added up)", u64::MAX),
                },
            ),
            None => {}
        }
    }

    fn check_gpus(&self, t: Task, d: &mut Denials) {
        let Some(max) = self.max_gpu_count else { return };
        let mut sum: u64 = 0;
        for (i, c) in t.model.container_definitions.iter().enumerate() {
            for (j, r) in c.resource_requirements.iter().enumerate() {
                if r.kind.as_deref() != Some("GPU") {
                    continue;
                }
                // Not a count: the task rules report it.
                let Some(n) = r.value.as_deref().and_then(|v| v.trim().parse::<u64>().ok()) else {
                    continue;
                };
                let before = sum;
                sum = sum.saturating_add(n);
                if sum > max && before <= max {
                    d.deny(
                        &d.rule("maxGpuCount"),
                        at!(t, "containerDefinitions", i, "resourceRequirements", j, "value"),
                        "the task asks for more GPUs than this cluster allows",
                        format!("at most {max} GPUs per task"),
                        format!("{n} (the task's GPUs add up to {sum} here)"),
                    );
                }
            }
        }
    }

    fn check_volumes(&self, t: Task, d: &mut Denials) {
        if !self.deny_host_path_volumes {
            return;
        }
        for (i, v) in t.model.volumes.iter().enumerate() {
            if let Some(src) = v.host.as_ref().and_then(|h| h.source_path.as_deref()) {
                d.deny(
                    &d.rule("denyHostPathVolumes"),
                    at!(t, "volumes", i, "host", "sourcePath"),
                    "volumes from a directory on the node are not allowed in this cluster",
                    "a Docker or EFS volume, or `host: {}` without sourcePath",
                    show(&json!(src)),
                );
            }
        }
    }

    /// IRSA: the ServiceAccount ecskube creates is annotated with this role,
    /// so the role a user may name is a privilege the admin hands out.
    fn check_task_role(&self, t: Task, d: &mut Denials) {
        let patterns = &self.allowed_task_role_arns;
        let Some(arn) = t.model.task_role_arn.as_deref() else { return };
        if patterns.is_empty() || patterns.iter().any(|p| p.matches(arn)) {
            return;
        }
        let list: Vec<String> = patterns.iter().map(ToString::to_string).collect();
        d.deny(
            &d.rule("allowedTaskRoleArns"),
            at!(t, "taskRoleArn"),
            "this IAM role may not be used by tasks in this namespace",
            format!("a role matching {}", quoted_list(&list)),
            show(&json!(arn)),
        );
    }

    /// The AWS resources the integrations act on with their own identity:
    /// secrets (External Secrets), target groups, EFS file systems.
    fn check_aws_references(&self, t: Task, s: Option<Svc>, d: &mut Denials) {
        let mut judge = |rule: &str, patterns: &[AwsPattern], value: &str, at: String, what: &str| {
            if patterns.is_empty() || patterns.iter().any(|p| p.matches(value)) {
                return;
            }
            let list: Vec<String> = patterns.iter().map(ToString::to_string).collect();
            d.deny(
                &d.rule(rule),
                at,
                &format!("this {what} may not be used by tasks in this namespace"),
                format!("one matching {}", quoted_list(&list)),
                show(&json!(value)),
            );
        };
        for (i, c) in t.model.container_definitions.iter().enumerate() {
            for (j, secret) in c.secrets.iter().enumerate() {
                if let Some(v) = secret.value_from.as_deref() {
                    let at = at!(t, "containerDefinitions", i, "secrets", j, "valueFrom");
                    judge("allowedSecretArns", &self.allowed_secret_arns, v, at, "secret");
                }
            }
            if let Some(p) = c.repository_credentials.as_ref().and_then(|r| r.credentials_parameter.as_deref()) {
                let at = at!(t, "containerDefinitions", i, "repositoryCredentials", "credentialsParameter");
                judge("allowedSecretArns", &self.allowed_secret_arns, p, at, "secret");
            }
        }
        for (i, v) in t.model.volumes.iter().enumerate() {
            let fs = v
                .efs_volume_configuration
                .as_ref()
                .and_then(|e| e.get("fileSystemId"))
                .and_then(Value::as_str);
            if let Some(fs) = fs {
                let at = at!(t, "volumes", i, "efsVolumeConfiguration", "fileSystemId");
                judge("allowedEfsFileSystems", &self.allowed_efs_file_systems, fs, at, "EFS file system");
            }
        }
        for (i, lb) in s.map(|s| s.model.load_balancers.as_slice()).unwrap_or_default().iter().enumerate() {
            if let (Some(arn), Some(s)) = (lb.target_group_arn.as_deref(), s) {
                let at = at!(s, "loadBalancers", i, "targetGroupArn");
                judge("allowedTargetGroupArns", &self.allowed_target_group_arns, arn, at, "target group");
            }
        }
    }

    fn check_service(&self, s: Svc, d: &mut Denials) {
        let m = &s.model;
        if self.deny_daemon && m.is_daemon() {
            d.deny(
                &d.rule("denyDaemon"),
                at!(s, "schedulingStrategy"),
                "DAEMON services (a task on every node) are not allowed in this cluster",
                "REPLICA, or leave it out",
                "\"DAEMON\"",
            );
        }
        if let Some(max) = self.max_desired_count {
            let (count, found) = match m.desired_count {
                Some(n) => (n, n.to_string()),
                None => (1, "1 (the default)".to_string()),
            };
            if !m.is_daemon() && exceeds(count, max) {
                d.deny(
                    &d.rule("maxDesiredCount"),
                    at!(s, "desiredCount"),
                    "the service asks for more tasks than this cluster allows",
                    format!("at most {max}"),
                    found,
                );
            }
        }
    }

    /// The type of the Service the translation would create, judged where the
    /// user decides it: `loadBalancers` make a LoadBalancer.
    fn check_service_type(&self, t: Task, s: Option<Svc>, bound: bool, d: &mut Denials) {
        let allowed = &self.allowed_service_types;
        if allowed.is_empty() {
            return;
        }
        let Some(kind) = crate::translate::service_type(&t.model, s.map(|s| &s.model), bound) else {
            return;
        };
        if allowed.iter().any(|a| a.as_str() == kind) {
            return;
        }
        let path = match s {
            Some(s) if !s.model.load_balancers.is_empty() => at!(s, "loadBalancers"),
            _ => at!(t, "containerDefinitions"),
        };
        let names: Vec<String> = allowed.iter().map(|a| ServiceType::as_str(*a).to_string()).collect();
        d.deny(
            &d.rule("allowedServiceTypes"),
            path,
            &format!("this would create a {kind} Service, which this cluster does not allow"),
            format!("a definition that makes a {} Service", names.join(" or ")),
            kind.to_string(),
        );
    }
}

/// What a task-level maximum is about.
#[derive(Clone, Copy)]
struct TaskValue {
    rule: &'static str,
    field: &'static str,
    unit: &'static str,
    noun: &'static str,
}

impl TaskValue {
    const CPU: TaskValue = TaskValue {
        rule: "maxTaskCpu",
        field: "cpu",
        unit: "CPU units",
        noun: "CPU",
    };
    const MEMORY: TaskValue = TaskValue {
        rule: "maxTaskMemory",
        field: "memory",
        unit: "MiB",
        noun: "memory",
    };
}

/// The containers' values added up; None when the sum does not fit a u64
/// (which is more than any maximum). Negative values are the task rules' to report.
fn total(mut values: impl Iterator<Item = i64>) -> Option<u64> {
    values.try_fold(0u64, |sum, v| sum.checked_add(u64::try_from(v).unwrap_or(0)))
}

fn check_field<T>(def: &Definition<'_, T>, rule: &FieldRule, name: &str, d: &mut Denials) {
    let last = rule.path.segs.iter().rev().find_map(|s| match s {
        Step::Key(k) => Some(k.as_str()),
        _ => None,
    });
    let field = last.map_or_else(|| rule.path.to_string(), |k| format!("`{k}`"));
    for (path, value) in rule.path.expand(&def.canonical) {
        // Something the structural check refused is reported there already.
        let refused = value.is_none() && def.written(&path);
        match rule.action {
            super::Action::Forbid if present(value) => {
                let message = rule
                    .message
                    .clone()
                    .unwrap_or_else(|| format!("{field} is not allowed in this cluster"));
                d.deny(
                    name,
                    def.at(&path),
                    &message,
                    format!("no {field}"),
                    value.map(show).unwrap_or_default(),
                );
            }
            super::Action::Require if !present(value) && !refused => {
                let message = rule
                    .message
                    .clone()
                    .unwrap_or_else(|| format!("{field} is required in this cluster"));
                let found = match value {
                    Some(Value::Array(_)) => "an empty list",
                    Some(Value::Object(_)) => "an empty object",
                    _ => "nothing",
                };
                d.deny(name, def.at(&path), &message, format!("a value for {field}"), found);
            }
            _ => {}
        }
    }
}

/// Whether `image` comes from under `prefix`. A prefix ending in a letter or
/// digit must end a name, so `ghcr.io/acme` admits neither `ghcr.io/acme-evil/x`
/// nor the host `ghcr.io.evil.com`.
fn image_allowed(image: &str, prefix: &str) -> bool {
    let Some(rest) = image.strip_prefix(prefix) else { return false };
    !prefix.ends_with(|c: char| c.is_ascii_alphanumeric()) || rest.is_empty() || rest.starts_with(['/', ':', '@'])
}

/// `NET_ADMIN`, `net_admin` and `CAP_NET_ADMIN` are one capability.
fn capability(name: &str) -> String {
    let upper = name.trim().to_ascii_uppercase();
    upper.strip_prefix("CAP_").map_or_else(|| upper.clone(), str::to_string)
}

fn exceeds(v: i64, max: u64) -> bool {
    u64::try_from(v).is_ok_and(|v| v > max)
}

fn quoted_list(items: &[String]) -> String {
    items.iter().map(|s| format!("\"{s}\"")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::EcsDocument;

    fn policy(yaml: &str) -> Policy {
        Policy::from_yaml(yaml).unwrap_or_else(|e| panic!("{e}"))
    }

    fn deployment(namespace: &str, task: Value, service: Option<Value>) -> EcsDocument {
        let mut spec = json!({ "Task": task });
        if let Some(s) = service {
            spec["Service"] = s;
        }
        EcsDocument::classify(json!({
            "apiVersion": "ecskube.ecskube/v1alpha1",
            "kind": "ECSDeployment",
            "metadata": {"name": "x", "namespace": namespace},
            "spec": spec,
        }))
    }

    fn containers(list: Value) -> EcsDocument {
        deployment("dev", json!({ "containerDefinitions": list }), None)
    }

    /// (path, message) of each denial; the engine itself must have found nothing.
    fn denials(p: &Policy, doc: &EcsDocument) -> Vec<(String, String)> {
        let analysis = doc.analyze();
        let errors: Vec<_> = analysis.report.errors().map(ToString::to_string).collect();
        assert!(errors.is_empty(), "the input itself is invalid: {errors:?}");
        let namespace = doc.value.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("");
        p.check(namespace, &analysis)
            .into_iter()
            .inspect(|d| {
                assert_eq!(d.code, Code::PolicyDenied);
                assert!(d.is_error());
                assert!(d.message.starts_with("policy rule `"), "{}", d.message);
                assert!(!d.expected.is_empty() && !d.found.is_empty(), "{d:?}");
            })
            .map(|d| (d.path, d.message))
            .collect()
    }

    fn paths(p: &Policy, doc: &EcsDocument) -> Vec<String> {
        denials(p, doc).into_iter().map(|(p, _)| p).collect()
    }

    fn web(extra: Value) -> Value {
        let mut c = json!({"name": "web", "image": "ghcr.io/acme/web:1", "memory": 256});
        c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        c
    }

    #[test]
    fn empty_policy_allows_everything() {
        let doc = deployment(
            "dev",
            json!({
                "networkMode": "host", "pidMode": "host", "ipcMode": "host", "cpu": "4 vCPU", "memory": "8 GB",
                "volumes": [{"name": "h", "host": {"sourcePath": "/var/run"}}],
                "containerDefinitions": [web(json!({"privileged": true, "linuxParameters": {"capabilities": {"add": ["SYS_ADMIN"]}}}))],
            }),
            None,
        );
        assert!(denials(&policy("{}"), &doc).is_empty());
        assert!(denials(&Policy::default(), &doc).is_empty());
    }

    #[test]
    fn image_prefixes_match_whole_names() {
        let p = policy("allowedImagePrefixes: [ghcr.io/acme, 123456789012.dkr.ecr.us-east-1.amazonaws.com/]");
        let doc = containers(json!([
            web(json!({"name": "a", "image": "ghcr.io/acme/web:1"})),
            web(json!({"name": "b", "image": "ghcr.io/acme-evil/web:1"})),
            web(json!({"name": "c", "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/api@sha256:abc"})),
            web(json!({"name": "d", "image": "nginx"})),
            web(json!({"name": "e", "image": "ghcr.io/acme:2"})),
        ]));
        let found = denials(&p, &doc);
        assert_eq!(
            found.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(),
            ["spec.Task.containerDefinitions[1].image", "spec.Task.containerDefinitions[3].image"]
        );
        assert!(found[0].1.starts_with("policy rule `allowedImagePrefixes`: "), "{}", found[0].1);
        assert!(image_allowed("ghcr.io/acme/app-x", "ghcr.io/acme/app-"));
        assert!(!image_allowed("ghcr.io.evil.com/x", "ghcr.io"));
    }

    #[test]
    fn privileged_is_denied_at_the_users_own_path() {
        let p = policy("denyPrivileged: true");
        let doc = containers(json!([
            web(json!({"privileged": false})),
            web(json!({"name": "b", "privileged": true}))
        ]));
        assert_eq!(
            denials(&p, &doc),
            [(
                "spec.Task.containerDefinitions[1].privileged".to_string(),
                "policy rule `denyPrivileged`: privileged containers are not allowed in this cluster".to_string()
            )]
        );
        // CloudFormation casing: the denial points at the key the user wrote.
        let cfn = deployment(
            "dev",
            json!({"Type": "AWS::ECS::TaskDefinition", "Properties": {"ContainerDefinitions": [
                {"Name": "a", "Image": "nginx", "Memory": 128},
                {"Name": "b", "Image": "nginx", "Memory": 128, "Privileged": true},
            ]}}),
            None,
        );
        assert_eq!(paths(&p, &cfn), ["spec.Task.Properties.ContainerDefinitions[1].Privileged"]);
    }

    #[test]
    fn host_namespaces_and_host_path_volumes() {
        let p = policy("{denyHostNetwork: true, denyHostPid: true, denyHostIpc: true, denyHostPathVolumes: true}");
        let doc = deployment(
            "dev",
            json!({
                "networkMode": "host", "pidMode": "host", "ipcMode": "host",
                "volumes": [{"name": "docker", "host": {}}, {"name": "h", "host": {"sourcePath": "/var/run"}}],
                "containerDefinitions": [web(json!({}))],
            }),
            None,
        );
        let found = denials(&p, &doc);
        assert_eq!(
            found.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(),
            [
                "spec.Task.networkMode",
                "spec.Task.pidMode",
                "spec.Task.ipcMode",
                "spec.Task.volumes[1].host.sourcePath"
            ]
        );
        assert!(found[3].1.starts_with("policy rule `denyHostPathVolumes`"));
        let fine = deployment(
            "dev",
            json!({"networkMode": "bridge", "pidMode": "task", "containerDefinitions": [web(json!({}))]}),
            None,
        );
        assert!(denials(&p, &fine).is_empty());
    }

    #[test]
    fn added_capabilities_except_the_allowed_ones() {
        let caps = |add: Value| web(json!({"linuxParameters": {"capabilities": {"add": add, "drop": ["ALL"]}}}));
        let doc = containers(json!([caps(json!(["NET_BIND_SERVICE", "SYS_ADMIN"]))]));
        assert_eq!(
            paths(&policy("denyAddedCapabilities: true"), &doc),
            [
                "spec.Task.containerDefinitions[0].linuxParameters.capabilities.add[0]",
                "spec.Task.containerDefinitions[0].linuxParameters.capabilities.add[1]"
            ]
        );
        let p = policy("{denyAddedCapabilities: true, allowedCapabilities: [cap_net_bind_service]}");
        assert_eq!(
            paths(&p, &doc),
            ["spec.Task.containerDefinitions[0].linuxParameters.capabilities.add[1]"]
        );
        // Dropping is always fine.
        assert!(denials(&p, &containers(json!([caps(json!([]))]))).is_empty());
    }

    #[test]
    fn task_and_container_sizes() {
        let p = policy("{maxTaskCpu: 2048, maxTaskMemory: 4096, maxContainerCpu: 1024, maxContainerMemory: 2048}");
        let doc = deployment(
            "dev",
            json!({"cpu": "4 vCPU", "memory": "4 GB", "containerDefinitions": [
                web(json!({"cpu": 2048, "memory": 1024, "memoryReservation": 512})),
                web(json!({"name": "b", "cpu": 512, "memory": 4096, "memoryReservation": 3000})),
            ]}),
            None,
        );
        let found = denials(&p, &doc);
        assert_eq!(
            found.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(),
            [
                "spec.Task.containerDefinitions[0].cpu",
                "spec.Task.containerDefinitions[1].memory",
                "spec.Task.containerDefinitions[1].memoryReservation",
                "spec.Task.cpu",
            ]
        );
        let analysis = doc.analyze();
        let task_cpu = p.check("dev", &analysis).into_iter().find(|d| d.path == "spec.Task.cpu").unwrap();
        assert_eq!(
            (task_cpu.expected.as_str(), task_cpu.found.as_str()),
            ("at most 2048 CPU units", "\"4 vCPU\" (4096 CPU units)")
        );
        // Without task-level sizes the containers' sum counts.
        let sum = containers(json!([
            web(json!({"cpu": 1024, "memory": 3000})),
            json!({"name": "b", "image": "nginx", "cpu": 1024, "memoryReservation": 2000})
        ]));
        let p = policy("{maxTaskCpu: 2048, maxTaskMemory: 4096}");
        // b has no hard limit: it alone could use the whole node.
        let found = denials(&p, &sum);
        assert_eq!(
            found.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(),
            ["spec.Task.containerDefinitions[1].memory"]
        );
        assert!(found[0].1.contains("needs a hard memory limit"), "{}", found[0].1);
        let over = containers(json!([
            web(json!({"cpu": 1024, "memory": 3000})),
            json!({"name": "b", "image": "nginx", "cpu": 1024, "memory": 2000})
        ]));
        assert_eq!(paths(&p, &over), ["spec.Task.memory"]);
        // With a task memory, reservations and missing limits are bounded by it.
        let bounded = deployment(
            "dev",
            json!({"memory": "4096", "containerDefinitions": [json!({"name": "b", "image": "nginx", "memoryReservation": 2000})]}),
            None,
        );
        assert!(paths(&p, &bounded).is_empty());
    }

    #[test]
    fn container_totals_are_added_without_wrapping() {
        // The largest values AWS accepts, added up: far over, and said exactly.
        let max = i64::from(i32::MAX);
        let huge = containers(json!([
            web(json!({"cpu": max, "memory": max})),
            json!({"name": "b", "image": "nginx", "cpu": max, "memory": max}),
            json!({"name": "c", "image": "nginx", "cpu": max, "memory": max}),
        ]));
        let p = policy("{maxTaskCpu: 2048, maxTaskMemory: 4096}");
        let analysis = huge.analyze();
        let task_cpu = p.check("dev", &analysis).into_iter().find(|d| d.path == "spec.Task.cpu").unwrap();
        assert_eq!(task_cpu.found, format!("{} CPU units (the containers' cpu added up)", 3 * max));
        // The sum itself never wraps: past u64 it is "more than any maximum".
        assert_eq!(total([i64::MAX, i64::MAX, i64::MAX].into_iter()), None);
        assert_eq!(total([1, 2].into_iter()), Some(3));
    }

    #[test]
    fn the_service_type_judged_is_the_one_made_where_target_groups_are_bound() {
        let p = policy("allowedServiceTypes: [ClusterIP]");
        let doc = deployment(
            "dev",
            json!({"family": "x", "networkMode": "awsvpc", "containerDefinitions": [{"name": "c", "image": "nginx", "portMappings": [{"containerPort": 80}]}]}),
            Some(
                json!({"serviceName": "x", "loadBalancers": [{"containerName": "c", "containerPort": 80,
                        "targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/x/1"}]}),
            ),
        );
        let analysis = doc.analyze();
        let bound = crate::translate::Integrations {
            target_group_binding: Some(Default::default()),
            ..Default::default()
        };
        assert_eq!(p.check("dev", &analysis).len(), 1, "a LoadBalancer without the controller");
        assert!(
            p.check_in("dev", &analysis, &bound).is_empty(),
            "ClusterIP with a TargetGroupBinding"
        );
    }

    #[test]
    fn secrets_target_groups_and_file_systems_must_be_the_namespaces() {
        let p = policy(
            "allowedSecretArns: ['arn:aws:secretsmanager:*:1:secret:team-a/*', '/team-a/*']\n\
             allowedTargetGroupArns: ['arn:aws:elasticloadbalancing:*:1:targetgroup/team-a-*']\n\
             allowedEfsFileSystems: ['fs-0aaa*']",
        );
        let task = |secret: &str, registry: &str, fs: &str| {
            json!({"family": "x", "volumes": [{"name": "v", "efsVolumeConfiguration": {"fileSystemId": fs}}],
                   "containerDefinitions": [{"name": "c", "image": "nginx", "portMappings": [{"containerPort": 80}],
                     "secrets": [{"name": "S", "valueFrom": secret}],
                     "repositoryCredentials": {"credentialsParameter": registry}}]})
        };
        let service =
            |tg: &str| json!({"serviceName": "x", "loadBalancers": [{"containerName": "c", "containerPort": 80, "targetGroupArn": tg}]});
        let ours = deployment(
            "dev",
            task(
                "arn:aws:secretsmanager:us-east-1:1:secret:team-a/db-AbCdEf:password::",
                "/team-a/registry",
                "fs-0aaa1111",
            ),
            Some(service("arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/team-a-web/0123")),
        );
        assert!(denials(&p, &ours).is_empty(), "{:?}", denials(&p, &ours));
        let theirs = deployment(
            "dev",
            task(
                "arn:aws:secretsmanager:us-east-1:1:secret:team-b/db-AbCdEf",
                "team-b-registry",
                "fs-0bbb2222",
            ),
            Some(service("arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/team-b-web/0123")),
        );
        let found: Vec<String> = denials(&p, &theirs).into_iter().map(|(path, _)| path).collect();
        assert_eq!(
            found,
            [
                "spec.Task.containerDefinitions[0].secrets[0].valueFrom",
                "spec.Task.containerDefinitions[0].repositoryCredentials.credentialsParameter",
                "spec.Task.volumes[0].efsVolumeConfiguration.fileSystemId",
                "spec.Service.loadBalancers[0].targetGroupArn",
            ]
        );
    }

    #[test]
    fn task_roles_must_match_an_allowed_pattern() {
        let p = policy(
            "allowedTaskRoleArns: ['arn:aws:iam::123456789012:role/apps-*']\nnamespaces: {ci: {allowedTaskRoleArns: ['arn:aws:iam::123456789012:role/ci-runner']}}",
        );
        let doc = |ns: &str, arn: &str| deployment(ns, json!({"taskRoleArn": arn, "containerDefinitions": [web(json!({}))]}), None);
        assert!(paths(&p, &doc("dev", "arn:aws:iam::123456789012:role/apps-web")).is_empty());
        let found = denials(&p, &doc("dev", "arn:aws:iam::123456789012:role/admin"));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, "spec.Task.taskRoleArn");
        assert!(found[0].1.starts_with("policy rule `allowedTaskRoleArns`"), "{}", found[0].1);
        // The namespace's own list replaces the cluster-wide one.
        let found = denials(&p, &doc("ci", "arn:aws:iam::123456789012:role/apps-web"));
        assert!(
            found[0].1.starts_with("policy rule `namespaces.ci.allowedTaskRoleArns`"),
            "{}",
            found[0].1
        );
        assert!(paths(&p, &doc("ci", "arn:aws:iam::123456789012:role/ci-runner")).is_empty());
        // No role asks for no privilege.
        assert!(paths(&p, &containers(json!([web(json!({}))]))).is_empty());
        // CloudFormation casing, same rule.
        let cfn = deployment(
            "dev",
            json!({"Properties": {"TaskRoleArn": "arn:aws:iam::123456789012:role/admin", "ContainerDefinitions": [{"Name": "web", "Image": "i", "Memory": 64}]}}),
            None,
        );
        assert_eq!(paths(&p, &cfn), ["spec.Task.Properties.TaskRoleArn"]);
    }

    #[test]
    fn service_types_daemons_and_counts() {
        let p = policy("{allowedServiceTypes: [ClusterIP], denyDaemon: true, maxDesiredCount: 5}");
        let task = json!({"containerDefinitions": [web(json!({"portMappings": [{"containerPort": 80}]}))]});
        let lb = json!({"desiredCount": 6, "loadBalancers": [{"containerName": "web", "containerPort": 80, "targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/x/1"}]});
        let found = denials(&p, &deployment("dev", task.clone(), Some(lb)));
        assert_eq!(
            found.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(),
            ["spec.Service.desiredCount", "spec.Service.loadBalancers"]
        );
        assert!(found[1].1.contains("would create a LoadBalancer Service"), "{}", found[1].1);
        // Ports without load balancers make a ClusterIP Service: allowed.
        assert!(paths(&p, &deployment("dev", task.clone(), Some(json!({"desiredCount": 5})))).is_empty());
        let daemon = deployment("dev", task.clone(), Some(json!({"schedulingStrategy": "DAEMON"})));
        assert_eq!(paths(&p, &daemon), ["spec.Service.schedulingStrategy"]);
        // The default desiredCount (1) is within any maximum.
        assert!(paths(&policy("maxDesiredCount: 1"), &deployment("dev", task.clone(), Some(json!({})))).is_empty());
        let only_lb = policy("allowedServiceTypes: [LoadBalancer]");
        let found = denials(&only_lb, &deployment("dev", task, None));
        assert_eq!(found[0].0, "spec.Task.containerDefinitions");
        assert!(found[0].1.contains("ClusterIP"), "{}", found[0].1);
    }

    #[test]
    fn gpus_add_up_over_the_task() {
        let p = policy("maxGpuCount: 2");
        let gpu = |n: &str| json!({"resourceRequirements": [{"type": "GPU", "value": n}]});
        let doc = containers(json!([
            web(gpu("1")),
            json!({"name": "b", "image": "i", "memory": 64, "resourceRequirements": [{"type": "GPU", "value": "2"}]})
        ]));
        let found = denials(&p, &doc);
        assert_eq!(
            found.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(),
            ["spec.Task.containerDefinitions[1].resourceRequirements[0].value"]
        );
        assert!(found[0].1.starts_with("policy rule `maxGpuCount`"), "{}", found[0].1);
        let analysis = doc.analyze();
        let d = p.check("dev", &analysis).remove(0);
        assert_eq!(
            (d.expected.as_str(), d.found.as_str()),
            ("at most 2 GPUs per task", "2 (the task's GPUs add up to 3 here)")
        );
        assert!(paths(&policy("maxGpuCount: 3"), &doc).is_empty());
    }

    #[test]
    fn non_root_needs_a_numeric_non_zero_user() {
        let p = policy("requireNonRoot: true");
        let doc = containers(json!([
            web(json!({"user": "1000"})),
            json!({"name": "b", "image": "i", "memory": 64, "user": "1000:1000"}),
            json!({"name": "c", "image": "i", "memory": 64, "user": "0"}),
            json!({"name": "d", "image": "i", "memory": 64, "user": "0:1000"}),
            json!({"name": "e", "image": "i", "memory": 64, "user": "nginx"}),
            json!({"name": "f", "image": "i", "memory": 64}),
        ]));
        assert_eq!(
            paths(&p, &doc),
            [
                "spec.Task.containerDefinitions[2].user",
                "spec.Task.containerDefinitions[3].user",
                "spec.Task.containerDefinitions[4].user",
                "spec.Task.containerDefinitions[5].user",
            ]
        );
    }

    #[test]
    fn every_container_needs_memory() {
        let p = policy("requireContainerMemory: true");
        let doc = containers(json!([
            {"name": "a", "image": "nginx", "memory": 128},
            {"name": "b", "image": "nginx", "memoryReservation": 64},
            {"name": "c", "image": "nginx"},
        ]));
        let found = denials(
            &p,
            &deployment(
                "dev",
                json!({"memory": "512", "containerDefinitions": doc.value["spec"]["Task"]["containerDefinitions"]}),
                None,
            ),
        );
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, "spec.Task.containerDefinitions[2].memory");
        assert!(found[0].1.starts_with("policy rule `requireContainerMemory`"));
    }

    #[test]
    fn field_rules_forbid_and_require_with_selectors() {
        let p = policy(
            r#"
fields:
  - path: task.containerDefinitions[*].linuxParameters.devices
    action: forbid
  - path: task.containerDefinitions[*].logConfiguration
    action: require
    name: logs-required
    message: ship logs with awslogs or fluentd
  - path: task.taskRoleArn
    action: require
  - path: service.loadBalancers
    action: forbid
  - path: task.containerDefinitions[0].dockerLabels["team.name"]
    action: require
"#,
        );
        let doc = deployment(
            "dev",
            json!({"containerDefinitions": [
                web(json!({"portMappings": [{"containerPort": 80}], "dockerLabels": {"team.name": "a"}, "logConfiguration": {"logDriver": "awslogs"}, "linuxParameters": {"devices": [{"hostPath": "/dev/fuse"}]}})),
                web(json!({"name": "b", "linuxParameters": {"devices": []}})),
                web(json!({"name": "c", "logConfiguration": {"logDriver": "awslogs"}})),
            ]}),
            Some(
                json!({"desiredCount": 1, "loadBalancers": [{"containerName": "web", "containerPort": 80, "targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/x/1"}]}),
            ),
        );
        let found = denials(&p, &doc);
        assert_eq!(
            found,
            [
                (
                    "spec.Task.containerDefinitions[0].linuxParameters.devices".into(),
                    "policy rule `fields[0]`: `devices` is not allowed in this cluster".into()
                ),
                (
                    "spec.Task.containerDefinitions[1].logConfiguration".into(),
                    "policy rule `logs-required`: ship logs with awslogs or fluentd".into()
                ),
                (
                    "spec.Task.taskRoleArn".into(),
                    "policy rule `fields[2]`: `taskRoleArn` is required in this cluster".into()
                ),
                (
                    "spec.Service.loadBalancers".into(),
                    "policy rule `fields[3]`: `loadBalancers` is not allowed in this cluster".into()
                ),
            ]
        );
        // `[*]` over no items requires nothing; a service rule without a service is moot.
        let bare = deployment(
            "dev",
            json!({"taskRoleArn": "arn:aws:iam::1:role/r", "containerDefinitions": []}),
            None,
        );
        assert_eq!(paths(&p, &bare), ["spec.Task.containerDefinitions[0].dockerLabels[\"team.name\"]"]);
    }

    #[test]
    fn namespace_overrides_replace_cluster_wide_rules() {
        let p = policy(
            r#"
denyPrivileged: true
maxContainerCpu: 1024
fields:
  - {path: task.taskRoleArn, action: require}
namespaces:
  kube-system:
    denyPrivileged: false
    fields: []
  dev:
    maxContainerCpu: 256
    fields:
      - {path: "task.containerDefinitions[*].user", action: require}
"#,
        );
        let doc = |ns: &str| {
            deployment(
                ns,
                json!({"containerDefinitions": [web(json!({"privileged": true, "cpu": 512, "user": "1000"}))]}),
                None,
            )
        };
        let rules = |ns: &str| {
            denials(&p, &doc(ns))
                .into_iter()
                .map(|(_, m)| m.split('`').nth(1).unwrap().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(rules("prod"), ["denyPrivileged", "fields[0]"]);
        assert!(rules("kube-system").is_empty());
        assert_eq!(rules("dev"), ["denyPrivileged", "namespaces.dev.maxContainerCpu"]);
        let eff = p.effective("dev");
        assert!(eff.deny_privileged);
        assert_eq!(eff.max_container_cpu, Some(256));
        assert_eq!(eff.fields.len(), 1);
        assert_eq!(p.effective("other").max_container_cpu, Some(1024));
    }

    #[test]
    fn every_rule_can_be_overridden_under_its_own_name() {
        let keys = [
            ("allowedImagePrefixes", "[a/]"),
            ("denyPrivileged", "true"),
            ("denyHostNetwork", "true"),
            ("denyHostPid", "true"),
            ("denyHostIpc", "true"),
            ("denyHostPathVolumes", "true"),
            ("denyAddedCapabilities", "true"),
            ("allowedCapabilities", "[NET_RAW]"),
            ("maxTaskCpu", "1"),
            ("maxTaskMemory", "1"),
            ("maxContainerCpu", "1"),
            ("maxContainerMemory", "1"),
            ("requireContainerMemory", "true"),
            ("requireNonRoot", "true"),
            ("allowedTaskRoleArns", "['arn:aws:iam::1:role/*']"),
            ("allowedSecretArns", "['/a/*']"),
            ("allowedTargetGroupArns", "['arn:*']"),
            ("allowedEfsFileSystems", "['fs-1*']"),
            ("allowedServiceTypes", "[ClusterIP]"),
            ("loadBalancerSourceRanges", "[10.0.0.0/8]"),
            ("denyDaemon", "true"),
            ("maxDesiredCount", "3"),
            ("maxGpuCount", "1"),
            ("fields", "[]"),
        ];
        let yaml = keys.iter().map(|(k, v)| format!("    {k}: {v}\n")).collect::<String>();
        let p = policy(&format!("{}namespaces:\n  ns:\n{yaml}", yaml.replace("    ", "")));
        let eff = p.effective("ns");
        assert_eq!(eff.overridden, keys.iter().map(|(k, _)| *k).collect());
        assert_eq!(p.effective("other").overridden, BTreeSet::new());
    }
}
