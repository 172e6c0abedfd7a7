//! The mapping rules of AWS-backed fields to other projects' objects, one
//! test each, through the pure engine: External Secrets, TargetGroupBinding,
//! EFS CSI, and what happens without them. (tests/integrations.rs shows the
//! API server accepts the objects and the controller runs them.)

use ecskube::document::EcsDocument;
use ecskube::translate::{convert_with, Integrations, Options, SecretStores, StoreRef, TargetGroupBindings};
use serde_json::{json, Value};

struct Out {
    objects: Vec<Value>,
    warnings: Vec<(String, String)>,
}

impl Out {
    fn all(&self, kind: &str) -> Vec<&Value> {
        self.objects.iter().filter(|o| o["kind"] == kind).collect()
    }
    fn one(&self, kind: &str) -> &Value {
        let all = self.all(kind);
        assert_eq!(all.len(), 1, "one {kind} in {:#?}", self.objects);
        all[0]
    }
    fn warning(&self, path: &str) -> Option<&str> {
        self.warnings.iter().find(|(p, _)| p == path).map(|(_, m)| m.as_str())
    }
}

fn store(name: &str) -> Option<StoreRef> {
    Some(StoreRef::parse(name).unwrap())
}

fn everything() -> Integrations {
    Integrations {
        external_secrets: Some(SecretStores {
            secrets_manager: store("aws-sm"),
            parameter_store: store("SecretStore/aws-ps"),
        }),
        target_group_binding: Some(TargetGroupBindings::default()),
        efs_csi: true,
    }
}

fn run(task: Value, service: Option<Value>, integrations: Integrations) -> Out {
    let mut spec = json!({"Task": task});
    if let Some(s) = service {
        spec["Service"] = s;
    }
    convert_spec(spec, integrations)
}

/// An ECSDeployment `app` in `ns` with this spec, converted for a cluster running `integrations`.
fn convert_spec(spec: Value, integrations: Integrations) -> Out {
    let v = json!({"apiVersion": "ecskube.ecskube/v1alpha1", "kind": "ECSDeployment", "metadata": {"name": "app", "namespace": "ns"}, "spec": spec});
    let doc = EcsDocument::classify(v);
    let analysis = doc.analyze();
    assert!(!analysis.report.has_errors(), "{:?}", analysis.report.diagnostics);
    let options = Options {
        integrations,
        ..Default::default()
    };
    let converted = convert_with(&analysis, &doc.meta(&analysis), &options).unwrap();
    Out {
        objects: converted.objects.iter().map(|o| serde_json::to_value(o).unwrap()).collect(),
        warnings: converted
            .report
            .diagnostics
            .iter()
            .map(|d| (d.path.clone(), d.message.clone()))
            .collect(),
    }
}

const SM: &str = "arn:aws:secretsmanager:us-east-1:111122223333:secret:db-AbCdEf";

fn task_with_secrets(secrets: Value) -> Value {
    json!({"family": "app", "containerDefinitions": [{"name": "app", "image": "nginx", "secrets": secrets}]})
}

#[test]
fn secrets_become_one_external_secret_whose_target_is_the_secret_the_pods_read() {
    let out = run(
        task_with_secrets(json!([
            {"name": "DB_USER", "valueFrom": format!("{SM}:username::")},
            {"name": "DB_PASS", "valueFrom": format!("{SM}:password:AWSPREVIOUS:")},
            {"name": "WHOLE", "valueFrom": format!("{SM}:::0f1e2d3c-aaaa-bbbb-cccc-1234567890ab")},
            {"name": "TOKEN", "valueFrom": "arn:aws:ssm:us-east-1:444455556666:parameter/shared/token"},
            {"name": "FLAG", "valueFrom": "feature-flag"}
        ])),
        None,
        everything(),
    );
    let es = out.one("ExternalSecret");
    assert_eq!(es["apiVersion"], "external-secrets.io/v1");
    assert_eq!(es["metadata"]["name"], "app-secrets");
    assert_eq!(es["spec"]["target"]["name"], "app-secrets");
    assert_eq!(
        es["spec"]["secretStoreRef"],
        json!({"name": "aws-sm", "kind": "ClusterSecretStore"})
    );
    let data = es["spec"]["data"].as_array().unwrap();
    let item = |k: &str| data.iter().find(|d| d["secretKey"] == k).unwrap();
    assert_eq!(item("DB_USER")["remoteRef"], json!({"key": SM, "property": "username"}));
    assert_eq!(
        item("DB_PASS")["remoteRef"],
        json!({"key": SM, "property": "password", "version": "AWSPREVIOUS"})
    );
    assert_eq!(
        item("WHOLE")["remoteRef"],
        json!({"key": SM, "version": "uuid/0f1e2d3c-aaaa-bbbb-cccc-1234567890ab"})
    );
    // Cross-account parameter: the whole ARN, from the Parameter Store store.
    assert_eq!(
        item("TOKEN")["remoteRef"]["key"],
        "arn:aws:ssm:us-east-1:444455556666:parameter/shared/token"
    );
    assert_eq!(
        item("TOKEN")["sourceRef"]["storeRef"],
        json!({"name": "aws-ps", "kind": "SecretStore"})
    );
    assert_eq!(item("FLAG")["remoteRef"]["key"], "feature-flag");
    // The pods read exactly those keys of that Secret; nothing to create by hand.
    let env = &out.one("Deployment")["spec"]["template"]["spec"]["containers"][0]["env"];
    for e in env.as_array().unwrap() {
        assert_eq!(e["valueFrom"]["secretKeyRef"]["name"], "app-secrets");
        assert!(data.iter().any(|d| d["secretKey"] == e["valueFrom"]["secretKeyRef"]["key"]));
    }
    assert!(
        out.warning("spec.Task.containerDefinitions[0].secrets").is_none(),
        "{:?}",
        out.warnings
    );
}

