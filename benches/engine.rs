//! Engine benchmarks: analyzing the sample ECSDeployment (with and without
//! parsing), computing its defaults, analyzing every file of the ECS corpus
//! ($ECSKUBE_CORPUS or ../shared/ecs-corpus; skipped when absent), and the
//! webhook's pure path (review bytes in, answer bytes out) for the sample
//! and for the large review of `make bench-webhook` (bench/large-review.py),
//! stage by stage, so a cost that grows faster than the bytes shows where.
//!
//! `cargo bench --bench engine -- --warm-up-time 1 --measurement-time 3`

use criterion::{criterion_group, criterion_main, Criterion};
use ecskube::defaults;
use ecskube::document::{parse_documents, EcsDocument};
use std::hint::black_box;
use std::path::{Path, PathBuf};

// The allocator of the `ecskube` binary (src/main.rs), so these figures are
// what the webhook and the CLI spend.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn sample_text() -> String {
    let path = manifest_dir().join("samples/ecsdeployment.json");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn sample_document(text: &str) -> EcsDocument {
    let mut docs = parse_documents(text).expect("the sample parses");
    assert_eq!(docs.len(), 1, "the sample is one document");
    docs.remove(0)
}

fn corpus_dir() -> PathBuf {
    std::env::var_os("ECSKUBE_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir().join("../shared/ecs-corpus"))
}

/// Every JSON/YAML file under `dir`, recursively, in a stable order.
fn corpus_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if matches!(path.extension().and_then(|e| e.to_str()), Some("json" | "yaml" | "yml")) {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn sample(c: &mut Criterion) {
    let text = sample_text();
    let doc = sample_document(&text);
    assert!(!doc.analyze().report.has_errors(), "the sample must be valid");

    c.bench_function("validate_sample", |b| {
        b.iter(|| black_box(black_box(&doc).analyze().report.diagnostics.len()))
    });

    c.bench_function("validate_sample_with_parse", |b| {
        b.iter(|| {
            let docs = parse_documents(black_box(&text)).expect("the sample parses");
            black_box(docs.iter().map(|d| d.analyze().report.diagnostics.len()).sum::<usize>())
        })
    });

    c.bench_function("defaults_sample", |b| {
        b.iter(|| {
            let doc = black_box(&doc);
            let analysis = doc.analyze();
            black_box(defaults::compute(&analysis, doc.name()))
        })
    });

    // What the controller does per reconcile: analyze, then translate.
    c.bench_function("convert_sample", |b| {
        b.iter(|| {
            let doc = black_box(&doc);
            let analysis = doc.analyze();
            black_box(
                ecskube::translate::convert(&analysis, &doc.meta(&analysis))
                    .expect("converts")
                    .objects
                    .len(),
            )
        })
    });

    // Translation alone, on an analysis made once.
    let analysis = doc.analyze();
    let meta = doc.meta(&analysis);
    c.bench_function("translate_sample", |b| {
        b.iter(|| {
            black_box(
                ecskube::translate::convert(black_box(&analysis), &meta)
                    .expect("converts")
                    .objects
                    .len(),
            )
        })
    });
}

fn corpus(c: &mut Criterion) {
    let dir = corpus_dir();
    let files = corpus_files(&dir);
    if files.is_empty() {
        eprintln!("validate_corpus skipped: no ECS corpus in {} (set ECSKUBE_CORPUS)", dir.display());
        return;
    }
    let docs: Vec<EcsDocument> = files
        .iter()
        .filter_map(|f| {
            let text = std::fs::read_to_string(f).ok()?;
            parse_documents(&text).ok()
        })
        .flatten()
        .collect();
    eprintln!(
        "validate_corpus: {} documents from {} files in {}",
        docs.len(),
        files.len(),
        dir.display()
    );

    c.bench_function("validate_corpus", |b| {
        b.iter(|| black_box(black_box(&docs).iter().map(|d| d.analyze().report.diagnostics.len()).sum::<usize>()))
    });
}

/// The sample's ECSDeployment as an AdmissionReview, as the API server sends it.
fn sample_review() -> Vec<u8> {
    let object: serde_json::Value = serde_json::from_str(&sample_text()).unwrap();
    serde_json::to_vec(&serde_json::json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "bench",
            "kind": {"group": "ecskube.ecskube", "version": "v1alpha1", "kind": "ECSDeployment"},
            "resource": {"group": "ecskube.ecskube", "version": "v1alpha1", "resource": "ecsdeployments"},
            "name": "ecs-demo-deploy", "namespace": "default", "operation": "CREATE",
            "userInfo": {"username": "bench"}, "object": object, "dryRun": false,
        }
    }))
    .unwrap()
}

/// The large review of `make bench-webhook`, from its generator.
fn large_review() -> Option<Vec<u8>> {
    let out = std::process::Command::new("python3")
        .arg(manifest_dir().join("bench/large-review.py"))
        .output()
        .ok()?;
    out.status.success().then_some(out.stdout)
}

fn parse_review(bytes: &[u8]) -> ecskube::webhook::admission::Review {
    ecskube::webhook::admission::Review::from_slice(bytes).unwrap()
}

fn admission(c: &mut Criterion) {
    use ecskube::webhook::admission;
    let policy = ecskube::policy::Policy::default();
    let mut reviews = vec![("sample", sample_review())];
    match large_review() {
        Some(r) => reviews.push(("large", r)),
        None => eprintln!("admission_large skipped: python3 bench/large-review.py failed"),
    }
    for (name, bytes) in &reviews {
        let review = parse_review(bytes);
        let (request, object) = (review.request, review.object.expect("the review carries an object"));
        let evaluation = admission::evaluate(
            &request,
            Some(admission::document(&request, object.clone())),
            None,
            Default::default(),
            Vec::new(),
            &policy,
            &Default::default(),
        );
        assert!(!evaluation.report.has_errors(), "{name}: {:?}", evaluation.report.diagnostics);

        c.bench_function(&format!("admission_{name}_parse_review"), |b| {
            b.iter(|| black_box(parse_review(black_box(bytes))))
        });
        c.bench_function(&format!("admission_{name}_evaluate"), |b| {
            b.iter_batched(
                || object.clone(),
                |object| {
                    let doc = admission::document(&request, object);
                    black_box(
                        admission::evaluate(
                            &request,
                            Some(doc),
                            None,
                            Default::default(),
                            Vec::new(),
                            &policy,
                            &Default::default(),
                        )
                        .report
                        .diagnostics
                        .len(),
                    )
                },
                criterion::BatchSize::SmallInput,
            )
        });
        c.bench_function(&format!("admission_{name}_validate_whole"), |b| {
            b.iter(|| {
                let (request, doc, old) = parse_review(black_box(bytes)).into_parts();
                let e = admission::evaluate(
                    &request,
                    doc,
                    old.as_ref(),
                    Default::default(),
                    Vec::new(),
                    &policy,
                    &Default::default(),
                );
                let response = admission::validation_response(&request, &e.report.diagnostics);
                black_box(serde_json::to_vec(&response.into_review()).unwrap().len())
            })
        });
        c.bench_function(&format!("admission_{name}_mutate_whole"), |b| {
            b.iter(|| {
                let review = parse_review(black_box(bytes));
                let response = admission::mutation_response(&review.request, review.object);
                black_box(serde_json::to_vec(&response.into_review()).unwrap().len())
            })
        });
    }
}

criterion_group!(benches, sample, corpus, admission);
criterion_main!(benches);
