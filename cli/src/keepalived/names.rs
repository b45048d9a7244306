//! keepalived names to havip names: 1-63 letters, digits, '-', '_' and '.', starting with
//! a letter or digit. Anything else becomes '-'; a name that turns out like another gets
//! a number.

use std::collections::{BTreeMap, BTreeSet};

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
    /// For each wanted name, the number to try first next time. Every number below it was
    /// found taken, and a taken name stays taken, so starting there gives the same name as
    /// starting from 2; starting from 2 each time made n copies of one name quadratic.
    next: BTreeMap<String, u64>,
}

impl Names {
    /// The unique name for `wanted` (already sanitised), and whether it had to change.
    pub fn claim(&mut self, wanted: &str) -> (String, bool) {
        if self.taken.insert(wanted.to_owned()) {
            return (wanted.to_owned(), false);
        }
        let first = self.next.get(wanted).copied().unwrap_or(2);
        for n in first.. {
            let suffix = format!("-{n}");
            let mut base = wanted.to_owned();
            base.truncate(MAX_LEN - suffix.len());
            let candidate = format!("{base}{suffix}");
            if self.taken.insert(candidate.clone()) {
                self.next.insert(wanted.to_owned(), n + 1);
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

    /// Found while probing the importer with large inputs: the n-th copy of a name tried
    /// every number from 2, so 40 000 instances of one name took minutes.
    #[test]
    fn many_copies_of_one_name_are_linear() {
        let start = std::time::Instant::now();
        let mut names = Names::default();
        for _ in 0..40_000 {
            names.claim("X");
        }
        assert_eq!(names.claim("X"), ("X-40001".into(), true));
        // A number taken by a name of its own is still skipped.
        assert_eq!(names.claim("X-40003"), ("X-40003".into(), false));
        assert_eq!(names.claim("X"), ("X-40002".into(), true));
        assert_eq!(names.claim("X"), ("X-40004".into(), true));
        assert!(
            start.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
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
