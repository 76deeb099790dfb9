//! Label and field selectors as kube-apiserver parses and matches `?labelSelector=` and `?fieldSelector=`.

use std::collections::BTreeSet;
use std::fmt;

use serde_json::{Map, Value};

use super::validation::{aggregate_messages, go_quote, label_key_errors, label_value_errors};

/// Longest selector accepted, in bytes. The real server has no selector limit of its own; Go's
/// HTTP server caps the whole request head at 1 MiB (`DefaultMaxHeaderBytes`), which bounds it.
pub const MAX_SELECTOR_BYTES: usize = 1 << 20;

/// Why a selector was refused; the message is the one kube-apiserver puts in its 400 BadRequest.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// A label requirement is malformed (bad key, value, operator or value list); the detail is
    /// apimachinery's, e.g. `<nil>: Invalid value: "a_": name part must consist of ...`.
    #[error("unable to parse requirement: {0}")]
    Requirement(String),
    /// A label selector has a token where the grammar allows none, e.g. `found ',', expected:
    /// identifier after ','`.
    #[error("found '{found}', expected: {expected}")]
    Unexpected {
        /// The token found (empty at the end of the string).
        found: String,
        /// What the grammar allows there.
        expected: &'static str,
    },
    /// A field selector term has none of `=`, `==`, `!=`.
    #[error("invalid selector: '{selector}'; can't understand '{term}'")]
    FieldTerm {
        /// The whole selector.
        selector: String,
        /// The term that could not be split.
        term: String,
    },
    /// A field selector value has a `\` not followed by `\`, `,` or `=`.
    #[error("invalid field selector: invalid escape sequence: {0}")]
    InvalidEscape(String),
    /// A field selector value has an unescaped `,` or `=`; like apimachinery (which formats the
    /// rune with `%v`) the message shows its code point.
    #[error("invalid field selector: unescaped character in value: {0}")]
    UnescapedChar(u32),
    /// A field that cannot be selected on, worded as apimachinery's default field-label
    /// conversion words it (kinds without their own: ConfigMap, Lease, Deployment).
    #[error("{} is not a known field selector: only \"metadata.name\", \"metadata.namespace\"", go_quote(.0))]
    UnknownField(String),
    /// A field that cannot be selected on, worded as core/v1 kinds with their own field-label
    /// conversion (Namespace) word it.
    #[error("field label not supported: {0}")]
    UnsupportedField(String),
    /// The selector is longer than [`MAX_SELECTOR_BYTES`].
    #[error("selector of {len} bytes is over the limit of {max} bytes")]
    TooLong {
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// How a label requirement relates its key to its values (`selection.Operator`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operator {
    /// `key in (a,b)`: the label is present with one of the values.
    In,
    /// `key notin (a,b)`: the label is absent or has none of the values.
    NotIn,
    /// `key=value`.
    Equals,
    /// `key==value`, the same as `=`.
    DoubleEquals,
    /// `key!=value`: the label is absent or has another value.
    NotEquals,
    /// `key`: the label is present.
    Exists,
    /// `!key`: the label is absent.
    DoesNotExist,
    /// `key>N`: the label is present, an integer, and greater than N.
    GreaterThan,
    /// `key<N`: the label is present, an integer, and less than N.
    LessThan,
}

/// One comma-separated term of a label selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    key: String,
    operator: Operator,
    /// Sorted and deduplicated, as apimachinery keeps them (a `sets.String`).
    values: Vec<String>,
}

impl Requirement {
    /// The label key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The operator.
    pub fn operator(&self) -> Operator {
        self.operator
    }

    /// The values, sorted and deduplicated; empty for `Exists` and `DoesNotExist`.
    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// Whether a label set satisfies this requirement, as `Requirement.Matches` decides.
    pub fn matches(&self, labels: &Map<String, Value>) -> bool {
        // A non-string value cannot be stored (it fails decoding), so reading it as "" only
        // guards against callers passing unvalidated maps.
        let value = labels.get(&self.key).map(|v| v.as_str().unwrap_or(""));
        let listed = |v: &str| self.values.iter().any(|x| x == v);
        match self.operator {
            Operator::In | Operator::Equals | Operator::DoubleEquals => value.is_some_and(listed),
            Operator::NotIn | Operator::NotEquals => !value.is_some_and(listed),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let Some(actual) = value.and_then(|v| v.parse::<i64>().ok()) else {
                    return false;
                };
                let Some(bound) = self.values.first().and_then(|v| v.parse::<i64>().ok()) else {
                    return false;
                };
                if self.operator == Operator::GreaterThan {
                    actual > bound
                } else {
                    actual < bound
                }
            }
        }
    }
}

impl fmt::Display for Requirement {
    /// apimachinery's canonical form: `x in (a,b)`, `!x`, `x!=a`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let operator = match self.operator {
            Operator::DoesNotExist => return write!(f, "!{}", self.key),
            Operator::Exists => return f.write_str(&self.key),
            Operator::In => " in ",
            Operator::NotIn => " notin ",
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::GreaterThan => ">",
            Operator::LessThan => "<",
        };
        let values = self.values.join(",");
        if matches!(self.operator, Operator::In | Operator::NotIn) {
            write!(f, "{}{operator}({values})", self.key)
        } else {
            write!(f, "{}{operator}{values}", self.key)
        }
    }
}

/// A parsed `labelSelector`: requirements that must all hold. The empty selector matches
/// everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector {
    /// Sorted by key, as apimachinery sorts them.
    requirements: Vec<Requirement>,
}

