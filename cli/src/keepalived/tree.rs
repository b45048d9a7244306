//! Lines to statements: a keyword, its arguments (the rest of its line) and, when it opens
//! one with '{', a block of statements up to the matching '}' (which may be on a later
//! line, in a later file, or on the same line).

use super::source::Line;
use super::{Location, ParseError};

/// Blocks nest only a few levels in keepalived.conf; the bound keeps a hostile input from
/// exhausting the stack.
const MAX_NESTING: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub keyword: String,
    pub args: Vec<String>,
    pub location: Location,
    pub block: Option<Vec<Statement>>,
}

impl Statement {
    /// Every word of the statement and of its block, in order: for lists such as
    /// `group { a b }` whose items may share a line.
    pub fn words(&self) -> Vec<(String, Location)> {
        let mut words = vec![(self.keyword.clone(), self.location.clone())];
        words.extend(self.args.iter().map(|a| (a.clone(), self.location.clone())));
        for child in self.block.iter().flatten() {
            words.extend(child.words());
        }
        words
    }
}

#[derive(Debug)]
struct Token<'a> {
    text: &'a str,
    quoted: bool,
    location: &'a Location,
    starts_line: bool,
}

impl Token<'_> {
    fn is(&self, text: &str) -> bool {
        !self.quoted && self.text == text
    }
}

pub fn parse(lines: &[Line]) -> Result<Vec<Statement>, ParseError> {
    let tokens: Vec<Token<'_>> = lines
        .iter()
        .flat_map(|line| {
            line.words.iter().enumerate().map(|(i, w)| Token {
                text: &w.text,
                quoted: w.quoted,
                location: &line.location,
                starts_line: i == 0,
            })
        })
        .collect();
    let mut pos = 0;
    block(&tokens, &mut pos, None, 0)
}

fn block(
    tokens: &[Token<'_>],
    pos: &mut usize,
    opened: Option<&Location>,
    depth: usize,
) -> Result<Vec<Statement>, ParseError> {
    if depth > MAX_NESTING {
        let location = opened.or(tokens.get(*pos).map(|t| t.location));
        return Err(match location {
            Some(l) => ParseError::new(l, format!("blocks nest more than {MAX_NESTING} deep")),
            None => ParseError::general(format!("blocks nest more than {MAX_NESTING} deep")),
        });
    }
    let mut statements = Vec::new();
    while let Some(token) = tokens.get(*pos) {
        if token.is("}") {
            if opened.is_some() {
                *pos += 1;
                return Ok(statements);
            }
            return Err(ParseError::new(
                token.location,
                "'}' closes no block: is there one too many?",
            ));
        }
        if token.is("{") {
            return Err(ParseError::new(
                token.location,
                "'{' opens a block but no keyword comes before it",
            ));
        }
        *pos += 1;
        let mut statement = Statement {
            keyword: token.text.to_owned(),
            args: Vec::new(),
            location: token.location.clone(),
            block: None,
        };
        while let Some(arg) = tokens.get(*pos) {
            if arg.starts_line || arg.is("{") || arg.is("}") {
                break;
            }
            statement.args.push(arg.text.to_owned());
            *pos += 1;
        }
        // '{' on the keyword's line, or alone at the start of the next one.
        if tokens.get(*pos).is_some_and(|t| t.is("{")) {
            *pos += 1;
            statement.block = Some(block(tokens, pos, Some(&statement.location), depth + 1)?);
        }
        statements.push(statement);
    }
    match opened {
        Some(location) => Err(ParseError::new(
            location,
            "this block is never closed: a '}' is missing",
        )),
        None => Ok(statements),
    }
}
