//! What a file or an admission request holds: ECSDeployment objects, a
//! `{"Task": ..., "Service": ...}` pair, or bare task/service definitions,
//! in JSON or YAML (several YAML documents per file).

use crate::diag::{show, Code, Report};
use crate::ecs::input::{detect_dialect, Resource};
use crate::ecs::intrinsics::Stack;
use crate::path::Path;
use crate::spelling::did_you_mean;
use crate::validate::{analyze, Analysis, Input};
use serde::Deserialize;
use serde_json::Value;

pub const API_VERSION: &str = "ecskube.ecskube/v1alpha1";
pub const KIND: &str = "ECSDeployment";
/// The spec members of an ECSDeployment.
pub const SPEC_KEYS: &[&str] = &[
    "Task",
    "Service",
    "TaskFrom",
    "ServiceFrom",
    "Scaling",
    "Parameters",
    "Conditions",
    "Mappings",
];
/// The keys of a `{"Task": ..., "Service": ...}` pair.
const PAIR_KEYS: &[&str] = &["Task", "Service", "Scaling"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocKind {
    /// `apiVersion: ecskube.ecskube/v1alpha1`, `kind: ECSDeployment`.
    Deployment,
    /// `{"Task": ..., "Service": ..., "Scaling": ...}` without the object around it.
    Pair,
    Task,
    Service,
}

#[derive(Debug, Clone)]
pub struct EcsDocument {
    pub value: Value,
    pub kind: DocKind,
    /// Definitions read from ConfigMaps (`TaskFrom` / `ServiceFrom`), with the
    /// path that names their source.
    pub from_config_maps: FromConfigMaps,
    /// Values for CloudFormation intrinsic functions supplied outside the object
    /// (the CLI's `--param`/`--param-file`); they override `spec.Parameters`.
    pub params: Stack,
}

#[derive(Debug, Clone, Default)]
pub struct FromConfigMaps {
    pub task: Option<(Value, Path)>,
    pub service: Option<(Value, Path)>,
}

/// The path diagnostics use for a definition read from a ConfigMap key.
pub fn config_map_path(name: &str, key: &str) -> Path {
    Path::root().key(&format!("{CONFIG_MAP_SEGMENT}{name}")).key(key)
}

const CONFIG_MAP_SEGMENT: &str = "configmap/";

/// Whether a diagnostic's path lies in a definition read from a ConfigMap.
pub fn in_config_map(path: &str) -> bool {
    path.starts_with(&format!("[\"{CONFIG_MAP_SEGMENT}"))
}

/// Diagnostics as ecskube may tell them to whoever asked: nothing quoted
/// from a ConfigMap, which ecskube read with its own rights.
pub fn shareable(diags: Vec<crate::diag::Diagnostic>) -> Vec<crate::diag::Diagnostic> {
    diags
        .into_iter()
        .map(|d| if in_config_map(&d.path) { d.without_values() } else { d })
        .collect()
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseError {
    #[error("not valid JSON or YAML: {0}")]
    Syntax(String),
}

/// Parses JSON, or YAML with one or more documents (empty documents skipped).
pub fn parse_documents(text: &str) -> Result<Vec<EcsDocument>, ParseError> {
    let trimmed = text.trim_start();
    let values: Vec<Value> = if trimmed.starts_with('{') || trimmed.starts_with('[') {
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Array(items)) => items,
            Ok(v) => vec![v],
            Err(json_err) => yaml_values(text).map_err(|_| ParseError::Syntax(json_err.to_string()))?,
        }
    } else {
        yaml_values(text)?
    };
    Ok(values.into_iter().filter(|v| !v.is_null()).map(EcsDocument::classify).collect())
}

fn yaml_values(text: &str) -> Result<Vec<Value>, ParseError> {
    refuse_aliases(text)?;
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|doc| Value::deserialize(doc).map_err(|e| ParseError::Syntax(e.to_string())))
        .collect()
}

/// A YAML alias (`*name`) repeats its anchored node wherever it appears, so
/// a few kilobytes can stand for gigabytes (the parser bounds how many
/// aliases it expands, not how large they are). ECS definitions never need
/// them: refuse them, before anything expands them.
fn refuse_aliases(text: &str) -> Result<(), ParseError> {
    use yaml_rust2::parser::{Event, Parser};
    let mut parser = Parser::new_from_str(text);
    loop {
        match parser.next_token() {
            Ok((Event::Alias(_), at)) => {
                return Err(ParseError::Syntax(format!(
                    "YAML aliases (`*name`) are not accepted (line {}, column {}): write the value out where it is used",
                    at.line(),
                    at.col() + 1
                )))
            }
            Ok((Event::StreamEnd, _)) => return Ok(()),
            Ok(_) => {}
            // A syntax error: serde_yaml_ng reports it in its own words.
            Err(_) => return Ok(()),
        }
    }
}

