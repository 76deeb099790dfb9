//! Query parameters as apimachinery reads them.
//!
//! kube-apiserver decodes a request's query into `ListOptions`, `GetOptions`, `CreateOptions` and
//! the like through apimachinery's conversion functions, then validates the options. Clients rely
//! on the exact rules: the official Python client sends `watch=True`, kubectl sends `watch=true`,
//! client-go sends `allowWatchBookmarks=true`. The rules kept here:
//!
//! - **Booleans** (`watch`, `allowWatchBookmarks`, `sendInitialEvents`): absent is unset; `"0"`
//!   and `"false"` in any case are false; anything else, the empty string included, is true
//!   (`Convert_Slice_string_To_bool`).
//! - **resourceVersion**: `""` is the latest (a consistent read), `"0"` is any (the cache), and
//!   anything else must be a base-10 unsigned 64-bit number, or the request is a 400
//!   (`ParseResourceVersion`); a read at a revision the server has not reached waits, then
//!   answers 504 "Too large resource version", for lists, gets and watches alike.
//! - **ListOptions validation** (`ValidateListOptions`): `resourceVersionMatch` is `Exact` or
//!   `NotOlderThan`, needs a `resourceVersion` and no `continue`; `sendInitialEvents` is for
//!   watches only and needs `resourceVersionMatch=NotOlderThan` and `allowWatchBookmarks`.
//!   A violation is a 422 `ListOptions.meta.k8s.io "" is invalid`.
//! - **Integers** (`limit`, `timeoutSeconds`, `gracePeriodSeconds`): Go's `ParseInt`, an
//!   optional sign and decimal digits; anything else is a 400. A `limit` of zero or below means
//!   no limit.
//! - **fieldValidation**: `""`, `Ignore`, `Warn` or `Strict`, or a 422 on the write's options.

use super::status::ApiError;
use super::validation::{FIELD_VALUE_FORBIDDEN, FIELD_VALUE_REQUIRED, FieldError};

/// `CauseType` of a value outside a fixed set (`field.ErrorTypeNotSupported`).
pub const FIELD_VALUE_NOT_SUPPORTED: &str = "FieldValueNotSupported";

/// Query parameters, percent-decoded, in the order given.
#[derive(Clone, Debug, Default)]
pub struct Query(Vec<(String, String)>);

impl Query {
    /// Split and decode a raw query string (`a=1&b=%20`); a key without `=` has the empty value.
    pub fn parse(query: &str) -> Query {
        Query(
            query
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    (percent_decode(k), percent_decode(v))
                })
                .collect(),
        )
    }

    /// The first value of `key`, as apimachinery takes the first of repeated parameters.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key`, in order.
    pub fn all<'q>(&'q self, key: &'q str) -> impl Iterator<Item = &'q str> + 'q {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A boolean parameter as apimachinery converts one: unset when absent, false for `"0"` or
    /// `"false"` in any case, true for anything else.
    pub fn bool(&self, key: &str) -> Option<bool> {
        self.get(key).map(parse_bool)
    }

    /// A boolean parameter, false when absent.
    pub fn flag(&self, key: &str) -> bool {
        self.bool(key).unwrap_or(false)
    }

    /// An integer parameter as Go's `strconv.ParseInt` reads one; a 400 naming it otherwise.
    pub fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(value) => parse_int(value).map(Some).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "invalid {key} {value:?}: strconv.ParseInt: parsing {value:?}: invalid syntax"
                ))
            }),
        }
    }
}

/// apimachinery's boolean: only `"0"` and `"false"` (any case) are false.
pub fn parse_bool(value: &str) -> bool {
    !(value == "0" || value.eq_ignore_ascii_case("false"))
}

/// Go's `strconv.ParseInt(value, 10, 64)`: an optional sign, then one or more decimal digits,
/// in range.
pub fn parse_int(value: &str) -> Option<i64> {
    let digits = value.strip_prefix(['+', '-']).unwrap_or(value);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Rust's parser takes the same sign and digits, and checks the range.
    value.parse().ok()
}

/// A resourceVersion other than `""` and `"0"`: decimal digits that fit in 64 bits (Go's
/// `strconv.ParseUint(rv, 10, 64)`: no sign, no spaces).
pub fn parse_revision(rv: &str) -> Result<u64, ApiError> {
    let invalid = || ApiError::bad_request(format!("invalid resource version: {rv:?}"));
    if rv.is_empty() || !rv.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    rv.parse().map_err(|_| invalid())
}

