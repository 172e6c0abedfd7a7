//! Structural checks against AWS's models: unknown keys (with did-you-mean),
//! types, enums, required members, lengths, ranges and patterns. The same
//! walk produces the *canonical* definition (ECS API names, exact types) that
//! the semantic rules and the translation read.

use crate::diag::{show, Code, Report};
use crate::ecs::intrinsics::intrinsic_name;
use crate::ecs::schema::{Dialect, Kind, Member, Schema, ShapeId};
use crate::path::Path;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

/// Implied members whose value is accepted and ignored whatever it is: the
/// service always runs the object's own Task, in the Kubernetes cluster.
const IGNORED_IMPLIED: &[&str] = &["taskDefinition", "cluster"];

pub struct Checker<'r> {
    pub schema: &'static Schema,
    pub report: &'r mut Report,
    /// Root members an ECSDeployment implies (family, serviceName, ...).
    pub implied: &'static [&'static str],
    /// Intrinsics left in an evaluated body could not be resolved and are
    /// reported already: skip them silently.
    pub intrinsics_reported: bool,
    mixed_reported: bool,
    /// Did-you-mean suggestions still to compute: each costs an edit distance
    /// per member, so an object of thousands of unknown keys gets them for the first few only.
    suggestions_left: usize,
}

/// Unknown keys per definition that get a did-you-mean.
const MAX_SUGGESTIONS: usize = 100;