impl EcsDocument {
    pub fn classify(value: Value) -> Self {
        let kind = classify(&value);
        EcsDocument {
            value,
            kind,
            from_config_maps: FromConfigMaps::default(),
            params: Stack::default(),
        }
    }

    /// The object's name, which implies the family and service name.
    pub fn name(&self) -> Option<&str> {
        self.value.pointer("/metadata/name").and_then(Value::as_str)
    }

    /// The identity the Kubernetes children take: the object's name, namespace
    /// and labels; for a bare definition, its family (or service name).
    pub fn meta(&self, analysis: &Analysis<'_>) -> crate::translate::Meta {
        let labels = self
            .value
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .map(|l| l.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
            .unwrap_or_default();
        let name = self
            .name()
            .map(str::to_string)
            .or_else(|| analysis.task.as_ref().and_then(|t| t.model.family.clone()))
            .or_else(|| analysis.service.as_ref().and_then(|s| s.model.service_name.clone()))
            .map(|n| crate::translate::k8s_name(&n, "ecs-task"))
            .unwrap_or_else(|| "ecs-task".into());
        crate::translate::Meta {
            name,
            namespace: self
                .value
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .map(str::to_string),
            labels,
        }
    }

    /// The definitions inside, with the paths the user wrote them at.
    pub fn input(&self) -> Input<'_> {
        let v = &self.value;
        let (task, service) = match self.kind {
            DocKind::Deployment => (
                v.pointer("/spec/Task")
                    .map(|t| (t, Path::parse_dotted("spec.Task")))
                    .or_else(|| self.from_config_maps.task.as_ref().map(|(t, p)| (t, p.clone()))),
                v.pointer("/spec/Service")
                    .filter(|s| !s.is_null())
                    .map(|s| (s, Path::parse_dotted("spec.Service")))
                    .or_else(|| self.from_config_maps.service.as_ref().map(|(s, p)| (s, p.clone()))),
            ),
            DocKind::Pair => (
                v.get("Task").map(|t| (t, Path::root().key("Task"))),
                v.get("Service").filter(|s| !s.is_null()).map(|s| (s, Path::root().key("Service"))),
            ),
            DocKind::Task => (Some((v, Path::root())), None),
            DocKind::Service => (None, Some((v, Path::root()))),
        };
        let scaling = match self.kind {
            DocKind::Deployment => v.pointer("/spec/Scaling").map(|s| (s, Path::parse_dotted("spec.Scaling"))),
            DocKind::Pair => v.get("Scaling").map(|s| (s, Path::root().key("Scaling"))),
            DocKind::Task | DocKind::Service => None,
        };
        Input {
            name: self.name(),
            task,
            service,
            scaling: scaling.filter(|(s, _)| !s.is_null()),
            stack: self.stack(),
        }
    }

    /// The values intrinsic functions are evaluated against: an ECSDeployment's
    /// `spec.Parameters`, `spec.Conditions` and `spec.Mappings`, overridden by `params`.
    pub fn stack(&self) -> Stack {
        let mut stack = match self.kind {
            DocKind::Deployment => {
                let spec = self.value.get("spec");
                let section = |k: &str| spec.and_then(|s| s.get(k));
                // Ill-formed sections are reported by check_deployment.
                Stack::from_sections(
                    section("Parameters"),
                    section("Conditions"),
                    section("Mappings"),
                    Path::root().key("spec"),
                    &mut Report::default(),
                )
            }
            _ => Stack::default(),
        };
        stack.merge(&self.params);
        stack
    }

    /// Runs the engine; adds what is wrong with the object around the definitions.
    pub fn analyze(&self) -> Analysis<'_> {
        let mut analysis = analyze(&self.input());
        let mut envelope = Report::default();
        match self.kind {
            DocKind::Deployment => check_deployment(&self.value, &mut envelope),
            DocKind::Pair => check_keys(&self.value, &Path::root(), PAIR_KEYS, &mut envelope),
            DocKind::Task | DocKind::Service => {}
        }
        envelope.diagnostics.append(&mut analysis.report.diagnostics);
        analysis.report = envelope;
        analysis
    }
}

