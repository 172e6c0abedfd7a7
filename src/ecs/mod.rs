//! The ECS side: AWS's shapes, the forms users paste, typed views, units;
//! and the Application Auto Scaling of `spec.Scaling` (`scaling`).

pub mod input;
pub mod intrinsics;
pub mod model;
pub mod scaling;
pub mod schema;
pub mod units;
