//! Selectors: a place in the canonical task or service, as policy field
//! rules name it (`task.containerDefinitions[*].logConfiguration`), checked
//! against the AWS models when the policy is read.

use crate::ecs::schema::{Kind, Schema, ShapeId, API, CFN};
use crate::path::Seg;
use crate::spelling::did_you_mean;
use serde::Deserialize;
use serde_json::Value;
use std::fmt;

/// A place in the canonical task or service: `task.containerDefinitions[*].logConfiguration`.
/// `[*]` is every item of a list, `[N]` one item, `["a.b"]` a map key with dots.
/// Checked against the AWS models when the policy is read, so a typo is an error.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Selector {
    text: String,
    pub root: Root,
    pub segs: Vec<Step>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    Task,
    Service,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
    Each,
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl TryFrom<String> for Selector {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        let after = |root: &str| text.strip_prefix(root).filter(|r| r.starts_with(['.', '[']));
        let (root, mut rest) = if let Some(r) = after("task") {
            (Root::Task, r)
        } else if let Some(r) = after("service") {
            (Root::Service, r)
        } else {
            return Err(format!("selector `{text}` must start with `task.` or `service.`"));
        };
        let mut segs = Vec::new();
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix('.') {
                let end = r.find(['.', '[']).unwrap_or(r.len());
                let key = &r[..end];
                if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                    return Err(format!(
                        "selector `{text}`: `{key}` is not a field name (quote odd keys: `[\"a.b\"]`)"
                    ));
                }
                segs.push(Step::Key(key.to_string()));
                rest = &r[end..];
            } else if let Some(r) = rest.strip_prefix("[\"") {
                // A JSON string up to its closing quote, escapes and all.
                let mut stream = serde_json::Deserializer::from_str(&rest[1..]).into_iter::<String>();
                let key = match stream.next() {
                    Some(Ok(k)) => k,
                    _ => return Err(format!("selector `{text}`: unterminated quoted key at `[\"{r}`")),
                };
                let after = &rest[1 + stream.byte_offset()..];
                rest = after
                    .strip_prefix(']')
                    .ok_or_else(|| format!("selector `{text}`: expected `]` after the quoted key"))?;
                segs.push(Step::Key(key));
            } else if let Some(r) = rest.strip_prefix('[') {
                let end = r.find(']').ok_or_else(|| format!("selector `{text}`: unclosed `[`"))?;
                segs.push(match &r[..end] {
                    "*" => Step::Each,
                    n => Step::Index(
                        n.parse()
                            .map_err(|_| format!("selector `{text}`: `[{n}]` is neither `[*]`, an index nor a quoted key"))?,
                    ),
                });
                rest = &r[end + 1..];
            } else {
                return Err(format!("selector `{text}`: expected `.field`, `[*]` or `[N]` at `{rest}`"));
            }
        }
        let sel = Selector { text, root, segs };
        // CloudFormation has a few members the ECS API lacks; either model will do.
        sel.check_model(&API)
            .or_else(|api_err| sel.check_model(&CFN).map_err(|_| api_err))?;
        Ok(sel)
    }
}

impl Selector {
    /// Whether the AWS model has this place: a selector that can never match is a typo.
    fn check_model(&self, schema: &'static Schema) -> Result<(), String> {
        let (mut shape, mut here): (ShapeId, String) = match self.root {
            Root::Task => (schema.task_root, "task".into()),
            Root::Service => (schema.service_root, "service".into()),
        };
        let fail = |msg: String| Err(format!("selector `{}`: {msg}", self.text));
        for seg in &self.segs {
            match (seg, &schema.shape(shape).kind) {
                (_, Kind::Any | Kind::StringOrObject) => return Ok(()),
                (Step::Key(k), Kind::Struct(members)) => {
                    let Some(m) = members.iter().find(|m| m.canonical == k) else {
                        let hint = did_you_mean(k, members.iter().filter(|m| !m.read_only).map(|m| m.canonical))
                            .map(|s| format!("; did you mean `{s}`?"))
                            .unwrap_or_default();
                        return fail(format!("`{here}` has no field `{k}`{hint}"));
                    };
                    if m.read_only {
                        return fail(format!(
                            "`{here}.{k}` is filled in by AWS and ignored, so a rule on it never applies"
                        ));
                    }
                    shape = m.shape;
                    here = format!("{here}.{k}");
                }
                (Step::Key(k), Kind::Map { value }) => {
                    shape = *value;
                    here = format!("{here}[{}]", Value::String(k.clone()));
                }
                (Step::Each | Step::Index(_), Kind::List { item, .. }) => {
                    shape = *item;
                    here.push_str(&match seg {
                        Step::Index(i) => format!("[{i}]"),
                        _ => "[*]".into(),
                    });
                }
                (Step::Key(k), Kind::List { .. }) => return fail(format!("`{here}` is a list: write `{here}[*].{k}` or `{here}[N].{k}`")),
                (Step::Each | Step::Index(_), _) => return fail(format!("`{here}` is not a list")),
                (Step::Key(k), _) => return fail(format!("`{here}` is a single value, it has no field `{k}`")),
            }
        }
        Ok(())
    }

    /// Every place the selector names in `value`: its canonical path and what is there.
    /// `[*]` over an absent or empty list names nothing, so `require` on it holds vacuously.
    pub(super) fn expand<'v>(&self, value: &'v Value) -> Vec<(Vec<Seg>, Option<&'v Value>)> {
        fn walk<'v>(value: Option<&'v Value>, steps: &[Step], path: &mut Vec<Seg>, out: &mut Vec<(Vec<Seg>, Option<&'v Value>)>) {
            let Some((step, rest)) = steps.split_first() else {
                out.push((path.clone(), value));
                return;
            };
            match step {
                Step::Key(k) => {
                    path.push(Seg::Key(k.clone()));
                    walk(value.and_then(|v| v.get(k)), rest, path, out);
                    path.pop();
                }
                Step::Index(i) => {
                    path.push(Seg::Index(*i));
                    walk(value.and_then(|v| v.get(*i)), rest, path, out);
                    path.pop();
                }
                Step::Each => {
                    for (i, item) in value.and_then(Value::as_array).into_iter().flatten().enumerate() {
                        path.push(Seg::Index(i));
                        walk(Some(item), rest, path, out);
                        path.pop();
                    }
                }
            }
        }
        let mut out = Vec::new();
        walk(Some(value), &self.segs, &mut Vec::new(), &mut out);
        out
    }
}

/// Null, `[]` and `{}` say nothing, for `forbid` as for `require`.
pub(super) fn present(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(_) => true,
    }
}
