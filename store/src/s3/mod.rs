//! PROTOCOL: HTTP, XML and SigV4. Never touches disk; calls the [`crate::engine`] API.
//!
//! A request goes through named steps, in order ([`handle`]): limits → route → authenticate →
//! authorize → verified body → operation (`ops/`) → response with `x-amz-request-id`, metrics
//! and one log line. Any step's error becomes the S3 XML error document.
//!
//! The pieces the edge reuses as they are: [`route`], [`auth`] (signatures, verified bodies),
//! [`body`] (a client's body under the slow-client limits, gathered against fragmentation),
//! [`linger`] (draining a body left unread), [`kept_alive`] (S3's answer to a long operation),
//! [`headers`], [`xml`].

pub mod auth;
pub mod body;
mod engine_errors;
pub mod headers;
pub mod kept_alive;
pub mod linger;
pub mod ops;
pub mod route;
pub mod xml;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::body::Body;
use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use http::{HeaderValue, Method, StatusCode};

use crate::config::StoreConfig;
use crate::engine::{ByteStream, Engine};
use crate::error::{Code, Error, Result};
use crate::metrics::Metrics;
use auth::{AuthParams, Identity, Keyring, Trailers};
use route::Route;

pub type Response = http::Response<Body>;

/// S3 keys are at most 1024 bytes of UTF-8.
pub const MAX_KEY_LENGTH: usize = 1024;
/// How far a request's clock may be from ours (S3 uses 15 minutes).
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(15 * 60);

/// Everything a request needs from the server, shared by all requests.
pub struct S3 {
    pub engine: Engine,
    pub keyring: Keyring,
    pub config: StoreConfig,
    pub metrics: Metrics,
    /// The canonical id reported as bucket and object owner (the root access key id).
    pub owner_id: String,
}

/// One request after routing and authentication: what an operation works with (its
/// parameters come typed in its [`route::Endpoint`], see [`ops::dispatch`]).
pub struct Req {
    pub id: String,
    pub method: Method,
    pub headers: http::HeaderMap,
    bucket: String,
    key: String,
    pub identity: Identity,
    /// The verified, de-chunked body. Taken once by the operation that reads it. (In a Mutex
    /// only to make `Req` Sync, so handlers may hold `&Req` across awaits.)
    body: std::sync::Mutex<Option<ByteStream>>,
    pub trailers: Trailers,
}

impl Req {
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        headers::get(&self.headers, name)
    }

    pub fn take_body(&mut self) -> ByteStream {
        let body = self
            .body
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        body.take()
            .unwrap_or_else(|| futures::stream::empty().boxed())
    }

    /// The declared body length: `x-amz-decoded-content-length` for aws-chunked bodies,
    /// otherwise Content-Length.
    pub fn content_length(&self) -> Option<u64> {
        self.header("x-amz-decoded-content-length")
            .or_else(|| self.header("content-length"))
            .and_then(|v| v.parse().ok())
    }
}

/// Answers one HTTP request (the axum fallback handler for everything that is not
/// `/_outpost/...`).
pub async fn handle(
    axum::extract::State(s3): axum::extract::State<Arc<S3>>,
    request: axum::extract::Request,
) -> Response {
    let started = Instant::now();
    let id = request_id();
    let (parts, body) = request.into_parts();
    let body = linger::lingering(body);
    let resource = parts.uri.path().to_owned();
    let is_head = parts.method == Method::HEAD;
    let mut operation = "Unknown";
    let result = async {
        check_header_size(&parts.headers, s3.config.max_header_bytes)?;
        let route = route_request(&parts, s3.config.base_domain.as_deref())?;
        operation = route.endpoint.name();
        let params = AuthParams {
            keyring: &s3.keyring,
            region: &s3.config.region,
            bucket: &route.bucket,
            now: SystemTime::now(),
            max_skew: MAX_CLOCK_SKEW,
        };
        let authenticated = auth::authenticate(&parts, &params)?;
        authorize(&s3, &route, &authenticated.identity).await?;
        let counted = Arc::clone(&s3);
        let config = &s3.config;
        let limits = body::BodyLimits::new(
            config.body_idle_timeout_secs,
            config.body_min_rate_bytes_per_sec,
            config.body_min_rate_window_secs,
        );
        let raw = body::client_body(body, limits, move |n| {
            counted.metrics.add_bytes_in(n as u64)
        });
        let (body, trailers) = auth::verified_body(raw, authenticated.payload);
        let Route {
            endpoint,
            bucket,
            key,
        } = route;
        let req = Req {
            id: id.clone(),
            method: parts.method.clone(),
            headers: parts.headers.clone(),
            bucket,
            key,
            identity: authenticated.identity,
            body: std::sync::Mutex::new(Some(body)),
            trailers,
        };
        ops::dispatch(&s3, req, endpoint).await
    };
    // A bug in one handler must cost one request an InternalError, not the connection.
    let result = std::panic::AssertUnwindSafe(result)
        .catch_unwind()
        .await
        .unwrap_or_else(|_| Err(Error::internal(anyhow::anyhow!("request handler panicked"))));
    let mut response = match result {
        Ok(response) => response,
        Err(e) => error_response(&e, &resource, &id, is_head),
    };
    let status = response.status();
    let sent = finish_response(&mut response, &id, &parts);
    let elapsed = started.elapsed();
    s3.metrics
        .observe(operation, status.as_u16(), elapsed, sent);
    tracing::info!(
        target: "outpost::access",
        request_id = %id, method = %parts.method, path = %resource, operation,
        status = status.as_u16(), bytes_sent = sent, ms = elapsed.as_secs_f64() * 1e3,
    );
    response
}

