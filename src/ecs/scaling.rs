//! `spec.Scaling`: Application Auto Scaling of the ECSDeployment's own
//! service, pasted in one of two forms:
//!
//! - CloudFormation, from a template's `Resources`: logical IDs to
//!   `AWS::ApplicationAutoScaling::ScalableTarget` (exactly one) and
//!   `AWS::ApplicationAutoScaling::ScalingPolicy` (any number) resources;
//! - AWS CLI JSON: `{"ScalableTarget": <register-scalable-target --cli-input-json>,
//!   "ScalingPolicies": [<put-scaling-policy --cli-input-json>, ...]}`.
//!
//! Both dialects are PascalCase, so the form decides the dialect, not the keys.
//! This module finds the resources ([`split`]) and holds their typed models,
//! read from the canonical value (the API's member names) the structural check makes.

use super::input::Resource;
use super::schema::Dialect;
use crate::diag::{show, Code, Report};
use crate::path::Path;
use crate::spelling::did_you_mean;
use serde_json::Value;

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ScalableTarget {
    pub min_capacity: Option<i64>,
    pub max_capacity: Option<i64>,
    /// CloudFormation only (the API registers them with `put-scheduled-action`).
    pub scheduled_actions: Vec<Value>,
    pub suspended_state: Option<Value>,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ScalingPolicy {
    pub policy_name: Option<String>,
    pub policy_type: Option<String>,
    pub target_tracking_scaling_policy_configuration: Option<TargetTracking>,
    pub step_scaling_policy_configuration: Option<Value>,
    pub predictive_scaling_policy_configuration: Option<Value>,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TargetTracking {
    pub target_value: Option<f64>,
    pub predefined_metric_specification: Option<PredefinedMetric>,
    pub customized_metric_specification: Option<Value>,
    pub scale_in_cooldown: Option<i64>,
    pub scale_out_cooldown: Option<i64>,
    pub disable_scale_in: Option<bool>,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PredefinedMetric {
    pub predefined_metric_type: Option<String>,
    pub resource_label: Option<String>,
}

/// The form `spec.Scaling` was pasted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalingForm {
    /// A template's `Resources`: logical ID to `{Type, Properties}`.
    CloudFormation,
    /// `{"ScalableTarget": ..., "ScalingPolicies": [...]}` of AWS CLI input JSON.
    Cli,
}

impl ScalingForm {
    pub fn dialect(self) -> Dialect {
        match self {
            ScalingForm::CloudFormation => Dialect::Cfn,
            ScalingForm::Cli => Dialect::Api,
        }
    }
}

/// One resource of `spec.Scaling`, as written, before its check.
#[derive(Debug, Clone)]
pub struct Part<'a> {
    pub value: &'a Value,
    /// Where it is: `spec.Scaling.CpuPolicy`, `spec.Scaling.ScalingPolicies[0]`.
    pub path: Path,
    /// Its logical ID, in the CloudFormation form.
    pub logical_id: Option<&'a str>,
}

/// The resources `spec.Scaling` holds.
#[derive(Debug, Clone)]
pub struct Parts<'a> {
    pub form: ScalingForm,
    pub target: Option<Part<'a>>,
    pub policies: Vec<Part<'a>>,
}

const CLI_KEYS: &[&str] = &["ScalableTarget", "ScalingPolicies"];
const TYPES: [Resource; 2] = [Resource::ScalableTarget, Resource::ScalingPolicy];

