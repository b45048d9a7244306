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

/// A status travels in HTTP/2 headers, and clients cap their size (16 KiB by default in
/// tonic/hyper and grpc-go): past it the caller gets a protocol error instead of the
/// status. Messages echo what the caller sent (names, addresses, every bad entry of a long
/// list), so they are cut to these sizes.
const MAX_MESSAGE: usize = 2048;
const MAX_FIELD: usize = 256;
const MAX_DESCRIPTION: usize = 512;
/// Violations carried in the details; the message names the first few.
const MAX_VIOLATIONS: usize = 20;
const VIOLATIONS_IN_MESSAGE: usize = 5;

/// `s` cut to at most `max` bytes (on a character boundary), marked when cut.
fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    const MARK: &str = "… (cut)";
    let mut end = max.saturating_sub(MARK.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{MARK}", &s[..end])
}

fn clipped(v: &Violation) -> Violation {
    Violation::new(
        clip(&v.field, MAX_FIELD),
        clip(&v.description, MAX_DESCRIPTION),
    )
}

impl From<Error> for Status {
    fn from(e: Error) -> Status {
        if let Error::Invalid(violations) = e {
            let shown: Vec<Violation> = violations
                .iter()
                .take(MAX_VIOLATIONS)
                .map(clipped)
                .collect();
            // The count of the others is kept whole; the list gives way.
            let more = if violations.len() > VIOLATIONS_IN_MESSAGE {
                format!(
                    "; and {} more (the details list the first {})",
                    violations.len() - VIOLATIONS_IN_MESSAGE,
                    shown.len()
                )
            } else {
                String::new()
            };
            let listed = list(&shown[..shown.len().min(VIOLATIONS_IN_MESSAGE)]);
            let prefix = "invalid request: ";
            let room = MAX_MESSAGE - prefix.len() - more.len();
            let message = format!("{prefix}{}{more}", clip(&listed, room));
            let mut details = ErrorDetails::new();
            for v in shown {
                details.add_bad_request_violation(v.field, v.description);
            }
            return Status::with_error_details(Code::InvalidArgument, message, details);
        }
        let message = clip(&e.to_string(), MAX_MESSAGE);
        match e {
            Error::Invalid(_) => Status::invalid_argument(message),
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
    fn a_status_stays_small_whatever_the_request_echoed() {
        // 300 violations, each echoing a 10 KiB value.
        let long = "x".repeat(10_000);
        let violations: Vec<Violation> = (0..300)
            .map(|i| Violation::new(format!("spec.labels[{long}{i}]"), long.clone()))
            .collect();
        let status: Status = Error::Invalid(violations).into();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(
            status.message().len() <= MAX_MESSAGE,
            "{}",
            status.message().len()
        );
        assert!(
            status.message().contains("and 295 more"),
            "{}",
            status.message()
        );
        let bad = status.get_details_bad_request().unwrap();
        assert_eq!(bad.field_violations.len(), MAX_VIOLATIONS);
        assert!(
            bad.field_violations
                .iter()
                .all(|v| v.field.len() <= MAX_FIELD
                    && v.description.len() <= MAX_DESCRIPTION
                    && v.description.ends_with("(cut)"))
        );
        let status: Status =
            Error::NotFound(format!("instance {} does not exist", "é".repeat(5000))).into();
        assert!(status.message().len() <= MAX_MESSAGE);
        assert!(status.message().ends_with("… (cut)"));
        // A short one is left whole.
        assert_eq!(clip("short", 10), "short");
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
