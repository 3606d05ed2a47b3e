//! The wrapper both front ends answer through ([`serve`]): a request id, the header-size
//! limit, a panicking handler answered as `500 InternalError` (one request lost, not the
//! connection), errors as S3 XML, [`finish_response`], request metrics, and one access-log line
//! (target `outpost::access`) written when the response body is done with, so it counts the
//! bytes that really went out and the time to the last of them.

use std::net::IpAddr;
use std::time::Instant;

use axum::body::Body;
use futures::FutureExt;
use http::{HeaderValue, Method, StatusCode};

use super::Response;
use super::context::FrontEnd;
pub use super::context::Note;
use super::cors::{Preflight, PreflightRequest};
use crate::error::{Code, Error, Result};

/// HTTP/2 names the host in the URI's authority (`:authority`), not in a Host header (RFC 9113
/// §8.3.1); signatures, routing and the edge read the Host header, as HTTP/1.1 sends it, so
/// it is filled from the authority when absent. Clients sign `host` with that same value.
fn host_from_authority(parts: &mut http::request::Parts) {
    if parts.headers.contains_key(http::header::HOST) {
        return;
    }
    let host = parts.uri.authority().map(|a| a.as_str());
    if let Some(value) = host.and_then(|h| http::HeaderValue::from_str(h).ok()) {
        parts.headers.insert(http::header::HOST, value);
    }
}

/// Answers `request` with `handler`'s response or error. The handler gets the request's head
/// and body (lingering: a body left unread is drained before the connection closes).
pub async fn serve<F: FrontEnd>(
    front: &F,
    request: axum::extract::Request,
    handler: impl AsyncFnOnce(http::request::Parts, Body, &mut Note) -> Result<Response>,
) -> Response {
    let started = Instant::now();
    let (mut parts, body) = request.into_parts();
    host_from_authority(&mut parts);
    let body = super::linger::lingering(body);
    let settings = front.settings();
    let asked = Asked::of(&parts);
    let mut note = Note {
        request_id: request_id(),
        operation: "Unknown",
        cache: None,
    };
    // Nothing of the line is gathered when the access log is off (the default): a cache hit
    // should not pay for copying six header values it will never write.
    let line = tracing::enabled!(target: "outpost::access", tracing::Level::INFO)
        .then(|| AccessLine::of(&parts, settings.trusted_proxies, started));
    let uri = parts.uri.clone();
    let max_header_bytes = settings.max_header_bytes;
    let base_domain = settings.base_domain;
    let mut cors = None;
    let result = async {
        super::check_header_size(&parts.headers, max_header_bytes)?;
        if let Some((operation, answer)) = front.refusal(&parts) {
            note.operation(operation);
            return answer;
        }
        if parts.method == Method::OPTIONS {
            note.operation("PreflightRequest");
            return preflight(front, &parts, base_domain).await;
        }
        cors = cors_headers(front, &parts).await;
        handler(parts, body, &mut note).await
    };
    // A bug in one handler must cost one request an InternalError, not the connection.
    let result = std::panic::AssertUnwindSafe(result)
        .catch_unwind()
        .await
        .unwrap_or_else(|_| Err(Error::internal(anyhow::anyhow!("request handler panicked"))));
    let mut response = match result {
        Ok(response) => response,
        Err(e) => error_response(&e, uri.path(), &note.request_id, asked.is_head),
    };
    if let Some(cors) = cors {
        super::cors::apply(response.headers_mut(), cors);
    }
    let declared = finish_response(&mut response, &note.request_id, asked);
    let status = response.status().as_u16();
    let head = started.elapsed();
    front
        .metrics()
        .observe(note.operation, status, head, declared);
    let Some(mut line) = line else {
        return response;
    };
    // The id the client got: an answer relayed from an origin keeps the origin's, so one id
    // finds the request in the client's report, this log and the origin's.
    line.request_id = response
        .headers()
        .get("x-amz-request-id")
        .and_then(|v| v.to_str().ok())
        .map_or(note.request_id, str::to_owned);
    line.operation = note.operation;
    line.status = status;
    line.cache = note.cache;
    line.head_ms = head.as_secs_f64() * 1e3;
    response.map(|body| {
        Body::new(Logged {
            body,
            sent: 0,
            line: Some(line),
        })
    })
}

/// A preflight (`OPTIONS`), answered by the rules of the bucket it is about before any
/// authentication, as S3 does: a browser sends it without credentials.
async fn preflight<F: FrontEnd>(
    front: &F,
    parts: &http::request::Parts,
    base_domain: Option<&str>,
) -> Result<Response> {
    let asked = match PreflightRequest::of(&parts.headers) {
        Ok(asked) => asked,
        Err(bad) => return unanswerable(front, parts, bad).await,
    };
    let object = super::route::target(super::host(parts), parts.uri.path(), base_domain)
        .is_ok_and(|(_, key)| !key.is_empty());
    let answer = match front.preflight(parts, &asked).await {
        Err(e) if e.code == Code::NoSuchBucket => Preflight::NoSuchBucket,
        answer => answer?,
    };
    answer.into_response(&asked, object)
}

