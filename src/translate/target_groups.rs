//! `loadBalancers[].targetGroupArn` -> an AWS Load Balancer Controller
//! `TargetGroupBinding` per entry: the existing target group (and so the
//! ALB/NLB and its listeners) sends traffic to the generated Service's port.
//! This is how a team moves traffic from ECS to Kubernetes on the same load
//! balancer. `targetType: ip` for awsvpc tasks (pods are registered, as ECS
//! registers task ENIs), `instance` otherwise (nodes on the NodePort, as ECS
//! registers instances on the host port).

use super::{k8s_container_name, k8s_name, Ctx, Object};
use crate::at;
use crate::diag::Code;
use k8s_openapi::api::core::v1::Service;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::json;

pub const GROUP: &str = "elbv2.k8s.aws";
pub const VERSION: &str = "v1beta1";
pub const KIND: &str = "TargetGroupBinding";

pub fn api_resource() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(GROUP, VERSION, KIND))
}

/// `<object>-<container>-<port>`: one binding per load balancer entry.
pub fn binding_name(object: &str, container: &str, port: i64) -> String {
    let name = format!("{object}-{}-{port}", k8s_container_name(container));
    k8s_name(&name, object)
        .chars()
        .take(63)
        .collect::<String>()
        .trim_end_matches('-')
        .to_string()
}

/// One TargetGroupBinding per `targetGroupArn` entry whose port the Service has.
pub fn bind(ctx: &mut Ctx, service: &Service) {
    let Some(options) = ctx.options.integrations.target_group_binding.clone() else {
        return;
    };
    let Some(s) = ctx.service else { return };
    let Some(service_name) = service.metadata.name.clone() else {
        return;
    };
    let ports = service.spec.as_ref().and_then(|s| s.ports.clone()).unwrap_or_default();
    let target_type = if ctx.task.model.network_mode() == "awsvpc" {
        "ip"
    } else {
        "instance"
    };
    for (i, lb) in s.model.load_balancers.iter().enumerate() {
        let (Some(arn), Some(container), Some(port)) = (lb.target_group_arn.as_deref(), lb.container_name.as_deref(), lb.container_port)
        else {
            continue;
        };
        if !ports.iter().any(|p| i64::from(p.port) == port) {
            continue;
        }
        // Two target groups on one port (an ALB and an NLB, say) are two bindings.
        let mut name = binding_name(&ctx.meta.name, container, port);
        let taken = |name: &str| {
            ctx.extra
                .iter()
                .any(|o| matches!(o, Object::TargetGroupBinding(_)) && o.metadata().name.as_deref() == Some(name))
        };
        if taken(&name) {
            let head: String = name.chars().take(58).collect();
            name = format!("{}-{i}", head.trim_end_matches('-'));
        }
        let mut object = DynamicObject::new(&name, &api_resource());
        object.metadata = ctx.object_meta(&name);
        let mut spec = json!({
            "targetGroupARN": arn,
            "targetType": target_type,
            "serviceRef": {"name": service_name, "port": port},
        });
        if options.multi_cluster {
            spec["multiClusterTargetGroup"] = true.into();
        } else {
            ctx.warn(
                Code::NotCarriedOver,
                at!(s, "loadBalancers", i, "targetGroupArn"),
                format!("the TargetGroupBinding \"{name}\" gives the AWS Load Balancer Controller the whole target group: it deregisters every target it did not register, the ECS tasks included, as soon as it runs; to keep ECS serving beside Kubernetes during a migration, run ecskube with --target-group-multi-cluster"),
            );
        }
        object.data = json!({ "spec": spec });
        ctx.extra.push(Object::TargetGroupBinding(Box::new(object)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binding_names_are_dns_labels() {
        assert_eq!(binding_name("web", "app_server", 8080), "web-app-server-8080");
        let long = binding_name(&"a".repeat(80), "c", 80);
        assert!(long.len() <= 63 && !long.ends_with('-'));
    }
}
