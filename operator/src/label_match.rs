//! One PromQL label matcher (`code=~"5.."`), parsed and run as Prometheus does: how a
//! traffic gate says which requests are errors. Its own module, below the spec's checks
//! and the gates that both use it.

use std::borrow::Cow;
use std::fmt;

use regex::{Regex, RegexBuilder};

/// Compiled size limit of a matcher's regular expression, so a pathological pattern in
/// the spec cannot take the operator's memory.
const MAX_REGEX_BYTES: usize = 1 << 20;

/// How a [`LabelMatch`] compares, as in PromQL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchOp {
    /// `=`
    Eq,
    /// `!=`
    NotEq,
    /// `=~`
    Regex,
    /// `!~`
    NotRegex,
}

impl MatchOp {
    fn symbol(self) -> &'static str {
        match self {
            MatchOp::Eq => "=",
            MatchOp::NotEq => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }
}

/// One PromQL label matcher, e.g. `code=~"5.."`: how the user says which requests are
/// errors, in the syntax they already use in their dashboards and alerts.
///
/// As in Prometheus, a series without the label matches as if its value were empty, and
/// a regular expression must match the whole value (it is anchored, `.` also matching a
/// newline).
#[derive(Clone, Debug)]
pub struct LabelMatch {
    label: String,
    value: String,
    test: Test,
}

/// The comparison, with the regular expression compiled once at parse time.
#[derive(Clone, Debug)]
enum Test {
    Eq,
    NotEq,
    Regex(Regex),
    NotRegex(Regex),
}

impl PartialEq for LabelMatch {
    /// Same label, operator and value text (the compiled regex follows from them).
    fn eq(&self, other: &Self) -> bool {
        self.label == other.label && self.op() == other.op() && self.value == other.value
    }
}

impl LabelMatch {
    /// Parses `label="value"`, `label!="value"`, `label=~"regex"` or `label!~"regex"`.
    ///
    /// The value is quoted as in PromQL: double or single quotes with backslash escapes
    /// (an unknown escape such as `\d` is kept as written, so `"5\d\d"` is the regex
    /// `5\d\d`), or backticks with none. Errors name the text and say what was expected.
    pub fn parse(text: &str) -> Result<Self, String> {
        let fail = |what: &str| {
            format!(
                "label matcher `{}`: {what}; expected label=\"value\", label!=\"value\", \
                 label=~\"regex\" or label!~\"regex\", e.g. code=~\"5..\"",
                shorten(text)
            )
        };
        let s = text.trim();
        let name_len = s
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
            .count();
        let label = &s[..name_len];
        if label.is_empty() || label.as_bytes()[0].is_ascii_digit() {
            return Err(fail(
                "it must start with a label name (letters, digits and _, not first a digit)",
            ));
        }
        let rest = s[name_len..].trim_start();
        let (op, rest) = if let Some(rest) = rest.strip_prefix("=~") {
            (MatchOp::Regex, rest)
        } else if let Some(rest) = rest.strip_prefix("!~") {
            (MatchOp::NotRegex, rest)
        } else if let Some(rest) = rest.strip_prefix("!=") {
            (MatchOp::NotEq, rest)
        } else if let Some(rest) = rest.strip_prefix('=') {
            (MatchOp::Eq, rest)
        } else {
            return Err(fail("the label name must be followed by =, !=, =~ or !~"));
        };
        let (value, rest) = quoted(rest.trim_start()).map_err(fail)?;
        if !rest.trim().is_empty() {
            return Err(fail("there is text after the closing quote"));
        }
        let test = match op {
            MatchOp::Eq => Test::Eq,
            MatchOp::NotEq => Test::NotEq,
            MatchOp::Regex => Test::Regex(anchored(&value).map_err(|e| fail(&e))?),
            MatchOp::NotRegex => Test::NotRegex(anchored(&value).map_err(|e| fail(&e))?),
        };
        Ok(LabelMatch {
            label: label.to_string(),
            value,
            test,
        })
    }

    /// The label compared.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// How it is compared.
    pub fn op(&self) -> MatchOp {
        match self.test {
            Test::Eq => MatchOp::Eq,
            Test::NotEq => MatchOp::NotEq,
            Test::Regex(_) => MatchOp::Regex,
            Test::NotRegex(_) => MatchOp::NotRegex,
        }
    }

    /// The value or regular expression as written (unquoted, unescaped).
    pub fn value(&self) -> &str {
        &self.value
    }

    /// Whether a series whose label has this value (`None`: the series has no such
    /// label, which matches as the empty value) is selected.
    pub fn matches(&self, value: Option<&str>) -> bool {
        let value = value.unwrap_or("");
        match &self.test {
            Test::Eq => value == self.value,
            Test::NotEq => value != self.value,
            Test::Regex(re) => re.is_match(value),
            Test::NotRegex(re) => !re.is_match(value),
        }
    }
}

impl fmt::Display for LabelMatch {
    /// The matcher in PromQL syntax, for messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}\"", self.label, self.op().symbol())?;
        for c in self.value.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                c => write!(f, "{c}")?,
            }
        }
        f.write_str("\"")
    }
}

/// A PromQL string at the start of `s`: its value and the text after it.
fn quoted(s: &str) -> Result<(String, &str), &'static str> {
    let Some(quote) = s.chars().next().filter(|c| matches!(c, '"' | '\'' | '`')) else {
        return Err("the value must be quoted, e.g. \"5..\"");
    };
    let body = &s[1..];
    if quote == '`' {
        // Raw string: no escapes.
        let end = body.find('`').ok_or("the value has no closing backtick")?;
        return Ok((body[..end].to_string(), &body[end + 1..]));
    }
    let mut value = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        if c == quote {
            return Ok((value, &body[i + 1..]));
        }
        if c != '\\' {
            value.push(c);
            continue;
        }
        match chars.next() {
            Some((_, 'n')) => value.push('\n'),
            Some((_, 't')) => value.push('\t'),
            Some((_, 'r')) => value.push('\r'),
            Some((_, c @ ('\\' | '"' | '\''))) => value.push(c),
            Some((_, c)) => {
                value.push('\\');
                value.push(c);
            }
            None => break,
        }
    }
    Err("the value has no closing quote")
}

/// A PromQL regular expression as Prometheus runs it: matching the whole value, `.`
/// matching newlines too.
fn anchored(re: &str) -> Result<Regex, String> {
    let build = |pattern: &str| {
        RegexBuilder::new(pattern)
            .size_limit(MAX_REGEX_BYTES)
            .build()
            .map_err(|e| format!("not a valid regular expression ({})", last_line(&e)))
    };
    // Compiled alone first: a value such as `a)|(b` would otherwise break out of the
    // group and make an unanchored alternative.
    build(re)?;
    build(&format!("^(?s:{re})$"))
}

/// The last line of a (multi-line) error, the one that says what is wrong, so the
/// message fits a status condition.
fn last_line(e: &dyn fmt::Display) -> String {
    let text = e.to_string();
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_string()
}

/// At most 120 characters of `text`, for messages.
fn shorten(text: &str) -> Cow<'_, str> {
    const MAX: usize = 120;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => Cow::Owned(format!("{}…", &text[..cut])),
        None => Cow::Borrowed(text),
    }
}
