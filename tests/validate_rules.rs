//! One test per validation rule, through the public engine API.

use ecskube::diag::{Code, Severity};
use ecskube::document::EcsDocument;
use serde_json::{json, Value};

/// (severity, code, path) of every diagnostic for a bare definition or an ECSDeployment.
fn diags(v: Value) -> Vec<(Severity, Code, String)> {
    let doc = EcsDocument::classify(v);
    doc.analyze()
        .report
        .diagnostics
        .into_iter()
        .map(|d| (d.severity, d.code, d.path))
        .collect()
}

fn errors(v: Value) -> Vec<(Code, String)> {
    diags(v)
        .into_iter()
        .filter(|(s, ..)| *s == Severity::Error)
        .map(|(_, c, p)| (c, p))
        .collect()
}

fn has_error(v: Value, code: Code, path: &str) {
    let errs = errors(v);
    assert!(
        errs.iter().any(|(c, p)| *c == code && p == path),
        "expected {code:?} at {path}, got {errs:?}"
    );
}

fn task(containers: Value) -> Value {
    json!({"family": "f", "containerDefinitions": containers})
}

fn web() -> Value {
    json!({"name": "web", "image": "nginx", "memory": 128, "portMappings": [{"containerPort": 80}]})
}

#[test]
fn valid_minimal_task_has_no_errors() {
    assert_eq!(errors(task(json!([web()]))), vec![]);
}

#[test]
fn unknown_key_suggests_the_close_member() {
    let doc = EcsDocument::classify(task(json!([{"name": "web", "imagee": "nginx", "memory": 128}])));
    let a = doc.analyze();
    let d = a
        .report
        .diagnostics
        .iter()
        .find(|d| d.code == Code::UnknownField)
        .expect("unknown field");
    assert_eq!(d.path, "containerDefinitions[0].imagee");
    assert!(d.message.contains("did you mean `image`"), "{}", d.message);
}

#[test]
fn pascal_case_typo_in_ecsdeployment_gets_full_path() {
    let obj = json!({"apiVersion": "ecskube.ecskube/v1alpha1", "kind": "ECSDeployment", "metadata": {"name": "x"},
        "spec": {"Task": {"Properties": {"ContainerDefinitions": [{"Name": "a", "Imagee": "i", "Memory": 64}]}}}});
    has_error(obj, Code::UnknownField, "spec.Task.Properties.ContainerDefinitions[0].Imagee");
}

#[test]
fn wrong_types_and_enums_and_required() {
    has_error(
        task(json!([{"name": "web", "image": "i", "memory": {"a": 1}}])),
        Code::InvalidType,
        "containerDefinitions[0].memory",
    );
    has_error(
        json!({"containerDefinitions": [web()], "networkMode": "awsvpcx"}),
        Code::NotSupported,
        "networkMode",
    );
    // Another case of a valid value is taken as meant, with a warning.
    let case = diags(json!({"containerDefinitions": [web()], "networkMode": "awsVpc"}));
    assert!(
        case.contains(&(Severity::Warning, Code::Converted, "networkMode".into())),
        "{case:?}"
    );
    assert!(!case.iter().any(|(s, ..)| *s == Severity::Error), "{case:?}");
    has_error(
        task(json!([{"image": "i", "memory": 64}])),
        Code::Required,
        "containerDefinitions[0].name",
    );
}

#[test]
fn numbers_as_strings_convert_with_a_warning_in_camel_case_only() {
    let camel = diags(task(json!([{"name": "web", "image": "i", "memory": "128"}])));
    assert!(camel
        .iter()
        .any(|(s, c, p)| *s == Severity::Warning && *c == Code::Converted && p == "containerDefinitions[0].memory"));
    let pascal =
        diags(json!({"Properties": {"ContainerDefinitions": [{"Name": "web", "Image": "i", "Memory": "128", "Essential": "true"}]}}));
    assert!(pascal.iter().all(|(s, ..)| *s != Severity::Error), "{pascal:?}");
    assert!(
        !pascal.iter().any(|(_, c, _)| *c == Code::Converted),
        "CloudFormation converts these itself: {pascal:?}"
    );
    has_error(
        task(json!([{"name": "web", "image": "i", "memory": "lots"}])),
        Code::InvalidType,
        "containerDefinitions[0].memory",
    );
}

