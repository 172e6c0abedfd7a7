//! What ecskube's own account may do, asked of the API server itself
//! (SelfSubjectAccessReview) rather than guessed from a 403's wording: a
//! refusal of something ecskube may do is the cluster's verdict on the
//! object (Pod Security, a ValidatingAdmissionPolicy, Kyverno, ...); a
//! refusal of something it may not do is ecskube's own problem.
//!
//! Answers are cached: cluster-wide ones (the shipped ClusterRole) cost no
//! API call per admission; per-namespace ones are asked once a minute.

use k8s_openapi::api::authorization::v1::{ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec};
use kube::api::{Api, PostParams};
use kube::Client;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A verb on a resource, as RBAC names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Access {
    pub group: &'static str,
    pub resource: &'static str,
    pub verb: &'static str,
}

/// Everything the preflight does.
pub const NEEDED: &[Access] = &[
    Access {
        group: "apps",
        resource: "deployments",
        verb: "get",
    },
    Access {
        group: "apps",
        resource: "deployments",
        verb: "create",
    },
    Access {
        group: "apps",
        resource: "deployments",
        verb: "patch",
    },
    Access {
        group: "apps",
        resource: "daemonsets",
        verb: "get",
    },
    Access {
        group: "apps",
        resource: "daemonsets",
        verb: "create",
    },
    Access {
        group: "apps",
        resource: "daemonsets",
        verb: "patch",
    },
    Access {
        group: "",
        resource: "services",
        verb: "get",
    },
    Access {
        group: "",
        resource: "services",
        verb: "create",
    },
    Access {
        group: "",
        resource: "services",
        verb: "patch",
    },
    Access {
        group: "",
        resource: "serviceaccounts",
        verb: "get",
    },
    Access {
        group: "",
        resource: "serviceaccounts",
        verb: "create",
    },
    Access {
        group: "",
        resource: "serviceaccounts",
        verb: "patch",
    },
    Access {
        group: "",
        resource: "pods",
        verb: "create",
    },
    Access {
        group: "",
        resource: "resourcequotas",
        verb: "list",
    },
];

const TTL: Duration = Duration::from_secs(60);

pub struct Permissions {
    client: Client,
    /// (namespace, access) -> (allowed, when asked); namespace "" is cluster-wide.
    cache: Mutex<HashMap<(String, Access), (bool, Instant)>>,
}

impl Permissions {
    pub fn new(client: Client) -> Self {
        Permissions {
            client,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Asks every cluster-wide answer at once (at startup), so admissions
    /// under the shipped RBAC never wait for one.
    pub async fn warm(&self) {
        let asks = NEEDED.iter().map(|a| self.allowed("", *a));
        let answers = futures::future::join_all(asks).await;
        let denied: Vec<String> = NEEDED
            .iter()
            .zip(answers)
            .filter(|(_, ok)| !ok)
            .map(|(a, _)| format!("{} {}", a.verb, a.resource))
            .collect();
        if !denied.is_empty() {
            tracing::warn!(missing = %denied.join(", "), "ecskube may not do all of the preflight cluster-wide; those checks become warnings where it may not");
        }
    }

    /// Whether ecskube may `access` in `namespace`: cluster-wide first, then
    /// the namespace (RoleBindings). An unanswerable question counts as no.
    pub async fn allowed(&self, namespace: &str, access: Access) -> bool {
        if !namespace.is_empty() && self.cached("", access) == Some(true) {
            return true;
        }
        if let Some(answer) = self.cached(namespace, access) {
            return answer;
        }
        let answer = self.ask(namespace, access).await;
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((namespace.to_string(), access), (answer, Instant::now()));
        answer
    }

    fn cached(&self, namespace: &str, access: Access) -> Option<bool> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .get(&(namespace.to_string(), access))
            .filter(|(_, at)| at.elapsed() < TTL)
            .map(|(ok, _)| *ok)
    }

    async fn ask(&self, namespace: &str, access: Access) -> bool {
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    group: Some(access.group.into()),
                    resource: Some(access.resource.into()),
                    verb: Some(access.verb.into()),
                    namespace: (!namespace.is_empty()).then(|| namespace.to_string()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let api: Api<SelfSubjectAccessReview> = Api::all(self.client.clone());
        match api.create(&PostParams::default(), &review).await {
            Ok(r) => r.status.is_some_and(|s| s.allowed),
            Err(e) => {
                tracing::debug!(error = %e, ?access, namespace, "SelfSubjectAccessReview failed");
                false
            }
        }
    }
}
