//! HTTP header rules of S3, as pure functions: stored object headers in and out (here),
//! Range ([`range`]), conditional requests (RFC 9110 §13 with S3's precedence, [`conditions`]),
//! and the integrity headers (Content-MD5, `x-amz-checksum-*`, trailers) turned into an engine
//! `Verify` callback ([`integrity`]).

mod conditions;
mod integrity;
mod range;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
pub use conditions::{
    ConditionFields, Precondition, Validators, check_preconditions, delete_condition, evaluate,
    not_modified, write_condition,
};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
pub use integrity::{Integrity, integrity};
pub use range::{parse_range, unsatisfiable};

use crate::engine::{ObjectHeaders, ObjectInfo, StoredChecksum};
use crate::error::{Code, Error, Result};

/// S3's limit on user metadata: key and value bytes summed.
pub const MAX_USER_METADATA: usize = 2048;
const META_PREFIX: &str = "x-amz-meta-";

pub fn get<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Every non-empty member of a list-valued field over all its lines (RFC 9110 §5.3, §5.6.1),
/// trimmed. Commas inside double quotes do not split (entity-tags and quoted directive
/// arguments may hold them). Bytes that are not UTF-8 are replaced rather than dropping the
/// line, so a `no-store` next to junk still counts.
pub fn list_members(headers: &HeaderMap, name: &HeaderName) -> Vec<String> {
    let mut out = Vec::new();
    for line in headers.get_all(name) {
        let line = String::from_utf8_lossy(line.as_bytes());
        let mut quoted = false;
        let mut start = 0;
        for (i, c) in line.char_indices() {
            match c {
                '"' => quoted = !quoted,
                ',' if !quoted => {
                    out.push(line[start..i].trim().to_owned());
                    start = i + 1;
                }
                _ => {}
            }
        }
        out.push(line[start..].trim().to_owned());
    }
    out.retain(|m| !m.is_empty());
    out
}

/// Header value as UTF-8 even when the client sent raw non-ASCII bytes (metadata values).
fn get_utf8(headers: &HeaderMap, name: &HeaderName) -> Result<Option<String>> {
    headers
        .get(name)
        .map(|v| {
            String::from_utf8(v.as_bytes().to_vec()).map_err(|_| {
                Error::msg(
                    Code::InvalidArgument,
                    format!("Header {name} is not valid UTF-8"),
                )
            })
        })
        .transpose()
}

/// The object headers a PUT, CopyObject (REPLACE) or CreateMultipartUpload stores.
pub fn object_headers(req: &HeaderMap) -> Result<ObjectHeaders> {
    let text = |name: &HeaderName| get_utf8(req, name);
    let mut user_metadata = Vec::new();
    let mut meta_size = 0;
    for (name, _) in req.iter() {
        if let Some(suffix) = name.as_str().strip_prefix(META_PREFIX) {
            let value = decode_rfc2047(&text(name)?.unwrap_or_default());
            meta_size += suffix.len() + value.len();
            user_metadata.push((suffix.to_owned(), value));
        }
    }
    if meta_size > MAX_USER_METADATA {
        return Err(Error::new(Code::MetadataTooLarge));
    }
    user_metadata.sort();
    user_metadata.dedup_by(|a, b| a.0 == b.0);
    Ok(ObjectHeaders {
        content_type: text(&header::CONTENT_TYPE)?,
        content_encoding: text(&header::CONTENT_ENCODING)?.and_then(strip_aws_chunked),
        content_disposition: text(&header::CONTENT_DISPOSITION)?,
        content_language: text(&header::CONTENT_LANGUAGE)?,
        cache_control: text(&header::CACHE_CONTROL)?,
        expires: text(&header::EXPIRES)?,
        website_redirect_location: text(&HeaderName::from_static(
            "x-amz-website-redirect-location",
        ))?,
        user_metadata,
    })
}

/// `aws-chunked` describes the transfer, not the object: S3 stores what remains.
fn strip_aws_chunked(value: String) -> Option<String> {
    let rest: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty() && !v.eq_ignore_ascii_case("aws-chunked"))
        .collect();
    (!rest.is_empty()).then(|| rest.join(", "))
}

/// S3 returns non-ASCII metadata values RFC 2047-encoded; clients may send them that way too.
pub fn encode_rfc2047(value: &str) -> String {
    if value.is_ascii() {
        value.to_owned()
    } else {
        encoded_word(value)
    }
}