/// A preflight with an Origin but no method (or header) a rule could allow: S3 says first
/// that there are no rules to ask, or no bucket (403, naming the method asked, `OPTIONS` when
/// none was); `bad` (400) when there are rules.
async fn unanswerable<F: FrontEnd>(
    front: &F,
    parts: &http::request::Parts,
    bad: Error,
) -> Result<Response> {
    let text = |name| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let Some(origin) = text(http::header::ORIGIN).filter(|o| !o.is_empty()) else {
        return Err(bad);
    };
    let answer = match front.cors(parts).await {
        Ok(None) => Preflight::NotEnabled,
        Err(e) if e.code == Code::NoSuchBucket => Preflight::NoSuchBucket,
        _ => return Err(bad),
    };
    let method = text(http::header::ACCESS_CONTROL_REQUEST_METHOD).unwrap_or("OPTIONS");
    let asked = PreflightRequest {
        origin: origin.to_owned(),
        method: method.to_owned(),
        headers: Vec::new(),
    };
    answer.into_response(&asked, false)
}

/// The `Access-Control-*` headers of the answer to a request with an Origin, from the rules
/// of its bucket; none without rules. Worked out per request, so no answer (a cached one at
/// the edge) carries headers meant for another Origin.
///
/// A GET or HEAD without an Origin gets `Vary` alone when the bucket has rules (S3 adds
/// nothing): a browser keeps such an answer (an `<img>`, a no-cors fetch) and would otherwise
/// hand it, without `Access-Control-Allow-Origin`, to a later CORS request for the same URL,
/// which it then blocks.
async fn cors_headers<F: FrontEnd>(
    front: &F,
    parts: &http::request::Parts,
) -> Option<http::HeaderMap> {
    let origin = match parts.headers.get(http::header::ORIGIN) {
        Some(origin) => Some(origin.to_str().ok()?),
        None if front.vary_without_origin()
            && matches!(parts.method, Method::GET | Method::HEAD) =>
        {
            None
        }
        None => return None,
    };
    let rules = match front.cors(parts).await {
        Ok(rules) => rules?,
        Err(e) => {
            tracing::debug!(error = ?e, "no CORS rules for the response");
            return None;
        }
    };
    Some(match origin {
        Some(origin) => rules.response_headers(origin, &parts.method),
        None => super::cors::vary(),
    })
}

/// What [`finish_response`] needs to know of the request.
#[derive(Clone, Copy)]
pub struct Asked {
    pub is_head: bool,
    /// The request came with a body (chunked, or a non-zero Content-Length).
    pub had_body: bool,
}

impl Asked {
    pub fn of(request: &http::request::Parts) -> Asked {
        Asked {
            is_head: request.method == Method::HEAD,
            had_body: request
                .headers
                .contains_key(http::header::TRANSFER_ENCODING)
                || request
                    .headers
                    .get(http::header::CONTENT_LENGTH)
                    .is_some_and(|v| v.as_bytes() != b"0"),
        }
    }
}