/// What a read's `resourceVersion` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadAt {
    /// `""`: the latest state, read through to the store.
    Latest,
    /// `"0"`: any state; served from the (possibly lagging) cache.
    Any,
    /// A revision: with `resourceVersionMatch=Exact` exactly it, otherwise it or newer.
    Revision(u64),
}

impl ReadAt {
    /// Parse a resourceVersion; a 400 if it is not one.
    pub fn parse(rv: &str) -> Result<ReadAt, ApiError> {
        Ok(match rv {
            "" => ReadAt::Latest,
            "0" => ReadAt::Any,
            rv => ReadAt::Revision(parse_revision(rv)?),
        })
    }
}

/// `resourceVersionMatch`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VersionMatch {
    /// `Exact`: the list at exactly the revision.
    Exact,
    /// `NotOlderThan`: the revision or newer.
    NotOlderThan,
}

/// The options of a list or watch, parsed and validated as kube-apiserver does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListOptions {
    /// `watch`: stream changes instead of listing.
    pub watch: bool,
    /// `resourceVersion`.
    pub read_at: ReadAt,
    /// `resourceVersionMatch`.
    pub version_match: Option<VersionMatch>,
    /// `allowWatchBookmarks`.
    pub allow_watch_bookmarks: bool,
    /// `sendInitialEvents`: unset, or asked for (true) or refused (false).
    pub send_initial_events: Option<bool>,
    /// `timeoutSeconds`; zero or below, or absent: the server's default.
    pub timeout_seconds: Option<u64>,
    /// `limit`; zero or below, or absent: no limit.
    pub limit: Option<usize>,
    /// `continue`, when not empty.
    pub continue_token: Option<String>,
}

