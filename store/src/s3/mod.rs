//! PROTOCOL: HTTP, XML and SigV4. Never touches disk; calls the [`crate::engine`] API.
//!
//! A request goes through named steps, in order ([`handle`]): [`serve`] (request id, limits,
//! errors as S3 XML, metrics, one access-log line, a panic answered as InternalError) →
//! [`context`] (route → authenticate → authorize → verified body) → operation (`ops/`).
//!
//! The pieces the edge reuses as they are: [`serve`] and [`context`] (the same two steps, with
//! the edge's own [`context::FrontEnd`]), [`route`], [`auth`] (signatures, verified bodies),
//! [`body`] (a client's body under the slow-client limits, gathered against fragmentation),
//! [`linger`] (draining a body left unread), [`kept_alive`] (S3's answer to a long operation),
//! [`client_ip`] (who a request comes from, through trusted proxies), [`post`] (browser form
//! uploads: the form, its signature and policy, checked the same at both), [`headers`], [`xml`].

pub mod auth;
pub mod authorize;
pub mod body;
pub mod client_ip;
pub mod context;
pub mod cors;
mod engine_errors;
pub mod headers;
pub mod kept_alive;
pub mod linger;
pub mod ops;
pub mod post;
pub mod route;
pub mod serve;
pub mod xml;

use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use futures::StreamExt;
use http::{Method, StatusCode};

use crate::config::StoreConfig;
use crate::engine::{ByteStream, Engine};
use crate::error::{Code, Error, Result};
use crate::metrics::Metrics;
use auth::{Identity, Keyring, Trailers};
use context::{Access, FrontEnd, Settings};
use route::{Endpoint, Route};
pub use serve::{error_response, finish_response, request_id};

use std::sync::Arc;

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
    /// Who follows the change feed.
    pub feeds: crate::feed::subscribers::Subscribers,
}

/// One request after routing and authentication: what an operation works with (its
/// parameters come typed in its [`route::Endpoint`], see [`ops::dispatch`]).
pub struct Req {
    pub id: String,
    pub method: Method,
    pub headers: http::HeaderMap,
    /// `https` when the request came over TLS ([`context::scheme`]).
    pub scheme: &'static str,
    bucket: String,
    key: String,
    /// The authorisation decision.
    pub access: Access,
    /// The facts it was taken on, for an operation that asks again about other resources
    /// (each key of a DeleteObjects).
    pub facts: crate::access::Request,
    /// The verified, de-chunked body. Taken once by the operation that reads it. (In a Mutex
    /// only to make `Req` Sync, so handlers may hold `&Req` across awaits.)
    body: std::sync::Mutex<Option<ByteStream>>,
    pub trailers: Trailers,
}

impl Req {
    /// A form upload's file as a PutObject of `route` with `headers` (see [`post`]).
    fn upload(
        id: String,
        scheme: &'static str,
        facts: crate::access::Request,
        upload: post::Upload,
    ) -> (Req, post::Answer, Route) {
        let req = Req {
            id,
            scheme,
            facts,
            method: Method::PUT,
            headers: upload.headers,
            bucket: upload.route.bucket.clone(),
            key: upload.route.key.clone(),
            access: upload.access,
            body: std::sync::Mutex::new(Some(upload.file)),
            trailers: Trailers::default(),
        };
        (req, upload.answer, upload.route)
    }

    /// The request as an operation sees it, and the operation it asks for.
    fn new(s3: &S3, context: context::Context) -> (Req, Endpoint) {
        let facts = authorize::facts(s3, &context.parts, &context.route, &context.access);
        let (body, trailers) = context.body.into_stream();
        let Route {
            endpoint,
            bucket,
            key,
        } = context.route;
        let req = Req {
            id: context.id,
            scheme: context::scheme(&context.parts),
            method: context.parts.method,
            headers: context.parts.headers,
            bucket,
            key,
            access: context.access,
            facts,
            body: std::sync::Mutex::new(Some(body)),
            trailers,
        };
        (req, endpoint)
    }

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
    serve::serve(&*s3, request, async |parts, body, note| {
        let context = context::context(&*s3, parts, body, note).await?;
        if context.access == Access::Pending {
            // A form upload authenticates itself from its body (the request's parts in hand).
            return ops::post::post_object(&s3, context).await;
        }
        let (req, endpoint) = Req::new(&s3, context);
        ops::dispatch(&s3, req, endpoint).await
    })
    .await
}

