//! The whole configuration as one list of lines: the main file with every `include`
//! spliced in where it stands (paths relative to the including file's folder), and
//! conditional lines (`@id …`, `@^id …`) kept or dropped for the config id.

use std::path::{Path, PathBuf};

use super::lexer::{self, RawLine, Word};
use super::loader::{self, Loader, MAX_FILE_BYTES};
use super::{Finding, Location, ParseError, glob};

/// How deep includes may nest, and how many files one import may read: enough for any
/// real configuration, and a bound for a file that includes itself.
const MAX_DEPTH: usize = 8;
const MAX_FILES: usize = 256;
/// How much text one import reads in all: without it, MAX_FILES files of MAX_FILE_BYTES
/// would be a gigabyte of configuration held in memory as words.
const MAX_TOTAL_BYTES: usize = 4 * MAX_FILE_BYTES;

/// A line of the configuration with the file and line it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub location: Location,
    pub words: Vec<Word>,
}

const INCLUDES: &[&str] = &[
    "include", "includer", "includem", "includew", "includeb", "includea",
];

pub struct Reader<'a> {
    loader: &'a dyn Loader,
    /// The main file's folder: files are named relative to it, so that the report and
    /// the output read the same wherever the configuration lives.
    root: PathBuf,
    config_id: Option<&'a str>,
    files: usize,
    /// The bytes of every file read so far, for MAX_TOTAL_BYTES.
    bytes: usize,
    pub findings: Vec<Finding>,
}

impl<'a> Reader<'a> {
    pub fn new(loader: &'a dyn Loader, config_id: Option<&'a str>) -> Self {
        Self {
            loader,
            root: PathBuf::from("/"),
            config_id,
            files: 0,
            bytes: 0,
            findings: Vec::new(),
        }
    }

    /// The lines of `text`, read from `path`, with its includes spliced in.
    pub fn read(&mut self, path: &Path, text: &str) -> Result<Vec<Line>, ParseError> {
        self.root = path.parent().unwrap_or(Path::new("/")).to_path_buf();
        self.admit(text)
            .map_err(|message| ParseError::general(format!("{}: {message}", path.display())))?;
        let mut out = Vec::new();
        self.file(path, text, 0, &mut out)?;
        Ok(out)
    }

    fn file(
        &mut self,
        path: &Path,
        text: &str,
        depth: usize,
        out: &mut Vec<Line>,
    ) -> Result<(), ParseError> {
        self.files += 1;
        let name = path
            .strip_prefix(&self.root)
            .unwrap_or(path)
            .display()
            .to_string();
        for raw in lexer::lex(&name, text)? {
            let location = Location {
                file: name.clone(),
                line: raw.line,
            };
            let Some(words) = self.condition(&location, raw)? else {
                continue;
            };
            let first = &words[0];
            if first.quoted {
                out.push(Line { location, words });
                continue;
            }
            if INCLUDES.contains(&first.text.as_str()) {
                self.include(path, &location, &words, depth, out)?;
            } else if first.text.starts_with('$') && first.text.contains('=') {
                return Err(ParseError::new(
                    &location,
                    format!(
                        "{}: parameter definitions ($NAME=VALUE) are not supported; \
                         write the values out, or import what 'keepalived -d' logs as the \
                         configuration in use",
                        first.text
                    ),
                ));
            } else if first.text.starts_with("~SEQ") || first.text.starts_with("~LST") {
                return Err(ParseError::new(
                    &location,
                    format!(
                        "{}: sequence and list blocks are not supported; write the lines out",
                        first.text
                    ),
                ));
            } else {
                out.push(Line { location, words });
            }
        }
        Ok(())
    }

