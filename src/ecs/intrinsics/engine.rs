//! The evaluation itself. Values are walked in two modes: *property* mode for
//! the definition (tracking where each evaluated value was written, so
//! diagnostics point there) and *argument* mode inside intrinsic arguments.

use super::{intrinsic_name, Missing, Provenance, Section, Stack, FUNCTIONS, MAX_DEPTH, MAX_OUTPUT_BYTES};
use crate::diag::{show, Code, Report};
use crate::path::Path;
use crate::spelling::did_you_mean;
use base64::Engine as _;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// What a value evaluates to.
#[derive(Debug, Clone, PartialEq)]
enum Out {
    Val(Value),
    /// `AWS::NoValue`: the property (or list item) is removed.
    NoValue,
    /// Cannot be resolved: a missing name, or an error already reported.
    Hole,
}

/// One definition body, evaluated.
#[derive(Debug, Clone, Default)]
pub struct Evaluated {
    pub value: Value,
    pub provenance: Provenance,
    /// Written paths of intrinsics left unresolved (already reported).
    pub holes: Vec<String>,
}

/// Evaluates bodies against one stack; collects missing names across them
/// (a Task and its Service) and caches conditions.
pub struct Evaluator<'s> {
    stack: &'s Stack,
    report: Report,
    missing: Missing,
    conditions: HashMap<String, Option<bool>>,
    visiting: Vec<String>,
    budget: usize,
    depth: usize,
    depth_reported: bool,
    budget_reported: bool,
    /// Per body.
    provenance: Provenance,
    holes: Vec<String>,
    /// Supplied values read since the current property-level intrinsic began.
    used: BTreeSet<String>,
    /// Where the value being computed goes (for the list of uses of missing names).
    site: String,
}

impl<'s> Evaluator<'s> {
    pub fn new(stack: &'s Stack) -> Self {
        Evaluator {
            stack,
            report: Report::default(),
            missing: Missing::default(),
            conditions: HashMap::new(),
            visiting: Vec::new(),
            budget: MAX_OUTPUT_BYTES,
            depth: 0,
            depth_reported: false,
            budget_reported: false,
            provenance: Provenance::default(),
            holes: Vec::new(),
            used: BTreeSet::new(),
            site: String::new(),
        }
    }

    /// The names that could not be resolved so far.
    pub fn missing(&self) -> &Missing {
        &self.missing
    }

    pub fn into_missing(self) -> Missing {
        self.missing
    }

    /// Evaluates a definition body written at `base`. Root members named in
    /// `lenient` (case-insensitively) are evaluated when they can be and left as
    /// written otherwise, silently: values the ECSDeployment supplies itself.
    pub fn body(&mut self, body: &Value, base: &Path, lenient: &[&str], report: &mut Report) -> Evaluated {
        self.provenance = Provenance::default();
        self.holes.clear();
        let value = match body {
            Value::Object(obj) if intrinsic_name(body).is_none() => {
                let mut out = Map::new();
                for (k, v) in obj {
                    let at = base.key(k);
                    if lenient.iter().any(|l| l.eq_ignore_ascii_case(k)) {
                        let (missing, errors, holes) = (self.missing.clone(), self.report.diagnostics.len(), self.holes.len());
                        match self.prop(v, &at, &at) {
                            Out::Val(x) if self.report.diagnostics.len() == errors && self.missing == missing => {
                                out.insert(k.clone(), x);
                            }
                            Out::NoValue => {}
                            _ => {
                                self.missing = missing;
                                self.report.diagnostics.truncate(errors);
                                self.holes.truncate(holes);
                                out.insert(k.clone(), v.clone());
                            }
                        }
                        continue;
                    }
                    match self.prop(v, &at, &at) {
                        Out::Val(x) => {
                            out.insert(k.clone(), x);
                        }
                        Out::NoValue => {}
                        Out::Hole => {
                            out.insert(k.clone(), v.clone());
                        }
                    }
                }
                Value::Object(out)
            }
            _ => match self.prop(body, base, base) {
                Out::Val(v) => v,
                Out::NoValue => Value::Object(Map::new()),
                Out::Hole => body.clone(),
            },
        };
        report.diagnostics.append(&mut self.report.diagnostics);
        Evaluated {
            value,
            provenance: std::mem::take(&mut self.provenance),
            holes: std::mem::take(&mut self.holes),
        }
    }

