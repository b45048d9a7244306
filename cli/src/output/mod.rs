//! Writing results to stdout in the chosen format.

pub mod format;
pub mod table;

use std::io::Write;

use serde::Serialize;

use crate::args::OutputFormat;
use crate::error::CliError;

/// stdout in the chosen format. Every write is flushed, because output is often piped to
/// another program that acts on each line as it comes.
#[derive(Debug)]
pub struct Out {
    pub format: OutputFormat,
}

impl Out {
    pub fn new(format: OutputFormat) -> Self {
        Self { format }
    }

    pub fn is_table(&self) -> bool {
        self.format == OutputFormat::Table
    }

    /// Text exactly as given; table output ends its lines itself.
    pub fn text(&self, text: &str) -> Result<(), CliError> {
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(text.as_bytes())?;
        stdout.flush()?;
        Ok(())
    }

    /// One line of text.
    pub fn line(&self, line: &str) -> Result<(), CliError> {
        self.text(&format!("{line}\n"))
    }

    /// A whole response: pretty JSON, or one YAML document. Not for table output.
    pub fn message<T: Serialize>(&self, message: &T) -> Result<(), CliError> {
        self.text(&render_message(self.format, message)?)
    }

    /// One item of a stream or a long list: a JSON object on one line, or a YAML document
    /// opened by "---", so that a reader can split the stream without parsing it all.
    pub fn record<T: Serialize>(&self, item: &T) -> Result<(), CliError> {
        self.text(&render_record(self.format, item)?)
    }
}

fn render_message<T: Serialize>(format: OutputFormat, message: &T) -> Result<String, CliError> {
    Ok(match format {
        OutputFormat::Json => serde_json::to_string_pretty(message)? + "\n",
        OutputFormat::Yaml => yaml_serde::to_string(message)?,
        OutputFormat::Table => {
            return Err(CliError::Encode("no table form for this result".to_owned()));
        }
    })
}

fn render_record<T: Serialize>(format: OutputFormat, item: &T) -> Result<String, CliError> {
    Ok(match format {
        OutputFormat::Json => serde_json::to_string(item)? + "\n",
        OutputFormat::Yaml => format!("---\n{}", yaml_serde::to_string(item)?),
        OutputFormat::Table => {
            return Err(CliError::Encode("no table form for this result".to_owned()));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use havip_proto::v1::{State, Transition};

    #[test]
    fn records_are_one_line_of_json_or_one_yaml_document() {
        let t = Transition {
            instance: "web".into(),
            to: State::Master as i32,
            seq: 9,
            ..Default::default()
        };
        let json = render_record(OutputFormat::Json, &t).unwrap();
        assert_eq!(json.lines().count(), 1);
        assert_eq!(
            serde_json::from_str::<Transition>(&json).unwrap(),
            t,
            "proto3 JSON that parses back: {json}"
        );
        let yaml = render_record(OutputFormat::Yaml, &t).unwrap();
        assert!(yaml.starts_with("---\n"), "{yaml}");
        assert_eq!(yaml_serde::from_str::<Transition>(&yaml).unwrap(), t);
    }
}