    /// The words of a line without its condition, or `None` when the condition drops it.
    fn condition(
        &mut self,
        location: &Location,
        raw: RawLine,
    ) -> Result<Option<Vec<Word>>, ParseError> {
        let mut words = raw.words;
        let first = &words[0];
        if first.quoted || !first.text.starts_with('@') {
            return Ok(Some(words));
        }
        let (negated, id) = match first.text.strip_prefix("@^") {
            Some(id) => (true, id),
            None => (false, &first.text[1..]),
        };
        if id.is_empty() {
            return Err(ParseError::new(
                location,
                "'@' must be followed by a config id, e.g. @main priority 150",
            ));
        }
        let Some(config_id) = self.config_id else {
            return Err(ParseError::new(
                location,
                format!(
                    "{}: a conditional line, but no config id is known: pass --config-id",
                    first.text
                ),
            ));
        };
        let keep = (id == config_id) != negated;
        self.findings.push(Finding::note(
            location,
            &first.text,
            if keep {
                format!("conditional line kept for config id {config_id}")
            } else {
                format!("conditional line left out for config id {config_id}")
            },
        ));
        words.remove(0);
        Ok(if keep && !words.is_empty() {
            Some(words)
        } else {
            None
        })
    }

    /// Counts a file's text against the bounds, or says which one it breaks. Every loader
    /// gets the same bounds, not just the file system's.
    fn admit(&mut self, text: &str) -> Result<(), String> {
        if text.len() > MAX_FILE_BYTES {
            return Err(loader::too_large().to_string());
        }
        self.bytes += text.len();
        if self.bytes > MAX_TOTAL_BYTES {
            return Err(format!(
                "with it the configuration and its includes are larger than {} MiB in all, \
                 and a keepalived configuration is a few kilobytes: does an include match \
                 files it should not?",
                MAX_TOTAL_BYTES >> 20
            ));
        }
        Ok(())
    }

    fn include(
        &mut self,
        including: &Path,
        location: &Location,
        words: &[Word],
        depth: usize,
        out: &mut Vec<Line>,
    ) -> Result<(), ParseError> {
        let keyword = &words[0].text;
        let [_, pattern] = words else {
            return Err(ParseError::new(
                location,
                format!("{keyword} takes one file name or pattern"),
            ));
        };
        if depth >= MAX_DEPTH {
            return Err(ParseError::new(
                location,
                format!("includes nest more than {MAX_DEPTH} deep; does a file include itself?"),
            ));
        }
        let base = including.parent().unwrap_or(Path::new("/"));
        for alternative in glob::expand_braces(&pattern.text)
            .map_err(|message| ParseError::new(location, message))?
        {
            let path = absolute(base, &alternative);
            let paths = if glob::has_wildcard(&alternative) {
                let found = glob::matches(&path, self.loader);
                if found.is_empty() {
                    self.findings.push(Finding::note(
                        location,
                        keyword,
                        format!("{} matches no file; nothing included", path.display()),
                    ));
                }
                found
            } else {
                vec![path]
            };
            for path in paths {
                if self.files >= MAX_FILES {
                    return Err(ParseError::new(
                        location,
                        format!("more than {MAX_FILES} files are included"),
                    ));
                }
                let text = self
                    .loader
                    .read(&path)
                    .map_err(|e| e.to_string())
                    .and_then(|text| self.admit(&text).map(|()| text))
                    .map_err(|message| {
                        ParseError::new(
                            location,
                            format!(
                                "cannot read the included file {}: {message}",
                                path.display()
                            ),
                        )
                    })?;
                self.file(&path, &text, depth + 1, out)?;
            }
        }
        Ok(())
    }
}

/// `name` relative to `base` unless it is absolute, with `.` and `..` resolved by name
/// (as keepalived does after changing into the including file's folder).
fn absolute(base: &Path, name: &str) -> PathBuf {
    let joined = base.join(name);
    let mut path = PathBuf::from("/");
    for component in joined.components() {
        match component {
            std::path::Component::ParentDir => {
                path.pop();
            }
            std::path::Component::Normal(part) => path.push(part),
            _ => {}
        }
    }
    path
}
