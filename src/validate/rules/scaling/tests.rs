//! spec.Scaling through the whole analysis: both forms, the rules, exact paths.

use crate::diag::{Code, Diagnostic};
use crate::document::{EcsDocument, API_VERSION};
use crate::validate::Analysis;
use serde_json::{json, Value};

/// An ECSDeployment with a small Task and this Scaling (and Parameters).
fn deployment(scaling: Value, parameters: Value) -> EcsDocument {
    EcsDocument::classify(json!({
        "apiVersion": API_VERSION,
        "kind": "ECSDeployment",
        "metadata": {"name": "web"},
        "spec": {
            "Parameters": parameters,
            "Task": {"family": "web", "containerDefinitions": [{"name": "web", "image": "nginx", "memory": 256}]},
            "Scaling": scaling,
        }
    }))
}

fn errors(a: &Analysis<'_>) -> Vec<Diagnostic> {
    a.report.errors().cloned().collect()
}

fn error_paths(scaling: Value) -> Vec<(String, Code)> {
    let doc = deployment(scaling, Value::Null);
    let a = doc.analyze();
    errors(&a).into_iter().map(|d| (d.path, d.code)).collect()
}

/// The CloudFormation of the ECS auto scaling walk-through, intrinsics in their long form.
fn cloudformation() -> Value {
    json!({
        "ScalableTarget": {
            "Type": "AWS::ApplicationAutoScaling::ScalableTarget",
            "Properties": {
                "MaxCapacity": 10,
                "MinCapacity": 2,
                "ResourceId": {"Fn::Join": ["/", ["service", {"Ref": "ECSCluster"}, {"Fn::GetAtt": "Service.Name"}]]},
                "RoleARN": {"Fn::GetAtt": ["AutoScalingRole", "Arn"]},
                "ScalableDimension": "ecs:service:DesiredCount",
                "ServiceNamespace": "ecs"
            }
        },
        "CpuPolicy": {
            "Type": "AWS::ApplicationAutoScaling::ScalingPolicy",
            "DependsOn": "ScalableTarget",
            "Properties": {
                "PolicyName": "cpu60",
                "PolicyType": "TargetTrackingScaling",
                "ScalingTargetId": {"Ref": "ScalableTarget"},
                "TargetTrackingScalingPolicyConfiguration": {
                    "PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"},
                    "TargetValue": 60,
                    "ScaleInCooldown": 300,
                    "ScaleOutCooldown": 60
                }
            }
        }
    })
}

fn cli() -> Value {
    let target = json!({"ServiceNamespace": "ecs", "ResourceId": "service/default/web", "ScalableDimension": "ecs:service:DesiredCount"});
    let mut st = target.clone();
    st["MinCapacity"] = 1.into();
    st["MaxCapacity"] = 4.into();
    let mut policy = target;
    policy["PolicyName"] = "memory".into();
    policy["PolicyType"] = "TargetTrackingScaling".into();
    policy["TargetTrackingScalingPolicyConfiguration"] = json!({
        "TargetValue": 75.5,
        "PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageMemoryUtilization"},
        "DisableScaleIn": true
    });
    json!({"ScalableTarget": st, "ScalingPolicies": [policy]})
}

#[test]
fn the_cloudformation_form_passes_with_its_ref_join_and_getatt() {
    let doc = deployment(cloudformation(), Value::Null);
    let a = doc.analyze();
    assert!(errors(&a).is_empty(), "{:?}", errors(&a));
    let t = a.scalable_target.as_ref().expect("target");
    assert_eq!((t.model.min_capacity, t.model.max_capacity), (Some(2), Some(10)));
    assert_eq!(a.scaling_policies.len(), 1);
    let p = &a.scaling_policies[0].model;
    assert_eq!(p.policy_name.as_deref(), Some("cpu60"));
    assert_eq!(p.policy_type.as_deref(), Some("TargetTrackingScaling"));
    let tt = p.target_tracking_scaling_policy_configuration.as_ref().expect("target tracking");
    assert_eq!(tt.target_value, Some(60.0));
    assert_eq!((tt.scale_in_cooldown, tt.scale_out_cooldown), (Some(300), Some(60)));
    let metric = tt.predefined_metric_specification.as_ref().expect("metric");
    assert_eq!(metric.predefined_metric_type.as_deref(), Some("ECSServiceAverageCPUUtilization"));
}