#[test]
fn without_external_secrets_or_a_store_the_secret_is_the_users_with_a_warning() {
    let secrets = json!([{"name": "DB", "valueFrom": SM}, {"name": "P", "valueFrom": "/app/p"}]);
    let out = run(task_with_secrets(secrets.clone()), None, Integrations::default());
    assert!(out.all("ExternalSecret").is_empty());
    assert!(out
        .warning("spec.Task.containerDefinitions[0].secrets")
        .is_some_and(|m| m.contains("create it")));
    // A Parameter Store reference but only a Secrets Manager store: nothing
    // half-made; the warning names the missing flag.
    let mut only_sm = everything();
    only_sm.external_secrets.as_mut().unwrap().parameter_store = None;
    let out = run(task_with_secrets(secrets), None, only_sm);
    assert!(out.all("ExternalSecret").is_empty());
    let why = out.warning("spec.Task.containerDefinitions[0].secrets[1].valueFrom").unwrap();
    assert!(why.contains("--secret-store-parameter-store"), "{why}");
    assert!(out.warning("spec.Task.containerDefinitions[0].secrets").is_some());
}

#[test]
fn registry_credentials_become_a_templated_docker_config_secret() {
    let task = json!({"family": "app", "containerDefinitions": [{
        "name": "app", "image": "registry.example.com/team/app:1",
        "repositoryCredentials": {"credentialsParameter": SM}
    }]});
    let out = run(task, None, everything());
    let es = out.one("ExternalSecret");
    assert_eq!(es["metadata"]["name"], "app-registry");
    let target = &es["spec"]["target"];
    assert_eq!(target["name"], "app-registry");
    assert_eq!(target["template"]["type"], "kubernetes.io/dockerconfigjson");
    let config: Value = serde_json::from_str(target["template"]["data"][".dockerconfigjson"].as_str().unwrap()).unwrap();
    assert!(config["auths"]["registry.example.com"]["username"].is_string());
    let keys: Vec<&Value> = es["spec"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| &d["remoteRef"]["property"])
        .collect();
    assert_eq!(keys, [&json!("username"), &json!("password")]);
    assert_eq!(
        out.one("Deployment")["spec"]["template"]["spec"]["imagePullSecrets"][0]["name"],
        "app-registry"
    );
    assert!(out.warning("spec.Task.containerDefinitions[0].repositoryCredentials").is_none());
}

fn lb_service(lbs: Value) -> Value {
    json!({"serviceName": "app", "desiredCount": 2, "loadBalancers": lbs})
}

fn web_task(network_mode: &str) -> Value {
    json!({"family": "app", "networkMode": network_mode, "containerDefinitions": [{
        "name": "web", "image": "nginx", "portMappings": [{"containerPort": 80, "hostPort": if network_mode == "awsvpc" { 80 } else { 0 }}]
    }]})
}

const TG: &str = "arn:aws:elasticloadbalancing:us-east-1:111122223333:targetgroup/web/0123456789abcdef";

