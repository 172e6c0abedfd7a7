//! AdmissionReview in, AdmissionResponse out: the engine's verdict in the
//! shape `kubectl` shows. Pure: the server resolves ConfigMaps and runs the
//! preflight, then hands the results here.

use crate::diag::{Diagnostic, Report};
use crate::document::{EcsDocument, FromConfigMaps};
use crate::policy::Policy;
use crate::translate::{convert_with, Converted};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use kube::core::response::{StatusCause, StatusDetails, StatusSummary};
use kube::core::{DynamicObject, Status};
use serde::Deserialize;
use serde_json::Value;

/// The API server truncates single warnings past 256 characters and ignores
/// warnings past 4096 characters in total (admission webhook documentation);
/// stay inside both, keeping room for other sources' warnings.
pub const MAX_WARNING_CHARS: usize = 256;
pub const MAX_WARNINGS_TOTAL_CHARS: usize = 3072;
/// Errors listed in a denial; the rest are counted. Each is clipped too, so
/// a denial stays a readable size whatever the object holds.
pub const MAX_DENIAL_ERRORS: usize = 50;
pub const MAX_ERROR_CHARS: usize = 1024;

/// What the engine concluded about one admission request.
pub struct Evaluation {
    pub report: Report,
    /// The children the controller would write, when the object is valid.
    pub converted: Option<Converted>,
    pub namespace: String,
    pub name: String,
    /// The object as the engine read it (the preflight maps rejections through it).
    pub doc: Option<EcsDocument>,
}

/// One AdmissionReview as read off the wire. The object and oldObject stay
/// plain JSON, read once: typed as `DynamicObject`, whose fields are
/// flattened, serde buffers the whole object and the engine then copies it
/// back to JSON, which was most of the cost of a large review.
pub struct Review {
    /// The envelope: uid, kind, operation, user; `object` and `old_object` are below.
    pub request: AdmissionRequest<DynamicObject>,
    pub object: Option<Value>,
    pub old_object: Option<Value>,
}

impl Review {
    /// Reads a request body; the error says what is not an AdmissionReview.
    pub fn from_slice(bytes: &[u8]) -> Result<Review, String> {
        let mut review: Value = serde_json::from_slice(bytes).map_err(|e| format!("not an AdmissionReview: {e}"))?;
        let (object, old_object) = match review.get_mut("request").and_then(Value::as_object_mut) {
            Some(request) => (take_object(request, "object")?, take_object(request, "oldObject")?),
            None => (None, None),
        };
        let envelope: AdmissionReview<DynamicObject> =
            serde_json::from_value(review).map_err(|e| format!("not an AdmissionReview: {e}"))?;
        let request = envelope
            .try_into()
            .map_err(|e| format!("not an admission.k8s.io/v1 AdmissionReview request: {e}"))?;
        Ok(Review {
            request,
            object,
            old_object,
        })
    }

    /// The envelope, the engine's [`document`] of the object, and the oldObject.
    pub fn into_parts(self) -> (AdmissionRequest<DynamicObject>, Option<EcsDocument>, Option<Value>) {
        let doc = self.object.map(|o| document(&self.request, o));
        (self.request, doc, self.old_object)
    }
}

/// `request.object` or `request.oldObject`: absent, null, or an object whose
/// metadata reads as Kubernetes object metadata (as `DynamicObject` requires).
fn take_object(request: &mut serde_json::Map<String, Value>, key: &str) -> Result<Option<Value>, String> {
    match request.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(object @ Value::Object(_)) => {
            if let Some(meta) = object.get("metadata") {
                ObjectMeta::deserialize(meta).map_err(|e| format!("not an AdmissionReview: request.{key}.metadata: {e}"))?;
            }
            Ok(Some(object))
        }
        Some(_) => Err(format!("not an AdmissionReview: request.{key} is not an object")),
    }
}

