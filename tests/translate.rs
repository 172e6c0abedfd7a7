//! ECS semantics carried into Kubernetes: one test per mapping rule.

use ecskube::document::EcsDocument;
use ecskube::translate::convert;
use serde_json::{json, Value};

struct Out {
    objects: Vec<Value>,
    warnings: Vec<(String, String)>,
}

impl Out {
    fn kind(&self, kind: &str) -> Option<&Value> {
        self.objects.iter().find(|o| o["kind"] == kind)
    }
    fn pod(&self) -> &Value {
        let w = self.kind("Deployment").or_else(|| self.kind("DaemonSet")).expect("a workload");
        &w["spec"]["template"]["spec"]
    }
    fn container(&self, name: &str) -> &Value {
        let pod = self.pod();
        pod["containers"]
            .as_array()
            .into_iter()
            .chain(pod["initContainers"].as_array())
            .flatten()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("container {name} in {pod}"))
    }
    fn env(&self, container: &str, var: &str) -> Option<String> {
        self.container(container)["env"]
            .as_array()?
            .iter()
            .find(|e| e["name"] == var)
            .and_then(|e| e["value"].as_str().map(String::from))
    }
    fn warned(&self, path: &str) -> bool {
        self.warnings.iter().any(|(p, _)| p == path)
    }
}

fn deployment(task: Value, service: Option<Value>) -> Value {
    let mut spec = json!({"Task": task});
    if let Some(s) = service {
        spec["Service"] = s;
    }
    json!({"apiVersion": "ecskube.ecskube/v1alpha1", "kind": "ECSDeployment", "metadata": {"name": "app", "namespace": "ns", "labels": {"demo": "true"}}, "spec": spec})
}

fn run(v: Value) -> Out {
    let doc = EcsDocument::classify(v);
    let analysis = doc.analyze();
    let converted = convert(&analysis, &doc.meta(&analysis)).unwrap_or_else(|e| panic!("{e}: {:?}", analysis.report.diagnostics));
    Out {
        objects: converted
            .objects
            .iter()
            .map(|o| serde_json::to_value(o).expect("serializes"))
            .collect(),
        warnings: converted
            .report
            .diagnostics
            .iter()
            .map(|d| (d.path.clone(), d.message.clone()))
            .collect(),
    }
}

fn containers(list: Value) -> Value {
    json!({"containerDefinitions": list})
}

#[test]
fn workload_and_service_carry_labels_and_a_stable_selector() {
    let out = run(deployment(
        containers(json!([{"name": "web", "image": "nginx", "memory": 64, "portMappings": [{"containerPort": 80}]}])),
        Some(json!({"desiredCount": 3})),
    ));
    let d = out.kind("Deployment").expect("deployment");
    assert_eq!(d["metadata"]["name"], "app");
    assert_eq!(d["metadata"]["namespace"], "ns");
    assert_eq!(d["metadata"]["labels"]["demo"], "true");
    assert_eq!(d["metadata"]["labels"]["app.kubernetes.io/managed-by"], "ecskube");
    assert_eq!(d["spec"]["replicas"], 3);
    assert_eq!(
        d["spec"]["selector"]["matchLabels"],
        json!({"app.kubernetes.io/instance": "app", "app.kubernetes.io/managed-by": "ecskube"})
    );
    assert_eq!(d["spec"]["template"]["metadata"]["labels"]["demo"], "true");
    let s = out.kind("Service").expect("service");
    assert_eq!(s["spec"]["type"], "ClusterIP", "no load balancer: ClusterIP for mapped ports");
    assert_eq!(s["spec"]["ports"][0]["port"], 80);
}

#[test]
fn no_service_section_runs_one_replica_and_no_ports_no_service() {
    let out = run(deployment(
        containers(json!([{"name": "worker", "image": "busybox", "memory": 64}])),
        None,
    ));
    assert_eq!(out.kind("Deployment").unwrap()["spec"]["replicas"], 1);
    assert!(out.kind("Service").is_none());
}

