//! keepalived.conf to havip: a parser for keepalived's configuration (the VRRP half) and
//! its translation into havip instances and sync groups, with a report of everything that
//! was not carried over, and why, by file and line.
//!
//! The entry point, [`parse`], is pure: text in, a typed result out, files read only
//! through a [`Loader`]. It never panics, whatever the input (a property test and a fuzz
//! target hold it to that).

mod convert;
mod glob;
mod instance;
mod lexer;
mod loader;
mod names;
mod notify;
mod render;
mod scripts;
mod source;
mod tree;
mod values;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::Path;

use havip_proto::v1::InstanceSpec;

pub use loader::{FsLoader, Loader, MemLoader};
pub use render::{to_json, to_yaml};

/// Where something is in the configuration: a file (relative to the main file's folder
/// when it is under it, e.g. "keepalived.conf", "conf.d/web.conf") and a line from 1.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Location {
    pub file: String,
    pub line: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// Why a configuration cannot be imported at all: a file that cannot be read, a syntax
/// error, a value that means nothing. Names the file and line when there is one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", location.as_ref().map(|l| format!("{l}: ")).unwrap_or_default())]
pub struct ParseError {
    pub location: Option<Location>,
    pub message: String,
}

impl ParseError {
    pub fn new(location: &Location, message: impl Into<String>) -> Self {
        Self {
            location: Some(location.clone()),
            message: message.into(),
        }
    }

    fn at(file: &str, line: usize, message: impl Into<String>) -> Self {
        Self {
            location: Some(Location {
                file: file.to_owned(),
                line,
            }),
            message: message.into(),
        }
    }

    fn general(message: impl Into<String>) -> Self {
        Self {
            location: None,
            message: message.into(),
        }
    }
}

/// What the report says about a keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FindingKind {
    /// Not carried over: havip has no equivalent, or does it another way.
    NotCarried,
    /// Carried over, but not quite as keepalived would have it, or needing a look.
    Changed,
    /// For information: how something was read.
    Note,
}

impl FindingKind {
    pub fn label(self) -> &'static str {
        match self {
            FindingKind::NotCarried => "not carried over",
            FindingKind::Changed => "changed",
            FindingKind::Note => "note",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub location: Location,
    pub keyword: String,
    pub kind: FindingKind,
    pub message: String,
}

impl Finding {
    fn new(location: &Location, keyword: &str, kind: FindingKind, message: String) -> Self {
        Self {
            location: location.clone(),
            keyword: keyword.to_owned(),
            kind,
            message,
        }
    }

    fn dropped(location: &Location, keyword: &str, message: impl Into<String>) -> Self {
        Self::new(location, keyword, FindingKind::NotCarried, message.into())
    }

    fn changed(location: &Location, keyword: &str, message: impl Into<String>) -> Self {
        Self::new(location, keyword, FindingKind::Changed, message.into())
    }

    fn note(location: &Location, keyword: &str, message: impl Into<String>) -> Self {
        Self::new(location, keyword, FindingKind::Note, message.into())
    }
}

impl fmt::Display for Finding {
    /// "keepalived.conf:12: smtp_alert: not carried over: havip sends no mail; …"
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}: {}: {}",
            self.location,
            self.keyword,
            self.kind.label(),
            self.message
        )
    }
}

/// A havip instance made from a vrrp_instance.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedInstance {
    /// The havip name: the vrrp_instance's name, made valid and unique.
    pub name: String,
    pub keepalived_name: String,
    pub location: Location,
    pub spec: InstanceSpec,
}

/// A havip sync group made from a vrrp_sync_group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedGroup {
    pub name: String,
    pub keepalived_name: String,
    pub location: Location,
    /// havip instance names.
    pub instances: Vec<String>,
}

/// Everything an import produced.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Import {
    pub instances: Vec<ImportedInstance>,
    pub sync_groups: Vec<ImportedGroup>,
    /// Sorted by file and line.
    pub findings: Vec<Finding>,
}

/// How to read the configuration.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// keepalived's config id (`keepalived -i`), for conditional lines; without one, a
    /// conditional line is an error.
    pub config_id: Option<String>,
}

/// Parses `text`, the configuration read from `path` (which locates its relative
/// includes and names it in the report), and translates it.
pub fn parse(
    path: &Path,
    text: &str,
    loader: &dyn Loader,
    options: &Options,
) -> Result<Import, ParseError> {
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        Path::new("/").join(path)
    };
    let mut reader = source::Reader::new(loader, options.config_id.as_deref());
    let lines = reader.read(&path, text)?;
    let statements = tree::parse(&lines)?;
    let mut import = convert::convert(&statements, loader)?;
    let mut findings = reader.findings;
    findings.append(&mut import.findings);
    findings.sort_by(|a, b| a.location.cmp(&b.location));
    import.findings = findings;
    Ok(import)
}

/// Reads `path` from the file system and parses it.
pub fn parse_file(path: &Path, options: &Options) -> Result<Import, ParseError> {
    let loader = FsLoader;
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| ParseError::general(format!("cannot find the current folder: {e}")))?
            .join(path)
    };
    let text = loader
        .read(&absolute)
        .map_err(|e| ParseError::general(format!("cannot read {}: {e}", path.display())))?;
    parse(&absolute, &text, &loader, options)
}
