//! The defaults ECS applies, made explicit as RFC 6902 `add` operations in
//! the user's own casing. Only absent members are added, so applying the
//! result and computing again yields nothing (idempotent).
//! Sources: ContainerDefinition.essential "assumed to be essential",
//! PortMapping.protocol "The default is tcp", HealthCheck interval 30 /
//! timeout 5 / retries 3 / startPeriod off (0).
//! The service's desiredCount and deploymentConfiguration are not written:
//! their ECS defaults depend on schedulingStrategy (1 and 200/100 for
//! REPLICA, none and 100/0 for DAEMON), and a value the webhook stored for
//! one would outlive a switch to the other (`kubectl apply` keeps fields it
//! did not write), turning into a `desiredCount` ECS refuses for DAEMON.
//! The translation applies the same defaults where it reads them.
//! Defaults go into the user's own object, never inside a CloudFormation
//! intrinsic function (whose value is computed, not written).

use crate::ecs::intrinsics::intrinsic_name;
use crate::ecs::schema::{Dialect, Kind, Schema, ShapeId};
use crate::path::Path;
use crate::validate::structure::upper_first;
use crate::validate::{Analysis, Definition};
use json_patch::{AddOperation, Patch, PatchOperation};
use serde_json::{json, Map, Value};

/// The operations that add every missing ECS default. `name` is the object's
/// name (the implied family).
pub fn compute(analysis: &Analysis<'_>, name: Option<&str>) -> Patch {
    let mut ops = Vec::new();
    if let Some(t) = &analysis.task {
        task_defaults(t, name, &mut ops);
    }
    Patch(ops)
}

/// Writes `add` operations for one object node of the user's input.
struct Node<'v> {
    obj: &'v Map<String, Value>,
    path: Path,
    schema: &'static Schema,
    shape: ShapeId,
}

impl<'v> Node<'v> {
    fn root<T>(d: &'v Definition<'_, T>) -> Option<Self> {
        let schema = Schema::for_dialect(d.located.dialect);
        Some(Node {
            obj: d.located.body.as_object().filter(|_| intrinsic_name(d.located.body).is_none())?,
            path: d.located.path.clone(),
            schema,
            shape: d.resource.root(schema),
        })
    }

    /// The key this dialect uses for a canonical member, and the member's shape.
    fn key(&self, canonical: &str) -> Option<(&'static str, ShapeId)> {
        self.schema.member_by_canonical(self.shape, canonical).map(|m| (m.name, m.shape))
    }

    /// The user's value for a member, whatever casing they used.
    fn get(&self, canonical: &str) -> Option<(&'v String, &'v Value)> {
        let (name, _) = self.key(canonical)?;
        self.obj.iter().find(|(k, v)| k.eq_ignore_ascii_case(name) && !v.is_null())
    }

    /// Whether this object is written in its dialect's casing (decided, as the
    /// validator does, by its first known key); new keys follow the object.
    fn native_casing(&self) -> bool {
        let members = self.schema.members(self.shape);
        self.obj
            .keys()
            .find_map(|k| members.iter().find(|m| m.name.eq_ignore_ascii_case(k)).map(|m| m.name == k))
            .unwrap_or(true)
    }

    /// How this object spells a member.
    fn spell(&self, canonical: &str) -> Option<String> {
        let (name, _) = self.key(canonical)?;
        Some(match (self.native_casing(), self.schema.dialect) {
            (true, _) => name.to_string(),
            (false, Dialect::Cfn) => canonical.to_string(),
            (false, Dialect::Api) => upper_first(canonical),
        })
    }

    fn add_missing(&self, canonical: &str, value: Value, ops: &mut Vec<PatchOperation>) {
        if self.get(canonical).is_some() {
            return;
        }
        if let Some(name) = self.spell(canonical) {
            ops.push(add(&self.path.key(&name), value));
        }
    }

    /// Child object nodes: the member itself, or each object item of a list member.
    fn children(&self, canonical: &str) -> Vec<Node<'v>> {
        let Some((key, value)) = self.get(canonical) else {
            return Vec::new();
        };
        let Some((_, shape)) = self.key(canonical) else { return Vec::new() };
        let path = self.path.key(key);
        match (&self.schema.shape(shape).kind, value) {
            (Kind::List { item, .. }, Value::Array(items)) => items
                .iter()
                .enumerate()
                .filter(|(_, v)| intrinsic_name(v).is_none())
                .filter_map(|(i, v)| {
                    Some(Node {
                        obj: v.as_object()?,
                        path: path.index(i),
                        schema: self.schema,
                        shape: *item,
                    })
                })
                .collect(),
            (Kind::Struct(_), Value::Object(obj)) if intrinsic_name(value).is_none() => vec![Node {
                obj,
                path,
                schema: self.schema,
                shape,
            }],
            _ => Vec::new(),
        }
    }
}

fn add(path: &Path, value: Value) -> PatchOperation {
    let pointer = jsonptr::PointerBuf::parse(path.pointer()).unwrap_or_default();
    PatchOperation::Add(AddOperation { path: pointer, value })
}

fn task_defaults(t: &Definition<'_, crate::ecs::model::TaskDefinition>, name: Option<&str>, ops: &mut Vec<PatchOperation>) {
    let Some(root) = Node::root(t) else { return };
    // A name ECS cannot take as a family is left for validation to explain.
    if let Some(name) = name.filter(|n| crate::validate::rules::is_ecs_name(n)) {
        root.add_missing("family", json!(name), ops);
    }
    for container in root.children("containerDefinitions") {
        container.add_missing("essential", json!(true), ops);
        for port in container.children("portMappings") {
            port.add_missing("protocol", json!("tcp"), ops);
        }
        for hc in container.children("healthCheck") {
            hc.add_missing("interval", json!(30), ops);
            hc.add_missing("timeout", json!(5), ops);
            hc.add_missing("retries", json!(3), ops);
            hc.add_missing("startPeriod", json!(0), ops);
        }
    }
}
