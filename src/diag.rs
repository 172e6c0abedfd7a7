//! Diagnostics: what the engine says about an input, each pointing at the
//! place the user wrote it.

use serde::Serialize;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// What kind of problem, stable for machines (webhook causes, JSON output).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Code {
    /// A key no AWS model has at this place.
    UnknownField,
    /// A value of the wrong JSON type.
    InvalidType,
    /// A string outside the model's enum.
    NotSupported,
    /// A required member is absent.
    Required,
    /// A value outside a documented range, length or pattern.
    Invalid,
    /// Two things that must be unique are not.
    Duplicate,
    /// A reference to a container, volume or port that does not exist.
    NotFound,
    /// The input mixes ECS API camelCase and CloudFormation PascalCase.
    MixedCasing,
    /// A CloudFormation intrinsic function that cannot be resolved.
    Unresolved,
    /// Accepted, but not exactly as AWS would take it (conversions, renames).
    Converted,
    /// Accepted, but without a faithful Kubernetes equivalent.
    NotCarriedOver,
    /// Refused by the cluster admin's ECS field policy.
    PolicyDenied,
    /// Refused by the cluster itself (server-side dry run of the children).
    Preflight,
}

impl Code {
    /// What the code says, without the particulars.
    pub fn summary(self) -> &'static str {
        match self {
            Code::UnknownField => "unknown field",
            Code::InvalidType => "wrong type of value",
            Code::NotSupported => "value not supported",
            Code::Required => "required value missing",
            Code::Invalid => "invalid value",
            Code::Duplicate => "duplicate value",
            Code::NotFound => "reference to something that does not exist",
            Code::MixedCasing => "camelCase and PascalCase keys mixed in one object",
            Code::Unresolved => "intrinsic function that cannot be resolved",
            Code::Converted => "value converted",
            Code::NotCarriedOver => "not carried over to Kubernetes",
            Code::PolicyDenied => "refused by the cluster policy",
            Code::Preflight => "refused by the cluster",
        }
    }

    /// The Kubernetes `StatusCause.reason` this maps to.
    pub fn k8s_reason(self) -> &'static str {
        match self {
            Code::UnknownField => "FieldValueNotFound",
            Code::InvalidType => "FieldValueTypeInvalid",
            Code::NotSupported => "FieldValueNotSupported",
            Code::Required => "FieldValueRequired",
            Code::Duplicate => "FieldValueDuplicate",
            Code::NotFound => "FieldValueNotFound",
            Code::PolicyDenied => "FieldValueForbidden",
            _ => "FieldValueInvalid",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub code: Code,
    /// The JSON path as the user wrote it, e.g. `spec.Task.Properties.ContainerDefinitions[1].Memory`.
    pub path: String,
    pub message: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub expected: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub found: String,
}

impl Diagnostic {
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The same finding without anything quoted from the input: for
    /// definitions ecskube read with its own rights (a ConfigMap named by
    /// TaskFrom), whose values the requester may not be allowed to see. The
    /// path (structure, not values) stays; policy texts are the admin's own.
    pub fn without_values(&self) -> Diagnostic {
        let message = match self.code {
            Code::PolicyDenied => self.message.clone(),
            code => format!(
                "{} (the value is not shown: it comes from a ConfigMap; run `ecskube validate` on its content)",
                code.summary()
            ),
        };
        Diagnostic {
            severity: self.severity,
            code: self.code,
            path: self.path.clone(),
            message,
            expected: if self.code == Code::PolicyDenied {
                self.expected.clone()
            } else {
                String::new()
            },
            found: String::new(),
        }
    }
}

impl Diagnostic {
    /// The message with what was expected and found, without path or
    /// severity: a Status cause's message (kubectl prints `* <field>: <this>`).
    pub fn detail(&self) -> String {
        match (self.expected.is_empty(), self.found.is_empty()) {
            (false, false) => format!("{} (expected {}, found {})", self.message, self.expected, self.found),
            (false, true) => format!("{} (expected {})", self.message, self.expected),
            (true, false) => format!("{} (found {})", self.message, self.found),
            (true, true) => self.message.clone(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let path = if self.path.is_empty() { "(root)" } else { clip(&self.path, 256) };
        write!(f, "{path}: {sev}: {}", self.detail())
    }
}

/// At most `max` bytes of `s` (on a character boundary), marked when cut.
fn clip(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A short rendering of a JSON value for "found ..." texts.
pub fn show(v: &serde_json::Value) -> String {
    let s = match v {
        serde_json::Value::Object(_) => "an object".to_string(),
        serde_json::Value::Array(_) => "a list".to_string(),
        other => other.to_string(),
    };
    if s.chars().count() > 80 {
        let cut: String = s.chars().take(77).collect();
        format!("{cut}...")
    } else {
        s
    }
}

/// Collects diagnostics; every rule reports into one of these.
#[derive(Debug, Default, Clone)]
pub struct Report {
    pub diagnostics: Vec<Diagnostic>,
}

impl Report {
    pub fn push(&mut self, d: Diagnostic) {
        self.diagnostics.push(d);
    }

    pub fn error(&mut self, code: Code, path: impl Into<String>, message: impl Into<String>) -> &mut Diagnostic {
        self.add(Severity::Error, code, path, message)
    }

    pub fn warning(&mut self, code: Code, path: impl Into<String>, message: impl Into<String>) -> &mut Diagnostic {
        self.add(Severity::Warning, code, path, message)
    }

    fn add(&mut self, severity: Severity, code: Code, path: impl Into<String>, message: impl Into<String>) -> &mut Diagnostic {
        self.diagnostics.push(Diagnostic {
            severity,
            code,
            path: path.into(),
            message: message.into(),
            expected: String::new(),
            found: String::new(),
        });
        self.diagnostics.last_mut().expect("just pushed")
    }

    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.is_error())
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| !d.is_error())
    }
}

impl Diagnostic {
    pub fn expected(&mut self, e: impl Into<String>) -> &mut Self {
        self.expected = e.into();
        self
    }

    pub fn found(&mut self, f: impl Into<String>) -> &mut Self {
        self.found = f.into();
        self
    }
}