impl LabelSelector {
    /// Parse a selector as `labels.Parse` does, with its grammar, validation and messages.
    pub fn parse(s: &str) -> Result<LabelSelector, SelectorError> {
        check_length(s)?;
        let mut parser = Parser::new(s);
        let mut requirements = parser.parse()?;
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector { requirements })
    }

    /// Whether the selector has no requirements (and so matches everything).
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The requirements, sorted by key.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// Whether a label set (an object's `metadata.labels`) satisfies every requirement.
    pub fn matches(&self, labels: &Map<String, Value>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Whether an object's `metadata.labels` satisfy the selector; absent labels are empty.
    pub fn matches_object(&self, object: &Value) -> bool {
        match object.pointer("/metadata/labels") {
            Some(Value::Object(labels)) => self.matches(labels),
            _ => self.matches(&Map::new()),
        }
    }
}

impl fmt::Display for LabelSelector {
    /// apimachinery's canonical form: requirements by key, comma-separated.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, requirement) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{requirement}")?;
        }
        Ok(())
    }
}

fn check_length(s: &str) -> Result<(), SelectorError> {
    if s.len() > MAX_SELECTOR_BYTES {
        return Err(SelectorError::TooLong {
            len: s.len(),
            max: MAX_SELECTOR_BYTES,
        });
    }
    Ok(())
}

/// Lexer tokens, as apimachinery's `labels.Token`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token {
    /// Never produced in practice (every special character is a token on its own); kept so the
    /// lexer needs no panic path.
    Error,
    EndOfString,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

fn keyword(s: &str) -> Option<Token> {
    Some(match s {
        ")" => Token::ClosedPar,
        "," => Token::Comma,
        "!" => Token::DoesNotExist,
        "==" => Token::DoubleEquals,
        "=" => Token::Equals,
        ">" => Token::GreaterThan,
        "in" => Token::In,
        "<" => Token::LessThan,
        "!=" => Token::NotEquals,
        "notin" => Token::NotIn,
        "(" => Token::OpenPar,
        _ => return None,
    })
}

fn is_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special(b: u8) -> bool {
    matches!(b, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

/// apimachinery's byte-wise lexer. Every boundary it cuts at is an ASCII byte (or the end), so
/// slicing the `&str` there is always on a char boundary.
struct Lexer<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    /// The next byte, or 0 at the end. Like Go's, a NUL byte also reads as 0, so it ends the
    /// token (and, between tokens, the selector).
    fn read(&mut self) -> u8 {
        match self.s.as_bytes().get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                b
            }
            None => 0,
        }
    }

    fn lex(&mut self) -> (Token, &'a str) {
        let mut ch = self.read();
        while is_whitespace(ch) {
            ch = self.read();
        }
        if ch == 0 {
            return (Token::EndOfString, "");
        }
        self.pos -= 1;
        if is_special(ch) {
            self.scan_special_symbol()
        } else {
            self.scan_id_or_keyword()
        }
    }

    fn scan_id_or_keyword(&mut self) -> (Token, &'a str) {
        let start = self.pos;
        let end = loop {
            let before = self.pos;
            let ch = self.read();
            if ch == 0 {
                break before;
            }
            if is_special(ch) || is_whitespace(ch) {
                self.pos = before;
                break before;
            }
        };
        let literal = &self.s[start..end];
        (keyword(literal).unwrap_or(Token::Identifier), literal)
    }

    /// The longest run of special characters that is a token: `!=` rather than `!`.
    fn scan_special_symbol(&mut self) -> (Token, &'a str) {
        let start = self.pos;
        let mut last: Option<(Token, usize)> = None;
        loop {
            let before = self.pos;
            let ch = self.read();
            if ch == 0 {
                break;
            }
            if !is_special(ch) {
                self.pos = before;
                break;
            }
            match keyword(&self.s[start..self.pos]) {
                Some(token) => last = Some((token, self.pos)),
                None if last.is_some() => {
                    self.pos = before;
                    break;
                }
                None => {}
            }
        }
        match last {
            Some((token, end)) => (token, &self.s[start..end]),
            None => (Token::Error, &self.s[start..self.pos]),
        }
    }
}

/// Whether `in`/`notin` are operators (after a key) or plain identifiers (as keys and values).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    KeyAndOperator,
    Values,
}

/// apimachinery's recursive-descent parser over the pre-scanned tokens.
struct Parser<'a> {
    /// Always ends with `EndOfString`.
    items: Vec<(Token, &'a str)>,
    position: usize,
}

