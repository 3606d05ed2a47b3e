//! Conditional requests: the read preconditions in RFC 9110 §13.2.2's order over a
//! representation's [`Validators`], applied alike by the store (to the object it holds) and the
//! edge (to its cached heads), the one 304 answer both send, and the conditions of writes and
//! deletes, checked by the engine in the committing transaction.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::StatusCode;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use super::{get, list_members};
use crate::engine::{ObjectInfo, WriteCondition};
use crate::error::{Code, Error, Result};
use crate::s3::{Response, empty_response};

/// What a conditional request is compared against: a representation's validators
/// (RFC 9110 §8.8).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Validators<'a> {
    /// The entity-tag as an `ETag` header carries it (`"abc"`, `W/"abc"`), or bare as the
    /// engine stores it (`abc`, a strong tag).
    pub etag: Option<&'a str>,
    pub last_modified: Option<SystemTime>,
}

impl<'a> Validators<'a> {
    pub fn of(info: &'a ObjectInfo) -> Self {
        Validators {
            etag: Some(&info.etag),
            last_modified: Some(info.last_modified),
        }
    }

    /// The `ETag` and `Last-Modified` of a response (the edge's cached heads).
    pub fn from_headers(headers: &'a HeaderMap) -> Self {
        let text = |name| {
            headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
        };
        Validators {
            etag: text(header::ETAG),
            last_modified: text(header::LAST_MODIFIED)
                .and_then(|v| httpdate::parse_http_date(v).ok()),
        }
    }
}

/// What the preconditions say about a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// Serve it.
    Proceed,
    /// A failed If-None-Match / If-Modified-Since: 304 for a read, 412 for a copy.
    NotModified,
    /// A failed If-Match / If-Unmodified-Since: 412.
    Failed,
}

/// An entity-tag split into (weak, opaque-tag). A bare tag, as S3 accepts from clients and
/// stores itself, counts as the strong tag of that name.
fn entity_tag(tag: &str) -> (bool, &str) {
    let tag = tag.trim();
    let (weak, rest) = match tag.strip_prefix("W/") {
        Some(rest) => (true, rest),
        None => (false, tag),
    };
    let opaque = rest
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .unwrap_or(rest);
    (weak, opaque)
}

/// Does a member of an If-Match (`strong`) / If-None-Match list match what we hold?
/// `*` matches any current representation; If-Match compares strongly (RFC 9110 §13.1.1: a
/// weak tag never matches), If-None-Match weakly (§13.1.2: the opaque tags alone).
fn tag_matches(candidate: &str, held: Option<&str>, strong: bool) -> bool {
    if candidate == "*" {
        return true;
    }
    let Some(held) = held else { return false };
    let (c_weak, c) = entity_tag(candidate);
    let (h_weak, h) = entity_tag(held);
    c == h && !(strong && (c_weak || h_weak))
}

/// A date condition's value: ignored unless exactly one valid HTTP-date (RFC 9110 §13.1.3,
/// §13.1.4).
fn single_date(req: &HeaderMap, name: &HeaderName) -> Option<SystemTime> {
    let mut lines = req.get_all(name).iter();
    match (lines.next(), lines.next()) {
        (Some(line), None) => httpdate::parse_http_date(line.to_str().ok()?).ok(),
        _ => None,
    }
}

