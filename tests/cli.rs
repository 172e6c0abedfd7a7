//! The real `ecskube` binary: `ecskube validate` output lines, exit statuses
//! (0 valid, 1 errors, 2 unreadable or unparsable), standard input, YAML
//! streams with several documents, and `-o json`.

use serde_json::{json, Map, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const SAMPLE: &str = "samples/ecsdeployment.json";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs the binary in the crate directory (so `samples/...` resolves), with `stdin` piped in.
fn ecskube(args: &[&str], stdin: Option<&str>) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ecskube"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the ecskube binary starts");
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().expect("piped stdin");
        pipe.write_all(text.as_bytes()).expect("write stdin");
    }
    let out = child.wait_with_output().expect("ecskube finishes");
    Run {
        code: out.status.code().expect("exited, not killed by a signal"),
        stdout: String::from_utf8(out.stdout).expect("UTF-8 stdout"),
        stderr: String::from_utf8(out.stderr).expect("UTF-8 stderr"),
    }
}

/// A scratch directory, removed when dropped.
fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("ecskube-cli-test").tempdir().expect("temp dir")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write temp file");
    path
}

fn arg(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temp path")
}

fn sample() -> Value {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(SAMPLE)).expect("sample readable");
    serde_json::from_str(&text).expect("sample is JSON")
}

/// The sample with the wordpress container's `Image` misspelled `Imagee` (key order kept).
fn sample_with_imagee() -> String {
    let mut doc = sample();
    let container = doc
        .pointer_mut("/spec/Task/Properties/ContainerDefinitions/0")
        .and_then(Value::as_object_mut)
        .expect("wordpress container");
    assert_eq!(container["Name"], "wordpress");
    let renamed: Map<String, Value> = std::mem::take(container)
        .into_iter()
        .map(|(k, v)| if k == "Image" { ("Imagee".to_string(), json!("x")) } else { (k, v) })
        .collect();
    *container = renamed;
    serde_json::to_string_pretty(&doc).expect("serializes")
}

/// A valid bare camelCase task definition, then an invalid one.
const TWO_DOCUMENTS: &str = "\
family: web
containerDefinitions:
  - name: web
    image: nginx
    memory: 128
---
family: broken
networkMode: bogus
containerDefinitions:
  - name: web
    image: nginx
    memory: lots
";

/// A valid camelCase task whose port is a string: the ECS API would reject
/// it, ecskube converts it and warns.
const STRING_PORT: &str = r#"{
  "family": "web",
  "containerDefinitions": [
    {"name": "web", "image": "nginx", "memory": 128, "portMappings": [{"containerPort": "80"}]}
  ]
}"#;

/// Every output line reads `FILE: PATH: error|warning: MESSAGE`, and there is one.
fn assert_compiler_style(run: &Run, file: &str) {
    assert!(!run.lines().is_empty(), "no diagnostics at all:\n{run}");
    for line in run.lines() {
        let rest = line
            .strip_prefix(&format!("{file}: "))
            .unwrap_or_else(|| panic!("line does not start with `{file}: `: {line}\n{run}"));
        let (path, rest) = rest.split_once(": ").unwrap_or_else(|| panic!("no path in: {line}"));
        assert!(!path.is_empty() && !path.contains(' '), "odd path `{path}` in: {line}");
        assert!(
            rest.starts_with("error: ") || rest.starts_with("warning: "),
            "no severity in: {line}"
        );
    }
}

#[test]
fn the_sample_is_valid() {
    let run = ecskube(&["validate", SAMPLE], None);
    assert_eq!(run.code, 0, "{run}");
    // Its one note is what kubectl apply warns too: hostPort is not carried over.
    let expected = format!("{SAMPLE}: spec.Task.Properties.ContainerDefinitions[0].PortMappings[0].HostPort: warning: ");
    assert_eq!(run.lines().len(), 1, "{run}");
    assert!(run.lines()[0].starts_with(&expected), "{run}");
    assert!(run.stderr.contains("1 of 1 definitions valid; 0 errors, 1 warnings"), "{run}");
}

