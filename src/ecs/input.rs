//! The forms a pasted definition comes in, and how to find the definition
//! body inside them: ECS API input, `describe-*` output, or a CloudFormation
//! resource (with or without `Type`/`Properties`).

use super::schema::{Dialect, Schema, API, CFN};
use crate::diag::{show, Code, Report};
use crate::path::Path;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Task,
    Service,
    /// Application Auto Scaling, in `spec.Scaling` (see [`super::scaling`]).
    ScalableTarget,
    ScalingPolicy,
}

impl Resource {
    pub fn cfn_type(self) -> &'static str {
        match self {
            Resource::Task => "AWS::ECS::TaskDefinition",
            Resource::Service => "AWS::ECS::Service",
            Resource::ScalableTarget => "AWS::ApplicationAutoScaling::ScalableTarget",
            Resource::ScalingPolicy => "AWS::ApplicationAutoScaling::ScalingPolicy",
        }
    }

    pub fn root(self, schema: &Schema) -> super::schema::ShapeId {
        match self {
            Resource::Task => schema.task_root,
            Resource::Service => schema.service_root,
            Resource::ScalableTarget => schema.scalable_target_root,
            Resource::ScalingPolicy => schema.scaling_policy_root,
        }
    }

    /// What one of these is called in messages: "task definition", "scaling policy".
    pub fn noun(self) -> &'static str {
        match self {
            Resource::Task => "task definition",
            Resource::Service => "service",
            Resource::ScalableTarget => "scalable target",
            Resource::ScalingPolicy => "scaling policy",
        }
    }

    fn service_name(self) -> &'static str {
        match self {
            Resource::Task | Resource::Service => "ECS",
            Resource::ScalableTarget | Resource::ScalingPolicy => "Application Auto Scaling",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// `register-task-definition` / `create-service` input, or CloudFormation Properties alone.
    Bare,
    /// `describe-task-definition` (`{"taskDefinition": ..., "tags": ...}`) or `describe-services`.
    Describe,
    /// `{"Type": "AWS::ECS::...", "Properties": {...}}` or `{"Properties": {...}}`.
    CfnResource,
}

/// Where the definition body sits inside what the user pasted.
#[derive(Debug, Clone)]
pub struct Located<'a> {
    pub body: &'a Value,
    /// The user's path of `body` (e.g. `spec.Task.Properties`).
    pub path: Path,
    pub form: Form,
    pub dialect: Dialect,
    /// Describe output's `tags` beside the task definition.
    pub describe_tags: Option<(&'a Value, Path)>,
}

/// CloudFormation resource attributes that sit beside `Type`/`Properties`.
const CFN_RESOURCE_ATTRIBUTES: &[&str] = &[
    "DependsOn",
    "Condition",
    "Metadata",
    "DeletionPolicy",
    "UpdateReplacePolicy",
    "UpdatePolicy",
    "CreationPolicy",
];

/// Finds the definition body; reports problems with the wrapper itself.
pub fn locate<'a>(value: &'a Value, base: &Path, resource: Resource, report: &mut Report) -> Option<Located<'a>> {
    let Some(obj) = value.as_object() else {
        report
            .error(
                Code::InvalidType,
                base.to_string(),
                format!(
                    "an {} {} must be an object",
                    resource.service_name(),
                    match resource {
                        Resource::Task => "task definition",
                        Resource::Service => "service definition",
                        other => other.noun(),
                    }
                ),
            )
            .expected("an object")
            .found(show(value));
        return None;
    };

    // CloudFormation resource wrapper.
    if obj.contains_key("Properties") || obj.contains_key("Type") {
        if let Some(t) = obj.get("Type") {
            if t.as_str() != Some(resource.cfn_type()) {
                report
                    .error(
                        Code::NotSupported,
                        base.key("Type").to_string(),
                        "wrong CloudFormation resource type",
                    )
                    .expected(resource.cfn_type())
                    .found(show(t));
            }
        }
        for k in obj.keys() {
            if k != "Type" && k != "Properties" && !CFN_RESOURCE_ATTRIBUTES.contains(&k.as_str()) {
                unknown_wrapper_key(report, base, k, &["Type", "Properties"]);
            }
        }
        let path = base.key("Properties");
        return match obj.get("Properties") {
            None | Some(Value::Null) => Some(body(&EMPTY, path, Form::CfnResource, Some(Dialect::Cfn), resource)),
            Some(p @ Value::Object(_)) => Some(body(p, path, Form::CfnResource, None, resource)),
            Some(other) => {
                report
                    .error(Code::InvalidType, path.to_string(), "CloudFormation Properties must be an object")
                    .expected("an object")
                    .found(show(other));
                None
            }
        };
    }

    // describe-task-definition output.
    if resource == Resource::Task {
        if let Some(inner @ Value::Object(_)) = obj.get("taskDefinition") {
            for k in obj.keys() {
                if k != "taskDefinition" && k != "tags" {
                    unknown_wrapper_key(report, base, k, &["taskDefinition", "tags"]);
                }
            }
            let mut located = body(inner, base.key("taskDefinition"), Form::Describe, None, resource);
            located.describe_tags = obj.get("tags").map(|t| (t, base.key("tags")));
            return Some(located);
        }
    }

    // describe-services output: exactly one service.
    if resource == Resource::Service {
        if let Some(services) = obj.get("services") {
            let path = base.key("services");
            return match services.as_array().map(Vec::as_slice) {
                Some([one]) if one.is_object() => Some(body(one, path.index(0), Form::Describe, None, resource)),
                _ => {
                    report
                        .error(
                            Code::Invalid,
                            path.to_string(),
                            "describe-services output must hold exactly one service",
                        )
                        .expected("a list with one service object")
                        .found(show(services));
                    None
                }
            };
        }
    }

    Some(body(value, base.clone(), Form::Bare, None, resource))
}

static EMPTY: Value = Value::Null;

fn unknown_wrapper_key(report: &mut Report, base: &Path, key: &str, allowed: &[&str]) {
    report
        .error(
            Code::UnknownField,
            base.key(key).to_string(),
            format!("unknown key `{key}` beside the definition"),
        )
        .expected(format!("one of {}", allowed.join(", ")));
}

fn body<'a>(value: &'a Value, path: Path, form: Form, forced: Option<Dialect>, resource: Resource) -> Located<'a> {
    let dialect = forced.unwrap_or_else(|| detect_dialect(value, resource));
    Located {
        body: value,
        path,
        form,
        dialect,
        describe_tags: None,
    }
}

/// The dialect is decided by the first top-level key that only one of the
/// two models knows; failing that, by the case of the first letter.
pub fn detect_dialect(value: &Value, resource: Resource) -> Dialect {
    let Some(obj) = value.as_object() else {
        return Dialect::Api;
    };
    for key in obj.keys() {
        let in_api = API.member(resource.root(&API), key).is_some();
        let in_cfn = CFN.member(resource.root(&CFN), key).is_some();
        match (in_api, in_cfn) {
            (true, false) => return Dialect::Api,
            (false, true) => return Dialect::Cfn,
            _ => {}
        }
    }
    match obj.keys().next().and_then(|k| k.chars().next()) {
        Some(c) if c.is_ascii_uppercase() => Dialect::Cfn,
        _ => Dialect::Api,
    }
}
