//! Command lines as a POSIX shell splits them into words (quotes and backslashes), for
//! running a program without a shell: `watch --exec` and keepalived's script lines. What
//! only a shell could do (pipes, redirection, `&&`, variables, globs) is refused with a
//! word saying which, rather than passed on as literal arguments.

/// Why a command line cannot be split into words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WordsError {
    #[error("a {0} quote is not closed")]
    Unclosed(&'static str),
    #[error("it needs a shell ({0})")]
    NeedsShell(String),
    #[error("it is empty")]
    Empty,
}

/// Splits `line` into words. Refuses what needs a shell.
pub fn split(line: &str) -> Result<Vec<String>, WordsError> {
    let mut words = Vec::new();
    let mut current: Option<String> = None;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        let word_start = current.is_none();
        match c {
            c if c == ' ' || c == '\t' => words.extend(current.take()),
            '\n' => return Err(shell("a line break")),
            '\'' => {
                let word = current.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err(WordsError::Unclosed("single")),
                    }
                }
            }
            '"' => {
                let word = current.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(e @ ('"' | '\\' | '$' | '`')) => word.push(e),
                            Some('\n') => {}
                            Some(other) => {
                                word.push('\\');
                                word.push(other);
                            }
                            None => return Err(WordsError::Unclosed("double")),
                        },
                        Some(c @ ('$' | '`')) => {
                            return Err(shell(&format!("{c} inside double quotes")));
                        }
                        Some(c) => word.push(c),
                        None => return Err(WordsError::Unclosed("double")),
                    }
                }
            }
            '\\' => match chars.next() {
                Some('\n') => {}
                Some(e) => current.get_or_insert_with(String::new).push(e),
                None => current.get_or_insert_with(String::new).push('\\'),
            },
            '|' | '&' | ';' | '<' | '>' | '(' | ')' | '$' | '`' | '*' | '?' | '[' => {
                return Err(shell(&describe(c, chars.peek().copied())));
            }
            '#' | '~' if word_start => return Err(shell(&describe(c, None))),
            '=' if words.is_empty()
                && current
                    .as_deref()
                    .is_some_and(|w| !w.is_empty() && !w.contains('/')) =>
            {
                return Err(shell("a variable assignment before the command"));
            }
            c => current.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(current);
    if words.is_empty() {
        return Err(WordsError::Empty);
    }
    Ok(words)
}

fn shell(what: &str) -> WordsError {
    WordsError::NeedsShell(what.to_owned())
}

fn describe(c: char, next: Option<char>) -> String {
    match (c, next) {
        ('|', Some('|')) => "'||'".to_owned(),
        ('|', _) => "a pipe '|'".to_owned(),
        ('&', Some('&')) => "'&&'".to_owned(),
        ('&', _) => "'&'".to_owned(),
        (';', _) => "';'".to_owned(),
        ('<' | '>', _) => format!("redirection '{c}'"),
        ('$', _) => "a variable or substitution '$'".to_owned(),
        ('`', _) => "a command substitution '`'".to_owned(),
        ('*' | '?' | '[', _) => format!("a wildcard '{c}'"),
        ('#', _) => "a comment '#'".to_owned(),
        ('~', _) => "a home folder '~'".to_owned(),
        _ => format!("'{c}'"),
    }
}

/// `word` as a shell reads it back as one word: as it is when that is safe, else in
/// single quotes.
pub fn quote(word: &str) -> String {
    let safe = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./,:=+@%".contains(c));
    if safe {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Words joined into a line that [`split`] (and a shell) turns back into the same words.
pub fn join(words: &[String]) -> String {
    words.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_like_a_shell() {
        assert_eq!(split("/bin/x a  b").unwrap(), ["/bin/x", "a", "b"]);
        assert_eq!(
            split(r#"/bin/x 'a b' "c d" e\ f"#).unwrap(),
            ["/bin/x", "a b", "c d", "e f"]
        );
        assert_eq!(
            split(r#"x "a\"b\\c" 'it'\''s'"#).unwrap(),
            ["x", "a\"b\\c", "it's"]
        );
        assert_eq!(split("x ''").unwrap(), ["x", ""]);
        assert_eq!(
            split("x a=b").unwrap(),
            ["x", "a=b"],
            "= in an argument is fine"
        );
        assert_eq!(split("/usr/bin/env A=1").unwrap(), ["/usr/bin/env", "A=1"]);
        assert_eq!(split("x a#b").unwrap(), ["x", "a#b"]);
    }

    #[test]
    fn what_needs_a_shell_is_named() {
        for (line, says) in [
            ("pidof haproxy | wc -l", "a pipe '|'"),
            ("test -f /x && exit 0", "'&&'"),
            ("check > /dev/null", "redirection '>'"),
            ("echo $HOME", "a variable or substitution '$'"),
            ("ls /tmp/*", "a wildcard '*'"),
            ("A=1 cmd", "a variable assignment before the command"),
            ("x \"$y\"", "$ inside double quotes"),
            ("x; y", "';'"),
            ("x # y", "a comment '#'"),
        ] {
            assert_eq!(
                split(line),
                Err(WordsError::NeedsShell(says.to_owned())),
                "{line}"
            );
        }
        assert_eq!(split("x 'a"), Err(WordsError::Unclosed("single")));
        assert_eq!(split("  "), Err(WordsError::Empty));
    }

    #[test]
    fn quoting_round_trips() {
        let words: Vec<String> = ["/bin/x", "a b", "it's", "", "$HOME", "MASTER"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let line = join(&words);
        assert_eq!(line, r"/bin/x 'a b' 'it'\''s' '' '$HOME' MASTER");
        assert_eq!(split(&line).unwrap(), words);
    }
}