impl<'r> Checker<'r> {
    pub fn new(schema: &'static Schema, report: &'r mut Report, implied: &'static [&'static str]) -> Self {
        Checker {
            schema,
            report,
            implied,
            intrinsics_reported: false,
            mixed_reported: false,
            suggestions_left: MAX_SUGGESTIONS,
        }
    }

    /// Checks `value` as `shape`; returns its canonical form (None when absent or unusable).
    pub fn check(&mut self, value: &Value, shape: ShapeId, path: &mut Path, is_root: bool) -> Option<Value> {
        if value.is_null() {
            return None; // an explicit null counts as absent, as AWS's own samples use it
        }
        if let Some(name) = intrinsic_name(value) {
            if self.intrinsics_reported {
                return None;
            }
            self.report
                .error(
                    Code::Unresolved,
                    path.to_string(),
                    format!("CloudFormation intrinsic function `{name}` cannot be resolved without a stack; substitute the value"),
                )
                .expected("a literal value")
                .found(compact(value));
            return None;
        }
        let schema = self.schema;
        match &schema.shape(shape).kind {
            Kind::Struct(members) => self.check_struct(value, members, path, is_root),
            Kind::List { item, min, max } => self.check_list(value, *item, *min, *max, path),
            Kind::Map { value: vshape } => {
                let obj = self.expect_object(value, path)?;
                let mut out = Map::with_capacity(obj.len());
                for (k, v) in obj {
                    path.push_key(k);
                    if let Some(c) = self.check(v, *vshape, path, false) {
                        out.insert(k.clone(), c);
                    }
                    path.pop();
                }
                Some(Value::Object(out))
            }
            Kind::String {
                enums,
                min_len,
                max_len,
                pattern,
            } => self.check_string(value, enums, *min_len, *max_len, *pattern, path),
            Kind::Integer { min, max } => self.check_integer(value, *min, *max, path),
            Kind::Double { min, max } => self.check_double(value, *min, *max, path),
            Kind::Boolean => self.check_bool(value, path),
            Kind::Timestamp | Kind::Any => Some(value.clone()),
            Kind::StringOrObject => match value {
                Value::String(_) | Value::Object(_) => Some(value.clone()),
                other => {
                    self.type_error(path, "a string or an object", other);
                    None
                }
            },
        }
    }

    fn expect_object<'v>(&mut self, value: &'v Value, path: &Path) -> Option<&'v Map<String, Value>> {
        match value {
            Value::Object(o) => Some(o),
            other => {
                self.type_error(path, "an object", other);
                None
            }
        }
    }

    fn type_error(&mut self, path: &Path, expected: &str, found: &Value) {
        let hint = placeholder_hint(found);
        self.report
            .error(Code::InvalidType, path.to_string(), format!("wrong type{hint}"))
            .expected(expected)
            .found(show(found));
    }

    /// The member a key names: spelled as this dialect does, or in the other
    /// casing. Casing is decided per JSON object (by its first known key), so
    /// one object mixing the two is an error naming the first odd key.
    fn find_member(
        &mut self,
        members: &'static [Member],
        key: &str,
        path: &Path,
        style: &mut Option<(bool, String)>,
    ) -> Option<&'static Member> {
        let (member, native) = match members.iter().find(|m| m.name == key) {
            Some(m) => (m, true),
            None => (members.iter().find(|m| m.name.eq_ignore_ascii_case(key))?, false),
        };
        match style {
            None => *style = Some((native, key.to_string())),
            Some((object_native, first)) if *object_native != native && !self.mixed_reported => {
                self.mixed_reported = true;
                let casing = |native: bool| match (native, self.schema.dialect) {
                    (true, Dialect::Api) | (false, Dialect::Cfn) => "camelCase (ECS API)",
                    _ => "PascalCase (CloudFormation)",
                };
                self.report
                    .error(
                        Code::MixedCasing,
                        path.key(key).to_string(),
                        format!(
                            "`{key}` is {} but this object is {}, as its key `{first}` shows; one object uses one casing",
                            casing(native),
                            casing(*object_native)
                        ),
                    )
                    .expected(format!(
                        "`{}`",
                        if *object_native == (self.schema.dialect == Dialect::Api) {
                            member.canonical.to_string()
                        } else {
                            upper_first(member.canonical)
                        }
                    ))
                    .found(format!("`{key}`"));
            }
            _ => {}
        }
        Some(member)
    }

    fn check_struct(&mut self, value: &Value, members: &'static [Member], path: &mut Path, is_root: bool) -> Option<Value> {
        let obj = self.expect_object(value, path)?;
        // Sized once: a task of 10 containers builds thousands of these maps.
        let mut out = Map::with_capacity(obj.len());
        let mut style = None;
        for (key, v) in obj {
            let Some(member) = self.find_member(members, key, path, &mut style) else {
                let mut d = self
                    .report
                    .error(Code::UnknownField, path.key(key).to_string(), format!("unknown field `{key}`"));
                let suggestion = if self.suggestions_left > 0 {
                    self.suggestions_left -= 1;
                    did_you_mean(key, members.iter().filter(|m| !m.read_only).map(|m| m.name))
                } else {
                    None
                };
                if let Some(s) = suggestion {
                    d.message = format!("unknown field `{key}`; did you mean `{s}`?");
                    d = d.expected(format!("`{s}`"));
                }
                d.found(format!("`{}`", clip_key(key)));
                continue;
            };
            if member.read_only {
                continue; // filled in by AWS (describe output): accepted and ignored
            }
            if is_root
                && self.implied.contains(&member.canonical)
                && (IGNORED_IMPLIED.contains(&member.canonical) || intrinsic_name(v).is_some())
            {
                // The ECSDeployment supplies these; the user's value plays no part.
                continue;
            }
            path.push_key(key);
            if let Some(c) = self.check(v, member.shape, path, false) {
                out.insert(member.canonical.to_string(), c);
            }
            path.pop();
        }
        for m in members.iter().filter(|m| m.required) {
            let present = obj.iter().any(|(k, v)| k.eq_ignore_ascii_case(m.name) && !v.is_null());
            let implied = is_root && self.implied.contains(&m.canonical);
            if !present && !implied && !moot(obj, m.canonical) {
                self.report
                    .error(
                        Code::Required,
                        path.key(m.name).to_string(),
                        format!("required field `{}` is missing", m.name),
                    )
                    .expected(format!("`{}`", m.name));
            }
        }
        Some(Value::Object(out))
    }

    fn check_list(&mut self, value: &Value, item: ShapeId, min: Option<u32>, max: Option<u32>, path: &mut Path) -> Option<Value> {
        let Value::Array(items) = value else {
            self.type_error(path, "a list", value);
            return None;
        };
        let n = items.len() as u32;
        if min.is_some_and(|m| n < m) || max.is_some_and(|m| n > m) {
            let range = match (min, max) {
                (Some(a), Some(b)) => format!("{a} to {b} items"),
                (Some(a), None) => format!("at least {a} items"),
                (None, Some(b)) => format!("at most {b} items"),
                _ => unreachable!(),
            };
            self.report
                .error(Code::Invalid, path.to_string(), "wrong number of items")
                .expected(range)
                .found(format!("{n} items"));
        }
        let keep_slots = matches!(self.schema.shape(item).kind, Kind::Struct(_));
        let mut out = Vec::with_capacity(items.len());
        for (i, v) in items.iter().enumerate() {
            path.push_index(i);
            if v.is_null() {
                // A null member means "absent"; a null list item means nothing AWS accepts.
                self.report
                    .error(Code::InvalidType, path.to_string(), "a list item cannot be null")
                    .expected(item_kind(self.schema, item))
                    .found("null");
            }
            match self.check(v, item, path, false) {
                Some(c) => out.push(c),
                // Keep indices aligned with the user's list so later paths stay exact.
                None if keep_slots => out.push(Value::Object(Map::new())),
                None => {}
            }
            path.pop();
        }
        Some(Value::Array(out))
    }

    fn check_string(
        &mut self,
        value: &Value,
        enums: &[&str],
        min: Option<u32>,
        max: Option<u32>,
        pattern: Option<&'static str>,
        path: &Path,
    ) -> Option<Value> {
        let s = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => {
                self.converted(path, "a string", value);
                n.to_string()
            }
            Value::Bool(b) => {
                self.converted(path, "a string", value);
                b.to_string()
            }
            other => {
                self.type_error(path, "a string", other);
                return None;
            }
        };
        // Tools that export live definitions (`ecspresso init`, describe-*) write
        // "" for an optional enum they have no value for: unset, as AWS reads it.
        if !enums.is_empty() && s.is_empty() {
            return None;
        }
        // `TCP` for `tcp` (CDK and hand-written CloudFormation): taken as meant, said once.
        if let Some(exact) = enums.iter().find(|e| **e != s && e.eq_ignore_ascii_case(&s)) {
            self.report
                .warning(
                    Code::Converted,
                    path.to_string(),
                    format!("\"{s}\" is taken as \"{exact}\" (AWS spells it so)"),
                )
                .expected(format!("\"{exact}\""))
                .found(show(value));
            return Some(Value::String((*exact).to_string()));
        }
        if !enums.is_empty() && !enums.contains(&s.as_str()) {
            let hint = placeholder_hint(value);
            let mut msg = format!("unsupported value{hint}");
            if let Some(close) = enums
                .iter()
                .find(|e| e.eq_ignore_ascii_case(&s))
                .copied()
                .or_else(|| did_you_mean_value(&s, enums))
            {
                msg = format!("unsupported value; did you mean \"{close}\"?");
            }
            self.report
                .error(Code::NotSupported, path.to_string(), msg)
                .expected(format!(
                    "one of {}",
                    enums.iter().map(|e| format!("\"{e}\"")).collect::<Vec<_>>().join(", ")
                ))
                .found(show(value));
            return None;
        }
        let len = s.chars().count() as u32;
        if min.is_some_and(|m| len < m) || max.is_some_and(|m| len > m) {
            self.report
                .error(Code::Invalid, path.to_string(), "string length out of range")
                .expected(format!(
                    "{} to {} characters",
                    min.unwrap_or(0),
                    max.map_or("any".into(), |m| m.to_string())
                ))
                .found(format!("{len} characters"));
        } else if let Some(p) = pattern {
            if let Some(re) = compiled(p) {
                if !re.is_match(&s) {
                    self.report
                        .error(
                            Code::Invalid,
                            path.to_string(),
                            format!("value does not match the pattern AWS requires{}", placeholder_hint(value)),
                        )
                        .expected(format!("a match for {p}"))
                        .found(show(value));
                }
            }
        }
        Some(Value::String(s))
    }

    fn check_integer(&mut self, value: &Value, min: Option<i64>, max: Option<i64>, path: &Path) -> Option<Value> {
        let n = match value {
            Value::Number(n) => match n
                .as_i64()
                .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9e15).map(|f| f as i64))
            {
                Some(i) => i,
                None => {
                    self.type_error(path, "an integer", value);
                    return None;
                }
            },
            Value::String(s) => match s.parse::<i64>() {
                Ok(i) if i.to_string() == *s => {
                    self.converted(path, "a number", value);
                    i
                }
                _ => {
                    self.type_error(path, "an integer", value);
                    return None;
                }
            },
            other => {
                self.type_error(path, "an integer", other);
                return None;
            }
        };
        if min.is_some_and(|m| n < m) || max.is_some_and(|m| n > m) {
            let range = format!(
                "{} to {}",
                min.map_or("any".into(), |m| m.to_string()),
                max.map_or("any".into(), |m| m.to_string())
            );
            let full_width = min == Some(i32::MIN.into()) && max == Some(i32::MAX.into());
            self.report
                .error(Code::Invalid, path.to_string(), "number out of range")
                .expected(if full_width {
                    format!("a 32-bit integer ({range}), the ECS API's integer")
                } else {
                    range
                })
                .found(n.to_string());
            // Out of range is not a value the rules or the translation may use.
            return None;
        }
        Some(Value::from(n))
    }

    fn check_double(&mut self, value: &Value, min: Option<f64>, max: Option<f64>, path: &Path) -> Option<Value> {
        let f = match value {
            Value::Number(n) => n.as_f64()?,
            Value::String(s) => match s.parse::<f64>() {
                Ok(f) if f.is_finite() => {
                    self.converted(path, "a number", value);
                    f
                }
                _ => {
                    self.type_error(path, "a number", value);
                    return None;
                }
            },
            other => {
                self.type_error(path, "a number", other);
                return None;
            }
        };
        if min.is_some_and(|m| f < m) || max.is_some_and(|m| f > m) {
            self.report
                .error(Code::Invalid, path.to_string(), "number out of range")
                .expected(format!(
                    "{} to {}",
                    min.map_or("any".into(), |m| m.to_string()),
                    max.map_or("any".into(), |m| m.to_string())
                ))
                .found(f.to_string());
        }
        serde_json::Number::from_f64(f).map(Value::Number)
    }

    fn check_bool(&mut self, value: &Value, path: &Path) -> Option<Value> {
        match value {
            Value::Bool(b) => Some(Value::Bool(*b)),
            Value::String(s) if s == "true" || s == "false" => {
                self.converted(path, "a boolean", value);
                Some(Value::Bool(s == "true"))
            }
            other => {
                self.type_error(path, "true or false", other);
                None
            }
        }
    }

    /// A value written as another JSON type but converted exactly. CloudFormation
    /// converts such values itself; the ECS API rejects them, so warn there.
    fn converted(&mut self, path: &Path, expected: &str, found: &Value) {
        if self.schema.dialect == Dialect::Api {
            self.report
                .warning(
                    Code::Converted,
                    path.to_string(),
                    format!("the ECS API expects {expected}; the value was converted"),
                )
                .expected(expected)
                .found(show(found));
        }
    }
}