#[test]
fn explicit_null_is_absent() {
    assert_eq!(
        errors(task(json!([{"name": "web", "image": "i", "memory": 64, "ulimits": null}]))),
        vec![]
    );
}

#[test]
fn mixing_casings_in_one_object_names_the_first_odd_key() {
    let errs = errors(task(json!([{"name": "web", "Image": "i", "memory": 64}])));
    assert_eq!(errs, vec![(Code::MixedCasing, "containerDefinitions[0].Image".to_string())]);
}

#[test]
fn intrinsic_functions_are_unresolved_errors_at_their_path() {
    let v = json!({"Type": "AWS::ECS::TaskDefinition", "Properties": {"ContainerDefinitions": [{"Name": "a", "Image": {"Fn::Sub": "${Repo}:latest"}, "Memory": 64}]}});
    has_error(v, Code::Unresolved, "Properties.ContainerDefinitions[0].Image");
}

#[test]
fn describe_output_read_only_members_are_ignored() {
    let v = json!({"taskDefinition": {"taskDefinitionArn": "arn:aws:ecs:us-east-1:1:task-definition/f:1", "revision": 3, "status": "ACTIVE",
        "requiresAttributes": [{"name": "x"}], "compatibilities": ["EC2"], "registeredAt": "2024-01-01T00:00:00Z", "registeredBy": "me",
        "family": "f", "containerDefinitions": [web()]}, "tags": [{"key": "k", "value": "v"}]});
    assert_eq!(errors(v), vec![]);
}

#[test]
fn container_names_unique_and_ecs_pattern() {
    has_error(task(json!([web(), web()])), Code::Duplicate, "containerDefinitions[1].name");
    has_error(
        task(json!([{"name": "bad name", "image": "i", "memory": 64}])),
        Code::Invalid,
        "containerDefinitions[0].name",
    );
}

#[test]
fn at_least_one_essential_container() {
    has_error(
        task(json!([{"name": "a", "image": "i", "memory": 64, "essential": false}])),
        Code::Invalid,
        "containerDefinitions",
    );
}

#[test]
fn memory_floor_and_reservation_below_limit() {
    has_error(
        task(json!([{"name": "a", "image": "i", "memory": 4}])),
        Code::Invalid,
        "containerDefinitions[0].memory",
    );
    has_error(
        task(json!([{"name": "a", "image": "i", "memory": 64, "memoryReservation": 128}])),
        Code::Invalid,
        "containerDefinitions[0].memoryReservation",
    );
}

#[test]
fn ports_in_range() {
    has_error(
        task(json!([{"name": "a", "image": "i", "memory": 64, "portMappings": [{"containerPort": 70000}]}])),
        Code::Invalid,
        "containerDefinitions[0].portMappings[0].containerPort",
    );
}

#[test]
fn references_name_existing_containers_and_volumes() {
    let v = task(json!([
        {"name": "a", "image": "i", "memory": 64, "links": ["db:database"], "volumesFrom": [{"sourceContainer": "ghost"}],
         "mountPoints": [{"sourceVolume": "data", "containerPath": "/d"}], "dependsOn": [{"containerName": "nope", "condition": "START"}]}
    ]));
    let errs = errors(v);
    for path in [
        "containerDefinitions[0].links[0]",
        "containerDefinitions[0].volumesFrom[0].sourceContainer",
        "containerDefinitions[0].mountPoints[0].sourceVolume",
        "containerDefinitions[0].dependsOn[0].containerName",
    ] {
        assert!(errs.iter().any(|(c, p)| *c == Code::NotFound && p == path), "{path}: {errs:?}");
    }
}

