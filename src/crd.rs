//! The ECSDeployment resource. The CRD is generated from this type
//! (`ecskube crd`); webhook-config/crd.yaml is that output, kept in step by a test.

use crate::document::EcsDocument;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The ECS definitions to run. `Task` and `Service` are kept exactly as pasted
/// (unknown fields preserved): the admission webhook is their validator.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[kube(
    group = "ecskube.ecskube",
    version = "v1alpha1",
    kind = "ECSDeployment",
    plural = "ecsdeployments",
    singular = "ecsdeployment",
    shortname = "ecsd",
    category = "all",
    namespaced,
    status = "ECSDeploymentStatus",
    printcolumn = r#"{"name":"Desired","type":"integer","jsonPath":".status.desiredReplicas"}"#,
    printcolumn = r#"{"name":"Ready","type":"integer","jsonPath":".status.readyReplicas"}"#,
    printcolumn = r#"{"name":"Service","type":"string","jsonPath":".status.service"}"#,
    printcolumn = r#"{"name":"Address","type":"string","jsonPath":".status.address"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
pub struct ECSDeploymentSpec {
    /// The ECS task definition: ECS API JSON, describe-task-definition output, or AWS::ECS::TaskDefinition.
    #[serde(rename = "Task", default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserved")]
    pub task: Option<Value>,
    /// The ECS service: create-service JSON, describe-services output, or AWS::ECS::Service.
    #[serde(rename = "Service", default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserved")]
    pub service: Option<Value>,
    /// Application Auto Scaling of the service: AWS::ApplicationAutoScaling::ScalableTarget
    /// (exactly one) and ::ScalingPolicy resources by logical ID, as in a template's
    /// `Resources`; or `{"ScalableTarget": <register-scalable-target input>,
    /// "ScalingPolicies": [<put-scaling-policy input>, ...]}` (AWS CLI JSON).
    #[serde(rename = "Scaling", default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserved")]
    pub scaling: Option<Value>,
    /// The task definition from a ConfigMap key instead of `Task`.
    #[serde(rename = "TaskFrom", default, skip_serializing_if = "Option::is_none")]
    pub task_from: Option<ValueSource>,
    /// The service definition from a ConfigMap key instead of `Service`.
    #[serde(rename = "ServiceFrom", default, skip_serializing_if = "Option::is_none")]
    pub service_from: Option<ValueSource>,
    /// Values for the CloudFormation intrinsic functions in `Task`/`Service`: `Ref` names
    /// (parameters, resources' physical ids, pseudo parameters such as `AWS::Region`),
    /// `Resource.Attribute` for `Fn::GetAtt`, export names for `Fn::ImportValue`.
    #[serde(rename = "Parameters", default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserved")]
    pub parameters: Option<Value>,
    /// Condition name to true/false (or a condition expression), for `Fn::If` and a resource's `Condition`.
    #[serde(rename = "Conditions", default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserved")]
    pub conditions: Option<Value>,
    /// The maps `Fn::FindInMap` reads: `{Map: {TopKey: {SecondKey: value}}}`.
    #[serde(rename = "Mappings", default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserved")]
    pub mappings: Option<Value>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ValueSource {
    pub config_map_key_ref: ConfigMapKeyRef,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
pub struct ConfigMapKeyRef {
    pub name: String,
    pub key: String,
}

/// What the controller observed.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ECSDeploymentStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Progressing, Degraded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions")]
    pub conditions: Vec<Condition>,
    /// The replicas the spec asks for (a DaemonSet: the nodes it should run on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_replicas: Option<i32>,
    /// The workload's pods now, surge included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_replicas: Option<i32>,
    /// The child Service's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The child Service's external address, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The children, as `Kind/name`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<String>,
    /// A digest of the TaskFrom/ServiceFrom ConfigMap content the children
    /// were last made from (admission re-judges an unchanged spec only when it differs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_digest: Option<String>,
}

fn preserved(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true
    })
}

fn conditions(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
        "items": {
            "type": "object",
            "required": ["type", "status", "lastTransitionTime", "reason", "message"],
            "properties": {
                "type": {"type": "string"},
                "status": {"type": "string"},
                "observedGeneration": {"type": "integer", "format": "int64"},
                "lastTransitionTime": {"type": "string", "format": "date-time"},
                "reason": {"type": "string"},
                "message": {"type": "string"}
            }
        }
    })
}

/// The CRD as YAML (`ecskube crd`, webhook-config/crd.yaml).
pub fn crd_yaml() -> String {
    use kube::CustomResourceExt;
    serde_yaml_ng::to_string(&ECSDeployment::crd()).unwrap_or_default()
}

impl ECSDeployment {
    /// The object as the engine reads it (inline Task/Service).
    pub fn document(&self) -> EcsDocument {
        EcsDocument::classify(serde_json::to_value(self).unwrap_or(Value::Null))
    }
}
