//! The client's answer from what the cache holds: status and headers from the stored head,
//! the client's conditions (304/412), ranges (206/416), compression, checksum headers only for
//! clients that ask, and the body from slices and fills.

use std::ops::Range;
use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Body;
use axum::response::Response;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use outpost_store::error::{Code, Error, Result};
use outpost_store::s3::headers::parse_range;

use crate::cache::Head;
use crate::cache::collapse::Passed;
use crate::cache::object::Object;
use crate::cache::outcome::CacheOutcome;
use crate::cache::policy;
use crate::cache::read::Found;
use crate::compress;
use crate::config::Behavior;
use crate::edge::Edge;
use crate::origin::{self, OriginError};

/// The client's answer for what a lookup found.
pub(crate) async fn answer(
    edge: &Arc<Edge>,
    parts: &http::request::Parts,
    object: &Object<'_>,
    found: Found,
) -> Result<(Response, CacheOutcome)> {
    match found {
        Found::Head(head, outcome) => {
            let response = from_head(edge, parts, object, head).await?;
            Ok((response, outcome))
        }
        Found::Passed(passed) => {
            let outcome = CacheOutcome::Bypass(passed.reason);
            Ok((passed_response(&passed, parts), outcome))
        }
        Found::Bypass(reason) => {
            let mut request = object.source().request.clone();
            for name in [
                http::header::RANGE,
                http::header::IF_MATCH,
                http::header::IF_NONE_MATCH,
                http::header::IF_MODIFIED_SINCE,
                http::header::IF_UNMODIFIED_SINCE,
            ] {
                if let Some(v) = parts.headers.get(&name) {
                    request.headers.insert(name, v.clone());
                }
            }
            request.method = parts.method.clone();
            let origin = &object.source().origin;
            let response = origin
                .fetch(&request)
                .await
                .map_err(OriginError::into_client_error)?;
            Ok((origin::to_client(response), CacheOutcome::Bypass(reason)))
        }
        // The fill logged why; the reason names the origin's internal address.
        Found::Failed(failure) => Err(crate::origin::client_error(failure.code)),
    }
}

/// A cold HEAD or ranged GET fetches only the first slices it needs.
pub(crate) fn hint(parts: &http::request::Parts) -> Option<Range<u64>> {
    if parts.method == Method::HEAD {
        Some(0..1)
    } else {
        range_hint(range_value(parts))
    }
}

pub(crate) fn range_value(parts: &http::request::Parts) -> Option<&str> {
    parts
        .headers
        .get(http::header::RANGE)
        .and_then(|v| v.to_str().ok())
}

/// `bytes=a-b` / `bytes=a-` → the slices worth fetching first; suffix ranges need the size.
fn range_hint(value: Option<&str>) -> Option<Range<u64>> {
    let spec = value?.trim().strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    let start: u64 = a.parse().ok()?;
    let end = match b {
        "" => start + 1,
        b => b.parse::<u64>().ok()?.max(start) + 1,
    };
    Some(start..end)
}

pub(crate) async fn from_head(
    edge: &Arc<Edge>,
    parts: &http::request::Parts,
    object: &Object<'_>,
    head: Arc<Head>,
) -> Result<Response> {
    let range_value = range_value(parts);
    let now = edge.cache.clock.now();
    let mut builder = http::Response::builder();
    let h = builder.headers_mut().expect("fresh builder");
    // Room for what this answer and `finish_response` add (age, accept-ranges, length,
    // request id, server, x-cache...), so the map is allocated once.
    h.reserve(head.headers.len() + 8);
    for (name, value) in &head.headers {
        h.append(name, value.clone());
    }
    h.insert(
        http::header::AGE,
        HeaderValue::from(head.freshness.age(now).as_secs()),
    );
    let wants_checksums = parts
        .headers
        .get("x-amz-checksum-mode")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"enabled"));
    let mut status = head.status;
    let mut range = 0..head.size;
    if status == StatusCode::OK {
        check_client_conditions(parts, &head)?;
        if policy::not_modified(&parts.headers, head.etag(), last_modified(&head)) {
            for name in [
                "content-type",
                "content-encoding",
                "content-language",
                "content-disposition",
            ] {
                h.remove(name);
            }
            return Ok(builder
                .status(StatusCode::NOT_MODIFIED)
                .body(Body::empty())
                .expect("valid response"));
        }
        h.insert(
            http::header::ACCEPT_RANGES,
            HeaderValue::from_static("bytes"),
        );
        if let Some(r) = parse_range(range_value, head.size)? {
            status = StatusCode::PARTIAL_CONTENT;
            let content_range = format!("bytes {}-{}/{}", r.start, r.end - 1, head.size);
            h.insert(
                http::header::CONTENT_RANGE,
                HeaderValue::from_str(&content_range).expect("digits"),
            );
            range = r;
        }
    }
    if status == StatusCode::OK && compressible(&head, &object.behavior) {
        h.insert(
            http::header::VARY,
            HeaderValue::from_static("Accept-Encoding"),
        );
        let accept = parts
            .headers
            .get(http::header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok());
        if let Some(encoding) = compress::negotiate(accept)
            && range_value.is_none()
        {
            let data = compressed(edge, object, &head, encoding).await?;
            strip_checksums(h);
            h.insert(
                http::header::CONTENT_ENCODING,
                HeaderValue::from_static(encoding.as_str()),
            );
            h.insert(http::header::CONTENT_LENGTH, HeaderValue::from(data.len()));
            // Another representation: its validator can only be weak (RFC 9110 8.8.1).
            if let Some(etag) = head.etag().filter(|e| !e.starts_with("W/")) {
                let weak = HeaderValue::from_str(&format!("W/{etag}")).expect("was a header");
                h.insert(http::header::ETAG, weak);
            }
            let body = if parts.method == Method::HEAD {
                Body::empty()
            } else {
                Body::from(data)
            };
            return Ok(builder.status(status).body(body).expect("valid response"));
        }
    }
    // A checksum describes the whole object: never on a part of it (as S3).
    if !wants_checksums || status == StatusCode::PARTIAL_CONTENT {
        strip_checksums(h);
    }
    h.insert(
        http::header::CONTENT_LENGTH,
        HeaderValue::from(range.end - range.start),
    );
    let body = if parts.method == Method::HEAD || range.is_empty() {
        Body::empty()
    } else if let Some(data) = edge.cache.whole_in_memory(&head).await {
        // The common hit of a small object: one buffer, no stream to poll.
        Body::from(data.slice(range.start as usize..range.end as usize))
    } else {
        Body::from_stream(object.body(&edge.cache, &head, range))
    };
    Ok(builder.status(status).body(body).expect("valid response"))
}