fn classify(v: &Value) -> DocKind {
    if v.get("kind").and_then(Value::as_str) == Some(KIND) || v.get("apiVersion").is_some() {
        return DocKind::Deployment;
    }
    let Some(obj) = v.as_object() else { return DocKind::Task };
    if obj.contains_key("Task") || (obj.contains_key("Service") && obj.len() <= 2 && !obj.contains_key("Properties")) {
        return DocKind::Pair;
    }
    match obj.get("Type").and_then(Value::as_str) {
        Some("AWS::ECS::Service") => return DocKind::Service,
        Some("AWS::ECS::TaskDefinition") => return DocKind::Task,
        _ => {}
    }
    if obj.contains_key("taskDefinition") && obj["taskDefinition"].is_object() {
        return DocKind::Task;
    }
    if obj.contains_key("services") {
        return DocKind::Service;
    }
    let body = obj.get("Properties").unwrap_or(v);
    // Whichever model knows more of the keys.
    let score = |resource: Resource| {
        let dialect = detect_dialect(body, resource);
        let schema = crate::ecs::schema::Schema::for_dialect(dialect);
        body.as_object().map_or(0, |o| {
            o.keys().filter(|k| schema.member(resource.root(schema), k).is_some()).count()
        })
    };
    if score(Resource::Service) > score(Resource::Task) {
        DocKind::Service
    } else {
        DocKind::Task
    }
}

/// apiVersion, kind, metadata.name and the spec's own keys.
fn check_deployment(v: &Value, r: &mut Report) {
    match v.get("apiVersion") {
        Some(Value::String(s)) if s == API_VERSION => {}
        other => {
            r.error(Code::NotSupported, "apiVersion", "unsupported apiVersion")
                .expected(API_VERSION)
                .found(other.map_or("nothing".into(), show));
        }
    }
    if v.get("kind").and_then(Value::as_str) != Some(KIND) {
        r.error(Code::NotSupported, "kind", "unsupported kind")
            .expected(KIND)
            .found(v.get("kind").map_or("nothing".into(), show));
    }
    let Some(spec) = v.get("spec") else {
        r.error(Code::Required, "spec", "an ECSDeployment needs a spec")
            .expected("spec.Task (and optionally spec.Service)");
        return;
    };
    let Some(spec) = spec.as_object() else {
        r.error(Code::InvalidType, "spec", "spec must be an object")
            .expected("an object")
            .found(show(spec));
        return;
    };
    check_keys(&v["spec"], &Path::root().key("spec"), SPEC_KEYS, r);
    Stack::from_sections(
        spec.get("Parameters"),
        spec.get("Conditions"),
        spec.get("Mappings"),
        Path::root().key("spec"),
        r,
    );
    let set = |k: &str| spec.get(k).is_some_and(|v| !v.is_null());
    match (set("Task"), set("TaskFrom")) {
        (false, false) => {
            r.error(Code::Required, "spec.Task", "an ECSDeployment needs the ECS task definition")
                .expected("spec.Task, or spec.TaskFrom.configMapKeyRef");
        }
        (true, true) => {
            r.error(
                Code::Invalid,
                "spec.TaskFrom",
                "give the task definition once: Task or TaskFrom, not both",
            )
            .expected("exactly one of spec.Task and spec.TaskFrom");
        }
        _ => {}
    }
    if set("Service") && set("ServiceFrom") {
        r.error(
            Code::Invalid,
            "spec.ServiceFrom",
            "give the service definition once: Service or ServiceFrom, not both",
        )
        .expected("at most one of spec.Service and spec.ServiceFrom");
    }
    for from in ["TaskFrom", "ServiceFrom"] {
        let Some(src) = spec.get(from).filter(|v| !v.is_null()) else {
            continue;
        };
        let key_ref = src.get("configMapKeyRef");
        for field in ["name", "key"] {
            if !key_ref.and_then(|k| k.get(field)).is_some_and(Value::is_string) {
                r.error(
                    Code::Required,
                    format!("spec.{from}.configMapKeyRef.{field}"),
                    format!("{from} names a ConfigMap key"),
                )
                .expected("a string");
            }
        }
    }
}

