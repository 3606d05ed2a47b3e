//! The request path, as named steps in order: limits → route → authenticate (same rules as the
//! store) → one dispatch: GET/HEAD through the cache (`respond`), uploads held in the spool
//! (`ops::multipart`), everything else forwarded to the origin (`ops::forward`) → response
//! with `x-amz-request-id`, `X-Cache`, metrics and one access-log line.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, Method};
use outpost_store::error::Result;
use outpost_store::s3::auth::{self, AuthParams, Identity};
use outpost_store::s3::route::{Endpoint, Route};
use outpost_store::s3::{self};

use crate::cache::key;
use crate::cache::outcome::CacheOutcome;
use crate::edge::Edge;
use crate::ops::{forward, multipart};
use crate::respond;
use crate::site;

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
            Endpoint::CreateMultipartUpload => {
                multipart::create_upload(&edge, parts.clone(), body, &route, authenticated).await
            }
            Endpoint::UploadPart(part) => {
                multipart::upload_part(&edge, &parts, body, &route, part, authenticated).await
            }
            Endpoint::ListParts(list) => {
                multipart::list_parts(&edge, parts.clone(), body, &route, list, authenticated).await
            }
            Endpoint::CompleteMultipartUpload(upload_id)
            | Endpoint::AbortMultipartUpload(upload_id) => {
                let upload_id = upload_id.clone();
                multipart::finish_upload(
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
            _ => forward::forward(&edge, parts.clone(), body, &route, authenticated).await,
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
        cache_reason: outcome.and_then(|o| o.reason()).unwrap_or("-"),
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
    /// Why a Bypass was not stored (`-` otherwise).
    cache_reason: &'static str,
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
            status = self.status, cache = self.cache, cache_reason = self.cache_reason, bytes_sent,
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

/// GET/HEAD of an object on the S3 face.
async fn cached(
    edge: &Arc<Edge>,
    parts: &http::request::Parts,
    route: &Route,
    anonymous: bool,
) -> Result<(Response, CacheOutcome)> {
    let object = edge.s3_object(&route.bucket, &route.key, parts.uri.query(), anonymous);
    let found = object.lookup(&edge.cache, respond::hint(parts)).await;
    respond::answer(edge, parts, &object, found).await
}
