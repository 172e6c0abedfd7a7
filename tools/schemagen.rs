//! Generates `src/ecs/schema/generated.rs` from AWS's own models:
//! botocore's ECS service model (camelCase) and the CloudFormation resource
//! schemas for AWS::ECS::TaskDefinition / AWS::ECS::Service (PascalCase);
//! botocore's Application Auto Scaling model (PascalCase too) and the
//! CloudFormation schemas for AWS::ApplicationAutoScaling::ScalableTarget /
//! ScalingPolicy, for `spec.Scaling`.
//!
//! Shared (via `#[path]`) by `examples/gen_schema.rs` (`make schema`) and by
//! `tests/aws_model_coverage.rs`, which fails when the checked-in table drifts
//! from the models.

#![allow(dead_code)] // each includer uses a part

use serde_json::{Map, Value};
use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::Path;

pub const API_MODEL: &str = "ecs-service-2.json";
pub const CFN_TASK_SCHEMA: &str = "aws-ecs-taskdefinition.schema.json";
pub const CFN_SERVICE_SCHEMA: &str = "aws-ecs-service.schema.json";
pub const SCALING_API_MODEL: &str = "application-autoscaling-service-2.json";
pub const CFN_SCALABLE_TARGET_SCHEMA: &str = "aws-applicationautoscaling-scalabletarget.schema.json";
pub const CFN_SCALING_POLICY_SCHEMA: &str = "aws-applicationautoscaling-scalingpolicy.schema.json";
/// The Application Auto Scaling requests `spec.Scaling` holds.
pub const SCALABLE_TARGET_REQUEST: &str = "RegisterScalableTargetRequest";
pub const SCALING_POLICY_REQUEST: &str = "PutScalingPolicyRequest";

/// CloudFormation properties whose ECS API name differs by more than case.
const CFN_ALIASES: &[(&str, &str)] = &[
    ("ProxyConfigurationProperties", "properties"),
    ("PlacementStrategies", "placementStrategy"),
];

/// One shape as emitted: a name and its Rust `Kind` expression.
struct OutShape {
    name: String,
    kind: String,
}

#[derive(Default)]
struct Table {
    shapes: Vec<OutShape>,
    by_key: HashMap<String, u16>,
}

impl Table {
    /// Reserves a slot so recursive shapes can refer to it before it is filled.
    fn reserve(&mut self, key: &str, name: &str) -> (u16, bool) {
        if let Some(&id) = self.by_key.get(key) {
            return (id, false);
        }
        let id = self.shapes.len() as u16;
        self.shapes.push(OutShape {
            name: name.to_string(),
            kind: String::new(),
        });
        self.by_key.insert(key.to_string(), id);
        (id, true)
    }

    fn leaf(&mut self, name: &str, kind: String) -> u16 {
        let key = format!("leaf:{kind}");
        let (id, fresh) = self.reserve(&key, name);
        if fresh {
            self.shapes[id as usize].kind = kind;
        }
        id
    }
}

fn read_json(dir: &Path, file: &str) -> Result<Value, String> {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn opt<T: std::fmt::Debug>(v: Option<T>) -> String {
    match v {
        Some(x) => format!("Some({x:?})"),
        None => "None".into(),
    }
}

fn string_kind(enums: &[String], min: Option<u64>, max: Option<u64>, pattern: Option<&str>) -> String {
    format!(
        "Kind::String {{ enums: &{enums:?}, min_len: {}, max_len: {}, pattern: {} }}",
        opt(min.map(|x| x as u32)),
        opt(max.map(|x| x as u32)),
        opt(pattern.map(rust_pattern))
    )
}

/// AWS writes its patterns for Java's regex engine. The two constructs of
/// its models the `regex` crate reads otherwise are rewritten to what Java
/// means by them: a UTF-16 surrogate-pair range (every supplementary code
/// point) and `\p{Print}` (POSIX printable ASCII in Java).
fn rust_pattern(java: &str) -> String {
    java.replace(r"\uD800\uDC00-\uDBFF\uDFFF", r"\x{10000}-\x{10FFFF}")
        .replace(r"\p{Print}", "[[:print:]]")
}

fn member_line(name: &str, canonical: &str, shape: u16, required: bool, read_only: bool) -> String {
    format!("Member {{ name: {name:?}, canonical: {canonical:?}, shape: {shape}, required: {required}, read_only: {read_only} }}")
}

fn struct_kind(lines: &[String]) -> String {
    let mut s = String::from("Kind::Struct(&[\n");
    for l in lines {
        let _ = writeln!(s, "        {l},");
    }
    s.push_str("    ])");
    s
}

// ---------- ECS API (botocore) ----------

struct ApiGen<'a> {
    shapes: &'a Map<String, Value>,
    /// Which botocore model `shapes` is: struct keys are per model, since
    /// the ECS and Application Auto Scaling models reuse shape names.
    model: &'static str,
    table: Table,
}