#[test]
fn a_misspelled_key_exits_1_naming_its_exact_path_and_the_likely_key() {
    let dir = scratch();
    let file = write(dir.path(), "imagee.json", &sample_with_imagee());
    let run = ecskube(&["validate", arg(&file)], None);
    assert_eq!(run.code, 1, "{run}");
    assert_compiler_style(&run, arg(&file));
    let expected = format!(
        "{}: spec.Task.Properties.ContainerDefinitions[0].Imagee: error: unknown field `Imagee`; did you mean `Image`?",
        arg(&file)
    );
    assert!(
        run.lines().iter().any(|l| l.starts_with(&expected)),
        "no line starting with\n{expected}\n{run}"
    );
    // With `Image` gone the container also lacks its required image: reported at the key it needs.
    let missing = format!("{}: spec.Task.Properties.ContainerDefinitions[0].Image: error: ", arg(&file));
    assert!(run.lines().iter().any(|l| l.starts_with(&missing)), "{run}");
    assert!(run.stderr.contains("0 of 1 definitions valid"), "{run}");
}

const AUTOSCALING_SAMPLE: &str = "samples/autoscaling-cloudformation.yaml";

#[test]
fn the_autoscaling_sample_is_valid_with_its_scaling() {
    let run = ecskube(&["validate", AUTOSCALING_SAMPLE], None);
    assert_eq!(run.code, 0, "{run}");
    // Its one note is the launch type; the Scaling's unresolved ResourceId/RoleARN are implied.
    assert_eq!(run.lines().len(), 1, "{run}");
    assert!(run.lines()[0].contains("spec.Service.Properties.LaunchType: warning: "), "{run}");
}

#[test]
fn scaling_errors_are_reported_at_their_exact_paths() {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(AUTOSCALING_SAMPLE)).unwrap();
    let broken = text
        .replace("MinCapacity: 2", "MinCapacity: 20")
        .replace("ECSServiceAverageCPUUtilization", "ECSServiceAverageCPU")
        .replace("ServiceNamespace: ecs", "ServiceNamespace: dynamodb");
    let dir = scratch();
    let file = write(dir.path(), "scaling.yaml", &broken);
    let run = ecskube(&["validate", arg(&file)], None);
    assert_eq!(run.code, 1, "{run}");
    assert_compiler_style(&run, arg(&file));
    let errors: Vec<&str> = run.lines().into_iter().filter(|l| l.contains(": error: ")).collect();
    let at = |path: &str| errors.iter().find(|l| l.contains(&format!(": {path}: error: "))).copied();
    let target = "spec.Scaling.ScalableTarget.Properties";
    let metric =
        "spec.Scaling.CpuPolicy.Properties.TargetTrackingScalingPolicyConfiguration.PredefinedMetricSpecification.PredefinedMetricType";
    assert!(
        at(&format!("{target}.MinCapacity")).is_some_and(|l| l.contains("MaxCapacity")),
        "{run}"
    );
    assert!(at(&format!("{target}.ServiceNamespace")).is_some(), "{run}");
    assert!(
        at(metric).is_some_and(|l| l.contains("did you mean \"ECSServiceAverageCPUUtilization\"")),
        "{run}"
    );
    assert_eq!(errors.len(), 3, "{run}");
}

#[test]
fn a_missing_file_exits_2() {
    let dir = scratch();
    let missing = dir.path().join("does-not-exist.json");
    let run = ecskube(&["validate", arg(&missing)], None);
    assert_eq!(run.code, 2, "{run}");
    assert!(run.stderr.contains(arg(&missing)), "the error names the file: {run}");
    assert_eq!(run.stdout, "", "{run}");
}

#[test]
fn an_unparsable_file_exits_2() {
    let dir = scratch();
    for (name, text) in [
        ("truncated.json", "{\"apiVersion\": "),
        ("broken.yaml", "containerDefinitions: [unclosed\n"),
    ] {
        let file = write(dir.path(), name, text);
        let run = ecskube(&["validate", arg(&file)], None);
        assert_eq!(run.code, 2, "{name}: {run}");
        assert!(
            run.stderr.contains(&format!("{}: not valid JSON or YAML", arg(&file))),
            "{name}: {run}"
        );
    }
}

#[test]
fn an_unreadable_file_wins_over_an_invalid_one_but_all_are_checked() {
    let dir = scratch();
    let bad = write(dir.path(), "imagee.json", &sample_with_imagee());
    let missing = dir.path().join("missing.json");
    let run = ecskube(&["validate", SAMPLE, arg(&missing), arg(&bad)], None);
    assert_eq!(run.code, 2, "{run}");
    assert!(
        run.stdout.contains("ContainerDefinitions[0].Imagee: error:"),
        "the invalid file is still reported: {run}"
    );
    assert!(
        run.lines()
            .iter()
            .filter(|l| l.starts_with(SAMPLE))
            .all(|l| l.contains(": warning: ")),
        "the valid sample has no error: {run}"
    );
}

