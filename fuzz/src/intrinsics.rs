//! `intrinsics`: the CloudFormation intrinsic functions evaluator
//! (`ecskube::ecs::intrinsics`) over arbitrary parameters, conditions,
//! mappings and value trees.
//!
//! The input is read in one of two ways:
//! - text starting with `{`: JSON shaped like an ECSDeployment's spec,
//!   `{"Parameters", "Conditions", "Mappings", "Task", "Service"}` (the seeds
//!   are the specs of the samples and the CloudFormation corpus with its
//!   tests/cfn-params values);
//! - anything else: raw bytes driving a generator (`arbitrary::Unstructured`)
//!   that writes well-formed intrinsics most of the time (`Fn::Sub` templates
//!   naming defined parameters, `Fn::If` on defined conditions, large
//!   parameter values used many times, nesting past `MAX_DEPTH`, ...).
//!
//! The sections go through `Stack::from_sections` as an ECSDeployment's do,
//! and the Task then the Service through one `Evaluator` as `validate::analyze`
//! evaluates them (root members the object implies are lenient), plus each
//! body alone through `intrinsics::evaluate`.
//!
//! Properties: nothing panics; what evaluation produces stays within the
//! budget `MAX_OUTPUT_BYTES` documents ("string bytes, plus 8 per JSON node"):
//! the output, measured that way, is at most `MAX_OUTPUT_BYTES` more than the
//! input (unevaluated parts are copied as written, uncharged); provenance
//! lookups on every output path do not panic.

use arbitrary::Unstructured;
use ecskube::diag::Report;
use ecskube::ecs::intrinsics::{evaluate, Evaluator, Stack, FUNCTIONS, MAX_DEPTH, MAX_OUTPUT_BYTES};
use ecskube::path::Path;
use serde_json::{json, Map, Value};

/// Root members an ECSDeployment implies (validate::TASK_IMPLIED / SERVICE_IMPLIED).
const TASK_LENIENT: &[&str] = &["family"];
const SERVICE_LENIENT: &[&str] = &["serviceName", "taskDefinition", "cluster"];

pub fn check(data: &[u8]) {
    let case = if data.first() == Some(&b'{') {
        match serde_json::from_slice::<Value>(data) {
            Ok(Value::Object(spec)) => Case::from_spec(&spec),
            _ => return,
        }
    } else {
        match Gen::new(data).case() {
            Ok(c) => c,
            Err(_) => return,
        }
    };
    case.check();
}

/// One evaluation: the sections (as written) and the bodies.
pub struct Case {
    pub parameters: Option<Value>,
    pub conditions: Option<Value>,
    pub mappings: Option<Value>,
    pub task: Option<Value>,
    pub service: Option<Value>,
    pub hint: String,
}

impl Case {
    fn from_spec(spec: &Map<String, Value>) -> Case {
        Case {
            parameters: spec.get("Parameters").cloned(),
            conditions: spec.get("Conditions").cloned(),
            mappings: spec.get("Mappings").cloned(),
            task: spec.get("Task").cloned(),
            service: spec.get("Service").cloned(),
            hint: String::new(),
        }
    }

