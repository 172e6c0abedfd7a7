//! `admission`: bytes as the body of a POST to /validate and /mutate, down
//! the webhook's pure path (src/webhook/server.rs without HTTP, ConfigMaps
//! or preflight): `admission::Review::from_slice` (as `read_review`), then
//! `rejudge`, `document`, `evaluate` (default `Policy`, no ConfigMaps),
//! `validation_response`, and `mutation_response`.
//!
//! Properties, on every input:
//! - nothing panics;
//! - both responses serialize as an AdmissionReview (with the patch as the
//!   base64 string `server::answer` sends) and read back;
//! - the validating answer denies exactly when the engine found errors, and
//!   stays readable: at most `MAX_DENIAL_ERRORS` causes, each clipped to
//!   `MAX_ERROR_CHARS`;
//! - warnings: each at most `MAX_WARNING_CHARS`, all together within
//!   `MAX_WARNINGS_TOTAL_CHARS` (plus the one closing "... and N more"
//!   line), and below the API server's 4096-character limit;
//! - a mutating patch applies to the object, and the patched object needs no
//!   further patch.

use ecskube::document::FromConfigMaps;
use ecskube::policy::Policy;
use ecskube::webhook::admission::{
    evaluate, mutation_response, rejudge, validation_response, Review, MAX_DENIAL_ERRORS, MAX_ERROR_CHARS, MAX_WARNINGS_TOTAL_CHARS,
    MAX_WARNING_CHARS,
};
use kube::core::admission::{AdmissionRequest, AdmissionResponse};
use kube::core::DynamicObject;
use serde_json::Value;

/// The API server ignores warnings past 4096 characters in total.
const API_SERVER_WARNINGS_LIMIT: usize = 4096;
/// The closing "... and N more warnings (...)" line may come on top of MAX_WARNINGS_TOTAL_CHARS.
const TAIL_ALLOWANCE: usize = 100;

pub fn check(data: &[u8]) {
    let Ok(review) = Review::from_slice(data) else {
        return;
    };
    let _ = rejudge(&review);
    let object = review.object.clone();
    let (req, doc, old) = review.into_parts();
    let eval = evaluate(
        &req,
        doc,
        old.as_ref(),
        FromConfigMaps::default(),
        Vec::new(),
        &Policy::default(),
        &Default::default(),
    );
    let diagnostics = eval.report.diagnostics;
    if let Some(c) = &eval.converted {
        super::check_objects(&c.objects);
    }

    let validation = validation_response(&req, &diagnostics);
    assert_eq!(
        validation.allowed,
        !diagnostics.iter().any(|d| d.is_error()),
        "denied exactly when there are errors"
    );
    check_warnings(&validation);
    if !validation.allowed {
        let details = validation.result.details.as_ref().expect("a denial has details");
        assert!(details.causes.len() <= MAX_DENIAL_ERRORS, "{} causes", details.causes.len());
        for c in &details.causes {
            assert!(c.message.len() <= MAX_ERROR_CHARS, "cause message of {} bytes", c.message.len());
            assert!(c.field.len() <= MAX_ERROR_CHARS, "cause field of {} bytes", c.field.len());
        }
        // Header, the listed errors (each clipped, on its own line), the count of the rest.
        let bound = 200 + req.name.len() * 10 + MAX_DENIAL_ERRORS * (MAX_ERROR_CHARS + 3) + 200;
        assert!(
            validation.result.message.len() <= bound,
            "denial message of {} bytes",
            validation.result.message.len()
        );
    }
    answer(validation);

    let mutation = mutation_response(&req, object.clone());
    check_warnings(&mutation);
    let patch = mutation.patch.clone();
    answer(mutation);
    if let (Some(bytes), Some(object)) = (patch, object) {
        check_patch(&req, object, &bytes);
    }
}

fn check_warnings(resp: &AdmissionResponse) {
    let Some(warnings) = &resp.warnings else { return };
    let mut total = 0;
    for w in warnings {
        assert!(w.len() <= MAX_WARNING_CHARS, "a warning of {} bytes: {w}", w.len());
        total += w.len();
    }
    assert!(
        total <= MAX_WARNINGS_TOTAL_CHARS + TAIL_ALLOWANCE,
        "{} warnings of {total} bytes in all",
        warnings.len()
    );
    // What the API server itself keeps, whatever ecskube's own budget says.
    assert!(
        total <= API_SERVER_WARNINGS_LIMIT,
        "warnings beyond the API server's {API_SERVER_WARNINGS_LIMIT} bytes"
    );
}

/// What `server::answer` sends (the patch as a base64 string), read back as a review.
fn answer(resp: AdmissionResponse) {
    use base64::Engine;
    let mut review = serde_json::to_value(resp.into_review()).expect("the review serializes");
    if let Some(slot) = review.pointer_mut("/response/patch") {
        if let Some(bytes) = slot
            .as_array()
            .map(|a| a.iter().filter_map(|b| b.as_u64().map(|b| b as u8)).collect::<Vec<u8>>())
        {
            *slot = Value::String(base64::engine::general_purpose::STANDARD.encode(bytes));
        }
    }
    let text = serde_json::to_string(&review).expect("the review serializes to text");
    serde_json::from_str::<Value>(&text).expect("the review reads back as JSON");
}

/// The patch applies to the object as the API server holds it, and the
/// patched object, admitted again, gets no further patch.
fn check_patch(req: &AdmissionRequest<DynamicObject>, object: Value, bytes: &[u8]) {
    let patch: json_patch::Patch = serde_json::from_slice(bytes).expect("the patch is a JSON Patch");
    let mut value = object;
    let before = value.clone();
    if let Err(e) = json_patch::patch(&mut value, &patch) {
        panic!(
            "the mutating patch does not apply to the request's object: {e}\npatch: {}\nobject: {before}",
            String::from_utf8_lossy(bytes)
        );
    }
    if let Err(e) = serde_json::from_value::<DynamicObject>(value.clone()) {
        panic!("the patched object is no longer an object: {e}\n{value}");
    }
    let second = mutation_response(req, Some(value));
    assert!(
        second.patch.is_none(),
        "the patched object is patched again: {}\nfirst patch: {}\nobject: {before}",
        String::from_utf8_lossy(second.patch.as_deref().unwrap_or_default()),
        String::from_utf8_lossy(bytes)
    );
}
