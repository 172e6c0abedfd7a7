//! Prometheus metrics: admissions by endpoint and result, admission latency,
//! and counters other parts keep (policy and certificate reloads, reconciles),
//! read at scrape time.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::Arc;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AdmissionLabels {
    pub endpoint: String,
    /// allowed, denied, patched, error
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    pub endpoint: String,
}

pub type Read = Box<dyn Fn() -> u64 + Send + Sync>;

pub type ReadGauge = Box<dyn Fn() -> Option<i64> + Send + Sync>;

/// Counters and gauges kept elsewhere, exported as they stand at scrape time.
#[derive(Default)]
struct External {
    counters: Vec<(&'static str, &'static str, Read)>,
    gauges: Vec<(&'static str, &'static str, ReadGauge)>,
}

impl std::fmt::Debug for External {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.counters.iter().map(|(n, ..)| n).chain(self.gauges.iter().map(|(n, ..)| n)))
            .finish()
    }
}

impl Collector for External {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for (name, help, read) in &self.counters {
            let c = ConstCounter::new(read());
            let m = encoder.encode_descriptor(name, help, None, c.metric_type())?;
            c.encode(m)?;
        }
        for (name, help, read) in &self.gauges {
            if let Some(v) = read() {
                let g = ConstGauge::new(v);
                let m = encoder.encode_descriptor(name, help, None, g.metric_type())?;
                g.encode(m)?;
            }
        }
        Ok(())
    }
}

pub struct Metrics {
    registry: Registry,
    pub admissions: Family<AdmissionLabels, Counter>,
    pub latency: Family<EndpointLabels, Histogram>,
}

impl Metrics {
    /// `external`: (name, help, read) for counters owned by other parts;
    /// `controller`: the controller's families, when this process runs one.
    pub fn new(external: Vec<(&'static str, &'static str, Read)>, controller: Option<&crate::controller::Metrics>) -> Arc<Self> {
        Self::with_gauges(external, Vec::new(), controller)
    }

    /// [`Metrics::new`] with gauges read at scrape time too (None: not exported).
    pub fn with_gauges(
        external: Vec<(&'static str, &'static str, Read)>,
        gauges: Vec<(&'static str, &'static str, ReadGauge)>,
        controller: Option<&crate::controller::Metrics>,
    ) -> Arc<Self> {
        let mut registry = Registry::with_prefix("ecskube");
        if let Some(c) = controller {
            c.register(&mut registry);
        }
        let admissions = Family::<AdmissionLabels, Counter>::default();
        registry.register(
            "admission_requests",
            "Admission reviews answered, by endpoint and result",
            admissions.clone(),
        );
        let latency = Family::<EndpointLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ])
        });
        registry.register("admission_duration_seconds", "Time to answer an admission review", latency.clone());
        registry.register_collector(Box::new(External {
            counters: external,
            gauges,
        }));
        Arc::new(Metrics {
            registry,
            admissions,
            latency,
        })
    }

    pub fn observe(&self, endpoint: &str, result: &str, seconds: f64) {
        self.admissions
            .get_or_create(&AdmissionLabels {
                endpoint: endpoint.into(),
                result: result.into(),
            })
            .inc();
        self.latency
            .get_or_create(&EndpointLabels { endpoint: endpoint.into() })
            .observe(seconds);
    }

    /// The content type of [`Metrics::render`]: prometheus-client writes
    /// OpenMetrics text (ending in `# EOF`), not the older Prometheus format.
    pub const CONTENT_TYPE: &'static str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_admissions_latency_and_external_counters() {
        let m = Metrics::new(
            vec![("policy_reload_failures", "Policy edits that did not parse", Box::new(|| 3))],
            None,
        );
        m.observe("validate", "denied", 0.002);
        let text = m.render();
        assert!(
            text.contains(r#"ecskube_admission_requests_total{endpoint="validate",result="denied"} 1"#),
            "{text}"
        );
        assert!(text.contains("ecskube_admission_duration_seconds_bucket"), "{text}");
        assert!(text.contains("ecskube_policy_reload_failures_total 3"), "{text}");
    }
}
