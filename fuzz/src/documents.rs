//! `documents`: bytes as a file `ecskube validate` / `ecskube convert` reads
//! (UTF-8 text, JSON or a YAML stream: `document::parse_documents`), then per
//! document the engine (validate), the ECS defaults and the translation.
//!
//! Properties, on every input:
//! - nothing panics;
//! - the defaults patch applies to the document's own value, and computing
//!   the defaults of the patched document gives no operation (idempotent);
//! - defaults never make a valid document invalid (the API server runs the
//!   mutating webhook before the validating one) and never change what it
//!   converts to (the translation applies the same defaults itself);
//! - a valid document with a task converts, and every object it converts to
//!   round-trips through the k8s-openapi type of its kind.

use super::{check_objects, MAX_DOCUMENTS};
use ecskube::defaults::compute;
use ecskube::document::{parse_documents, EcsDocument};
use ecskube::translate::convert;

pub fn check(data: &[u8]) {
    // The CLI reads files with read_to_string: non-UTF-8 is unreadable, not parsed.
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(docs) = parse_documents(text) else { return };
    for doc in docs.iter().take(MAX_DOCUMENTS) {
        check_document(doc);
    }
}

pub fn check_document(doc: &EcsDocument) {
    let analysis = doc.analyze();
    let valid = !analysis.report.has_errors();
    // What `ecskube validate` does with a document.
    for d in &analysis.report.diagnostics {
        let _ = d.to_string();
    }
    let meta = doc.meta(&analysis);
    let converted = if valid && analysis.task.is_some() {
        let c = convert(&analysis, &meta).unwrap_or_else(|e| panic!("a valid document with a task does not convert: {e}"));
        check_objects(&c.objects);
        Some(c.objects)
    } else {
        None
    };

    // Defaults: apply, then compute again on the same kind of document.
    let patch = compute(&analysis, doc.name());
    if patch.0.is_empty() {
        return;
    }
    let mut patched = doc.value.clone();
    if let Err(e) = json_patch::patch(&mut patched, &patch) {
        panic!(
            "the defaults patch does not apply to the document: {e}\npatch: {}\ndocument: {}",
            serde_json::to_string(&patch).unwrap_or_default(),
            doc.value
        );
    }
    let again = EcsDocument {
        value: patched,
        kind: doc.kind,
        from_config_maps: doc.from_config_maps.clone(),
        params: doc.params.clone(),
    };
    let analysis2 = again.analyze();
    let patch2 = compute(&analysis2, again.name());
    assert!(
        patch2.0.is_empty(),
        "defaults are not idempotent: after\n{}\nthey still add\n{}\nto\n{}",
        serde_json::to_string(&patch).unwrap_or_default(),
        serde_json::to_string(&patch2).unwrap_or_default(),
        again.value
    );
    if valid {
        let new_errors: Vec<String> = analysis2.report.errors().map(ToString::to_string).collect();
        assert!(
            new_errors.is_empty(),
            "the defaults make a valid document invalid: {new_errors:#?}\npatch: {}\ndocument: {}",
            serde_json::to_string(&patch).unwrap_or_default(),
            doc.value
        );
    }
    if let Some(before) = converted {
        if analysis2.task.is_some() {
            let after = convert(&analysis2, &again.meta(&analysis2))
                .unwrap_or_else(|e| panic!("the defaulted document does not convert: {e}"))
                .objects;
            assert!(
                before == after,
                "the defaults change the conversion\npatch: {}\nbefore: {}\nafter: {}",
                serde_json::to_string(&patch).unwrap_or_default(),
                serde_json::to_string(&before).unwrap_or_default(),
                serde_json::to_string(&after).unwrap_or_default()
            );
        }
    }
}
