//! The policy in force: read at startup, re-read while running, and swapped
//! whole so that a check never sees half of two policies.

use super::{Policy, PolicyError};
use std::path::{Path as FsPath, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// The policy in force, shared by the webhook and the controller, and swapped
/// whole when the file changes so a check never sees half of two policies.
#[derive(Debug, Clone)]
pub struct PolicyStore {
    inner: Arc<StoreInner>,
}

#[derive(Debug)]
struct StoreInner {
    file: Option<PathBuf>,
    current: RwLock<Arc<Policy>>,
    /// The file's content at the last poll, good or bad (or the read error):
    /// ConfigMap updates swap a symlink, so content is what tells a change, and
    /// one bad edit is then logged and counted once, not at every poll.
    last_seen: Mutex<Result<String, String>>,
    reloads: AtomicU64,
    reload_failures: AtomicU64,
}

impl PolicyStore {
    /// No `--policy`: everything is allowed, nothing is watched.
    pub fn empty() -> Self {
        Self::fixed(Policy::default())
    }

    /// A policy that never changes (tests, embedding).
    pub fn fixed(policy: Policy) -> Self {
        Self::new(None, policy, String::new())
    }

    /// Reads the policy file at startup; unreadable or invalid is an error.
    pub fn load(path: impl Into<PathBuf>) -> Result<Self, PolicyError> {
        let path = path.into();
        let text = std::fs::read_to_string(&path).map_err(|source| PolicyError::Read {
            path: path.clone(),
            source,
        })?;
        let policy = Policy::from_yaml(&text).map_err(|e| in_file(e, &path))?;
        Ok(Self::new(Some(path), policy, text))
    }

    fn new(file: Option<PathBuf>, policy: Policy, text: String) -> Self {
        PolicyStore {
            inner: Arc::new(StoreInner {
                file,
                current: RwLock::new(Arc::new(policy)),
                last_seen: Mutex::new(Ok(text)),
                reloads: AtomicU64::new(0),
                reload_failures: AtomicU64::new(0),
            }),
        }
    }

    /// The policy file, if any.
    pub fn file(&self) -> Option<&FsPath> {
        self.inner.file.as_deref()
    }

    /// The policy in force now.
    pub fn current(&self) -> Arc<Policy> {
        self.inner.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Runtime reloads that changed the policy (the startup load not counted).
    pub fn reloads(&self) -> u64 {
        self.inner.reloads.load(Ordering::Relaxed)
    }

    /// Runtime edits refused (unreadable or invalid), each counted once.
    pub fn reload_failures(&self) -> u64 {
        self.inner.reload_failures.load(Ordering::Relaxed)
    }

    /// Re-reads the file: `Ok(true)` when a new policy took effect, `Ok(false)`
    /// when the content is as last seen (or there is no file), `Err` for a new
    /// bad edit, which keeps the last good policy.
    pub async fn reload(&self) -> Result<bool, PolicyError> {
        let Some(path) = &self.inner.file else { return Ok(false) };
        let read = tokio::fs::read_to_string(path).await;
        let seen = read.as_ref().map(Clone::clone).map_err(ToString::to_string);
        {
            let mut last = self.inner.last_seen.lock().unwrap_or_else(|e| e.into_inner());
            if *last == seen {
                return Ok(false);
            }
            *last = seen;
        }
        let parsed = match read {
            Ok(text) => Policy::from_yaml(&text).map_err(|e| in_file(e, path)),
            Err(source) => Err(PolicyError::Read {
                path: path.clone(),
                source,
            }),
        };
        match parsed {
            Ok(policy) => {
                let mut current = self.inner.current.write().unwrap_or_else(|e| e.into_inner());
                // Comments edited, or a bad edit undone: nothing new took effect.
                if **current == policy {
                    return Ok(false);
                }
                *current = Arc::new(policy);
                drop(current);
                self.inner.reloads.fetch_add(1, Ordering::Relaxed);
                tracing::info!(file = %path.display(), "policy reloaded");
                Ok(true)
            }
            Err(e) => {
                self.inner.reload_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "policy file changed but cannot be used; keeping the last good policy");
                Err(e)
            }
        }
    }

    /// Polls the file every `interval` on the current tokio runtime; `None`
    /// when there is no file to watch.
    pub fn spawn_reloader(&self, interval: Duration) -> Option<tokio::task::JoinHandle<()>> {
        self.inner.file.as_ref()?;
        let store = self.clone();
        Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                // Errors are logged and counted inside.
                let _ = store.reload().await;
            }
        }))
    }
}