/// `value` as one RFC 2047 encoded word (`=?UTF-8?B?…?=`), which metadata headers accept.
pub fn encoded_word(value: &str) -> String {
    format!("=?UTF-8?B?{}?=", B64.encode(value))
}

fn decode_rfc2047(value: &str) -> String {
    let decoded = value
        .strip_prefix("=?UTF-8?B?")
        .or_else(|| value.strip_prefix("=?utf-8?b?"))
        .and_then(|v| v.strip_suffix("?="))
        .and_then(|b| B64.decode(b).ok())
        .and_then(|raw| String::from_utf8(raw).ok());
    decoded.unwrap_or_else(|| value.to_owned())
}

/// The change feed's number of the commit that wrote the version answered (an Outpost
/// extension, for edges: see `crate::feed`).
pub const SEQ_HEADER: &str = "x-outpost-seq";

pub fn quote_etag(etag: &str) -> String {
    format!("\"{etag}\"")
}

/// The headers GET and HEAD answer with for an object.
pub fn write_object_headers(out: &mut HeaderMap, info: &ObjectInfo) {
    let h = &info.headers;
    let mut set = |name: HeaderName, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            out.insert(name, v);
        }
    };
    set(header::ETAG, &quote_etag(&info.etag));
    set(
        header::LAST_MODIFIED,
        &httpdate::fmt_http_date(info.last_modified),
    );
    set(header::ACCEPT_RANGES, "bytes");
    if info.seq > 0 {
        set(HeaderName::from_static(SEQ_HEADER), &info.seq.to_string());
    }
    set(
        header::CONTENT_TYPE,
        h.content_type.as_deref().unwrap_or("binary/octet-stream"),
    );
    let optional = [
        (header::CONTENT_ENCODING, &h.content_encoding),
        (header::CONTENT_DISPOSITION, &h.content_disposition),
        (header::CONTENT_LANGUAGE, &h.content_language),
        (header::CACHE_CONTROL, &h.cache_control),
        (header::EXPIRES, &h.expires),
        (
            HeaderName::from_static("x-amz-website-redirect-location"),
            &h.website_redirect_location,
        ),
    ];
    for (name, value) in optional {
        if let Some(v) = value {
            set(name, &encode_rfc2047(v));
        }
    }
    for (k, v) in &h.user_metadata {
        if let Ok(name) = HeaderName::try_from(format!("{META_PREFIX}{k}")) {
            set(name, &encode_rfc2047(v));
        }
    }
}
/// `x-amz-checksum-<algo>` (and `x-amz-checksum-type`) for a stored checksum.
pub fn write_checksum_headers(out: &mut HeaderMap, checksum: &StoredChecksum) {
    if let Ok(v) = HeaderValue::from_str(&checksum.value) {
        out.insert(checksum.algorithm.header(), v);
        out.insert(
            "x-amz-checksum-type",
            HeaderValue::from_static(checksum.kind.name()),
        );
    }
}

/// A header map from static names (unit tests of the header rules).
#[cfg(test)]
pub(crate) fn test_headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    pairs
        .iter()
        .map(|(k, v)| {
            (
                HeaderName::from_static(k),
                HeaderValue::from_str(v).unwrap(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_headers_strip_aws_chunked_and_limit_metadata() {
        let h = test_headers(&[
            ("content-encoding", "aws-chunked,gzip"),
            ("x-amz-meta-color", "=?UTF-8?B?w6lsw6k=?="),
        ]);
        let oh = object_headers(&h).unwrap();
        assert_eq!(oh.content_encoding.as_deref(), Some("gzip"));
        assert_eq!(oh.user_metadata, vec![("color".into(), "élé".into())]);
        assert_eq!(
            object_headers(&test_headers(&[("content-encoding", "aws-chunked")]))
                .unwrap()
                .content_encoding,
            None
        );
        let big = "x".repeat(2100);
        assert_eq!(
            object_headers(&test_headers(&[("x-amz-meta-big", &big)]))
                .unwrap_err()
                .code,
            Code::MetadataTooLarge
        );
        assert_eq!(encode_rfc2047("élé"), "=?UTF-8?B?w6lsw6k=?=");
    }
}