/// The object of a request as the engine reads it.
pub fn document(req: &AdmissionRequest<DynamicObject>, mut value: Value) -> EcsDocument {
    // The API server fills these in; the engine wants them for names and paths.
    if value.get("apiVersion").is_none() {
        value["apiVersion"] = Value::String(format!("{}/{}", req.kind.group, req.kind.version));
    }
    if value.get("kind").is_none() {
        value["kind"] = Value::String(req.kind.kind.clone());
    }
    if value.pointer("/metadata/namespace").is_none() {
        if let Some(ns) = &req.namespace {
            value["metadata"]["namespace"] = Value::String(ns.clone());
        }
    }
    EcsDocument::classify(value)
}

/// Runs the engine, the policy and the translation over a request's object.
/// `config_maps` holds definitions read for TaskFrom/ServiceFrom; `notes` are
/// warnings found while reading them (a missing ConfigMap is not an error).
/// `doc` is [`document`] of the request's object, `old_object` its oldObject.
pub fn evaluate(
    req: &AdmissionRequest<DynamicObject>,
    doc: Option<EcsDocument>,
    old_object: Option<&Value>,
    config_maps: FromConfigMaps,
    notes: Vec<Diagnostic>,
    policy: &Policy,
    integrations: &crate::translate::Integrations,
) -> Evaluation {
    let namespace = req.namespace.clone().unwrap_or_else(|| "default".into());
    let Some(mut doc) = doc else {
        let mut report = Report::default();
        report.error(crate::diag::Code::InvalidType, "", "the request carries no object to check");
        return Evaluation {
            report,
            converted: None,
            namespace,
            name: req.name.clone(),
            doc: None,
        };
    };
    doc.from_config_maps = config_maps;
    let (report, converted, name) = {
        let analysis = doc.analyze();
        let mut report = Report { diagnostics: notes };
        report.diagnostics.extend(analysis.report.diagnostics.iter().cloned());
        report.diagnostics.extend(policy.check_in(&namespace, &analysis, integrations));
        if req.operation == Operation::Update {
            report.diagnostics.extend(update_notes(old_object, &doc));
        }
        let mut meta = doc.meta(&analysis);
        meta.namespace.get_or_insert_with(|| namespace.clone());
        let options = crate::translate::Options {
            integrations: integrations.clone(),
            ..policy.translate_options(&namespace)
        };
        let converted = if report.has_errors() || analysis.task.is_none() {
            None
        } else {
            match convert_with(&analysis, &meta, &options) {
                Ok(c) => {
                    report.diagnostics.extend(c.report.diagnostics.iter().cloned());
                    Some(c)
                }
                Err(e) => {
                    report.error(crate::diag::Code::Invalid, "spec", e.to_string());
                    None
                }
            }
        };
        (report, converted, meta.name)
    };
    Evaluation {
        report,
        converted,
        namespace,
        name,
        doc: Some(doc),
    }
}