impl ListOptions {
    /// Read the options of a list (or, when `watch` is true, of a watch) from the query.
    pub fn parse(query: &Query) -> Result<ListOptions, ApiError> {
        let rv = query.get("resourceVersion").unwrap_or("");
        let read_at = ReadAt::parse(rv)?;
        let watch = query.flag("watch");
        let version_match = query.get("resourceVersionMatch").filter(|m| !m.is_empty());
        let send_initial_events = query.bool("sendInitialEvents");
        let allow_watch_bookmarks = query.flag("allowWatchBookmarks");
        let continue_token = query
            .get("continue")
            .filter(|c| !c.is_empty())
            .map(str::to_owned);
        let timeout_seconds = query
            .int("timeoutSeconds")?
            .and_then(|s| u64::try_from(s).ok())
            .filter(|&s| s > 0);
        let limit = query
            .int("limit")?
            .and_then(|l| usize::try_from(l).ok())
            .filter(|&l| l > 0);

        let mut errors = Vec::new();
        let forbidden = |field: &str, message: String| FieldError {
            field: field.into(),
            reason: FIELD_VALUE_FORBIDDEN,
            message: format!("Forbidden: {message}"),
        };
        let not_supported = |value: &str, supported: &[&str]| FieldError {
            field: "resourceVersionMatch".into(),
            reason: FIELD_VALUE_NOT_SUPPORTED,
            message: format!(
                "Unsupported value: {value:?}: supported values: {}",
                supported
                    .iter()
                    .map(|s| format!("{s:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        if watch {
            if send_initial_events.is_some() {
                if version_match != Some("NotOlderThan") {
                    errors.push(forbidden(
                        "resourceVersionMatch",
                        "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"
                            .into(),
                    ));
                }
                if send_initial_events == Some(true) && !allow_watch_bookmarks {
                    errors.push(FieldError {
                        field: "allowWatchBookmarks".into(),
                        reason: FIELD_VALUE_REQUIRED,
                        message: "Required value: allowWatchBookmarks must be set to true when sendInitialEvents is set".into(),
                    });
                }
            }
            if let Some(m) = version_match {
                if send_initial_events.is_none() {
                    errors.push(forbidden(
                        "resourceVersionMatch",
                        "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided".into(),
                    ));
                }
                if m != "NotOlderThan" {
                    errors.push(not_supported(m, &["NotOlderThan"]));
                }
                if continue_token.is_some() {
                    errors.push(forbidden(
                        "resourceVersionMatch",
                        "resourceVersionMatch is forbidden when continue is provided".into(),
                    ));
                }
            }
        } else {
            if let Some(m) = version_match {
                if rv.is_empty() {
                    errors.push(forbidden(
                        "resourceVersionMatch",
                        "resourceVersionMatch is forbidden unless resourceVersion is provided"
                            .into(),
                    ));
                }
                if continue_token.is_some() {
                    errors.push(forbidden(
                        "resourceVersionMatch",
                        "resourceVersionMatch is forbidden when continue is provided".into(),
                    ));
                }
                if m != "Exact" && m != "NotOlderThan" {
                    errors.push(not_supported(m, &["Exact", "NotOlderThan", ""]));
                }
                if m == "Exact" && rv == "0" {
                    errors.push(forbidden(
                        "resourceVersionMatch",
                        "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\""
                            .into(),
                    ));
                }
            }
            if send_initial_events.is_some() {
                errors.push(forbidden(
                    "sendInitialEvents",
                    "sendInitialEvents is forbidden for list".into(),
                ));
            }
        }
        if !errors.is_empty() {
            return Err(ApiError::invalid_options("ListOptions", &errors));
        }
        Ok(ListOptions {
            watch,
            read_at,
            version_match: match version_match {
                Some("Exact") => Some(VersionMatch::Exact),
                Some("NotOlderThan") => Some(VersionMatch::NotOlderThan),
                _ => None,
            },
            allow_watch_bookmarks,
            send_initial_events,
            timeout_seconds,
            limit,
            continue_token,
        })
    }
}

/// Check a write's `fieldValidation` (`kind` names its options: `CreateOptions`,
/// `UpdateOptions`, `PatchOptions`).
pub fn check_field_validation(query: &Query, kind: &str) -> Result<(), ApiError> {
    const SUPPORTED: [&str; 4] = ["", "Ignore", "Strict", "Warn"];
    match query.get("fieldValidation") {
        Some(value) if !SUPPORTED.contains(&value) => Err(ApiError::invalid_options(
            kind,
            &[FieldError {
                field: "fieldValidation".into(),
                reason: FIELD_VALUE_NOT_SUPPORTED,
                message: format!(
                    "Unsupported value: {value:?}: supported values: \"\", \"Ignore\", \"Strict\", \"Warn\""
                ),
            }],
        )),
        _ => Ok(()),
    }
}

/// Decode `%XX` escapes and `+` (a space, as in a form); malformed escapes are kept as written.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(
                    std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                    16,
                ) {
                    Ok(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// apimachinery's rule, written out: the value lowercased is "0" or "false".
    fn apimachinery_bool(value: &str) -> bool {
        let lower = value.to_ascii_lowercase();
        lower != "0" && lower != "false"
    }

    #[test]
    fn booleans_follow_apimachinery() {
        for (value, expected) in [
            ("true", true),
            ("True", true),
            ("TRUE", true),
            ("1", true),
            ("yes", true),
            ("", true),
            ("anything", true),
            ("false", false),
            ("False", false),
            ("FALSE", false),
            ("0", false),
            (" 0", true),
            ("00", true),
        ] {
            let query = Query::parse(&format!("watch={value}"));
            assert_eq!(query.bool("watch"), Some(expected), "watch={value:?}");
        }
        assert_eq!(Query::parse("watch").bool("watch"), Some(true));
        assert_eq!(Query::parse("other=1").bool("watch"), None);
        // The first of repeated parameters counts.
        assert!(!Query::parse("watch=false&watch=true").flag("watch"));
    }

    #[test]
    fn revisions_are_unsigned_decimal() {
        assert_eq!(ReadAt::parse("").unwrap(), ReadAt::Latest);
        assert_eq!(ReadAt::parse("0").unwrap(), ReadAt::Any);
        assert_eq!(ReadAt::parse("007").unwrap(), ReadAt::Revision(7));
        assert_eq!(
            ReadAt::parse("18446744073709551615").unwrap(),
            ReadAt::Revision(u64::MAX)
        );
        for bad in [
            "abc",
            "+5",
            "-1",
            " 5",
            "5 ",
            "1e3",
            "18446744073709551616",
            "0x10",
        ] {
            let error = ReadAt::parse(bad).unwrap_err();
            assert_eq!(error.code(), 400, "{bad:?}");
        }
    }

    #[test]
    fn list_options_are_validated_as_apimachinery_validates_them() {
        let parse = |q: &str| ListOptions::parse(&Query::parse(q));
        let code = |q: &str| parse(q).err().map(|e| e.code());
        assert_eq!(code("resourceVersionMatch=Exact"), Some(422));
        assert_eq!(code("resourceVersion=5&resourceVersionMatch=Exact"), None);
        assert_eq!(
            code("resourceVersion=0&resourceVersionMatch=Exact"),
            Some(422)
        );
        assert_eq!(
            code("resourceVersion=5&resourceVersionMatch=Bogus"),
            Some(422)
        );
        assert_eq!(code("sendInitialEvents=true"), Some(422));
        assert_eq!(
            code("watch=1&sendInitialEvents=true&allowWatchBookmarks=true"),
            Some(422)
        );
        assert_eq!(
            code(
                "watch=1&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan"
            ),
            None
        );
        assert_eq!(
            code("watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"),
            Some(422)
        );
        assert_eq!(code("watch=1&resourceVersionMatch=NotOlderThan"), Some(422));
        assert_eq!(code("limit=abc"), Some(400));
        assert_eq!(code("timeoutSeconds=x"), Some(400));
        assert_eq!(parse("limit=-1").unwrap().limit, None);
        // `+` in a query is a space, as Go's url.ParseQuery reads it; `%2B` is the sign.
        assert_eq!(code("limit=+3"), Some(400));
        assert_eq!(parse("limit=%2B3").unwrap().limit, Some(3));
        let error = parse("sendInitialEvents=true").unwrap_err();
        assert_eq!(
            error.message,
            "ListOptions.meta.k8s.io \"\" is invalid: sendInitialEvents: Forbidden: sendInitialEvents is forbidden for list"
        );
    }

    #[test]
    fn field_validation_is_one_of_four() {
        for ok in ["", "Ignore", "Warn", "Strict"] {
            let query = Query::parse(&format!("fieldValidation={ok}"));
            assert!(
                check_field_validation(&query, "CreateOptions").is_ok(),
                "{ok}"
            );
        }
        let error = check_field_validation(&Query::parse("fieldValidation=Bogus"), "CreateOptions")
            .unwrap_err();
        assert_eq!(error.code(), 422);
        assert!(
            error
                .message
                .starts_with("CreateOptions.meta.k8s.io \"\" is invalid: fieldValidation: Unsupported value: \"Bogus\""),
            "{}",
            error.message
        );
    }

    fn bool_value() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec!["true", "false", "0", "1", "yes", "no", "", "t", "f"])
                .prop_map(str::to_owned),
            // Every capitalisation of the words.
            prop::sample::select(vec!["true", "false"]).prop_flat_map(|word| {
                prop::collection::vec(any::<bool>(), word.len()).prop_map(move |upper| {
                    word.chars()
                        .zip(upper)
                        .map(|(c, u)| if u { c.to_ascii_uppercase() } else { c })
                        .collect()
                })
            }),
            "[ -~]{0,6}",
        ]
    }

    proptest! {
        #[test]
        fn every_boolean_reads_as_apimachinery_reads_it(value in bool_value()) {
            let encoded: String = value.bytes().map(|b| format!("%{b:02X}")).collect();
            let query = Query::parse(&format!("watch={encoded}&allowWatchBookmarks={encoded}"));
            prop_assert_eq!(query.bool("watch"), Some(apimachinery_bool(&value)));
            prop_assert_eq!(query.flag("allowWatchBookmarks"), apimachinery_bool(&value));
        }

        #[test]
        fn every_revision_reads_as_parse_uint_reads_it(rv in prop_oneof!["[0-9]{1,21}", "[-+ 0-9a-z]{0,5}"]) {
            let go = if rv.is_empty() || rv == "0" {
                None
            } else if rv.bytes().all(|b| b.is_ascii_digit()) {
                // ParseUint: in range or an error.
                Some(rv.parse::<u128>().unwrap() <= u128::from(u64::MAX))
            } else {
                Some(false)
            };
            let ours = ReadAt::parse(&rv);
            match go {
                None => prop_assert!(ours.is_ok()),
                Some(valid) => prop_assert_eq!(ours.is_ok(), valid, "{:?}", rv),
            }
        }
    }
}
