//! Validation: the structural check against AWS's models, then the semantic
//! rules AWS documents, then the rules that keep the Kubernetes translation
//! possible. Every problem is reported, not just the first.

pub mod rules;
pub mod structure;

use crate::diag::{Code, Report};
use crate::ecs::input::{locate, Form, Located, Resource};
use crate::ecs::intrinsics::{contains_intrinsic, Evaluator, Provenance, Stack};
use crate::ecs::model::{Service, TaskDefinition};
use crate::ecs::scaling::{self, ScalableTarget, ScalingPolicy};
use crate::ecs::schema::{Dialect, Kind, Schema, ShapeId};
use crate::path::{Path, Seg};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::sync::Arc;
use structure::Checker;

/// "Task definition size: 64 KiB" (Amazon ECS service quotas,
/// https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-quotas.html):
/// the JSON of one task definition. Checked before anything else reads it,
/// so the work an object can cause is bounded by what ECS would store.
pub const MAX_TASK_DEFINITION_BYTES: usize = 64 * 1024;

/// `Ok(())` when `v` as compact JSON fits in `limit` bytes; `Err(limit)` as
/// soon as it does not (the text is counted, never kept).
fn json_size_within(v: &Value, limit: usize) -> Result<(), usize> {
    struct Count {
        n: usize,
        limit: usize,
    }
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.n += buf.len();
            if self.n > self.limit {
                return Err(std::io::Error::other("over"));
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count { n: 0, limit };
    serde_json::to_writer(&mut count, v).map_err(|_| limit)
}

/// Root members AWS requires that an ECSDeployment implies: the family and
/// service name default to the object's name, the service's task definition
/// is always the object's own Task, and the cluster is the Kubernetes one.
const TASK_IMPLIED: &[&str] = &["family"];
const SERVICE_IMPLIED: &[&str] = &["serviceName", "taskDefinition", "cluster"];
/// What Application Auto Scaling needs to name the target, which is always
/// this ECSDeployment's service; a policy needs no name of its own here.
const SCALABLE_TARGET_IMPLIED: &[&str] = &["ServiceNamespace", "ResourceId", "ScalableDimension", "RoleARN"];
const SCALING_POLICY_IMPLIED: &[&str] = &[
    "PolicyName",
    "ServiceNamespace",
    "ResourceId",
    "ScalableDimension",
    "ScalingTargetId",
];

/// One definition after the structural check.
#[derive(Debug, Clone)]
pub struct Definition<'a, T> {
    pub located: Located<'a>,
    /// ECS API names, exact types, nulls and read-only members dropped.
    pub canonical: Value,
    pub model: T,
    pub resource: Resource,
    /// The body with its CloudFormation intrinsic functions evaluated, when it had any
    /// (`located.body` stays the user's own, which defaults patch).
    pub evaluated: Option<Arc<Value>>,
    /// Where evaluated values were written and which supplied values produced them.
    pub provenance: Provenance,
}

