//! CloudFormation intrinsic functions, evaluated against the values the user
//! supplies: `spec.Parameters` (parameters, other resources' physical ids and
//! attributes, exports, pseudo parameters), `spec.Conditions` and
//! `spec.Mappings` of an ECSDeployment, or the CLI's `--param`/`--param-file`.
//!
//! Pure and bounded ([`MAX_DEPTH`], [`MAX_OUTPUT_BYTES`]): the webhook, the
//! controller and the CLI all evaluate the same way, in the engine, before the
//! structural check. Every name that cannot be resolved is collected and
//! reported once ([`Missing::report`]), with each place that uses it.

mod engine;
#[cfg(test)]
mod tests;

pub use engine::{Evaluated, Evaluator};

use crate::diag::{show, Code, Report};
use crate::path::Path;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// How deeply values and intrinsics may nest.
pub const MAX_DEPTH: usize = 32;
/// How much evaluation may produce: string bytes, plus 8 per JSON node.
pub const MAX_OUTPUT_BYTES: usize = 1 << 20;
/// How many missing names one error lists, and how many places per name.
const MAX_LISTED_NAMES: usize = 50;
const MAX_LISTED_USES: usize = 5;

/// The intrinsic functions evaluated here (the condition functions only inside conditions).
pub const FUNCTIONS: &[&str] = &[
    "Ref",
    "Fn::Base64",
    "Fn::Cidr",
    "Fn::FindInMap",
    "Fn::GetAtt",
    "Fn::GetAZs",
    "Fn::If",
    "Fn::ImportValue",
    "Fn::Join",
    "Fn::Length",
    "Fn::Select",
    "Fn::Split",
    "Fn::Sub",
    "Fn::ToJsonString",
    "Fn::Equals",
    "Fn::And",
    "Fn::Or",
    "Fn::Not",
];

/// The values a template's intrinsics are evaluated against.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stack {
    /// `Ref` names (parameters, resources' physical ids, pseudo parameters such
    /// as `AWS::Region`), `Fn::GetAtt` keys (`Resource.Attribute`), export names
    /// for `Fn::ImportValue`, `Fn::GetAZs`: string, number, boolean or a list of them.
    pub parameters: BTreeMap<String, Value>,
    /// Condition name to a boolean or a condition expression (`Fn::Equals`, `Fn::And`,
    /// `Fn::Or`, `Fn::Not`, `{"Condition": name}`).
    pub conditions: BTreeMap<String, Value>,
    /// `Fn::FindInMap`'s maps: `{Map: {TopKey: {SecondKey: value}}}` (Null when none).
    pub mappings: Value,
    /// Where the three sections live, as a path prefix: `spec` in an ECSDeployment,
    /// the root for a parameter file.
    pub origin: Path,
    /// Per parameter, where a value supplied outside `origin` came from (`--param X`).
    pub sources: BTreeMap<String, String>,
    /// How else values can be supplied, appended to the unresolved error (the CLI flags).
    pub hint: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Section {
    Parameters,
    Conditions,
    Mappings,
}

impl Section {
    pub fn name(self) -> &'static str {
        match self {
            Section::Parameters => "Parameters",
            Section::Conditions => "Conditions",
            Section::Mappings => "Mappings",
        }
    }
}

impl Stack {
    /// Reads the three sections (each optional); reports ill-formed ones at their
    /// place under `origin` and keeps what is usable.
    pub fn from_sections(
        parameters: Option<&Value>,
        conditions: Option<&Value>,
        mappings: Option<&Value>,
        origin: Path,
        report: &mut Report,
    ) -> Stack {
        let mut stack = Stack {
            origin,
            ..Stack::default()
        };
        if let Some(p) = parameters.filter(|v| !v.is_null()) {
            let at = stack.origin.key("Parameters");
            if let Some(map) = object(p, &at, "a map from parameter name to value", report) {
                for (name, value) in map {
                    if parameter_value_ok(value) {
                        stack.parameters.insert(name.clone(), value.clone());
                    } else {
                        report
                            .error(
                                Code::InvalidType,
                                at.key(name).to_string(),
                                "a parameter value is a string, a number, a boolean or a list of them",
                            )
                            .expected("a string, a number, a boolean or a list")
                            .found(show(value));
                    }
                }
            }
        }
        if let Some(c) = conditions.filter(|v| !v.is_null()) {
            let at = stack.origin.key("Conditions");
            if let Some(map) = object(c, &at, "a map from condition name to true/false or a condition", report) {
                stack.conditions = map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            }
        }
        if let Some(m) = mappings.filter(|v| !v.is_null()) {
            let at = stack.origin.key("Mappings");
            if let Some(map) = object(m, &at, "a map of maps: {Map: {TopKey: {SecondKey: value}}}", report) {
                stack.mappings = Value::Object(map.clone());
            }
        }
        stack
    }