impl<'a> Parser<'a> {
    fn new(s: &'a str) -> Parser<'a> {
        let mut lexer = Lexer { s, pos: 0 };
        let mut items = Vec::new();
        // Each token but the last consumes at least one byte, so len + 1 lexes suffice.
        for _ in 0..=s.len() {
            let item = lexer.lex();
            items.push(item);
            if item.0 == Token::EndOfString {
                break;
            }
        }
        if items.last().map(|i| i.0) != Some(Token::EndOfString) {
            items.push((Token::EndOfString, ""));
        }
        Parser { items, position: 0 }
    }

    /// The current token; past the end it stays `EndOfString`.
    fn lookahead(&self, context: Context) -> (Token, &'a str) {
        let index = self.position.min(self.items.len() - 1);
        let (token, literal) = self.items[index];
        match token {
            Token::In | Token::NotIn if context == Context::Values => (Token::Identifier, literal),
            _ => (token, literal),
        }
    }

    fn consume(&mut self, context: Context) -> (Token, &'a str) {
        let item = self.lookahead(context);
        self.position = (self.position + 1).min(self.items.len());
        item
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, SelectorError> {
        let mut requirements = Vec::new();
        // Each round consumes at least one token or returns.
        for _ in 0..self.items.len() {
            let (token, literal) = self.lookahead(Context::Values);
            match token {
                Token::Identifier | Token::DoesNotExist => {
                    requirements.push(
                        self.parse_requirement()
                            .map_err(SelectorError::Requirement)?,
                    );
                    let (token, literal) = self.consume(Context::Values);
                    match token {
                        Token::EndOfString => return Ok(requirements),
                        Token::Comma => {
                            let (next, literal) = self.lookahead(Context::Values);
                            if next != Token::Identifier && next != Token::DoesNotExist {
                                return Err(unexpected(literal, "identifier after ','"));
                            }
                        }
                        _ => return Err(unexpected(literal, "',' or 'end of string'")),
                    }
                }
                Token::EndOfString => return Ok(requirements),
                _ => {
                    return Err(unexpected(literal, "!, identifier, or 'end of string'"));
                }
            }
        }
        Ok(requirements)
    }

    /// Errors are apimachinery's inner messages; the caller prefixes "unable to parse
    /// requirement".
    fn parse_requirement(&mut self) -> Result<Requirement, String> {
        let (key, inferred) = self.parse_key_and_infer_operator()?;
        if let Some(operator) = inferred {
            return new_requirement(key, operator, Vec::new());
        }
        let operator = self.parse_operator()?;
        let values = match operator {
            Operator::In | Operator::NotIn => self.parse_values()?,
            _ => self.parse_exact_value()?,
        };
        new_requirement(key, operator, values)
    }

    fn parse_key_and_infer_operator(&mut self) -> Result<(&'a str, Option<Operator>), String> {
        let mut operator = None;
        let (mut token, mut literal) = self.consume(Context::Values);
        if token == Token::DoesNotExist {
            operator = Some(Operator::DoesNotExist);
            (token, literal) = self.consume(Context::Values);
        }
        if token != Token::Identifier {
            return Err(format!("found '{literal}', expected: identifier"));
        }
        let errors = label_key_errors(literal);
        if !errors.is_empty() {
            // The parser validates with a nil field path, which Go prints as "<nil>".
            return Err(format!(
                "<nil>: Invalid value: {}: {}",
                go_quote(literal),
                errors.join("; ")
            ));
        }
        let (next, _) = self.lookahead(Context::Values);
        if (next == Token::EndOfString || next == Token::Comma) && operator.is_none() {
            operator = Some(Operator::Exists);
        }
        Ok((literal, operator))
    }

    fn parse_operator(&mut self) -> Result<Operator, String> {
        let (token, literal) = self.consume(Context::KeyAndOperator);
        Ok(match token {
            Token::In => Operator::In,
            Token::Equals => Operator::Equals,
            Token::DoubleEquals => Operator::DoubleEquals,
            Token::GreaterThan => Operator::GreaterThan,
            Token::LessThan => Operator::LessThan,
            Token::NotIn => Operator::NotIn,
            Token::NotEquals => Operator::NotEquals,
            _ => {
                return Err(format!(
                    "found '{literal}', expected: in, notin, =, ==, !=, gt, lt"
                ));
            }
        })
    }

    /// `(a,b)`; an empty or comma-only list holds the empty string.
    fn parse_values(&mut self) -> Result<Vec<&'a str>, String> {
        let (token, literal) = self.consume(Context::Values);
        if token != Token::OpenPar {
            // No comma after the quote: apimachinery's wording.
            return Err(format!("found '{literal}' expected: '('"));
        }
        let (token, literal) = self.lookahead(Context::Values);
        match token {
            Token::Identifier | Token::Comma => {
                let values = self.parse_identifiers_list()?;
                if self.consume(Context::Values).0 != Token::ClosedPar {
                    return Err(format!("found '{literal}', expected: ')'"));
                }
                Ok(values)
            }
            Token::ClosedPar => {
                self.consume(Context::Values);
                Ok(vec![""])
            }
            _ => Err(format!(
                "found '{literal}', expected: ',', ')' or identifier"
            )),
        }
    }

    fn parse_identifiers_list(&mut self) -> Result<Vec<&'a str>, String> {
        let mut values = BTreeSet::new();
        // Each round consumes a token; past the end only `EndOfString` comes, which returns.
        for _ in 0..=self.items.len() {
            let (token, literal) = self.consume(Context::Values);
            match token {
                Token::Identifier => {
                    values.insert(literal);
                    let (next, literal) = self.lookahead(Context::Values);
                    match next {
                        Token::Comma => continue,
                        Token::ClosedPar => return Ok(values.into_iter().collect()),
                        _ => return Err(format!("found '{literal}', expected: ',' or ')'")),
                    }
                }
                Token::Comma => {
                    // A comma with nothing before, after, or between stands for "".
                    if values.is_empty() {
                        values.insert("");
                    }
                    let (next, _) = self.lookahead(Context::Values);
                    if next == Token::ClosedPar {
                        values.insert("");
                        return Ok(values.into_iter().collect());
                    }
                    if next == Token::Comma {
                        self.consume(Context::Values);
                        values.insert("");
                    }
                }
                _ => return Err(format!("found '{literal}', expected: ',', or identifier")),
            }
        }
        Err("found '', expected: ',', or identifier".to_string())
    }

    fn parse_exact_value(&mut self) -> Result<Vec<&'a str>, String> {
        let (token, _) = self.lookahead(Context::Values);
        if token == Token::EndOfString || token == Token::Comma {
            return Ok(vec![""]);
        }
        let (token, literal) = self.consume(Context::Values);
        if token == Token::Identifier {
            Ok(vec![literal])
        } else {
            Err(format!("found '{literal}', expected: identifier"))
        }
    }
}

fn unexpected(found: &str, expected: &'static str) -> SelectorError {
    SelectorError::Unexpected {
        found: found.to_string(),
        expected,
    }
}