/// Whether an admission needs a new verdict.
#[derive(Debug, PartialEq)]
pub enum Rejudge {
    Yes,
    /// No: the object is being deleted, or its spec is what was judged before.
    No(&'static str),
    /// The spec is unchanged: only if the ConfigMap content it names differs
    /// from what the children were made from (the digest in its status).
    IfSourcesChanged(Option<String>),
}

/// CREATE always; an UPDATE of an object being deleted never; an UPDATE
/// with the spec unchanged only when its ConfigMaps changed.
pub fn rejudge(review: &Review) -> Rejudge {
    if review.request.operation != Operation::Update {
        return Rejudge::Yes;
    }
    let null = Value::Null;
    let new = review.object.as_ref().unwrap_or(&null);
    if new.pointer("/metadata/deletionTimestamp").is_some_and(|t| !t.is_null()) {
        return Rejudge::No("the object is being deleted");
    }
    let old = review.old_object.as_ref().unwrap_or(&null);
    if new.get("spec").is_none() || new.get("spec") != old.get("spec") {
        return Rejudge::Yes;
    }
    if crate::document::config_map_refs(new).is_empty() {
        return Rejudge::No("the spec is unchanged");
    }
    let digest = old.pointer("/status/sourceDigest").and_then(Value::as_str).map(str::to_string);
    Rejudge::IfSourcesChanged(digest)
}

/// Changes that roll out differently from an ordinary update.
fn update_notes(old: Option<&Value>, new: &EcsDocument) -> Vec<Diagnostic> {
    let daemon = |v: &Value| {
        let s = v.pointer("/spec/Service");
        let strategy = s
            .and_then(|s| s.get("Properties").unwrap_or(s).as_object())
            .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case("schedulingStrategy")))
            .and_then(|(_, v)| v.as_str());
        strategy == Some("DAEMON")
    };
    let Some(old) = old else {
        return Vec::new();
    };
    let (was, is) = (daemon(old), daemon(&new.value));
    if was == is {
        return Vec::new();
    }
    let (from, to) = if is {
        ("Deployment", "DaemonSet")
    } else {
        ("DaemonSet", "Deployment")
    };
    let mut r = Report::default();
    r.warning(
        crate::diag::Code::NotCarriedOver,
        "spec.Service.schedulingStrategy",
        format!("switching between REPLICA and DAEMON replaces the {from} with a {to}: every task is recreated, not rolled"),
    );
    r.diagnostics
}

/// Warnings as the API server passes them on: each short, the whole bounded,
/// and a final count of what did not fit.
pub fn warning_lines(diags: &[Diagnostic]) -> Vec<String> {
    let all: Vec<String> = diags
        .iter()
        .filter(|d| !d.is_error())
        .map(|d| clip(&d.to_string(), MAX_WARNING_CHARS))
        .collect();
    let mut out = Vec::new();
    let mut used = 0;
    for (i, w) in all.iter().enumerate() {
        let rest = all.len() - i;
        let tail_room = if rest > 1 { 80 } else { 0 };
        if used + w.len() + tail_room > MAX_WARNINGS_TOTAL_CHARS {
            out.push(format!(
                "... and {rest} more warnings (run `ecskube validate` on the file to see them all)"
            ));
            return out;
        }
        used += w.len();
        out.push(w.clone());
    }
    out
}

fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max - 3;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// The validating verdict: the errors with their paths (the first
/// [`MAX_DENIAL_ERRORS`], then a count), warnings alongside. Nothing read
/// from a ConfigMap is quoted (see [`crate::document::shareable`]).
pub fn validation_response(req: &AdmissionRequest<DynamicObject>, diags: &[Diagnostic]) -> AdmissionResponse {
    let diags = crate::document::shareable(diags.to_vec());
    let mut resp = AdmissionResponse::from(req);
    let warnings = warning_lines(&diags);
    if !warnings.is_empty() {
        resp.warnings = Some(warnings);
    }
    let all_errors: Vec<&Diagnostic> = diags.iter().filter(|d| d.is_error()).collect();
    if all_errors.is_empty() {
        return resp;
    }
    let noun = if all_errors.len() == 1 { "error" } else { "errors" };
    let mut message = format!("ECSDeployment {:?} is invalid: {} {noun}:", req.name, all_errors.len());
    let errors = &all_errors[..all_errors.len().min(MAX_DENIAL_ERRORS)];
    for d in errors {
        message.push_str("\n  ");
        message.push_str(&clip(&d.to_string(), MAX_ERROR_CHARS));
    }
    if all_errors.len() > errors.len() {
        message.push_str(&format!(
            "\n  ... and {} more errors (run `ecskube validate` on the file to see them all)",
            all_errors.len() - errors.len()
        ));
    }
    resp.allowed = false;
    resp.result = Status {
        status: Some(StatusSummary::Failure),
        code: 422,
        message,
        metadata: None,
        reason: "Invalid".into(),
        details: Some(StatusDetails {
            name: req.name.clone(),
            group: req.kind.group.clone(),
            kind: req.kind.kind.clone(),
            uid: String::new(),
            causes: errors
                .iter()
                .map(|d| StatusCause {
                    reason: d.code.k8s_reason().into(),
                    message: clip(&d.detail(), MAX_ERROR_CHARS),
                    field: clip(&d.path, MAX_ERROR_CHARS),
                })
                .collect(),
            retry_after_seconds: 0,
        }),
    };
    resp
}