impl ApiGen<'_> {
    fn shape(&mut self, name: &str) -> u16 {
        let def = &self.shapes[name];
        let ty = def["type"].as_str().unwrap_or("");
        let u = |k: &str| def.get(k).and_then(Value::as_u64);
        let i = |k: &str| def.get(k).and_then(Value::as_i64);
        match ty {
            "structure" if def.get("document").is_some() => self.table.leaf("document", "Kind::Any".into()),
            "structure" => {
                let (id, fresh) = self.table.reserve(&format!("api:{}:{name}", self.model), name);
                if fresh {
                    let required = str_set(def.get("required"));
                    let mut lines = Vec::new();
                    for (m, mv) in def["members"].as_object().into_iter().flatten() {
                        let sid = self.shape(mv["shape"].as_str().unwrap_or_default());
                        lines.push(member_line(m, m, sid, required.contains(m), false));
                    }
                    self.table.shapes[id as usize].kind = struct_kind(&lines);
                }
                id
            }
            "list" => {
                let item = self.shape(def["member"]["shape"].as_str().unwrap_or_default());
                let kind = format!(
                    "Kind::List {{ item: {item}, min: {}, max: {} }}",
                    opt(u("min").map(|x| x as u32)),
                    opt(u("max").map(|x| x as u32))
                );
                self.table.leaf(name, kind)
            }
            "map" => {
                let value = self.shape(def["value"]["shape"].as_str().unwrap_or_default());
                self.table.leaf(name, format!("Kind::Map {{ value: {value} }}"))
            }
            "string" => {
                let enums: Vec<String> = def
                    .get("enum")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|e| e.as_str().map(String::from))
                    .collect();
                let kind = string_kind(&enums, u("min"), u("max"), def.get("pattern").and_then(Value::as_str));
                self.table.leaf(name, kind)
            }
            // Smithy `integer` is 32 bits wide: a value beyond it is refused by AWS
            // even where the model states no range. `long` is 64 bits, as JSON allows.
            "integer" => {
                let kind = format!(
                    "Kind::Integer {{ min: {}, max: {} }}",
                    opt(i("min").or(Some(i32::MIN.into()))),
                    opt(i("max").or(Some(i32::MAX.into())))
                );
                self.table.leaf(name, kind)
            }
            "long" => {
                let kind = format!("Kind::Integer {{ min: {}, max: {} }}", opt(i("min")), opt(i("max")));
                self.table.leaf(name, kind)
            }
            "double" | "float" => self.table.leaf(name, "Kind::Double { min: None, max: None }".into()),
            "boolean" => self.table.leaf("boolean", "Kind::Boolean".into()),
            "timestamp" => self.table.leaf("timestamp", "Kind::Timestamp".into()),
            _ => self.table.leaf("any", "Kind::Any".into()),
        }
    }

    /// A synthetic root: the input request's members, plus the describe
    /// output's extra members as read-only (accepted, ignored, not checked).
    fn root(&mut self, name: &str, input: &str, output: &str) -> u16 {
        let (id, _) = self.table.reserve(&format!("api:{}:{name}", self.model), name);
        let required = str_set(self.shapes[input].get("required"));
        let mut lines = Vec::new();
        let input_members = self.shapes[input]["members"].as_object().cloned().unwrap_or_default();
        for (m, mv) in &input_members {
            let sid = self.shape(mv["shape"].as_str().unwrap_or_default());
            lines.push(member_line(m, m, sid, required.contains(m), false));
        }
        let any = self.table.leaf("any", "Kind::Any".into());
        for (m, _) in self.shapes[output]["members"].as_object().into_iter().flatten() {
            if !input_members.contains_key(m) {
                lines.push(member_line(m, m, any, false, true));
            }
        }
        self.table.shapes[id as usize].kind = struct_kind(&lines);
        id
    }
}

