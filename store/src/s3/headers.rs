//! HTTP header rules of S3, as pure functions: stored object headers in and out, Range,
//! conditional requests (RFC 9110 §13 with S3's precedence), and the integrity headers
//! (Content-MD5, `x-amz-checksum-*`, trailers) turned into an engine `Verify` callback.

use std::ops::Range;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use crate::engine::checksum::Hasher;
use crate::engine::{
    ByteStream, ChecksumAlgorithm, ChecksumValue, Digests, ObjectHeaders, ObjectInfo,
    StoredChecksum, Verify, WriteCondition,
};
use crate::error::{Code, Error, Result};
use crate::s3::auth::Trailers;

/// S3's limit on user metadata: key and value bytes summed.
pub const MAX_USER_METADATA: usize = 2048;
const META_PREFIX: &str = "x-amz-meta-";

pub fn get<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
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

/// Parses a Range header against an object of `size` bytes. `Ok(None)` means "serve the whole
/// object": no header, or one S3 ignores (not `bytes=`, several ranges, garbled numbers).
/// Unsatisfiable ranges are InvalidRange (416).
pub fn parse_range(value: Option<&str>, size: u64) -> Result<Option<Range<u64>>> {
    let Some(spec) = value.and_then(|v| v.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((start, end)) = spec.split_once('-') else {
        return Ok(None);
    };
    let (start, end) = (start.trim(), end.trim());
    let range = if start.is_empty() {
        let Ok(suffix) = end.parse::<u64>() else {
            return Ok(None);
        };
        if suffix == 0 {
            return Err(unsatisfiable(size));
        }
        size.saturating_sub(suffix)..size
    } else {
        let Ok(first) = start.parse::<u64>() else {
            return Ok(None);
        };
        let last = if end.is_empty() {
            size.saturating_sub(1)
        } else {
            match end.parse::<u64>() {
                Ok(last) if last >= first => last.min(size.saturating_sub(1)),
                _ => return Ok(None),
            }
        };
        if first >= size {
            return Err(unsatisfiable(size));
        }
        first..last + 1
    };
    if range.is_empty() {
        return Err(unsatisfiable(size));
    }
    Ok(Some(range))
}

/// 416 InvalidRange, with the object size in `Content-Range: bytes */SIZE` (RFC 9110 15.5.17).
pub fn unsatisfiable(size: u64) -> Error {
    Error::new(Code::InvalidRange).with_header(header::CONTENT_RANGE, &format!("bytes */{size}"))
}

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

/// What a write must verify and which checksum it stores.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Integrity {
    pub content_md5: Option<[u8; 16]>,
    /// The algorithm to compute and store.
    pub algorithm: Option<ChecksumAlgorithm>,
    /// The value sent in a header, if any.
    pub expected: Option<ChecksumValue>,
    /// The value will arrive in this trailer.
    pub trailer: Option<ChecksumAlgorithm>,
}

/// Reads Content-MD5, `x-amz-checksum-<algo>`, `x-amz-sdk-checksum-algorithm` and
/// `x-amz-trailer` from a write request.
pub fn integrity(req: &HeaderMap) -> Result<Integrity> {
    let content_md5 = get(req, "content-md5")
        .map(|v| {
            B64.decode(v.trim())
                .ok()
                .and_then(|raw| <[u8; 16]>::try_from(raw).ok())
                .ok_or_else(|| Error::new(Code::InvalidDigest))
        })
        .transpose()?;
    let mut expected = None;
    for algorithm in ChecksumAlgorithm::ALL {
        if let Some(value) = get(req, algorithm.header()) {
            if expected.is_some() {
                return Err(Error::msg(
                    Code::InvalidRequest,
                    "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
                ));
            }
            expected = Some(ChecksumValue::from_base64(algorithm, value).ok_or_else(|| {
                Error::msg(
                    Code::InvalidRequest,
                    format!("Value for {} header is invalid.", algorithm.header()),
                )
            })?);
        }
    }
    let trailer = match get(req, "x-amz-trailer") {
        Some(name) => Some(ChecksumAlgorithm::from_header(name.trim()).ok_or_else(|| {
            Error::msg(
                Code::InvalidRequest,
                "The value specified in the x-amz-trailer header is not supported",
            )
        })?),
        None => None,
    };
    let declared = get(req, "x-amz-sdk-checksum-algorithm")
        .map(|v| {
            ChecksumAlgorithm::from_name(v).ok_or_else(|| {
                Error::msg(
                    Code::InvalidRequest,
                    "Checksum algorithm provided is unsupported.",
                )
            })
        })
        .transpose()?;
    let algorithm = expected
        .as_ref()
        .map(|v| v.algorithm)
        .or(trailer)
        .or(declared);
    Ok(Integrity {
        content_md5,
        algorithm,
        expected,
        trailer,
    })
}

