//! Seeded property tests of diagnostic paths: take a VALID input (the sample
//! ECSDeployment and real corpus files: camelCase task definitions, a
//! service, a PascalCase Task/Service pair), break it at one randomly chosen
//! place, and require an error whose `path` is exactly that place, rendered
//! as the engine documents it (`a.b[0].c`, `["odd key"]`):
//! (a) a number/boolean replaced with an object or a list, (b) a key of the
//! ECS model renamed by appending a character (UnknownField), (c) an enum
//! member set to "bogus" (NotSupported).
//!
//! The candidate places are found by walking the JSON here, independently of
//! the engine's schema. Each property also has an exhaustive sweep over every
//! candidate, so a failure is found whatever the random draw. The two
//! tests at the end cover the envelope around the definitions.

use ecskube::diag::{Code, Diagnostic, Severity};
use ecskube::document::parse_documents;
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::{RngAlgorithm, RngSeed};
use serde_json::{json, Map, Value};
use std::path::PathBuf;
use std::sync::LazyLock;

/// Corpus files that validate without errors: camelCase task definitions, a
/// camelCase service, a PascalCase `{"Task", "Service"}` pair with intrinsics.
const CORPUS_FILES: &[&str] = &[
    "taskdefs/17-nginx-ec2-bridge.json",
    "taskdefs/04-awslogs-wordpress-mysql-links.json",
    "taskdefs/32-php-simple-app-volumesfrom.json",
    "taskdefs/03-appmesh-gateway-proxy-dependson.json",
    "taskdefs/13-ecs-anywhere-external.json",
    "taskdefs/25-agent-container-ordering.json",
    "taskdefs/33-ecspresso-fargate-ephemeral.json",
    "services/03-service-connect.json",
    "cfn/19-docs-fargate-task-and-service.json",
];

/// Free-form maps: their keys are the user's, not the ECS model's.
const FREE_FORM_MAPS: &[&str] = &["dockerLabels", "options", "labels", "driverOpts"];

/// Service members the ECSDeployment supplies itself (the service runs the
/// object's own task, in the Kubernetes cluster): the engine ignores their values.
const SUPPLIED: &[&str] = &["taskDefinition", "cluster"];

/// Members whose string value is one of a fixed set (AWS enums).
const ENUM_MEMBERS: &[&str] = &[
    "networkMode",
    "protocol",
    "logDriver",
    "appProtocol",
    "pidMode",
    "ipcMode",
    "launchType",
    "schedulingStrategy",
    "propagateTags",
    "condition",
];

/// List members whose items are enum strings.
const ENUM_LISTS: &[&str] = &["requiresCompatibilities"];

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 128,
        failure_persistence: None,
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(0x00ec_5c0b_e000_0001),
        ..ProptestConfig::default()
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(String),
    Index(usize),
}

type JsonPath = Vec<Seg>;

/// A path as the engine renders it: dots between plain keys, `[i]` for
/// indexes, `["key"]` (JSON-quoted) for keys that are not plain identifiers.
fn render(path: &[Seg]) -> String {
    let mut out = String::new();
    for (i, seg) in path.iter().enumerate() {
        match seg {
            Seg::Key(k) if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') => {
                if i > 0 {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Key(k) => {
                out.push('[');
                out.push_str(&serde_json::to_string(k).expect("a string serializes"));
                out.push(']');
            }
            Seg::Index(n) => out.push_str(&format!("[{n}]")),
        }
    }
    out
}

fn get_mut<'v>(v: &'v mut Value, path: &[Seg]) -> &'v mut Value {
    path.iter().fold(v, |v, seg| match seg {
        Seg::Key(k) => v.get_mut(k.as_str()).expect("path exists"),
        Seg::Index(i) => v.get_mut(*i).expect("path exists"),
    })
}

struct Input {
    name: String,
    value: Value,
}

#[derive(Default)]
struct Candidates {
    /// Number and boolean leaves of the definitions.
    leaves: Vec<(usize, JsonPath)>,
    /// Keys of objects that belong to the ECS model (path ends with the key).
    keys: Vec<(usize, JsonPath)>,
    /// String values of enum members.
    enums: Vec<(usize, JsonPath)>,
}

fn corpus_dir() -> PathBuf {
    std::env::var_os("ECSKUBE_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/ecs-corpus"))
}