    /// A parameter file: a map with `Parameters:`, `Conditions:` and `Mappings:`
    /// sections; a plain map of parameter names to values; or the AWS CLI's
    /// `[{"ParameterKey": ..., "ParameterValue": ...}]` list.
    pub fn from_file_value(value: &Value, origin: Path, report: &mut Report) -> Stack {
        const SECTIONS: &[&str] = &["Parameters", "Conditions", "Mappings"];
        match value {
            Value::Array(items) => {
                let mut params = Map::new();
                for (i, item) in items.iter().enumerate() {
                    match (item.get("ParameterKey").and_then(Value::as_str), item.get("ParameterValue")) {
                        (Some(k), Some(v)) => {
                            params.insert(k.to_string(), v.clone());
                        }
                        _ => {
                            report
                                .error(
                                    Code::Invalid,
                                    origin.index(i).to_string(),
                                    "a parameter list item names its key and value",
                                )
                                .expected("{\"ParameterKey\": name, \"ParameterValue\": value}")
                                .found(show(item));
                        }
                    }
                }
                Stack::from_sections(Some(&Value::Object(params)), None, None, origin, report)
            }
            Value::Object(map) if map.keys().any(|k| SECTIONS.contains(&k.as_str())) => {
                for k in map.keys().filter(|k| !SECTIONS.contains(&k.as_str())) {
                    report
                        .error(Code::UnknownField, origin.key(k).to_string(), format!("unknown section `{k}`"))
                        .expected("Parameters, Conditions or Mappings");
                }
                Stack::from_sections(map.get("Parameters"), map.get("Conditions"), map.get("Mappings"), origin, report)
            }
            Value::Object(_) => Stack::from_sections(Some(value), None, None, origin, report),
            Value::Null => Stack {
                origin,
                ..Stack::default()
            },
            other => {
                report
                    .error(Code::InvalidType, origin.to_string(), "a parameter file holds a map")
                    .expected("Parameters/Conditions/Mappings sections, or a map of parameter names to values")
                    .found(show(other));
                Stack {
                    origin,
                    ..Stack::default()
                }
            }
        }
    }

    /// `over` wins: its parameters and conditions replace these, its maps replace these maps.
    pub fn merge(&mut self, over: &Stack) {
        for (k, v) in &over.parameters {
            self.parameters.insert(k.clone(), v.clone());
            match over.sources.get(k) {
                Some(s) => self.sources.insert(k.clone(), s.clone()),
                None => self.sources.insert(k.clone(), over.origin.key("Parameters").key(k).to_string()),
            };
        }
        for (k, v) in &over.conditions {
            self.conditions.insert(k.clone(), v.clone());
        }
        if let Value::Object(maps) = &over.mappings {
            if !self.mappings.is_object() {
                self.mappings = Value::Object(Map::new());
            }
            if let Value::Object(mine) = &mut self.mappings {
                for (k, v) in maps {
                    mine.insert(k.clone(), v.clone());
                }
            }
        }
        if !over.hint.is_empty() {
            self.hint = over.hint.clone();
        }
    }

    pub fn is_empty(&self) -> bool {
        self.parameters.is_empty() && self.conditions.is_empty() && self.mappings.as_object().is_none_or(|m| m.is_empty())
    }