impl Integrity {
    /// The callback the engine runs on the computed digests before it commits.
    pub fn into_verify(self, trailers: Trailers) -> Verify {
        Box::new(move |d: &Digests| {
            if self.content_md5.is_some_and(|md5| md5 != d.md5) {
                return Err(Error::new(Code::BadDigest));
            }
            match (self.expected_value(&trailers)?, &d.checksum) {
                (Some(want), Some(got)) if want != *got => Err(mismatch(want.algorithm)),
                _ => Ok(()),
            }
        })
    }

    /// Checks the sent checksum on the body itself, for writes that store a checksum of
    /// another algorithm or none (an UploadPart with a checksum into an upload created
    /// without one): the stream ends in BadDigest instead of its end.
    pub fn verify_stream(&self, body: ByteStream, trailers: Trailers) -> ByteStream {
        use futures::StreamExt;
        let Some(algorithm) = self.algorithm else {
            return body;
        };
        let me = self.clone();
        let state = (body, Some(Hasher::new(algorithm)));
        futures::stream::unfold(state, move |(mut body, hasher)| {
            let (me, trailers) = (me.clone(), trailers.clone());
            async move {
                let mut hasher = hasher?;
                match body.next().await {
                    Some(Ok(chunk)) => {
                        hasher.update(&chunk);
                        Some((Ok(chunk), (body, Some(hasher))))
                    }
                    Some(Err(e)) => Some((Err(e), (body, None))),
                    None => match me.expected_value(&trailers) {
                        Ok(Some(want)) if want != hasher.finalize() => {
                            Some((Err(mismatch(want.algorithm)), (body, None)))
                        }
                        Ok(_) => None,
                        Err(e) => Some((Err(e), (body, None))),
                    },
                }
            }
        })
        .boxed()
    }

    /// The checksum the client sent, from its header or (once the body has ended) its trailer.
    fn expected_value(&self, trailers: &Trailers) -> Result<Option<ChecksumValue>> {
        Ok(match (&self.expected, self.trailer) {
            (Some(v), _) => Some(v.clone()),
            (None, Some(algorithm)) => {
                let value = trailers.get(algorithm.header()).ok_or_else(|| {
                    Error::msg(
                        Code::InvalidRequest,
                        format!(
                            "The {} trailer was announced but not sent.",
                            algorithm.header()
                        ),
                    )
                })?;
                Some(
                    ChecksumValue::from_base64(algorithm, &value).ok_or_else(|| {
                        Error::msg(
                            Code::InvalidRequest,
                            format!(
                                "Value for {} trailing header is invalid.",
                                algorithm.header()
                            ),
                        )
                    })?,
                )
            }
            (None, None) => None,
        })
    }
}