/// HTTP dates have whole seconds; compare at that precision.
fn whole_seconds(t: SystemTime) -> SystemTime {
    let secs = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// The four condition fields, as a read names them or a copy names its source's, and the
/// error a failed If-None-Match / If-Modified-Since is.
#[derive(Debug)]
pub struct ConditionFields {
    if_match: HeaderName,
    if_unmodified_since: HeaderName,
    if_none_match: HeaderName,
    if_modified_since: HeaderName,
    not_modified: Code,
}

impl ConditionFields {
    /// GetObject, HeadObject and the edge's cached reads.
    pub const READ: ConditionFields = ConditionFields {
        if_match: header::IF_MATCH,
        if_unmodified_since: header::IF_UNMODIFIED_SINCE,
        if_none_match: header::IF_NONE_MATCH,
        if_modified_since: header::IF_MODIFIED_SINCE,
        not_modified: Code::NotModified,
    };
    /// CopyObject and UploadPartCopy, about their source.
    pub const COPY_SOURCE: ConditionFields = ConditionFields {
        if_match: HeaderName::from_static("x-amz-copy-source-if-match"),
        if_unmodified_since: HeaderName::from_static("x-amz-copy-source-if-unmodified-since"),
        if_none_match: HeaderName::from_static("x-amz-copy-source-if-none-match"),
        if_modified_since: HeaderName::from_static("x-amz-copy-source-if-modified-since"),
        // S3 answers a copy whose source is "not modified" with 412.
        not_modified: Code::PreconditionFailed,
    };

    /// Whether `req` has any of the four: without them there is nothing to evaluate, and the
    /// validators need not be read (the edge's hit path).
    pub fn any_in(&self, req: &HeaderMap) -> bool {
        [
            &self.if_match,
            &self.if_unmodified_since,
            &self.if_none_match,
            &self.if_modified_since,
        ]
        .into_iter()
        .any(|name| req.contains_key(name))
    }
}

/// Evaluates the read preconditions (`If-Match`, `If-Unmodified-Since`, `If-None-Match`,
/// `If-Modified-Since`, or a copy's `x-amz-copy-source-if-*`) against `held`, in the order of
/// RFC 9110 §13.2.2, which S3 documents too:
/// - If-Match, when present, alone decides the first step: no member matches → Failed (so a
///   matching If-Match overrides a failing If-Unmodified-Since). Otherwise a valid
///   If-Unmodified-Since before Last-Modified → Failed.
/// - If-None-Match, when present, alone decides the second step (If-Modified-Since is then
///   ignored, §13.1.3): a member matches → NotModified. Otherwise a valid If-Modified-Since
///   at or after Last-Modified → NotModified.
///
/// List members are read over all lines of a field, commas inside quotes do not split, and
/// dates are compared in whole seconds (an HTTP-date's resolution). A validator we do not hold
/// matches nothing but `*`, and its date conditions are ignored.
pub fn evaluate(req: &HeaderMap, fields: &ConditionFields, held: Validators) -> Precondition {
    let modified = held.last_modified.map(whole_seconds);
    let date = |name: &HeaderName| single_date(req, name).map(whole_seconds);
    let list = |name: &HeaderName| req.contains_key(name).then(|| list_members(req, name));
    let failed = match list(&fields.if_match) {
        Some(tags) => !tags.iter().any(|t| tag_matches(t, held.etag, true)),
        None => date(&fields.if_unmodified_since).is_some_and(|t| modified.is_some_and(|m| m > t)),
    };
    if failed {
        return Precondition::Failed;
    }
    let not_modified = match list(&fields.if_none_match) {
        Some(tags) => tags.iter().any(|t| tag_matches(t, held.etag, false)),
        None => date(&fields.if_modified_since).is_some_and(|t| modified.is_some_and(|m| m <= t)),
    };
    if not_modified {
        Precondition::NotModified
    } else {
        Precondition::Proceed
    }
}

/// [`evaluate`] against a stored object, as an error: 412 PreconditionFailed, or what
/// `fields` makes of a NotModified (304 for a read).
pub fn check_preconditions(
    req: &HeaderMap,
    fields: &ConditionFields,
    info: &ObjectInfo,
) -> Result<()> {
    match evaluate(req, fields, Validators::of(info)) {
        Precondition::Proceed => Ok(()),
        Precondition::NotModified => Err(Error::new(fields.not_modified)),
        Precondition::Failed => Err(Error::new(Code::PreconditionFailed)),
    }
}

/// The fields a 304 carries from the 200 it stands for: the validators, and the ones a
/// cache needs to refresh its copy (RFC 9110 §15.4.5). Nothing else: no representation
/// metadata, no checksums (a client that sees `x-amz-checksum-*` validates a body a 304 does
/// not have: boto3 fails with a TypeError), no Accept-Ranges.
const NOT_MODIFIED_FIELDS: [HeaderName; 4] = [
    header::ETAG,
    header::LAST_MODIFIED,
    header::CACHE_CONTROL,
    header::EXPIRES,
];

/// The 304 answer to a read whose 200 would carry `full` (its headers): the store and the
/// edge both answer with this, so the same request gets the same fields from either.
pub fn not_modified(full: &HeaderMap) -> Response {
    let mut response = empty_response(StatusCode::NOT_MODIFIED);
    let h = response.headers_mut();
    for name in NOT_MODIFIED_FIELDS {
        if let Some(value) = full.get(&name) {
            h.insert(name, value.clone());
        }
    }
    response
}

fn http_date(value: Option<&str>) -> Option<SystemTime> {
    value.and_then(|v| httpdate::parse_http_date(v).ok())
}

/// `If-None-Match: *` / `If-Match` on PutObject and CompleteMultipartUpload. S3 supports only
/// `*` for If-None-Match on writes.
pub fn write_condition(req: &HeaderMap) -> Result<WriteCondition> {
    let if_none_match_any = match get(req, "if-none-match").map(str::trim) {
        None => false,
        Some("*") => true,
        Some(_) => {
            return Err(Error::msg(
                Code::NotImplemented,
                "If-None-Match on writes supports only '*'.",
            ));
        }
    };
    let if_match = get(req, "if-match").map(|v| v.trim().trim_matches('"').to_owned());
    Ok(WriteCondition {
        if_none_match_any,
        if_match,
        ..WriteCondition::default()
    })
}

/// DeleteObject's conditions: `If-Match` (an ETag list or `*`), and AWS's
/// `x-amz-if-match-last-modified-time` / `x-amz-if-match-size`, checked in the deleting
/// transaction. The read preconditions mean nothing for a delete: refused, not ignored.
pub fn delete_condition(req: &HeaderMap) -> Result<WriteCondition> {
    for name in ["if-none-match", "if-modified-since", "if-unmodified-since"] {
        if get(req, name).is_some() {
            return Err(Error::msg(
                Code::NotImplemented,
                format!("DeleteObject does not support {name}; use If-Match."),
            ));
        }
    }
    let invalid = |name: &str| Error::msg(Code::InvalidArgument, format!("Invalid {name}"));
    let if_match_last_modified = match get(req, "x-amz-if-match-last-modified-time") {
        Some(v) => {
            Some(http_date(Some(v)).ok_or_else(|| invalid("x-amz-if-match-last-modified-time"))?)
        }
        None => None,
    };
    let if_match_size = match get(req, "x-amz-if-match-size") {
        Some(v) => Some(
            v.trim()
                .parse()
                .map_err(|_| invalid("x-amz-if-match-size"))?,
        ),
        None => None,
    };
    Ok(WriteCondition {
        if_match: get(req, "if-match").map(|v| v.trim().to_owned()),
        if_match_last_modified,
        if_match_size,
        ..WriteCondition::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ObjectHeaders;
    use crate::s3::headers::test_headers as headers;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn date(secs: u64) -> String {
        httpdate::fmt_http_date(at(secs))
    }

    /// What a read with these request headers gets for a representation tagged `"a"` (or as
    /// given), last modified at 1_000_000.5 s.
    fn read(pairs: &[(&'static str, &str)], etag: Option<&str>) -> Precondition {
        let held = Validators {
            etag,
            last_modified: Some(at(1_000_000) + Duration::from_millis(500)),
        };
        evaluate(&headers(pairs), &ConditionFields::READ, held)
    }

    use Precondition::{Failed, NotModified, Proceed};

    #[test]
    fn if_match_compares_strongly() {
        let m = |v: &str| read(&[("if-match", v)], Some("\"a\""));
        assert_eq!(m("\"a\""), Proceed);
        assert_eq!(m("\"x\", \"a\""), Proceed);
        assert_eq!(m("*"), Proceed);
        assert_eq!(m("a"), Proceed, "a bare tag, as S3 accepts");
        assert_eq!(m("\"x\""), Failed);
        assert_eq!(m("W/\"a\""), Failed, "a weak tag never matches strongly");
        assert_eq!(m(""), Failed, "present but empty: nothing matches");
        let weak_held = read(&[("if-match", "\"a\"")], Some("W/\"a\""));
        assert_eq!(weak_held, Failed);
        assert_eq!(read(&[("if-match", "\"a\"")], None), Failed);
        assert_eq!(read(&[("if-match", "*")], None), Proceed);
    }

    #[test]
    fn if_none_match_compares_weakly() {
        let inm = |v: &str| read(&[("if-none-match", v)], Some("\"a\""));
        assert_eq!(inm("\"a\""), NotModified);
        assert_eq!(inm("W/\"a\""), NotModified);
        assert_eq!(
            read(&[("if-none-match", "\"a\"")], Some("W/\"a\"")),
            NotModified
        );
        assert_eq!(inm("\"x\", W/\"a\""), NotModified);
        assert_eq!(inm("a"), NotModified, "a bare tag, as S3 accepts");
        assert_eq!(inm("*"), NotModified);
        assert_eq!(
            read(&[("if-none-match", "*")], None),
            NotModified,
            "* matches what we hold"
        );
        assert_eq!(inm("\"b\""), Proceed);
        assert_eq!(inm(""), Proceed);
        assert_eq!(read(&[("if-none-match", "\"a\"")], None), Proceed);
        let comma = read(&[("if-none-match", "\"a,b\"")], Some("\"a,b\""));
        assert_eq!(comma, NotModified, "a comma inside quotes does not split");
        assert_eq!(inm("\"a,b\""), Proceed);
        let two_lines = read(
            &[("if-none-match", "\"x\""), ("if-none-match", "\"a\"")],
            Some("\"a\""),
        );
        assert_eq!(two_lines, NotModified, "members of every line count");
    }

    #[test]
    fn dates_compare_in_whole_seconds_and_need_one_valid_date() {
        let a = Some("\"a\"");
        let ims = |v: &str| read(&[("if-modified-since", v)], a);
        assert_eq!(ims(&date(1_000_000)), NotModified, "the same second");
        assert_eq!(ims(&date(2_000_000)), NotModified);
        assert_eq!(ims(&date(999_999)), Proceed);
        assert_eq!(ims("junk"), Proceed);
        assert_eq!(
            ims(&format!("{}, {}", date(2_000_000), date(2_000_001))),
            Proceed
        );
        let two = [
            ("if-modified-since", date(2_000_000)),
            ("if-modified-since", date(2_000_000)),
        ];
        let two: Vec<_> = two.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(read(&two, a), Proceed, "two lines: ignored");
        let ius = |v: &str| read(&[("if-unmodified-since", v)], a);
        assert_eq!(ius(&date(1_000_000)), Proceed);
        assert_eq!(ius(&date(999_999)), Failed);
        assert_eq!(ius("junk"), Proceed);
        let nothing_held = Validators::default();
        let h = headers(&[("if-modified-since", &date(2_000_000))]);
        assert_eq!(evaluate(&h, &ConditionFields::READ, nothing_held), Proceed);
        assert_eq!(read(&[], a), Proceed);
    }

    #[test]
    fn preconditions_follow_rfc_order() {
        let a = Some("\"a\"");
        // If-Match wins over a failing If-Unmodified-Since (S3 documents this pairing).
        let pair = read(
            &[("if-match", "\"a\""), ("if-unmodified-since", &date(1))],
            a,
        );
        assert_eq!(pair, Proceed);
        // A failing If-Match is 412 even when If-None-Match would be 304.
        let both = read(&[("if-match", "\"x\""), ("if-none-match", "\"a\"")], a);
        assert_eq!(both, Failed);
        // If-None-Match, when present, alone decides: If-Modified-Since is ignored.
        let ims = date(2_000_000);
        assert_eq!(
            read(
                &[("if-none-match", "\"x\""), ("if-modified-since", &ims)],
                a
            ),
            Proceed
        );
        let old = date(1);
        assert_eq!(
            read(
                &[("if-none-match", "\"a\""), ("if-modified-since", &old)],
                a
            ),
            NotModified
        );
    }

    #[test]
    fn junk_bytes_are_read_safely() {
        let mut h = HeaderMap::new();
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_bytes(b"\"\xff\"").unwrap(),
        );
        h.insert(
            header::IF_MODIFIED_SINCE,
            HeaderValue::from_bytes(b"\xff").unwrap(),
        );
        let held = Validators {
            etag: Some("\"a\""),
            last_modified: Some(at(0)),
        };
        assert_eq!(evaluate(&h, &ConditionFields::READ, held), Proceed);
        h.remove(header::IF_NONE_MATCH);
        assert_eq!(evaluate(&h, &ConditionFields::READ, held), Proceed);
    }

    #[test]
    fn a_copy_reads_its_source_fields_and_answers_412() {
        let obj = ObjectInfo {
            key: "k".into(),
            size: 10,
            etag: "abc".into(),
            last_modified: at(1_000_000),
            headers: ObjectHeaders::default(),
            checksum: None,
            parts: vec![],
            seq: 0,
        };
        let code = |pairs: &[(&'static str, &str)], fields| {
            check_preconditions(&headers(pairs), fields, &obj).map_err(|e| e.code)
        };
        let copy = &ConditionFields::COPY_SOURCE;
        let read = &ConditionFields::READ;
        let inm = [("x-amz-copy-source-if-none-match", "\"abc\"")];
        assert_eq!(code(&inm, copy), Err(Code::PreconditionFailed));
        assert_eq!(code(&inm, read), Ok(()), "a read ignores the copy's fields");
        assert_eq!(
            code(&[("if-none-match", "\"abc\"")], read),
            Err(Code::NotModified)
        );
        assert_eq!(code(&[("if-none-match", "\"abc\"")], copy), Ok(()));
        let im = [("x-amz-copy-source-if-match", "\"x\"")];
        assert_eq!(code(&im, copy), Err(Code::PreconditionFailed));
    }

    #[test]
    fn a_304_keeps_the_validators_and_cache_fields_only() {
        let full = headers(&[
            ("etag", "\"a\""),
            ("last-modified", &date(0)),
            ("cache-control", "max-age=60"),
            ("content-type", "text/plain"),
            ("content-length", "11"),
            ("accept-ranges", "bytes"),
            ("x-amz-checksum-crc32", "DUoRhQ=="),
            ("x-amz-checksum-type", "FULL_OBJECT"),
            ("x-amz-meta-color", "blue"),
        ]);
        let response = not_modified(&full);
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
        let mut names: Vec<_> = response.headers().keys().map(|k| k.as_str()).collect();
        names.sort();
        assert_eq!(names, ["cache-control", "etag", "last-modified"]);
    }
}