#[test]
fn several_files_exit_1_when_any_has_errors() {
    let dir = scratch();
    let bad = write(dir.path(), "imagee.json", &sample_with_imagee());
    let run = ecskube(&["validate", SAMPLE, arg(&bad)], None);
    assert_eq!(run.code, 1, "{run}");
    assert!(run.stderr.contains("1 of 2 definitions valid"), "{run}");
}

#[test]
fn dash_reads_standard_input() {
    let sample_text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(SAMPLE)).expect("sample");
    let run = ecskube(&["validate", "-"], Some(&sample_text));
    assert_eq!(run.code, 0, "{run}");

    let run = ecskube(&["validate", "-"], Some(&sample_with_imagee()));
    assert_eq!(run.code, 1, "{run}");
    assert_compiler_style(&run, "<stdin>");
    assert!(
        run.stdout
            .contains("<stdin>: spec.Task.Properties.ContainerDefinitions[0].Imagee: error: unknown field `Imagee`"),
        "{run}"
    );

    let run = ecskube(&["validate", "-"], Some("{ not json"));
    assert_eq!(run.code, 2, "{run}");
    assert!(run.stderr.contains("<stdin>: not valid JSON or YAML"), "{run}");
}

#[test]
fn a_yaml_stream_is_reported_per_document() {
    let dir = scratch();
    let file = write(dir.path(), "two.yaml", TWO_DOCUMENTS);
    let name = arg(&file);
    let run = ecskube(&["validate", name], None);
    assert_eq!(run.code, 1, "{run}");
    let first = format!("{name}#0");
    let second = format!("{name}#1");
    assert!(!run.stdout.contains(&format!("{first}: ")), "the first document is valid: {run}");
    let lines = run.lines();
    assert!(lines.iter().all(|l| l.starts_with(&format!("{second}: "))), "{run}");
    assert_compiler_style(&run, &second);
    for expected in [
        format!("{second}: networkMode: error: "),
        format!("{second}: containerDefinitions[0].memory: error: wrong type"),
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(&expected)),
            "no line starting with `{expected}`: {run}"
        );
    }
    assert!(run.stderr.contains("1 of 2 definitions valid"), "{run}");
}

#[test]
fn a_single_document_is_named_by_its_file_alone() {
    let dir = scratch();
    let file = write(
        dir.path(),
        "one.yaml",
        &format!("---\n{}", TWO_DOCUMENTS.split("---\n").nth(1).expect("second doc")),
    );
    let run = ecskube(&["validate", arg(&file)], None);
    assert_eq!(run.code, 1, "{run}");
    assert_compiler_style(&run, arg(&file));
}

#[test]
fn json_output_holds_the_diagnostics() {
    let dir = scratch();
    let file = write(dir.path(), "two.yaml", TWO_DOCUMENTS);
    let name = arg(&file);
    let run = ecskube(&["validate", "-o", "json", name], None);
    assert_eq!(run.code, 1, "{run}");
    let results: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {run}"));
    let results = results.as_array().expect("a list of results");
    assert_eq!(results.len(), 2, "{run}");

    assert_eq!(results[0]["file"], format!("{name}#0"));
    assert_eq!(results[0]["document"], 0);
    assert_eq!(results[0]["errors"], 0);
    assert_eq!(results[0]["diagnostics"], json!([]));

    let second = &results[1];
    assert_eq!(second["file"], format!("{name}#1"));
    assert_eq!(second["document"], 1);
    let diags = second["diagnostics"].as_array().expect("diagnostics list");
    assert_eq!(second["errors"], diags.iter().filter(|d| d["severity"] == "error").count());
    assert_eq!(second["warnings"], diags.iter().filter(|d| d["severity"] == "warning").count());
    for d in diags {
        for field in ["severity", "code", "path", "message"] {
            assert!(d[field].is_string(), "diagnostic without {field}: {d}");
        }
    }
    let find = |path: &str| {
        diags
            .iter()
            .find(|d| d["path"] == path)
            .unwrap_or_else(|| panic!("no diagnostic at {path}: {run}"))
    };
    let memory = find("containerDefinitions[0].memory");
    assert_eq!(memory["severity"], "error");
    assert_eq!(memory["code"], "InvalidType");
    assert_eq!(memory["found"], "\"lots\"");
    let network = find("networkMode");
    assert_eq!(network["severity"], "error");
    assert_eq!(network["code"], "NotSupported");
}

