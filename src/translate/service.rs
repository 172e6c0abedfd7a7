//! The Kubernetes Service: LoadBalancer when the ECS service has
//! loadBalancers (one port per entry, port = targetPort = containerPort);
//! otherwise ClusterIP for every mapped container port (what service
//! discovery and Service Connect give inside ECS), with Service Connect
//! client aliases as extra ports where they fit; no ports, no Service.

use super::{int32, k8s_container_name, k8s_name, selector, Ctx};
use crate::at;
use crate::diag::Code;
use crate::ecs::model::{Service as EcsService, TaskDefinition};
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

fn port_name(container: &str, port: i64, protocol: &str) -> String {
    let base = format!("{}-{port}", k8s_container_name(container));
    let name = if protocol == "UDP" { format!("{base}-udp") } else { base };
    k8s_name(&name, "port")
}

fn add(ports: &mut Vec<ServicePort>, name: String, port: i64, target: i64, protocol: String) -> bool {
    if ports
        .iter()
        .any(|p| p.port == int32(port) && p.protocol.as_deref() == Some(&protocol))
        || ports.iter().any(|p| p.name.as_deref() == Some(&name))
    {
        return false;
    }
    ports.push(ServicePort {
        name: Some(name),
        port: int32(port),
        target_port: Some(IntOrString::Int(int32(target))),
        protocol: Some(protocol),
        ..Default::default()
    });
    true
}

/// The type of the Service [`build`] makes, if any: LoadBalancer for
/// `loadBalancers` naming a container port, ClusterIP for mapped ports.
///
/// With TargetGroupBindings (`bound`), entries with a `targetGroupArn` keep
/// their target groups instead: the Service is then ClusterIP for `ip`
/// targets (awsvpc tasks) or NodePort for `instance` targets, and is a
/// LoadBalancer only for classic `loadBalancerName` entries.
pub fn service_type(task: &TaskDefinition, service: Option<&EcsService>, bound: bool) -> Option<&'static str> {
    let load_balancers = service.map(|s| s.load_balancers.as_slice()).unwrap_or_default();
    if !load_balancers.is_empty() {
        let usable = |lb: &&crate::ecs::model::LoadBalancer| lb.container_name.is_some() && lb.container_port.is_some();
        let classic = load_balancers
            .iter()
            .filter(usable)
            .any(|lb| !bound || lb.target_group_arn.is_none());
        if classic {
            return Some("LoadBalancer");
        }
        let any = load_balancers.iter().any(|lb| usable(&lb));
        let ip = task.network_mode() == "awsvpc";
        return any.then_some(if ip { "ClusterIP" } else { "NodePort" });
    }
    let any = task
        .container_definitions
        .iter()
        .flat_map(|c| &c.port_mappings)
        .any(|p| p.container_port.is_some());
    any.then_some("ClusterIP")
}

pub fn build(ctx: &mut Ctx) -> Option<Service> {
    let containers = &ctx.task.model.container_definitions;
    let protocol_of = |container: &str, port: i64| {
        containers
            .iter()
            .find(|c| c.name.as_deref() == Some(container))
            .and_then(|c| c.port_mappings.iter().find(|p| p.container_port == Some(port)))
            .and_then(|p| p.protocol.clone())
            .unwrap_or_else(|| "tcp".into())
            .to_ascii_uppercase()
    };
    let mut ports = Vec::new();
    let load_balancers = ctx.service.map(|s| s.model.load_balancers.as_slice()).unwrap_or_default();
    let bound = ctx.options.integrations.target_group_binding.is_some();
    let type_ = service_type(&ctx.task.model, ctx.service.map(|s| &s.model), bound)?;
    if !load_balancers.is_empty() {
        for lb in load_balancers {
            let (Some(c), Some(p)) = (lb.container_name.as_deref(), lb.container_port) else {
                continue;
            };
            let proto = protocol_of(c, p);
            add(&mut ports, port_name(c, p, &proto), p, p, proto);
        }
    } else {
        for c in containers {
            let cname = c.name.as_deref().unwrap_or_default();
            for p in &c.port_mappings {
                let Some(port) = p.container_port else { continue };
                let proto = p.protocol.as_deref().unwrap_or("tcp").to_ascii_uppercase();
                add(&mut ports, port_name(cname, port, &proto), port, port, proto);
            }
        }
        service_connect_aliases(ctx, &mut ports);
    }
    if ports.is_empty() {
        return None;
    }
    let name = ctx.meta.name.clone();
    // The cluster policy's loadBalancerSourceRanges (translate::Options).
    let ranges = &ctx.options.load_balancer_source_ranges;
    let source_ranges = (type_ == "LoadBalancer" && !ranges.is_empty()).then(|| ranges.clone());
    Some(Service {
        metadata: ctx.object_meta(&name),
        spec: Some(ServiceSpec {
            type_: Some(type_.into()),
            selector: Some(selector(&name)),
            ports: Some(ports),
            load_balancer_source_ranges: source_ranges,
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// serviceConnectConfiguration.services[].clientAliases[].port, targeting the
/// container port named by portName.
fn service_connect_aliases(ctx: &mut Ctx, ports: &mut Vec<ServicePort>) {
    let Some(s) = ctx.service else { return };
    let Some(services) = s
        .model
        .service_connect_configuration
        .as_ref()
        .and_then(|c| c.get("services"))
        .and_then(Value::as_array)
    else {
        return;
    };
    let containers = &ctx.task.model.container_definitions;
    for (i, svc) in services.iter().enumerate() {
        let Some(port_name) = svc.get("portName").and_then(Value::as_str) else {
            continue;
        };
        let target = containers
            .iter()
            .flat_map(|c| &c.port_mappings)
            .find(|p| p.name.as_deref() == Some(port_name));
        let Some(target) = target.and_then(|p| {
            p.container_port
                .map(|cp| (cp, p.protocol.as_deref().unwrap_or("tcp").to_ascii_uppercase()))
        }) else {
            ctx.warn(
                Code::NotCarriedOver,
                at!(s, "serviceConnectConfiguration", "services", i, "portName"),
                format!("no port mapping is named \"{port_name}\"; Service Connect is not carried over"),
            );
            continue;
        };
        for (j, alias) in svc.get("clientAliases").and_then(Value::as_array).into_iter().flatten().enumerate() {
            let Some(port) = alias.get("port").and_then(Value::as_i64) else {
                continue;
            };
            let name = k8s_name(&format!("{port_name}-{port}"), "alias");
            if port != target.0 && !add(ports, name, port, target.0, target.1.clone()) {
                ctx.warn(
                    Code::NotCarriedOver,
                    at!(s, "serviceConnectConfiguration", "services", i, "clientAliases", j, "port"),
                    format!("client alias port {port} collides with another Service port; not added"),
                );
            }
            if let Some(dns) = alias.get("dnsName").and_then(Value::as_str) {
                ctx.warn(
                    Code::NotCarriedOver,
                    at!(s, "serviceConnectConfiguration", "services", i, "clientAliases", j, "dnsName"),
                    format!(
                        "Service Connect name \"{dns}\" is reached as the Kubernetes Service \"{}\" (same namespace) instead",
                        ctx.meta.name
                    ),
                );
            }
        }
    }
}
