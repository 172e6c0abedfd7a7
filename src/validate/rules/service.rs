//! Service rules, and the service's references into the task.

use super::{Svc, Task};
use crate::diag::{Code, Report};
use crate::{at, written};

pub fn check(s: Svc, task: Option<Task>, r: &mut Report) {
    let m = &s.model;
    // desiredCount: no documented range, but a negative count is meaningless.
    if let Some(n) = m.desired_count.filter(|n| *n < 0) {
        r.error(Code::Invalid, at!(s, "desiredCount"), "desiredCount cannot be negative")
            .expected("0 or more")
            .found(n.to_string());
    }
    if let Some(dc) = &m.deployment_configuration {
        if let Some(p) = dc.minimum_healthy_percent.filter(|p| !(0..=100).contains(p)) {
            r.error(
                Code::Invalid,
                at!(s, "deploymentConfiguration", "minimumHealthyPercent"),
                "minimumHealthyPercent is a percentage of desiredCount",
            )
            .expected("0 to 100")
            .found(p.to_string());
        }
        if let Some(p) = dc.maximum_percent.filter(|p| *p < 0) {
            r.error(
                Code::Invalid,
                at!(s, "deploymentConfiguration", "maximumPercent"),
                "maximumPercent cannot be negative",
            )
            .expected("0 or more (default 200)")
            .found(p.to_string());
        }
        if let (Some(min), Some(max)) = (dc.minimum_healthy_percent, dc.maximum_percent) {
            if max < min {
                r.error(
                    Code::Invalid,
                    at!(s, "deploymentConfiguration", "maximumPercent"),
                    "maximumPercent is below minimumHealthyPercent",
                )
                .expected(format!("at least {min}"))
                .found(max.to_string());
            }
        }
        // "The deployment circuit breaker can only be used for services using the rolling update (ECS) deployment type."
        let controller = m.deployment_controller.as_ref().and_then(|d| d.kind.as_deref()).unwrap_or("ECS");
        if dc.deployment_circuit_breaker.is_some() && controller != "ECS" {
            r.error(
                Code::Invalid,
                at!(s, "deploymentConfiguration", "deploymentCircuitBreaker"),
                "the circuit breaker needs the ECS deployment controller",
            )
            .expected("deploymentController ECS")
            .found(controller.to_string());
        }
    }
    if m.is_daemon() {
        // CreateService answers "The daemon scheduling strategy does not support a
        // desired count for services". describe-services reports one, read-only.
        if m.desired_count.is_some() && s.located.form != crate::ecs::input::Form::Describe {
            r.error(
                Code::Invalid,
                at!(s, "desiredCount"),
                "a DAEMON service runs one task per instance and takes no desiredCount",
            )
            .expected("no desiredCount (or schedulingStrategy REPLICA)")
            .found(m.desired_count.unwrap_or_default().to_string());
        }
        // "Tasks using the Fargate launch type or the CODE_DEPLOY or EXTERNAL deployment controller types don't support the DAEMON scheduling strategy."
        if m.launch_type.as_deref() == Some("FARGATE")
            || task.is_some_and(|t| t.model.is_fargate() && t.model.requires_compatibilities.len() == 1)
        {
            r.error(Code::Invalid, at!(s, "schedulingStrategy"), "DAEMON services cannot run on Fargate")
                .expected("REPLICA, or an EC2 task")
                .found("DAEMON");
        }
        if let Some(kind) = m
            .deployment_controller
            .as_ref()
            .and_then(|d| d.kind.as_deref())
            .filter(|k| *k != "ECS")
        {
            r.error(
                Code::Invalid,
                at!(s, "schedulingStrategy"),
                format!("DAEMON services cannot use the {kind} deployment controller"),
            )
            .expected("REPLICA")
            .found("DAEMON");
        }
    }
    // "If a capacityProviderStrategy is specified, the launchType parameter must be omitted."
    if m.launch_type.is_some() && !m.capacity_provider_strategy.is_empty() {
        r.error(
            Code::Invalid,
            at!(s, "launchType"),
            "launchType and capacityProviderStrategy exclude each other",
        )
        .expected("only one of them");
    }
    // "A platform version is specified only for tasks using the Fargate launch type."
    if m.platform_version.is_some() && m.launch_type.as_deref().is_some_and(|l| l != "FARGATE") {
        r.error(
            Code::Invalid,
            at!(s, "platformVersion"),
            "platformVersion is only for the Fargate launch type",
        )
        .expected("launchType FARGATE or no platformVersion");
    }
    // "You can specify a maximum of 5 strategy rules for each service." / "maximum of 10 constraints"
    if m.placement_strategy.len() > 5 {
        r.error(Code::Invalid, at!(s, "placementStrategy"), "too many placement strategies")
            .expected("at most 5")
            .found(m.placement_strategy.len().to_string());
    }
    if m.placement_constraints.len() > 10 {
        r.error(Code::Invalid, at!(s, "placementConstraints"), "too many placement constraints")
            .expected("at most 10")
            .found(m.placement_constraints.len().to_string());
    }
    // "field: ... For the binpack placement strategy, valid values are cpu and memory." (PlacementStrategy.field)
    for (i, p) in m.placement_strategy.iter().enumerate() {
        if p.kind.as_deref() == Some("binpack") && p.field.is_none() && !written!(s, "placementStrategy", i, "field") {
            r.error(
                Code::Required,
                at!(s, "placementStrategy", i, "field"),
                "a binpack placement strategy packs by cpu or memory",
            )
            .expected("field: cpu or memory");
        }
    }
    // "Up to 255 letters (uppercase and lowercase), numbers, underscores, and hyphens are allowed." (CreateServiceRequest.serviceName)
    if let Some(name) = &m.service_name {
        super::task::check_ecs_name(r, at!(s, "serviceName"), name, "service name");
    }
    for (i, c) in m.placement_constraints.iter().enumerate() {
        // "You can't specify an expression if the constraint type is distinctInstance."
        if c.kind.as_deref() == Some("distinctInstance") && c.expression.as_deref().is_some_and(|e| !e.is_empty()) {
            r.error(
                Code::Invalid,
                at!(s, "placementConstraints", i, "expression"),
                "distinctInstance takes no expression",
            )
            .expected("no expression");
        }
    }
    // "Each service may be associated with one service registry."
    if m.service_registries.len() > 1 {
        r.error(
            Code::Invalid,
            at!(s, "serviceRegistries"),
            "a service has at most one service registry",
        )
        .expected("at most 1")
        .found(m.service_registries.len().to_string());
    }
    // "If you specify the role parameter, you must also specify a load balancer object with the loadBalancers parameter."
    if m.role.as_deref().is_some_and(|r| !r.is_empty()) && m.load_balancers.is_empty() {
        r.error(Code::Invalid, at!(s, "role"), "role is only used with loadBalancers")
            .expected("loadBalancers, or no role");
    }
    // "healthCheckGracePeriodSeconds ... up to 2,147,483,647 seconds"
    if let Some(g) = m.health_check_grace_period_seconds.filter(|g| *g < 0) {
        r.error(
            Code::Invalid,
            at!(s, "healthCheckGracePeriodSeconds"),
            "grace period cannot be negative",
        )
        .expected("0 to 2147483647")
        .found(g.to_string());
    }
    check_load_balancers(s, task, r);
}

