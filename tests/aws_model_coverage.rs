//! Every member of AWS's ECS models (task definition, container definition and
//! everything nested, service) and of the Application Auto Scaling requests
//! `spec.Scaling` holds (scalable target, scaling policy) is known to ecskube,
//! and nothing else is. Reads
//! the model files from $ECSKUBE_AWS_MODELS or ../shared/aws-models; a missing
//! model directory fails (never skips), naming where it looked.

#[path = "../tools/schemagen.rs"]
mod schemagen;

use ecskube::ecs::schema::{Kind, Schema, ShapeId, API, CFN};
use std::collections::BTreeSet;
use std::path::PathBuf;

fn models_dir() -> PathBuf {
    let dir = std::env::var_os("ECSKUBE_AWS_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/aws-models"));
    assert!(
        dir.join(schemagen::API_MODEL).is_file(),
        "AWS models not found in {} (set ECSKUBE_AWS_MODELS to the folder holding {})",
        dir.display(),
        schemagen::API_MODEL
    );
    dir
}

/// The member paths ecskube knows, in the same `Task.a.b` form the models give.
fn known_paths(schema: &Schema) -> BTreeSet<String> {
    fn walk(schema: &Schema, shape: ShapeId, path: &str, out: &mut BTreeSet<String>, stack: &mut Vec<ShapeId>) {
        match &schema.shape(shape).kind {
            Kind::Struct(members) => {
                if stack.contains(&shape) {
                    return;
                }
                stack.push(shape);
                for m in *members {
                    let p = format!("{path}.{}", m.name);
                    out.insert(p.clone());
                    walk(schema, m.shape, &p, out, stack);
                }
                stack.pop();
            }
            Kind::List { item, .. } => walk(schema, *item, path, out, stack),
            Kind::Map { value } => walk(schema, *value, path, out, stack),
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    walk(schema, schema.task_root, "Task", &mut out, &mut Vec::new());
    walk(schema, schema.service_root, "Service", &mut out, &mut Vec::new());
    walk(schema, schema.scalable_target_root, "ScalableTarget", &mut out, &mut Vec::new());
    walk(schema, schema.scaling_policy_root, "ScalingPolicy", &mut out, &mut Vec::new());
    out
}

fn assert_same(model: &BTreeSet<String>, ours: &BTreeSet<String>, what: &str) {
    let missing: Vec<_> = model.difference(ours).collect();
    let extra: Vec<_> = ours.difference(model).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: members in the AWS model but not in ecskube: {missing:?}; in ecskube but not in the model: {extra:?}. Run `make schema`."
    );
}

#[test]
fn every_ecs_api_member_is_known_and_no_other() {
    let (api, _) = schemagen::model_member_paths(&models_dir()).expect("models readable");
    assert!(
        api.len() > 300,
        "the ECS model should have hundreds of members, found {}",
        api.len()
    );
    assert!(api.contains("Task.containerDefinitions.portMappings.containerPort"));
    assert!(api.contains("ScalableTarget.RoleARN"));
    assert!(api.contains("ScalingPolicy.TargetTrackingScalingPolicyConfiguration.PredefinedMetricSpecification.PredefinedMetricType"));
    assert_same(&api, &known_paths(&API), "ECS and Application Auto Scaling API");
}

#[test]
fn every_cloudformation_property_is_known_and_no_other() {
    let (_, cfn) = schemagen::model_member_paths(&models_dir()).expect("models readable");
    assert!(cfn.contains("Task.ContainerDefinitions.PortMappings.ContainerPort"));
    assert!(cfn.contains("ScalableTarget.ScheduledActions.ScalableTargetAction.MaxCapacity"));
    assert!(cfn.contains("ScalingPolicy.ScalingTargetId"));
    assert_same(&cfn, &known_paths(&CFN), "CloudFormation (PascalCase)");
}

#[test]
fn generated_table_matches_the_models() {
    let fresh = schemagen::generate(&models_dir()).expect("models readable");
    let checked_in = include_str!("../src/ecs/schema/generated.rs");
    assert!(
        fresh == checked_in,
        "src/ecs/schema/generated.rs differs from what the AWS models generate: run `make schema`"
    );
}

#[test]
fn cloudformation_members_map_to_ecs_api_names() {
    // Irregular spellings map to the API's names, so one rule serves both casings.
    let task = CFN.task_root;
    let canonical = |name: &str| CFN.members(task).iter().find(|m| m.name == name).map(|m| m.canonical);
    assert_eq!(canonical("ContainerDefinitions"), Some("containerDefinitions"));
    let volume = CFN.member(task, "Volumes").map(|m| m.shape).expect("Volumes");
    let Kind::List { item, .. } = CFN.shape(volume).kind else {
        panic!("Volumes is a list")
    };
    assert_eq!(
        CFN.member(item, "EFSVolumeConfiguration").map(|m| m.canonical),
        Some("efsVolumeConfiguration")
    );
    assert_eq!(
        CFN.member(CFN.service_root, "PlacementStrategies").map(|m| m.canonical),
        Some("placementStrategy")
    );
}

#[test]
fn scaling_members_keep_the_application_auto_scaling_api_names() {
    // Its API is PascalCase too: canonical names are the API's, irregular
    // ones (RoleARN) included, and CloudFormation-only members keep their own.
    for (schema, root) in [(&API, API.scalable_target_root), (&CFN, CFN.scalable_target_root)] {
        assert_eq!(schema.member(root, "RoleARN").map(|m| m.canonical), Some("RoleARN"));
        assert_eq!(schema.member(root, "MinCapacity").map(|m| m.canonical), Some("MinCapacity"));
    }
    assert_eq!(
        CFN.member(CFN.scalable_target_root, "ScheduledActions").map(|m| m.canonical),
        Some("ScheduledActions")
    );
    let policy = CFN.scaling_policy_root;
    assert_eq!(CFN.member(policy, "ScalingTargetId").map(|m| m.canonical), Some("ScalingTargetId"));
    assert!(API.member(API.scaling_policy_root, "ScalingTargetId").is_none());
    // The table keeps what the models require; what an ECSDeployment implies is the engine's business.
    assert!(API.member(API.scalable_target_root, "ResourceId").is_some_and(|m| m.required));
    assert!(CFN.member(policy, "PolicyType").is_some_and(|m| m.required));
}