#[test]
fn depends_on_cycle_is_found() {
    let v = task(json!([
        {"name": "a", "image": "i", "memory": 64, "dependsOn": [{"containerName": "b", "condition": "START"}]},
        {"name": "b", "image": "i", "memory": 64, "dependsOn": [{"containerName": "a", "condition": "START"}]}
    ]));
    // Exactly one error, where the cycle closes, naming it.
    assert_eq!(
        errors(v.clone()),
        [(Code::Invalid, "containerDefinitions[1].dependsOn[0].containerName".to_string())]
    );
    let doc = EcsDocument::classify(v);
    let a = doc.analyze();
    let d = a.report.errors().next().unwrap();
    assert_eq!(d.found, "a -> b -> a", "{d}");
    // Without the cycle, no error.
    let fine = task(json!([
        {"name": "a", "image": "i", "memory": 64},
        {"name": "b", "image": "i", "memory": 64, "dependsOn": [{"containerName": "a", "condition": "START"}]}
    ]));
    assert_eq!(errors(fine), []);
}

#[test]
fn depends_on_conditions_need_the_right_target() {
    let v = task(json!([
        {"name": "init", "image": "i", "memory": 64},
        {"name": "app", "image": "i", "memory": 64, "dependsOn": [{"containerName": "init", "condition": "SUCCESS"}, {"containerName": "init", "condition": "HEALTHY"}]}
    ]));
    has_error(v.clone(), Code::Invalid, "containerDefinitions[1].dependsOn[0].condition");
    has_error(v, Code::Invalid, "containerDefinitions[1].dependsOn[1].condition");
}

#[test]
fn awsvpc_host_port_must_match_and_links_need_bridge() {
    let v = json!({"family": "f", "networkMode": "awsvpc", "containerDefinitions": [
        {"name": "a", "image": "i", "memory": 64, "portMappings": [{"containerPort": 80, "hostPort": 8080}], "links": ["b"]},
        {"name": "b", "image": "i", "memory": 64}]});
    has_error(v.clone(), Code::Invalid, "containerDefinitions[0].portMappings[0].hostPort");
    has_error(v, Code::Invalid, "containerDefinitions[0].links");
}

#[test]
fn fargate_cpu_memory_pairs_in_both_forms() {
    let fargate = |cpu: &str, mem: &str| {
        json!({"family": "f", "requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc", "cpu": cpu, "memory": mem,
        "containerDefinitions": [{"name": "a", "image": "i"}]})
    };
    assert_eq!(errors(fargate("1 vCPU", "2 GB")), vec![]);
    assert_eq!(errors(fargate("256", "512")), vec![]);
    has_error(fargate("256", "4096"), Code::Invalid, "memory");
    has_error(fargate("300", "1024"), Code::Invalid, "cpu");
}

#[test]
fn fargate_forbids_what_its_docs_say() {
    let v = json!({"family": "f", "requiresCompatibilities": ["FARGATE"], "networkMode": "bridge", "cpu": "256", "memory": "512",
        "volumes": [{"name": "v", "host": {"sourcePath": "/data"}}],
        "containerDefinitions": [{"name": "a", "image": "i", "privileged": true, "linuxParameters": {"capabilities": {"add": ["NET_ADMIN"]}}}]});
    for path in [
        "networkMode",
        "volumes[0].host.sourcePath",
        "containerDefinitions[0].privileged",
        "containerDefinitions[0].linuxParameters.capabilities.add[0]",
    ] {
        has_error(v.clone(), Code::Invalid, path);
    }
}

#[test]
fn health_check_ranges_and_command() {
    let v =
        task(json!([{"name": "a", "image": "i", "memory": 64, "healthCheck": {"command": ["CMD", "x"], "interval": 1, "retries": 11}}]));
    assert_eq!(
        errors(v),
        [
            (Code::Invalid, "containerDefinitions[0].healthCheck.interval".to_string()),
            (Code::Invalid, "containerDefinitions[0].healthCheck.retries".to_string())
        ]
    );
}

