//! Every background task of `ecskube serve` (the controller, the policy and
//! certificate reloaders), watched: a task that ends while the process is
//! not shutting down is a failure `/healthz` reports, so the kubelet
//! restarts a pod whose controller died instead of leaving it Ready and idle.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What `/healthz` reads.
#[derive(Clone, Default)]
pub struct Health {
    /// Task name -> None while running, Some(why) once it ended unexpectedly.
    tasks: Arc<Mutex<BTreeMap<&'static str, Option<String>>>>,
}

impl Health {
    /// The tasks that ended unexpectedly, and why.
    pub fn failures(&self) -> Vec<(&'static str, String)> {
        let tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        tasks.iter().filter_map(|(name, why)| why.clone().map(|w| (*name, w))).collect()
    }

    fn set(&self, name: &'static str, state: Option<String>) {
        self.tasks.lock().unwrap_or_else(|e| e.into_inner()).insert(name, state);
    }
}

pub struct Supervisor {
    health: Health,
    shutdown: watch::Sender<bool>,
    handles: Vec<(&'static str, JoinHandle<()>)>,
}

impl Default for Supervisor {
    fn default() -> Self {
        Self::new()
    }
}

impl Supervisor {
    pub fn new() -> Self {
        Supervisor {
            health: Health::default(),
            shutdown: watch::channel(false).0,
            handles: Vec::new(),
        }
    }

    pub fn health(&self) -> Health {
        self.health.clone()
    }

    /// Turns true when [`Supervisor::shutdown`] is called: long-running tasks stop on it.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Runs `task`; its end before shutdown, Ok or Err, is a failure.
    pub fn spawn<F>(&mut self, name: &'static str, task: F)
    where
        F: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.health.set(name, None);
        let (health, shutdown) = (self.health.clone(), self.shutdown.subscribe());
        let handle = tokio::spawn(async move {
            let result = task.await;
            if *shutdown.borrow() {
                return;
            }
            let why = match result {
                Ok(()) => "ended".to_string(),
                Err(e) => format!("failed: {e:#}"),
            };
            tracing::error!(task = name, %why, "a background task stopped; /healthz now fails");
            health.set(name, Some(why));
        });
        self.handles.push((name, handle));
    }

    /// Watches a task spawned elsewhere (a reloader's JoinHandle).
    pub fn watch(&mut self, name: &'static str, handle: JoinHandle<()>) {
        self.spawn(name, async move {
            match handle.await {
                Ok(()) => Ok(()),
                Err(e) if e.is_panic() => Err(anyhow::anyhow!("panicked")),
                Err(e) => Err(anyhow::anyhow!("{e}")),
            }
        });
    }

    /// Signals shutdown and waits up to `grace` for the tasks that stop on it
    /// (the controller releases its Lease); the rest are aborted.
    pub async fn shutdown(self, grace: std::time::Duration) {
        self.shutdown.send_replace(true);
        for (name, mut handle) in self.handles {
            if tokio::time::timeout(grace, &mut handle).await.is_err() {
                tracing::debug!(task = name, "did not stop in time; aborted");
                handle.abort();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn until(what: &str, cond: impl Fn() -> bool) {
        for _ in 0..500 {
            if cond() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("timed out waiting for {what}");
    }

    #[tokio::test]
    async fn a_task_that_ends_is_reported_and_one_that_runs_is_not() {
        let mut s = Supervisor::new();
        let health = s.health();
        s.spawn("steady", std::future::pending());
        s.spawn("failing", async { Err(anyhow::anyhow!("lost the lease and could not re-elect")) });
        s.spawn("quitting", async { Ok(()) });
        until("both failures", || health.failures().len() == 2).await;
        let failures = health.failures();
        assert_eq!(failures[0].0, "failing");
        assert!(failures[0].1.contains("could not re-elect"), "{failures:?}");
        assert_eq!(failures[1], ("quitting", "ended".to_string()));
        s.shutdown(Duration::from_millis(50)).await;
    }

    #[tokio::test]
    async fn tasks_that_stop_for_a_shutdown_are_not_failures() {
        let mut s = Supervisor::new();
        let health = s.health();
        let mut stop = s.shutdown_signal();
        s.spawn("controller", async move {
            let _ = stop.wait_for(|v| *v).await;
            Ok(())
        });
        let panicking = tokio::spawn(async { panic!("boom") });
        s.watch("reloader", panicking);
        until("the panic", || !health.failures().is_empty()).await;
        assert_eq!(health.failures(), [("reloader", "failed: panicked".to_string())]);
        s.shutdown(Duration::from_secs(5)).await;
        assert_eq!(health.failures().len(), 1, "the controller's orderly stop is no failure");
    }
}
