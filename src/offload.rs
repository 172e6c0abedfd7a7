//! CPU-bound engine work (parse, evaluate, validate, translate) off the async
//! worker threads: a bounded number of blocking jobs at once, each with a
//! deadline, so one expensive object cannot stall the HTTP server or every
//! reconcile. The engine's own budgets bound each job; the deadline is the
//! backstop for what they do not foresee.
//!
//! The jobs run on a fixed set of threads, one per permit, fed by a channel,
//! rather than tokio's blocking pool: that pool grows a thread whenever none
//! is idle at the instant of a hand-over, and every thread keeps its own
//! allocator cache, so under load the process held several times the memory
//! the jobs themselves need (measured: `make bench-webhook`, RSS under load).
//! Not rayon either: its idle workers spin (sched_yield) before sleeping,
//! which on a small node takes CPU from the HTTP workers (seen in `perf`).

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OffloadError {
    #[error("the object could not be checked within {0:?}: it is too expensive to evaluate")]
    DeadlineExceeded(Duration),
    #[error("the engine job ended without an answer (a bug: please report it)")]
    Panicked,
}

/// Engine jobs at once, whatever the node's size. A 43 KB review needs about
/// 8 MiB while it is judged, so this bounds the webhook's working memory near
/// 64 MiB (webhook-config/deployment.yaml sizes its limit from it).
pub const MAX_JOBS: usize = 8;

type Job = Box<dyn FnOnce() + Send>;

/// A bounded pool of blocking engine jobs.
#[derive(Debug, Clone)]
pub struct Offload {
    permits: Arc<Semaphore>,
    /// The engine's threads take jobs from here; they end once every clone is dropped.
    jobs: crossbeam_channel::Sender<Job>,
    deadline: Duration,
}

impl Offload {
    /// `jobs` at once (at least 1); each must finish (waiting included) within `deadline`.
    pub fn new(jobs: usize, deadline: Duration) -> Self {
        let jobs = jobs.max(1);
        let (sender, receiver) = crossbeam_channel::unbounded::<Job>();
        for i in 0..jobs {
            let receiver = receiver.clone();
            std::thread::Builder::new()
                .name(format!("engine-{i}"))
                .spawn(move || receiver.iter().for_each(|job| job()))
                .expect("the engine's threads start");
        }
        Offload {
            permits: Arc::new(Semaphore::new(jobs)),
            jobs: sender,
            deadline,
        }
    }

    /// Twice the cores (a second job per core hides the hand-over between
    /// them), at most [`MAX_JOBS`]: each job holds its object's working
    /// memory, so the bound keeps the process's peak independent of the node.
    pub fn for_cores(deadline: Duration) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        Self::new((cores * 2).min(MAX_JOBS), deadline)
    }

    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// Runs `job` on the engine's threads once a permit is free. The permit
    /// travels with the job, so a job still running past its deadline keeps
    /// counting against the bound until it really ends; a job waiting for a
    /// permit past its deadline never starts.
    pub async fn run<T, F>(&self, job: F) -> Result<T, OffloadError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (permits, jobs) = (self.permits.clone(), self.jobs.clone());
        let work = async move {
            let permit = permits.acquire_owned().await.map_err(|_| OffloadError::Panicked)?;
            let (answer, answered) = tokio::sync::oneshot::channel();
            jobs.send(Box::new(move || {
                // A panicking job answers Panicked; it must not take its thread down.
                let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                drop(permit);
                let _ = answer.send(out);
            }))
            .map_err(|_| OffloadError::Panicked)?;
            answered
                .await
                .map_err(|_| OffloadError::Panicked)?
                .map_err(|_| OffloadError::Panicked)
        };
        match tokio::time::timeout(self.deadline, work).await {
            Ok(result) => result,
            Err(_) => Err(OffloadError::DeadlineExceeded(self.deadline)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn jobs_run_and_answer() {
        let pool = Offload::new(2, Duration::from_secs(5));
        assert_eq!(pool.run(|| 6 * 7).await, Ok(42));
    }

    #[tokio::test]
    async fn a_slow_job_misses_its_deadline_without_blocking_the_caller() {
        let pool = Offload::new(1, Duration::from_millis(50));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let slow = pool.run(move || {
            let _ = rx.recv_timeout(Duration::from_secs(5));
        });
        assert_eq!(slow.await, Err(OffloadError::DeadlineExceeded(Duration::from_millis(50))));
        // The runaway job still holds the only permit: the next one waits and times out too.
        assert_eq!(pool.run(|| 1).await, Err(OffloadError::DeadlineExceeded(Duration::from_millis(50))));
        tx.send(()).unwrap();
        // Once it really ends, the pool serves again.
        let mut answered = false;
        for _ in 0..100 {
            if pool.run(|| 1).await == Ok(1) {
                answered = true;
                break;
            }
        }
        assert!(answered);
    }

    #[tokio::test]
    async fn a_panicking_job_answers_panicked_and_the_pool_serves_on() {
        // A deadline far beyond the panic hook's work (with RUST_BACKTRACE it
        // symbolizes a backtrace first, seconds in a debug build).
        let pool = Offload::new(1, Duration::from_secs(300));
        assert_eq!(pool.run(|| -> u8 { panic!("a bug in a job") }).await, Err(OffloadError::Panicked));
        assert_eq!(pool.run(|| 7).await, Ok(7));
    }

    #[tokio::test]
    async fn at_most_the_bound_run_at_once() {
        let pool = Offload::new(2, Duration::from_secs(10));
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let jobs = (0..8).map(|_| {
            let (running, peak) = (running.clone(), peak.clone());
            pool.run(move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
                running.fetch_sub(1, Ordering::SeqCst);
            })
        });
        for r in futures::future::join_all(jobs).await {
            r.unwrap();
        }
        assert_eq!(peak.load(Ordering::SeqCst), 2);
    }
}