/// The mutating verdict: the ECS defaults as a JSON Patch, or nothing.
pub fn mutation_response(req: &AdmissionRequest<DynamicObject>, object: Option<Value>) -> AdmissionResponse {
    let resp = AdmissionResponse::from(req);
    let Some(object) = object else { return resp };
    let doc = document(req, object);
    let analysis = doc.analyze();
    let patch = crate::defaults::compute(&analysis, doc.name());
    if patch.0.is_empty() {
        return resp;
    }
    // Every operation adds a member the user left out, at a place that exists.
    match resp.clone().with_patch(patch) {
        Ok(patched) => patched,
        Err(_) => resp,
    }
}

/// A review for a body that is not an AdmissionReview the engine can read.
pub fn bad_request(message: &str) -> AdmissionResponse {
    AdmissionResponse::invalid(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::{Code, Report};
    use serde_json::json;

    #[test]
    fn warnings_stay_within_the_api_servers_limits_and_count_the_rest() {
        let mut r = Report::default();
        for i in 0..200 {
            r.warning(
                Code::NotCarriedOver,
                format!("spec.Task.containerDefinitions[{i}].logConfiguration"),
                "x".repeat(300),
            );
        }
        let lines = warning_lines(&r.diagnostics);
        assert!(lines.iter().all(|l| l.len() <= MAX_WARNING_CHARS), "each warning is clipped");
        assert!(lines.iter().map(String::len).sum::<usize>() <= MAX_WARNINGS_TOTAL_CHARS + 100);
        let last = lines.last().unwrap();
        assert!(last.starts_with("... and ") && last.contains("more warnings"), "{last}");
        let shown = lines.len() - 1;
        assert!(last.contains(&format!("and {} more", 200 - shown)), "{last}");
    }

    fn request(operation: &str, object: serde_json::Value, old: Option<serde_json::Value>) -> Review {
        let review = serde_json::to_vec(&json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u", "kind": {"group": "ecskube.ecskube", "version": "v1alpha1", "kind": "ECSDeployment"},
                "resource": {"group": "ecskube.ecskube", "version": "v1alpha1", "resource": "ecsdeployments"},
                "name": "x", "namespace": "default", "operation": operation, "userInfo": {}, "object": object, "oldObject": old, "dryRun": false}
        }))
        .unwrap();
        Review::from_slice(&review).unwrap()
    }

    #[test]
    fn switching_replica_to_daemon_says_it_recreates() {
        let object = |strategy: &str| {
            json!({"apiVersion": "ecskube.ecskube/v1alpha1", "kind": "ECSDeployment", "metadata": {"name": "x", "namespace": "default"},
                "spec": {"Task": {"containerDefinitions": [{"name": "a", "image": "i", "memory": 64}]}, "Service": {"schedulingStrategy": strategy}}})
        };
        let (req, doc, old) = request("UPDATE", object("DAEMON"), Some(object("REPLICA"))).into_parts();
        let eval = evaluate(
            &req,
            doc,
            old.as_ref(),
            FromConfigMaps::default(),
            Vec::new(),
            &Policy::default(),
            &Default::default(),
        );
        assert!(!eval.report.has_errors());
        assert!(eval
            .report
            .warnings()
            .any(|w| w.message.contains("replaces the Deployment with a DaemonSet")));
        let (same, doc, old) = request("UPDATE", object("REPLICA"), Some(object("REPLICA"))).into_parts();
        let eval = evaluate(
            &same,
            doc,
            old.as_ref(),
            FromConfigMaps::default(),
            Vec::new(),
            &Policy::default(),
            &Default::default(),
        );
        assert!(!eval.report.warnings().any(|w| w.message.contains("replaces")));
    }
}
