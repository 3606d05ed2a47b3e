//! The client's answer from what the cache holds: status and headers from the stored head,
//! the client's conditions (304/412), ranges (206/416), compression, checksum headers only for
//! clients that ask, and the body from slices and fills.

use std::ops::Range;
use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use outpost_store::error::{Code, Error, Result};
use outpost_store::s3::headers::{self, ConditionFields, Precondition, Validators, parse_range};

use crate::cache::Head;
use crate::cache::collapse::Passed;
use crate::cache::object::Object;
use crate::cache::outcome::{CacheOutcome, NotCacheable};
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
        // A range of an answer not stored: the origin cuts it, as for any bypass.
        Found::Passed(passed)
            if passed.status == StatusCode::OK && range_value(parts).is_some() =>
        {
            bypass(parts, object, passed.reason).await
        }
        Found::Passed(passed) => {
            let outcome = CacheOutcome::Bypass(passed.reason);
            Ok((passed_response(&passed, parts)?, outcome))
        }
        Found::Bypass(reason) => bypass(parts, object, reason).await,
        // The fill logged why; the reason names the origin's internal address.
        Found::Failed(failure) => Err(crate::origin::client_error(failure.code)),
    }
}

/// The client's own request (its method, Range and conditions) sent to the origin, and the
/// origin's answer passed on.
async fn bypass(
    parts: &http::request::Parts,
    object: &Object<'_>,
    reason: NotCacheable,
) -> Result<(Response, CacheOutcome)> {
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
        if let Some(mut answer) = conditional_answer(parts, &head.headers)? {
            answer
                .headers_mut()
                .insert(http::header::AGE, h[http::header::AGE].clone());
            return Ok(answer);
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
        // Beside the origin's own (the CORS rules' `Vary`, say), not instead of it.
        h.append(
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

/// The client's conditions against a stored 200's headers, by the kit's rules: the kit's
/// 304 (exactly the store's fields; the edge adds only its own `Age` and `X-Cache`), a 412
/// error, or `None` to serve the body.
fn conditional_answer(
    parts: &http::request::Parts,
    stored: &HeaderMap,
) -> Result<Option<Response>> {
    if !ConditionFields::READ.any_in(&parts.headers) {
        return Ok(None);
    }
    match headers::evaluate(
        &parts.headers,
        &ConditionFields::READ,
        Validators::from_headers(stored),
    ) {
        Precondition::Proceed => Ok(None),
        Precondition::NotModified => Ok(Some(headers::not_modified(stored))),
        Precondition::Failed => Err(Error::new(Code::PreconditionFailed)),
    }
}

/// An answer that was not stored, to each client that waited for it; a 200 still honours the
/// client's conditions, as the store would have.
pub(crate) fn passed_response(passed: &Passed, parts: &http::request::Parts) -> Result<Response> {
    if passed.status == StatusCode::OK
        && let Some(answer) = conditional_answer(parts, &passed.headers)?
    {
        return Ok(answer);
    }
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
    Ok(builder.body(body).expect("valid response"))
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
