//! The request path, as named steps in order: limits → route → authenticate (same rules as the
//! store) → GET/HEAD through the cache, everything else relayed to the origin → response with
//! `x-amz-request-id`, `X-Cache`, metrics and one access-log line.

use std::ops::Range;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use axum::body::Body;
use http::{HeaderMap, HeaderValue, Method};
use outpost_store::error::Result;
use outpost_store::s3::auth::{self, AuthParams, Identity};
use outpost_store::s3::route::{Endpoint, Route};
use outpost_store::s3::{self};

use crate::app::Edge;
use crate::cache::key;
use crate::cache::policy::CacheOutcome;
use crate::cache::read::{self, Found, Source};
use crate::config::Behavior;
use crate::origin::{OriginGroup, OriginRequest};
use crate::relay::{self, origin_error};
use crate::respond::{from_head, passed_response, streamed};
use crate::site;

pub type Response = http::Response<Body>;

pub async fn handle(
    axum::extract::State(edge): axum::extract::State<Arc<Edge>>,
    request: axum::extract::Request,
) -> Response {
    let started = Instant::now();
    let id = s3::request_id();
    let (parts, body) = request.into_parts();
    let body = s3::linger::lingering(body);
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
                max_skew: s3::MAX_CLOCK_SKEW,
            },
        )?;
        let anonymous = authenticated.identity == Identity::Anonymous;
        match &route.endpoint {
            Endpoint::GetObject(_) | Endpoint::HeadObject(_) => {
                let (response, o) = cached(&edge, &parts, &route, anonymous).await?;
                outcome = Some(o);
                Ok(response)
            }
            Endpoint::UploadPart(part) => {
                relay::upload_part(&edge, &parts, body, &route, part, authenticated).await
            }
            Endpoint::ListParts(list) => {
                relay::list_parts(&edge, parts.clone(), body, &route, list, authenticated).await
            }
            Endpoint::CompleteMultipartUpload(upload_id)
            | Endpoint::AbortMultipartUpload(upload_id) => {
                let upload_id = upload_id.clone();
                relay::finish_upload(
                    &edge,
                    parts.clone(),
                    body,
                    &route,
                    upload_id,
                    authenticated,
                    &id,
                )
                .await
            }
            _ => relay::relay(&edge, parts.clone(), body, &route, authenticated).await,
        }
    }
    .await;
    let mut response = match result {
        Ok(response) => response,
        Err(e) => s3::error_response(&e, &resource, &id, is_head),
    };
    let status = response.status();
    let declared = s3::finish_response(&mut response, &id, &parts);
    if let Some(o) = outcome {
        let x_cache = HeaderValue::from_static(o.x_cache());
        response.headers_mut().insert("x-cache", x_cache);
        edge.metrics.outcome(o);
    }
    edge.metrics
        .requests
        .observe(operation, status.as_u16(), started.elapsed(), declared);
    // The fields of a CloudFront standard log line that the edge knows. The query goes without
    // its signature parameters: a presigned URL is a bearer token until it expires.
    let header = |name| {
        parts
            .headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .unwrap_or("-")
            .to_owned()
    };
    let line = AccessLine {
        request_id: id,
        host: header(http::header::HOST),
        method: parts.method.clone(),
        path: resource,
        query: key::strip_auth_params(parts.uri.query()),
        operation,
        status: status.as_u16(),
        cache: outcome.map(|o| o.as_str()).unwrap_or("-"),
        range: header(http::header::RANGE),
        referer: header(http::header::REFERER),
        user_agent: header(http::header::USER_AGENT),
        started,
    };
    response.map(|body| {
        Body::new(Logged {
            body,
            sent: 0,
            line: Some(line),
        })
    })
}

/// One access-log line, written when the response body is done with (sent, or cut off), so
/// it counts the bytes that really went out and the time to the last of them.
struct AccessLine {
    request_id: String,
    host: String,
    method: Method,
    path: String,
    query: String,
    operation: &'static str,
    status: u16,
    cache: &'static str,
    range: String,
    referer: String,
    user_agent: String,
    started: Instant,
}

impl AccessLine {
    fn write(self, bytes_sent: u64) {
        tracing::info!(
            target: "outpost::access",
            request_id = %self.request_id, host = self.host, method = %self.method,
            path = %self.path, query = %self.query, operation = self.operation,
            status = self.status, cache = self.cache, bytes_sent,
            ms = self.started.elapsed().as_secs_f64() * 1e3,
            range = self.range, referer = self.referer, user_agent = self.user_agent,
        );
    }
}

/// A response body that writes its access line once dropped.
struct Logged {
    body: Body,
    sent: u64,
    line: Option<AccessLine>,
}

impl http_body::Body for Logged {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, axum::Error>>> {
        let polled = std::pin::Pin::new(&mut self.body).poll_frame(cx);
        if let std::task::Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.sent += data.len() as u64;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        if let Some(line) = self.line.take() {
            line.write(self.sent);
        }
    }
}

/// Path-style, from the routed bucket and key, each encoded once (S3's encoding, which the
/// origin signs and checks), so the origin routes the very resource the edge routed. (A routed
/// bucket holds no byte that needs encoding; encoding it anyway keeps that true here too.)
pub(crate) fn origin_path(bucket: &str, key: &str, query: &str) -> String {
    let mut path = format!("/{}", auth::sigv4::uri_encode(bucket, false));
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
    let object = s3_object(
        edge,
        &route.bucket,
        &route.key,
        parts.uri.query(),
        anonymous,
    );
    let found = object.lookup(edge, hint(parts)).await;
    answer(edge, parts, &object, found).await
}

/// An object on the S3 face. Anonymous readers get their own entries, fetched without the
/// edge's signature, so the origin's policy (public bucket or not) decides what they may see.
pub(crate) fn s3_object(
    edge: &Edge,
    bucket: &str,
    key: &str,
    query: Option<&str>,
    anonymous: bool,
) -> Object {
    let namespace = if anonymous { "anon" } else { "s3" };
    Object::new(
        &edge.origins,
        namespace,
        bucket,
        key,
        query,
        &edge.s3_behavior,
        anonymous,
    )
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
        // The fill logged why; the reason names the origin's internal address.
        Found::Failed(failure) => Err(crate::origin::client_error(failure.code)),
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