/// Adds `x-amz-request-id` (unless the answer already names the request it comes from) and
/// `Server`; returns the body bytes the response will send, for metrics.
///
/// An error to a request that came with a body may leave that body unread (refused before
/// reading it): the connection then closes, or a client reusing it would send its next
/// request into the rest of this body.
pub fn finish_response(response: &mut Response, request_id: &str, asked: Asked) -> u64 {
    let failed = response.status().is_client_error() || response.status().is_server_error();
    if asked.had_body && failed {
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
        .filter(|_| !asked.is_head)
        .unwrap_or(0)
}

pub fn request_id() -> String {
    format!("{:016X}", rand::random::<u64>())
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

/// One access-log line: the fields of a CloudFront standard log line that a front end knows.
/// The query goes without its signature parameters (a presigned URL is a bearer token until
/// it expires).
struct AccessLine {
    request_id: String,
    /// The client: the peer, or who trusted proxies say it is (`-` when unknown).
    client: Option<IpAddr>,
    /// The TCP peer (`ip:port`).
    peer: Option<std::net::SocketAddr>,
    host: String,
    method: Method,
    path: String,
    query: String,
    operation: &'static str,
    status: u16,
    cache: Option<(&'static str, Option<&'static str>)>,
    range: String,
    referer: String,
    user_agent: String,
    started: Instant,
    /// Time to the response head, in milliseconds.
    head_ms: f64,
}

impl AccessLine {
    fn of(
        parts: &http::request::Parts,
        trusted: &[super::client_ip::IpNet],
        started: Instant,
    ) -> AccessLine {
        let header = |name| {
            parts
                .headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .unwrap_or("-")
                .to_owned()
        };
        AccessLine {
            request_id: String::new(),
            client: super::context::client(parts, trusted),
            peer: super::context::peer(parts),
            host: header(http::header::HOST),
            method: parts.method.clone(),
            path: parts.uri.path().to_owned(),
            query: super::auth::without_auth_params(parts.uri.query()),
            operation: "Unknown",
            status: 0,
            cache: None,
            range: header(http::header::RANGE),
            referer: header(http::header::REFERER),
            user_agent: header(http::header::USER_AGENT),
            started,
            head_ms: 0.0,
        }
    }

    fn write(self, bytes_sent: u64) {
        let shown = |v: Option<String>| v.unwrap_or_else(|| "-".into());
        let (cache, cache_reason) = match self.cache {
            Some((outcome, reason)) => (outcome, reason.unwrap_or("-")),
            None => ("-", "-"),
        };
        tracing::info!(
            target: "outpost::access",
            request_id = %self.request_id,
            client = %shown(self.client.map(|c| c.to_string())),
            peer = %shown(self.peer.map(|p| p.to_string())),
            host = self.host, method = %self.method, path = %self.path, query = %self.query,
            operation = self.operation, status = self.status, cache, cache_reason, bytes_sent,
            ms_head = self.head_ms, ms = self.started.elapsed().as_secs_f64() * 1e3,
            range = self.range, referer = self.referer, user_agent = self.user_agent,
        );
    }
}

/// A response body that writes its access line once dropped (sent whole, or cut off).
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
    ) -> std::task::Poll<Option<std::result::Result<http_body::Frame<bytes::Bytes>, axum::Error>>>
    {
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::metrics::Metrics;
    use crate::s3::auth::{Identity, Keyring};
    use crate::s3::body::BodyLimits;
    use crate::s3::context::{Access, Settings};
    use crate::s3::route::Route;

    struct Front {
        keyring: Keyring,
        metrics: Metrics,
    }

    impl FrontEnd for Front {
        fn settings(&self) -> Settings<'_> {
            Settings {
                keyring: &self.keyring,
                region: "us-east-1",
                base_domain: None,
                max_header_bytes: 16 << 10,
                body_limits: BodyLimits::new(60, 0, 10),
                trusted_proxies: &[],
            }
        }

        fn metrics(&self) -> &Metrics {
            &self.metrics
        }

        async fn authorize(
            &self,
            _: &http::request::Parts,
            _: &Route,
            _: &Identity,
        ) -> Result<Access> {
            Err(Error::new(Code::AccessDenied))
        }

        async fn cors(
            &self,
            _: &http::request::Parts,
        ) -> Result<Option<Arc<crate::s3::cors::CorsConfiguration>>> {
            Ok(None)
        }
    }

    /// `/boom` panics in its handler, anything else answers `fine`.
    async fn handler(
        axum::extract::State(front): axum::extract::State<Arc<Front>>,
        request: axum::extract::Request,
    ) -> Response {
        serve(&*front, request, async |parts, _, note| {
            note.operation("Test");
            if parts.uri.path() == "/boom" {
                panic!("a bug in a handler");
            }
            Ok(http::Response::new(Body::from("fine")))
        })
        .await
    }

    /// Reads one response of `Content-Length` framing off `stream`.
    async fn response(stream: &mut tokio::net::TcpStream) -> String {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let text = String::from_utf8_lossy(&got).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length: ")
                            .map(str::to_owned)
                    })
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if body.len() >= length {
                    return text;
                }
            }
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "connection closed after {text:?}");
            got.extend_from_slice(&buf[..n]);
        }
    }

    /// A panicking handler costs its request a 500 InternalError (S3 XML, request id), and the
    /// connection goes on serving: over real TCP, through the accept loop both front ends use.
    #[tokio::test]
    async fn a_panicking_handler_is_answered_as_internal_error() {
        let front = Arc::new(Front {
            keyring: Keyring::new([]),
            metrics: Metrics::new("test"),
        });
        let router = axum::Router::new()
            .fallback(handler)
            .with_state(Arc::clone(&front));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let limits = crate::server::ConnLimits::new(30, 16 << 10, Some(64), 64);
        let server = tokio::spawn(crate::server::serve(
            vec![crate::server::Listener::plain(listener)],
            router,
            limits,
            Default::default(),
            async {
                let _ = stopped.await;
            },
        ));
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET /boom HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let boom = response(&mut stream).await;
        assert!(boom.starts_with("HTTP/1.1 500"), "{boom}");
        assert!(boom.contains("<Code>InternalError</Code>"), "{boom}");
        assert!(!boom.contains("a bug in a handler"), "{boom}");
        assert!(
            boom.to_ascii_lowercase().contains("x-amz-request-id: "),
            "{boom}"
        );
        stream
            .write_all(b"GET /fine HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let fine = response(&mut stream).await;
        assert!(
            fine.starts_with("HTTP/1.1 200") && fine.ends_with("fine"),
            "{fine}"
        );
        let page = front.metrics.render();
        assert!(
            page.contains(r#"test_requests_total{operation="Test",status="500"} 1"#),
            "{page}"
        );
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    }
}