    /// A CloudFormation resource's own `Condition`: whether the resource exists.
    /// None when it cannot be decided (reported, or listed as missing).
    pub fn resource_condition(&mut self, condition: &Value, at: &Path, report: &mut Report) -> Option<bool> {
        self.site = at.to_string();
        let result = match condition.as_str() {
            Some(name) => self.condition(name),
            None => {
                self.error(
                    Code::InvalidType,
                    at,
                    "a resource's Condition names a condition",
                    "a condition name",
                    show(condition),
                );
                None
            }
        };
        report.diagnostics.append(&mut self.report.diagnostics);
        result
    }

    fn error(&mut self, code: Code, at: &Path, message: impl Into<String>, expected: impl Into<String>, found: impl Into<String>) {
        self.report.error(code, at.to_string(), message).expected(expected).found(found);
    }

    fn shape(&mut self, at: &Path, function: &str, expected: &str, found: &Value) -> Out {
        self.error(
            Code::Invalid,
            at,
            format!("wrong arguments for `{function}`"),
            expected,
            compact(found),
        );
        Out::Hole
    }

    fn enter(&mut self, at: &Path) -> bool {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            if !self.depth_reported {
                self.depth_reported = true;
                self.error(
                    Code::Invalid,
                    at,
                    format!("values and intrinsic functions nest more than {MAX_DEPTH} levels deep"),
                    format!("at most {MAX_DEPTH} levels"),
                    "deeper nesting",
                );
            }
            return false;
        }
        true
    }

    /// Counts what evaluation produces against [`MAX_OUTPUT_BYTES`].
    fn charge(&mut self, v: &Value, at: &Path) -> bool {
        let mut size = 0usize;
        let mut stack = vec![v];
        while let Some(v) = stack.pop() {
            size += 8;
            match v {
                Value::String(s) => size += s.len(),
                Value::Object(o) => {
                    size += o.keys().map(String::len).sum::<usize>();
                    stack.extend(o.values());
                }
                Value::Array(a) => stack.extend(a.iter()),
                _ => {}
            }
            if size > self.budget {
                break;
            }
        }
        self.charge_bytes(size, at)
    }

    fn charge_bytes(&mut self, size: usize, at: &Path) -> bool {
        if size > self.budget {
            self.budget = 0;
            if !self.budget_reported {
                self.budget_reported = true;
                self.error(
                    Code::Invalid,
                    at,
                    format!(
                        "evaluating the intrinsic functions would produce more than {} KiB",
                        MAX_OUTPUT_BYTES / 1024
                    ),
                    format!("at most {} KiB of values", MAX_OUTPUT_BYTES / 1024),
                    "more",
                );
            }
            return false;
        }
        self.budget -= size;
        true
    }

    /// Property mode: `eval` is where the value lands in the evaluated body, `written` where the user wrote it.
    fn prop(&mut self, v: &Value, eval: &Path, written: &Path) -> Out {
        if !self.enter(written) {
            self.depth -= 1;
            return Out::Hole;
        }
        let out = match v {
            Value::Object(obj) if intrinsic_name(v).is_some() => {
                let (name, arg) = obj.iter().next().expect("one key");
                let out = if name == "Fn::If" {
                    self.site = written.to_string();
                    self.fn_if(arg, written, Some(eval))
                } else {
                    self.used.clear();
                    self.site = written.to_string();
                    let out = self.intrinsic(name, arg, written);
                    if matches!(out, Out::Val(_)) && !self.used.is_empty() {
                        let from = self.used.iter().cloned().collect::<Vec<_>>().join(", ");
                        self.provenance.notes.insert(written.to_string(), format!("from {from}"));
                    }
                    out
                };
                if out == Out::Hole {
                    self.holes.push(written.to_string());
                }
                out
            }
            Value::Object(obj) => {
                let mut out = Map::new();
                for (k, c) in obj {
                    match self.prop(c, &eval.key(k), &written.key(k)) {
                        Out::Val(x) => {
                            out.insert(k.clone(), x);
                        }
                        Out::NoValue => {}
                        Out::Hole => {
                            out.insert(k.clone(), c.clone());
                        }
                    }
                }
                self.charge_bytes(8 + obj.keys().map(String::len).sum::<usize>(), written);
                Out::Val(Value::Object(out))
            }
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, c) in items.iter().enumerate() {
                    let e = eval.index(out.len());
                    let w = written.index(i);
                    let shifted = out.len() != i;
                    if shifted {
                        self.provenance.moved.insert(e.to_string(), w.to_string());
                    }
                    match self.prop(c, &e, &w) {
                        Out::Val(x) => out.push(x),
                        Out::NoValue => self.forget(&e),
                        Out::Hole => out.push(c.clone()),
                    }
                }
                self.charge_bytes(8, written);
                Out::Val(Value::Array(out))
            }
            scalar => {
                if self.charge(scalar, written) {
                    Out::Val(scalar.clone())
                } else {
                    Out::Hole
                }
            }
        };
        self.depth -= 1;
        out
    }

    /// A list item was removed: its evaluated place is taken by the next item.
    fn forget(&mut self, eval: &Path) {
        let key = eval.to_string();
        let stale: Vec<String> = self
            .provenance
            .moved
            .range(key.clone()..)
            .take_while(|(k, _)| k.starts_with(&key))
            .filter(|(k, _)| k.len() == key.len() || k[key.len()..].starts_with(['.', '[']))
            .map(|(k, _)| k.clone())
            .collect();
        for k in stale {
            self.provenance.moved.remove(&k);
        }
    }

    /// Argument mode: the value of an intrinsic's argument.
    fn arg(&mut self, v: &Value, at: &Path) -> Out {
        if !self.enter(at) {
            self.depth -= 1;
            return Out::Hole;
        }
        let out = match v {
            Value::Object(obj) if intrinsic_name(v).is_some() => {
                let (name, arg) = obj.iter().next().expect("one key");
                if name == "Fn::If" {
                    self.fn_if(arg, at, None)
                } else {
                    self.intrinsic(name, arg, at)
                }
            }
            Value::Object(obj) => {
                let mut out = Map::new();
                let mut hole = false;
                for (k, c) in obj {
                    match self.arg(c, &at.key(k)) {
                        Out::Val(x) => {
                            out.insert(k.clone(), x);
                        }
                        Out::NoValue => {}
                        Out::Hole => hole = true,
                    }
                }
                if hole {
                    Out::Hole
                } else {
                    Out::Val(Value::Object(out))
                }
            }
            Value::Array(items) => {
                let mut out = Vec::new();
                let mut hole = false;
                for (i, c) in items.iter().enumerate() {
                    match self.arg(c, &at.index(i)) {
                        Out::Val(x) => out.push(x),
                        Out::NoValue => {}
                        Out::Hole => hole = true,
                    }
                }
                if hole {
                    Out::Hole
                } else {
                    Out::Val(Value::Array(out))
                }
            }
            scalar => {
                if self.charge(scalar, at) {
                    Out::Val(scalar.clone())
                } else {
                    Out::Hole
                }
            }
        };
        self.depth -= 1;
        out
    }

    fn intrinsic(&mut self, name: &str, arg: &Value, at: &Path) -> Out {
        let inner = at.key(name);
        match name {
            "Ref" => match arg.as_str() {
                Some("AWS::NoValue") => Out::NoValue,
                Some(n) => self.parameter(n, at),
                None => self.shape(at, name, "a parameter, resource or pseudo parameter name", arg),
            },
            "Fn::GetAtt" => self.fn_get_att(arg, at, &inner),
            "Fn::Sub" => self.fn_sub(arg, at, &inner),
            "Fn::Join" => self.fn_join(arg, at, &inner),
            "Fn::Select" => self.fn_select(arg, at, &inner),
            "Fn::Split" => self.fn_split(arg, at, &inner),
            "Fn::Base64" => match self.arg(arg, &inner) {
                Out::Val(v) => match scalar_string(&v) {
                    // Four bytes out for every three in, charged before encoding.
                    Some(s) if self.charge_bytes(8 + s.len().div_ceil(3).saturating_mul(4), at) => {
                        Out::Val(Value::String(base64::engine::general_purpose::STANDARD.encode(s)))
                    }
                    Some(_) => Out::Hole,
                    None => self.shape(at, name, "a string", &v),
                },
                other => other,
            },
            "Fn::ImportValue" => match self.arg(arg, &inner) {
                Out::Val(v) => match scalar_string(&v) {
                    Some(export) => self.parameter(&export, at),
                    None => self.shape(at, name, "an export name (a string)", &v),
                },
                Out::NoValue => self.shape(at, name, "an export name (a string)", arg),
                Out::Hole => Out::Hole,
            },
            "Fn::FindInMap" => self.fn_find_in_map(arg, at, &inner),
            "Fn::GetAZs" => self.fn_get_azs(arg, at, &inner),
            "Fn::Cidr" => self.fn_cidr(arg, at, &inner),
            "Fn::Length" => match self.arg(arg, &inner) {
                Out::Val(Value::Array(items)) => Out::Val(Value::from(items.len())),
                Out::Val(other) => self.shape(at, name, "a list", &other),
                other => other,
            },
            "Fn::ToJsonString" => match self.arg(arg, &inner) {
                Out::Val(v) => {
                    // Written into a buffer that stops at the budget (escapes can
                    // make JSON text several times larger than the value).
                    let mut out = Bounded::new(self.budget);
                    match serde_json::to_writer(&mut out, &v) {
                        Ok(()) if self.charge_bytes(8 + out.bytes.len(), at) => {
                            Out::Val(Value::String(String::from_utf8(out.bytes).unwrap_or_default()))
                        }
                        _ => {
                            self.charge_bytes(usize::MAX, at);
                            Out::Hole
                        }
                    }
                }
                other => other,
            },
            "Fn::If" => self.fn_if(arg, at, None),
            "Fn::Equals" | "Fn::And" | "Fn::Or" | "Fn::Not" => {
                self.error(
                    Code::Invalid,
                    at,
                    format!(
                        "`{name}` is a condition function: define a condition with it in {} and use Fn::If",
                        self.section(Section::Conditions)
                    ),
                    "a value, or Fn::If with a condition name",
                    format!("`{name}`"),
                );
                Out::Hole
            }
            unknown => {
                let mut message = format!("unsupported intrinsic function `{unknown}`");
                if let Some(s) = did_you_mean(unknown, FUNCTIONS.iter().copied()) {
                    message = format!("unsupported intrinsic function `{unknown}`; did you mean `{s}`?");
                }
                self.error(
                    Code::NotSupported,
                    at,
                    message,
                    format!("one of {}", FUNCTIONS.join(", ")),
                    format!("`{unknown}`"),
                );
                Out::Hole
            }
        }
    }

    fn section(&self, s: Section) -> String {
        self.stack.section(s).to_string()
    }

    fn produce(&mut self, v: Value, at: &Path) -> Out {
        if self.charge(&v, at) {
            Out::Val(v)
        } else {
            Out::Hole
        }
    }

    /// A copy of a supplied value, charged before it is made.
    fn produce_copy(&mut self, v: &Value, at: &Path) -> Out {
        if self.charge(v, at) {
            Out::Val(v.clone())
        } else {
            Out::Hole
        }
    }

    /// A supplied value: parameter, resource id, `Resource.Attribute`, export, pseudo parameter.
    fn parameter(&mut self, name: &str, at: &Path) -> Out {
        if let Some(v) = self.stack.parameters.get(name) {
            self.used.insert(self.stack.source(name));
            return self.produce_copy(v, at);
        }
        let region = self.stack.parameters.get("AWS::Region").and_then(Value::as_str).unwrap_or("");
        let default = match name {
            "AWS::Partition" if region.starts_with("cn-") => Some("aws-cn"),
            "AWS::Partition" if region.starts_with("us-gov-") => Some("aws-us-gov"),
            "AWS::Partition" => Some("aws"),
            "AWS::URLSuffix" if region.starts_with("cn-") => Some("amazonaws.com.cn"),
            "AWS::URLSuffix" => Some("amazonaws.com"),
            _ => None,
        };
        if let Some(d) = default {
            return self.produce(Value::String(d.into()), at);
        }
        self.missing.add(Section::Parameters, vec![name.to_string()], self.site.clone());
        Out::Hole
    }

    fn fn_get_att(&mut self, arg: &Value, at: &Path, inner: &Path) -> Out {
        let key = match arg {
            Value::String(s) if s.contains('.') => s.clone(),
            Value::Array(items) if items.len() == 2 && items[0].is_string() => {
                let resource = items[0].as_str().unwrap_or_default();
                match self.arg(&items[1], &inner.index(1)) {
                    Out::Val(Value::String(attr)) => format!("{resource}.{attr}"),
                    Out::Hole => return Out::Hole,
                    _ => return self.shape(at, "Fn::GetAtt", "[resource name, attribute name]", arg),
                }
            }
            _ => return self.shape(at, "Fn::GetAtt", "[resource name, attribute name] or \"Resource.Attribute\"", arg),
        };
        self.parameter(&key, at)
    }

    fn fn_sub(&mut self, arg: &Value, at: &Path, inner: &Path) -> Out {
        let (template, vars) = match arg {
            Value::String(s) => (s.as_str(), None),
            Value::Array(items) if items.len() == 2 && items[0].is_string() && items[1].is_object() => {
                (items[0].as_str().unwrap_or_default(), items[1].as_object())
            }
            _ => return self.shape(at, "Fn::Sub", "a template string, or [template string, {name: value}]", arg),
        };
        let mut values: BTreeMap<&str, Out> = BTreeMap::new();
        for (k, v) in vars.into_iter().flatten() {
            let out = self.arg(v, &inner.index(1).key(k));
            values.insert(k.as_str(), out);
        }
        let mut out = String::new();
        let mut rest = template;
        let mut hole = false;
        // Every piece is charged before it is appended: one large variable
        // used many times must not build a huge string first.
        macro_rules! append {
            ($piece:expr) => {{
                let piece: &str = $piece;
                if !self.charge_bytes(piece.len(), at) {
                    return Out::Hole;
                }
                out.push_str(piece);
            }};
        }
        if !self.charge_bytes(8, at) {
            return Out::Hole;
        }
        while let Some(i) = rest.find("${") {
            append!(&rest[..i]);
            let after = &rest[i + 2..];
            if let Some(literal) = after.strip_prefix('!') {
                append!("${");
                rest = literal;
                continue;
            }
            let Some(end) = after.find('}') else {
                append!(&rest[i..]);
                rest = "";
                break;
            };
            let name = after[..end].trim();
            rest = &after[end + 1..];
            let looked_up;
            let value = match values.get(name) {
                Some(v) => v,
                None if name == "AWS::NoValue" => &Out::NoValue,
                None => {
                    looked_up = self.parameter(name, at);
                    &looked_up
                }
            };
            match value {
                Out::Val(v) => match scalar_str(v) {
                    Some(s) => append!(&s),
                    None => {
                        self.error(
                            Code::Invalid,
                            at,
                            format!("`${{{name}}}` in Fn::Sub is not a string (a list? join it with Fn::Join)"),
                            "a string, a number or a boolean",
                            show(v),
                        );
                        hole = true;
                    }
                },
                Out::NoValue => {
                    self.shape(at, "Fn::Sub", "variables with values (AWS::NoValue is not one)", arg);
                    hole = true;
                }
                Out::Hole => hole = true,
            }
        }
        append!(rest);
        if hole {
            return Out::Hole;
        }
        Out::Val(Value::String(out))
    }

    fn fn_join(&mut self, arg: &Value, at: &Path, inner: &Path) -> Out {
        let Some([Value::String(delim), list]) = arg.as_array().map(Vec::as_slice) else {
            return self.shape(at, "Fn::Join", "[delimiter string, list of values]", arg);
        };
        match self.arg(list, &inner.index(1)) {
            Out::Val(Value::Array(items)) => {
                let mut parts = Vec::with_capacity(items.len());
                for item in &items {
                    match scalar_string(item) {
                        Some(s) => parts.push(s),
                        None => return self.shape(at, "Fn::Join", "a list of strings", item),
                    }
                }
                // The joined length, charged before joining: a large delimiter
                // between many empty items is large output from small input.
                let joined = parts
                    .iter()
                    .map(String::len)
                    .fold(delim.len().saturating_mul(parts.len().saturating_sub(1)), usize::saturating_add);
                if !self.charge_bytes(joined.saturating_add(8), at) {
                    return Out::Hole;
                }
                Out::Val(Value::String(parts.join(delim)))
            }
            Out::Val(other) => self.shape(at, "Fn::Join", "[delimiter string, list of values]", &other),
            Out::NoValue => self.shape(at, "Fn::Join", "[delimiter string, list of values]", arg),
            Out::Hole => Out::Hole,
        }
    }

    fn fn_select(&mut self, arg: &Value, at: &Path, inner: &Path) -> Out {
        let Some([index, list]) = arg.as_array().map(Vec::as_slice) else {
            return self.shape(at, "Fn::Select", "[index, list]", arg);
        };
        let index = self.arg(index, &inner.index(0));
        let list = self.arg(list, &inner.index(1));
        let (Out::Val(index), Out::Val(list)) = (index, list) else {
            return Out::Hole;
        };
        let Some(i) = scalar_string(&index).and_then(|s| s.parse::<usize>().ok()) else {
            return self.shape(at, "Fn::Select", "a non-negative integer index", &index);
        };
        let Value::Array(items) = list else {
            return self.shape(at, "Fn::Select", "[index, list]: the second argument must be a list", &list);
        };
        match items.get(i) {
            Some(v) => Out::Val(v.clone()),
            None => {
                self.error(
                    Code::Invalid,
                    at,
                    "Fn::Select index out of range",
                    format!("an index below {}", items.len()),
                    i.to_string(),
                );
                Out::Hole
            }
        }
    }

    fn fn_split(&mut self, arg: &Value, at: &Path, inner: &Path) -> Out {
        let Some([Value::String(delim), source]) = arg.as_array().map(Vec::as_slice) else {
            return self.shape(at, "Fn::Split", "[delimiter string, string]", arg);
        };
        if delim.is_empty() {
            return self.shape(at, "Fn::Split", "a non-empty delimiter", arg);
        }
        match self.arg(source, &inner.index(1)) {
            Out::Val(v) => match scalar_string(&v) {
                Some(s) => {
                    // Counted before the list is built: many short pieces cost more than their bytes.
                    let pieces = s.matches(delim.as_str()).count() + 1;
                    if !self.charge_bytes(pieces.saturating_mul(16).saturating_add(s.len()), at) {
                        return Out::Hole;
                    }
                    Out::Val(Value::Array(
                        s.split(delim.as_str()).map(|p| Value::String(p.to_string())).collect(),
                    ))
                }
                None => self.shape(at, "Fn::Split", "a string to split", &v),
            },
            Out::NoValue => self.shape(at, "Fn::Split", "a string to split", arg),
            Out::Hole => Out::Hole,
        }
    }

    fn fn_find_in_map(&mut self, arg: &Value, at: &Path, inner: &Path) -> Out {
        let items = match arg.as_array() {
            Some(items) if items.len() == 3 || items.len() == 4 => items,
            _ => {
                return self.shape(
                    at,
                    "Fn::FindInMap",
                    "[map name, top-level key, second-level key] (and {DefaultValue: ...})",
                    arg,
                )
            }
        };
        let mut keys = Vec::new();
        let mut hole = false;
        for (i, k) in items.iter().take(3).enumerate() {
            match self.arg(k, &inner.index(i)) {
                Out::Val(v) => match scalar_string(&v) {
                    Some(s) => keys.push(s),
                    None => return self.shape(at, "Fn::FindInMap", "string keys", &v),
                },
                Out::NoValue => return self.shape(at, "Fn::FindInMap", "string keys", k),
                Out::Hole => hole = true,
            }
        }
        if hole {
            return Out::Hole;
        }
        let found = self
            .stack
            .mappings
            .get(&keys[0])
            .and_then(|m| m.get(&keys[1]))
            .and_then(|m| m.get(&keys[2]));
        if let Some(v) = found {
            let mut source = self.stack.section(Section::Mappings);
            for k in &keys {
                source.push_key(k);
            }
            self.used.insert(source.to_string());
            return self.produce_copy(v, at);
        }
        if let Some(options) = items.get(3) {
            return match options.as_object().and_then(|o| o.get("DefaultValue")) {
                Some(d) => self.arg(d, &inner.index(3).key("DefaultValue")),
                None => self.shape(at, "Fn::FindInMap", "{\"DefaultValue\": value} as the fourth argument", options),
            };
        }
        self.missing.add(Section::Mappings, keys, self.site.clone());
        Out::Hole
    }

    fn fn_get_azs(&mut self, arg: &Value, at: &Path, inner: &Path) -> Out {
        let region = match self.arg(arg, &inner.clone()) {
            Out::Val(v) => match scalar_string(&v) {
                Some(r) => r,
                None => return self.shape(at, "Fn::GetAZs", "a region name, or \"\" for the stack's region", &v),
            },
            Out::NoValue => String::new(),
            Out::Hole => return Out::Hole,
        };
        let specific = format!("Fn::GetAZs.{region}");
        let name = if !region.is_empty() && self.stack.parameters.contains_key(&specific) {
            specific
        } else {
            "Fn::GetAZs".to_string()
        };
        match self.parameter(&name, at) {
            Out::Val(Value::Array(azs)) => Out::Val(Value::Array(azs)),
            Out::Val(other) => self.shape(
                at,
                "Fn::GetAZs",
                "a list of availability zones in the parameter `Fn::GetAZs`",
                &other,
            ),
            other => other,
        }
    }

    fn fn_cidr(&mut self, arg: &Value, at: &Path, inner: &Path) -> Out {
        const EXPECTED: &str = "[IPv4 CIDR block, count (1 to 256), host bits per subnet (1 to 32)]";
        let Some(items) = arg.as_array().filter(|a| a.len() == 3) else {
            return self.shape(at, "Fn::Cidr", EXPECTED, arg);
        };
        let mut parts = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match self.arg(item, &inner.index(i)) {
                Out::Val(v) => match scalar_string(&v) {
                    Some(s) => parts.push(s),
                    None => return self.shape(at, "Fn::Cidr", EXPECTED, &v),
                },
                Out::NoValue => return self.shape(at, "Fn::Cidr", EXPECTED, item),
                Out::Hole => return Out::Hole,
            }
        }
        match cidr(&parts[0], &parts[1], &parts[2]) {
            Some(blocks) => self.produce(Value::Array(blocks.into_iter().map(Value::String).collect()), at),
            None => self.shape(at, "Fn::Cidr", EXPECTED, arg),
        }
    }

    /// `Fn::If`: in property mode (`eval` given) the chosen branch is walked as
    /// part of the definition, written at `at["Fn::If"][1 or 2]`.
    fn fn_if(&mut self, arg: &Value, at: &Path, eval: Option<&Path>) -> Out {
        let Some([Value::String(condition), yes, no]) = arg.as_array().map(Vec::as_slice) else {
            return self.shape(at, "Fn::If", "[condition name, value if true, value if false]", arg);
        };
        let inner = at.key("Fn::If");
        let Some(holds) = self.condition(condition) else {
            return Out::Hole;
        };
        let (i, branch) = if holds { (1, yes) } else { (2, no) };
        let written = inner.index(i);
        match eval {
            Some(eval) => {
                self.provenance.moved.insert(eval.to_string(), written.to_string());
                self.prop(branch, eval, &written)
            }
            None => self.arg(branch, &written),
        }
    }

    /// A named condition: supplied as a boolean or evaluated from its expression.
    fn condition(&mut self, name: &str) -> Option<bool> {
        if let Some(known) = self.conditions.get(name) {
            if known.is_none() && !self.stack.conditions.contains_key(name) {
                self.missing.add(Section::Conditions, vec![name.to_string()], self.site.clone());
            }
            return *known;
        }
        let defined_at = self.stack.section(Section::Conditions).key(name);
        if let Some(start) = self.visiting.iter().position(|n| n == name) {
            let mut cycle: Vec<&str> = self.visiting[start..].iter().map(String::as_str).collect();
            cycle.push(name);
            let cycle = cycle.join(" -> ");
            self.error(
                Code::Invalid,
                &defined_at,
                format!("conditions refer to each other in a cycle: {cycle}"),
                "conditions that do not depend on themselves",
                cycle.clone(),
            );
            self.conditions.insert(name.to_string(), None);
            return None;
        }
        let Some(expr) = self.stack.conditions.get(name) else {
            self.missing.add(Section::Conditions, vec![name.to_string()], self.site.clone());
            self.conditions.insert(name.to_string(), None);
            return None;
        };
        self.visiting.push(name.to_string());
        let site = std::mem::replace(&mut self.site, defined_at.to_string());
        let result = self.condition_expr(expr, &defined_at);
        self.site = site;
        self.visiting.pop();
        self.conditions.insert(name.to_string(), result);
        result
    }

    fn condition_expr(&mut self, v: &Value, at: &Path) -> Option<bool> {
        const EXPECTED: &str = "true, false, Fn::Equals, Fn::And, Fn::Or, Fn::Not or {\"Condition\": name}";
        if !self.enter(at) {
            self.depth -= 1;
            return None;
        }
        let result = match v {
            Value::Bool(b) => Some(*b),
            Value::String(s) if s == "true" || s == "false" => Some(s == "true"),
            Value::Object(o) if o.len() == 1 => {
                let (name, arg) = o.iter().next().expect("one key");
                let inner = at.key(name);
                match (name.as_str(), arg) {
                    ("Condition", Value::String(other)) => self.condition(other),
                    ("Fn::Equals", Value::Array(items)) if items.len() == 2 => {
                        let a = self.arg(&items[0], &inner.index(0));
                        let b = self.arg(&items[1], &inner.index(1));
                        match (a, b) {
                            (Out::Hole, _) | (_, Out::Hole) => None,
                            (a, b) => Some(comparable(a) == comparable(b)),
                        }
                    }
                    ("Fn::And" | "Fn::Or", Value::Array(items)) if (2..=10).contains(&items.len()) => {
                        let values: Vec<Option<bool>> = items
                            .iter()
                            .enumerate()
                            .map(|(i, c)| self.condition_expr(c, &inner.index(i)))
                            .collect();
                        let decisive = name == "Fn::Or";
                        if values.contains(&Some(decisive)) {
                            Some(decisive)
                        } else if values.contains(&None) {
                            None
                        } else {
                            Some(!decisive)
                        }
                    }
                    ("Fn::Not", Value::Array(items)) if items.len() == 1 => self.condition_expr(&items[0], &inner.index(0)).map(|b| !b),
                    _ => {
                        self.error(Code::Invalid, at, format!("wrong condition `{name}`"), EXPECTED, compact(v));
                        None
                    }
                }
            }
            other => {
                self.error(Code::Invalid, at, "not a condition", EXPECTED, show(other));
                None
            }
        };
        self.depth -= 1;
        result
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

/// Strings, numbers and booleans as CloudFormation strings.
/// [`scalar_string`] without copying a string.
fn scalar_str(v: &Value) -> Option<std::borrow::Cow<'_, str>> {
    match v {
        Value::String(s) => Some(std::borrow::Cow::Borrowed(s)),
        other => scalar_string(other).map(std::borrow::Cow::Owned),
    }
}

fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A writer that refuses to grow past a limit.
struct Bounded {
    bytes: Vec<u8>,
    limit: usize,
}

impl Bounded {
    fn new(limit: usize) -> Self {
        Bounded { bytes: Vec::new(), limit }
    }
}

impl std::io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + buf.len() > self.limit {
            return Err(std::io::Error::other("over the evaluation budget"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Fn::Equals compares values as CloudFormation strings.
fn comparable(o: Out) -> Value {
    match o {
        Out::Val(v) => scalar_string(&v).map_or(v, Value::String),
        _ => Value::String(String::new()),
    }
}

/// `Fn::Cidr` for IPv4: `count` consecutive blocks with `bits` host bits each.
fn cidr(block: &str, count: &str, bits: &str) -> Option<Vec<String>> {
    let (ip, prefix) = block.split_once('/')?;
    let ip: std::net::Ipv4Addr = ip.parse().ok()?;
    let prefix: u32 = prefix.parse().ok().filter(|p| *p <= 32)?;
    let count: u32 = count.parse().ok().filter(|c| (1..=256).contains(c))?;
    let bits: u32 = bits.parse().ok().filter(|b| (1..=32).contains(b))?;
    let new_prefix = 32 - bits;
    if new_prefix < prefix || u64::from(count) > 1u64 << (new_prefix - prefix) {
        return None;
    }
    let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
    let network = u32::from(ip) & mask;
    let size = 1u64 << bits;
    Some(
        (0..u64::from(count))
            .map(|i| {
                let start = (u64::from(network) + i * size) as u32;
                format!("{}/{new_prefix}", std::net::Ipv4Addr::from(start))
            })
            .collect(),
    )
}