/// Finds the scalable target and the policies; reports what is wrong with
/// the arrangement itself (the resources' contents are checked after).
pub fn split<'a>(value: &'a Value, base: &Path, report: &mut Report) -> Option<Parts<'a>> {
    let Some(obj) = value.as_object() else {
        report
            .error(Code::InvalidType, base.to_string(), "Scaling must be an object")
            .expected("CloudFormation resources by logical ID, or {\"ScalableTarget\": ..., \"ScalingPolicies\": [...]}")
            .found(show(value));
        return None;
    };
    // A CloudFormation resource is the only thing here with a Type or Properties.
    let cloudformation = obj.values().any(|v| v.get("Type").is_some() || v.get("Properties").is_some());
    let mut parts = Parts {
        form: if cloudformation {
            ScalingForm::CloudFormation
        } else {
            ScalingForm::Cli
        },
        target: None,
        policies: Vec::new(),
    };
    if cloudformation {
        split_resources(obj, base, &mut parts, report);
        if parts.target.is_none() {
            report
                .error(
                    Code::Required,
                    base.to_string(),
                    "Scaling needs the scalable target its policies scale",
                )
                .expected(format!("one resource of Type {}", Resource::ScalableTarget.cfn_type()));
        }
    } else {
        split_cli(obj, base, &mut parts, report);
        if parts.target.is_none() {
            report
                .error(
                    Code::Required,
                    base.key("ScalableTarget").to_string(),
                    "Scaling needs the scalable target its policies scale",
                )
                .expected("register-scalable-target input JSON (MinCapacity, MaxCapacity)");
        }
    }
    Some(parts)
}

fn split_resources<'a>(obj: &'a serde_json::Map<String, Value>, base: &Path, parts: &mut Parts<'a>, report: &mut Report) {
    let expected = || format!("{} or {}", TYPES[0].cfn_type(), TYPES[1].cfn_type());
    for (id, resource) in obj {
        let at = base.key(id);
        if !resource.is_object() {
            report
                .error(
                    Code::InvalidType,
                    at.to_string(),
                    "a CloudFormation resource is an object with Type and Properties",
                )
                .expected("an object")
                .found(show(resource));
            continue;
        }
        let Some(t) = resource.get("Type") else {
            report
                .error(Code::Required, at.key("Type").to_string(), "the resource has no Type")
                .expected(expected());
            continue;
        };
        let Some(kind) = TYPES.into_iter().find(|r| t.as_str() == Some(r.cfn_type())) else {
            let close = t.as_str().and_then(|s| did_you_mean(s, TYPES.iter().map(|r| r.cfn_type())));
            report
                .error(
                    Code::NotSupported,
                    at.key("Type").to_string(),
                    match close {
                        Some(c) => format!("Scaling holds Application Auto Scaling resources only; did you mean \"{c}\"?"),
                        None => "Scaling holds Application Auto Scaling resources only".to_string(),
                    },
                )
                .expected(expected())
                .found(show(t));
            continue;
        };
        let part = Part {
            value: resource,
            path: at.clone(),
            logical_id: Some(id),
        };
        match (kind, &parts.target) {
            (Resource::ScalableTarget, None) => parts.target = Some(part),
            (Resource::ScalableTarget, Some(first)) => {
                report
                    .error(
                        Code::Duplicate,
                        at.to_string(),
                        format!(
                            "Scaling holds one scalable target (the ECSDeployment's service), and `{}` is one already",
                            first.logical_id.unwrap_or_default()
                        ),
                    )
                    .expected("exactly one AWS::ApplicationAutoScaling::ScalableTarget")
                    .found("a second one");
            }
            _ => parts.policies.push(part),
        }
    }
}

