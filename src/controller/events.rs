//! Kubernetes Events on the ECSDeployment: a child created, updated or
//! deleted (only when it really changed), and a Warning whenever it becomes
//! Degraded or the reason changes, so `kubectl describe ecsd` tells the story.

use super::children::ChildId;
use super::status::{condition, DEGRADED};
use crate::crd::{ECSDeployment, ECSDeploymentStatus};
use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource};

pub const CREATED: &str = "Created";
pub const UPDATED: &str = "Updated";
pub const DELETED: &str = "Deleted";

#[derive(Clone)]
pub struct Events {
    recorder: Recorder,
}

impl Events {
    pub fn new(client: Client, instance: String) -> Self {
        let reporter = Reporter {
            controller: crate::translate::MANAGER.into(),
            instance: Some(instance),
        };
        Events {
            recorder: Recorder::new(client, reporter),
        }
    }

    /// The child is the event's `related` object: the recorder folds events
    /// with the same reason and related object into one series, so without it
    /// "created Service/web" would be counted as a repeat of "created ServiceAccount/web".
    pub async fn child(&self, obj: &ECSDeployment, reason: &str, child: &ChildId) {
        let verb = match reason {
            CREATED => "created",
            DELETED => "deleted",
            _ => "updated",
        };
        let resource = child.kind.api_resource();
        let related = ObjectReference {
            api_version: Some(resource.api_version),
            kind: Some(resource.kind),
            name: Some(child.name.clone()),
            namespace: obj.metadata.namespace.clone(),
            ..Default::default()
        };
        self.send(obj, EventType::Normal, reason, format!("{verb} {child}"), Some(related))
            .await;
    }

    pub async fn warning(&self, obj: &ECSDeployment, reason: &str, message: &str) {
        self.publish(obj, EventType::Warning, reason, message.to_string()).await;
    }

    /// A Warning when Degraded turns True or its reason or message changes.
    pub async fn degraded_changed(&self, obj: &ECSDeployment, previous: Option<&ECSDeploymentStatus>, new: &ECSDeploymentStatus) {
        let Some(now) = condition(new, DEGRADED).filter(|c| c.status == "True") else {
            return;
        };
        let before = previous.and_then(|p| condition(p, DEGRADED));
        if before.is_some_and(|b| b.status == now.status && b.reason == now.reason && b.message == now.message) {
            return;
        }
        self.warning(obj, &now.reason, &now.message).await;
    }

    async fn publish(&self, obj: &ECSDeployment, type_: EventType, reason: &str, note: String) {
        self.send(obj, type_, reason, note, None).await;
    }

    async fn send(&self, obj: &ECSDeployment, type_: EventType, reason: &str, note: String, related: Option<ObjectReference>) {
        let event = Event {
            type_,
            reason: reason.to_string(),
            note: Some(truncate(note)),
            action: "Reconcile".into(),
            secondary: related,
        };
        // Events are best effort: losing one must not fail the reconcile.
        if let Err(e) = self.recorder.publish(&event, &obj.object_ref(&())).await {
            tracing::debug!(error = %e, reason, "could not publish an event");
        }
    }
}

/// Event notes are limited to 1kB.
fn truncate(mut s: String) -> String {
    if s.len() > 1000 {
        let mut end = 1000;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}