    /// Where a parameter's value came from, for notes: `spec.Parameters.ContainerCpu`.
    pub fn source(&self, name: &str) -> String {
        self.sources
            .get(name)
            .cloned()
            .unwrap_or_else(|| self.origin.key("Parameters").key(name).to_string())
    }

    fn section(&self, s: Section) -> Path {
        self.origin.key(s.name())
    }
}

fn object<'v>(v: &'v Value, at: &Path, expected: &str, report: &mut Report) -> Option<&'v Map<String, Value>> {
    match v {
        Value::Object(m) => Some(m),
        other => {
            report
                .error(Code::InvalidType, at.to_string(), "wrong type")
                .expected(expected)
                .found(show(other));
            None
        }
    }
}

fn parameter_value_ok(v: &Value) -> bool {
    let scalar = |v: &Value| matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_));
    scalar(v) || v.as_array().is_some_and(|items| items.iter().all(scalar))
}

/// `{"Ref": ...}`, `{"Fn::Sub": ...}`: a one-key object naming an intrinsic function.
pub fn intrinsic_name(value: &Value) -> Option<&str> {
    let obj = value.as_object()?;
    if obj.len() != 1 {
        return None;
    }
    let key = obj.keys().next()?;
    (key == "Ref" || key.starts_with("Fn::")).then_some(key.as_str())
}

/// Whether a value holds an intrinsic function anywhere (bounded by its own nesting).
pub fn contains_intrinsic(value: &Value) -> bool {
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        if intrinsic_name(v).is_some() {
            return true;
        }
        match v {
            Value::Object(o) => stack.extend(o.values()),
            Value::Array(a) => stack.extend(a.iter()),
            _ => {}
        }
    }
    false
}

/// Names that could not be resolved, each with the places that use it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Missing {
    /// (section, key path inside the section, uses), in order of first use.
    entries: Vec<(Section, Vec<String>, Vec<String>)>,
}