#[test]
fn daemon_scheduling_makes_a_daemonset() {
    let out = run(deployment(
        containers(json!([{"name": "agent", "image": "a", "memory": 64}])),
        Some(json!({"schedulingStrategy": "DAEMON"})),
    ));
    let ds = out.kind("DaemonSet").expect("daemonset");
    assert_eq!(
        ds["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"], "100%",
        "ECS DAEMON default minimumHealthyPercent 0"
    );
    assert!(out.kind("Deployment").is_none());
}

#[test]
fn load_balancers_make_a_load_balancer_service_one_port_each() {
    let task = containers(
        json!([{"name": "web", "image": "w", "memory": 64, "portMappings": [{"containerPort": 80}, {"containerPort": 443}, {"containerPort": 9000}]}]),
    );
    let out = run(deployment(
        task,
        Some(json!({"loadBalancers": [{"containerName": "web", "containerPort": 80}, {"containerName": "web", "containerPort": 443}]})),
    ));
    let s = out.kind("Service").unwrap();
    assert_eq!(s["spec"]["type"], "LoadBalancer");
    let ports: Vec<(i64, i64)> = s["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["port"].as_i64().unwrap(), p["targetPort"].as_i64().unwrap()))
        .collect();
    assert_eq!(ports, vec![(80, 80), (443, 443)]);
    assert!(s["spec"]["ports"].as_array().unwrap().iter().all(|p| p["name"].is_string()));
}

#[test]
fn task_role_becomes_an_irsa_service_account_used_by_the_pod() {
    let mut task = containers(json!([{"name": "a", "image": "i", "memory": 64}]));
    task["taskRoleArn"] = json!("arn:aws:iam::123456789012:role/app");
    let out = run(deployment(task, None));
    let sa = out.kind("ServiceAccount").expect("service account");
    assert_eq!(
        sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
        "arn:aws:iam::123456789012:role/app"
    );
    assert_eq!(out.pod()["serviceAccountName"], "app");
}

#[test]
fn entry_point_is_command_and_command_is_args() {
    let out = run(deployment(
        containers(json!([{"name": "a", "image": "i", "memory": 64, "entryPoint": ["sh", "-c"], "command": ["echo hi"]}])),
        None,
    ));
    assert_eq!(out.container("a")["command"], json!(["sh", "-c"]));
    assert_eq!(out.container("a")["args"], json!(["echo hi"]));
}

#[test]
fn health_check_becomes_probes_with_startup_from_start_period_and_grace() {
    let task = containers(json!([
        {"name": "a", "image": "i", "memory": 64, "healthCheck": {"command": ["CMD-SHELL", "curl -f http://localhost/ || exit 1"], "interval": 10, "timeout": 3, "retries": 2, "startPeriod": 20}},
        {"name": "b", "image": "i", "memory": 64, "healthCheck": {"command": ["CMD", "check", "--fast"]}}
    ]));
    let out = run(deployment(task, Some(json!({"healthCheckGracePeriodSeconds": 60}))));
    let a = out.container("a");
    assert_eq!(
        a["livenessProbe"]["exec"]["command"],
        json!(["/bin/sh", "-c", "curl -f http://localhost/ || exit 1"])
    );
    assert_eq!(a["readinessProbe"]["periodSeconds"], 10);
    assert_eq!(a["readinessProbe"]["timeoutSeconds"], 3);
    assert_eq!(a["livenessProbe"]["failureThreshold"], 2);
    assert_eq!(
        a["startupProbe"]["failureThreshold"],
        60 / 10 + 2,
        "the grace period widens the start period"
    );
    assert_eq!(out.container("b")["livenessProbe"]["exec"]["command"], json!(["check", "--fast"]));
}

#[test]
fn links_emulate_docker_links_so_wordpress_runs_unmodified() {
    // The AWS docs WordPress example, exactly as published.
    let task = json!({"family": "hello_world", "containerDefinitions": [
        {"name": "wordpress", "links": ["mysql"], "image": "wordpress", "essential": true, "portMappings": [{"containerPort": 80, "hostPort": 80}], "memory": 500, "cpu": 10},
        {"environment": [{"name": "MYSQL_ROOT_PASSWORD", "value": "password"}], "name": "mysql", "image": "mysql", "cpu": 10, "memory": 500, "essential": true}
    ]});
    let out = run(deployment(task, None));
    assert_eq!(out.pod()["hostAliases"], json!([{"ip": "127.0.0.1", "hostnames": ["mysql"]}]));
    assert_eq!(out.env("wordpress", "MYSQL_ENV_MYSQL_ROOT_PASSWORD").as_deref(), Some("password"));
    assert_eq!(out.env("wordpress", "MYSQL_NAME").as_deref(), Some("/wordpress/mysql"));
}

#[test]
fn link_aliases_ports_and_own_variables_win() {
    let task = containers(json!([
        {"name": "app", "image": "i", "memory": 64, "links": ["db:database"], "environment": [{"name": "DATABASE_PORT", "value": "mine"}]},
        {"name": "db", "image": "pg", "memory": 64, "portMappings": [{"containerPort": 5432}]}
    ]));
    let out = run(deployment(task, None));
    assert_eq!(out.pod()["hostAliases"][0]["hostnames"], json!(["database", "db"]));
    assert_eq!(
        out.env("app", "DATABASE_PORT").as_deref(),
        Some("mine"),
        "a variable the container sets itself wins"
    );
    assert_eq!(out.env("app", "DATABASE_PORT_5432_TCP_ADDR").as_deref(), Some("127.0.0.1"));
    assert_eq!(out.env("app", "DATABASE_PORT_5432_TCP").as_deref(), Some("tcp://127.0.0.1:5432"));
}

#[test]
fn extra_hosts_become_host_aliases() {
    let out = run(deployment(
        containers(json!([{"name": "a", "image": "i", "memory": 64, "extraHosts": [{"hostname": "db.local", "ipAddress": "10.0.0.5"}]}])),
        None,
    ));
    assert_eq!(out.pod()["hostAliases"], json!([{"ip": "10.0.0.5", "hostnames": ["db.local"]}]));
}

#[test]
fn cpu_units_and_memory_become_requests_and_limits() {
    let task = containers(json!([
        {"name": "a", "image": "i", "cpu": 10, "memory": 500},
        {"name": "b", "image": "i", "cpu": 1024, "memory": 512, "memoryReservation": 256}
    ]));
    let out = run(deployment(task, None));
    assert_eq!(
        out.container("a")["resources"],
        json!({"requests": {"cpu": "10m", "memory": "500Mi"}, "limits": {"memory": "500Mi"}})
    );
    assert_eq!(
        out.container("b")["resources"],
        json!({"requests": {"cpu": "1", "memory": "256Mi"}, "limits": {"memory": "512Mi"}})
    );
}

#[test]
fn task_cpu_and_memory_become_pod_level_resources() {
    let task = json!({"family": "f", "cpu": "1 vCPU", "memory": "2 GB", "containerDefinitions": [{"name": "a", "image": "i"}]});
    let out = run(deployment(task, None));
    assert_eq!(
        out.pod()["resources"],
        // In the form the API server stores, so a re-read compares equal.
        json!({"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "1", "memory": "2Gi"}})
    );
}

#[test]
fn depends_on_orders_init_containers_and_native_sidecars() {
    let task = containers(json!([
        {"name": "app", "image": "i", "memory": 64, "dependsOn": [{"containerName": "migrate", "condition": "SUCCESS"}, {"containerName": "proxy", "condition": "HEALTHY"}]},
        {"name": "proxy", "image": "envoy", "memory": 64, "healthCheck": {"command": ["CMD", "check"], "interval": 5, "retries": 3}},
        {"name": "migrate", "image": "m", "memory": 64, "essential": false}
    ]));
    let out = run(deployment(task, None));
    let pod = out.pod();
    let init: Vec<&str> = pod["initContainers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(init, vec!["proxy", "migrate"]);
    assert_eq!(
        out.container("proxy")["restartPolicy"],
        "Always",
        "HEALTHY dependency: a native sidecar"
    );
    assert_eq!(out.container("proxy")["startupProbe"]["exec"]["command"], json!(["check"]));
    assert!(
        out.container("migrate").get("restartPolicy").is_none(),
        "SUCCESS dependency: a plain init container"
    );
    let regular: Vec<&str> = pod["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(regular, vec!["app"]);
}

#[test]
fn non_essential_containers_nobody_waits_on_stay_regular_with_a_warning() {
    let out = run(deployment(
        containers(json!([{"name": "a", "image": "i", "memory": 64}, {"name": "side", "image": "i", "memory": 64, "essential": false}])),
        None,
    ));
    assert!(out.pod()["initContainers"].is_null());
    assert!(out.warned("spec.Task.containerDefinitions[1].essential"));
}

#[test]
fn host_ports_are_not_copied_except_in_host_network_mode() {
    let bridge = run(deployment(
        containers(json!([{"name": "a", "image": "i", "memory": 64, "portMappings": [{"containerPort": 80, "hostPort": 8080}]}])),
        None,
    ));
    assert!(bridge.container("a")["ports"][0].get("hostPort").is_none());
    assert!(bridge.warned("spec.Task.containerDefinitions[0].portMappings[0].hostPort"));
    let mut task = containers(json!([{"name": "a", "image": "i", "memory": 64, "portMappings": [{"containerPort": 80, "hostPort": 80}]}]));
    task["networkMode"] = json!("host");
    let host = run(deployment(task, None));
    assert_eq!(host.pod()["hostNetwork"], true);
    assert_eq!(host.pod()["dnsPolicy"], "ClusterFirstWithHostNet");
}

#[test]
fn secrets_come_from_a_named_kubernetes_secret_with_a_warning() {
    let out = run(deployment(
        containers(
            json!([{"name": "a", "image": "i", "memory": 64, "secrets": [{"name": "DB_PASSWORD", "valueFrom": "arn:aws:ssm:us-east-1:1:parameter/db"}]}]),
        ),
        None,
    ));
    let var = out.container("a")["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "DB_PASSWORD")
        .unwrap()
        .clone();
    assert_eq!(
        var["valueFrom"]["secretKeyRef"],
        json!({"name": "app-secrets", "key": "DB_PASSWORD"})
    );
    assert!(out
        .warnings
        .iter()
        .any(|(p, m)| p == "spec.Task.containerDefinitions[0].secrets" && m.contains("app-secrets")));
}

#[test]
fn volumes_mounts_volumes_from_shm_and_tmpfs() {
    let task = json!({"family": "f", "volumes": [{"name": "host_logs", "host": {"sourcePath": "/var/log"}}, {"name": "scratch"}, {"name": "efs", "efsVolumeConfiguration": {"fileSystemId": "fs-1"}}],
    "containerDefinitions": [
        {"name": "a", "image": "i", "memory": 64, "mountPoints": [{"sourceVolume": "host_logs", "containerPath": "/logs", "readOnly": true}, {"sourceVolume": "scratch", "containerPath": "/tmp/s"}, {"sourceVolume": "efs", "containerPath": "/data"}],
         "linuxParameters": {"sharedMemorySize": 128, "tmpfs": [{"containerPath": "/run", "size": 32}]}},
        {"name": "b", "image": "i", "memory": 64, "volumesFrom": [{"sourceContainer": "a", "readOnly": true}]}
    ]});
    let out = run(deployment(task, None));
    let vols = out.pod()["volumes"].as_array().unwrap();
    let by_name = |n: &str| {
        vols.iter()
            .find(|v| v["name"] == n)
            .unwrap_or_else(|| panic!("volume {n}: {vols:?}"))
    };
    assert_eq!(by_name("host-logs")["hostPath"]["path"], "/var/log");
    assert!(by_name("scratch")["emptyDir"].is_object());
    assert_eq!(by_name("efs")["persistentVolumeClaim"]["claimName"], "efs");
    assert_eq!(by_name("a-shm")["emptyDir"], json!({"medium": "Memory", "sizeLimit": "128Mi"}));
    let a_mounts = out.container("a")["volumeMounts"].as_array().unwrap();
    assert!(a_mounts.iter().any(|m| m["mountPath"] == "/dev/shm"));
    assert!(a_mounts.iter().any(|m| m["mountPath"] == "/run"));
    let b_mounts = out.container("b")["volumeMounts"].as_array().unwrap();
    assert_eq!(b_mounts.len(), 3, "volumesFrom mounts the source's volumes: {b_mounts:?}");
    assert!(b_mounts.iter().all(|m| m["readOnly"] == true), "readOnly kept");
    assert!(out.warned("spec.Task.volumes[2]"), "EFS: the claim must be created");
}

#[test]
fn security_and_process_settings() {
    let task = json!({"family": "f", "pidMode": "task", "ipcMode": "host", "containerDefinitions": [
        {"name": "a", "image": "i", "memory": 64, "user": "1000:2000", "privileged": true, "readonlyRootFilesystem": true,
         "linuxParameters": {"capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]}}, "systemControls": [{"namespace": "net.core.somaxconn", "value": "1024"}],
         "workingDirectory": "/srv", "interactive": true, "pseudoTerminal": true, "hostname": "web", "dnsServers": ["10.0.0.2"], "dnsSearchDomains": ["corp"],
         "stopTimeout": 90, "resourceRequirements": [{"type": "GPU", "value": "2"}]},
        {"name": "b", "image": "i", "memory": 64, "user": "nginx"}]});
    let out = run(deployment(task, None));
    let a = out.container("a");
    assert_eq!(
        a["securityContext"],
        json!({"runAsUser": 1000, "runAsGroup": 2000, "runAsNonRoot": true, "privileged": true, "readOnlyRootFilesystem": true, "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]}})
    );
    assert_eq!(a["workingDir"], "/srv");
    assert_eq!((a["stdin"].clone(), a["tty"].clone()), (json!(true), json!(true)));
    assert_eq!(a["resources"]["limits"]["nvidia.com/gpu"], "2");
    let pod = out.pod();
    assert_eq!(pod["shareProcessNamespace"], true);
    assert_eq!(pod["hostIPC"], true);
    assert_eq!(
        pod["securityContext"]["sysctls"],
        json!([{"name": "net.core.somaxconn", "value": "1024"}])
    );
    assert_eq!(pod["hostname"], "web");
    assert_eq!(pod["dnsPolicy"], "None");
    assert_eq!(pod["dnsConfig"], json!({"nameservers": ["10.0.0.2"], "searches": ["corp"]}));
    assert_eq!(pod["terminationGracePeriodSeconds"], 90);
    assert!(
        out.warned("spec.Task.containerDefinitions[1].user"),
        "user names cannot become runAsUser"
    );
}

#[test]
fn platform_ephemeral_storage_and_registry_credentials() {
    let task = json!({"family": "f", "runtimePlatform": {"operatingSystemFamily": "LINUX", "cpuArchitecture": "ARM64"}, "ephemeralStorage": {"sizeInGiB": 30},
        "containerDefinitions": [{"name": "a", "image": "private/i", "memory": 64, "repositoryCredentials": {"credentialsParameter": "arn:aws:secretsmanager:us-east-1:1:secret:x"}}, {"name": "b", "image": "i", "memory": 64}]});
    let out = run(deployment(task, None));
    assert_eq!(
        out.pod()["nodeSelector"],
        json!({"kubernetes.io/os": "linux", "kubernetes.io/arch": "arm64"})
    );
    assert_eq!(out.container("a")["resources"]["limits"]["ephemeral-storage"], "15Gi");
    assert_eq!(out.pod()["imagePullSecrets"], json!([{"name": "app-registry"}]));
    assert!(out.warned("spec.Task.containerDefinitions[0].repositoryCredentials"));
}

#[test]
fn deployment_percentages_circuit_breaker_and_the_both_zero_case() {
    let task = containers(json!([{"name": "a", "image": "i", "memory": 64}]));
    let out = run(deployment(
        task.clone(),
        Some(
            json!({"deploymentConfiguration": {"maximumPercent": 150, "minimumHealthyPercent": 50, "deploymentCircuitBreaker": {"enable": true, "rollback": true}}}),
        ),
    ));
    let d = out.kind("Deployment").unwrap();
    assert_eq!(
        d["spec"]["strategy"]["rollingUpdate"],
        json!({"maxSurge": "50%", "maxUnavailable": "50%"})
    );
    assert_eq!(d["spec"]["progressDeadlineSeconds"], 300);
    assert!(out.warned("spec.Service.deploymentConfiguration.deploymentCircuitBreaker.rollback"));
    let zero = run(deployment(
        task,
        Some(json!({"deploymentConfiguration": {"maximumPercent": 100, "minimumHealthyPercent": 100}})),
    ));
    assert_eq!(
        zero.kind("Deployment").unwrap()["spec"]["strategy"]["rollingUpdate"],
        json!({"maxSurge": 1, "maxUnavailable": 0})
    );
    assert!(zero.warned("spec.Service.deploymentConfiguration"));
}

#[test]
fn placement_strategy_and_constraints() {
    let task = containers(json!([{"name": "a", "image": "i", "memory": 64}]));
    let service = json!({"placementStrategy": [{"type": "spread", "field": "attribute:ecs.availability-zone"}, {"type": "spread", "field": "instanceId"}, {"type": "binpack", "field": "memory"}],
        "placementConstraints": [{"type": "distinctInstance"}, {"type": "memberOf", "expression": "attribute:ecs.instance-type in [m5.large, m5.xlarge]"}, {"type": "memberOf", "expression": "attribute:stack == prod"}]});
    let out = run(deployment(task, Some(service)));
    let pod = out.pod();
    let keys: Vec<&str> = pod["topologySpreadConstraints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["topologyKey"].as_str().unwrap())
        .collect();
    assert_eq!(keys, vec!["topology.kubernetes.io/zone", "kubernetes.io/hostname"]);
    assert_eq!(
        pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]["topologyKey"],
        "kubernetes.io/hostname"
    );
    let expr =
        &pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]["matchExpressions"][0];
    assert_eq!(
        expr,
        &json!({"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["m5.large", "m5.xlarge"]})
    );
    assert!(out.warned("spec.Service.placementStrategy[2]"), "binpack has no equivalent");
    assert!(
        out.warned("spec.Service.placementConstraints[2]"),
        "custom attributes have no equivalent"
    );
}

#[test]
fn fields_without_equivalent_are_warned_never_dropped_silently() {
    let task = json!({"family": "f", "executionRoleArn": "arn:aws:iam::1:role/x", "containerDefinitions": [{"name": "a", "image": "i", "memory": 64,
        "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "g"}}, "ulimits": [{"name": "nofile", "softLimit": 1, "hardLimit": 2}],
        "firelensConfiguration": {"type": "fluentbit"}}]});
    let service = json!({"capacityProviderStrategy": [{"capacityProvider": "spot", "weight": 1}], "platformVersion": "LATEST", "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["s"]}}, "deploymentController": {"type": "CODE_DEPLOY"}});
    let out = run(deployment(task, Some(service)));
    for path in [
        "spec.Task.executionRoleArn",
        "spec.Task.containerDefinitions[0].logConfiguration",
        "spec.Task.containerDefinitions[0].ulimits",
        "spec.Task.containerDefinitions[0].firelensConfiguration",
        "spec.Service.capacityProviderStrategy",
        "spec.Service.platformVersion",
        "spec.Service.networkConfiguration",
        "spec.Service.deploymentController.type",
    ] {
        assert!(out.warned(path), "no warning for {path}: {:?}", out.warnings);
    }
}

#[test]
fn sanitized_container_names_and_pascal_case_input() {
    let task = json!({"Properties": {"ContainerDefinitions": [{"Name": "Log_Router", "Image": "fluent-bit", "Memory": 64}]}});
    let out = run(deployment(task, None));
    assert_eq!(out.container("log-router")["image"], "fluent-bit");
}

#[test]
fn every_object_round_trips_through_kubernetes_types() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/samples/ecsdeployment.json")).unwrap();
    let out = run(serde_json::from_str(&text).unwrap());
    for o in &out.objects {
        let back: Value = match o["kind"].as_str().unwrap() {
            "Deployment" => {
                serde_json::to_value(serde_json::from_value::<k8s_openapi::api::apps::v1::Deployment>(o.clone()).unwrap()).unwrap()
            }
            "Service" => serde_json::to_value(serde_json::from_value::<k8s_openapi::api::core::v1::Service>(o.clone()).unwrap()).unwrap(),
            other => panic!("unexpected {other}"),
        };
        assert_eq!(&back, o);
    }
}

fn daemon(deployment_configuration: Value, network_mode: Option<&str>) -> Value {
    let mut task = containers(json!([{"name": "agent", "image": "a", "memory": 64}]));
    if let Some(mode) = network_mode {
        task["networkMode"] = json!(mode);
    }
    let out = run(deployment(
        task,
        Some(json!({"schedulingStrategy": "DAEMON", "deploymentConfiguration": deployment_configuration})),
    ));
    out.kind("DaemonSet").expect("daemonset")["spec"]["updateStrategy"]["rollingUpdate"].clone()
}

#[test]
fn daemon_rollouts_follow_ecs_and_set_exactly_one_of_surge_and_unavailable() {
    // ECS stops a node's old task first, keeping minimumHealthyPercent running.
    assert_eq!(
        daemon(json!({"maximumPercent": 100, "minimumHealthyPercent": 0}), None),
        json!({"maxSurge": 0, "maxUnavailable": "100%"})
    );
    assert_eq!(
        daemon(json!({"maximumPercent": 100, "minimumHealthyPercent": 50}), None),
        json!({"maxSurge": 0, "maxUnavailable": "50%"})
    );
    assert_eq!(
        daemon(json!({"maximumPercent": 0, "minimumHealthyPercent": 0}), None),
        json!({"maxSurge": 0, "maxUnavailable": "100%"})
    );
    // Only with no room to stop first does the new one start first.
    assert_eq!(
        daemon(json!({"maximumPercent": 200, "minimumHealthyPercent": 100}), None),
        json!({"maxSurge": "100%", "maxUnavailable": 0})
    );
    assert_eq!(
        daemon(json!({"maximumPercent": 150, "minimumHealthyPercent": 100}), None),
        json!({"maxSurge": "50%", "maxUnavailable": 0})
    );
    // Both above zero: stop first (ECS's way for daemons); neither: one node at a time.
    assert_eq!(
        daemon(json!({"maximumPercent": 200, "minimumHealthyPercent": 50}), None),
        json!({"maxSurge": 0, "maxUnavailable": "50%"})
    );
    assert_eq!(
        daemon(json!({"maximumPercent": 100, "minimumHealthyPercent": 100}), None),
        json!({"maxSurge": 1, "maxUnavailable": 0})
    );
    // Host networking: two pods cannot share a node's ports, so never surge there.
    assert_eq!(
        daemon(json!({"maximumPercent": 100, "minimumHealthyPercent": 100}), Some("host")),
        json!({"maxSurge": 0, "maxUnavailable": 1})
    );
}

#[test]
fn every_secret_name_ecs_accepts_becomes_a_valid_unique_key() {
    let task = containers(json!([{"name": "web", "image": "i", "memory": 64, "secrets": [
        {"name": "DB_PASSWORD", "valueFrom": "arn:aws:ssm:us-east-1:1:parameter/db"},
        {"name": "$$$SECRET_NAME$$$", "valueFrom": "arn:aws:ssm:us-east-1:1:parameter/a"},
        {"name": "###SECRET_NAME###", "valueFrom": "arn:aws:ssm:us-east-1:1:parameter/b"}]}]));
    let out = run(deployment(task, None));
    let env = out.container("web")["env"].as_array().unwrap().clone();
    let key = |var: &str| {
        env.iter().find(|e| e["name"] == var).unwrap()["valueFrom"]["secretKeyRef"]["key"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(key("DB_PASSWORD"), "DB_PASSWORD");
    let (a, b) = (key("$$$SECRET_NAME$$$"), key("###SECRET_NAME###"));
    assert_ne!(a, b, "two variables share a key");
    for k in [&a, &b] {
        assert!(
            k.chars().all(|c| c.is_ascii_alphanumeric() || "-._".contains(c)) && k.len() <= 253,
            "{k}"
        );
    }
    assert!(a.starts_with("___SECRET_NAME___-"), "{a}");
}

#[test]
fn containers_hard_limits_beyond_the_task_scale_the_requests_down() {
    let task = json!({"family": "f", "memory": "1024", "containerDefinitions": [
        {"name": "app", "image": "app", "memory": 1024},
        {"name": "envoy", "image": "envoy", "memoryReservation": 256, "essential": false, "dependsOn": []}]});
    let out = run(deployment(task, None));
    let request = |c: &str| out.container(c)["resources"]["requests"]["memory"].as_str().unwrap().to_string();
    // 1280 MiB of requests in a 1024 MiB pod: scaled by 1024/1280, limits kept.
    assert_eq!((request("app"), request("envoy")), ("819Mi".to_string(), "204Mi".to_string()));
    assert_eq!(out.container("app")["resources"]["limits"]["memory"], "1Gi");
    assert_eq!(out.pod()["resources"]["requests"]["memory"], "1Gi");
    assert!(out.warned("spec.Task.memory"), "{:?}", out.warnings);
}

#[test]
fn docker_security_options_and_numeric_users_carry_their_meaning() {
    let task = containers(json!([
        {"name": "app", "image": "i", "memory": 64, "user": "1000:1000",
         "dockerSecurityOptions": ["no-new-privileges", "apparmor:my-profile", "label:type:svirt_t"],
         "linuxParameters": {"capabilities": {"drop": ["ALL"]}}},
        {"name": "tool", "image": "i", "memory": 64, "user": "0", "dockerSecurityOptions": ["seccomp:unconfined"]}]));
    let out = run(deployment(task, None));
    let app = &out.container("app")["securityContext"];
    assert_eq!(app["allowPrivilegeEscalation"], false);
    assert_eq!(app["runAsNonRoot"], true);
    assert_eq!(app["runAsUser"], 1000);
    assert_eq!(
        app["appArmorProfile"],
        json!({"type": "Localhost", "localhostProfile": "my-profile"})
    );
    assert!(
        out.warned("spec.Task.containerDefinitions[0].dockerSecurityOptions[2]"),
        "{:?}",
        out.warnings
    );
    let tool = &out.container("tool")["securityContext"];
    assert!(tool["runAsNonRoot"].is_null(), "uid 0 is root: {tool}");
    assert_eq!(tool["seccompProfile"]["type"], "Unconfined");
    // Docker's default seccomp profile, for every container that does not opt out.
    assert_eq!(out.pod()["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
}

#[test]
fn tcp_and_udp_on_one_port_are_two_ports_and_ignored_health_checks_make_no_probe() {
    let task = containers(json!([{"name": "dns", "image": "coredns", "memory": 64,
        "portMappings": [{"containerPort": 53, "protocol": "tcp"}, {"containerPort": 53, "protocol": "udp"}],
        "healthCheck": {"command": ["/healthcheck"]}}]));
    let out = run(deployment(task, None));
    let ports = out.container("dns")["ports"].as_array().unwrap().clone();
    assert_eq!(ports.len(), 2, "{ports:?}");
    let svc = out.kind("Service").unwrap();
    let names: Vec<&str> = svc["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2);
    assert_ne!(names[0], names[1]);
    assert!(out.container("dns")["livenessProbe"].is_null());
}