fn deployment(service: Value) -> Value {
    json!({"apiVersion": "ecskube.ecskube/v1alpha1", "kind": "ECSDeployment", "metadata": {"name": "demo"},
        "spec": {"Task": task(json!([web()])), "Service": service}})
}

#[test]
fn service_load_balancer_names_a_container_and_its_port() {
    has_error(
        deployment(json!({"loadBalancers": [{"containerName": "api", "containerPort": 80}]})),
        Code::NotFound,
        "spec.Service.loadBalancers[0].containerName",
    );
    has_error(
        deployment(json!({"loadBalancers": [{"containerName": "web", "containerPort": 443}]})),
        Code::NotFound,
        "spec.Service.loadBalancers[0].containerPort",
    );
    assert_eq!(
        errors(deployment(
            json!({"loadBalancers": [{"containerName": "web", "containerPort": 80}]})
        )),
        vec![]
    );
}

#[test]
fn service_counts_and_percentages() {
    has_error(deployment(json!({"desiredCount": -1})), Code::Invalid, "spec.Service.desiredCount");
    has_error(
        deployment(json!({"deploymentConfiguration": {"minimumHealthyPercent": 150}})),
        Code::Invalid,
        "spec.Service.deploymentConfiguration.minimumHealthyPercent",
    );
    has_error(
        deployment(json!({"deploymentConfiguration": {"minimumHealthyPercent": 50, "maximumPercent": 40}})),
        Code::Invalid,
        "spec.Service.deploymentConfiguration.maximumPercent",
    );
}

#[test]
fn implied_members_are_optional_and_task_definition_is_ignored() {
    assert_eq!(
        errors(deployment(json!({"TaskDefinition": "Ignored/implied for now", "DesiredCount": 2}))),
        vec![]
    );
    assert_eq!(
        errors(json!({"containerDefinitions": [web()]})),
        vec![],
        "family is implied by the object's name"
    );
}

#[test]
fn kubernetes_name_sanitizing_warns_and_collisions_error() {
    let d = diags(task(json!([{"name": "log_router", "image": "i", "memory": 64}])));
    assert!(
        d.iter()
            .any(|(s, c, p)| *s == Severity::Warning && *c == Code::Converted && p == "containerDefinitions[0].name"),
        "{d:?}"
    );
    has_error(
        task(json!([{"name": "a_b", "image": "i", "memory": 64}, {"name": "a-b", "image": "i", "memory": 64}])),
        Code::Duplicate,
        "containerDefinitions[1].name",
    );
}

#[test]
fn envelope_errors_for_ecsdeployment() {
    let v = json!({"apiVersion": "ecskube.ecskube/v1alpha1", "kind": "ECSDeployment", "metadata": {"name": "x"}, "spec": {"Tasks": {}}});
    has_error(v.clone(), Code::UnknownField, "spec.Tasks");
    has_error(v, Code::Required, "spec.Task");
}

#[test]
fn every_error_is_reported_not_just_the_first() {
    let v =
        task(json!([{"name": "a", "imagee": "i", "memory": 2, "portMappings": [{"containerPort": "x"}]}, {"image": "i", "memory": 64}]));
    let mut errs = errors(v);
    errs.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(
        errs,
        [
            (Code::Required, "containerDefinitions[0].image".to_string()),
            (Code::UnknownField, "containerDefinitions[0].imagee".to_string()),
            (Code::Invalid, "containerDefinitions[0].memory".to_string()),
            (
                Code::InvalidType,
                "containerDefinitions[0].portMappings[0].containerPort".to_string()
            ),
            (Code::Required, "containerDefinitions[1].name".to_string()),
        ]
    );
}