impl Missing {
    pub fn add(&mut self, section: Section, key: Vec<String>, used_at: String) {
        match self.entries.iter_mut().find(|(s, k, _)| *s == section && *k == key) {
            Some((_, _, uses)) => {
                if !uses.contains(&used_at) {
                    uses.push(used_at);
                }
            }
            None => self.entries.push((section, key, vec![used_at])),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The first place that uses a missing name: where the one error about them all goes.
    pub fn first_use(&self) -> Option<&str> {
        self.entries.first().and_then(|(_, _, uses)| uses.first()).map(String::as_str)
    }

    /// The missing names of a section, as written in the key to add (`ContainerCpu`, `RegionMap.us-east-1.AMI`).
    pub fn names(&self, section: Section) -> Vec<String> {
        self.entries
            .iter()
            .filter(|(s, ..)| *s == section)
            .map(|(_, k, _)| display_key(k))
            .collect()
    }

    pub fn merge(&mut self, other: Missing) {
        for (s, k, uses) in other.entries {
            for u in uses {
                self.add(s, k.clone(), u);
            }
        }
    }

    /// One error at `path` (usually [`Missing::first_use`]) listing every missing name, where it is used, and the exact keys to add.
    pub fn report(&self, stack: &Stack, path: &str, report: &mut Report) {
        if self.entries.is_empty() {
            return;
        }
        let mut parts = Vec::new();
        let mut keys = Vec::new();
        for section in [Section::Parameters, Section::Conditions, Section::Mappings] {
            let mut names = Vec::new();
            for (_, key, uses) in self.entries.iter().filter(|(s, ..)| *s == section) {
                if keys.len() >= MAX_LISTED_NAMES {
                    break;
                }
                let mut shown: Vec<&str> = uses.iter().take(MAX_LISTED_USES).map(String::as_str).collect();
                let more = uses.len().saturating_sub(MAX_LISTED_USES);
                let more = if more > 0 { format!(" and {more} more") } else { String::new() };
                shown.dedup();
                names.push(format!("{} (used at {}{more})", display_key(key), shown.join(", ")));
                let mut p = stack.section(section);
                for k in key {
                    p.push_key(k);
                }
                keys.push(p.to_string());
            }
            if !names.is_empty() {
                parts.push(format!("{}: add {}", stack.section(section), names.join(", ")));
            }
        }
        let left_out = self.entries.len().saturating_sub(keys.len());
        let mut message = format!(
            "CloudFormation intrinsic functions cannot be resolved without these values: {}",
            parts.join("; ")
        );
        if left_out > 0 {
            message.push_str(&format!("; and {left_out} more names"));
        }
        if !stack.hint.is_empty() {
            message.push_str(&format!(" ({})", stack.hint));
        }
        let n = self.entries.len();
        report
            .error(Code::Unresolved, path, message)
            .expected(format!("values for {}", keys.join(", ")))
            .found(format!("{n} missing name{}", if n == 1 { "" } else { "s" }));
    }
}

/// A key path as users write it: `ContainerCpu`, `"AWS::Region"`, `RegionMap.us-east-1.AMI`.
fn display_key(key: &[String]) -> String {
    key.iter()
        .map(|k| {
            let p = Path::root().key(k).to_string();
            p.strip_prefix('[')
                .and_then(|p| p.strip_suffix(']'))
                .map_or(p.clone(), str::to_string)
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// Where evaluated values sit in what the user wrote, and which supplied values produced them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Provenance {
    /// Evaluated path to written path, where they part: the branch an `Fn::If` chose,
    /// list items after one `AWS::NoValue` removed. Deeper entries refine shallower ones.
    moved: BTreeMap<String, String>,
    /// Written path of an intrinsic to `from spec.Parameters.X, ...`.
    notes: BTreeMap<String, String>,
}

impl Provenance {
    pub fn is_empty(&self) -> bool {
        self.moved.is_empty() && self.notes.is_empty()
    }

    /// The place the user wrote, for a path in the evaluated definition.
    pub fn written(&self, evaluated: &str) -> String {
        if self.moved.is_empty() {
            return evaluated.to_string();
        }
        for cut in cuts(evaluated).into_iter().rev() {
            if let Some(w) = self.moved.get(&evaluated[..cut]) {
                return format!("{w}{}", &evaluated[cut..]);
            }
        }
        evaluated.to_string()
    }

    /// Which supplied values produced the value at a written path (or around it).
    pub fn note(&self, written: &str) -> Option<&str> {
        if self.notes.is_empty() {
            return None;
        }
        cuts(written)
            .into_iter()
            .rev()
            .find_map(|cut| self.notes.get(&written[..cut]))
            .map(String::as_str)
    }

    /// Every (written path, note).
    pub fn notes(&self) -> impl Iterator<Item = (&str, &str)> {
        self.notes.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn extend(&mut self, other: Provenance) {
        self.moved.extend(other.moved);
        self.notes.extend(other.notes);
    }
}

/// The lengths of a rendered path's prefixes that are paths themselves:
/// before each `.` or `[` outside a quoted key, and the whole.
fn cuts(path: &str) -> Vec<usize> {
    let bytes = path.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'.' => out.push(i),
            b'[' => {
                out.push(i);
                if bytes.get(i + 1) == Some(&b'"') {
                    // A quoted key: skip to its closing `"]`, minding escapes.
                    i += 2;
                    while i < bytes.len() && !(bytes[i] == b'"' && bytes.get(i + 1) == Some(&b']')) {
                        i += if bytes[i] == b'\\' { 2 } else { 1 };
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    out.push(path.len());
    out.retain(|&c| c > 0);
    out
}

/// Evaluates one definition body and reports everything at once, missing names
/// included (in one error at the first place that uses one). Returns the body with every intrinsic replaced by its
/// value (properties that are `AWS::NoValue` removed; what cannot be resolved
/// left as written) and the provenance of the evaluated values.
pub fn evaluate(body: &Value, base: &Path, stack: &Stack, report: &mut Report) -> (Value, Provenance) {
    let mut evaluator = Evaluator::new(stack);
    let evaluated = evaluator.body(body, base, &[], report);
    if let Some(at) = evaluator.missing().first_use() {
        evaluator.missing().report(stack, at, report);
    }
    (evaluated.value, evaluated.provenance)
}