#[test]
fn target_groups_are_kept_with_ip_targets_for_awsvpc_tasks() {
    let out = run(
        web_task("awsvpc"),
        Some(lb_service(
            json!([{"containerName": "web", "containerPort": 80, "targetGroupArn": TG}]),
        )),
        everything(),
    );
    let tgb = out.one("TargetGroupBinding");
    assert_eq!(tgb["apiVersion"], "elbv2.k8s.aws/v1beta1");
    assert_eq!(tgb["metadata"]["name"], "app-web-80");
    assert_eq!(
        tgb["spec"],
        json!({"targetGroupARN": TG, "targetType": "ip", "serviceRef": {"name": "app", "port": 80}})
    );
    assert_eq!(
        out.one("Service")["spec"]["type"],
        "ClusterIP",
        "no new load balancer: the target group's"
    );
    // Exclusive ownership of the target group is the default, and said.
    let warned = out.warning("spec.Service.loadBalancers[0].targetGroupArn").unwrap();
    assert!(warned.contains("--target-group-multi-cluster"), "{warned}");
}

#[test]
fn two_target_groups_on_one_port_are_two_bindings() {
    let nlb = "arn:aws:elasticloadbalancing:us-east-1:111122223333:targetgroup/web-nlb/fedcba9876543210";
    let out = run(
        web_task("awsvpc"),
        Some(lb_service(json!([
            {"containerName": "web", "containerPort": 80, "targetGroupArn": TG},
            {"containerName": "web", "containerPort": 80, "targetGroupArn": nlb}
        ]))),
        everything(),
    );
    let bindings = out.all("TargetGroupBinding");
    let names: Vec<&Value> = bindings.iter().map(|b| &b["metadata"]["name"]).collect();
    assert_eq!(names, [&json!("app-web-80"), &json!("app-web-80-1")]);
    assert_eq!(bindings[1]["spec"]["targetGroupARN"], nlb);
}

#[test]
fn bridge_tasks_register_nodes_on_a_node_port_and_multi_cluster_is_an_option() {
    let mut integrations = everything();
    integrations.target_group_binding = Some(TargetGroupBindings { multi_cluster: true });
    let out = run(
        web_task("bridge"),
        Some(lb_service(
            json!([{"containerName": "web", "containerPort": 80, "targetGroupArn": TG}]),
        )),
        integrations,
    );
    let tgb = out.one("TargetGroupBinding");
    assert_eq!(tgb["spec"]["targetType"], "instance");
    assert_eq!(tgb["spec"]["multiClusterTargetGroup"], true);
    assert_eq!(out.one("Service")["spec"]["type"], "NodePort");
    assert!(out.warning("spec.Service.loadBalancers[0].targetGroupArn").is_none());
}

#[test]
fn classic_load_balancers_and_clusters_without_the_controller_keep_a_load_balancer_service() {
    let classic = lb_service(json!([{"containerName": "web", "containerPort": 80, "loadBalancerName": "legacy-elb"}]));
    let out = run(web_task("awsvpc"), Some(classic), everything());
    assert!(out.all("TargetGroupBinding").is_empty());
    assert_eq!(out.one("Service")["spec"]["type"], "LoadBalancer");
    let tg = lb_service(json!([{"containerName": "web", "containerPort": 80, "targetGroupArn": TG}]));
    let out = run(web_task("awsvpc"), Some(tg), Integrations::default());
    assert!(out.all("TargetGroupBinding").is_empty());
    assert_eq!(out.one("Service")["spec"]["type"], "LoadBalancer");
}

fn efs_task(efs: Value) -> Value {
    json!({"family": "app", "volumes": [{"name": "data", "efsVolumeConfiguration": efs}],
           "containerDefinitions": [{"name": "app", "image": "nginx", "mountPoints": [{"sourceVolume": "data", "containerPath": "/data"}]}]})
}

#[test]
fn efs_volumes_become_a_bound_persistent_volume_and_claim() {
    let out = run(
        efs_task(
            json!({"fileSystemId": "fs-0123456789abcdef0", "rootDirectory": "/exports/app", "transitEncryption": "ENABLED", "transitEncryptionPort": 2999}),
        ),
        None,
        everything(),
    );
    let pv = out.one("PersistentVolume");
    let pvc = out.one("PersistentVolumeClaim");
    let pv_name = pv["metadata"]["name"].as_str().unwrap();
    assert!(pv_name.starts_with("ecskube-ns-app-data-"), "{pv_name}");
    assert!(pv["metadata"].get("namespace").is_none());
    assert_eq!(pv["metadata"]["labels"]["ecskube.ecskube/owner-namespace"], "ns");
    assert_eq!(pv["metadata"]["labels"]["app.kubernetes.io/instance"], "app");
    assert_eq!(pv["spec"]["csi"]["driver"], "efs.csi.aws.com");
    assert_eq!(pv["spec"]["csi"]["volumeHandle"], "fs-0123456789abcdef0:/exports/app");
    assert_eq!(pv["spec"]["mountOptions"], json!(["tls", "tlsport=2999"]));
    assert!(pv["spec"]["csi"].get("volumeAttributes").is_none());
    assert_eq!(pv["spec"]["accessModes"], json!(["ReadWriteMany"]));
    assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Retain");
    assert_eq!(pv["spec"]["storageClassName"], "");
    assert_eq!(pv["spec"]["claimRef"], json!({"namespace": "ns", "name": "app-data"}));
    assert_eq!(pvc["metadata"]["name"], "app-data");
    assert_eq!(pvc["spec"]["volumeName"], pv_name);
    assert_eq!(pvc["spec"]["storageClassName"], "");
    let pod = &out.one("Deployment")["spec"]["template"]["spec"];
    assert_eq!(pod["volumes"][0]["persistentVolumeClaim"]["claimName"], "app-data");
    assert!(out.warning("spec.Task.volumes[0]").is_none(), "{:?}", out.warnings);
}

