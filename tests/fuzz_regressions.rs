//! What the coverage-guided fuzzers (fuzz/, `make fuzz`) check, replayed on
//! every `make test`: each input kept in fuzz/regressions/<target>/ (inputs
//! a fuzzer once crashed on, minimized, then fixed) and the samples go
//! through the very property checks the fuzz targets run, compiled here
//! from fuzz/src.

#[path = "../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod fuzz_checks;

use std::path::{Path, PathBuf};

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect())
        .unwrap_or_default();
    files.retain(|p| p.file_name().is_some_and(|n| n != "README.md"));
    files.sort();
    files
}

fn replay(target: &str, check: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions").join(target);
    let inputs = files(&dir);
    for input in &inputs {
        let bytes = std::fs::read(input).unwrap();
        let outcome = std::panic::catch_unwind(|| check(&bytes));
        assert!(outcome.is_ok(), "{}: the {target} target's checks fail on it", input.display());
    }
    inputs.len()
}

#[test]
fn saved_fuzz_inputs_pass_the_documents_checks() {
    let n = replay("documents", fuzz_checks::documents::check);
    // The samples too: the same checks on inputs that must pass them.
    let samples = files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("samples"));
    assert!(samples.len() >= 3);
    for sample in &samples {
        fuzz_checks::documents::check(&std::fs::read(sample).unwrap());
    }
    eprintln!("{n} saved inputs and {} samples", samples.len());
}

#[test]
fn saved_fuzz_inputs_pass_the_intrinsics_checks() {
    eprintln!("{} saved inputs", replay("intrinsics", fuzz_checks::intrinsics::check));
}

#[test]
fn saved_fuzz_inputs_pass_the_admission_checks() {
    eprintln!("{} saved inputs", replay("admission", fuzz_checks::admission::check));
}