impl<T> Definition<'_, T> {
    fn schema(&self) -> &'static Schema {
        Schema::for_dialect(self.located.dialect)
    }

    /// The definition body as validated: evaluated when it held intrinsics.
    pub fn body(&self) -> &Value {
        self.evaluated.as_deref().unwrap_or(self.located.body)
    }

    /// The user's path for a canonical (ECS API named) path inside this definition
    /// (inside the intrinsic that produced the value, when one did).
    pub fn at(&self, canonical: &[Seg]) -> String {
        self.provenance.written(&self.resolve(canonical).0.to_string())
    }

    /// Whether the user wrote a (non-null) value there, even one that did not
    /// pass the structural check (an unresolved intrinsic, a placeholder).
    /// Rules about *absent* members consult this so they do not pile on.
    pub fn written(&self, canonical: &[Seg]) -> bool {
        self.resolve(canonical).1.is_some_and(|v| !v.is_null())
    }

    /// Walks the user's input along a canonical path: their path, and their value.
    fn resolve(&self, canonical: &[Seg]) -> (Path, Option<&'_ Value>) {
        let schema = self.schema();
        let mut path = self.located.path.clone();
        let mut value = Some(self.body());
        let mut shape: Option<ShapeId> = Some(self.resource.root(schema));
        for seg in canonical {
            let kind = shape.map(|s| &schema.shape(s).kind);
            match (seg, kind) {
                (Seg::Key(c), Some(Kind::Struct(members))) => {
                    let member = members.iter().find(|m| m.canonical == *c);
                    let name = member.map_or(c.as_str(), |m| m.name);
                    // The user's own key, even when written in the other casing.
                    let user_key = value
                        .and_then(Value::as_object)
                        .and_then(|o| user_key(o, name))
                        .map_or(name.to_string(), Clone::clone);
                    value = value.and_then(|v| v.get(&user_key));
                    path.push_key(&user_key);
                    shape = member.map(|m| m.shape);
                }
                (Seg::Key(k), Some(Kind::Map { value: vs })) => {
                    value = value.and_then(|v| v.get(k));
                    path.push_key(k);
                    shape = Some(*vs);
                }
                (Seg::Index(i), Some(Kind::List { item, .. })) => {
                    value = value.and_then(|v| v.get(*i));
                    path.push_index(*i);
                    shape = Some(*item);
                }
                (seg, _) => {
                    path.0.push(seg.clone());
                    value = None;
                    shape = None;
                }
            }
        }
        (path, value)
    }
}

/// Whether the user wrote a value at a canonical path: `written!(task, "cpu")`.
#[macro_export]
macro_rules! written {
    ($def:expr $(, $seg:expr)* $(,)?) => {
        $def.written(&[$($crate::path::Seg::from($seg)),*])
    };
}

/// A canonical path inside a definition: `at!(task, "containerDefinitions", i, "memory")`.
#[macro_export]
macro_rules! at {
    ($def:expr $(, $seg:expr)* $(,)?) => {
        $def.at(&[$($crate::path::Seg::from($seg)),*])
    };
}

/// The key `name` has in `object`, in whichever casing the user wrote it.
/// Direct lookups first: a scan of every key would make each diagnostic as
/// costly as the object is large (no ECS object has more than ~60 members,
/// so only objects up to 128 keys are scanned for odd casings).
fn user_key<'o>(object: &'o serde_json::Map<String, Value>, name: &str) -> Option<&'o String> {
    if let Some((k, _)) = object.get_key_value(name) {
        return Some(k);
    }
    let mut flipped = name.to_string();
    if let Some(first) = flipped.get_mut(..1) {
        if first.chars().all(|c| c.is_ascii_uppercase()) {
            first.make_ascii_lowercase();
        } else {
            first.make_ascii_uppercase();
        }
    }
    if let Some((k, _)) = object.get_key_value(&flipped) {
        return Some(k);
    }
    if object.len() > 128 {
        return None;
    }
    object.keys().find(|k| k.eq_ignore_ascii_case(name))
}

