//! The daemon's request errors and their one mapping to gRPC status codes.

use crate::spec::{SpecError, Violation};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// Why a request was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request breaks rules: INVALID_ARGUMENT with a google.rpc.BadRequest per field.
    #[error("invalid request: {}", list(.0))]
    Invalid(Vec<Violation>),
    /// The host cannot serve the request as it is now.
    #[error("{0}")]
    Precondition(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    /// Optimistic concurrency: someone changed the instance since the caller read it.
    #[error(
        "instance {name} is at revision {current}, the request expected {expected}; get it again, then retry with --revision {current} if the change still applies"
    )]
    StaleRevision {
        name: String,
        current: u64,
        expected: u64,
    },
    /// Optimistic concurrency for sync groups.
    #[error(
        "sync group {name} is at revision {current}, the request expected {expected}; get it again, then retry with that revision if the change still applies"
    )]
    StaleGroupRevision {
        name: String,
        current: u64,
        expected: u64,
    },
    /// The store cannot take writes now, or the daemon is stopping.
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    OutOfRange(String),
    #[error("{0}")]
    ResourceExhausted(String),
    #[error("internal error: {0}")]
    Internal(String),
}

fn list(v: &[Violation]) -> String {
    v.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl From<SpecError> for Error {
    fn from(e: SpecError) -> Self {
        match e {
            SpecError::Invalid(v) => Error::Invalid(v),
            SpecError::Precondition(p) => Error::Precondition(p),
        }
    }
}

impl From<Violation> for Error {
    fn from(v: Violation) -> Self {
        Error::Invalid(vec![v])
    }
}

impl From<crate::runtime::RuntimeGone> for Error {
    fn from(e: crate::runtime::RuntimeGone) -> Self {
        Error::Unavailable(e.to_string())
    }
}

impl From<Error> for Status {
    fn from(e: Error) -> Status {
        let message = e.to_string();
        match e {
            Error::Invalid(violations) => {
                let mut details = ErrorDetails::new();
                for v in &violations {
                    details.add_bad_request_violation(v.field.clone(), v.description.clone());
                }
                Status::with_error_details(Code::InvalidArgument, message, details)
            }
            Error::Precondition(_) => Status::failed_precondition(message),
            Error::NotFound(_) => Status::not_found(message),
            Error::AlreadyExists(_) => Status::already_exists(message),
            Error::StaleRevision { .. } | Error::StaleGroupRevision { .. } => {
                Status::aborted(message)
            }
            Error::Unavailable(_) => Status::unavailable(message),
            Error::OutOfRange(_) => Status::out_of_range(message),
            Error::ResourceExhausted(_) => Status::resource_exhausted(message),
            Error::Internal(_) => Status::internal(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_requests_carry_bad_request_details_per_field() {
        let status: Status = Error::Invalid(vec![
            Violation::new("spec.vrid", "0 is not a virtual router id: use 1-255"),
            Violation::new("spec.priority", "out of range"),
        ])
        .into();
        assert_eq!(status.code(), Code::InvalidArgument);
        let bad = status.get_details_bad_request().unwrap();
        let fields: Vec<_> = bad
            .field_violations
            .iter()
            .map(|v| v.field.as_str())
            .collect();
        assert_eq!(fields, ["spec.vrid", "spec.priority"]);
        assert!(status.message().contains("use 1-255"));
    }

    #[test]
    fn each_error_has_its_code() {
        let code = |e: Error| Status::from(e).code();
        assert_eq!(code(Error::NotFound("x".into())), Code::NotFound);
        assert_eq!(code(Error::AlreadyExists("x".into())), Code::AlreadyExists);
        assert_eq!(
            code(Error::Precondition("x".into())),
            Code::FailedPrecondition
        );
        assert_eq!(
            code(Error::StaleRevision {
                name: "w".into(),
                current: 3,
                expected: 2
            }),
            Code::Aborted
        );
        assert_eq!(code(Error::Unavailable("x".into())), Code::Unavailable);
        assert_eq!(code(Error::OutOfRange("x".into())), Code::OutOfRange);
        assert_eq!(
            code(Error::ResourceExhausted("x".into())),
            Code::ResourceExhausted
        );
    }
}