fn split_cli<'a>(obj: &'a serde_json::Map<String, Value>, base: &Path, parts: &mut Parts<'a>, report: &mut Report) {
    for (key, v) in obj {
        let at = base.key(key);
        match key.as_str() {
            "ScalableTarget" => {
                if !v.is_null() {
                    parts.target = Some(Part {
                        value: v,
                        path: at,
                        logical_id: None,
                    });
                }
            }
            "ScalingPolicies" => match v {
                Value::Null => {}
                Value::Array(items) => parts.policies.extend(items.iter().enumerate().map(|(i, item)| Part {
                    value: item,
                    path: at.index(i),
                    logical_id: None,
                })),
                other => {
                    report
                        .error(Code::InvalidType, at.to_string(), "wrong type")
                        .expected("a list of put-scaling-policy input JSON objects")
                        .found(show(other));
                }
            },
            _ => {
                let mut d = report.error(Code::UnknownField, at.to_string(), format!("unknown field `{key}`"));
                if let Some(s) = did_you_mean(key, CLI_KEYS.iter().copied()) {
                    d.message = format!("unknown field `{key}`; did you mean `{s}`?");
                    d = d.expected(format!("`{s}`"));
                } else {
                    d = d.expected("ScalableTarget, ScalingPolicies, or CloudFormation resources (with Type and Properties)");
                }
                d.found(format!("`{key}`"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn split_of(v: &Value) -> (Option<Parts<'_>>, Report) {
        let mut report = Report::default();
        let parts = split(v, &Path::parse_dotted("spec.Scaling"), &mut report);
        (parts, report)
    }

    fn paths(report: &Report) -> Vec<String> {
        report.errors().map(|d| d.path.clone()).collect()
    }

    #[test]
    fn cloudformation_resources_are_found_by_type() {
        let v = json!({
            "ScalableTarget": {"Type": "AWS::ApplicationAutoScaling::ScalableTarget", "Properties": {}},
            "Cpu": {"Type": "AWS::ApplicationAutoScaling::ScalingPolicy", "DependsOn": "ScalableTarget", "Properties": {}},
            "Mem": {"Type": "AWS::ApplicationAutoScaling::ScalingPolicy", "Properties": {}},
        });
        let (parts, report) = split_of(&v);
        let parts = parts.unwrap();
        assert!(report.diagnostics.is_empty(), "{:?}", report.diagnostics);
        assert_eq!(parts.form, ScalingForm::CloudFormation);
        assert_eq!(parts.target.unwrap().logical_id, Some("ScalableTarget"));
        let ids: Vec<_> = parts.policies.iter().map(|p| p.path.to_string()).collect();
        assert_eq!(ids, ["spec.Scaling.Cpu", "spec.Scaling.Mem"]);
    }

    #[test]
    fn cli_form_is_the_two_requests() {
        let v = json!({"ScalableTarget": {"MinCapacity": 1}, "ScalingPolicies": [{"PolicyName": "a"}, {"PolicyName": "b"}]});
        let (parts, report) = split_of(&v);
        let parts = parts.unwrap();
        assert!(report.diagnostics.is_empty());
        assert_eq!(parts.form, ScalingForm::Cli);
        assert_eq!(parts.form.dialect(), Dialect::Api);
        assert_eq!(parts.target.unwrap().path.to_string(), "spec.Scaling.ScalableTarget");
        assert_eq!(parts.policies[1].path.to_string(), "spec.Scaling.ScalingPolicies[1]");
    }

    #[test]
    fn wrong_types_a_second_target_and_no_target_are_errors() {
        let v = json!({
            "A": {"Type": "AWS::ApplicationAutoScaling::ScalableTarget", "Properties": {}},
            "B": {"Type": "AWS::ApplicationAutoScaling::ScalableTarget", "Properties": {}},
            "C": {"Type": "AWS::ApplicationAutoScaling::ScalingPolicyy", "Properties": {}},
            "D": {"Properties": {}},
        });
        let (_, report) = split_of(&v);
        assert_eq!(paths(&report), ["spec.Scaling.B", "spec.Scaling.C.Type", "spec.Scaling.D.Type"]);
        let wrong = report.errors().nth(1).unwrap();
        assert!(
            wrong
                .message
                .contains("did you mean \"AWS::ApplicationAutoScaling::ScalingPolicy\""),
            "{wrong}"
        );
        assert!(wrong
            .expected
            .contains("AWS::ApplicationAutoScaling::ScalableTarget or AWS::ApplicationAutoScaling::ScalingPolicy"));

        let v = json!({"P": {"Type": "AWS::ApplicationAutoScaling::ScalingPolicy", "Properties": {}}});
        assert_eq!(paths(&split_of(&v).1), ["spec.Scaling"]);
        let v = json!({"ScalingPolicy": [], "ScalingPolicies": {}});
        let (_, report) = split_of(&v);
        assert_eq!(
            paths(&report),
            [
                "spec.Scaling.ScalingPolicy",
                "spec.Scaling.ScalingPolicies",
                "spec.Scaling.ScalableTarget"
            ]
        );
        assert!(report.diagnostics[0].message.contains("did you mean `ScalingPolicies`"));
        assert_eq!(paths(&split_of(&json!([1])).1), ["spec.Scaling"]);
    }
}
