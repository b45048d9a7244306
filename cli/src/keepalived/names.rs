//! keepalived names to havip names: 1-63 letters, digits, '-', '_' and '.', starting with
//! a letter or digit. Anything else becomes '-'; a name that turns out like another gets
//! a number.

use std::collections::BTreeSet;

const MAX_LEN: usize = 63;

/// The havip spelling of `name`, and whether it had to change.
pub fn sanitise(name: &str) -> (String, bool) {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    if !out.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        out.insert_str(0, "vi");
    }
    out.truncate(MAX_LEN);
    let changed = out != name;
    (out, changed)
}

/// Hands out names unique among those taken: "web", then "web-2", "web-3", …
#[derive(Debug, Default)]
pub struct Names {
    taken: BTreeSet<String>,
}

impl Names {
    /// The unique name for `wanted` (already sanitised), and whether it had to change.
    pub fn claim(&mut self, wanted: &str) -> (String, bool) {
        if self.taken.insert(wanted.to_owned()) {
            return (wanted.to_owned(), false);
        }
        for n in 2.. {
            let suffix = format!("-{n}");
            let mut base = wanted.to_owned();
            base.truncate(MAX_LEN - suffix.len());
            let candidate = format!("{base}{suffix}");
            if self.taken.insert(candidate.clone()) {
                return (candidate, true);
            }
        }
        // Unreachable: there are fewer names taken than numbers.
        (wanted.to_owned(), false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_made_valid() {
        assert_eq!(sanitise("VI_1"), ("VI_1".into(), false));
        assert_eq!(sanitise("web vip/1"), ("web-vip-1".into(), true));
        assert_eq!(sanitise("_x"), ("vi_x".into(), true));
        assert_eq!(sanitise("écran"), ("vi-cran".into(), true));
        assert_eq!(sanitise(&"a".repeat(70)).0.len(), 63);
    }

    #[test]
    fn collisions_get_a_number() {
        let mut names = Names::default();
        assert_eq!(names.claim("web-1"), ("web-1".into(), false));
        assert_eq!(names.claim("web-1"), ("web-1-2".into(), true));
        assert_eq!(names.claim("web-1"), ("web-1-3".into(), true));
        let long = "b".repeat(63);
        names.claim(&long);
        assert_eq!(names.claim(&long).0.len(), 63);
    }
}
