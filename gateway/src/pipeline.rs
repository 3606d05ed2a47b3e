//! The request path, as named steps in order: limits → route → authenticate (same rules as the
//! store) → GET/HEAD through the cache, everything else relayed to the origin → response with
//! `x-amz-request-id`, `X-Cache`, metrics and one access-log line.

use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::body::Body;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use outpost_store::error::{Code, Error, Result};
use outpost_store::s3::auth::{self, AuthParams, Identity};
use outpost_store::s3::route::{Endpoint, Route};
use outpost_store::s3::{self, headers::parse_range};

use crate::app::Edge;
use crate::cache::collapse::Passed;
use crate::cache::policy::{self, CacheOutcome};
use crate::cache::read::{self, Found, Source};
use crate::cache::{Head, key};
use crate::compress;
use crate::config::Behavior;
use crate::origin::{OriginGroup, OriginRequest};
use crate::site;

pub type Response = http::Response<Body>;

const MAX_CLOCK_SKEW: Duration = Duration::from_secs(15 * 60);

pub async fn handle(
    axum::extract::State(edge): axum::extract::State<Arc<Edge>>,
    request: axum::extract::Request,
) -> Response {
    let started = Instant::now();
    let id = s3::request_id();
    let (parts, body) = request.into_parts();
    let resource = parts.uri.path().to_owned();
    let is_head = parts.method == Method::HEAD;
    let mut operation = "Unknown";
    let mut outcome = None;
    let result = async {
        s3::check_header_size(&parts.headers, edge.config.max_header_bytes)?;
        let host = parts
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok());
        if let Some(site) = edge.sites.for_host(host) {
            operation = "Site";
            let (response, o) = site::handle(&edge, &parts, &site).await?;
            outcome = o;
            return Ok(response);
        }
        let route = s3::route_request(&parts, edge.config.base_domain.as_deref())?;
        operation = route.endpoint.name();
        let authenticated = auth::authenticate(
            &parts,
            &AuthParams {
                keyring: &edge.keyring,
                region: &edge.config.region,
                bucket: &route.bucket,
                now: SystemTime::now(),
                max_skew: MAX_CLOCK_SKEW,
            },
        )?;
        let anonymous = authenticated.identity == Identity::Anonymous;
        match route.endpoint {
            Endpoint::GetObject | Endpoint::HeadObject => {
                let (response, o) = cached(&edge, &parts, &route, anonymous).await?;
                outcome = Some(o);
                Ok(response)
            }
            _ => relay(&edge, parts.clone(), body, &route, authenticated).await,
        }
    }
    .await;
    let mut response = match result {
        Ok(response) => response,
        Err(e) => s3::error_response(&e, &resource, &id, is_head),
    };
    let status = response.status();
    let sent = s3::finish_response(&mut response, &id, is_head);
    if let Some(o) = outcome {
        let x_cache = HeaderValue::from_static(o.x_cache());
        response.headers_mut().insert("x-cache", x_cache);
        edge.metrics.outcome(o);
    }
    let elapsed = started.elapsed();
    edge.metrics
        .requests
        .observe(operation, status.as_u16(), elapsed, sent);
    // The fields of a CloudFront standard log line that the edge knows. The query goes without
    // its signature parameters: a presigned URL is a bearer token until it expires.
    let header = |name| {
        parts
            .headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .unwrap_or("-")
    };
    tracing::info!(
        target: "outpost::access",
        request_id = %id, host = header(http::header::HOST), method = %parts.method,
        path = %resource, query = %key::strip_auth_params(parts.uri.query()), operation,
        status = status.as_u16(), cache = outcome.map(|o| o.as_str()).unwrap_or("-"),
        bytes_sent = sent, ms = elapsed.as_secs_f64() * 1e3,
        range = header(http::header::RANGE), referer = header(http::header::REFERER),
        user_agent = header(http::header::USER_AGENT),
    );
    response
}

/// Path-style, the key encoded once (S3's encoding, which the origin signs and checks).
fn origin_path(bucket: &str, key: &str, query: &str) -> String {
    let mut path = format!("/{bucket}");
    if !key.is_empty() {
        path.push('/');
        path.push_str(&auth::sigv4::uri_encode(key, true));
    }
    if !query.is_empty() {
        path.push('?');
        path.push_str(query);
    }
    path
}

/// An object served through the cache: its key there and where a fill fetches it.
pub(crate) struct Object {
    pub(crate) cache_key: String,
    pub(crate) source: Arc<Source>,
}