#[test]
fn efs_access_points_iam_and_plain_text_map_or_warn() {
    let out = run(
        efs_task(
            json!({"fileSystemId": "fs-01234567", "rootDirectory": "/", "transitEncryption": "ENABLED",
                        "authorizationConfig": {"accessPointId": "fsap-0123456789abcdef0", "iam": "ENABLED"}}),
        ),
        None,
        everything(),
    );
    let pv = out.one("PersistentVolume");
    assert_eq!(pv["spec"]["csi"]["volumeHandle"], "fs-01234567::fsap-0123456789abcdef0");
    assert_eq!(pv["spec"]["mountOptions"], json!(["tls", "iam"]));
    assert!(out
        .warning("spec.Task.volumes[0].efsVolumeConfiguration.authorizationConfig.iam")
        .is_some_and(|m| m.contains("node identity")));
    // ECS's default is no TLS; the driver's is TLS: say so explicitly.
    let out = run(efs_task(json!({"fileSystemId": "fs-01234567"})), None, everything());
    let pv = out.one("PersistentVolume");
    assert_eq!(pv["spec"]["csi"]["volumeAttributes"], json!({"encryptInTransit": "false"}));
    assert!(pv["spec"].get("mountOptions").is_none());
}

#[test]
fn without_the_efs_driver_the_claim_is_the_users_with_a_warning() {
    let out = run(efs_task(json!({"fileSystemId": "fs-01234567"})), None, Integrations::default());
    assert!(out.all("PersistentVolume").is_empty() && out.all("PersistentVolumeClaim").is_empty());
    assert!(out.warning("spec.Task.volumes[0]").is_some_and(|m| m.contains("create it")));
}

#[test]
fn environment_files_name_the_s3_object_whose_variables_will_be_missing() {
    let task = json!({"family": "app", "containerDefinitions": [{"name": "app", "image": "nginx",
        "environmentFiles": [{"value": "arn:aws:s3:::config-bucket/app.env", "type": "s3"}]}]});
    let out = run(task, None, everything());
    let w = out.warning("spec.Task.containerDefinitions[0].environmentFiles[0]").unwrap();
    assert!(w.contains("arn:aws:s3:::config-bucket/app.env") && w.contains("\"app\""), "{w}");
}

fn scaled(scaling: Value, service: Value) -> Out {
    convert_spec(
        json!({"Task": web_task("awsvpc"), "Service": service, "Scaling": scaling}),
        Integrations::default(),
    )
}

fn cli_scaling(min: i64, max: i64, policies: Value) -> Value {
    json!({"ScalableTarget": {"ServiceNamespace": "ecs", "ScalableDimension": "ecs:service:DesiredCount", "ResourceId": "service/c/app",
                              "MinCapacity": min, "MaxCapacity": max},
           "ScalingPolicies": policies})
}

fn tracking(name: &str, metric: &str, target: f64, extra: Value) -> Value {
    let mut config = json!({"TargetValue": target, "PredefinedMetricSpecification": {"PredefinedMetricType": metric}});
    for (k, v) in extra.as_object().unwrap() {
        config[k] = v.clone();
    }
    json!({"PolicyName": name, "ServiceNamespace": "ecs", "ScalableDimension": "ecs:service:DesiredCount", "ResourceId": "service/c/app",
           "PolicyType": "TargetTrackingScaling", "TargetTrackingScalingPolicyConfiguration": config})
}