#[test]
fn json_output_of_a_valid_file() {
    let dir = scratch();
    let file = write(
        dir.path(),
        "clean.json",
        r#"{"containerDefinitions": [{"name": "web", "image": "nginx", "memory": 128}]}"#,
    );
    let run = ecskube(&["validate", "--output", "json", arg(&file)], None);
    assert_eq!(run.code, 0, "{run}");
    let results: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {run}"));
    assert_eq!(
        results,
        json!([{"file": arg(&file), "document": 0, "errors": 0, "warnings": 0, "diagnostics": []}]),
        "{run}"
    );
}

#[test]
fn warnings_alone_exit_0() {
    let dir = scratch();
    let file = write(dir.path(), "string-port.json", STRING_PORT);
    let run = ecskube(&["validate", arg(&file)], None);
    assert_eq!(run.code, 0, "{run}");
    assert_compiler_style(&run, arg(&file));
    let expected = format!("{}: containerDefinitions[0].portMappings[0].containerPort: warning: ", arg(&file));
    assert_eq!(run.lines().len(), 1, "{run}");
    assert!(run.lines()[0].starts_with(&expected), "{run}");
    assert!(run.stderr.contains("1 of 1 definitions valid; 0 errors, 1 warnings"), "{run}");

    let run = ecskube(&["validate", "-o", "json", arg(&file)], None);
    assert_eq!(run.code, 0, "{run}");
    let results: Value = serde_json::from_str(&run.stdout).expect("JSON output");
    let d = &results[0]["diagnostics"][0];
    assert_eq!(d["severity"], "warning");
    assert_eq!(d["code"], "Converted");
    assert_eq!(d["path"], "containerDefinitions[0].portMappings[0].containerPort");
}

#[test]
fn validate_warns_about_what_does_not_carry_over_as_the_webhook_does() {
    let dir = scratch();
    let task = r#"{"family": "web", "containerDefinitions": [{"name": "web", "image": "nginx", "memory": 128,
        "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/ecs/web"}}}]}"#;
    let file = write(dir.path(), "awslogs.json", task);
    let run = ecskube(&["validate", arg(&file)], None);
    assert_eq!(run.code, 0, "{run}");
    let expected = format!(
        "{}: containerDefinitions[0].logConfiguration: warning: `logConfiguration` is not carried over",
        arg(&file)
    );
    assert!(run.lines().iter().any(|l| l.starts_with(&expected)), "{run}");
    assert!(run.stderr.contains("0 errors, 1 warnings"), "{run}");
}

// ---- ecskube convert ----

#[test]
fn convert_prints_yaml_documents_or_a_json_list_and_warns_on_stderr() {
    let yaml = ecskube(&["convert", SAMPLE], None);
    assert_eq!(yaml.code, 0, "{yaml}");
    let docs: Vec<Value> = serde_yaml_ng::Deserializer::from_str(&yaml.stdout)
        .map(|d| serde::Deserialize::deserialize(d).expect("YAML document"))
        .collect();
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["Deployment", "Service"], "{yaml}");
    // Warnings go to stderr, naming the field; stdout stays pure objects.
    assert!(yaml.stderr.contains("HostPort") && yaml.stderr.contains("warning:"), "{yaml}");
    assert!(!yaml.stdout.contains("warning"), "{yaml}");

    let json = ecskube(&["convert", "-o", "json", SAMPLE], None);
    assert_eq!(json.code, 0, "{json}");
    let list: Value = serde_json::from_str(&json.stdout).expect("JSON output");
    assert_eq!(list["kind"], "List");
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    assert_eq!(list["items"][0], docs[0], "the same objects in both forms");
}

#[test]
fn convert_exits_1_on_invalid_and_2_on_unreadable_input() {
    let dir = scratch();
    let invalid = write(dir.path(), "invalid.json", &sample_with_imagee());
    let run = ecskube(&["convert", arg(&invalid)], None);
    assert_eq!(run.code, 1, "{run}");
    assert!(run.stdout.is_empty(), "objects printed for an invalid input: {run}");
    assert!(run.stderr.contains("ContainerDefinitions[0].Imagee"), "{run}");
    let run = ecskube(&["convert", arg(&dir.path().join("missing.json"))], None);
    assert_eq!(run.code, 2, "{run}");
    let garbage = write(dir.path(), "garbage.json", "{not: [json");
    let run = ecskube(&["convert", arg(&garbage)], None);
    assert_eq!(run.code, 2, "{run}");
}