#[test]
fn capability_names_and_fargate_awslogs_prefix() {
    let v = json!({"family": "f", "requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc", "cpu": "256", "memory": "512",
        "containerDefinitions": [{"name": "a", "image": "i", "linuxParameters": {"capabilities": {"drop": ["CAP_NET_RAW"]}},
            "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "g", "awslogs-region": "r"}}}]});
    let errs = errors(v);
    assert!(
        errs.iter()
            .any(|(c, p)| *c == Code::NotSupported && p == "containerDefinitions[0].linuxParameters.capabilities.drop[0]"),
        "{errs:?}"
    );
    assert!(
        errs.iter()
            .any(|(c, p)| *c == Code::Required && p == "containerDefinitions[0].logConfiguration.options"),
        "{errs:?}"
    );
}

#[test]
fn efs_access_point_needs_transit_encryption_and_awsvpc_limits() {
    let v = task(json!([web()]));
    let mut v = v;
    v["volumes"] =
        json!([{"name": "data", "efsVolumeConfiguration": {"fileSystemId": "fs-1", "authorizationConfig": {"accessPointId": "fsap-1"}}}]);
    has_error(v, Code::Invalid, "volumes[0].efsVolumeConfiguration.transitEncryption");
    let subnets: Vec<String> = (0..17).map(|i| format!("subnet-{i}")).collect();
    has_error(
        deployment(json!({"networkConfiguration": {"awsvpcConfiguration": {"subnets": subnets}}})),
        Code::Invalid,
        "spec.Service.networkConfiguration.awsvpcConfiguration.subnets",
    );
}

// ---- What real deployed files hold, and AWS accepts (issue: real files refused) ----

#[test]
fn one_port_on_tcp_and_udp_is_two_ports() {
    let dns = json!({"name": "dns", "image": "coredns", "memory": 64, "portMappings": [
        {"containerPort": 53, "protocol": "tcp"}, {"containerPort": 53, "protocol": "udp"}]});
    assert_eq!(errors(task(json!([dns]))), vec![]);
    // The same port and protocol twice is still a mistake.
    let twice = json!({"name": "dns", "image": "coredns", "memory": 64, "portMappings": [
        {"containerPort": 53}, {"containerPort": 53, "protocol": "tcp"}]});
    assert_eq!(
        errors(task(json!([twice]))),
        vec![(Code::Duplicate, "containerDefinitions[0].portMappings[1]".into())]
    );
}

#[test]
fn a_health_check_docker_ignores_is_a_warning() {
    for command in [json!(["/healthcheck"]), json!(["echo"])] {
        let c = json!({"name": "web", "image": "nginx", "memory": 64, "healthCheck": {"command": command}});
        let all = diags(task(json!([c])));
        assert!(!all.iter().any(|(s, ..)| *s == Severity::Error), "{all:?}");
        assert!(
            all.contains(&(
                Severity::Warning,
                Code::NotCarriedOver,
                "containerDefinitions[0].healthCheck.command".into()
            )),
            "{all:?}"
        );
    }
}

#[test]
fn enum_values_in_another_case_are_normalized_with_a_warning() {
    let cfn = json!({"Properties": {"Family": "f", "ContainerDefinitions": [
        {"Name": "web", "Image": "nginx", "Memory": 64, "PortMappings": [{"ContainerPort": 80, "Protocol": "TCP"}]}]}});
    let doc = EcsDocument::classify(cfn);
    let a = doc.analyze();
    assert!(!a.report.has_errors(), "{:?}", a.report.diagnostics);
    let w = a
        .report
        .warnings()
        .find(|d| d.path == "Properties.ContainerDefinitions[0].PortMappings[0].Protocol")
        .unwrap();
    assert_eq!(w.code, Code::Converted);
    assert!(w.message.contains("\"TCP\" is taken as \"tcp\""), "{}", w.message);
    assert_eq!(
        a.task.unwrap().model.container_definitions[0].port_mappings[0].protocol.as_deref(),
        Some("tcp")
    );
}

#[test]
fn hard_limits_may_each_reach_the_task_memory_but_reservations_must_fit() {
    // CDK's shape: the app gets the task's memory, sidecars reserve a little.
    let cdk = json!({"family": "f", "memory": "1024", "containerDefinitions": [
        {"name": "app", "image": "app", "memory": 1024},
        {"name": "envoy", "image": "envoy", "memoryReservation": 128, "essential": false},
        {"name": "xray", "image": "xray", "memoryReservation": 64, "essential": false}]});
    assert_eq!(errors(cdk), vec![]);
    // What RegisterTaskDefinition refuses: reservations over the task's memory, or one hard limit above it.
    let over = json!({"family": "f", "memory": "512", "containerDefinitions": [
        {"name": "a", "image": "a", "memoryReservation": 300}, {"name": "b", "image": "b", "memoryReservation": 300}]});
    assert_eq!(errors(over), vec![(Code::Invalid, "memory".into())]);
    let above = json!({"family": "f", "memory": "512", "containerDefinitions": [{"name": "a", "image": "a", "memory": 1024}]});
    assert_eq!(errors(above), vec![(Code::Invalid, "containerDefinitions[0].memory".into())]);
}

#[test]
fn exported_definitions_with_empty_enums_and_disabled_alarms_are_accepted() {
    // `ecspresso init` / describe-* output.
    let exported = json!({"family": "f", "ipcMode": "", "pidMode": "", "containerDefinitions": [
        {"name": "web", "image": "nginx", "memory": 64, "versionConsistency": ""}]});
    assert_eq!(errors(exported), vec![]);
    let service = json!({"apiVersion": "ecskube.ecskube/v1alpha1", "kind": "ECSDeployment", "metadata": {"name": "web"},
        "spec": {"Task": {"containerDefinitions": [web()]},
                 "Service": {"deploymentConfiguration": {"alarms": {"enable": false, "rollback": false}}}}});
    assert_eq!(errors(service), vec![]);
    // Enabled alarms still need their names.
    let enabled = json!({"apiVersion": "ecskube.ecskube/v1alpha1", "kind": "ECSDeployment", "metadata": {"name": "web"},
        "spec": {"Task": {"containerDefinitions": [web()]},
                 "Service": {"deploymentConfiguration": {"alarms": {"enable": true, "rollback": false}}}}});
    has_error(enabled, Code::Required, "spec.Service.deploymentConfiguration.alarms.alarmNames");
}

// ---- What AWS refuses (differential against AWS's models) ----

#[test]
fn integers_beyond_the_models_32_bits_are_refused() {
    let big = json!({"apiVersion": "ecskube.ecskube/v1alpha1", "kind": "ECSDeployment", "metadata": {"name": "web"},
        "spec": {"Task": {"containerDefinitions": [{"name": "web", "image": "nginx", "memory": 64, "cpu": 1_099_511_627_776i64}]},
                 "Service": {"desiredCount": 4_294_967_297i64, "healthCheckGracePeriodSeconds": 2_147_483_648i64,
                             "deploymentConfiguration": {"maximumPercent": 1_000_000_000_000i64}}}});
    let errs = errors(big.clone());
    for path in [
        "spec.Task.containerDefinitions[0].cpu",
        "spec.Service.desiredCount",
        "spec.Service.healthCheckGracePeriodSeconds",
        "spec.Service.deploymentConfiguration.maximumPercent",
    ] {
        assert!(errs.contains(&(Code::Invalid, path.to_string())), "{path}: {errs:?}");
    }
    let doc = EcsDocument::classify(big);
    let a = doc.analyze();
    let d = a.report.errors().find(|d| d.path == "spec.Service.desiredCount").unwrap();
    assert!(d.expected.contains("32-bit integer"), "{d}");
    // The largest 32-bit value is fine.
    let edge = json!({"family": "f", "containerDefinitions": [{"name": "web", "image": "nginx", "memory": 64, "cpu": 2_147_483_647i64}]});
    assert!(!errors(edge).iter().any(|(_, p)| p.ends_with(".cpu")));
}

#[test]
fn long_images_blank_service_names_and_daemon_counts_are_refused() {
    let long = json!({"family": "f", "containerDefinitions": [{"name": "web", "image": "a".repeat(256), "memory": 64}]});
    assert_eq!(errors(long), vec![(Code::Invalid, "containerDefinitions[0].image".into())]);
    let object = |service: Value| {
        json!({"apiVersion": "ecskube.ecskube/v1alpha1", "kind": "ECSDeployment", "metadata": {"name": "web"},
               "spec": {"Task": {"containerDefinitions": [web()]}, "Service": service}})
    };
    assert_eq!(
        errors(object(json!({"serviceName": "   "}))),
        vec![(Code::Invalid, "spec.Service.serviceName".into())]
    );
    assert_eq!(
        errors(object(json!({"schedulingStrategy": "DAEMON", "desiredCount": 2}))),
        vec![(Code::Invalid, "spec.Service.desiredCount".into())]
    );
    let cfn = json!({"apiVersion": "ecskube.ecskube/v1alpha1", "kind": "ECSDeployment", "metadata": {"name": "web"},
        "spec": {"Task": {"containerDefinitions": [web()]},
                 "Service": {"Properties": {"SchedulingStrategy": "DAEMON", "DesiredCount": 1}}}});
    assert_eq!(errors(cfn), vec![(Code::Invalid, "spec.Service.Properties.DesiredCount".into())]);
    // describe-services reports a count for a DAEMON service, read-only: fine.
    let described = json!({"services": [{"serviceName": "agent", "schedulingStrategy": "DAEMON", "desiredCount": 3}]});
    assert!(!errors(described).iter().any(|(_, p)| p.ends_with("desiredCount")));
}

#[test]
fn null_list_items_and_binpack_without_a_field_are_refused() {
    let nulls = json!({"family": "f", "containerDefinitions": [{"name": "web", "image": "nginx", "memory": 64, "ulimits": [null]}]});
    assert_eq!(
        errors(nulls),
        vec![(Code::InvalidType, "containerDefinitions[0].ulimits[0]".into())]
    );
    let binpack = json!({"apiVersion": "ecskube.ecskube/v1alpha1", "kind": "ECSDeployment", "metadata": {"name": "web"},
        "spec": {"Task": {"containerDefinitions": [web()]}, "Service": {"placementStrategy": [{"type": "binpack"}]}}});
    assert_eq!(
        errors(binpack),
        vec![(Code::Required, "spec.Service.placementStrategy[0].field".into())]
    );
}

#[test]
fn a_family_implied_by_a_dotted_name_is_explained_at_the_name() {
    let object = |task: Value| json!({"apiVersion": "ecskube.ecskube/v1alpha1", "kind": "ECSDeployment", "metadata": {"name": "web.v2"}, "spec": {"Task": task}});
    let doc = EcsDocument::classify(object(json!({"containerDefinitions": [web()]})));
    let a = doc.analyze();
    let errs: Vec<_> = a.report.errors().collect();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].path, "metadata.name");
    assert!(
        errs[0].message.contains("the task family defaults to the object's name") && errs[0].message.contains("set spec.Task.family"),
        "{}",
        errs[0].message
    );
    // An explicit family makes the name fine.
    assert_eq!(errors(object(json!({"family": "web-v2", "containerDefinitions": [web()]}))), vec![]);
    // And the defaults never write a family ECS would refuse.
    let analysis = doc.analyze();
    let patch = ecskube::defaults::compute(&analysis, doc.name());
    assert!(!serde_json::to_string(&patch).unwrap().contains("family"), "{patch:?}");
}