impl FrontEnd for S3 {
    fn settings(&self) -> Settings<'_> {
        let config = &self.config;
        Settings {
            keyring: &self.keyring,
            region: &config.region,
            base_domain: config.base_domain.as_deref(),
            max_header_bytes: config.max_header_bytes,
            body_limits: body::BodyLimits::new(
                config.body_idle_timeout_secs,
                config.body_min_rate_bytes_per_sec,
                config.body_min_rate_window_secs,
            ),
            trusted_proxies: &config.trusted_proxies,
        }
    }

    fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The rules from the bucket's row, read per request (only requests with an Origin, and
    /// preflights, ask: a small document, parsed in microseconds).
    async fn cors(
        &self,
        parts: &http::request::Parts,
    ) -> Result<Option<Arc<cors::CorsConfiguration>>> {
        let base_domain = self.config.base_domain.as_deref();
        let (bucket, _) = route::target(host(parts), parts.uri.path(), base_domain)?;
        if bucket.is_empty() {
            return Ok(None);
        }
        let bucket = self.engine.bucket(&bucket).await?;
        let Some(document) = bucket.settings.cors else {
            return Ok(None);
        };
        let rules = cors::CorsConfiguration::parse(document.as_bytes())
            .map_err(|e| Error::internal(anyhow::anyhow!("stored CORS rules: {e}")))?;
        Ok(Some(Arc::new(rules)))
    }

    /// The one access decision ([`crate::access::decide`]), on the facts of the request.
    async fn authorize(
        &self,
        parts: &http::request::Parts,
        route: &Route,
        identity: &Identity,
    ) -> Result<Access> {
        authorize::authorize(self, parts, route, identity).await
    }
}

impl S3 {
    /// The index key that signed a request: None for the root key (and anonymous requests,
    /// which never reach the operations that ask); AccessDenied for a key deleted since it
    /// was authorised (never taken for the root key).
    pub fn signer(&self, access: &Access) -> Result<Option<Arc<crate::engine::keys::Key>>> {
        match access {
            Access::Signed(id) if !self.keyring.is_root(id) => {
                let keys = self.engine.keys();
                let key = keys.by_access_key(id).cloned();
                key.map(Some).ok_or_else(|| Error::new(Code::AccessDenied))
            }
            _ => Ok(None),
        }
    }
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

/// The host a request is addressed to (its Host header, or an absolute URI's).
pub fn host(parts: &http::request::Parts) -> Option<&str> {
    parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.host())
}

/// Routes a request (path-style, or virtual-hosted under `base_domain`) and checks the key
/// length.
pub fn route_request(parts: &http::request::Parts, base_domain: Option<&str>) -> Result<Route> {
    let host = host(parts);
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
    check_key(&route.key, route.endpoint.creates_key())?;
    Ok(route)
}

/// KeyTooLongError past [`MAX_KEY_LENGTH`]; InvalidArgument for a key to be `created` that
/// XML cannot carry.
pub fn check_key(key: &str, created: bool) -> Result<()> {
    if key.len() > MAX_KEY_LENGTH {
        return Err(Error::new(Code::KeyTooLongError));
    }
    // Listings name every key in XML, which cannot carry NUL and most other C0 controls:
    // such keys are refused when created rather than breaking every listing later.
    if created && !xml::can_carry(key) {
        return Err(Error::msg(
            Code::InvalidArgument,
            "Object keys may not contain control characters other than tab, line feed and carriage return.",
        ));
    }
    Ok(())
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