/// The valid inputs; each is checked to have no errors before it is used.
static INPUTS: LazyLock<Vec<Input>> = LazyLock::new(|| {
    let mut files = vec![PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("samples/ecsdeployment.json")];
    let corpus = corpus_dir();
    if corpus.join("taskdefs").is_dir() {
        files.extend(CORPUS_FILES.iter().map(|f| corpus.join(f)));
    } else {
        eprintln!(
            "ECS corpus not found in {} (set ECSKUBE_CORPUS); using the sample only",
            corpus.display()
        );
    }
    files
        .into_iter()
        .map(|file| {
            let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            let value: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            let name = file.file_name().expect("a file name").to_string_lossy().into_owned();
            let errors: Vec<String> = diagnostics(&value)
                .iter()
                .filter(|d| d.is_error())
                .map(ToString::to_string)
                .collect();
            assert!(
                errors.is_empty(),
                "{name} must be valid to be mutated, but has errors:\n{}",
                errors.join("\n")
            );
            Input { name, value }
        })
        .collect()
});

static CANDIDATES: LazyLock<Candidates> = LazyLock::new(|| {
    let mut c = Candidates::default();
    for (i, input) in INPUTS.iter().enumerate() {
        for mut root in definition_roots(&input.value) {
            let definition = root.iter().fold(&input.value, |v, seg| match seg {
                Seg::Key(k) => &v[k.as_str()],
                Seg::Index(n) => &v[*n],
            });
            walk(definition, &mut root, i, &mut c);
        }
    }
    assert!(
        !c.leaves.is_empty() && !c.keys.is_empty() && !c.enums.is_empty(),
        "no candidates found"
    );
    c
});

/// Where the ECS definitions sit: `spec.Task`/`spec.Service` of an
/// ECSDeployment, `Task`/`Service` of a pair file, or the whole bare file.
/// The keys around them are envelope (see the envelope tests at the end).
fn definition_roots(v: &Value) -> Vec<JsonPath> {
    let key = |k: &str| Seg::Key(k.to_string());
    let (base, holder) = if v.get("kind").is_some() {
        (vec![key("spec")], &v["spec"])
    } else if v.get("Task").is_some() || v.get("Service").is_some() {
        (Vec::new(), v)
    } else {
        return vec![Vec::new()];
    };
    ["Task", "Service"]
        .into_iter()
        .filter(|k| holder.get(k).is_some())
        .map(|k| base.iter().cloned().chain([key(k)]).collect())
        .collect()
}

/// `{"Ref": ...}`, `{"Fn::Sub": ...}`: CloudFormation's keys, not the ECS model's.
fn is_intrinsic(obj: &Map<String, Value>) -> bool {
    obj.len() == 1 && obj.keys().all(|k| k == "Ref" || k.starts_with("Fn::"))
}

/// Collects the candidate places inside one definition.
fn walk(v: &Value, path: &mut JsonPath, input: usize, c: &mut Candidates) {
    let key_at = |back: usize| match path.len().checked_sub(back).map(|i| &path[i]) {
        Some(Seg::Key(k)) => Some(k.as_str()),
        _ => None,
    };
    let is = |key: Option<&str>, set: &[&str]| key.is_some_and(|k| set.iter().any(|s| s.eq_ignore_ascii_case(k)));
    match v {
        Value::Object(obj) => {
            if is_intrinsic(obj) || is(key_at(1), FREE_FORM_MAPS) || is(key_at(1), SUPPLIED) {
                return;
            }
            for (k, child) in obj {
                path.push(Seg::Key(k.clone()));
                c.keys.push((input, path.clone()));
                walk(child, path, input, c);
                path.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                path.push(Seg::Index(i));
                walk(child, path, input, c);
                path.pop();
            }
        }
        Value::Number(_) | Value::Bool(_) if !is(key_at(1), SUPPLIED) => c.leaves.push((input, path.clone())),
        Value::String(_) => {
            let enum_member = is(key_at(1), ENUM_MEMBERS);
            let enum_item = matches!(path.last(), Some(Seg::Index(_))) && is(key_at(2), ENUM_LISTS);
            if enum_member || enum_item {
                c.enums.push((input, path.clone()));
            }
        }
        _ => {}
    }
}

/// Serializes, parses (as the CLI does) and analyzes one document.
fn diagnostics(value: &Value) -> Vec<Diagnostic> {
    let text = serde_json::to_string_pretty(value).expect("JSON serializes");
    let docs = parse_documents(&text).expect("serialized JSON parses");
    assert_eq!(docs.len(), 1, "one document expected");
    docs[0].analyze().report.diagnostics
}