/// Required members that say nothing when another member turns the feature
/// off: exported services carry `alarms: {enable: false, rollback: false}`
/// with no alarm names, which AWS accepts.
const MOOT_WHEN_OFF: &[(&str, &str)] = &[("alarmNames", "enable")];

fn moot(obj: &Map<String, Value>, canonical: &str) -> bool {
    MOOT_WHEN_OFF.iter().any(|(member, switch)| {
        *member == canonical
            && obj
                .iter()
                .any(|(k, v)| k.eq_ignore_ascii_case(switch) && (v == &Value::Bool(false) || v == "false"))
    })
}

/// What an item of a list is, for messages.
fn item_kind(schema: &Schema, item: ShapeId) -> &'static str {
    match schema.shape(item).kind {
        Kind::Struct(_) | Kind::Map { .. } => "an object",
        Kind::List { .. } => "a list",
        Kind::String { .. } => "a string",
        Kind::Integer { .. } | Kind::Double { .. } => "a number",
        Kind::Boolean => "a boolean",
        _ => "a value",
    }
}

/// Compact JSON, shortened for messages.
fn compact(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 100 {
        s.chars().take(97).collect::<String>() + "..."
    } else {
        s
    }
}

pub fn upper_first(s: &str) -> String {
    let mut c = s.chars();
    c.next().map_or(String::new(), |f| f.to_ascii_uppercase().to_string() + c.as_str())
}

