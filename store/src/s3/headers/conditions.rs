//! Conditional requests: the read preconditions in RFC 9110 §13.2.2's order, and the
//! conditions of writes and deletes, checked by the engine in the committing transaction.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::HeaderMap;

use super::get;
use crate::engine::{ObjectInfo, WriteCondition};
use crate::error::{Code, Error, Result};

/// Does an If-Match / If-None-Match list (`"a", W/"b"`, or `*`) name this ETag?
fn etag_list_matches(list: &str, etag: &str) -> bool {
    list.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || candidate.trim_start_matches("W/").trim_matches('"') == etag
    })
}

fn http_date(value: Option<&str>) -> Option<SystemTime> {
    value.and_then(|v| httpdate::parse_http_date(v).ok())
}

/// HTTP dates have whole seconds; compare at that precision.
fn whole_seconds(t: SystemTime) -> SystemTime {
    let secs = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// Evaluates the read preconditions (`If-Match`, `If-Unmodified-Since`, `If-None-Match`,
/// `If-Modified-Since`; or with `prefix = "x-amz-copy-source-"` the CopyObject ones) in the
/// order RFC 9110 §13.2.2 gives: a failed If-Match or If-Unmodified-Since is 412; a failed
/// If-None-Match or If-Modified-Since is 304 for reads (`copy = false`) and 412 for copies.
pub fn check_preconditions(
    req: &HeaderMap,
    prefix: &str,
    copy: bool,
    info: &ObjectInfo,
) -> Result<()> {
    let h = |name: &str| get(req, &format!("{prefix}{name}"));
    let modified = whole_seconds(info.last_modified);
    let not_modified = if copy {
        Code::PreconditionFailed
    } else {
        Code::NotModified
    };
    match h("if-match") {
        Some(list) if !etag_list_matches(list, &info.etag) => {
            return Err(Error::new(Code::PreconditionFailed));
        }
        Some(_) => {}
        None => {
            if http_date(h("if-unmodified-since")).is_some_and(|t| modified > t) {
                return Err(Error::new(Code::PreconditionFailed));
            }
        }
    }
    match h("if-none-match") {
        Some(list) if etag_list_matches(list, &info.etag) => Err(Error::new(not_modified)),
        Some(_) => Ok(()),
        None if http_date(h("if-modified-since")).is_some_and(|t| modified <= t) => {
            Err(Error::new(not_modified))
        }
        None => Ok(()),
    }
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

    fn info(etag: &str, secs: u64) -> ObjectInfo {
        ObjectInfo {
            key: "k".into(),
            size: 10,
            etag: etag.into(),
            last_modified: UNIX_EPOCH + Duration::from_millis(secs * 1000 + 500),
            headers: ObjectHeaders::default(),
            checksum: None,
            parts: vec![],
        }
    }

    #[test]
    fn preconditions_follow_rfc_order() {
        let obj = info("abc", 1_000_000);
        let at = |s: u64| httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(s));
        let check = |h: HeaderMap| check_preconditions(&h, "", false, &obj).map_err(|e| e.code);
        assert_eq!(check(headers(&[("if-match", "\"abc\"")])), Ok(()));
        assert_eq!(check(headers(&[("if-match", "\"x\", \"abc\"")])), Ok(()));
        assert_eq!(
            check(headers(&[("if-match", "\"x\"")])),
            Err(Code::PreconditionFailed)
        );
        assert_eq!(
            check(headers(&[("if-none-match", "\"abc\"")])),
            Err(Code::NotModified)
        );
        assert_eq!(
            check(headers(&[("if-none-match", "*")])),
            Err(Code::NotModified)
        );
        assert_eq!(
            check(headers(&[("if-modified-since", &at(1_000_000))])),
            Err(Code::NotModified)
        );
        assert_eq!(
            check(headers(&[("if-modified-since", &at(999_999))])),
            Ok(())
        );
        assert_eq!(
            check(headers(&[("if-unmodified-since", &at(999_999))])),
            Err(Code::PreconditionFailed)
        );
        // If-Match wins over a failing If-Unmodified-Since (S3 documents this pairing).
        assert_eq!(
            check(headers(&[
                ("if-match", "abc"),
                ("if-unmodified-since", &at(1))
            ])),
            Ok(())
        );
        // If-None-Match that does not match overrides If-Modified-Since.
        assert_eq!(
            check(headers(&[
                ("if-none-match", "\"x\""),
                ("if-modified-since", &at(2_000_000))
            ])),
            Ok(())
        );
        let copy = headers(&[("x-amz-copy-source-if-none-match", "\"abc\"")]);
        assert_eq!(
            check_preconditions(&copy, "x-amz-copy-source-", true, &obj)
                .unwrap_err()
                .code,
            Code::PreconditionFailed
        );
    }
}
