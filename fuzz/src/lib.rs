//! The properties the fuzz targets check, one module per target
//! (fuzz/fuzz_targets/<target>.rs only hands libFuzzer's bytes to `check`).
//! Every check calls ecskube's public library API exactly as the CLI or the
//! webhook does, and panics (a crash libFuzzer saves) when a property fails.

pub mod admission;
pub mod documents;
pub mod intrinsics;

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;

/// At most this many documents of one input are checked (a YAML stream of
/// many tiny documents is no more interesting than a few of them).
pub const MAX_DOCUMENTS: usize = 8;

/// Serializes a value to JSON text, reads it back as `T` and serializes it
/// again: the second reading must equal the first, and the first must equal
/// the value itself (what ecskube built is what the API server would read).
pub fn round_trip<T>(kind: &str, original: &T)
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let text = serde_json::to_string(original).unwrap_or_else(|e| panic!("{kind}: does not serialize: {e}"));
    let first: T = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{kind}: its own JSON does not deserialize: {e}\n{text}"));
    let again = serde_json::to_string(&first).unwrap_or_else(|e| panic!("{kind}: re-serialization failed: {e}"));
    let second: T =
        serde_json::from_str(&again).unwrap_or_else(|e| panic!("{kind}: re-serialized JSON does not deserialize: {e}\n{again}"));
    assert_eq!(first, second, "{kind}: changed on a second round trip");
    assert_eq!(
        &first, original,
        "{kind}: the typed object read back differs from the one ecskube built\n{text}"
    );
}

/// Every converted object, as the typed k8s-openapi struct of its kind, read
/// from the JSON the untagged `Object` serializes to.
pub fn check_objects(objects: &[ecskube::translate::Object]) {
    use ecskube::translate::Object;
    use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
    use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
    use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Service, ServiceAccount};
    use kube::core::DynamicObject;
    for object in objects {
        let json = serde_json::to_value(object).unwrap_or_else(|e| panic!("{}: does not serialize: {e}", object.kind()));
        assert_eq!(json["kind"], object.kind(), "the serialized kind is the object's kind");
        fn typed<T: DeserializeOwned + Serialize + PartialEq + Debug>(kind: &str, json: &serde_json::Value, built: &T) {
            let first: T = serde_json::from_value(json.clone()).unwrap_or_else(|e| panic!("{kind}: not a valid {kind}: {e}\n{json}"));
            assert_eq!(&first, built, "{kind}: read back differs from what was built");
            round_trip(kind, &first);
        }
        match object {
            Object::Deployment(d) => typed::<Deployment>("Deployment", &json, d),
            Object::DaemonSet(d) => typed::<DaemonSet>("DaemonSet", &json, d),
            Object::Service(s) => typed::<Service>("Service", &json, s),
            Object::ServiceAccount(s) => typed::<ServiceAccount>("ServiceAccount", &json, s),
            Object::PersistentVolumeClaim(c) => typed::<PersistentVolumeClaim>("PersistentVolumeClaim", &json, c),
            Object::PersistentVolume(v) => typed::<PersistentVolume>("PersistentVolume", &json, v),
            Object::HorizontalPodAutoscaler(h) => typed::<HorizontalPodAutoscaler>("HorizontalPodAutoscaler", &json, h),
            Object::ExternalSecret(o) | Object::TargetGroupBinding(o) => typed::<DynamicObject>(object.kind(), &json, o),
        }
    }
}
