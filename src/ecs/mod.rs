//! The ECS side: AWS's shapes, the forms users paste, typed views, units.

pub mod input;
pub mod intrinsics;
pub mod model;
pub mod schema;
pub mod units;