/// What the user pasted: an ECSDeployment's Task and Service, or bare definitions.
#[derive(Debug, Clone, Default)]
pub struct Input<'a> {
    /// The object's name: the implied family and service name.
    pub name: Option<&'a str>,
    pub task: Option<(&'a Value, Path)>,
    pub service: Option<(&'a Value, Path)>,
    /// Application Auto Scaling of the service (`spec.Scaling`): CloudFormation
    /// resources by logical ID, or AWS CLI input JSON (see [`crate::ecs::scaling`]).
    pub scaling: Option<(&'a Value, Path)>,
    /// Values for CloudFormation intrinsic functions (`spec.Parameters`, ...).
    pub stack: Stack,
}

/// Everything the engine learned about an input.
#[derive(Debug, Clone, Default)]
pub struct Analysis<'a> {
    pub report: Report,
    pub task: Option<Definition<'a, TaskDefinition>>,
    pub service: Option<Definition<'a, Service>>,
    /// `spec.Scaling`'s scalable target (none without `spec.Scaling`).
    pub scalable_target: Option<Definition<'a, ScalableTarget>>,
    /// Its policies, in the order written (one that is not even an object is left out).
    pub scaling_policies: Vec<Definition<'a, ScalingPolicy>>,
}

/// Parses, checks and models an input; reports every problem found.
pub fn analyze<'a>(input: &Input<'a>) -> Analysis<'a> {
    let mut report = Report::default();
    let mut evaluator = Evaluator::new(&input.stack);
    let mut holes = Vec::new();
    let mut ev = Eval {
        evaluator: &mut evaluator,
        holes: &mut holes,
    };
    let task = input
        .task
        .as_ref()
        .and_then(|(v, p)| check_definition::<TaskDefinition>(v, p, Resource::Task, TASK_IMPLIED, None, &mut ev, &mut report));
    let service = input
        .service
        .as_ref()
        .and_then(|(v, p)| check_definition::<Service>(v, p, Resource::Service, SERVICE_IMPLIED, None, &mut ev, &mut report));
    let scaling = input
        .scaling
        .as_ref()
        .filter(|(v, _)| !v.is_null())
        .map(|(v, p)| check_scaling(v, p, &mut ev, &mut report))
        .unwrap_or_default();
    // A rule never repeats a place the structural check (or evaluation) already reported.
    let mut structural: std::collections::HashSet<String> = report.errors().map(|d| d.path.clone()).collect();
    structural.extend(holes);
    // The path itself or any ancestor (cut before each `.` or `[`): linear in
    // the path's length, whatever the number of structural errors.
    let under_structural = |path: &str| {
        structural.contains(path)
            || path
                .char_indices()
                .filter(|(_, c)| *c == '.' || *c == '[')
                .any(|(i, _)| structural.contains(&path[..i]))
    };
    let mut semantic = Report::default();
    rules::check_implied_names(input.name, task.as_ref(), service.as_ref(), &mut semantic);
    rules::check_all(task.as_ref(), service.as_ref(), &mut semantic);
    rules::check_scaling(scaling.target.as_ref(), scaling.target_id, &scaling.policies, &mut semantic);
    report
        .diagnostics
        .extend(semantic.diagnostics.into_iter().filter(|d| !under_structural(&d.path)));
    // Say which supplied value produced a value something is wrong with.
    for d in &mut report.diagnostics {
        let note = [task.as_ref().map(|t| &t.provenance), service.as_ref().map(|s| &s.provenance)]
            .into_iter()
            .flatten()
            .chain(scaling.target.as_ref().map(|t| &t.provenance))
            .chain(scaling.policies.iter().map(|p| &p.provenance))
            .find_map(|p| p.note(&d.path));
        if let Some(note) = note {
            d.message = format!("{} (value {note})", d.message);
        }
    }
    // Every name that could not be resolved, in one error (at the first use), first.
    let missing = evaluator.into_missing();
    if let Some(at) = missing.first_use() {
        let mut unresolved = Report::default();
        missing.report(&input.stack, at, &mut unresolved);
        unresolved.diagnostics.append(&mut report.diagnostics);
        report = unresolved;
    }
    Analysis {
        report,
        task,
        service,
        scalable_target: scaling.target,
        scaling_policies: scaling.policies,
    }
}

/// `spec.Scaling`, checked.
#[derive(Default)]
struct Scaling<'a> {
    target: Option<Definition<'a, ScalableTarget>>,
    /// The target's logical ID, in the CloudFormation form.
    target_id: Option<&'a str>,
    policies: Vec<Definition<'a, ScalingPolicy>>,
}

/// The scalable target and the policies, each checked as its own definition
/// (with the same stack as the Task and the Service), in the dialect of the form.
fn check_scaling<'a>(value: &'a Value, base: &Path, ev: &mut Eval<'_, '_>, report: &mut Report) -> Scaling<'a> {
    let Some(parts) = scaling::split(value, base, report) else {
        return Scaling::default();
    };
    let dialect = Some(parts.form.dialect());
    let target_id = parts.target.as_ref().and_then(|t| t.logical_id);
    let target = parts.target.and_then(|t| {
        check_definition::<ScalableTarget>(
            t.value,
            &t.path,
            Resource::ScalableTarget,
            SCALABLE_TARGET_IMPLIED,
            dialect,
            ev,
            report,
        )
    });
    let policies = parts
        .policies
        .iter()
        .filter_map(|p| {
            check_definition::<ScalingPolicy>(
                p.value,
                &p.path,
                Resource::ScalingPolicy,
                SCALING_POLICY_IMPLIED,
                dialect,
                ev,
                report,
            )
        })
        .collect();
    Scaling {
        target,
        target_id,
        policies,
    }
}