fn in_file(e: PolicyError, path: &FsPath) -> PolicyError {
    match e {
        PolicyError::Invalid { message, .. } => PolicyError::Invalid {
            path: Some(path.to_path_buf()),
            message,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::EcsDocument;
    use serde_json::json;

    fn privileged_doc() -> EcsDocument {
        EcsDocument::classify(json!({
            "apiVersion": "ecskube.ecskube/v1alpha1", "kind": "ECSDeployment",
            "metadata": {"name": "x", "namespace": "dev"},
            "spec": {"Task": {"containerDefinitions": [{"name": "web", "image": "ghcr.io/acme/web:1", "memory": 256, "privileged": true}]}},
        }))
    }

    #[test]
    fn startup_load_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("policy.yaml");
        let e = PolicyStore::load(&file).unwrap_err().to_string();
        assert!(e.starts_with("cannot read policy file"), "{e}");
        std::fs::write(&file, "denyPrivilegd: true\n").unwrap();
        let e = PolicyStore::load(&file).unwrap_err().to_string();
        assert!(e.contains(&file.display().to_string()) && e.contains("denyPrivilegd"), "{e}");
        assert!(PolicyStore::empty().current().fields.is_empty());
        assert!(PolicyStore::empty().spawn_reloader(Duration::from_secs(1)).is_none());
    }

    #[tokio::test]
    async fn hot_reload_keeps_the_last_good_policy() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("policy.yaml");
        // As a ConfigMap update does: a complete new file swapped in, never half written.
        let replace = |text: &str| {
            let staged = dir.path().join("staged.yaml");
            std::fs::write(&staged, text).unwrap();
            std::fs::rename(&staged, &file).unwrap();
        };
        replace("denyPrivileged: false\n");
        let store = PolicyStore::load(&file).unwrap();
        let doc = privileged_doc();
        let analysis = doc.analyze();
        let denied = |store: &PolicyStore| store.current().check("dev", &analysis).len();
        assert_eq!(denied(&store), 0);
        let reloader = store.spawn_reloader(Duration::from_millis(10)).unwrap();

        async fn until(what: &str, cond: impl Fn() -> bool) {
            for _ in 0..500 {
                if cond() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("timed out waiting for {what}");
        }

        replace("denyPrivileged: true\n");
        until("the stricter policy", || denied(&store) == 1).await;
        assert_eq!((store.reloads(), store.reload_failures()), (1, 0));

        replace("denyPrivileged: [oops\n");
        until("the failure to be counted", || store.reload_failures() == 1).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        // Counted once however often it is polled; the last good policy stays.
        assert_eq!((store.reloads(), store.reload_failures()), (1, 1));
        assert_eq!(denied(&store), 1);

        replace("{}\n");
        until("the relaxed policy", || denied(&store) == 0).await;
        assert_eq!(store.reloads(), 2);
        reloader.abort();
        assert!(reloader.await.unwrap_err().is_cancelled());

        // Unchanged content, or only comments changed, is not a reload.
        assert!(!store.reload().await.unwrap());
        replace("# allow everything\n{}\n");
        assert!(!store.reload().await.unwrap());
        assert_eq!((store.reloads(), store.reload_failures()), (2, 1));
    }
}
