//! The file patterns of keepalived's include: csh-style braces ({a,b}) and the shell's
//! wildcards (*, ?, [...]), matched against folder listings from the [`Loader`].

use std::path::{Path, PathBuf};

use super::loader::Loader;

/// More alternatives than this from braces is a mistake, not a configuration.
const MAX_EXPANSIONS: usize = 1024;
/// Linux's PATH_MAX: no longer pattern names a file, and the bound keeps expanding and
/// matching one (each alternative is a copy, each match a scan) cheap.
const MAX_PATTERN_BYTES: usize = 4096;

pub fn has_wildcard(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

/// `{a,b}c` → `ac`, `bc`, innermost-first, in order. A brace without a comma at its level
/// is kept as it is, as csh does.
pub fn expand_braces(pattern: &str) -> Result<Vec<String>, String> {
    if pattern.len() > MAX_PATTERN_BYTES {
        return Err(format!(
            "the file name or pattern is {} bytes long, but a path is at most \
             {MAX_PATTERN_BYTES} bytes",
            pattern.len()
        ));
    }
    let mut done = Vec::new();
    let mut todo = vec![pattern.to_owned()];
    while let Some(p) = todo.pop() {
        match split_first_brace(&p) {
            Some((head, alternatives, tail)) => {
                for alternative in alternatives.iter().rev() {
                    todo.push(format!("{head}{alternative}{tail}"));
                }
            }
            None => done.push(p),
        }
        if done.len() + todo.len() > MAX_EXPANSIONS {
            return Err(format!(
                "the pattern {pattern} expands to more than {MAX_EXPANSIONS} names"
            ));
        }
    }
    Ok(done)
}

/// The text before the first `{…,…}` group, its alternatives and the text after it.
///
/// Braces are matched in one pass, with a stack of the open ones that notes whether a
/// comma stands at each one's own level; the group is the matched pair with a comma whose
/// '{' comes first. Scanning forward from every '{' instead was quadratic: a quoted
/// pattern of 200 000 unmatched '{' took minutes.
fn split_first_brace(p: &str) -> Option<(String, Vec<String>, String)> {
    let chars: Vec<char> = p.chars().collect();
    let mut open: Vec<(usize, bool)> = Vec::new();
    let mut group: Option<(usize, usize)> = None;
    for (index, c) in chars.iter().enumerate() {
        match c {
            '{' => open.push((index, false)),
            ',' => {
                if let Some((_, comma)) = open.last_mut() {
                    *comma = true;
                }
            }
            // A '}' with nothing open is an ordinary character.
            '}' => {
                if let Some((start, true)) = open.pop()
                    && group.is_none_or(|(first, _)| start < first)
                {
                    group = Some((start, index));
                }
            }
            _ => {}
        }
    }
    let (start, end) = group?;
    // Between a matched pair the braces balance, so depth never goes below 0.
    let mut depth = 0usize;
    let mut parts = Vec::new();
    let mut part = String::new();
    for c in chars.get(start + 1..end).unwrap_or_default() {
        match c {
            ',' if depth == 0 => parts.push(std::mem::take(&mut part)),
            '{' => {
                depth += 1;
                part.push(*c);
            }
            '}' => {
                depth = depth.saturating_sub(1);
                part.push(*c);
            }
            c => part.push(*c),
        }
    }
    parts.push(part);
    let head: String = chars.get(..start).unwrap_or_default().iter().collect();
    let tail: String = chars.get(end + 1..).unwrap_or_default().iter().collect();
    Some((head, parts, tail))
}

/// The existing paths that `pattern` (absolute, braces expanded) matches, sorted. Names
/// starting with '.' match only a pattern that starts with '.', as in the shell.
pub fn matches(pattern: &Path, loader: &dyn Loader) -> Vec<PathBuf> {
    let mut found = vec![PathBuf::from("/")];
    for component in pattern.components().skip(1) {
        let part = component.as_os_str().to_string_lossy();
        let mut next = Vec::new();
        for base in &found {
            if has_wildcard(&part) {
                let Ok(mut names) = loader.list(base) else {
                    continue;
                };
                names.sort();
                for name in names {
                    let hidden = name.starts_with('.') && !part.starts_with('.');
                    if !hidden && fnmatch(&part, &name) {
                        next.push(base.join(name));
                    }
                }
            } else {
                next.push(base.join(part.as_ref()));
            }
        }
        found = next;
    }
    found
}

/// Whether `name` matches the shell pattern `pattern` (*, ?, [abc], [a-z], [!a]).
pub fn fnmatch(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Iterative matching with one backtrack point for the last '*': linear enough for
    // file names, and no recursion for a fuzzer to exhaust.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    star = Some((pi, ni));
                    pi += 1;
                    continue;
                }
                '?' => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                '[' => match class(&p[pi..], n[ni]) {
                    Some((true, len)) => {
                        pi += len;
                        ni += 1;
                        continue;
                    }
                    Some((false, _)) => {}
                    // An unclosed '[' is an ordinary character.
                    None if n[ni] == '[' => {
                        pi += 1;
                        ni += 1;
                        continue;
                    }
                    None => {}
                },
                c if c == n[ni] => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((star_p, star_n)) => {
                pi = star_p + 1;
                ni = star_n + 1;
                star = Some((star_p, star_n + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// A `[...]` class at the start of `p`: whether `c` is in it and the class's length, or
/// `None` if it is not closed.
fn class(p: &[char], c: char) -> Option<(bool, usize)> {
    let mut i = 1;
    let negated = matches!(p.get(i), Some('!' | '^'));
    if negated {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while i < p.len() {
        if p[i] == ']' && !first {
            return Some((matched != negated, i + 1));
        }
        first = false;
        if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
            if p[i] <= c && c <= p[i + 2] {
                matched = true;
            }
            i += 3;
        } else {
            if p[i] == c {
                matched = true;
            }
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keepalived::loader::MemLoader;

    #[test]
    fn wildcards() {
        assert!(fnmatch("*.conf", "web.conf"));
        assert!(!fnmatch("*.conf", "web.conf.bak"));
        assert!(fnmatch("vi_?.conf", "vi_1.conf"));
        assert!(fnmatch("[a-c]*", "b"));
        assert!(!fnmatch("[!a-c]*", "b"));
        assert!(fnmatch("a*b*c", "aXXbYYc"));
        assert!(!fnmatch("a*b*c", "aXXbYY"));
        assert!(fnmatch("[", "["));
        assert!(fnmatch("*", ""));
    }

    #[test]
    fn braces() {
        assert_eq!(expand_braces("a{b,c}d").unwrap(), ["abd", "acd"]);
        assert_eq!(
            expand_braces("{foo/{,cat,dog},bar}").unwrap(),
            ["foo/", "foo/cat", "foo/dog", "bar"]
        );
        assert_eq!(expand_braces("{x}").unwrap(), ["{x}"]);
        assert!(expand_braces(&"{a,b}".repeat(11)).is_err());
        // Unmatched and comma-less braces around and inside a group stay as they are.
        assert_eq!(expand_braces("{a{b,c}").unwrap(), ["{ab", "{ac"]);
        assert_eq!(expand_braces("}{x}{a,b}").unwrap(), ["}{x}a", "}{x}b"]);
        assert_eq!(
            expand_braces("{a,{x}b}{").unwrap(),
            ["a{", "{x}b{"],
            "a brace without a comma inside a group is one alternative's text"
        );
    }

    /// Found while probing the importer with large inputs: every '{' without a group
    /// scanned the rest of the pattern, so 200 000 of them (a 200 kB quoted include
    /// pattern) took minutes. One pass makes it milliseconds; the bound here is loose
    /// enough for a slow debug build. (Patterns that long are now refused before they are
    /// expanded, so split_first_brace is called directly.)
    #[test]
    fn unmatched_braces_are_linear() {
        for pattern in [
            "{".repeat(200_000),
            "{".repeat(100_000) + "a,b" + &"}".repeat(100_000),
            "{x".repeat(100_000) + "{a,b}",
        ] {
            let start = std::time::Instant::now();
            let _ = split_first_brace(&pattern);
            assert!(
                start.elapsed() < std::time::Duration::from_secs(5),
                "{} chars took {:?}",
                pattern.len(),
                start.elapsed()
            );
        }
    }

    #[test]
    fn patterns_longer_than_a_path_are_refused() {
        let pattern = "{a,b}".repeat(9) + &"x".repeat(5000);
        assert_eq!(
            expand_braces(&pattern).unwrap_err(),
            "the file name or pattern is 5045 bytes long, but a path is at most 4096 bytes"
        );
        assert!(expand_braces(&"x".repeat(4096)).is_ok());
    }

    #[test]
    fn globs_walk_the_loader() {
        let loader = MemLoader::new()
            .with("/etc/k/conf.d/b.conf", "")
            .with("/etc/k/conf.d/a.conf", "")
            .with("/etc/k/conf.d/.hidden.conf", "")
            .with("/etc/k/conf.d/notes.txt", "");
        assert_eq!(
            matches(Path::new("/etc/k/conf.d/*.conf"), &loader),
            [
                PathBuf::from("/etc/k/conf.d/a.conf"),
                PathBuf::from("/etc/k/conf.d/b.conf")
            ]
        );
        assert_eq!(
            matches(Path::new("/etc/*/conf.d/n*"), &loader),
            [PathBuf::from("/etc/k/conf.d/notes.txt")]
        );
        assert!(matches(Path::new("/nowhere/*.conf"), &loader).is_empty());
    }
}