    pub fn check(&self) {
        let mut report = Report::default();
        let origin = Path::root().key("spec");
        let mut stack = Stack::from_sections(
            self.parameters.as_ref(),
            self.conditions.as_ref(),
            self.mappings.as_ref(),
            origin,
            &mut report,
        );
        stack.hint = self.hint.clone();

        // As validate::analyze: one evaluator for the Task and its Service.
        let mut evaluator = Evaluator::new(&stack);
        let mut produced = 0usize;
        let mut written = 0usize;
        for (body, at, lenient) in [
            (&self.task, Path::parse_dotted("spec.Task"), TASK_LENIENT),
            (&self.service, Path::parse_dotted("spec.Service"), SERVICE_LENIENT),
        ] {
            let Some(body) = body else { continue };
            // A CloudFormation resource's own Condition.
            if let Some(condition) = body.get("Condition") {
                evaluator.resource_condition(condition, &at.key("Condition"), &mut report);
            }
            let (body, at) = match body.get("Properties") {
                Some(p) if body.get("Type").is_some() => (p, at.key("Properties")),
                _ => (body, at),
            };
            let e = evaluator.body(body, &at, lenient, &mut report);
            written += size(body);
            produced += size(&e.value);
            check_paths(&e.value, &at, |p| {
                let w = e.provenance.written(p);
                let _ = e.provenance.note(&w);
            });
            for (p, note) in e.provenance.notes() {
                assert!(!p.is_empty() && note.starts_with("from "), "provenance note {p:?}: {note:?}");
            }
            // Each body alone, as the one-shot entry point does.
            let mut alone = Report::default();
            let (value, _) = evaluate(body, &at, &stack, &mut alone);
            within_budget("intrinsics::evaluate", size(body), size(&value));
        }
        within_budget("one Evaluator over Task and Service", written, produced);
        if let Some(at) = evaluator.missing().first_use() {
            let at = at.to_string();
            evaluator.missing().report(&stack, &at, &mut report);
        }
        for d in &report.diagnostics {
            let _ = d.to_string();
        }
    }
}

fn within_budget(what: &str, written: usize, produced: usize) {
    assert!(
        produced <= written.saturating_add(MAX_OUTPUT_BYTES),
        "{what}: output of {produced} bytes (string bytes + 8 per node) from {written} bytes of input: \
         more than the {MAX_OUTPUT_BYTES}-byte budget beyond what was written"
    );
}

/// A value's size as the evaluator's budget counts it: string bytes (keys
/// included), plus 8 per JSON node.
pub fn size(v: &Value) -> usize {
    let mut total = 0usize;
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        total += 8;
        match v {
            Value::String(s) => total += s.len(),
            Value::Object(o) => {
                total += o.keys().map(String::len).sum::<usize>();
                stack.extend(o.values());
            }
            Value::Array(a) => stack.extend(a.iter()),
            _ => {}
        }
    }
    total
}

