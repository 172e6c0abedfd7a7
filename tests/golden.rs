//! Golden conversions: samples/ and a representative part of the ECS corpus,
//! converted to YAML and compared with tests/golden/*.yaml. After an intended
//! change, regenerate with `UPDATE_GOLDEN=1 cargo test --test golden` and review the diff.

use ecskube::document::{parse_documents, DocKind};
use ecskube::translate::{convert, ConvertError};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn corpus() -> PathBuf {
    let dir = std::env::var_os("ECSKUBE_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("../shared/ecs-corpus"));
    assert!(
        dir.join("taskdefs").is_dir(),
        "ECS corpus not found in {} (set ECSKUBE_CORPUS)",
        dir.display()
    );
    dir
}

/// Objects as YAML documents, then the warnings as comments, so both are reviewed.
fn render(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = String::new();
    for doc in parse_documents(&text).expect("parses") {
        let analysis = doc.analyze();
        let converted = convert(&analysis, &doc.meta(&analysis)).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for o in &converted.objects {
            out.push_str("---\n");
            out.push_str(&serde_yaml_ng::to_string(o).expect("yaml"));
        }
        for d in analysis.report.warnings().chain(converted.report.warnings()) {
            out.push_str(&format!("# warning: {d}\n"));
        }
    }
    out
}

/// Only `UPDATE_GOLDEN=1` rewrites the files; any other value is a mistake
/// (CI refuses to run with the variable set at all: .ci/run).
fn update_requested() -> bool {
    update_requested_by(std::env::var("UPDATE_GOLDEN").ok().as_deref())
}

fn update_requested_by(value: Option<&str>) -> bool {
    match value {
        Some("1") => true,
        Some(v) => panic!("UPDATE_GOLDEN={v:?}: set it to 1 to rewrite the golden files, or unset it to compare"),
        None => false,
    }
}

#[test]
fn only_update_golden_1_rewrites_the_files() {
    assert!(update_requested_by(Some("1")));
    assert!(!update_requested_by(None));
    for other in ["0", "", "true", "yes"] {
        let outcome = std::panic::catch_unwind(|| update_requested_by(Some(other)));
        assert!(outcome.is_err(), "UPDATE_GOLDEN={other:?} was taken as a request to rewrite");
    }
}

/// CI compares goldens, never rewrites them: `.ci/run` refuses to start with
/// `UPDATE_GOLDEN` set at all. `make` on its PATH is a stand-in that records
/// being called, so a broken guard shows here instead of running the suite.
#[test]
fn ci_refuses_to_run_with_update_golden_set() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("make-was-called");
    let make = dir.path().join("make");
    std::fs::write(&make, format!("#!/bin/sh\ntouch {}\nexit 1\n", marker.display())).unwrap();
    std::fs::set_permissions(&make, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", dir.path().display(), std::env::var("PATH").unwrap_or_default());
    for value in ["1", "0", ""] {
        let out = std::process::Command::new("bash")
            .arg(root().join(".ci/run"))
            .env("UPDATE_GOLDEN", value)
            .env("PATH", &path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "UPDATE_GOLDEN={value:?}: {stderr}");
        assert!(stderr.contains("UPDATE_GOLDEN is set"), "UPDATE_GOLDEN={value:?}: {stderr}");
        assert!(!marker.exists(), "UPDATE_GOLDEN={value:?}: .ci/run went on to run make");
    }
}

fn check(input: &Path, golden: &str) {
    let actual = render(input);
    let file = root().join("tests/golden").join(golden);
    if update_requested() {
        std::fs::write(&file, &actual).expect("write golden");
        return;
    }
    let expected =
        std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1 to create it)", file.display()));
    assert!(
        actual == expected,
        "{} differs from {}; if intended, run UPDATE_GOLDEN=1 cargo test --test golden\n--- actual ---\n{actual}",
        input.display(),
        file.display()
    );
}

#[test]
fn samples() {
    check(&root().join("samples/ecsdeployment.json"), "sample-ecsdeployment.yaml");
    check(&root().join("samples/wordpress-links.json"), "sample-wordpress-links.yaml");
}

#[test]
fn representative_corpus_files() {
    for (file, golden) in [
        ("taskdefs/04-awslogs-wordpress-mysql-links.json", "corpus-04-wordpress-links.yaml"),
        ("taskdefs/05-firelens-cloudwatch.json", "corpus-05-firelens.yaml"),
        ("taskdefs/11-secrets-manager-tutorial.json", "corpus-11-secrets.yaml"),
        ("taskdefs/16-arm64-fargate.json", "corpus-16-arm64-fargate.yaml"),
        ("taskdefs/18-consul-server-host-network.json", "corpus-18-host-network.yaml"),
        ("taskdefs/25-agent-container-ordering.json", "corpus-25-container-ordering.yaml"),
        ("taskdefs/32-php-simple-app-volumesfrom.json", "corpus-32-volumesfrom.yaml"),
        ("cfn/13-privileged-task.json", "corpus-cfn-13-privileged.yaml"),
        ("cfn/20-docs-taskdef-dependson.json", "corpus-cfn-20-dependson.yaml"),
    ] {
        check(&corpus().join(file), golden);
    }
}

/// Every corpus file converts, or fails only with the engine's own errors.
#[test]
fn every_corpus_file_converts_or_fails_with_engine_errors() {
    let mut converted = 0;
    for sub in ["taskdefs", "services", "cfn"] {
        for entry in std::fs::read_dir(corpus().join(sub)).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            for doc in parse_documents(&text).unwrap() {
                if doc.kind == DocKind::Service {
                    continue; // a service alone has no task to run
                }
                let analysis = doc.analyze();
                match convert(&analysis, &doc.meta(&analysis)) {
                    Ok(c) => {
                        assert!(!c.objects.is_empty(), "{}", path.display());
                        converted += 1;
                    }
                    Err(ConvertError::Invalid(report)) => assert!(report.has_errors(), "{}", path.display()),
                    Err(e) => panic!("{}: {e}", path.display()),
                }
            }
        }
    }
    assert!(converted >= 30, "only {converted} corpus files converted");
}
