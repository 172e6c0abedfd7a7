//! Nothing is dropped silently: every ECS field present that the translation
//! does not carry over gets a warning naming it and what happens instead.
//! Fields the translation uses are listed as handled; a field in neither list
//! (a new AWS field) still gets the generic warning.

use super::Ctx;
use crate::at;
use crate::diag::Code;
use serde_json::Value;

const TASK_HANDLED: &[&str] = &[
    "family",
    "taskRoleArn",
    "networkMode",
    "containerDefinitions",
    "volumes",
    "placementConstraints",
    "requiresCompatibilities",
    "cpu",
    "memory",
    "pidMode",
    "ipcMode",
    "ephemeralStorage",
    "runtimePlatform",
];
const TASK_WARNED: &[(&str, &str)] = &[
    ("executionRoleArn", "the execution role pulls images and reads secrets in ECS; in Kubernetes the kubelet pulls images, and secrets come from a Kubernetes Secret"),
    ("proxyConfiguration", "App Mesh proxy configuration has no Kubernetes equivalent; use a service mesh's own injection"),
    ("inferenceAccelerators", "Elastic Inference accelerators have no Kubernetes equivalent"),
    ("enableFaultInjection", "ECS fault injection has no Kubernetes equivalent"),
    ("tags", "AWS resource tags are not carried over (use labels on the ECSDeployment: they are copied to every child)"),
];
const CONTAINER_HANDLED: &[&str] = &[
    "name",
    "image",
    "cpu",
    "memory",
    "memoryReservation",
    "links",
    "portMappings",
    "essential",
    "entryPoint",
    "command",
    "environment",
    "mountPoints",
    "volumesFrom",
    "secrets",
    "dependsOn",
    "stopTimeout",
    "hostname",
    "user",
    "workingDirectory",
    "privileged",
    "readonlyRootFilesystem",
    "dnsServers",
    "dnsSearchDomains",
    "extraHosts",
    "interactive",
    "pseudoTerminal",
    "healthCheck",
    "systemControls",
    "repositoryCredentials",
    "resourceRequirements",
    "linuxParameters",
    "dockerSecurityOptions",
    // Warned per file, below.
    "environmentFiles",
];
const CONTAINER_WARNED: &[(&str, &str)] = &[
    (
        "logConfiguration",
        "log drivers are not carried over: containers log to stdout/stderr, collected by the cluster's logging agent",
    ),
    (
        "firelensConfiguration",
        "FireLens has no Kubernetes equivalent: run Fluent Bit as the cluster's log collector",
    ),
    (
        "ulimits",
        "ulimits cannot be set per container in Kubernetes; the node's container runtime defaults apply",
    ),
    (
        "startTimeout",
        "Kubernetes has no per-dependency start timeout; containers wait until their dependencies are ready",
    ),
    ("disableNetworking", "a container of a pod cannot be cut off the pod's network"),
    (
        "dockerLabels",
        "Docker labels are not carried over (labels of the ECSDeployment are copied to the pods)",
    ),
    (
        "credentialSpecs",
        "Windows gMSA credential specs need the pod's securityContext.windowsOptions; not carried over",
    ),
    (
        "restartPolicy",
        "the container restart policy is the pod's: Kubernetes restarts exited containers",
    ),
    (
        "versionConsistency",
        "image digest pinning is not enforced; pin the image by digest in image instead",
    ),
];
const LINUX_HANDLED: &[&str] = &["capabilities", "sharedMemorySize", "tmpfs"];
const LINUX_WARNED: &[(&str, &str)] = &[
    ("devices", "host devices cannot be mapped into a container; use a device plugin"),
    (
        "initProcessEnabled",
        "no init process is injected; add one (e.g. tini) to the image",
    ),
    ("maxSwap", "swap is a node setting in Kubernetes"),
    ("swappiness", "swappiness is a node setting in Kubernetes"),
];
const SERVICE_HANDLED: &[&str] = &[
    "serviceName",
    "cluster",
    "taskDefinition",
    "loadBalancers",
    "desiredCount",
    "deploymentConfiguration",
    "placementConstraints",
    "placementStrategy",
    "healthCheckGracePeriodSeconds",
    "schedulingStrategy",
    "serviceRegistries",
    "serviceConnectConfiguration",
    "deploymentController",
];
const SERVICE_WARNED: &[(&str, &str)] = &[
    ("launchType", "the launch type does not apply: pods run on the cluster's nodes"),
    (
        "capacityProviderStrategy",
        "capacity providers do not apply: pods run on the cluster's nodes",
    ),
    ("platformVersion", "the Fargate platform version does not apply"),
    (
        "networkConfiguration",
        "subnets, security groups and public IPs are the cluster's network settings; not carried over",
    ),
    ("role", "the service's IAM role for load balancers does not apply"),
    ("tags", "AWS resource tags are not carried over"),
    ("enableECSManagedTags", "ECS managed tags do not apply"),
    ("propagateTags", "tag propagation does not apply"),
    (
        "enableExecuteCommand",
        "ECS Exec is `kubectl exec` in Kubernetes; nothing to enable",
    ),
    ("clientToken", "the idempotency token does not apply"),
    (
        "availabilityZoneRebalancing",
        "zone rebalancing is not carried over (the zone spread constraint keeps pods balanced on scheduling)",
    ),
    (
        "volumeConfigurations",
        "volumes configured at launch become PersistentVolumeClaims named after the task volume; these EBS settings are not carried over",
    ),
    ("vpcLatticeConfigurations", "VPC Lattice has no Kubernetes equivalent"),
    (
        "forceNewDeployment",
        "editing the ECSDeployment rolls out a new version; no flag is needed",
    ),
];
const DEPLOYMENT_CONFIG_HANDLED: &[&str] = &["maximumPercent", "minimumHealthyPercent", "deploymentCircuitBreaker"];

