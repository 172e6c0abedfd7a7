//! The definitions an ECSDeployment names through TaskFrom/ServiceFrom,
//! read from ConfigMaps in the request's namespace. A missing ConfigMap is a
//! warning (create order does not matter: the controller waits for it).

use crate::diag::{Code, Diagnostic, Report};
use crate::document::{config_map_path, config_map_refs, definition_from_config_map, source_digest, FromConfigMaps};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::core::admission::AdmissionRequest;
use kube::core::DynamicObject;
use std::time::Duration;

/// What was read.
#[derive(Default)]
pub struct Sources {
    pub found: FromConfigMaps,
    /// Warnings (and errors) about reading them.
    pub notes: Vec<Diagnostic>,
    /// [`source_digest`] of every text read, when every reference was found.
    pub digest: Option<String>,
}

/// Definitions referenced through TaskFrom/ServiceFrom. A missing ConfigMap is
/// a warning, so create order does not matter.
pub async fn read_config_maps(
    client: Option<&kube::Client>,
    request: &AdmissionRequest<DynamicObject>,
    object: &serde_json::Value,
) -> Sources {
    let mut found = FromConfigMaps::default();
    let mut notes = Report::default();
    let mut texts: Vec<(&'static str, String, String, String)> = Vec::new();
    let refs = config_map_refs(object);
    let wanted = refs.len();
    let namespace = request.namespace.clone().unwrap_or_else(|| "default".into());
    for (which, name, key) in refs {
        let path = format!("spec.{which}From.configMapKeyRef");
        let Some(client) = client else {
            notes.warning(
                Code::NotFound,
                path,
                format!("ConfigMap {name:?} was not checked (no cluster access)"),
            );
            continue;
        };
        let api: kube::Api<ConfigMap> = kube::Api::namespaced(client.clone(), &namespace);
        let text = match tokio::time::timeout(Duration::from_secs(2), api.get_opt(&name)).await {
            Ok(Ok(Some(cm))) => cm.data.and_then(|d| d.get(&key).cloned()),
            Ok(Ok(None)) => {
                notes.warning(
                    Code::NotFound,
                    path,
                    format!("ConfigMap {name:?} does not exist yet; the controller waits for it"),
                );
                continue;
            }
            _ => {
                notes.warning(
                    Code::NotFound,
                    path,
                    format!("ConfigMap {name:?} could not be read; it was not checked"),
                );
                continue;
            }
        };
        let Some(text) = text else {
            notes.warning(
                Code::NotFound,
                format!("{path}.key"),
                format!("ConfigMap {name:?} has no key {key:?} yet; the controller waits for it"),
            );
            continue;
        };
        let parsed = definition_from_config_map(which, &name, &key, &text);
        texts.push((which, name.clone(), key.clone(), text));
        match parsed {
            Ok(definition) => {
                let entry = Some((definition, config_map_path(&name, &key)));
                if which == "Task" {
                    found.task = entry;
                } else {
                    found.service = entry;
                }
            }
            Err(message) => {
                notes.error(Code::Invalid, format!("{path}.key"), message);
            }
        }
    }
    let digest = (texts.len() == wanted && wanted > 0)
        .then(|| source_digest(texts.iter().map(|(w, n, k, t)| (*w, n.as_str(), k.as_str(), t.as_str()))));
    Sources {
        found,
        notes: notes.diagnostics,
        digest,
    }
}