fn mismatch(algorithm: ChecksumAlgorithm) -> Error {
    Error::msg(
        Code::BadDigest,
        format!(
            "The {} you specified did not match the calculated checksum.",
            algorithm.name()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
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

    #[test]
    fn ranges() {
        assert_eq!(parse_range(Some("bytes=0-9"), 100).unwrap(), Some(0..10));
        assert_eq!(parse_range(Some("bytes=90-"), 100).unwrap(), Some(90..100));
        assert_eq!(parse_range(Some("bytes=-10"), 100).unwrap(), Some(90..100));
        assert_eq!(parse_range(Some("bytes=-500"), 100).unwrap(), Some(0..100));
        assert_eq!(
            parse_range(Some("bytes=50-5000"), 100).unwrap(),
            Some(50..100)
        );
        assert_eq!(
            parse_range(Some("bytes=100-"), 100).unwrap_err().code,
            Code::InvalidRange
        );
        assert_eq!(
            parse_range(Some("bytes=-0"), 100).unwrap_err().code,
            Code::InvalidRange
        );
        assert_eq!(
            parse_range(Some("bytes=0-"), 0).unwrap_err().code,
            Code::InvalidRange
        );
        assert_eq!(parse_range(Some("bytes=0-1,3-4"), 100).unwrap(), None);
        assert_eq!(parse_range(Some("items=0-1"), 100).unwrap(), None);
        assert_eq!(parse_range(Some("bytes=9-3"), 100).unwrap(), None);
        assert_eq!(parse_range(None, 100).unwrap(), None);
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

    #[test]
    fn object_headers_strip_aws_chunked_and_limit_metadata() {
        let h = headers(&[
            ("content-encoding", "aws-chunked,gzip"),
            ("x-amz-meta-color", "=?UTF-8?B?w6lsw6k=?="),
        ]);
        let oh = object_headers(&h).unwrap();
        assert_eq!(oh.content_encoding.as_deref(), Some("gzip"));
        assert_eq!(oh.user_metadata, vec![("color".into(), "élé".into())]);
        assert_eq!(
            object_headers(&headers(&[("content-encoding", "aws-chunked")]))
                .unwrap()
                .content_encoding,
            None
        );
        let big = "x".repeat(2100);
        assert_eq!(
            object_headers(&headers(&[("x-amz-meta-big", &big)]))
                .unwrap_err()
                .code,
            Code::MetadataTooLarge
        );
        assert_eq!(encode_rfc2047("élé"), "=?UTF-8?B?w6lsw6k=?=");
    }

    #[test]
    fn integrity_rules() {
        let i = integrity(&headers(&[("x-amz-checksum-crc32", "DUoRhQ==")])).unwrap();
        assert_eq!(i.algorithm, Some(ChecksumAlgorithm::Crc32));
        let i = integrity(&headers(&[("x-amz-trailer", "x-amz-checksum-crc64nvme")])).unwrap();
        assert_eq!(i.trailer, Some(ChecksumAlgorithm::Crc64Nvme));
        assert_eq!(
            integrity(&headers(&[("content-md5", "nope")]))
                .unwrap_err()
                .code,
            Code::InvalidDigest
        );
        assert_eq!(
            integrity(&headers(&[("x-amz-checksum-sha1", "short")]))
                .unwrap_err()
                .code,
            Code::InvalidRequest
        );

        let data = b"hello world\n";
        let digests = Digests {
            size: data.len() as u64,
            md5: [0; 16],
            checksum: Some(crate::engine::checksum::checksum(
                ChecksumAlgorithm::Crc32,
                data,
            )),
        };
        let good = crate::engine::checksum::checksum(ChecksumAlgorithm::Crc32, data).to_base64();
        let trailers = Trailers::default();
        let verify = integrity(&headers(&[("x-amz-trailer", "x-amz-checksum-crc32")]))
            .unwrap()
            .into_verify(trailers.clone());
        let mut t = HeaderMap::new();
        t.insert(
            "x-amz-checksum-crc32",
            HeaderValue::from_str(&good).unwrap(),
        );
        trailers.set(t);
        verify(&digests).unwrap();
        let verify = integrity(&headers(&[("x-amz-checksum-crc32", "AAAAAA==")]))
            .unwrap()
            .into_verify(Trailers::default());
        assert_eq!(verify(&digests).unwrap_err().code, Code::BadDigest);
    }
}