#[test]
fn the_cli_form_passes() {
    let doc = deployment(cli(), Value::Null);
    let a = doc.analyze();
    assert!(errors(&a).is_empty(), "{:?}", errors(&a));
    assert_eq!(a.scalable_target.as_ref().unwrap().model.max_capacity, Some(4));
    let tt = a.scaling_policies[0]
        .model
        .target_tracking_scaling_policy_configuration
        .clone()
        .unwrap();
    assert_eq!((tt.target_value, tt.disable_scale_in), (Some(75.5), Some(true)));
    // The implied members may be left out altogether.
    let bare = json!({"ScalableTarget": {"MinCapacity": 1, "MaxCapacity": 2}, "ScalingPolicies": [{
        "PolicyType": "StepScaling",
        "StepScalingPolicyConfiguration": {"AdjustmentType": "ChangeInCapacity", "StepAdjustments": [{"ScalingAdjustment": 1}]}
    }]});
    assert_eq!(error_paths(bare), []);
}

#[test]
fn intrinsics_outside_the_implied_members_use_the_parameters() {
    let mut scaling = cloudformation();
    scaling["ScalableTarget"]["Properties"]["MaxCapacity"] = json!({"Ref": "MaxTasks"});
    let doc = deployment(scaling.clone(), Value::Null);
    let a = doc.analyze();
    let errs = errors(&a);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].code, Code::Unresolved);
    assert!(errs[0].message.contains("spec.Parameters: add MaxTasks"), "{}", errs[0]);
    let doc = deployment(scaling, json!({"MaxTasks": 1}));
    let a = doc.analyze();
    // Resolved, and then too small.
    let errs: Vec<_> = errors(&a).into_iter().map(|d| (d.path, d.message)).collect();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].0, "spec.Scaling.ScalableTarget.Properties.MinCapacity");
    assert!(errs[0].1.contains("MinCapacity is above MaxCapacity"), "{}", errs[0].1);
}

#[test]
fn a_wrong_metric_gets_a_did_you_mean_at_its_exact_path() {
    let mut scaling = cloudformation();
    scaling["CpuPolicy"]["Properties"]["TargetTrackingScalingPolicyConfiguration"]["PredefinedMetricSpecification"]
        ["PredefinedMetricType"] = "ECSServiceAverageCPU".into();
    let doc = deployment(scaling, Value::Null);
    let a = doc.analyze();
    let errs = errors(&a);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(
        errs[0].path,
        "spec.Scaling.CpuPolicy.Properties.TargetTrackingScalingPolicyConfiguration.PredefinedMetricSpecification.PredefinedMetricType"
    );
    assert_eq!(errs[0].code, Code::NotSupported);
    assert!(
        errs[0].message.contains("did you mean \"ECSServiceAverageCPUUtilization\""),
        "{}",
        errs[0]
    );
}

#[test]
fn unknown_members_are_reported_with_a_did_you_mean() {
    let mut scaling = cloudformation();
    let props = scaling["ScalableTarget"]["Properties"].as_object_mut().unwrap();
    props.insert("MaxCapcity".into(), props["MaxCapacity"].clone());
    props.remove("MaxCapacity");
    let doc = deployment(scaling, Value::Null);
    let a = doc.analyze();
    let errs: Vec<_> = errors(&a).into_iter().map(|d| (d.path, d.code, d.message)).collect();
    assert_eq!(errs[0].0, "spec.Scaling.ScalableTarget.Properties.MaxCapcity");
    assert_eq!(errs[0].1, Code::UnknownField);
    assert!(errs[0].2.contains("did you mean `MaxCapacity`"), "{}", errs[0].2);
    // And so the CloudFormation schema's required MaxCapacity is missing.
    assert_eq!(errs[1].0, "spec.Scaling.ScalableTarget.Properties.MaxCapacity");
    assert_eq!(errs.len(), 2, "{errs:?}");
    // In the CLI form, a CloudFormation-only member is unknown.
    let mut scaling = cli();
    scaling["ScalingPolicies"][0]["ScalingTargetId"] = "x".into();
    assert_eq!(
        error_paths(scaling),
        [("spec.Scaling.ScalingPolicies[0].ScalingTargetId".to_string(), Code::UnknownField)]
    );
}

