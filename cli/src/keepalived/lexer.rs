//! One file's text to logical lines of words: comments ('#', '!') removed, lines ending
//! in '\' joined to the next, quotes (" and ') removed with their escapes decoded, and
//! '{' and '}' as words of their own.

use super::ParseError;

/// A word of a line. `quoted` words are never braces or keywords with a meaning of their
/// own, whatever they spell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    pub quoted: bool,
}

/// A logical line: its first physical line number (from 1) and its words, never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawLine {
    pub line: usize,
    pub words: Vec<Word>,
}

/// Splits `text` into lines of words. `file` only names the file in errors.
pub fn lex(file: &str, text: &str) -> Result<Vec<RawLine>, ParseError> {
    let mut lines = Vec::new();
    let mut logical = String::new();
    let mut start = 0;
    for (index, physical) in text.split('\n').enumerate() {
        let physical = physical.strip_suffix('\r').unwrap_or(physical);
        if logical.is_empty() {
            start = index + 1;
        }
        let trimmed = physical.trim_end();
        if let Some(joined) = trimmed.strip_suffix('\\') {
            logical.push_str(joined);
            logical.push(' ');
            continue;
        }
        logical.push_str(physical);
        let words = words(&logical).map_err(|message| ParseError::at(file, start, message))?;
        if !words.is_empty() {
            lines.push(RawLine { line: start, words });
        }
        logical.clear();
    }
    if !logical.trim().is_empty() {
        let words = words(&logical).map_err(|message| ParseError::at(file, start, message))?;
        if !words.is_empty() {
            lines.push(RawLine { line: start, words });
        }
    }
    Ok(lines)
}

/// The words of one logical line.
fn words(line: &str) -> Result<Vec<Word>, String> {
    let mut words = Vec::new();
    let mut current: Option<Word> = None;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => words.extend(current.take()),
            // A comment runs to the end of the line, wherever it starts.
            '#' | '!' => break,
            '{' | '}' => {
                words.extend(current.take());
                words.push(Word {
                    text: c.to_string(),
                    quoted: false,
                });
            }
            '"' | '\'' => {
                let word = current.get_or_insert_with(|| Word {
                    text: String::new(),
                    quoted: true,
                });
                word.quoted = true;
                quoted(c, &mut chars, &mut word.text)?;
            }
            c => current
                .get_or_insert_with(|| Word {
                    text: String::new(),
                    quoted: false,
                })
                .text
                .push(c),
        }
    }
    words.extend(current);
    Ok(words)
}

/// The rest of a quoted string, up to the closing `quote`, with escapes decoded.
fn quoted(
    quote: char,
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    out: &mut String,
) -> Result<(), String> {
    while let Some(c) = chars.next() {
        if c == quote {
            return Ok(());
        }
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(e) = chars.next() else {
            out.push('\\');
            break;
        };
        match e {
            'a' => out.push('\x07'),
            'b' => out.push('\x08'),
            'E' => out.push('\x1b'),
            'f' => out.push('\x0c'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'v' => out.push('\x0b'),
            'x' => match digits(chars, 16, 2, 0) {
                Some(value) => out.push(char::from(u8::try_from(value).unwrap_or(0))),
                None => out.push('x'),
            },
            'c' => match chars.next() {
                Some(control) if control.is_ascii() => {
                    out.push(char::from((control as u8) & 0x1f));
                }
                Some(other) => out.push(other),
                None => out.push('c'),
            },
            '0'..='7' => {
                // Up to three octal digits in all, the first being `e`.
                let first = e.to_digit(8).unwrap_or(0);
                let value = digits(chars, 8, 2, first).unwrap_or(first);
                out.push(char::from(u8::try_from(value & 0xff).unwrap_or(0)));
            }
            other => out.push(other),
        }
    }
    Err(format!(
        "a string opened with {quote} is not closed on this line"
    ))
}

/// `start` followed by up to `max` more digits in `radix`; `None` if there are none.
fn digits(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    radix: u32,
    max: usize,
    start: u32,
) -> Option<u32> {
    let mut value = None;
    for _ in 0..max {
        let Some(d) = chars.peek().and_then(|c| c.to_digit(radix)) else {
            break;
        };
        chars.next();
        value = Some(value.unwrap_or(start) * radix + d);
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(line: &str) -> Vec<String> {
        words(line).unwrap().into_iter().map(|w| w.text).collect()
    }

    #[test]
    fn comments_and_braces() {
        assert_eq!(
            texts("vrrp_instance VI_1 {  # the web VIP"),
            ["vrrp_instance", "VI_1", "{"]
        );
        assert_eq!(
            texts("! Configuration File for keepalived"),
            Vec::<String>::new()
        );
        assert_eq!(texts("group{a b}"), ["group", "{", "a", "b", "}"]);
        assert_eq!(texts("priority 50! trailing"), ["priority", "50"]);
    }

    #[test]
    fn quotes_join_and_keep_spaces() {
        // The examples of keepalived.conf(5).
        assert_eq!(texts(r#"abcd" efg h jkl "mnop"#), ["abcd efg h jkl mnop"]);
        assert_eq!(
            texts(r#"abcd "efg h jkl" mnop"#),
            ["abcd", "efg h jkl", "mnop"]
        );
        assert_eq!(
            texts(r#"script "/bin/x 'a b' # not a comment""#),
            ["script", "/bin/x 'a b' # not a comment"]
        );
        assert_eq!(texts(r#"x "{" '}'"#), ["x", "{", "}"]);
        assert!(words(r#"x "{""#).unwrap()[1].quoted);
        assert_eq!(texts(r#"x """#), ["x", ""]);
    }

    #[test]
    fn escapes_inside_quotes() {
        assert_eq!(
            texts(r#""a\tb\n\\\"\x41\101\cA\q""#),
            ["a\tb\n\\\"AA\u{1}q"]
        );
        assert_eq!(
            texts(r"plain\text"),
            [r"plain\text"],
            "no escapes outside quotes"
        );
        assert_eq!(texts(r#""\0""#), ["\0"]);
    }

    #[test]
    fn unclosed_quotes_are_errors_with_the_line() {
        let err = lex("k.conf", "a\nscript \"/bin/x\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "k.conf:2: a string opened with \" is not closed on this line"
        );
    }

    #[test]
    fn continuation_lines_join_and_keep_the_first_line_number() {
        let lines = lex("k.conf", "a \\\n  b\\\n c\r\n\n d\n").unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].line, 1);
        let first: Vec<&str> = lines[0].words.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(first, ["a", "b", "c"]);
        assert_eq!(lines[1].line, 5);
        // A continuation at the very end of the file is the end of the line.
        assert_eq!(lex("k.conf", "a \\").unwrap().len(), 1);
    }
}
