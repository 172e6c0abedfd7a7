//! The ECS shapes as AWS models them, in the two spellings users paste:
//! the ECS API (camelCase, botocore's model) and CloudFormation (PascalCase,
//! the resource schemas); beside them the Application Auto Scaling shapes of
//! `spec.Scaling` (PascalCase in both, canonical names the API's). `generated.rs` is produced from those models by
//! `make schema` (see tools/schemagen.rs) and checked against them by
//! tests/aws_model_coverage.rs, so a new AWS field cannot go missing.

#[rustfmt::skip]
mod generated;

pub use generated::{API, CFN};

/// Index of a shape inside its [`Schema`].
pub type ShapeId = u16;

/// One dialect's shapes plus its entry points.
#[derive(Debug)]
pub struct Schema {
    pub dialect: Dialect,
    pub shapes: &'static [Shape],
    /// Root of a task definition (input members plus read-only describe members).
    pub task_root: ShapeId,
    /// Root of a service (input members plus read-only describe members).
    pub service_root: ShapeId,
    /// Root of an Application Auto Scaling scalable target (`register-scalable-target`
    /// input, or AWS::ApplicationAutoScaling::ScalableTarget).
    pub scalable_target_root: ShapeId,
    /// Root of a scaling policy (`put-scaling-policy` input, or AWS::ApplicationAutoScaling::ScalingPolicy).
    pub scaling_policy_root: ShapeId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// ECS API / AWS CLI JSON, camelCase.
    Api,
    /// CloudFormation resource properties, PascalCase.
    Cfn,
}

impl Dialect {
    pub fn describe(self) -> &'static str {
        match self {
            Dialect::Api => "ECS API camelCase",
            Dialect::Cfn => "CloudFormation PascalCase",
        }
    }
}

#[derive(Debug)]
pub struct Shape {
    pub name: &'static str,
    pub kind: Kind,
}

#[derive(Debug)]
pub enum Kind {
    Struct(&'static [Member]),
    List {
        item: ShapeId,
        min: Option<u32>,
        max: Option<u32>,
    },
    /// Free-form keys (docker labels, log options) with values of one shape.
    Map {
        value: ShapeId,
    },
    String {
        enums: &'static [&'static str],
        min_len: Option<u32>,
        max_len: Option<u32>,
        pattern: Option<&'static str>,
    },
    Integer {
        min: Option<i64>,
        max: Option<i64>,
    },
    Double {
        min: Option<f64>,
        max: Option<f64>,
    },
    Boolean,
    Timestamp,
    /// Accepted as is: read-only describe output, or untyped documents.
    Any,
    /// CloudFormation members typed "string or object" (e.g. ARNs given inline).
    StringOrObject,
}

#[derive(Debug)]
pub struct Member {
    /// The key as this dialect spells it.
    pub name: &'static str,
    /// The API name every rule uses, whatever the dialect (ECS: camelCase;
    /// Application Auto Scaling: its API's PascalCase).
    pub canonical: &'static str,
    pub shape: ShapeId,
    pub required: bool,
    /// Filled in by AWS (describe output, CloudFormation read-only): accepted and ignored.
    pub read_only: bool,
}

impl Schema {
    pub fn shape(&self, id: ShapeId) -> &'static Shape {
        &self.shapes[id as usize]
    }

    /// Members of a struct shape (empty for other kinds).
    pub fn members(&self, id: ShapeId) -> &'static [Member] {
        match self.shape(id).kind {
            Kind::Struct(m) => m,
            _ => &[],
        }
    }

    pub fn member(&self, id: ShapeId, key: &str) -> Option<&'static Member> {
        self.members(id).iter().find(|m| m.name == key)
    }

    pub fn member_by_canonical(&self, id: ShapeId, canonical: &str) -> Option<&'static Member> {
        self.members(id).iter().find(|m| m.canonical == canonical)
    }

    pub fn for_dialect(dialect: Dialect) -> &'static Schema {
        match dialect {
            Dialect::Api => &API,
            Dialect::Cfn => &CFN,
        }
    }
}