/// Calls `f` with the rendered path of (at most 2,000) nodes of `v`.
fn check_paths(v: &Value, base: &Path, mut f: impl FnMut(&str)) {
    let mut stack = vec![(v, base.clone())];
    let mut n = 0;
    while let Some((v, p)) = stack.pop() {
        n += 1;
        if n > 2000 {
            return;
        }
        f(&p.to_string());
        match v {
            Value::Object(o) => stack.extend(o.iter().map(|(k, c)| (c, p.key(k)))),
            Value::Array(a) => stack.extend(a.iter().enumerate().map(|(i, c)| (c, p.index(i)))),
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------
// The generator: bytes -> a Case with mostly well-formed intrinsics.

const PARAMS: &[&str] = &[
    "P",
    "Q",
    "Image",
    "Env",
    "AWS::Region",
    "AWS::AccountId",
    "AWS::StackName",
    "AWS::Partition",
    "AWS::URLSuffix",
    "AWS::NoValue",
    "Fn::GetAZs",
    "Fn::GetAZs.us-east-1",
    "Res.Arn",
    "Res",
    "Export",
    "Missing",
];
const CONDITIONS: &[&str] = &["C", "D", "IsProd", "Nope"];
const MAPS: &[&str] = &["M", "RegionMap", "Nope"];
const MAP_KEYS: &[&str] = &["us-east-1", "k", "AMI", "cn-north-1"];
const WORDS: &[&str] = &[
    "",
    "a",
    "us-east-1",
    "cn-north-1",
    "us-gov-west-1",
    "10.0.0.0/16",
    "a,b,c",
    ",",
    "true",
    "false",
    "80",
    "-1",
    "1.5",
    "nginx:latest",
    "${P}",
    "${!P}",
    "${",
    "}",
    "\\",
    "\"",
    "é",
];
const KEYS: &[&str] = &[
    "family",
    "containerDefinitions",
    "name",
    "image",
    "memory",
    "cpu",
    "environment",
    "value",
    "Name",
    "Image",
    "Properties",
    "Type",
    "Condition",
    "Ref",
    "serviceName",
    "cluster",
    "desiredCount",
];
/// Names beside the evaluator's own functions (`ecskube::ecs::intrinsics::FUNCTIONS`)
/// that it must refuse or treat specially, never crash on.
const NOT_EVALUATED: &[&str] = &["Fn::Transform", "Condition"];

type R<T> = arbitrary::Result<T>;

struct Gen<'a> {
    u: Unstructured<'a>,
    depth: usize,
}

impl<'a> Gen<'a> {
    fn new(data: &'a [u8]) -> Self {
        Gen {
            u: Unstructured::new(data),
            depth: 0,
        }
    }

    fn pick(&mut self, words: &[&str]) -> R<String> {
        Ok(self.u.choose(words)?.to_string())
    }

    fn string(&mut self) -> R<String> {
        Ok(match self.u.int_in_range(0..=8u8)? {
            0..=4 => self.pick(WORDS)?,
            5 => self.pick(PARAMS)?,
            6 => self.template()?,
            _ => self.u.arbitrary::<&str>()?.chars().take(40).collect(),
        })
    }

    /// A `Fn::Sub` template: literals, `${Name}`, `${!Literal}`, stray `${`.
    fn template(&mut self) -> R<String> {
        let mut s = String::new();
        for _ in 0..self.u.int_in_range(0..=6u8)? {
            match self.u.int_in_range(0..=5u8)? {
                0 | 1 => {
                    let n = self.pick(PARAMS)?;
                    s.push_str(&format!("${{{n}}}"));
                }
                2 => s.push_str("${Var}"),
                3 => s.push_str("${!Literal}"),
                4 => s.push_str("${"),
                _ => s.push_str(&self.pick(WORDS)?),
            }
        }
        Ok(s)
    }

    fn scalar(&mut self) -> R<Value> {
        Ok(match self.u.int_in_range(0..=6u8)? {
            0..=2 => Value::String(self.string()?),
            3 => json!(self.u.int_in_range(-3..=300i64)?),
            4 => json!(self.u.arbitrary::<i64>()?),
            5 => json!(self.u.arbitrary::<bool>()?),
            _ => Value::Null,
        })
    }

    /// A parameter value: a scalar or a list of them (sometimes long), or rarely something invalid.
    fn parameter(&mut self) -> R<Value> {
        Ok(match self.u.int_in_range(0..=10u8)? {
            0..=5 => match self.scalar()? {
                Value::Null => json!("v"),
                v => v,
            },
            6 | 7 => {
                let n = self.u.int_in_range(0..=5usize)?;
                let mut items = Vec::new();
                for _ in 0..n {
                    items.push(Value::String(self.pick(WORDS)?));
                }
                Value::Array(items)
            }
            // Large values, used many times: the budget's business.
            8 => {
                let c = self.u.choose(&['x', 'é', '"', ',', '\\'])?;
                let n = self.u.int_in_range(0..=70_000usize)?;
                Value::String(std::iter::repeat_n(*c, n).collect())
            }
            9 => {
                let item = Value::String(self.pick(WORDS)?);
                let n = self.u.int_in_range(0..=20_000usize)?;
                Value::Array(vec![item; n])
            }
            _ => self.value()?,
        })
    }

    fn list(&mut self) -> R<Value> {
        let n = self.u.int_in_range(0..=4usize)?;
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            items.push(self.value()?);
        }
        Ok(Value::Array(items))
    }

    fn value(&mut self) -> R<Value> {
        // Past MAX_DEPTH now and then, to reach the nesting limit.
        if self.depth > MAX_DEPTH + 4 || self.u.is_empty() {
            return self.scalar();
        }
        self.depth += 1;
        let v = match self.u.int_in_range(0..=12u8)? {
            0..=2 => self.scalar()?,
            3 => self.list()?,
            4 => {
                let mut o = Map::new();
                for _ in 0..self.u.int_in_range(0..=4u8)? {
                    let k = self.pick(KEYS)?;
                    o.insert(k, self.value()?);
                }
                Value::Object(o)
            }
            _ => self.intrinsic()?,
        };
        self.depth -= 1;
        Ok(v)
    }

    fn intrinsic(&mut self) -> R<Value> {
        let i = self.u.choose_index(FUNCTIONS.len() + NOT_EVALUATED.len())?;
        let f = FUNCTIONS.get(i).unwrap_or_else(|| &NOT_EVALUATED[i - FUNCTIONS.len()]).to_string();
        // One time in eight, arguments of any shape.
        if self.u.ratio(1, 8)? {
            let arg = self.value()?;
            return Ok(json!({ f: arg }));
        }
        let arg = match f.as_str() {
            "Ref" => json!(self.pick(PARAMS)?),
            "Fn::Sub" => {
                if self.u.arbitrary()? {
                    json!(self.template()?)
                } else {
                    let mut vars = Map::new();
                    vars.insert("Var".into(), self.value()?);
                    if self.u.arbitrary()? {
                        vars.insert(self.pick(PARAMS)?, self.value()?);
                    }
                    json!([self.template()?, vars])
                }
            }
            "Fn::Join" => json!([self.pick(WORDS)?, self.list_or_value()?]),
            "Fn::Select" => {
                let index = match self.u.int_in_range(0..=3u8)? {
                    0 => json!(self.u.int_in_range(0..=4u8)?),
                    1 => json!(self.u.int_in_range(0..=4u8)?.to_string()),
                    2 => json!(-1),
                    _ => self.value()?,
                };
                json!([index, self.list_or_value()?])
            }
            "Fn::Split" => json!([self.pick(WORDS)?, self.value()?]),
            "Fn::FindInMap" => {
                let mut args = vec![self.key_or_value(MAPS)?, self.key_or_value(MAP_KEYS)?, self.key_or_value(MAP_KEYS)?];
                if self.u.arbitrary()? {
                    args.push(json!({"DefaultValue": self.value()?}));
                }
                Value::Array(args)
            }
            "Fn::GetAZs" => match self.u.int_in_range(0..=2u8)? {
                0 => json!(""),
                1 => json!("us-east-1"),
                _ => self.value()?,
            },
            "Fn::Cidr" => json!([
                self.key_or_value(&["10.0.0.0/16", "0.0.0.0/0", "192.168.1.0/24", "10.0.0.0/33", "x"])?,
                self.key_or_value(&["1", "2", "256", "257", "0"])?,
                self.key_or_value(&["1", "8", "32", "0", "33"])?,
            ]),
            "Fn::If" => json!([self.pick(CONDITIONS)?, self.value()?, self.value()?]),
            "Fn::GetAtt" => {
                if self.u.arbitrary()? {
                    json!("Res.Arn")
                } else {
                    json!(["Res", self.key_or_value(&["Arn", "Name"])?])
                }
            }
            "Fn::Equals" | "Fn::And" | "Fn::Or" | "Fn::Not" | "Condition" => self.condition()?,
            _ => self.value()?,
        };
        Ok(json!({ f: arg }))
    }

    fn list_or_value(&mut self) -> R<Value> {
        if self.u.ratio(3, 4)? {
            self.list()
        } else {
            self.value()
        }
    }

    fn key_or_value(&mut self, words: &[&str]) -> R<Value> {
        if self.u.ratio(7, 8)? {
            Ok(json!(self.pick(words)?))
        } else {
            self.value()
        }
    }

    /// A condition expression (or, now and then, something that is not one).
    fn condition(&mut self) -> R<Value> {
        if self.depth > MAX_DEPTH + 4 || self.u.is_empty() {
            return Ok(json!(self.u.arbitrary::<bool>()?));
        }
        self.depth += 1;
        let c = match self.u.int_in_range(0..=8u8)? {
            0 => json!(self.u.arbitrary::<bool>()?),
            1 => json!(self.pick(&["true", "false", "yes"])?),
            2 | 3 => json!({"Fn::Equals": [self.value()?, self.value()?]}),
            4 | 5 => {
                let f = self.pick(&["Fn::And", "Fn::Or"])?;
                let n = self.u.int_in_range(1..=11usize)?;
                let mut items = Vec::new();
                for _ in 0..n {
                    items.push(self.condition()?);
                }
                json!({ f: items })
            }
            6 => json!({"Fn::Not": [self.condition()?]}),
            7 => json!({"Condition": self.pick(CONDITIONS)?}),
            _ => self.value()?,
        };
        self.depth -= 1;
        Ok(c)
    }

    fn section<F>(&mut self, names: &[&str], mut f: F) -> R<Option<Value>>
    where
        F: FnMut(&mut Self) -> R<Value>,
    {
        if self.u.ratio(1, 8)? {
            return Ok(None);
        }
        let mut o = Map::new();
        for name in names {
            if self.u.ratio(2, 3)? {
                o.insert(name.to_string(), f(self)?);
            }
        }
        Ok(Some(Value::Object(o)))
    }

    fn case(&mut self) -> R<Case> {
        let parameters = self.section(PARAMS, |g| g.parameter())?;
        let conditions = self.section(CONDITIONS, |g| g.condition())?;
        let mappings = self.section(MAPS, |g| {
            let mut top = Map::new();
            for k in MAP_KEYS {
                if g.u.arbitrary()? {
                    let mut second = Map::new();
                    for k2 in MAP_KEYS {
                        if g.u.arbitrary()? {
                            second.insert(k2.to_string(), g.value()?);
                        }
                    }
                    top.insert(k.to_string(), Value::Object(second));
                }
            }
            Ok(Value::Object(top))
        })?;
        let task = Some(self.body(&["family", "containerDefinitions", "cpu", "memory"])?);
        let service = if self.u.arbitrary()? {
            Some(self.body(&["serviceName", "desiredCount", "cluster"])?)
        } else {
            None
        };
        let hint = if self.u.arbitrary()? {
            "give values with --param".into()
        } else {
            String::new()
        };
        Ok(Case {
            parameters,
            conditions,
            mappings,
            task,
            service,
            hint,
        })
    }

    /// A definition body: mostly an object with some of `keys`, the
    /// containers a list of objects; sometimes any value, or a CloudFormation resource.
    fn body(&mut self, keys: &[&str]) -> R<Value> {
        let mut o = Map::new();
        for k in keys {
            if self.u.ratio(2, 3)? {
                let v = if *k == "containerDefinitions" {
                    let mut items = Vec::new();
                    for _ in 0..self.u.int_in_range(0..=3u8)? {
                        let mut c = Map::new();
                        for ck in ["name", "image", "memory", "environment"] {
                            if self.u.arbitrary()? {
                                c.insert(ck.into(), self.value()?);
                            }
                        }
                        items.push(if self.u.ratio(1, 6)? { self.intrinsic()? } else { Value::Object(c) });
                    }
                    Value::Array(items)
                } else {
                    self.value()?
                };
                o.insert(k.to_string(), v);
            }
        }
        Ok(match self.u.int_in_range(0..=7u8)? {
            0 => self.value()?,
            1 => {
                let mut r = json!({"Type": "AWS::ECS::TaskDefinition", "Properties": Value::Object(o)});
                if self.u.arbitrary()? {
                    r["Condition"] = self.key_or_value(CONDITIONS)?;
                }
                r
            }
            _ => Value::Object(o),
        })
    }
}