/// "This port must correspond to a containerPort in the task definition the tasks in the service are using."
fn check_load_balancers(s: Svc, task: Option<Task>, r: &mut Report) {
    for (i, lb) in s.model.load_balancers.iter().enumerate() {
        // ALB/NLB: "The load balancer name parameter must be omitted." Classic: "The target group ARN parameter must be omitted."
        if lb.target_group_arn.is_some() && lb.load_balancer_name.is_some() {
            r.error(
                Code::Invalid,
                at!(s, "loadBalancers", i, "loadBalancerName"),
                "give targetGroupArn (ALB/NLB) or loadBalancerName (Classic), not both",
            )
            .expected("only one of them");
        }
        let Some(task) = task.filter(|t| super::container_names_known(t)) else {
            continue;
        };
        let Some(name) = lb.container_name.as_deref() else {
            if written!(s, "loadBalancers", i, "containerName") {
                continue;
            }
            r.error(
                Code::Required,
                at!(s, "loadBalancers", i, "containerName"),
                "a load balancer names the container it sends traffic to",
            )
            .expected("containerName");
            continue;
        };
        let containers = &task.model.container_definitions;
        let Some(c) = containers.iter().find(|c| c.name.as_deref() == Some(name)) else {
            let names: Vec<&str> = containers.iter().filter_map(|c| c.name.as_deref()).collect();
            r.error(
                Code::NotFound,
                at!(s, "loadBalancers", i, "containerName"),
                format!("no container \"{name}\" in the task"),
            )
            .expected(format!("one of: {}", names.join(", ")))
            .found(format!("\"{name}\""));
            continue;
        };
        match lb.container_port {
            None if written!(s, "loadBalancers", i, "containerPort") => {}
            None => {
                r.error(
                    Code::Required,
                    at!(s, "loadBalancers", i, "containerPort"),
                    "a load balancer names the container port it sends traffic to",
                )
                .expected("containerPort");
            }
            Some(port) if !c.port_mappings.iter().any(|p| p.container_port == Some(port)) => {
                let ports: Vec<String> = c
                    .port_mappings
                    .iter()
                    .filter_map(|p| p.container_port)
                    .map(|p| p.to_string())
                    .collect();
                let expected = if ports.is_empty() {
                    format!("a port mapping on \"{name}\" (it has none)")
                } else {
                    format!("one of \"{name}\"'s container ports: {}", ports.join(", "))
                };
                r.error(
                    Code::NotFound,
                    at!(s, "loadBalancers", i, "containerPort"),
                    format!("container \"{name}\" does not map port {port}"),
                )
                .expected(expected)
                .found(port.to_string());
            }
            Some(_) => {}
        }
    }
}