/// `labels.NewRequirement`'s checks on values, with its field paths (`values[i]`,
/// `values[i][key]`). The parser already guarantees the value counts it also checks.
fn new_requirement(
    key: &str,
    operator: Operator,
    values: Vec<&str>,
) -> Result<Requirement, String> {
    let mut errors = Vec::new();
    if matches!(operator, Operator::GreaterThan | Operator::LessThan) {
        for (i, value) in values.iter().enumerate() {
            if value.parse::<i64>().is_err() {
                errors.push(format!(
                    "values[{i}]: Invalid value: {}: for 'Gt', 'Lt' operators, the value must be an integer",
                    go_quote(value)
                ));
            }
        }
    }
    for (i, value) in values.iter().enumerate() {
        let problems = label_value_errors(value);
        if !problems.is_empty() {
            errors.push(format!(
                "values[{i}][{key}]: Invalid value: {}: {}",
                go_quote(value),
                problems.join("; ")
            ));
        }
    }
    if !errors.is_empty() {
        return Err(aggregate_messages(&errors));
    }
    let mut values: Vec<String> = values.into_iter().map(str::to_string).collect();
    values.sort();
    values.dedup();
    Ok(Requirement {
        key: key.to_string(),
        operator,
        values,
    })
}

/// Which fields a kind's list can be filtered on, which also fixes how a refusal is worded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SelectableFields {
    /// `metadata.name` and `metadata.namespace`, refused as
    /// [`SelectorError::UnknownField`]: kinds without a field-label conversion of their own
    /// (ConfigMap, Lease, Deployment).
    #[default]
    ObjectMeta,
    /// Namespaces: `metadata.name` and `status.phase`, refused as
    /// [`SelectorError::UnsupportedField`] (`metadata.namespace` included).
    Namespace,
    /// core/v1 Events: the object's name and namespace, what the event is about
    /// (`involvedObject.kind`, `.name`, `.namespace`, `.uid`, `.apiVersion`, `.resourceVersion`,
    /// `.fieldPath`), `reason`, `reportingComponent`, `source` and `type`, as `kubectl describe`
    /// selects them; others refused as [`SelectorError::UnsupportedField`].
    Event,
    /// events.k8s.io/v1 Events: the fields of [`SelectableFields::Event`] under their
    /// events.k8s.io names (`regarding.name` selects `involvedObject.name` of the stored
    /// object, `reportingController` its `reportingComponent`), as
    /// `pkg/apis/events/v1/conversion.go` maps them; the core names are refused.
    EventsK8sIo,
}

/// A field a field selector can test: its label, and where it sits in an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Field {
    label: &'static str,
    pointer: &'static str,
}

const METADATA_NAME: Field = Field {
    label: "metadata.name",
    pointer: "/metadata/name",
};
const METADATA_NAMESPACE: Field = Field {
    label: "metadata.namespace",
    pointer: "/metadata/namespace",
};
const STATUS_PHASE: Field = Field {
    label: "status.phase",
    pointer: "/status/phase",
};

/// The Event fields besides its name and namespace (`pkg/apis/core/v1`'s conversion for Event).
const EVENT_FIELDS: [Field; 11] = [
    Field {
        label: "involvedObject.kind",
        pointer: "/involvedObject/kind",
    },
    Field {
        label: "involvedObject.namespace",
        pointer: "/involvedObject/namespace",
    },
    Field {
        label: "involvedObject.name",
        pointer: "/involvedObject/name",
    },
    Field {
        label: "involvedObject.uid",
        pointer: "/involvedObject/uid",
    },
    Field {
        label: "involvedObject.apiVersion",
        pointer: "/involvedObject/apiVersion",
    },
    Field {
        label: "involvedObject.resourceVersion",
        pointer: "/involvedObject/resourceVersion",
    },
    Field {
        label: "involvedObject.fieldPath",
        pointer: "/involvedObject/fieldPath",
    },
    Field {
        label: "reason",
        pointer: "/reason",
    },
    Field {
        label: "reportingComponent",
        pointer: "/reportingComponent",
    },
    Field {
        label: "source",
        pointer: "/source/component",
    },
    Field {
        label: "type",
        pointer: "/type",
    },
];

/// [`EVENT_FIELDS`] as events.k8s.io/v1 spells them: the labels differ, the stored fields do not.
const EVENTS_K8S_IO_FIELDS: [Field; 11] = [
    Field {
        label: "regarding.kind",
        pointer: "/involvedObject/kind",
    },
    Field {
        label: "regarding.namespace",
        pointer: "/involvedObject/namespace",
    },
    Field {
        label: "regarding.name",
        pointer: "/involvedObject/name",
    },
    Field {
        label: "regarding.uid",
        pointer: "/involvedObject/uid",
    },
    Field {
        label: "regarding.apiVersion",
        pointer: "/involvedObject/apiVersion",
    },
    Field {
        label: "regarding.resourceVersion",
        pointer: "/involvedObject/resourceVersion",
    },
    Field {
        label: "regarding.fieldPath",
        pointer: "/involvedObject/fieldPath",
    },
    Field {
        label: "reason",
        pointer: "/reason",
    },
    Field {
        label: "reportingController",
        pointer: "/reportingComponent",
    },
    Field {
        label: "source",
        pointer: "/source/component",
    },
    Field {
        label: "type",
        pointer: "/type",
    },
];

impl Field {
    fn path(self) -> &'static str {
        self.label
    }
}