#[test]
fn capacities_are_required_and_ordered() {
    let mut scaling = cli();
    scaling["ScalableTarget"]["MinCapacity"] = 5.into();
    assert_eq!(
        error_paths(scaling.clone()),
        [("spec.Scaling.ScalableTarget.MinCapacity".to_string(), Code::Invalid)]
    );
    scaling["ScalableTarget"].as_object_mut().unwrap().remove("MaxCapacity");
    assert_eq!(
        error_paths(scaling),
        [("spec.Scaling.ScalableTarget.MaxCapacity".to_string(), Code::Required)]
    );
}

#[test]
fn only_the_ecs_service_is_scaled() {
    let mut scaling = cloudformation();
    scaling["ScalableTarget"]["Properties"]["ServiceNamespace"] = "dynamodb".into();
    scaling["CpuPolicy"]["Properties"]["ScalableDimension"] = "dynamodb:table:ReadCapacityUnits".into();
    let doc = deployment(scaling, Value::Null);
    let a = doc.analyze();
    let errs = errors(&a);
    let at: Vec<_> = errs.iter().map(|d| (d.path.as_str(), d.code)).collect();
    assert_eq!(
        at,
        [
            ("spec.Scaling.ScalableTarget.Properties.ServiceNamespace", Code::NotSupported),
            ("spec.Scaling.CpuPolicy.Properties.ScalableDimension", Code::NotSupported),
        ]
    );
    assert!(errs[0].expected.contains("\"ecs\""), "{}", errs[0]);
    // A metric of another service is not one of an ECS service.
    let mut scaling = cli();
    scaling["ScalingPolicies"][0]["TargetTrackingScalingPolicyConfiguration"]["PredefinedMetricSpecification"]["PredefinedMetricType"] =
        "DynamoDBReadCapacityUtilization".into();
    let path =
        "spec.Scaling.ScalingPolicies[0].TargetTrackingScalingPolicyConfiguration.PredefinedMetricSpecification.PredefinedMetricType";
    assert_eq!(error_paths(scaling), [(path.to_string(), Code::NotSupported)]);
}

#[test]
fn the_policy_type_and_its_configuration_agree() {
    let mut scaling = cloudformation();
    scaling["CpuPolicy"]["Properties"]["PolicyType"] = "StepScaling".into();
    assert_eq!(
        error_paths(scaling),
        [
            (
                "spec.Scaling.CpuPolicy.Properties.TargetTrackingScalingPolicyConfiguration".to_string(),
                Code::Invalid
            ),
            (
                "spec.Scaling.CpuPolicy.Properties.StepScalingPolicyConfiguration".to_string(),
                Code::Required
            ),
        ]
    );
    let mut scaling = cli();
    scaling["ScalingPolicies"][0].as_object_mut().unwrap().remove("PolicyType");
    assert_eq!(
        error_paths(scaling),
        [("spec.Scaling.ScalingPolicies[0].PolicyType".to_string(), Code::Required)]
    );
}

#[test]
fn a_policy_names_the_target_in_scaling() {
    let mut scaling = cloudformation();
    scaling["CpuPolicy"]["Properties"]["ScalingTargetId"] = json!({"Ref": "OtherTarget"});
    let mut second = scaling["CpuPolicy"].clone();
    second["Properties"]["ScalingTargetId"] = json!({"Ref": "ScalableTarget"});
    scaling["Again"] = second;
    assert_eq!(
        error_paths(scaling),
        [
            ("spec.Scaling.CpuPolicy.Properties.ScalingTargetId.Ref".to_string(), Code::NotFound),
            ("spec.Scaling.Again.Properties.PolicyName".to_string(), Code::Duplicate),
        ]
    );
}
