//! The cluster admin's ECS field policy: what a pasted task or service may
//! contain in this cluster, read from a YAML file (`--policy FILE`, usually a
//! mounted ConfigMap) and reloaded when that file changes.
//!
//! Every rule reads the canonical definition (ECS API names, exact types), so
//! one policy covers both the camelCase and the CloudFormation spelling; a
//! denial points at the path as the user wrote it. The webhook and the
//! controller both judge with [`PolicyStore::current`], so what is admitted and
//! what runs are held to the same rules.
//!
//! - `selector`: the places field rules name, checked against the AWS models;
//! - `evaluate`: the rules applied to one analyzed object;
//! - `store`: the policy in force, reloaded when its file changes.

mod evaluate;
mod selector;
mod store;

pub use selector::{Root, Selector, Step};
pub use store::PolicyStore;

use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;

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
            pub(crate) namespace: String,
            /// Rules whose value came from the namespace, so a denial names the rule the admin must edit.
            pub(crate) overridden: BTreeSet<&'static str>,
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
    /// Every container runs as a numeric, non-zero `user` (absent: the image's
    /// user, which may be root, so it is denied too).
    require_non_root: bool = "requireNonRoot",
    /// `taskRoleArn` (the IAM role the pods get through IRSA) must match one of
    /// these patterns (`*` any characters, `?` one); empty: any role.
    allowed_task_role_arns: Vec<ArnPattern> = "allowedTaskRoleArns",
    /// `secrets[].valueFrom` and `repositoryCredentials.credentialsParameter`
    /// (Secrets Manager and SSM ARNs, SSM parameter names) must match one of
    /// these patterns; empty: any. With External Secrets, ecskube reads them
    /// with the store's AWS identity, not the user's: say which are this namespace's.
    allowed_secret_arns: Vec<AwsPattern> = "allowedSecretArns",
    /// `loadBalancers[].targetGroupArn` must match one of these; empty: any.
    /// A TargetGroupBinding hands the whole target group to the AWS Load
    /// Balancer Controller, so a namespace must not name another's.
    allowed_target_group_arns: Vec<AwsPattern> = "allowedTargetGroupArns",
    /// `efsVolumeConfiguration.fileSystemId` must match one of these; empty:
    /// any. With the EFS CSI driver ecskube creates the PersistentVolume
    /// (cluster-scoped, which namespace users cannot create themselves).
    allowed_efs_file_systems: Vec<AwsPattern> = "allowedEfsFileSystems",
    /// The Kubernetes Service types a definition may produce (`ClusterIP`,
    /// `LoadBalancer`); empty: any.
    allowed_service_types: Vec<ServiceType> = "allowedServiceTypes",
    /// Every LoadBalancer Service ecskube creates accepts traffic only from
    /// these CIDR blocks (`spec.loadBalancerSourceRanges`); empty: from anywhere.
    load_balancer_source_ranges: Vec<String> = "loadBalancerSourceRanges",
    /// No `schedulingStrategy: DAEMON` (a pod on every node).
    deny_daemon: bool = "denyDaemon",
    /// A service's `desiredCount` at most this (at least 1).
    max_desired_count: Option<u64> = "maxDesiredCount",
    /// The task's GPUs (`resourceRequirements` of type GPU, all containers) at most this.
    max_gpu_count: Option<u64> = "maxGpuCount",
    /// Task `cpu` at most this many CPU units (1024 per vCPU); without a task
    /// `cpu`, the containers' `cpu` added up.
    max_task_cpu: Option<u64> = "maxTaskCpu",
    /// Task `memory` at most this many MiB; without a task `memory`, every
    /// container needs a hard `memory` limit and those are added up.
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

/// A `taskRoleArn` pattern: `*` matches any characters (`/` too), `?` one.
/// Compiled once, when the policy is read.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "String")]
pub struct ArnPattern {
    text: String,
    matcher: globset::GlobMatcher,
}

impl PartialEq for ArnPattern {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl fmt::Display for ArnPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl TryFrom<String> for ArnPattern {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        if text.trim().is_empty() {
            return Err("an empty taskRoleArn pattern would match nothing useful; write `*` to allow any role".into());
        }
        if text != "*" && !text.starts_with("arn:") {
            return Err(format!(
                "taskRoleArn pattern `{text}` must start with `arn:` (e.g. `arn:aws:iam::123456789012:role/team-a-*`)"
            ));
        }
        let glob = globset::GlobBuilder::new(&text)
            .literal_separator(false)
            .backslash_escape(true)
            .build()
            .map_err(|e| format!("taskRoleArn pattern `{text}`: {e}"))?;
        Ok(ArnPattern {
            matcher: glob.compile_matcher(),
            text,
        })
    }
}

impl ArnPattern {
    pub fn matches(&self, arn: &str) -> bool {
        self.matcher.is_match(arn)
    }
}

/// A pattern for an AWS reference that need not be an ARN (an SSM parameter
/// name, an EFS file system id): the same glob, without the `arn:` check.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "String")]
pub struct AwsPattern(ArnPattern);

impl TryFrom<String> for AwsPattern {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        if text.trim().is_empty() {
            return Err("an empty pattern would match nothing useful; write `*` to allow any".into());
        }
        let glob = globset::GlobBuilder::new(&text)
            .literal_separator(false)
            .backslash_escape(true)
            .build()
            .map_err(|e| format!("pattern `{text}`: {e}"))?;
        Ok(AwsPattern(ArnPattern {
            matcher: glob.compile_matcher(),
            text,
        }))
    }
}