impl SelectableFields {
    fn resolve(self, label: &str) -> Result<Field, SelectorError> {
        match (self, label) {
            (_, "metadata.name") => Ok(METADATA_NAME),
            (
                SelectableFields::ObjectMeta
                | SelectableFields::Event
                | SelectableFields::EventsK8sIo,
                "metadata.namespace",
            ) => Ok(METADATA_NAMESPACE),
            (SelectableFields::Namespace, "status.phase") => Ok(STATUS_PHASE),
            (SelectableFields::Event, label) => EVENT_FIELDS
                .into_iter()
                .find(|f| f.label == label)
                .ok_or_else(|| SelectorError::UnsupportedField(label.into())),
            (SelectableFields::EventsK8sIo, label) => EVENTS_K8S_IO_FIELDS
                .into_iter()
                .find(|f| f.label == label)
                .ok_or_else(|| SelectorError::UnsupportedField(label.into())),
            (SelectableFields::ObjectMeta, _) => Err(SelectorError::UnknownField(label.into())),
            (SelectableFields::Namespace, _) => Err(SelectorError::UnsupportedField(label.into())),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct FieldTerm {
    field: Field,
    /// `!=` rather than `=`/`==`.
    negated: bool,
    /// Unescaped.
    value: String,
}

/// A parsed `fieldSelector`: terms that must all hold. The empty selector matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector {
    /// In the sorted order of their source text, as apimachinery keeps them.
    terms: Vec<FieldTerm>,
}

impl FieldSelector {
    /// Parse a selector for a kind that selects on `metadata.name` and `metadata.namespace`
    /// (ConfigMap, Lease, Deployment); see [`FieldSelector::parse_for`].
    pub fn parse(s: &str) -> Result<FieldSelector, SelectorError> {
        FieldSelector::parse_for(s, SelectableFields::ObjectMeta)
    }

    /// Parse a selector as `fields.ParseSelector` does, then check its fields as the kind's
    /// field-label conversion does. Values may escape `\`, `,` and `=` with a backslash.
    pub fn parse_for(s: &str, fields: SelectableFields) -> Result<FieldSelector, SelectorError> {
        check_length(s)?;
        let mut parts = split_terms(s);
        // Sorting first fixes which bad term is reported, as apimachinery does.
        parts.sort_unstable();
        let mut raw = Vec::with_capacity(parts.len());
        for part in parts.into_iter().filter(|p| !p.is_empty()) {
            let Some((label, negated, value)) = split_term(part) else {
                return Err(SelectorError::FieldTerm {
                    selector: s.to_string(),
                    term: part.to_string(),
                });
            };
            raw.push((label, negated, unescape_value(value)?));
        }
        // Field labels are converted only after the whole selector parsed, so a syntax error
        // anywhere wins over an unknown field.
        let terms = raw
            .into_iter()
            .map(|(label, negated, value)| {
                Ok(FieldTerm {
                    field: fields.resolve(label)?,
                    negated,
                    value,
                })
            })
            .collect::<Result<_, SelectorError>>()?;
        Ok(FieldSelector { terms })
    }

    /// Whether the selector has no terms (and so matches everything).
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Whether an object with this name and namespace matches; a `status.phase` term sees an
    /// empty phase (use [`FieldSelector::matches_object`] for Namespaces).
    pub fn matches(&self, name: &str, namespace: &str) -> bool {
        self.matches_with(|field| match field {
            METADATA_NAME => name,
            METADATA_NAMESPACE => namespace,
            _ => "",
        })
    }

    /// Whether an object matches, reading each field from it (absent fields are empty, as in
    /// Go).
    pub fn matches_object(&self, object: &Value) -> bool {
        let read = |pointer: &str| {
            object
                .pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or("")
        };
        self.matches_with(|field| read(field.pointer))
    }

    fn matches_with<'v>(&self, get: impl Fn(Field) -> &'v str) -> bool {
        self.terms
            .iter()
            .all(|t| (get(t.field) == t.value) != t.negated)
    }
}

impl fmt::Display for FieldSelector {
    /// apimachinery's canonical form: `metadata.name=a,metadata.namespace!=b`, values escaped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, term) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let operator = if term.negated { "!=" } else { "=" };
            write!(f, "{}{operator}", term.field.path())?;
            for c in term.value.chars() {
                if matches!(c, '\\' | ',' | '=') {
                    f.write_str("\\")?;
                }
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

/// Split on commas not escaped by a backslash; escapes stay in the terms.
fn split_terms(s: &str) -> Vec<&str> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in s.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(&s[start..i]);
            start = i + 1;
        }
    }
    terms.push(&s[start..]);
    terms
}

/// Split at the first operator; `!=` and `==` are tried before `=` at each position so that
/// neither leaves a stray `=` in the value. The field side has no escapes.
fn split_term(term: &str) -> Option<(&str, bool, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for (operator, negated) in [("!=", true), ("==", false), ("=", false)] {
            if let Some(value) = rest.strip_prefix(operator) {
                return Some((&term[..i], negated, value));
            }
        }
    }
    None
}