/// Evaluation state shared by the Task and the Service of one input.
struct Eval<'e, 's> {
    evaluator: &'e mut Evaluator<'s>,
    /// Written paths of intrinsics that could not be evaluated.
    holes: &'e mut Vec<String>,
}

fn check_definition<'a, T: DeserializeOwned + Default>(
    value: &'a Value,
    base: &Path,
    resource: Resource,
    implied: &'static [&'static str],
    dialect: Option<Dialect>,
    ev: &mut Eval<'_, '_>,
    report: &mut Report,
) -> Option<Definition<'a, T>> {
    let mut located = locate(value, base, resource, report)?;
    // Where the keys cannot tell (both scaling dialects are PascalCase), the form did.
    if let Some(d) = dialect {
        located.dialect = d;
    }
    // A CloudFormation resource's own Condition decides whether it exists at all.
    if located.form == Form::CfnResource {
        if let Some(condition) = value.get("Condition") {
            let at = base.key("Condition");
            if ev.evaluator.resource_condition(condition, &at, report) == Some(false) {
                report
                    .error(
                        Code::Invalid,
                        at.to_string(),
                        format!(
                            "the resource's Condition {} is false, so CloudFormation would not create this {}",
                            crate::diag::show(condition),
                            resource.noun()
                        ),
                    )
                    .expected("a condition that is true (or no Condition)")
                    .found("false");
            }
        }
    }
    let (evaluated, provenance) = if contains_intrinsic(located.body) {
        let e = ev.evaluator.body(located.body, &located.path, implied, report);
        ev.holes.extend(e.holes);
        (Some(Arc::new(e.value)), e.provenance)
    } else {
        (None, Provenance::default())
    };
    if resource == Resource::Task {
        let body = evaluated.as_deref().unwrap_or(located.body);
        if let Err(size) = json_size_within(body, MAX_TASK_DEFINITION_BYTES) {
            report
                .error(
                    Code::Invalid,
                    located.path.to_string(),
                    format!(
                        "the task definition is larger than ECS allows ({} KiB of JSON{}); nothing else was checked",
                        MAX_TASK_DEFINITION_BYTES / 1024,
                        if evaluated.is_some() {
                            ", after evaluating its intrinsic functions"
                        } else {
                            ""
                        }
                    ),
                )
                .expected(format!("at most {MAX_TASK_DEFINITION_BYTES} bytes"))
                .found(format!("more than {size} bytes"));
            return None;
        }
    }
    let schema = Schema::for_dialect(located.dialect);
    let checked_from = report.diagnostics.len();
    let mut checker = Checker::new(schema, report, implied);
    // What evaluation could not resolve is reported already.
    checker.intrinsics_reported = evaluated.is_some();
    let mut path = located.path.clone();
    let empty = Value::Object(Default::default());
    let body = evaluated.as_deref().unwrap_or(located.body);
    let body = if body.is_null() { &empty } else { body };
    let canonical = checker
        .check(body, resource.root(schema), &mut path, true)
        .unwrap_or(Value::Object(Default::default()));
    if let Some((tags, tags_path)) = &located.describe_tags {
        let mut tags_path = tags_path.clone();
        if let Some(tags_member) = schema.member(resource.root(schema), "tags") {
            checker.check(tags, tags_member.shape, &mut tags_path, false);
        }
    }
    // The canonical form is type-exact, so this only fails on a bug; never panic on input.
    let model = T::deserialize(&canonical).unwrap_or_default();
    // The structural check walked the evaluated body: point at what the user wrote.
    for d in &mut report.diagnostics[checked_from..] {
        d.path = provenance.written(&d.path);
    }
    Some(Definition {
        located,
        canonical,
        model,
        resource,
        evaluated,
        provenance,
    })
}