impl Object {
    /// `namespace` keeps apart what must not share entries (S3 face signed / anonymous, each
    /// distribution); only the query parameters in `query_keys` (`*` = all) select the
    /// response and travel to the origin.
    pub(crate) fn new(
        origins: &Arc<OriginGroup>,
        namespace: &str,
        bucket: &str,
        key: &str,
        query: Option<&str>,
        behavior: &Arc<Behavior>,
        anonymous: bool,
    ) -> Object {
        let cache_key = key::cache_key(namespace, bucket, key, query, &behavior.query_keys);
        let query = key::selected_query(query, &behavior.query_keys);
        let path_and_query = origin_path(bucket, key, &query);
        // Checksums are always fetched and stored, and shown to clients that ask: one entry
        // serves both kinds of client.
        let mut headers = HeaderMap::new();
        headers.insert("x-amz-checksum-mode", HeaderValue::from_static("ENABLED"));
        let source = Arc::new(Source {
            origin: Arc::clone(origins),
            request: OriginRequest {
                method: Method::GET,
                path_and_query,
                headers,
                anonymous,
                aws_chunked: false,
            },
            behavior: Arc::clone(behavior),
        });
        Object { cache_key, source }
    }

    pub(crate) async fn lookup(&self, edge: &Edge, hint: Option<Range<u64>>) -> Found {
        read::lookup(&edge.cache, &self.source, &self.cache_key, hint).await
    }
}

/// GET/HEAD of an object on the S3 face.
async fn cached(
    edge: &Arc<Edge>,
    parts: &http::request::Parts,
    route: &Route,
    anonymous: bool,
) -> Result<(Response, CacheOutcome)> {
    // Anonymous readers get their own entries, fetched without the edge's signature, so the
    // origin's policy (public bucket or not) decides what they may see.
    let namespace = if anonymous { "anon" } else { "s3" };
    let object = Object::new(
        &edge.origins,
        namespace,
        &route.bucket,
        &route.key,
        parts.uri.query(),
        &edge.s3_behavior,
        anonymous,
    );
    let found = object.lookup(edge, hint(parts)).await;
    answer(edge, parts, &object, found).await
}

/// A cold HEAD or ranged GET fetches only the first slices it needs.
pub(crate) fn hint(parts: &http::request::Parts) -> Option<Range<u64>> {
    if parts.method == Method::HEAD {
        Some(0..1)
    } else {
        range_hint(range_value(parts))
    }
}

fn range_value(parts: &http::request::Parts) -> Option<&str> {
    parts
        .headers
        .get(http::header::RANGE)
        .and_then(|v| v.to_str().ok())
}

/// The client's answer for what a lookup found.
pub(crate) async fn answer(
    edge: &Arc<Edge>,
    parts: &http::request::Parts,
    object: &Object,
    found: Found,
) -> Result<(Response, CacheOutcome)> {
    match found {
        Found::Head(head, outcome) => {
            let response = from_head(edge, parts, object, head).await?;
            Ok((response, outcome))
        }
        Found::Passed(passed) => Ok((passed_response(&passed, parts), CacheOutcome::Miss)),
        Found::Bypass => {
            let mut request = object.source.request.clone();
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
            let origin = &object.source.origin;
            let response = origin.fetch(&request).await.map_err(origin_error)?;
            Ok((streamed(response), CacheOutcome::Bypass))
        }
        Found::Failed(reason) => Err(Error::msg(
            Code::ServiceUnavailable,
            format!("No origin could serve this object: {reason}"),
        )),
    }
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
    object: &Object,
    head: Arc<Head>,
) -> Result<Response> {
    let range_value = range_value(parts);
    let now = edge.cache.clock.now();
    let mut builder = http::Response::builder();
    let h = builder.headers_mut().expect("fresh builder");
    h.extend(head.headers.clone());
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
    if status == StatusCode::OK && compressible(&head, &object.source) {
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
        Body::from_stream(read::body(
            Arc::clone(&edge.cache),
            Arc::clone(&object.source),
            object.cache_key.clone(),
            head,
            range,
        ))
    };
    Ok(builder.status(status).body(body).expect("valid response"))
}

fn strip_checksums(headers: &mut HeaderMap) {
    let names: Vec<_> = headers
        .keys()
        .filter(|k| k.as_str().starts_with("x-amz-checksum-"))
        .cloned()
        .collect();
    for name in names {
        headers.remove(name);
    }
}