/// `fields.UnescapeValue`.
fn unescape_value(s: &str) -> Result<String, SelectorError> {
    if !s.contains(['\\', ',', '=']) {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            if !matches!(c, '\\' | ',' | '=') {
                return Err(SelectorError::InvalidEscape(format!("\\{c}")));
            }
            out.push(c);
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            ',' | '=' => return Err(SelectorError::UnescapedChar(u32::from(c))),
            _ => out.push(c),
        }
    }
    if in_slash {
        return Err(SelectorError::InvalidEscape("\\".to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    /// A label set written as pairs, as apimachinery's tests write `labels.Set`.
    type Pairs<'a> = &'a [(&'a str, &'a str)];

    fn set(pairs: Pairs<'_>) -> Map<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect()
    }

    fn parse(s: &str) -> LabelSelector {
        LabelSelector::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    fn error(s: &str) -> String {
        match LabelSelector::parse(s) {
            Ok(selector) => panic!("{s:?} parsed as {selector}"),
            Err(e) => e.to_string(),
        }
    }

    /// apimachinery's TestSelectorParse: good strings re-print without spaces.
    #[test]
    fn apimachinery_selector_parse() {
        let good = [
            "x=a,y=b,z=c",
            "",
            "x!=a,y=b",
            "x=",
            "x= ",
            "x=,z= ",
            "x= ,z= ",
            "!x",
            "x>1",
            "x>1,z<5",
        ];
        for s in good {
            assert_eq!(parse(s).to_string(), s.replace(' ', ""), "{s:?}");
        }
        for s in ["x=a||y=b", "x==a==b", "!x=a", "x<a"] {
            error(s);
        }
    }

    #[test]
    fn apimachinery_deterministic_parse() {
        assert_eq!(parse("x=a,a=x").to_string(), parse("a=x,x=a").to_string());
    }

    /// apimachinery's TestSelectorMatches.
    #[test]
    fn apimachinery_selector_matches() {
        let matching: &[(&str, Pairs<'_>)] = &[
            ("", &[("x", "y")]),
            ("x=y", &[("x", "y")]),
            ("x=y,z=w", &[("x", "y"), ("z", "w")]),
            ("x!=y,z!=w", &[("x", "z"), ("z", "a")]),
            ("notin=in", &[("notin", "in")]),
            ("x", &[("x", "z")]),
            ("!x", &[("y", "z")]),
            ("x>1", &[("x", "2")]),
            ("x<1", &[("x", "0")]),
            ("foo=bar", &[("foo", "bar"), ("baz", "blah")]),
            ("baz=blah", &[("foo", "bar"), ("baz", "blah")]),
            ("foo=bar,baz=blah", &[("foo", "bar"), ("baz", "blah")]),
        ];
        for (selector, labels) in matching {
            assert!(
                parse(selector).matches(&set(labels)),
                "{selector} should match {labels:?}"
            );
        }
        let not_matching: &[(&str, Pairs<'_>)] = &[
            ("x=z", &[]),
            ("x=y", &[("x", "z")]),
            ("x=y,z=w", &[("x", "w"), ("z", "w")]),
            ("x!=y,z!=w", &[("x", "z"), ("z", "w")]),
            ("x", &[("y", "z")]),
            ("!x", &[("x", "z")]),
            ("x>1", &[("x", "0")]),
            ("x<1", &[("x", "2")]),
            ("foo=blah", &[("foo", "bar"), ("baz", "blah")]),
            ("baz=bar", &[("foo", "bar"), ("baz", "blah")]),
            (
                "foo=bar,foobar=bar,baz=blah",
                &[("foo", "bar"), ("baz", "blah")],
            ),
        ];
        for (selector, labels) in not_matching {
            assert!(
                !parse(selector).matches(&set(labels)),
                "{selector} should not match {labels:?}"
            );
        }
    }

    /// apimachinery's TestRequirementSelectorMatching.
    #[test]
    fn apimachinery_requirement_matching() {
        let cases: &[(&str, Pairs<'_>, bool)] = &[
            (
                "x in (foo),y notin (alpha)",
                &[("x", "foo"), ("y", "baz")],
                true,
            ),
            (
                "x in (foo),y in (alpha)",
                &[("x", "foo"), ("y", "baz")],
                false,
            ),
            ("x notin (),y", &[("y", "")], true),
            ("!x,y", &[("y", "")], true),
            ("x notin (),!y", &[("y", "")], false),
            ("x in ()", &[("y", "baz")], false),
            ("z>1", &[("z", "2")], true),
            ("z>1", &[("z", "v2")], false),
        ];
        for (selector, labels, expected) in cases {
            assert_eq!(
                parse(selector).matches(&set(labels)),
                *expected,
                "{selector} on {labels:?}"
            );
        }
    }

    /// apimachinery's TestSetSelectorParser: parsed requirements, in canonical form.
    #[test]
    fn apimachinery_set_selector_parser() {
        let valid = [
            ("", ""),
            ("\rx", "x"),
            (
                "this-is-a-dns.domain.com/key-with-dash",
                "this-is-a-dns.domain.com/key-with-dash",
            ),
            (
                "this-is-another-dns.domain.com/key-with-dash in (so,what)",
                "this-is-another-dns.domain.com/key-with-dash in (so,what)",
            ),
            (
                "0.1.2.domain/99 notin (10.10.100.1, tick.tack.clock)",
                "0.1.2.domain/99 notin (10.10.100.1,tick.tack.clock)",
            ),
            ("foo  in\t (abc)", "foo in (abc)"),
            ("x notin\n (abc)", "x notin (abc)"),
            ("x  notin\t\t\t(abc,def)", "x notin (abc,def)"),
            ("x in (abc,def)", "x in (abc,def)"),
            ("x in (abc,)", "x in (,abc)"),
            ("x in ()", "x in ()"),
            (
                "x notin (abc,,def),bar,z in (),w",
                "bar,w,x notin (,abc,def),z in ()",
            ),
            ("x,y in (a)", "x,y in (a)"),
            ("x=a", "x=a"),
            ("x>1", "x>1"),
            ("x<7", "x<7"),
            ("x=a,y!=b", "x=a,y!=b"),
            ("x=a,y!=b,z in (h,i,j)", "x=a,y!=b,z in (h,i,j)"),
            ("x notin ( )", "x notin ()"),
            ("x notin (, a)", "x notin (,a)"),
            ("a ", "a"),
            ("a in (x,y,notin, z,in)", "a in (in,notin,x,y,z)"),
        ];
        for (input, canonical) in valid {
            assert_eq!(parse(input).to_string(), canonical, "{input:?}");
        }
        let invalid = [
            "x=a||y=b",
            "x,,y",
            ",x,y",
            "x nott in (y)",
            "a in (xyz),",
            "a in (xyz)b notin ()",
            "a in (xyz abc)",
            "a notin(",
            "a (",
            "(",
        ];
        for input in invalid {
            error(input);
        }
    }

    #[test]
    fn parsed_operators_and_values() {
        let selector = parse("b notin (y,x,y),a");
        let requirements = selector.requirements();
        assert_eq!(requirements[0].key(), "a");
        assert_eq!(requirements[0].operator(), Operator::Exists);
        assert_eq!(requirements[1].operator(), Operator::NotIn);
        assert_eq!(requirements[1].values(), ["x", "y"]);
        assert_eq!(
            parse("a==b").requirements()[0].operator(),
            Operator::DoubleEquals
        );
        assert_eq!(
            parse("!a").requirements()[0].operator(),
            Operator::DoesNotExist
        );
    }

    #[test]
    fn error_messages_follow_apimachinery() {
        let name_part = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
        assert_eq!(
            error("foo_"),
            format!("unable to parse requirement: <nil>: Invalid value: \"foo_\": {name_part}")
        );
        assert_eq!(
            error("x<a"),
            "unable to parse requirement: values[0]: Invalid value: \"a\": for 'Gt', 'Lt' operators, the value must be an integer"
        );
        assert_eq!(
            error("x=-a"),
            "unable to parse requirement: values[0][x]: Invalid value: \"-a\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
        );
        assert!(error("x>_1").starts_with(
            "unable to parse requirement: [values[0]: Invalid value: \"_1\": for 'Gt'"
        ));
        assert_eq!(error("x,,y"), "found ',', expected: identifier after ','");
        assert_eq!(
            error(",x"),
            "found ',', expected: !, identifier, or 'end of string'"
        );
        assert_eq!(
            error("x==a==b"),
            "found '==', expected: ',' or 'end of string'"
        );
        assert_eq!(
            error("a in (xyz)b"),
            "found 'b', expected: ',' or 'end of string'"
        );
        assert_eq!(
            error("x y"),
            "unable to parse requirement: found 'y', expected: in, notin, =, ==, !=, gt, lt"
        );
        assert_eq!(
            error("x in y"),
            "unable to parse requirement: found 'y' expected: '('"
        );
        assert_eq!(
            error("a notin("),
            "unable to parse requirement: found '', expected: ',', ')' or identifier"
        );
        assert_eq!(
            error("a in (xyz abc)"),
            "unable to parse requirement: found 'abc', expected: ',' or ')'"
        );
        assert_eq!(
            error("a in (,,)"),
            "unable to parse requirement: found ')', expected: ',', or identifier"
        );
        assert_eq!(
            error("!"),
            "unable to parse requirement: found '', expected: identifier"
        );
        assert_eq!(
            error("x=("),
            "unable to parse requirement: found '(', expected: identifier"
        );
    }

    #[test]
    fn not_equal_and_notin_match_absent_keys() {
        let empty = Map::new();
        assert!(parse("x!=a").matches(&empty));
        assert!(parse("x notin (a)").matches(&empty));
        assert!(!parse("x=a").matches(&empty));
        assert!(!parse("x in (a)").matches(&empty));
        assert!(!parse("x>0").matches(&empty));
        assert!(parse("").matches(&empty));
        assert!(parse("").is_empty());
        assert!(!parse("x").is_empty());
    }

    #[test]
    fn empty_values_and_integer_comparisons() {
        assert!(parse("a=").matches(&set(&[("a", "")])));
        assert!(!parse("a=").matches(&set(&[("a", "x")])));
        assert!(parse("a in (,b)").matches(&set(&[("a", "")])));
        assert!(parse("n>9").matches(&set(&[("n", "10")])));
        assert!(!parse("n>9").matches(&set(&[("n", "9")])));
        assert!(parse("n<10").matches(&set(&[("n", "-3")])));
        assert!(!parse("n<10").matches(&set(&[("n", "ten")])));
    }

    #[test]
    fn nul_ends_the_selector_as_in_go() {
        assert_eq!(parse("a\0").to_string(), "a");
        assert!(parse("\0junk!!").is_empty());
        error("a\0b");
    }

    #[test]
    fn matches_object_reads_metadata_labels() {
        let selector = parse("app=web");
        assert!(selector.matches_object(&json!({"metadata": {"labels": {"app": "web"}}})));
        assert!(!selector.matches_object(&json!({"metadata": {}})));
        assert!(parse("!app").matches_object(&json!({})));
    }

    #[test]
    fn oversized_selectors_are_refused() {
        let long = "a".repeat(MAX_SELECTOR_BYTES + 1);
        assert!(matches!(
            LabelSelector::parse(&long),
            Err(SelectorError::TooLong { .. })
        ));
        assert!(matches!(
            FieldSelector::parse(&long),
            Err(SelectorError::TooLong { .. })
        ));
    }

    fn fields(s: &str) -> FieldSelector {
        FieldSelector::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    #[test]
    fn field_selectors_match_name_and_namespace() {
        assert!(fields("").matches("a", "b"));
        assert!(fields("").is_empty());
        assert!(fields("metadata.name=a").matches("a", "x"));
        assert!(fields("metadata.name==a").matches("a", "x"));
        assert!(!fields("metadata.name=a").matches("b", "x"));
        assert!(fields("metadata.name!=a").matches("b", "x"));
        assert!(!fields("metadata.name!=a").matches("a", "x"));
        let both = fields("metadata.namespace=ns,metadata.name=a");
        assert!(both.matches("a", "ns"));
        assert!(!both.matches("a", "other"));
        assert!(both.matches_object(&json!({"metadata": {"name": "a", "namespace": "ns"}})));
        assert!(!both.matches_object(&json!({"metadata": {"name": "a"}})));
        assert!(fields("metadata.name=").matches("", "x"));
        assert!(fields("metadata.name=a,,").matches("a", "x"));
        assert_eq!(both.to_string(), "metadata.name=a,metadata.namespace=ns");
    }

    #[test]
    fn field_values_unescape() {
        let selector = fields(r"metadata.name=a\,b\=c\\d");
        assert!(selector.matches("a,b=c\\d", ""));
        assert_eq!(selector.to_string(), r"metadata.name=a\,b\=c\\d");
        assert_eq!(
            FieldSelector::parse(r"metadata.name=a\b")
                .unwrap_err()
                .to_string(),
            r"invalid field selector: invalid escape sequence: \b"
        );
        assert_eq!(
            FieldSelector::parse(r"metadata.name=a\")
                .unwrap_err()
                .to_string(),
            r"invalid field selector: invalid escape sequence: \"
        );
        assert_eq!(
            FieldSelector::parse("metadata.name=a=b")
                .unwrap_err()
                .to_string(),
            "invalid field selector: unescaped character in value: 61"
        );
        assert_eq!(
            FieldSelector::parse("metadata.name===b")
                .unwrap_err()
                .to_string(),
            "invalid field selector: unescaped character in value: 61"
        );
    }

    #[test]
    fn field_selector_errors() {
        assert_eq!(
            FieldSelector::parse("metadata.name=a,spec.x=1")
                .unwrap_err()
                .to_string(),
            "\"spec.x\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
        );
        assert_eq!(
            FieldSelector::parse("a,metadata.name=b")
                .unwrap_err()
                .to_string(),
            "invalid selector: 'a,metadata.name=b'; can't understand 'a'"
        );
        // Sorted terms: the syntax error in "z" is found though "b=1" names an unknown field.
        assert_eq!(
            FieldSelector::parse("b=1,z").unwrap_err(),
            SelectorError::FieldTerm {
                selector: "b=1,z".into(),
                term: "z".into()
            }
        );
        assert_eq!(
            FieldSelector::parse(" metadata.name=a").unwrap_err(),
            SelectorError::UnknownField(" metadata.name".into())
        );
    }

    #[test]
    fn namespace_field_selectors() {
        let phase =
            FieldSelector::parse_for("status.phase=Active", SelectableFields::Namespace).unwrap();
        assert!(
            phase
                .matches_object(&json!({"metadata": {"name": "a"}, "status": {"phase": "Active"}}))
        );
        assert!(!phase.matches_object(&json!({"metadata": {"name": "a"}})));
        assert!(!phase.matches("a", ""));
        assert_eq!(
            FieldSelector::parse_for("metadata.namespace=a", SelectableFields::Namespace)
                .unwrap_err()
                .to_string(),
            "field label not supported: metadata.namespace"
        );
        assert_eq!(
            FieldSelector::parse("status.phase=Active").unwrap_err(),
            SelectorError::UnknownField("status.phase".into())
        );
        assert!(
            FieldSelector::parse_for("metadata.name=a", SelectableFields::Namespace)
                .unwrap()
                .matches("a", "")
        );
    }

    fn label_key() -> impl Strategy<Value = String> {
        "([a-z0-9]([-a-z0-9]{0,6}[a-z0-9])?\\.)?[a-z]{1,3}/?[A-Za-z0-9]([-A-Za-z0-9_.]{0,8}[A-Za-z0-9])?"
            .prop_filter("one slash at most", |k| k.matches('/').count() <= 1 && !k.starts_with('/'))
    }

    fn label_value() -> impl Strategy<Value = String> {
        "([A-Za-z0-9]([-A-Za-z0-9_.]{0,8}[A-Za-z0-9])?)?"
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in any::<String>()) {
            let _ = LabelSelector::parse(&s);
            let _ = FieldSelector::parse(&s);
            let _ = FieldSelector::parse_for(&s, SelectableFields::Namespace);
        }

        #[test]
        fn parse_never_panics_on_selector_alphabet(s in "[a-c=!(),<>\\\\ 0-9in\\t\\x00/._-]{0,40}") {
            if let Ok(selector) = LabelSelector::parse(&s) {
                // Whatever parses re-parses to itself from its canonical form.
                prop_assert_eq!(LabelSelector::parse(&selector.to_string()), Ok(selector));
            }
            if let Ok(selector) = FieldSelector::parse(&s) {
                prop_assert_eq!(FieldSelector::parse(&selector.to_string()), Ok(selector));
            }
        }

        #[test]
        fn equality_selector_matches_exactly_the_supersets(
            wanted in prop::collection::btree_map(label_key(), label_value(), 0..5),
            extra in prop::collection::btree_map(label_key(), label_value(), 0..5),
            drop_one in any::<prop::sample::Index>(),
            change in any::<bool>(),
        ) {
            let text: Vec<String> = wanted.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let selector = LabelSelector::parse(&text.join(",")).unwrap();
            let mut labels: BTreeMap<String, String> = extra;
            labels.extend(wanted.clone());
            if !wanted.is_empty() {
                let victim = drop_one.get(&wanted.keys().collect::<Vec<_>>()).to_string();
                if change {
                    labels.insert(victim, "changed-value-zz".to_string());
                } else {
                    labels.remove(&victim);
                }
            }
            let map: Map<String, Value> = labels.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
            let contains_all = wanted.iter().all(|(k, v)| labels.get(k) == Some(v));
            prop_assert_eq!(selector.matches(&map), contains_all);
            let full: Map<String, Value> = wanted.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
            prop_assert!(selector.matches(&full));
        }
    }
}
