#!/usr/bin/env python3
"""The large AdmissionReview of the webhook benchmark (about 43 KB of JSON): one task
with 10 containers, each with 100 environment variables, a port, a health
check and a dependsOn on the first, and a service with a load balancer.
Deterministic, so every run measures the same bytes. With a file argument
(an ECSDeployment, e.g. the sample), that object in the same review instead."""
import json
import sys

containers = []
for c in range(10):
    container = {
        "Name": f"app{c}",
        "Image": f"public.ecr.aws/docker/library/nginx:1.27.{c}",
        "Cpu": 64,
        "Memory": 256,
        "Essential": True,
        "PortMappings": [{"ContainerPort": 8000 + c, "Protocol": "tcp"}],
        "Environment": [{"Name": f"VAR_{c}_{i:03d}", "Value": f"val{i:03d}"} for i in range(100)],
        "HealthCheck": {
            "Command": ["CMD-SHELL", f"curl -fsS http://localhost:{8000 + c}/health || exit 1"],
            "Interval": 30,
            "Timeout": 5,
            "Retries": 3,
            "StartPeriod": 10,
        },
    }
    if c > 0:
        container["DependsOn"] = [{"ContainerName": "app0", "Condition": "HEALTHY"}]
    containers.append(container)

obj = {
    "apiVersion": "ecskube.ecskube/v1alpha1",
    "kind": "ECSDeployment",
    "metadata": {"name": "large", "namespace": "default", "labels": {"demo": "true"}},
    "spec": {
        "Task": {"Properties": {"Family": "large", "Cpu": "1024", "Memory": "4096", "ContainerDefinitions": containers}},
        "Service": {
            "DesiredCount": 3,
            "HealthCheckGracePeriodSeconds": 30,
            "LoadBalancers": [{"ContainerName": "app0", "ContainerPort": 8000}],
            "DeploymentConfiguration": {"MaximumPercent": 200, "MinimumHealthyPercent": 100},
        },
    },
}



def review(obj):
    """The CREATE review the API server sends for `obj`."""
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "bench",
            "kind": {"group": "ecskube.ecskube", "version": "v1alpha1", "kind": "ECSDeployment"},
            "resource": {"group": "ecskube.ecskube", "version": "v1alpha1", "resource": "ecsdeployments"},
            "name": obj["metadata"]["name"],
            "namespace": "default",
            "operation": "CREATE",
            "userInfo": {"username": "bench"},
            "object": obj,
            "dryRun": False,
        },
    }


if len(sys.argv) > 1:
    with open(sys.argv[1]) as f:
        obj = json.load(f)
json.dump(review(obj), sys.stdout, separators=(",", ":"))