fn compressible(head: &Head, source: &Source) -> bool {
    let header = |name| {
        head.headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    source.behavior.compress
        && compress::compressible(
            header(http::header::CONTENT_TYPE),
            header(http::header::CONTENT_ENCODING),
            head.size,
        )
}

/// The compressed variant of a body, from the cache or made now from the cached slices.
async fn compressed(
    edge: &Arc<Edge>,
    object: &Object,
    head: &Arc<Head>,
    encoding: compress::Encoding,
) -> Result<bytes::Bytes> {
    if let Some(data) = edge.cache.variant(head.version, encoding).await {
        return Ok(data);
    }
    let identity: Vec<bytes::Bytes> = futures::TryStreamExt::try_collect(read::body(
        Arc::clone(&edge.cache),
        Arc::clone(&object.source),
        object.cache_key.clone(),
        Arc::clone(head),
        0..head.size,
    ))
    .await?;
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

fn passed_response(passed: &Passed, parts: &http::request::Parts) -> Response {
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

/// An origin answer passed to the client as it streams.
fn streamed(response: crate::origin::OriginResponse) -> Response {
    let (mut parts, body) = response.into_parts();
    for name in ["connection", "keep-alive", "transfer-encoding", "server"] {
        parts.headers.remove(name);
    }
    http::Response::from_parts(parts, Body::new(body))
}

fn origin_error(e: crate::origin::OriginError) -> Error {
    // The client's body failed the edge's own checks (chunk signature, payload hash): that
    // error is the answer, not the origin's state.
    if let crate::origin::OriginError::Body(body) = e {
        // Body layers wrap it in axum errors, one per layer.
        let mut cause = body.into_inner();
        loop {
            cause = match cause.downcast::<Error>() {
                Ok(checked) => return *checked,
                Err(other) => match other.downcast::<axum::Error>() {
                    Ok(layer) => layer.into_inner(),
                    Err(other) => return Error::msg(Code::IncompleteBody, other.to_string()),
                },
            };
        }
    }
    tracing::warn!(error = %e, "origin request failed");
    Error::msg(Code::ServiceUnavailable, "The origin is unreachable.")
}

/// Every other operation: relayed to the origin, re-signed, its answer returned unchanged.
/// A write through the edge drops the edge's copies of that object at once.
async fn relay(
    edge: &Arc<Edge>,
    parts: http::request::Parts,
    body: Body,
    route: &Route,
    authenticated: auth::Authenticated,
) -> Result<Response> {
    let anonymous = authenticated.identity == Identity::Anonymous;
    let mut headers = parts.headers.clone();
    let (body, trailers) = auth::verified_body(
        Box::pin(futures::TryStreamExt::map_err(
            body.into_data_stream(),
            |e| {
                Error::msg(
                    Code::IncompleteBody,
                    format!("The request body could not be read: {e}"),
                )
            },
        )),
        authenticated.payload.clone(),
    );
    let mut content_length = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok());
    let chunked = matches!(authenticated.payload, auth::Payload::Chunked { .. });
    let with_trailer = chunked && headers.contains_key("x-amz-trailer");
    let body = if with_trailer {
        // The edge checked the chunk signatures; the origin gets the data re-framed unsigned,
        // with the trailing checksum it verifies and stores (chunked transfer: the framed
        // length is not known up front).
        content_length = None;
        auth::chunked::encode_unsigned(body, trailers)
    } else if chunked {
        // No trailer: the origin gets the plain body.
        content_length = headers
            .get("x-amz-decoded-content-length")
            .and_then(|v| v.to_str().ok()?.parse().ok());
        headers.remove("x-amz-decoded-content-length");
        strip_aws_chunked(&mut headers);
        body
    } else {
        body
    };
    let request = OriginRequest {
        method: parts.method.clone(),
        path_and_query: origin_path(
            &route.bucket,
            &route.key,
            &key::strip_auth_params(parts.uri.query()),
        ),
        headers,
        anonymous,
        aws_chunked: with_trailer,
    };
    let response = edge
        .origins
        .relay(request, Body::from_stream(body), content_length)
        .await
        .map_err(origin_error)?;
    if parts.method != Method::GET && parts.method != Method::HEAD && !route.key.is_empty() {
        edge.cache
            .invalidate(&[format!("/{}/{}", route.bucket, route.key)]);
    }
    Ok(streamed(response))
}

fn strip_aws_chunked(headers: &mut HeaderMap) {
    let Some(v) = headers
        .get(http::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
    else {
        return;
    };
    let rest: Vec<&str> = v
        .split(',')
        .map(str::trim)
        .filter(|e| !e.eq_ignore_ascii_case("aws-chunked") && !e.is_empty())
        .collect();
    if rest.is_empty() {
        headers.remove(http::header::CONTENT_ENCODING);
    } else if let Ok(v) = HeaderValue::from_str(&rest.join(",")) {
        headers.insert(http::header::CONTENT_ENCODING, v);
    }
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

    #[test]
    fn aws_chunked_is_removed_from_content_encoding() {
        let mut h = HeaderMap::new();
        h.insert("content-encoding", "aws-chunked,gzip".parse().unwrap());
        strip_aws_chunked(&mut h);
        assert_eq!(h.get("content-encoding").unwrap(), "gzip");
        h.insert("content-encoding", "aws-chunked".parse().unwrap());
        strip_aws_chunked(&mut h);
        assert!(h.get("content-encoding").is_none());
    }
}