/// Explains strings that are unrendered templates (`{{ .Env.X }}`, `${var}`, `<x>`, `$$$X$$$`).
fn placeholder_hint(value: &Value) -> &'static str {
    let Value::String(s) = value else { return "" };
    let looks = (s.contains("{{") && s.contains("}}"))
        || (s.contains("${") && s.contains('}'))
        || (s.starts_with('<') && s.ends_with('>'))
        || s.contains("$$$");
    if looks {
        " (this looks like an unrendered template placeholder: render the template before applying)"
    } else {
        ""
    }
}

pub use crate::spelling::did_you_mean;
use crate::spelling::did_you_mean_value;

/// A key as a diagnostic quotes it: the path already holds it whole.
fn clip_key(key: &str) -> std::borrow::Cow<'_, str> {
    if key.len() <= 80 {
        return key.into();
    }
    let mut end = 77;
    while !key.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &key[..end]).into()
}

/// AWS patterns compiled once; a pattern this regex engine cannot read is skipped.
fn compiled(pattern: &'static str) -> Option<regex::Regex> {
    static CACHE: LazyLock<Mutex<HashMap<&'static str, Option<regex::Regex>>>> = LazyLock::new(Default::default);
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    cache
        .entry(pattern)
        .or_insert_with(|| regex::Regex::new(&format!("^(?:{pattern})$")).ok())
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_model_pattern_compiles() {
        for schema in [&crate::ecs::schema::API, &crate::ecs::schema::CFN] {
            for shape in schema.shapes {
                if let Kind::String { pattern: Some(p), .. } = shape.kind {
                    assert!(compiled(p).is_some(), "pattern of {} does not compile: {p}", shape.name);
                }
            }
        }
    }
}
