//! ecskube: run AWS ECS task and service definitions on Kubernetes.
//!
//! One pure engine (parse -> normalize -> validate -> defaults) shared by the
//! CLI, the admission webhook and the controller.

pub mod certs;
pub mod cli;
pub mod controller;
pub mod crd;
pub mod defaults;
pub mod devcluster;
pub mod diag;
pub mod document;
pub mod ecs;
pub mod integrations;
pub mod offload;
pub mod path;
pub mod policy;
pub mod serve;
pub mod spelling;
pub mod supervisor;
pub mod translate;
pub mod validate;
pub mod webhook;

pub use diag::{Diagnostic, Report, Severity};
pub use validate::{analyze, Analysis, Input};