#[test]
fn target_tracking_on_cpu_and_memory_becomes_one_hpa_with_both_metrics_and_the_cooldowns() {
    let out = scaled(
        cli_scaling(
            2,
            10,
            json!([
                tracking(
                    "cpu",
                    "ECSServiceAverageCPUUtilization",
                    60.0,
                    json!({"ScaleOutCooldown": 60, "ScaleInCooldown": 120})
                ),
                tracking("mem", "ECSServiceAverageMemoryUtilization", 75.4, json!({"ScaleInCooldown": 600}))
            ]),
        ),
        json!({"serviceName": "app", "desiredCount": 3}),
    );
    let hpa = out.one("HorizontalPodAutoscaler");
    assert_eq!(
        hpa["spec"]["scaleTargetRef"],
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "app"})
    );
    assert_eq!(
        (hpa["spec"]["minReplicas"].clone(), hpa["spec"]["maxReplicas"].clone()),
        (json!(2), json!(10))
    );
    let metric = |i: usize| {
        (
            hpa["spec"]["metrics"][i]["resource"]["name"].clone(),
            hpa["spec"]["metrics"][i]["resource"]["target"].clone(),
        )
    };
    assert_eq!(metric(0), (json!("cpu"), json!({"type": "Utilization", "averageUtilization": 60})));
    assert_eq!(
        metric(1),
        (json!("memory"), json!({"type": "Utilization", "averageUtilization": 75}))
    );
    // The memory policy's scale-out cooldown is ECS's default (300 s); the longest window wins.
    assert_eq!(hpa["spec"]["behavior"]["scaleUp"]["stabilizationWindowSeconds"], 300);
    assert_eq!(hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"], 600);
    assert!(hpa["spec"]["behavior"]["scaleDown"].get("selectPolicy").is_none());
    // desiredCount stays the Deployment's initial count.
    assert_eq!(out.one("Deployment")["spec"]["replicas"], 3);
}

#[test]
fn what_an_hpa_cannot_track_is_warned_and_disable_scale_in_turns_scale_down_off() {
    let mut alb = tracking("alb", "ALBRequestCountPerTarget", 1000.0, json!({}));
    alb["TargetTrackingScalingPolicyConfiguration"]["PredefinedMetricSpecification"]["ResourceLabel"] =
        json!("app/web/0123456789abcdef/targetgroup/web/0123456789abcdef");
    let step = json!({"PolicyName": "step", "PolicyType": "StepScaling", "ServiceNamespace": "ecs", "ScalableDimension": "ecs:service:DesiredCount",
                      "ResourceId": "service/c/app", "StepScalingPolicyConfiguration": {"AdjustmentType": "ChangeInCapacity",
                      "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]}});
    let cpu = tracking("cpu", "ECSServiceAverageCPUUtilization", 50.0, json!({"DisableScaleIn": true}));
    let out = scaled(cli_scaling(0, 4, json!([alb, step, cpu])), json!({"serviceName": "app"}));
    let hpa = out.one("HorizontalPodAutoscaler");
    assert_eq!(hpa["spec"]["metrics"].as_array().unwrap().len(), 1);
    assert_eq!(hpa["spec"]["behavior"]["scaleDown"]["selectPolicy"], "Disabled");
    assert_eq!(hpa["spec"]["minReplicas"], 1, "an HPA keeps at least one replica");
    let warned = |needle: &str| out.warnings.iter().any(|(_, m)| m.contains(needle));
    assert!(warned("ALBRequestCountPerTarget"), "{:?}", out.warnings);
    assert!(warned("StepScaling policy \"step\""), "{:?}", out.warnings);
    assert!(warned("at least 1 replica"), "{:?}", out.warnings);
}

#[test]
fn without_a_policy_the_hpa_can_follow_there_is_none_and_desired_count_rules() {
    let step = json!({"PolicyName": "step", "PolicyType": "StepScaling", "ServiceNamespace": "ecs", "ScalableDimension": "ecs:service:DesiredCount",
                      "ResourceId": "service/c/app", "StepScalingPolicyConfiguration": {"AdjustmentType": "ChangeInCapacity",
                      "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]}});
    let out = scaled(cli_scaling(1, 3, json!([step])), json!({"serviceName": "app", "desiredCount": 2}));
    assert!(out.all("HorizontalPodAutoscaler").is_empty());
    assert!(
        out.warnings.iter().any(|(_, m)| m.contains("desiredCount stays")),
        "{:?}",
        out.warnings
    );
    let daemon = scaled(
        cli_scaling(1, 3, json!([tracking("cpu", "ECSServiceAverageCPUUtilization", 50.0, json!({}))])),
        json!({"serviceName": "app", "schedulingStrategy": "DAEMON"}),
    );
    assert!(daemon.all("HorizontalPodAutoscaler").is_empty());
    assert!(daemon.warnings.iter().any(|(_, m)| m.contains("DAEMON")));
}
