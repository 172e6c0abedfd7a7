//! The admission webhook: AdmissionReview handling (`admission`), the
//! cluster dry-run preflight (`preflight`), the HTTP layer (`server`),
//! TLS with certificate rotation (`tls`, `certificates`, `serving_report`)
//! and Prometheus metrics (`metrics`).

pub mod admission;
pub mod certificates;
pub mod configurations;
pub mod metrics;
pub mod preflight;
pub mod server;
pub mod serving_report;
pub mod sources;
pub mod tls;