fn str_set(v: Option<&Value>) -> BTreeSet<String> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(String::from))
        .collect()
}

// ---------- CloudFormation resource schemas ----------

struct CfnGen<'a> {
    api: &'a Map<String, Value>,
    /// Whether the paired API model spells members in PascalCase (Application
    /// Auto Scaling): a property it lacks keeps its CloudFormation name as the
    /// canonical one, rather than the ECS API's camelCase of it.
    pascal_api: bool,
    table: Table,
}

/// The API struct shape a CloudFormation definition corresponds to, when any.
type ApiPair<'a> = Option<&'a str>;

impl<'a> CfnGen<'a> {
    fn api_members(&self, api_shape: ApiPair<'_>) -> Option<&'a Map<String, Value>> {
        api_shape.and_then(|n| self.api.get(n)).and_then(|s| s["members"].as_object())
    }

    /// The API member matching a CloudFormation property, and its shape name.
    fn api_member(&self, api_shape: ApiPair<'_>, prop: &str) -> Option<(String, String)> {
        let members = self.api_members(api_shape)?;
        let alias = CFN_ALIASES.iter().find(|(c, _)| *c == prop).map(|(_, a)| *a);
        members
            .iter()
            .find(|(k, _)| Some(k.as_str()) == alias || k.eq_ignore_ascii_case(prop))
            .map(|(k, v)| (k.clone(), v["shape"].as_str().unwrap_or_default().to_string()))
    }

    /// The struct shape reached through an API member (through a list, too).
    fn api_struct_of(&self, shape: &str) -> Option<String> {
        let def = self.api.get(shape)?;
        match def["type"].as_str() {
            Some("structure") => Some(shape.to_string()),
            Some("list") => self.api_struct_of(def["member"]["shape"].as_str()?),
            _ => None,
        }
    }

    fn definition(&mut self, schema: &Value, prefix: &str, def_name: &str, api: ApiPair<'_>) -> u16 {
        let full = format!("{prefix}.{def_name}");
        let (id, fresh) = self.table.reserve(&format!("cfn:{full}"), &full);
        if fresh {
            let def = &schema["definitions"][def_name];
            let kind = self.object(schema, prefix, def, api, &BTreeSet::new());
            self.table.shapes[id as usize].kind = kind;
        }
        id
    }

    fn object(&mut self, schema: &Value, prefix: &str, def: &Value, api: ApiPair<'_>, read_only: &BTreeSet<String>) -> String {
        let required = str_set(def.get("required"));
        let mut lines = Vec::new();
        for (prop, pv) in def["properties"].as_object().into_iter().flatten() {
            let paired = self.api_member(api, prop);
            let canonical = match &paired {
                Some((n, _)) => n.clone(),
                None if self.pascal_api => prop.clone(),
                None => lower_first(prop),
            };
            let nested_api = paired.as_ref().and_then(|(_, s)| self.api_struct_of(s));
            let sid = self.property(schema, prefix, prop, pv, nested_api.as_deref());
            lines.push(member_line(
                prop,
                &canonical,
                sid,
                required.contains(prop),
                read_only.contains(prop),
            ));
        }
        struct_kind(&lines)
    }

    fn property(&mut self, schema: &Value, prefix: &str, prop: &str, pv: &Value, api: ApiPair<'_>) -> u16 {
        if let Some(r) = pv.get("$ref").and_then(Value::as_str) {
            let name = r.trim_start_matches("#/definitions/");
            return self.definition(schema, prefix, name, api);
        }
        let u = |k: &str| pv.get(k).and_then(Value::as_u64);
        match &pv["type"] {
            Value::Array(types) => {
                let names: Vec<&str> = types.iter().filter_map(Value::as_str).collect();
                if names.contains(&"object") && names.contains(&"string") {
                    self.table.leaf("StringOrObject", "Kind::StringOrObject".into())
                } else {
                    self.table.leaf("any", "Kind::Any".into())
                }
            }
            Value::String(t) => match t.as_str() {
                "array" => {
                    let item = self.property(schema, prefix, prop, &pv["items"], api);
                    let kind = format!(
                        "Kind::List {{ item: {item}, min: {}, max: {} }}",
                        opt(u("minItems").map(|x| x as u32)),
                        opt(u("maxItems").map(|x| x as u32))
                    );
                    self.table.leaf(&format!("{prop}List"), kind)
                }
                "object" => {
                    if let Some(pp) = pv.get("patternProperties").and_then(Value::as_object) {
                        let vs = pp.values().next().cloned().unwrap_or(Value::Null);
                        let value = self.property(schema, prefix, prop, &vs, None);
                        self.table.leaf(&format!("{prop}Map"), format!("Kind::Map {{ value: {value} }}"))
                    } else if pv.get("properties").is_some() {
                        let full = format!("{prefix}.{prop}");
                        let (id, fresh) = self.table.reserve(&format!("cfn:{full}"), &full);
                        if fresh {
                            let kind = self.object(schema, prefix, pv, api, &BTreeSet::new());
                            self.table.shapes[id as usize].kind = kind;
                        }
                        id
                    } else {
                        self.table.leaf("any", "Kind::Any".into())
                    }
                }
                "string" => {
                    let enums: Vec<String> = pv
                        .get("enum")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(|e| e.as_str().map(String::from))
                        .collect();
                    let kind = string_kind(&enums, u("minLength"), u("maxLength"), pv.get("pattern").and_then(Value::as_str));
                    self.table.leaf("string", kind)
                }
                // CloudFormation hands these to the ECS API, whose integers are 32 bits.
                "integer" => {
                    let i = |k: &str| pv.get(k).and_then(Value::as_i64);
                    let kind = format!(
                        "Kind::Integer {{ min: {}, max: {} }}",
                        opt(i("minimum").or(Some(i32::MIN.into()))),
                        opt(i("maximum").or(Some(i32::MAX.into())))
                    );
                    self.table.leaf("integer", kind)
                }
                "number" => {
                    let f = |k: &str| pv.get(k).and_then(Value::as_f64);
                    let kind = format!("Kind::Double {{ min: {}, max: {} }}", opt(f("minimum")), opt(f("maximum")));
                    self.table.leaf("number", kind)
                }
                "boolean" => self.table.leaf("boolean", "Kind::Boolean".into()),
                _ => self.table.leaf("any", "Kind::Any".into()),
            },
            _ => self.table.leaf("any", "Kind::Any".into()),
        }
    }

    fn root(&mut self, schema: &Value, prefix: &str, api_root: &str) -> u16 {
        let (id, _) = self.table.reserve(&format!("cfn:{prefix}"), prefix);
        let read_only: BTreeSet<String> = str_set(schema.get("readOnlyProperties"))
            .into_iter()
            .map(|p| p.trim_start_matches("/properties/").to_string())
            .collect();
        let kind = self.object(schema, prefix, schema, Some(api_root), &read_only);
        self.table.shapes[id as usize].kind = kind;
        id
    }
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// One dialect's entry points.
struct Roots {
    task: u16,
    service: u16,
    scalable_target: u16,
    scaling_policy: u16,
}

fn emit(out: &mut String, static_name: &str, dialect: &str, table: &Table, roots: &Roots) {
    let _ = writeln!(
        out,
        "pub static {static_name}: Schema = Schema {{\n    dialect: Dialect::{dialect},\n    task_root: {},\n    service_root: {},\n    scalable_target_root: {},\n    scaling_policy_root: {},\n    shapes: &[",
        roots.task, roots.service, roots.scalable_target, roots.scaling_policy
    );
    for (i, s) in table.shapes.iter().enumerate() {
        let _ = writeln!(out, "    /* {i} */ Shape {{ name: {:?}, kind: {} }},", s.name, s.kind);
    }
    out.push_str("    ],\n};\n");
}

/// Names of the synthetic API roots (request members + describe-only members).
pub const API_TASK_ROOT: &str = "TaskDefinitionInput";
pub const API_SERVICE_ROOT: &str = "ServiceInput";

/// The whole generated Rust source for `src/ecs/schema/generated.rs`.
pub fn generate(models: &Path) -> Result<String, String> {
    let api_model = read_json(models, API_MODEL)?;
    let api_shapes = api_model["shapes"].as_object().ok_or("ECS model has no shapes")?;
    let scaling_model = read_json(models, SCALING_API_MODEL)?;
    let scaling_shapes = scaling_model["shapes"]
        .as_object()
        .ok_or("Application Auto Scaling model has no shapes")?;
    let mut api = ApiGen {
        shapes: api_shapes,
        model: "ecs",
        table: Table::default(),
    };
    let api_task = api.root(API_TASK_ROOT, "RegisterTaskDefinitionRequest", "TaskDefinition");
    let api_service = api.root(API_SERVICE_ROOT, "CreateServiceRequest", "Service");
    // The requests themselves: `--cli-input-json` takes exactly their members.
    api.shapes = scaling_shapes;
    api.model = "application-autoscaling";
    let api_roots = Roots {
        task: api_task,
        service: api_service,
        scalable_target: api.shape(SCALABLE_TARGET_REQUEST),
        scaling_policy: api.shape(SCALING_POLICY_REQUEST),
    };

    // Pair CloudFormation definitions with the API's input shapes for canonical names.
    let mut pairing = api_shapes.clone();
    for (root, input) in [
        (API_TASK_ROOT, "RegisterTaskDefinitionRequest"),
        (API_SERVICE_ROOT, "CreateServiceRequest"),
    ] {
        pairing.insert(root.to_string(), api_shapes[input].clone());
    }
    let task_schema = read_json(models, CFN_TASK_SCHEMA)?;
    let service_schema = read_json(models, CFN_SERVICE_SCHEMA)?;
    let mut cfn = CfnGen {
        api: &pairing,
        pascal_api: false,
        table: Table::default(),
    };
    let cfn_task = cfn.root(&task_schema, "TaskDefinition", API_TASK_ROOT);
    let cfn_service = cfn.root(&service_schema, "Service", API_SERVICE_ROOT);
    // The scaling resources pair with their own API model's requests.
    let target_schema = read_json(models, CFN_SCALABLE_TARGET_SCHEMA)?;
    let policy_schema = read_json(models, CFN_SCALING_POLICY_SCHEMA)?;
    cfn.api = scaling_shapes;
    cfn.pascal_api = true;
    let cfn_roots = Roots {
        task: cfn_task,
        service: cfn_service,
        scalable_target: cfn.root(&target_schema, "ScalableTarget", SCALABLE_TARGET_REQUEST),
        scaling_policy: cfn.root(&policy_schema, "ScalingPolicy", SCALING_POLICY_REQUEST),
    };

    let mut out = String::from(
        "// @generated by `make schema` (tools/schemagen.rs) from AWS's models:\n\
         // botocore ecs-service-2.json and application-autoscaling-service-2.json,\n\
         // and the CloudFormation schemas for AWS::ECS::TaskDefinition,\n\
         // AWS::ECS::Service, AWS::ApplicationAutoScaling::ScalableTarget and\n\
         // AWS::ApplicationAutoScaling::ScalingPolicy. Do not edit by hand.\n\n\
         use super::{Dialect, Kind, Member, Schema, Shape};\n\n",
    );
    emit(&mut out, "API", "Api", &api.table, &api_roots);
    out.push('\n');
    emit(&mut out, "CFN", "Cfn", &cfn.table, &cfn_roots);
    Ok(out)
}

/// Every (shape path, member) pair a model defines, for the coverage test:
/// `Task.containerDefinitions.portMappings.containerPort` style (roots
/// `Task`, `Service`, `ScalableTarget`, `ScalingPolicy`).
pub fn model_member_paths(models: &Path) -> Result<(BTreeSet<String>, BTreeSet<String>), String> {
    let api_model = read_json(models, API_MODEL)?;
    let shapes = api_model["shapes"].as_object().ok_or("ECS model has no shapes")?;
    let mut api = BTreeSet::new();
    for (root, input, output) in [
        ("Task", "RegisterTaskDefinitionRequest", "TaskDefinition"),
        ("Service", "CreateServiceRequest", "Service"),
    ] {
        api_paths(shapes, input, root, &mut api, &mut Vec::new());
        for m in shapes[output]["members"].as_object().into_iter().flatten().map(|(k, _)| k) {
            api.insert(format!("{root}.{m}"));
        }
    }
    let scaling_model = read_json(models, SCALING_API_MODEL)?;
    let scaling = scaling_model["shapes"]
        .as_object()
        .ok_or("Application Auto Scaling model has no shapes")?;
    for (root, input) in [
        ("ScalableTarget", SCALABLE_TARGET_REQUEST),
        ("ScalingPolicy", SCALING_POLICY_REQUEST),
    ] {
        api_paths(scaling, input, root, &mut api, &mut Vec::new());
    }
    let mut cfn = BTreeSet::new();
    for (root, file) in [
        ("Task", CFN_TASK_SCHEMA),
        ("Service", CFN_SERVICE_SCHEMA),
        ("ScalableTarget", CFN_SCALABLE_TARGET_SCHEMA),
        ("ScalingPolicy", CFN_SCALING_POLICY_SCHEMA),
    ] {
        let schema = read_json(models, file)?;
        cfn_paths(&schema, &schema, root, &mut cfn, &mut Vec::new());
    }
    Ok((api, cfn))
}

fn api_paths(shapes: &Map<String, Value>, name: &str, path: &str, out: &mut BTreeSet<String>, stack: &mut Vec<String>) {
    let def = &shapes[name];
    match def["type"].as_str() {
        Some("structure") if def.get("document").is_none() => {
            if stack.iter().any(|s| s == name) {
                return;
            }
            stack.push(name.to_string());
            for (m, mv) in def["members"].as_object().into_iter().flatten() {
                let p = format!("{path}.{m}");
                out.insert(p.clone());
                api_paths(shapes, mv["shape"].as_str().unwrap_or_default(), &p, out, stack);
            }
            stack.pop();
        }
        Some("list") => api_paths(shapes, def["member"]["shape"].as_str().unwrap_or_default(), path, out, stack),
        Some("map") => api_paths(shapes, def["value"]["shape"].as_str().unwrap_or_default(), path, out, stack),
        _ => {}
    }
}

fn cfn_paths(schema: &Value, def: &Value, path: &str, out: &mut BTreeSet<String>, stack: &mut Vec<String>) {
    if let Some(r) = def.get("$ref").and_then(Value::as_str) {
        if stack.iter().any(|s| s == r) {
            return;
        }
        stack.push(r.to_string());
        let target = &schema["definitions"][r.trim_start_matches("#/definitions/")];
        cfn_paths(schema, target, path, out, stack);
        stack.pop();
        return;
    }
    if let Some(items) = def.get("items") {
        cfn_paths(schema, items, path, out, stack);
    }
    for (p, pv) in def.get("properties").and_then(Value::as_object).into_iter().flatten() {
        let child = format!("{path}.{p}");
        out.insert(child.clone());
        cfn_paths(schema, pv, &child, out, stack);
    }
    for pv in def
        .get("patternProperties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(_, v)| v)
    {
        cfn_paths(schema, pv, path, out, stack);
    }
}
