//! `efsVolumeConfiguration` -> a static PersistentVolume of the EFS CSI
//! driver and a PersistentVolumeClaim bound to it (both ways: the claim names
//! the volume, the volume reserves the claim, so nothing else can take either).
//!
//! - `fileSystemId`, `rootDirectory`, `authorizationConfig.accessPointId` ->
//!   `volumeHandle` `fs-id:path:fsap-id`, the driver's documented format
//!   (with an access point the path is the access point's; ECS allows only
//!   `/` then, so it is left out);
//! - `transitEncryption` ENABLED -> mount option `tls`; DISABLED (ECS's
//!   default) -> `encryptInTransit: "false"`, since the driver's default is TLS;
//! - `transitEncryptionPort` -> mount option `tlsport=<port>` (efs-utils');
//! - `authorizationConfig.iam` ENABLED -> mount option `iam`: the driver then
//!   mounts with the EFS CSI node's IAM identity, not the task role (warned).
//!
//! The PersistentVolume is cluster-scoped, so the ECSDeployment cannot own
//! it: it is named after namespace, object and volume, labelled with them, and
//! the controller deletes it once its ECSDeployment is gone (`controller::volumes`).

use super::{Ctx, Object};
use crate::at;
use crate::diag::Code;
use k8s_openapi::api::core::v1::{
    CSIPersistentVolumeSource, ObjectReference, PersistentVolume, PersistentVolumeClaim, PersistentVolumeClaimSpec, PersistentVolumeSpec,
    VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde_json::Value;
use std::collections::BTreeMap;

pub const DRIVER: &str = "efs.csi.aws.com";
/// Labels of the PersistentVolume: which ECSDeployment it belongs to.
pub const OWNER_NAMESPACE_LABEL: &str = "ecskube.ecskube/owner-namespace";
pub const OWNER_UID_LABEL: &str = "ecskube.ecskube/owner-uid";
/// EFS is elastic and the driver ignores capacity, which Kubernetes requires.
const CAPACITY: &str = "5Gi";

/// The claim's name in the namespace: the object's and the volume's.
pub fn claim_name(object: &str, volume: &str) -> String {
    bounded(&format!("{object}-{volume}"), 253)
}

/// The cluster-wide volume name: namespace, object and volume, and a hash of
/// the three, since `-` joins them ambiguously (namespace `a` with object
/// `b-web` must not take the name of namespace `a-b`'s `web`).
pub fn volume_name(namespace: &str, object: &str, volume: &str) -> String {
    let hash = super::fnv1a_32(&format!("{namespace}/{object}/{volume}"));
    let head: String = format!("ecskube-{namespace}-{object}-{volume}").chars().take(243).collect();
    format!("{}-{hash:08x}", head.trim_end_matches(['-', '.']))
}

/// `s` when it fits in `max`, else its head and a hash of the whole.
fn bounded(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let hash = super::fnv1a_32(s);
    let head: String = s.chars().take(max - 9).collect();
    format!("{}-{hash:08x}", head.trim_end_matches(['-', '.']))
}

fn text<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// The driver's volume handle for an ECS EFS configuration.
pub fn volume_handle(efs: &Value) -> Option<String> {
    let fs = text(efs, "fileSystemId")?;
    let access_point = efs.get("authorizationConfig").and_then(|a| text(a, "accessPointId"));
    let root = text(efs, "rootDirectory").filter(|r| *r != "/");
    Some(match (root, access_point) {
        (_, Some(ap)) => format!("{fs}::{ap}"),
        (Some(root), None) => format!("{fs}:{root}"),
        (None, None) => fs.to_string(),
    })
}

/// The PersistentVolume and PersistentVolumeClaim for task volume `i`
/// (claim name `claim`), or None when the configuration has no file system.
pub fn objects(ctx: &mut Ctx, i: usize, ecs_name: &str, claim: &str) -> Option<(PersistentVolume, PersistentVolumeClaim)> {
    let task = ctx.task;
    let efs = task.canonical.get("volumes")?.get(i)?.get("efsVolumeConfiguration")?;
    let handle = volume_handle(efs)?;
    let namespace = ctx.meta.namespace.clone().unwrap_or_else(|| "default".into());
    let pv_name = volume_name(&namespace, &ctx.meta.name, &super::k8s_name(ecs_name, "volume"));
    let enabled = |v: Option<&str>| v == Some("ENABLED");
    let tls = enabled(text(efs, "transitEncryption"));
    let auth = efs.get("authorizationConfig");
    let iam = enabled(auth.and_then(|a| text(a, "iam")));
    let mut mount_options = Vec::new();
    let mut attributes = BTreeMap::new();
    if tls {
        mount_options.push("tls".to_string());
    } else {
        attributes.insert("encryptInTransit".to_string(), "false".to_string());
    }
    if let Some(port) = efs.get("transitEncryptionPort").and_then(Value::as_i64) {
        mount_options.push(format!("tlsport={port}"));
    }
    if iam {
        mount_options.push("iam".to_string());
        ctx.warn(
            Code::NotCarriedOver,
            at!(task, "volumes", i, "efsVolumeConfiguration", "authorizationConfig", "iam"),
            format!("EFS IAM authorization mounts with the EFS CSI driver's node identity, not the task role: allow it in the file system policy of {}", text(efs, "fileSystemId").unwrap_or_default()),
        );
    }
    let mut labels = ctx.labels();
    labels.insert(OWNER_NAMESPACE_LABEL.into(), namespace.clone());
    let capacity = BTreeMap::from([("storage".to_string(), Quantity(CAPACITY.into()))]);
    let pv = PersistentVolume {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(pv_name.clone()),
            labels: Some(labels),
            ..Default::default()
        },
        spec: Some(PersistentVolumeSpec {
            capacity: Some(capacity.clone()),
            access_modes: Some(vec!["ReadWriteMany".into()]),
            volume_mode: Some("Filesystem".into()),
            // Deleting the volume object never deletes the file system's data.
            persistent_volume_reclaim_policy: Some("Retain".into()),
            storage_class_name: Some(String::new()),
            mount_options: (!mount_options.is_empty()).then_some(mount_options),
            claim_ref: Some(ObjectReference {
                namespace: Some(namespace),
                name: Some(claim.to_string()),
                ..Default::default()
            }),
            csi: Some(CSIPersistentVolumeSource {
                driver: DRIVER.into(),
                volume_handle: handle,
                volume_attributes: (!attributes.is_empty()).then_some(attributes),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let pvc = PersistentVolumeClaim {
        metadata: ctx.object_meta(claim),
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteMany".into()]),
            // "": no StorageClass, so no dynamic provisioning steps in.
            storage_class_name: Some(String::new()),
            volume_name: Some(pv_name),
            volume_mode: Some("Filesystem".into()),
            resources: Some(VolumeResourceRequirements {
                requests: Some(capacity),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    Some((pv, pvc))
}

/// Adds the pair to the translation's objects.
pub fn push(ctx: &mut Ctx, pair: (PersistentVolume, PersistentVolumeClaim)) {
    ctx.extra.push(Object::PersistentVolumeClaim(Box::new(pair.1)));
    ctx.extra.push(Object::PersistentVolume(Box::new(pair.0)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn volume_handles_in_the_drivers_format() {
        let h = |v: Value| volume_handle(&v);
        assert_eq!(
            h(json!({"fileSystemId": "fs-0123456789abcdef0"})).as_deref(),
            Some("fs-0123456789abcdef0")
        );
        assert_eq!(
            h(json!({"fileSystemId": "fs-01234567", "rootDirectory": "/"})).as_deref(),
            Some("fs-01234567")
        );
        assert_eq!(
            h(json!({"fileSystemId": "fs-01234567", "rootDirectory": "/data/app"})).as_deref(),
            Some("fs-01234567:/data/app")
        );
        assert_eq!(
            h(json!({"fileSystemId": "fs-01234567", "authorizationConfig": {"accessPointId": "fsap-0123456789abcdef0"}})).as_deref(),
            Some("fs-01234567::fsap-0123456789abcdef0")
        );
        assert_eq!(h(json!({"rootDirectory": "/x"})), None);
    }

    #[test]
    fn names_are_bounded_and_distinct() {
        assert!(volume_name("ns", "web", "data").starts_with("ecskube-ns-web-data-"));
        assert_ne!(volume_name("a", "b-web", "data"), volume_name("a-b", "web", "data"));
        let long = "a".repeat(250);
        let a = volume_name("ns", &long, "data");
        let b = volume_name("ns", &long, "logs");
        assert!(a.len() <= 253 && b.len() <= 253);
        assert_ne!(a, b);
        assert_eq!(claim_name("web", "data"), "web-data");
    }
}
