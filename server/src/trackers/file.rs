//! File trackers (keepalived's track_file): read an integer from a file every second. Runs
//! on the main runtime; the read goes through tokio's blocking pool.

use super::book::Health;
use std::path::Path;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// How often the file is read.
pub(super) const INTERVAL: Duration = Duration::from_secs(1);
/// More than any integer needs; a file that is longer is not a tracker file.
const MAX_READ: u64 = 256;

/// Read the file once: its value, or why it has none.
pub(super) async fn read_value(path: &Path) -> (Health, String) {
    let shown = path.display();
    let mut text = Vec::new();
    let read = match tokio::fs::File::open(path).await {
        Ok(f) => f.take(MAX_READ).read_to_end(&mut text).await,
        Err(e) => Err(e),
    };
    if let Err(e) = read {
        return (Health::Failing, format!("cannot read {shown}: {e}"));
    }
    let text = String::from_utf8_lossy(&text);
    let trimmed = text.trim();
    match parse(trimmed) {
        Some(v) => (Health::Value(v), format!("{shown} holds {v}")),
        None => {
            let mut quoted: String = trimmed.chars().take(40).collect();
            if quoted.len() < trimmed.len() {
                quoted.push('…');
            }
            (
                Health::Failing,
                format!("{shown} does not hold an integer ({quoted:?})"),
            )
        }
    }
}

/// An integer, with an optional sign. keepalived also takes the first number on a line
/// followed by anything; havip wants exactly one, so a half-written file is not read
/// as a number.
fn parse(s: &str) -> Option<i64> {
    s.parse::<i64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn values_and_failures() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("prio");
        std::fs::write(&p, "-42\n").unwrap();
        assert_eq!(read_value(&p).await.0, Health::Value(-42));
        std::fs::write(&p, "abc").unwrap();
        let (h, detail) = read_value(&p).await;
        assert_eq!(h, Health::Failing);
        assert!(detail.contains("does not hold an integer"), "{detail}");
        std::fs::remove_file(&p).unwrap();
        let (h, detail) = read_value(&p).await;
        assert_eq!(h, Health::Failing);
        assert!(detail.starts_with("cannot read"), "{detail}");
    }
}