fn listing(diags: &[Diagnostic]) -> String {
    diags.iter().map(|d| format!("  {d} [{:?}]", d.code)).collect::<Vec<_>>().join("\n")
}

/// Asserts an error at exactly `path` (with `code`, when given).
fn assert_error_at(input: &Input, mutated: &Value, path: &str, code: Option<Code>, what: &str) -> Result<(), TestCaseError> {
    let diags = diagnostics(mutated);
    let hit = diags
        .iter()
        .any(|d| d.severity == Severity::Error && d.path == path && code.is_none_or(|c| d.code == c));
    prop_assert!(
        hit,
        "{}: {what}: expected an error{} at `{path}`, got:\n{}",
        input.name,
        code.map(|c| format!(" {c:?}")).unwrap_or_default(),
        listing(&diags)
    );
    Ok(())
}

// ---- (a) a number or boolean replaced with a value of the wrong type ----

fn wrong_type_values() -> Vec<Value> {
    vec![
        json!({"x": 1}),
        json!([1, 2]),
        json!({}),
        json!([]),
        json!({"Ref": "SomeParameter"}),
    ]
}

fn check_wrong_type(candidate: &(usize, JsonPath), replacement: &Value) -> Result<(), TestCaseError> {
    let (i, path) = candidate;
    let input = &INPUTS[*i];
    let mut mutated = input.value.clone();
    let old = std::mem::replace(get_mut(&mut mutated, path), replacement.clone());
    let what = format!("{old} replaced with {replacement}");
    assert_error_at(input, &mutated, &render(path), None, &what)
}

// ---- (b) a key of the ECS model renamed by appending a character ----

fn rename_suffixes() -> Vec<&'static str> {
    vec!["x", "Z", "1", "_", "-", ".", "/", " ", "é", "\""]
}

fn check_renamed_key(candidate: &(usize, JsonPath), suffix: &str) -> Result<(), TestCaseError> {
    let (i, path) = candidate;
    let input = &INPUTS[*i];
    let (Seg::Key(key), parent) = path.split_last().map(|(k, p)| (k.clone(), p)).expect("a key path") else {
        unreachable!("key candidates end with a key")
    };
    let new_key = format!("{key}{suffix}");
    let mut mutated = input.value.clone();
    let obj = get_mut(&mut mutated, parent).as_object_mut().expect("an object");
    if obj.contains_key(&new_key) {
        return Ok(()); // would merge two members; not this property
    }
    // Rebuild the object so the key keeps its position (order decides casing and dialect).
    let renamed: Map<String, Value> = std::mem::take(obj)
        .into_iter()
        .map(|(k, v)| if k == key { (new_key.clone(), v) } else { (k, v) })
        .collect();
    *obj = renamed;
    let mut new_path = parent.to_vec();
    new_path.push(Seg::Key(new_key.clone()));
    let what = format!("key `{key}` renamed to `{new_key}`");
    assert_error_at(input, &mutated, &render(&new_path), Some(Code::UnknownField), &what)
}

// ---- (c) an enum member set to an unsupported value ----

fn check_bogus_enum(candidate: &(usize, JsonPath)) -> Result<(), TestCaseError> {
    let (i, path) = candidate;
    let input = &INPUTS[*i];
    let mut mutated = input.value.clone();
    let old = std::mem::replace(get_mut(&mut mutated, path), json!("bogus"));
    let what = format!("{old} replaced with \"bogus\"");
    assert_error_at(input, &mutated, &render(path), Some(Code::NotSupported), &what)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn wrong_type_is_reported_at_its_path(pick in any::<Index>(), replacement in select(wrong_type_values())) {
        check_wrong_type(pick.get(&CANDIDATES.leaves), &replacement)?;
    }

    #[test]
    fn renamed_key_is_reported_as_unknown_at_its_path(pick in any::<Index>(), suffix in select(rename_suffixes())) {
        check_renamed_key(pick.get(&CANDIDATES.keys), suffix)?;
    }

    #[test]
    fn unsupported_enum_value_is_reported_at_its_path(pick in any::<Index>()) {
        check_bogus_enum(pick.get(&CANDIDATES.enums))?;
    }
}