impl fmt::Display for AwsPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl AwsPattern {
    pub fn matches(&self, s: &str) -> bool {
        self.0.matches(s)
    }
}

/// The Kubernetes Service types a translation can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum ServiceType {
    ClusterIP,
    NodePort,
    LoadBalancer,
}

impl ServiceType {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceType::ClusterIP => "ClusterIP",
            ServiceType::NodePort => "NodePort",
            ServiceType::LoadBalancer => "LoadBalancer",
        }
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
        let mut scopes = vec![(String::new(), self.effective(""))];
        for ns in self.namespaces.keys() {
            scopes.push((format!("namespaces.{ns}."), self.effective(ns)));
        }
        for (at, rules) in scopes {
            if let Some(i) = rules.allowed_image_prefixes.iter().position(|p| p.trim().is_empty()) {
                return Err(format!(
                    "{at}allowedImagePrefixes[{i}] is empty, which would allow every image; leave the list out to allow any image"
                ));
            }
            if rules.max_desired_count == Some(0) {
                return Err(format!(
                    "{at}maxDesiredCount is 0; it must be at least 1 (use denyDaemon or a field rule to forbid services)"
                ));
            }
            for (i, range) in rules.load_balancer_source_ranges.iter().enumerate() {
                if !is_cidr(range) {
                    return Err(format!(
                        "{at}loadBalancerSourceRanges[{i}] `{range}` is not a CIDR block (e.g. 10.0.0.0/8 or 2001:db8::/32)"
                    ));
                }
            }
        }
        Ok(())
    }

    /// What the translation must add for `namespace` (the same in the webhook's
    /// preflight, the controller and `ecskube convert --policy`).
    pub fn translate_options(&self, namespace: &str) -> crate::translate::Options {
        crate::translate::Options {
            load_balancer_source_ranges: self.effective(namespace).load_balancer_source_ranges,
            ..Default::default()
        }
    }
}

/// `10.0.0.0/8`, `2001:db8::/32`: an address and a prefix length that fits it.
fn is_cidr(s: &str) -> bool {
    let Some((addr, bits)) = s.split_once('/') else { return false };
    let Ok(bits) = bits.parse::<u8>() else { return false };
    match addr.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => bits <= 32,
        Ok(std::net::IpAddr::V6(_)) => bits <= 128,
        Err(_) => false,
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    fn policy(yaml: &str) -> Policy {
        Policy::from_yaml(yaml).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_example_policy_is_valid() {
        let manifest: serde_yaml_ng::Value = serde_yaml_ng::from_str(include_str!("../../webhook-config/policy-example.yaml")).unwrap();
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
        assert!(err("maxDesiredCount: 0\n").contains("maxDesiredCount is 0"));
        assert!(err("namespaces: {dev: {maxDesiredCount: 0}}\n").contains("namespaces.dev.maxDesiredCount is 0"));
        let e = err("loadBalancerSourceRanges: [10.0.0.0/33]\n");
        assert!(e.contains("loadBalancerSourceRanges[0] `10.0.0.0/33` is not a CIDR block"), "{e}");
        assert!(err("loadBalancerSourceRanges: [internal]\n").contains("not a CIDR block"));
        let e = err("allowedTaskRoleArns: ['role/x']\n");
        assert!(e.contains("must start with `arn:`") && e.contains("line 1"), "{e}");
        assert!(err("allowedTaskRoleArns: ['']\n").contains("empty taskRoleArn pattern"));
        assert!(err("allowedTaskRoleArns: ['arn:aws:iam::1:role/[x']\n").contains("taskRoleArn pattern"));
        let e = err("allowedServiceTypes: [LoadBalancr]\n");
        assert!(e.contains("unknown variant `LoadBalancr`") && e.contains("LoadBalancer"), "{e}");
    }

    #[test]
    fn arn_patterns_match_whole_arns_with_wildcards() {
        let p = |s: &str| ArnPattern::try_from(s.to_string()).unwrap();
        let team = p("arn:aws:iam::123456789012:role/team-a-*");
        assert!(team.matches("arn:aws:iam::123456789012:role/team-a-web"));
        // `*` crosses `/`: IAM role paths are part of the name.
        assert!(team.matches("arn:aws:iam::123456789012:role/team-a-x/y"));
        assert!(!team.matches("arn:aws:iam::123456789012:role/team-b-web"));
        assert!(!team.matches("arn:aws:iam::999999999999:role/team-a-web"));
        // Anchored at both ends.
        assert!(!team.matches("xarn:aws:iam::123456789012:role/team-a-web"));
        assert!(!p("arn:aws:iam::1:role/web").matches("arn:aws:iam::1:role/web-admin"));
        assert!(p("arn:aws:iam::1:role/web?").matches("arn:aws:iam::1:role/web2"));
        assert!(p("*").matches("arn:aws:iam::1:role/anything"));
    }

    #[test]
    fn translate_options_follow_the_namespace() {
        let p = policy("loadBalancerSourceRanges: [10.0.0.0/8]\nnamespaces: {edge: {loadBalancerSourceRanges: []}}\n");
        assert_eq!(p.translate_options("dev").load_balancer_source_ranges, ["10.0.0.0/8"]);
        assert!(p.translate_options("edge").load_balancer_source_ranges.is_empty());
    }
}