/// Adds `x-amz-request-id` (unless the answer already names the request it comes from) and
/// `Server`; returns the body bytes the response will send, for metrics.
///
/// An error to a request that came with a body may leave that body unread (refused before
/// reading it): the connection then closes, or a client reusing it would send its next
/// request into the rest of this body.
pub fn finish_response(
    response: &mut Response,
    request_id: &str,
    request: &http::request::Parts,
) -> u64 {
    let is_head = request.method == Method::HEAD;
    let had_body = request
        .headers
        .contains_key(http::header::TRANSFER_ENCODING)
        || request
            .headers
            .get(http::header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0");
    if had_body && (response.status().is_client_error() || response.status().is_server_error()) {
        response
            .headers_mut()
            .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    }
    let h = response.headers_mut();
    if !h.contains_key("x-amz-request-id")
        && let Ok(v) = HeaderValue::from_str(request_id)
    {
        h.insert("x-amz-request-id", v);
    }
    h.insert(http::header::SERVER, HeaderValue::from_static("Outpost"));
    h.get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .filter(|_| !is_head)
        .unwrap_or(0)
}

pub fn request_id() -> String {
    format!("{:016X}", rand::random::<u64>())
}

/// RequestHeaderSectionTooLarge past `limit` bytes of header names and values.
pub fn check_header_size(headers: &http::HeaderMap, limit: usize) -> Result<()> {
    let size: usize = headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if size > limit {
        return Err(Error::new(Code::RequestHeaderSectionTooLarge));
    }
    Ok(())
}

/// Routes a request (path-style, or virtual-hosted under `base_domain`) and checks the key
/// length.
pub fn route_request(parts: &http::request::Parts, base_domain: Option<&str>) -> Result<Route> {
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.host());
    let query = route::Query::parse(parts.uri.query());
    // A copy source that is not text names no object: parsed as the empty (malformed) one.
    let copy_source = parts
        .headers
        .get("x-amz-copy-source")
        .map(|v| v.to_str().unwrap_or_default());
    let route = route::route(
        &parts.method,
        host,
        parts.uri.path(),
        &query,
        copy_source,
        base_domain,
    )?;
    if route.key.len() > MAX_KEY_LENGTH {
        return Err(Error::new(Code::KeyTooLongError));
    }
    // Listings name every key in XML, which cannot carry NUL and most other C0 controls:
    // such keys are refused when created rather than breaking every listing later.
    if route.endpoint.creates_key() && !xml::can_carry(&route.key) {
        return Err(Error::msg(
            Code::InvalidArgument,
            "Object keys may not contain control characters other than tab, line feed and carriage return.",
        ));
    }
    Ok(route)
}

/// Signed requests may do anything (one root identity); anonymous ones only what a public
/// bucket's policy or ACL opens.
async fn authorize(s3: &S3, route: &Route, identity: &Identity) -> Result<()> {
    if matches!(identity, Identity::Key(_)) {
        return Ok(());
    }
    let (read, list) = (
        route.endpoint.is_public_read(),
        route.endpoint.is_public_list(),
    );
    if (read || list)
        && let Ok(bucket) = s3.engine.bucket(&route.bucket).await
    {
        let access = ops::policy::public_access(&bucket.settings);
        if (read && access.can_read(&route.bucket, &route.key)) || (list && access.list) {
            return Ok(());
        }
    }
    Err(Error::new(Code::AccessDenied))
}

/// The S3 XML error document (no body for HEAD, as S3 does).
pub fn error_response(e: &Error, resource: &str, request_id: &str, is_head: bool) -> Response {
    if e.code == Code::InternalError {
        tracing::error!(request_id, resource, error = ?e, "internal error");
    } else {
        tracing::debug!(request_id, resource, error = ?e, "request failed");
    }
    let status = e.code.status();
    let body = if is_head || status == StatusCode::NOT_MODIFIED {
        Body::empty()
    } else {
        Body::from(e.to_xml(resource, request_id))
    };
    let mut builder = http::Response::builder().status(status);
    if let Some(h) = builder.headers_mut() {
        h.extend(e.headers.iter().cloned());
    }
    if status != StatusCode::NOT_MODIFIED {
        builder = builder.header(http::header::CONTENT_TYPE, "application/xml");
    }
    builder.body(body).expect("static response parts are valid")
}

/// A 200 response carrying an XML document.
pub fn xml_response(xml: String) -> Response {
    http::Response::builder()
        .header(http::header::CONTENT_TYPE, "application/xml")
        .header(http::header::CONTENT_LENGTH, xml.len())
        .body(Body::from(Bytes::from(xml)))
        .expect("static response parts are valid")
}

/// An empty response with `status`.
pub fn empty_response(status: StatusCode) -> Response {
    http::Response::builder()
        .status(status)
        .body(Body::empty())
        .expect("static response parts are valid")
}

/// The answer to an operation we know but do not serve: NotImplemented, naming it.
pub fn unsupported(operation: &str) -> Error {
    Error::msg(
        Code::NotImplemented,
        format!("{operation} is not implemented by this server."),
    )
}
