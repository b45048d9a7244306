//! havipctl's own errors, how they are shown, and the exit code each one gives.

use std::io;
use std::process::ExitCode;
use std::time::Duration;

use tonic_types::StatusExt;

/// Everything that makes a command fail. All of them exit with 1: usage errors (2) are
/// clap's and never get this far.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("cannot reach havipd at {server}: {reason}. {hint}")]
    Unreachable {
        server: String,
        reason: String,
        /// What to do about it, for a reader who may be meeting havip for the first time.
        hint: &'static str,
    },

    #[error("havipd at {server} did not answer within {}", humantime::format_duration(*.timeout))]
    Timeout { server: String, timeout: Duration },

    /// havipd refused or failed the call.
    #[error("{}", status_text(.0))]
    Rpc(Box<tonic::Status>),

    #[error("cannot read {path}: {source}")]
    ReadFile {
        path: String,
        #[source]
        source: io::Error,
    },

    #[error("{path}: {message}")]
    BadFile { path: String, message: String },

    /// One entry of an applied file went wrong.
    #[error("{path}: entry {number} ({name}): {source}")]
    Entry {
        path: String,
        /// Counted from 1, as people count.
        number: usize,
        name: String,
        #[source]
        source: Box<CliError>,
    },

    /// --prune could not delete an instance.
    #[error("cannot prune {name}: {source}")]
    Prune {
        name: String,
        #[source]
        source: Box<CliError>,
    },

    /// Input that cannot be used, such as a malformed entry of an applied file.
    #[error("{0}")]
    Invalid(String),

    /// A summary after the individual errors have been reported.
    #[error("{0}")]
    Failed(String),

    #[error("cannot write output: {0}")]
    Output(#[from] io::Error),

    #[error("cannot encode output: {0}")]
    Encode(String),
}

impl From<tonic::Status> for CliError {
    fn from(status: tonic::Status) -> Self {
        Self::Rpc(Box::new(status))
    }
}

impl From<serde_json::Error> for CliError {
    fn from(e: serde_json::Error) -> Self {
        Self::Encode(e.to_string())
    }
}

impl From<yaml_serde::Error> for CliError {
    fn from(e: yaml_serde::Error) -> Self {
        Self::Encode(e.to_string())
    }
}

impl CliError {
    /// The gRPC status behind this error, if havipd answered with one.
    pub fn status(&self) -> Option<&tonic::Status> {
        match self {
            Self::Rpc(status) => Some(status),
            Self::Entry { source, .. } | Self::Prune { source, .. } => source.status(),
            _ => None,
        }
    }

    /// The lines to print on stderr: the error, then one line per field havipd objected to.
    pub fn report_lines(&self) -> Vec<String> {
        let mut lines = vec![format!("error: {self}")];
        if let Some(bad_request) = self.status().and_then(|s| s.get_details_bad_request()) {
            for violation in bad_request.field_violations {
                lines.push(format!(
                    "  field {}: {}",
                    violation.field, violation.description
                ));
            }
        }
        lines
    }

    /// Prints the error (unless there is nobody left to read it) and picks the exit code.
    pub fn report(&self) -> ExitCode {
        // A reader that went away (`havipctl watch | head -1`) is a normal way to stop.
        if let Self::Output(e) = self
            && e.kind() == io::ErrorKind::BrokenPipe
        {
            return ExitCode::SUCCESS;
        }
        for line in self.report_lines() {
            eprintln!("{line}");
        }
        ExitCode::FAILURE
    }
}

/// havipd's message; its code when it sent none, which a well-behaved daemon never does.
fn status_text(status: &tonic::Status) -> String {
    if status.message().is_empty() {
        format!("havipd answered {:?} with no message", status.code())
    } else {
        status.message().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;
    use tonic_types::ErrorDetails;

    #[test]
    fn field_violations_follow_the_message() {
        let mut details = ErrorDetails::with_bad_request_violation("vrid", "must be 1-255, not 0");
        details.add_bad_request_violation("virtual_addresses[0]", "10.0.0.1/33: prefix too long");
        let status = tonic::Status::with_error_details(
            Code::InvalidArgument,
            "invalid spec for web",
            details,
        );
        let err = CliError::Entry {
            path: "all.yaml".into(),
            number: 2,
            name: "web".into(),
            source: Box::new(status.into()),
        };
        assert_eq!(
            err.report_lines(),
            [
                "error: all.yaml: entry 2 (web): invalid spec for web",
                "  field vrid: must be 1-255, not 0",
                "  field virtual_addresses[0]: 10.0.0.1/33: prefix too long",
            ]
        );
    }

    #[test]
    fn a_plain_status_prints_its_message() {
        let err = CliError::from(tonic::Status::not_found("no instance named web"));
        assert_eq!(err.report_lines(), ["error: no instance named web"]);
        let err = CliError::from(tonic::Status::new(Code::Internal, ""));
        assert_eq!(
            err.report_lines(),
            ["error: havipd answered Internal with no message"]
        );
    }
}
