//! The controller's Prometheus families (as kube-rs's controller-rs keeps
//! them): reconciles by result, their duration, failures by reason, and
//! every write to a child, by kind and operation. They are registered in the
//! process's one registry (`webhook::metrics::Metrics`) by `ecskube serve`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// success, error
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WriteLabels {
    pub kind: String,
    /// create, apply, delete, status
    pub operation: String,
}

#[derive(Debug)]
pub struct Metrics {
    pub reconciles: Family<ResultLabels, Counter>,
    pub reconcile_duration: Histogram,
    pub failures: Family<ReasonLabels, Counter>,
    pub writes: Family<WriteLabels, Counter>,
    /// 1 while this replica holds the leader Lease (or runs without election).
    pub leading: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            reconciles: Family::default(),
            reconcile_duration: Histogram::new([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            failures: Family::default(),
            writes: Family::default(),
            leading: Gauge::default(),
        }
    }
}

impl Metrics {
    /// Adds the families to `registry` (prefixed by the registry's own prefix).
    pub fn register(&self, registry: &mut Registry) {
        registry.register("reconciles", "Reconciles of ECSDeployments, by result", self.reconciles.clone());
        registry.register(
            "reconcile_duration_seconds",
            "Time one reconcile took",
            self.reconcile_duration.clone(),
        );
        registry.register(
            "reconcile_failures",
            "Reconciles that failed (requeued with backoff), by reason",
            self.failures.clone(),
        );
        registry.register(
            "controller_leading",
            "1 while this replica is the one that reconciles",
            self.leading.clone(),
        );
        registry.register(
            "child_writes",
            "Writes to children (create, apply, delete) and status writes, by kind",
            self.writes.clone(),
        );
    }

    pub(crate) fn reconciled(&self, seconds: f64, failure: Option<&'static str>) {
        let result = if failure.is_none() { "success" } else { "error" };
        self.reconciles.get_or_create(&ResultLabels { result: result.into() }).inc();
        self.reconcile_duration.observe(seconds);
        if let Some(reason) = failure {
            self.failures.get_or_create(&ReasonLabels { reason: reason.into() }).inc();
        }
    }

    pub(crate) fn wrote(&self, kind: &str, operation: &str) {
        self.writes
            .get_or_create(&WriteLabels {
                kind: kind.into(),
                operation: operation.into(),
            })
            .inc();
    }

    pub fn is_leading(&self) -> bool {
        self.leading.get() == 1
    }

    /// (successful, failed) reconciles so far.
    pub fn reconcile_counts(&self) -> (u64, u64) {
        let count = |r: &str| self.reconciles.get_or_create(&ResultLabels { result: r.into() }).get();
        (count("success"), count("error"))
    }

    /// Writes so far to children of `kind` (every operation but status).
    pub fn child_writes(&self, kind: &str) -> u64 {
        ["create", "apply", "delete"]
            .iter()
            .map(|op| {
                self.writes
                    .get_or_create(&WriteLabels {
                        kind: kind.into(),
                        operation: (*op).into(),
                    })
                    .get()
            })
            .sum()
    }
}