fn warn_object(ctx: &mut Ctx, obj: Option<&Value>, handled: &[&str], warned: &[(&str, &str)], path_of: &dyn Fn(&str) -> String) {
    let Some(obj) = obj.and_then(Value::as_object) else { return };
    for key in obj.keys() {
        if handled.contains(&key.as_str()) {
            continue;
        }
        let message = match warned.iter().find(|(k, _)| k == key) {
            Some((_, m)) => format!("`{key}` is not carried over: {m}"),
            None => format!("`{key}` has no Kubernetes equivalent in ecskube; it is ignored"),
        };
        ctx.warn(Code::NotCarriedOver, path_of(key), message);
    }
}

pub fn warn_all(ctx: &mut Ctx) {
    let task = ctx.task;
    warn_object(ctx, Some(&task.canonical), TASK_HANDLED, TASK_WARNED, &|k| at!(task, k));
    let containers = task
        .canonical
        .get("containerDefinitions")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    for (i, c) in containers.iter().enumerate() {
        warn_object(ctx, Some(c), CONTAINER_HANDLED, CONTAINER_WARNED, &|k| {
            at!(task, "containerDefinitions", i, k)
        });
        warn_object(ctx, c.get("linuxParameters"), LINUX_HANDLED, LINUX_WARNED, &|k| {
            at!(task, "containerDefinitions", i, "linuxParameters", k)
        });
        for (j, f) in c
            .get("environmentFiles")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let object = f.get("value").and_then(Value::as_str).unwrap_or("the file");
            let container = c.get("name").and_then(Value::as_str).unwrap_or_default();
            ctx.warn(
                Code::NotCarriedOver,
                at!(task, "containerDefinitions", i, "environmentFiles", j),
                format!("environment files in S3 are not read (External Secrets has no S3 provider): every variable {object} defines will be missing from container \"{container}\"; put them in environment, or in a ConfigMap"),
            );
        }
        for (j, r) in c
            .get("resourceRequirements")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            if r.get("type").and_then(Value::as_str) == Some("InferenceAccelerator") {
                ctx.warn(
                    Code::NotCarriedOver,
                    at!(task, "containerDefinitions", i, "resourceRequirements", j),
                    "Inference accelerators have no Kubernetes equivalent",
                );
            }
        }
    }
    let Some(s) = ctx.service else { return };
    warn_object(ctx, Some(&s.canonical), SERVICE_HANDLED, SERVICE_WARNED, &|k| at!(s, k));
    warn_object(
        ctx,
        s.canonical.get("deploymentConfiguration"),
        DEPLOYMENT_CONFIG_HANDLED,
        &[],
        &|k| at!(s, "deploymentConfiguration", k),
    );
    if let Some(kind) = s
        .model
        .deployment_controller
        .as_ref()
        .and_then(|d| d.kind.as_deref())
        .filter(|k| *k != "ECS")
    {
        ctx.warn(
            Code::NotCarriedOver,
            at!(s, "deploymentController", "type"),
            format!("the {kind} deployment controller is not carried over: Kubernetes rolls out with its own rolling update"),
        );
    }
}