fn strip_checksums(headers: &mut HeaderMap) {
    let is_checksum = |k: &http::HeaderName| k.as_str().starts_with("x-amz-checksum-");
    // Most answers have none: no list to build then.
    if !headers.keys().any(is_checksum) {
        return;
    }
    let names: Vec<_> = headers.keys().filter(|k| is_checksum(k)).cloned().collect();
    for name in names {
        headers.remove(name);
    }
}

fn compressible(head: &Head, behavior: &Behavior) -> bool {
    let header = |name| {
        head.headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    behavior.compress
        && compress::compressible(
            header(http::header::CONTENT_TYPE),
            header(http::header::CONTENT_ENCODING),
            head.size,
        )
}

/// The compressed variant of a body, from the cache or made now from the cached slices.
async fn compressed(
    edge: &Arc<Edge>,
    object: &Object<'_>,
    head: &Arc<Head>,
    encoding: compress::Encoding,
) -> Result<bytes::Bytes> {
    if let Some(data) = edge.cache.variant(head.version, encoding).await {
        return Ok(data);
    }
    let identity: Vec<bytes::Bytes> =
        futures::TryStreamExt::try_collect(object.body(&edge.cache, head, 0..head.size)).await?;
    let data = compress::compress(&identity.concat(), encoding)
        .await
        .map_err(|e| Error::internal(anyhow::anyhow!("compressing: {e}")))?;
    edge.cache
        .put_variant(head.version, encoding, data.clone())
        .await;
    Ok(data)
}

fn last_modified(head: &Head) -> Option<SystemTime> {
    let v = head
        .headers
        .get(http::header::LAST_MODIFIED)?
        .to_str()
        .ok()?;
    httpdate::parse_http_date(v).ok()
}

/// If-Match / If-Unmodified-Since against what we hold (RFC 9110 13.2.2: these come first).
fn check_client_conditions(parts: &http::request::Parts, head: &Head) -> Result<()> {
    let header = |name| {
        parts
            .headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    if let Some(want) = header(http::header::IF_MATCH) {
        let etag = head.etag().unwrap_or("");
        let matched = want
            .split(',')
            .map(str::trim)
            .any(|t| t == "*" || t.trim_start_matches("W/") == etag);
        if !matched {
            return Err(Error::new(Code::PreconditionFailed));
        }
    } else if let (Some(since), Some(modified)) = (
        header(http::header::IF_UNMODIFIED_SINCE).and_then(|v| httpdate::parse_http_date(v).ok()),
        last_modified(head),
    ) && modified > since
    {
        return Err(Error::new(Code::PreconditionFailed));
    }
    Ok(())
}

pub(crate) fn passed_response(passed: &Passed, parts: &http::request::Parts) -> Response {
    let mut builder = http::Response::builder().status(passed.status);
    let h = builder.headers_mut().expect("fresh builder");
    h.extend(passed.headers.clone());
    h.insert(
        http::header::CONTENT_LENGTH,
        HeaderValue::from(passed.body.len()),
    );
    let body = if parts.method == Method::HEAD {
        Body::empty()
    } else {
        Body::from(passed.body.clone())
    };
    builder.body(body).expect("valid response")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_hints() {
        assert_eq!(range_hint(Some("bytes=10-19")), Some(10..20));
        assert_eq!(range_hint(Some("bytes=10-")), Some(10..11));
        assert_eq!(range_hint(Some("bytes=-10")), None);
        assert_eq!(range_hint(None), None);
    }
}
