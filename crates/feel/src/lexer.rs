//! Turns FEEL source into tokens.

use rust_decimal::Decimal;
use std::str::FromStr;

use crate::ParseError;

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tok {
    Number(Decimal),
    Str(String),
    /// A name; several words when it is a built-in function such as `string length`.
    Name(String),
    /// A name written between backticks: never a keyword.
    QuotedName(String),
    Sym(&'static str),
}

#[derive(Clone, Debug)]
pub(crate) struct Token {
    pub tok: Tok,
    pub offset: usize,
}

/// Built-in functions whose names contain spaces or keywords. FEEL names may
/// contain spaces; Baton accepts them only for these functions, followed by `(`.
const MULTI_WORD_FUNCTIONS: &[&str] = &[
    "date and time",
    "years and months duration",
    "string length",
    "upper case",
    "lower case",
    "substring before",
    "substring after",
    "starts with",
    "ends with",
    "list contains",
    "distinct values",
    "index of",
    "is defined",
    "is empty",
    "is blank",
    "to base64",
    "duplicate values",
    "put all",
    "from json",
    "to json",
    "random number",
    "last day of month",
    "get or else",
    "get value",
    "get entries",
    "context put",
    "context merge",
    "string join",
    "insert before",
    "day of week",
    "overlaps before",
    "overlaps after",
    "met by",
    "finished by",
    "started by",
    "round up",
    "round down",
    "round half up",
    "round half down",
    "list replace",
    "day of year",
    "month of year",
    "week of year",
];

const SYMBOLS: &[&str] = &["**", "..", "!=", "<=", ">=", "+", "-", "*", "/", "=", "<", ">", "(", ")", "[", "]", "{", "}", ",", ".", ":"];

/// FEEL's name start characters: letters, `_`, `?`, `$`, and the
/// supplementary planes (U+10000 and up, where emoji are).
fn is_name_start(c: char) -> bool {
    c.is_alphabetic() || c == '_' || c == '?' || c == '$' || u32::from(c) >= 0x10000
}

fn is_name_char(c: char) -> bool {
    is_name_start(c) || c.is_alphanumeric()
}

/// The length of `function` (words separated by single spaces) at the start
/// of `text`, where its words may be apart by any whitespace (`date and\n time`).
fn words_at(text: &str, function: &str) -> Option<usize> {
    let mut consumed = 0;
    for (i, word) in function.split(' ').enumerate() {
        if i > 0 {
            let gap = text[consumed..].len() - text[consumed..].trim_start().len();
            if gap == 0 {
                return None;
            }
            consumed += gap;
        }
        if !text[consumed..].starts_with(word) {
            return None;
        }
        consumed += word.len();
    }
    Some(consumed)
}

pub(crate) fn tokenize(source: &str) -> Result<Vec<Token>, ParseError> {
    tokenize_in_scope(source, &[])
}

/// Tokenizes with `known` names in scope: a name of several words (or with
/// characters such as `-` or `'`, as DMN allows) is one token where it is
/// written whole. Longer names are tried first.
pub(crate) fn tokenize_in_scope(source: &str, known: &[String]) -> Result<Vec<Token>, ParseError> {
    let mut known: Vec<&str> = known.iter().map(String::as_str).filter(|n| !n.is_empty()).collect();
    known.sort_by_key(|n| std::cmp::Reverse(n.len()));
    let bytes = source.as_bytes();
    let mut tokens = Vec::new();
    let mut pos = 0;
    'outer: while pos < source.len() {
        let rest = &source[pos..];
        let c = rest.chars().next().expect("pos is inside the source");
        if c.is_whitespace() {
            pos += c.len_utf8();
            continue;
        }
        if rest.starts_with("//") {
            pos += rest.find('\n').unwrap_or(rest.len());
            continue;
        }
        if let Some(comment) = rest.strip_prefix("/*") {
            let end = comment.find("*/").ok_or(ParseError { message: "a comment is not closed".into(), offset: pos })?;
            pos += end + 4;
            continue;
        }
        let start = pos;
        if c.is_ascii_digit() || (c == '.' && rest[1..].starts_with(|d: char| d.is_ascii_digit())) {
            let mut end = pos;
            while end < bytes.len() && bytes[end].is_ascii_digit() {
                end += 1;
            }
            // A '.' followed by a digit continues the number; '..' is a range.
            if end + 1 < bytes.len() && bytes[end] == b'.' && bytes[end + 1].is_ascii_digit() {
                end += 1;
                while end < bytes.len() && bytes[end].is_ascii_digit() {
                    end += 1;
                }
            }
            // An exponent: `1.2e4`, `5E-3`.
            if end < bytes.len() && (bytes[end] == b'e' || bytes[end] == b'E') {
                let mut after = end + 1;
                if after < bytes.len() && (bytes[after] == b'+' || bytes[after] == b'-') {
                    after += 1;
                }
                if after < bytes.len() && bytes[after].is_ascii_digit() {
                    end = after;
                    while end < bytes.len() && bytes[end].is_ascii_digit() {
                        end += 1;
                    }
                }
            }
            let text = &source[start..end];
            let number = Decimal::from_str(text)
                .or_else(|_| Decimal::from_scientific(text))
                .map_err(|_| ParseError { message: format!("the number {text} is out of range"), offset: start })?;
            tokens.push(Token { tok: Tok::Number(number), offset: start });
            pos = end;
            continue;
        }
        if c == '"' {
            let mut text = String::new();
            let mut chars = rest[1..].char_indices();
            while let Some((i, ch)) = chars.next() {
                match ch {
                    '"' => {
                        tokens.push(Token { tok: Tok::Str(text), offset: start });
                        pos = start + 1 + i + 1;
                        continue 'outer;
                    }
                    '\\' => match chars.next() {
                        Some((_, 'n')) => text.push('\n'),
                        Some((_, 't')) => text.push('\t'),
                        Some((_, 'r')) => text.push('\r'),
                        Some((_, '"')) => text.push('"'),
                        Some((_, '\\')) => text.push('\\'),
                        Some((_, '\'')) => text.push('\''),
                        Some((_, escape @ ('u' | 'U'))) => {
                            // \uXXXX (with a surrogate pair as two), or \UXXXXXX.
                            let width = if escape == 'u' { 4 } else { 6 };
                            let hex: String = (0..width).filter_map(|_| chars.next().map(|(_, h)| h)).collect();
                            let invalid = || ParseError { message: format!("\\{escape}{hex} is not a valid character escape"), offset: start + 1 + i };
                            let code = u32::from_str_radix(&hex, 16).map_err(|_| invalid())?;
                            let ch = if (0xD800..0xDC00).contains(&code) {
                                let rest = chars.as_str();
                                let low = rest.strip_prefix("\\u").and_then(|r| r.get(..4)).and_then(|h| u32::from_str_radix(h, 16).ok()).filter(|l| (0xDC00..0xE000).contains(l));
                                let low = low.ok_or_else(invalid)?;
                                for _ in 0..6 {
                                    chars.next();
                                }
                                char::from_u32(0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00))
                            } else {
                                char::from_u32(code)
                            };
                            text.push(ch.ok_or_else(invalid)?);
                        }
                        // Any other escape is kept as written, as FEEL-Scala (Camunda 8) does: `"\\d+"` in a pattern.
                        Some((_, other)) => {
                            text.push('\\');
                            text.push(other);
                        }
                        None => break,
                    },
                    other => text.push(other),
                }
            }
            return Err(ParseError { message: "a string is not closed (missing \")".into(), offset: start });
        }
        // `@"..."`: a date, time, date and time or duration literal (FEEL 1.3), read as a call.
        if c == '@' && rest[1..].starts_with('"') {
            tokens.push(Token { tok: Tok::Name("@".into()), offset: start });
            pos += 1;
            continue;
        }
        if c == '`' {
            let end = rest[1..].find('`').ok_or(ParseError { message: "a `name` is not closed".into(), offset: start })?;
            tokens.push(Token { tok: Tok::QuotedName(rest[1..1 + end].to_string()), offset: start });
            pos += end + 2;
            continue;
        }
        if is_name_start(c) {
            for name in &known {
                if let Some(after) = rest.strip_prefix(name) {
                    if !after.starts_with(is_name_char) {
                        tokens.push(Token { tok: Tok::Name((*name).to_string()), offset: start });
                        pos += name.len();
                        continue 'outer;
                    }
                }
            }
            for function in MULTI_WORD_FUNCTIONS {
                if let Some(length) = words_at(rest, function) {
                    let after = &rest[length..];
                    let boundary = !after.starts_with(is_name_char);
                    if boundary && after.trim_start().starts_with('(') {
                        tokens.push(Token { tok: Tok::Name((*function).to_string()), offset: start });
                        pos += length;
                        continue 'outer;
                    }
                }
            }
            let len: usize = rest.chars().take_while(|&ch| is_name_char(ch)).map(char::len_utf8).sum();
            tokens.push(Token { tok: Tok::Name(rest[..len].to_string()), offset: start });
            pos += len;
            continue;
        }
        for symbol in SYMBOLS {
            if rest.starts_with(symbol) {
                tokens.push(Token { tok: Tok::Sym(symbol), offset: start });
                pos += symbol.len();
                continue 'outer;
            }
        }
        return Err(ParseError { message: format!("unexpected character {c:?}"), offset: start });
    }
    Ok(tokens)
}