/// The definition a ConfigMap key holds for `which` ("Task" or "Service"):
/// one JSON or YAML document, a bare definition or a `{Task, Service}` pair.
/// Shared by the webhook and the controller so both read a ConfigMap alike.
pub fn definition_from_config_map(which: &str, name: &str, key: &str, text: &str) -> Result<Value, String> {
    let docs = parse_documents(text).map_err(|e| format!("ConfigMap {name} key {key}: {e}"))?;
    match <[EcsDocument; 1]>::try_from(docs) {
        Ok([doc]) if doc.kind == DocKind::Pair => doc
            .value
            .get(which)
            .cloned()
            .ok_or_else(|| format!("ConfigMap {name} key {key} has no {which}")),
        Ok([doc]) => Ok(doc.value),
        Err(docs) if docs.is_empty() => Err(format!("ConfigMap {name} key {key} is empty")),
        Err(docs) => Err(format!("ConfigMap {name} key {key} holds {} documents; expected one", docs.len())),
    }
}

/// A digest of the ConfigMap texts an object's definitions were read from
/// (which, name, key, text): the controller records it in the status, so an
/// admission can tell whether the content it would judge is what ran.
pub fn source_digest<'a>(sources: impl IntoIterator<Item = (&'a str, &'a str, &'a str, &'a str)>) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (which, name, key, text) in sources {
        for part in [which, name, key, text] {
            for b in part.bytes().chain(std::iter::once(0)) {
                h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
            }
        }
    }
    format!("{h:016x}")
}

/// The ConfigMap references of an ECSDeployment spec: (which, name, key).
pub fn config_map_refs(v: &Value) -> Vec<(&'static str, String, String)> {
    let mut refs = Vec::new();
    for (from, which) in [("TaskFrom", "Task"), ("ServiceFrom", "Service")] {
        let r = v.pointer(&format!("/spec/{from}/configMapKeyRef"));
        if let (Some(name), Some(key)) = (r.and_then(|r| r["name"].as_str()), r.and_then(|r| r["key"].as_str())) {
            refs.push((which, name.to_string(), key.to_string()));
        }
    }
    refs
}

/// Keys of an envelope object (spec, or a Task/Service pair) other than the allowed ones.
fn check_keys(v: &Value, base: &Path, allowed: &[&str], r: &mut Report) {
    for key in v.as_object().into_iter().flat_map(|o| o.keys()) {
        if allowed.contains(&key.as_str()) {
            continue;
        }
        let mut d = r.error(Code::UnknownField, base.key(key).to_string(), format!("unknown field `{key}`"));
        if let Some(s) = did_you_mean(key, allowed.iter().copied()) {
            d.message = format!("unknown field `{key}`; did you mean `{s}`?");
            d = d.expected(format!("`{s}`"));
        }
        d.found(format!("`{key}`"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_aliases_are_refused_before_they_expand() {
        // 900 KB once, then 20,000 references: 18 GB if expanded.
        let big = "x".repeat(900 * 1024);
        let mut text = format!("a: &x \"{big}\"\nb:\n");
        for _ in 0..20_000 {
            text.push_str("  - *x\n");
        }
        let err = parse_documents(&text).unwrap_err().to_string();
        assert!(err.contains("YAML aliases (`*name`) are not accepted (line 3, column 5)"), "{err}");
        let err = definition_from_config_map("Task", "cm", "task.yaml", &text).unwrap_err();
        assert!(err.contains("ConfigMap cm key task.yaml") && err.contains("YAML aliases"), "{err}");
    }

    #[test]
    fn plain_yaml_and_anchors_without_aliases_still_parse() {
        let docs = parse_documents("family: web\ncontainerDefinitions:\n  - &c {name: web, image: nginx}\n").unwrap();
        assert_eq!(docs[0].value["containerDefinitions"][0]["name"], "web");
        // A syntax error keeps serde_yaml_ng's own message.
        let err = parse_documents("a: [1, 2\n").unwrap_err().to_string();
        assert!(err.starts_with("not valid JSON or YAML"), "{err}");
        // Inside a string, `*x` is text, not an alias.
        let docs = parse_documents("image: \"*x\"\n").unwrap();
        assert_eq!(docs[0].value["image"], "*x");
    }

    #[test]
    fn config_map_paths_are_recognised() {
        let p = config_map_path("web-task", "task.json").key("containerDefinitions").to_string();
        assert!(in_config_map(&p), "{p}");
        assert!(!in_config_map("spec.Task.containerDefinitions[0]"));
        let d = crate::diag::Diagnostic {
            severity: crate::diag::Severity::Error,
            code: crate::diag::Code::Invalid,
            path: p.clone(),
            message: "image \"hunter2\" is wrong".into(),
            expected: "one of: db-password".into(),
            found: "\"hunter2\"".into(),
        };
        let shared = shareable(vec![d]);
        let text = shared[0].to_string();
        assert!(!text.contains("hunter2") && !text.contains("db-password"), "{text}");
        assert!(text.starts_with(&p), "{text}");
    }
}