/// Runs a check on every candidate; reports all failures at once.
fn sweep<T>(candidates: &[T], check: impl Fn(&T) -> Result<(), TestCaseError>) {
    let failures: Vec<String> = candidates.iter().filter_map(|c| check(c).err()).map(|e| e.to_string()).collect();
    assert!(
        failures.is_empty(),
        "{} of {} candidates failed:\n{}",
        failures.len(),
        candidates.len(),
        failures.join("\n")
    );
}

#[test]
fn every_leaf_with_a_wrong_type_is_reported_at_its_path() {
    let cases: Vec<_> = CANDIDATES
        .leaves
        .iter()
        .flat_map(|c| wrong_type_values().into_iter().map(move |v| (c, v)))
        .collect();
    sweep(&cases, |(c, v)| check_wrong_type(c, v));
}

#[test]
fn every_renamed_key_is_reported_as_unknown_at_its_path() {
    let cases: Vec<_> = CANDIDATES
        .keys
        .iter()
        .flat_map(|c| rename_suffixes().into_iter().map(move |s| (c, s)))
        .collect();
    sweep(&cases, |(c, s)| check_renamed_key(c, s));
}

#[test]
fn every_enum_with_an_unsupported_value_is_reported_at_its_path() {
    sweep(&CANDIDATES.enums, check_bogus_enum);
}

#[test]
fn paths_render_like_the_engine_documents() {
    let k = |s: &str| Seg::Key(s.to_string());
    let p = [k("spec"), k("Task"), k("ContainerDefinitions"), Seg::Index(1), k("Memory")];
    assert_eq!(render(&p), "spec.Task.ContainerDefinitions[1].Memory");
    assert_eq!(render(&[k("dockerLabels"), k("a.b/c")]), r#"dockerLabels["a.b/c"]"#);
    assert_eq!(render(&[k("a b"), k("c")]), r#"["a b"].c"#);
    assert_eq!(
        render(&[k("containerDefinitions"), Seg::Index(0), k("name\"")]),
        r#"containerDefinitions[0]["name\""]"#
    );
}

#[test]
fn inputs_are_valid_and_yield_candidates() {
    assert!(!INPUTS.is_empty());
    eprintln!(
        "{} inputs: {} leaves, {} keys, {} enum values",
        INPUTS.len(),
        CANDIDATES.leaves.len(),
        CANDIDATES.keys.len(),
        CANDIDATES.enums.len()
    );
    // The sample's paths start at `spec.Task`, a bare file's at its first key.
    assert!(CANDIDATES
        .keys
        .iter()
        .any(|(i, p)| *i == 0 && render(p) == "spec.Task.Properties.ContainerDefinitions"));
    assert!(CANDIDATES
        .keys
        .iter()
        .all(|(i, p)| *i != 0 || render(p).starts_with("spec.Task.") || render(p).starts_with("spec.Service.")));
    assert!(CANDIDATES
        .keys
        .iter()
        .any(|(i, p)| *i == 1 && render(p) == "containerDefinitions[0].portMappings[0].containerPort"));
}

/// A `{"Task": ..., "Service": ...}` pair file with a misspelled member
/// (`Taskx`, `Servce`) reports the key, rather than skipping the definition.
#[test]
fn misspelled_pair_member_is_reported() {
    let doc = json!({
        "Taskx": {"Type": "AWS::ECS::TaskDefinition", "Properties": {"ContainerDefinitions": [{"Name": "a", "Image": "nginx", "Memory": "lots"}]}},
        "Service": {"Type": "AWS::ECS::Service", "Properties": {"DesiredCount": 1}},
    });
    let diags = diagnostics(&doc);
    assert!(
        diags.iter().any(|d| d.code == Code::UnknownField && d.path == "Taskx"),
        "expected UnknownField at Taskx, got:\n{}",
        listing(&diags)
    );
}

/// An unknown `spec` key that is not a plain identifier is rendered as
/// `["key"]`, like every other path: `spec["Task."]`, not `spec.Task.`.
#[test]
fn unknown_spec_key_path_is_rendered_like_other_paths() {
    let doc = json!({
        "apiVersion": "ecskube.ecskube/v1alpha1",
        "kind": "ECSDeployment",
        "metadata": {"name": "x"},
        "spec": {"Task": {"containerDefinitions": [{"name": "a", "image": "nginx", "memory": 128}]}, "a.b": 1},
    });
    let diags = diagnostics(&doc);
    assert!(
        diags.iter().any(|d| d.code == Code::UnknownField && d.path == r#"spec["a.b"]"#),
        "expected UnknownField at spec[\"a.b\"], got:\n{}",
        listing(&diags)
    );
}
