//! The two ways the controller writes a child, each safe against a race
//! with whoever else writes objects of that name:
//!
//! - [`create`]: a plain create, which fails if the name was taken meanwhile
//!   (server-side apply would merge into the other object and adopt it);
//! - [`apply_over`]: a forced server-side apply whose body carries the uid of
//!   the object whose ownership was checked, so a replacement made meanwhile
//!   is refused by the API server instead of taken over.

use crate::translate::MANAGER;
use kube::api::{DynamicObject, Patch, PatchParams, PostParams};
use kube::Api;
use serde_json::{json, Value};

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// Someone else holds the name (create), or the checked object is gone
    /// or replaced (apply): nothing was written.
    #[error("the object was created, replaced or deleted by someone else meanwhile")]
    Raced,
    #[error(transparent)]
    Kube(#[from] kube::Error),
    #[error("the desired object is not a Kubernetes object: {0}")]
    Malformed(#[from] serde_json::Error),
}

/// Creates `desired`, never touching an existing object of that name. The
/// create's field ownership is recorded as an apply, so later applies can
/// remove what the desired state no longer has.
pub async fn create(api: &Api<DynamicObject>, desired: &Value) -> Result<DynamicObject, WriteError> {
    let object: DynamicObject = serde_json::from_value(desired.clone())?;
    let params = PostParams {
        dry_run: false,
        field_manager: Some(MANAGER.into()),
    };
    let created = match api.create(&params, &object).await {
        Ok(created) => created,
        Err(kube::Error::Api(s)) if s.code == 409 => return Err(WriteError::Raced),
        Err(e) => return Err(e.into()),
    };
    match record_as_applied(api, &created).await {
        Ok(updated) => Ok(updated),
        Err(e) => {
            // The object exists and is ours; only a later field removal may linger.
            tracing::warn!(error = %e, "could not record a creation as an apply");
            Ok(created)
        }
    }
}

/// Applies `desired` (forced: ecskube owns its children's fields) to the
/// object with uid `live_uid`, and to no other.
pub async fn apply_over(api: &Api<DynamicObject>, desired: &Value, live_uid: &str) -> Result<DynamicObject, WriteError> {
    let mut body = desired.clone();
    body["metadata"]["uid"] = Value::String(live_uid.to_string());
    let name = body["metadata"]["name"].as_str().unwrap_or_default().to_string();
    match api.patch(&name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&body)).await {
        Ok(applied) => Ok(applied),
        // 409: no object of that name any more; 422: another object (uid is immutable).
        Err(kube::Error::Api(s)) if s.code == 409 || (s.code == 422 && s.message.contains("metadata.uid")) => Err(WriteError::Raced),
        Err(e) => Err(e.into()),
    }
}

/// The field manager that keeps `spec.replicas` between ecskube letting go
/// of it and a HorizontalPodAutoscaler taking it (Kubernetes' documented
/// "transferring ownership" of a field).
pub const REPLICAS_HANDOVER_MANAGER: &str = "ecskube-replicas-handover";

/// Applies only the live replica count, as [`REPLICAS_HANDOVER_MANAGER`], to
/// exactly the object read: ecskube's next apply without `replicas` then
/// leaves the count as it is.
pub async fn hand_over_replicas(api: &Api<DynamicObject>, live: &DynamicObject) -> Result<DynamicObject, WriteError> {
    let name = live.metadata.name.clone().unwrap_or_default();
    let types = live.types.clone().unwrap_or_default();
    let body = json!({
        "apiVersion": types.api_version,
        "kind": types.kind,
        "metadata": {"name": name, "uid": live.metadata.uid},
        "spec": {"replicas": live.data.pointer("/spec/replicas").cloned().unwrap_or(json!(1))},
    });
    let params = PatchParams::apply(REPLICAS_HANDOVER_MANAGER).force();
    match api.patch(&name, &params, &Patch::Apply(&body)).await {
        Ok(applied) => Ok(applied),
        Err(kube::Error::Api(s)) if s.code == 409 || (s.code == 422 && s.message.contains("metadata.uid")) => Err(WriteError::Raced),
        Err(e) => Err(e.into()),
    }
}

/// Rewrites the create's managedFields entry (ecskube, Update) as (ecskube,
/// Apply), guarded by `test` operations on exactly that entry and version.
async fn record_as_applied(api: &Api<DynamicObject>, created: &DynamicObject) -> Result<DynamicObject, kube::Error> {
    let entries = created.metadata.managed_fields.as_deref().unwrap_or_default();
    let Some(i) = entries.iter().position(|e| {
        e.manager.as_deref() == Some(MANAGER)
            && e.operation.as_deref() == Some("Update")
            && e.subresource.as_deref().unwrap_or("").is_empty()
    }) else {
        return Ok(created.clone());
    };
    let patch: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/metadata/resourceVersion", "value": created.metadata.resource_version},
        {"op": "test", "path": format!("/metadata/managedFields/{i}/manager"), "value": MANAGER},
        {"op": "test", "path": format!("/metadata/managedFields/{i}/operation"), "value": "Update"},
        {"op": "replace", "path": format!("/metadata/managedFields/{i}/operation"), "value": "Apply"},
    ]))
    .expect("a well-formed JSON patch");
    let name = created.metadata.name.clone().unwrap_or_default();
    api.patch(&name, &PatchParams::default(), &Patch::<()>::Json(patch)).await
}
