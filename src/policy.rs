//! The cluster admin's ECS field policy: what a pasted task or service may
//! contain in this cluster, read from a YAML file (`--policy FILE`, usually a
//! mounted ConfigMap) and reloaded when that file changes.
//!
//! Every rule reads the canonical definition (ECS API names, exact types), so
//! one policy covers both the camelCase and the CloudFormation spelling; a
//! denial points at the path as the user wrote it.

use crate::diag::{show, Code, Diagnostic, Severity};
use crate::ecs::model::TaskDefinition;
use crate::ecs::schema::{Kind, Schema, ShapeId, API, CFN};
use crate::ecs::units::{parse_task_cpu, parse_task_memory};
use crate::path::Seg;
use crate::validate::structure::did_you_mean;
use crate::validate::{Analysis, Definition};
use crate::{at, written};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path as FsPath, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read policy file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid policy{}: {message}", path.as_ref().map(|p| format!(" file {}", p.display())).unwrap_or_default())]
    Invalid { path: Option<PathBuf>, message: String },
}

/// Declares the rules once; the file's struct, the per-namespace override and
/// the merged view must never disagree on the list.
macro_rules! policy_rules {
    ($( $(#[doc = $doc:expr])* $field:ident: $ty:ty = $key:literal, )*) => {
        /// The policy file. Every rule is off unless written, so `{}` allows everything.
        #[derive(Debug, Clone, Default, PartialEq, Deserialize)]
        #[serde(deny_unknown_fields, rename_all = "camelCase")]
        pub struct Policy {
            $( $(#[doc = $doc])* #[serde(default)] pub $field: $ty, )*
            /// Per-namespace overrides: a rule written there replaces the
            /// cluster-wide one for objects in that namespace.
            #[serde(default)]
            pub namespaces: BTreeMap<String, PolicyOverride>,
        }

        /// One namespace's replacements; a rule left out (or null) keeps the cluster-wide value.
        #[derive(Debug, Clone, Default, PartialEq, Deserialize)]
        #[serde(deny_unknown_fields, rename_all = "camelCase")]
        pub struct PolicyOverride {
            $( #[serde(default)] pub $field: Option<$ty>, )*
        }

        /// The rules in force for one namespace.
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct Effective {
            $( $(#[doc = $doc])* pub $field: $ty, )*
            namespace: String,
            /// Rules whose value came from the namespace, so a denial names the rule the admin must edit.
            overridden: BTreeSet<&'static str>,
        }

        impl Policy {
            /// The cluster-wide rules with `namespace`'s overrides applied.
            pub fn effective(&self, namespace: &str) -> Effective {
                let o = self.namespaces.get(namespace);
                let mut overridden = BTreeSet::new();
                Effective {
                    $( $field: match o.and_then(|o| o.$field.as_ref()) {
                        Some(v) => {
                            overridden.insert($key);
                            v.clone()
                        }
                        None => self.$field.clone(),
                    }, )*
                    namespace: namespace.to_string(),
                    overridden,
                }
            }
        }
    };
}

policy_rules! {
    /// Images must start with one of these (empty: any image). A prefix ending in
    /// a letter or digit matches whole names only: `ghcr.io/acme` allows
    /// `ghcr.io/acme/api:1`, not `ghcr.io/acme-evil/api`.
    allowed_image_prefixes: Vec<String> = "allowedImagePrefixes",
    /// No container may set `privileged: true`.
    deny_privileged: bool = "denyPrivileged",
    /// No `networkMode: host`.
    deny_host_network: bool = "denyHostNetwork",
    /// No `pidMode: host`.
    deny_host_pid: bool = "denyHostPid",
    /// No `ipcMode: host`.
    deny_host_ipc: bool = "denyHostIpc",
    /// No volume with `host.sourcePath` (a node directory).
    deny_host_path_volumes: bool = "denyHostPathVolumes",
    /// No `linuxParameters.capabilities.add`, except the `allowedCapabilities`.
    deny_added_capabilities: bool = "denyAddedCapabilities",
    /// Capabilities containers may still add under `denyAddedCapabilities` (`NET_BIND_SERVICE`; `CAP_` optional).
    allowed_capabilities: Vec<String> = "allowedCapabilities",
    /// Task `cpu` at most this many CPU units (1024 per vCPU); without a task
    /// `cpu`, the containers' `cpu` added up.
    max_task_cpu: Option<u64> = "maxTaskCpu",
    /// Task `memory` at most this many MiB; without a task `memory`, the
    /// containers' `memory` (or `memoryReservation`) added up.
    max_task_memory: Option<u64> = "maxTaskMemory",
    /// A container's `cpu` at most this many CPU units.
    max_container_cpu: Option<u64> = "maxContainerCpu",
    /// A container's `memory` and `memoryReservation` at most this many MiB.
    max_container_memory: Option<u64> = "maxContainerMemory",
    /// Every container sets `memory` or `memoryReservation`.
    require_container_memory: bool = "requireContainerMemory",
    /// Any field forbidden or required by selector.
    fields: Vec<FieldRule> = "fields",
}

/// Forbids or requires whatever a selector names.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldRule {
    pub path: Selector,
    pub action: Action,
    /// Told to the user instead of the default text (say why, or what to use instead).
    #[serde(default)]
    pub message: Option<String>,
    /// The rule's name in denials; `fields[N]` when not given.
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// The field must be absent (null, `[]` and `{}` count as absent).
    Forbid,
    /// The field must be present and not empty.
    Require,
}

/// A place in the canonical task or service: `task.containerDefinitions[*].logConfiguration`.
/// `[*]` is every item of a list, `[N]` one item, `["a.b"]` a map key with dots.
/// Checked against the AWS models when the policy is read, so a typo is an error.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Selector {
    text: String,
    pub root: Root,
    pub segs: Vec<Step>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    Task,
    Service,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
    Each,
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl TryFrom<String> for Selector {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        let after = |root: &str| text.strip_prefix(root).filter(|r| r.starts_with(['.', '[']));
        let (root, mut rest) = if let Some(r) = after("task") {
            (Root::Task, r)
        } else if let Some(r) = after("service") {
            (Root::Service, r)
        } else {
            return Err(format!("selector `{text}` must start with `task.` or `service.`"));
        };
        let mut segs = Vec::new();
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix('.') {
                let end = r.find(['.', '[']).unwrap_or(r.len());
                let key = &r[..end];
                if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                    return Err(format!(
                        "selector `{text}`: `{key}` is not a field name (quote odd keys: `[\"a.b\"]`)"
                    ));
                }
                segs.push(Step::Key(key.to_string()));
                rest = &r[end..];
            } else if let Some(r) = rest.strip_prefix("[\"") {
                // A JSON string up to its closing quote, escapes and all.
                let mut stream = serde_json::Deserializer::from_str(&rest[1..]).into_iter::<String>();
                let key = match stream.next() {
                    Some(Ok(k)) => k,
                    _ => return Err(format!("selector `{text}`: unterminated quoted key at `[\"{r}`")),
                };
                let after = &rest[1 + stream.byte_offset()..];
                rest = after
                    .strip_prefix(']')
                    .ok_or_else(|| format!("selector `{text}`: expected `]` after the quoted key"))?;
                segs.push(Step::Key(key));
            } else if let Some(r) = rest.strip_prefix('[') {
                let end = r.find(']').ok_or_else(|| format!("selector `{text}`: unclosed `[`"))?;
                segs.push(match &r[..end] {
                    "*" => Step::Each,
                    n => Step::Index(
                        n.parse()
                            .map_err(|_| format!("selector `{text}`: `[{n}]` is neither `[*]`, an index nor a quoted key"))?,
                    ),
                });
                rest = &r[end + 1..];
            } else {
                return Err(format!("selector `{text}`: expected `.field`, `[*]` or `[N]` at `{rest}`"));
            }
        }
        let sel = Selector { text, root, segs };
        // CloudFormation has a few members the ECS API lacks; either model will do.
        sel.check_model(&API)
            .or_else(|api_err| sel.check_model(&CFN).map_err(|_| api_err))?;
        Ok(sel)
    }
}

impl Selector {
    /// Whether the AWS model has this place: a selector that can never match is a typo.
    fn check_model(&self, schema: &'static Schema) -> Result<(), String> {
        let (mut shape, mut here): (ShapeId, String) = match self.root {
            Root::Task => (schema.task_root, "task".into()),
            Root::Service => (schema.service_root, "service".into()),
        };
        let fail = |msg: String| Err(format!("selector `{}`: {msg}", self.text));
        for seg in &self.segs {
            match (seg, &schema.shape(shape).kind) {
                (_, Kind::Any | Kind::StringOrObject) => return Ok(()),
                (Step::Key(k), Kind::Struct(members)) => {
                    let Some(m) = members.iter().find(|m| m.canonical == k) else {
                        let hint = did_you_mean(k, members.iter().filter(|m| !m.read_only).map(|m| m.canonical))
                            .map(|s| format!("; did you mean `{s}`?"))
                            .unwrap_or_default();
                        return fail(format!("`{here}` has no field `{k}`{hint}"));
                    };
                    if m.read_only {
                        return fail(format!(
                            "`{here}.{k}` is filled in by AWS and ignored, so a rule on it never applies"
                        ));
                    }
                    shape = m.shape;
                    here = format!("{here}.{k}");
                }
                (Step::Key(k), Kind::Map { value }) => {
                    shape = *value;
                    here = format!("{here}[{}]", Value::String(k.clone()));
                }
                (Step::Each | Step::Index(_), Kind::List { item, .. }) => {
                    shape = *item;
                    here.push_str(&match seg {
                        Step::Index(i) => format!("[{i}]"),
                        _ => "[*]".into(),
                    });
                }
                (Step::Key(k), Kind::List { .. }) => return fail(format!("`{here}` is a list: write `{here}[*].{k}` or `{here}[N].{k}`")),
                (Step::Each | Step::Index(_), _) => return fail(format!("`{here}` is not a list")),
                (Step::Key(k), _) => return fail(format!("`{here}` is a single value, it has no field `{k}`")),
            }
        }
        Ok(())
    }

    /// Every place the selector names in `value`: its canonical path and what is there.
    /// `[*]` over an absent or empty list names nothing, so `require` on it holds vacuously.
    fn expand<'v>(&self, value: &'v Value) -> Vec<(Vec<Seg>, Option<&'v Value>)> {
        fn walk<'v>(value: Option<&'v Value>, steps: &[Step], path: &mut Vec<Seg>, out: &mut Vec<(Vec<Seg>, Option<&'v Value>)>) {
            let Some((step, rest)) = steps.split_first() else {
                out.push((path.clone(), value));
                return;
            };
            match step {
                Step::Key(k) => {
                    path.push(Seg::Key(k.clone()));
                    walk(value.and_then(|v| v.get(k)), rest, path, out);
                    path.pop();
                }
                Step::Index(i) => {
                    path.push(Seg::Index(*i));
                    walk(value.and_then(|v| v.get(*i)), rest, path, out);
                    path.pop();
                }
                Step::Each => {
                    for (i, item) in value.and_then(Value::as_array).into_iter().flatten().enumerate() {
                        path.push(Seg::Index(i));
                        walk(Some(item), rest, path, out);
                        path.pop();
                    }
                }
            }
        }
        let mut out = Vec::new();
        walk(Some(value), &self.segs, &mut Vec::new(), &mut out);
        out
    }
}

/// Null, `[]` and `{}` say nothing, for `forbid` as for `require`.
fn present(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(_) => true,
    }
}

impl Policy {
    /// Reads a policy file's text. Unknown keys, wrong types and bad selectors
    /// are errors with serde's line and column; an empty file is one too, since
    /// a half-written file must not silently allow everything (write `{}`).
    pub fn from_yaml(text: &str) -> Result<Policy, PolicyError> {
        let invalid = |message: String| PolicyError::Invalid { path: None, message };
        let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if doc.is_null() {
            return Err(invalid("the policy is empty; write `{}` to allow everything".into()));
        }
        let policy: Policy = serde_yaml_ng::from_str(text).map_err(|e| invalid(e.to_string()))?;
        policy.check_values().map_err(invalid)?;
        Ok(policy)
    }

    /// What serde cannot say: values that would quietly defeat a rule.
    fn check_values(&self) -> Result<(), String> {
        let mut lists = vec![(String::new(), self.allowed_image_prefixes.as_slice())];
        for (ns, o) in &self.namespaces {
            if let Some(p) = &o.allowed_image_prefixes {
                lists.push((format!("namespaces.{ns}."), p.as_slice()));
            }
        }
        for (at, prefixes) in lists {
            if let Some(i) = prefixes.iter().position(|p| p.trim().is_empty()) {
                return Err(format!(
                    "{at}allowedImagePrefixes[{i}] is empty, which would allow every image; leave the list out to allow any image"
                ));
            }
        }
        Ok(())
    }

    /// The denials for one analyzed object in `namespace`.
    pub fn check(&self, namespace: &str, analysis: &Analysis<'_>) -> Vec<Diagnostic> {
        self.effective(namespace).check(analysis)
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

impl Effective {
    /// The denials for one analyzed object.
    pub fn check(&self, analysis: &Analysis<'_>) -> Vec<Diagnostic> {
        let mut d = Denials {
            rules: self,
            out: Vec::new(),
        };
        if let Some(t) = &analysis.task {
            self.check_host_modes(t, &mut d);
            self.check_containers(t, &mut d);
            self.check_task_size(t, &mut d);
            self.check_volumes(t, &mut d);
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
                            &format!("adding the Linux capability {cap} is not allowed in this cluster"),
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

    /// Task cpu/memory; without them the task is as big as its containers together.
    fn check_task_size(&self, t: Task, d: &mut Denials) {
        let m = &t.model;
        let containers = &m.container_definitions;
        let sum = |f: &dyn Fn(&crate::ecs::model::ContainerDefinition) -> Option<i64>| -> u64 {
            containers.iter().filter_map(f).map(|v| u64::try_from(v).unwrap_or(0)).sum()
        };
        let checks = [
            (
                self.max_task_cpu,
                "maxTaskCpu",
                "cpu",
                m.cpu.as_deref().map(|s| (s, parse_task_cpu(s))),
                sum(&|c| c.cpu),
                "CPU units",
                "CPU",
            ),
            (
                self.max_task_memory,
                "maxTaskMemory",
                "memory",
                m.memory.as_deref().map(|s| (s, parse_task_memory(s))),
                sum(&|c| c.memory.or(c.memory_reservation)),
                "MiB",
                "memory",
            ),
        ];
        for (max, rule, field, task_value, containers_total, unit, what) in checks {
            let Some(max) = max else { continue };
            match task_value {
                // Unparsable values are the task rules' to report.
                Some((_, None)) => {}
                Some((s, Some(v))) if v > max => d.deny(
                    &d.rule(rule),
                    at!(t, field),
                    &format!("the task asks for more {what} than this cluster allows"),
                    format!("at most {max} {unit}"),
                    if s.trim() == v.to_string() {
                        format!("\"{s}\"")
                    } else {
                        format!("\"{s}\" ({v} {unit})")
                    },
                ),
                Some(_) => {}
                None if containers_total > max => d.deny(
                    &d.rule(rule),
                    at!(t, field),
                    &format!("the containers together ask for more {what} than this cluster allows a task"),
                    format!("at most {max} {unit} in all"),
                    format!("{containers_total} {unit} (the containers' {field} added up)"),
                ),
                None => {}
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
            Action::Forbid if present(value) => {
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
            Action::Require if !present(value) && !refused => {
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

/// The policy in force, shared by the webhook and the controller, and swapped
/// whole when the file changes so a check never sees half of two policies.
#[derive(Debug, Clone)]
pub struct PolicyStore {
    inner: Arc<StoreInner>,
}

#[derive(Debug)]
struct StoreInner {
    file: Option<PathBuf>,
    current: RwLock<Arc<Policy>>,
    /// The file's content at the last poll, good or bad (or the read error):
    /// ConfigMap updates swap a symlink, so content is what tells a change, and
    /// one bad edit is then logged and counted once, not at every poll.
    last_seen: Mutex<Result<String, String>>,
    reloads: AtomicU64,
    reload_failures: AtomicU64,
}

impl PolicyStore {
    /// No `--policy`: everything is allowed, nothing is watched.
    pub fn empty() -> Self {
        Self::fixed(Policy::default())
    }

    /// A policy that never changes (tests, embedding).
    pub fn fixed(policy: Policy) -> Self {
        Self::new(None, policy, String::new())
    }

    /// Reads the policy file at startup; unreadable or invalid is an error.
    pub fn load(path: impl Into<PathBuf>) -> Result<Self, PolicyError> {
        let path = path.into();
        let text = std::fs::read_to_string(&path).map_err(|source| PolicyError::Read {
            path: path.clone(),
            source,
        })?;
        let policy = Policy::from_yaml(&text).map_err(|e| in_file(e, &path))?;
        Ok(Self::new(Some(path), policy, text))
    }

    fn new(file: Option<PathBuf>, policy: Policy, text: String) -> Self {
        PolicyStore {
            inner: Arc::new(StoreInner {
                file,
                current: RwLock::new(Arc::new(policy)),
                last_seen: Mutex::new(Ok(text)),
                reloads: AtomicU64::new(0),
                reload_failures: AtomicU64::new(0),
            }),
        }
    }

    /// The policy file, if any.
    pub fn file(&self) -> Option<&FsPath> {
        self.inner.file.as_deref()
    }

    /// The policy in force now.
    pub fn current(&self) -> Arc<Policy> {
        self.inner.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Runtime reloads that changed the policy (the startup load not counted).
    pub fn reloads(&self) -> u64 {
        self.inner.reloads.load(Ordering::Relaxed)
    }

    /// Runtime edits refused (unreadable or invalid), each counted once.
    pub fn reload_failures(&self) -> u64 {
        self.inner.reload_failures.load(Ordering::Relaxed)
    }

    /// Re-reads the file: `Ok(true)` when a new policy took effect, `Ok(false)`
    /// when the content is as last seen (or there is no file), `Err` for a new
    /// bad edit, which keeps the last good policy.
    pub async fn reload(&self) -> Result<bool, PolicyError> {
        let Some(path) = &self.inner.file else { return Ok(false) };
        let read = tokio::fs::read_to_string(path).await;
        let seen = read.as_ref().map(Clone::clone).map_err(ToString::to_string);
        {
            let mut last = self.inner.last_seen.lock().unwrap_or_else(|e| e.into_inner());
            if *last == seen {
                return Ok(false);
            }
            *last = seen;
        }
        let parsed = match read {
            Ok(text) => Policy::from_yaml(&text).map_err(|e| in_file(e, path)),
            Err(source) => Err(PolicyError::Read {
                path: path.clone(),
                source,
            }),
        };
        match parsed {
            Ok(policy) => {
                let mut current = self.inner.current.write().unwrap_or_else(|e| e.into_inner());
                // Comments edited, or a bad edit undone: nothing new took effect.
                if **current == policy {
                    return Ok(false);
                }
                *current = Arc::new(policy);
                drop(current);
                self.inner.reloads.fetch_add(1, Ordering::Relaxed);
                tracing::info!(file = %path.display(), "policy reloaded");
                Ok(true)
            }
            Err(e) => {
                self.inner.reload_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "policy file changed but cannot be used; keeping the last good policy");
                Err(e)
            }
        }
    }

    /// Polls the file every `interval` on the current tokio runtime; `None`
    /// when there is no file to watch.
    pub fn spawn_reloader(&self, interval: Duration) -> Option<tokio::task::JoinHandle<()>> {
        self.inner.file.as_ref()?;
        let store = self.clone();
        Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                // Errors are logged and counted inside.
                let _ = store.reload().await;
            }
        }))
    }
}

fn in_file(e: PolicyError, path: &FsPath) -> PolicyError {
    match e {
        PolicyError::Invalid { message, .. } => PolicyError::Invalid {
            path: Some(path.to_path_buf()),
            message,
        },
        other => other,
    }
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
        assert_eq!(paths(&p, &sum), ["spec.Task.memory"]);
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
            ("fields", "[]"),
        ];
        let yaml = keys.iter().map(|(k, v)| format!("    {k}: {v}\n")).collect::<String>();
        let p = policy(&format!("{}namespaces:\n  ns:\n{yaml}", yaml.replace("    ", "")));
        let eff = p.effective("ns");
        assert_eq!(eff.overridden, keys.iter().map(|(k, _)| *k).collect());
        assert_eq!(p.effective("other").overridden, BTreeSet::new());
    }

    #[test]
    fn the_example_policy_is_valid() {
        let manifest: serde_yaml_ng::Value = serde_yaml_ng::from_str(include_str!("../webhook-config/policy-example.yaml")).unwrap();
        assert_eq!(manifest["metadata"]["name"].as_str(), Some("ecskube-policy"));
        let p = policy(manifest["data"]["policy.yaml"].as_str().unwrap());
        assert!(p.deny_privileged && !p.fields.is_empty());
        assert!(!p.effective("monitoring").deny_host_pid);
        assert!(p.effective("sandbox").allowed_image_prefixes.is_empty());
    }

    #[test]
    fn invalid_policies_are_clear_errors() {
        let err = |yaml: &str| Policy::from_yaml(yaml).unwrap_err().to_string();
        let e = err("denyPrivileged: true\ndenyPrivilegd: true\n");
        assert!(e.contains("unknown field `denyPrivilegd`") && e.contains("line 2"), "{e}");
        let e = err("namespaces:\n  dev:\n    maxTaskCPU: 1\n");
        assert!(e.contains("unknown field `maxTaskCPU`"), "{e}");
        let e = err("maxTaskCpu: lots\n");
        assert!(e.contains("maxTaskCpu") && e.contains("line 1"), "{e}");
        let e = err("fields:\n  - {path: 'task.containerDefinition[*].image', action: forbid}\n");
        assert!(
            e.contains("no field `containerDefinition`; did you mean `containerDefinitions`?") && e.contains("line 2"),
            "{e}"
        );
        let e = err("fields:\n  - {path: task.containerDefinitions.image, action: forbid}\n");
        assert!(e.contains("is a list: write `task.containerDefinitions[*].image`"), "{e}");
        assert!(err("fields:\n  - {path: taskRoleArn, action: require}\n").contains("must start with `task.` or `service.`"));
        assert!(err("fields:\n  - {path: task.revision, action: require}\n").contains("filled in by AWS"));
        assert!(err("fields:\n  - {path: task.cpu, action: deny}\n").contains("unknown variant `deny`"));
        assert!(err("allowedImagePrefixes: ['']\n").contains("allowedImagePrefixes[0] is empty"));
        assert!(err("").contains("the policy is empty"));
        let e = err("fields:\n  - path: task.containerDefinitions[*].linuxParameters.capabilitie.add\n    action: forbid\n");
        assert!(
            e.contains("fields[0]: selector") && e.contains("did you mean `capabilities`?"),
            "{e}"
        );
        assert!(err("fields:\n  - path: task.cpu\n").contains("missing field `action`"));
        assert!(err("# only a comment\n").contains("the policy is empty"));
        assert!(err("[1, 2]").contains("invalid policy"));
    }

    #[test]
    fn startup_load_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("policy.yaml");
        let e = PolicyStore::load(&file).unwrap_err().to_string();
        assert!(e.starts_with("cannot read policy file"), "{e}");
        std::fs::write(&file, "denyPrivilegd: true\n").unwrap();
        let e = PolicyStore::load(&file).unwrap_err().to_string();
        assert!(e.contains(&file.display().to_string()) && e.contains("denyPrivilegd"), "{e}");
        assert!(PolicyStore::empty().current().fields.is_empty());
        assert!(PolicyStore::empty().spawn_reloader(Duration::from_secs(1)).is_none());
    }

    #[tokio::test]
    async fn hot_reload_keeps_the_last_good_policy() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("policy.yaml");
        // As a ConfigMap update does: a complete new file swapped in, never half written.
        let replace = |text: &str| {
            let staged = dir.path().join("staged.yaml");
            std::fs::write(&staged, text).unwrap();
            std::fs::rename(&staged, &file).unwrap();
        };
        replace("denyPrivileged: false\n");
        let store = PolicyStore::load(&file).unwrap();
        let doc = containers(json!([web(json!({"privileged": true}))]));
        let analysis = doc.analyze();
        let denied = |store: &PolicyStore| store.current().check("dev", &analysis).len();
        assert_eq!(denied(&store), 0);
        let reloader = store.spawn_reloader(Duration::from_millis(10)).unwrap();

        async fn until(what: &str, cond: impl Fn() -> bool) {
            for _ in 0..500 {
                if cond() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("timed out waiting for {what}");
        }

        replace("denyPrivileged: true\n");
        until("the stricter policy", || denied(&store) == 1).await;
        assert_eq!((store.reloads(), store.reload_failures()), (1, 0));

        replace("denyPrivileged: [oops\n");
        until("the failure to be counted", || store.reload_failures() == 1).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        // Counted once however often it is polled; the last good policy stays.
        assert_eq!((store.reloads(), store.reload_failures()), (1, 1));
        assert_eq!(denied(&store), 1);

        replace("{}\n");
        until("the relaxed policy", || denied(&store) == 0).await;
        assert_eq!(store.reloads(), 2);
        reloader.abort();
        assert!(reloader.await.unwrap_err().is_cancelled());

        // Unchanged content, or only comments changed, is not a reload.
        assert!(!store.reload().await.unwrap());
        replace("# allow everything\n{}\n");
        assert!(!store.reload().await.unwrap());
        assert_eq!((store.reloads(), store.reload_failures()), (2, 1));
    }
}
