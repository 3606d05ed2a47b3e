//! The edge's client toward its origin stores.
//!
//! ```text
//!  fetch (GET/HEAD)     for each origin in order that its circuit admits (failover.rs):
//!                         client headers ─► forwardable + Host ─► SigV4 (sign.rs) ─► pool (client.rs)
//!                         answer (not 5xx)             ─► returned
//!                         5xx, no connection, timeout  ─► recorded, next origin
//!  send (any method,    the first origin its circuit admits; the next one only when the
//!   streaming body)       connection failed before any of the body was read; no head within
//!                         `response_timeout` of the origin's turn ─► Timeout
//!  every answer's body  fails after `idle_timeout` without a byte (OriginBody)
//!  no descriptor left   OriginError::Local: the edge's shortage, no circuit touched, no failover
//! ```
//!
//! All origins of a group share one pooled HTTP/1.1 client (warm keep-alive connections,
//! `TCP_NODELAY`). Every request is signed anew with the edge's own key; the client's
//! credentials never travel. When every circuit is open the primary is tried anyway: refusing
//! outright helps no one.
//!
//! Files: `client.rs` (the pool, bodies), `sign.rs`, `failover.rs` (circuits), `error.rs` (why
//! no answer came, and what a client is told of it).

mod client;
mod error;
mod failover;
mod sign;
#[cfg(test)]
mod tests;
pub mod tls;

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::body::Body;
use http::{HeaderMap, HeaderValue, Method};

use failover::{Admission, Circuit, Fault, Transition};
// Also what `outpost key ...` signs its admin calls with and sends them through.
pub use sign::Signer;

/// How an origin group reaches and signs for its stores.
#[derive(Clone)]
pub struct OriginSettings {
    /// TLS toward `https://` origins ([`tls::client_config`]), shared by every group so that
    /// sessions are resumed across them.
    pub tls: Arc<rustls::ClientConfig>,
    /// Time allowed for a connection and a GET/HEAD response head before an origin counts as
    /// unreachable and the next one is tried. Requests with a body are bounded by it while
    /// connecting; their answer by `response_timeout`.
    pub timeout: Duration,
    /// How long a request with a body waits for the response head while it is the origin's turn:
    /// once the origin has the whole body, or while it takes none of it (time the client takes
    /// to send does not count). A write's answer may take as long as the write.
    pub response_timeout: Duration,
    /// Longest gap between body bytes of an origin's answer ([`OriginBody`]).
    pub idle_timeout: Duration,
    /// How long an origin whose circuit opened is skipped before one probe request is let
    /// through.
    pub retry_after: Duration,
    /// The edge's credentials at the origin: every request is signed with them.
    pub access_key_id: String,
    pub secret_access_key: String,
    /// The region the origin expects in signatures.
    pub region: String,
}

impl fmt::Debug for OriginSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OriginSettings")
            .field("timeout", &self.timeout)
            .field("response_timeout", &self.response_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("retry_after", &self.retry_after)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"** redacted **")
            .field("region", &self.region)
            .finish()
    }
}

/// A request for the origin, path-style.
#[derive(Debug, Clone)]
pub struct OriginRequest {
    pub method: Method,
    /// `/bucket/key?query`, percent-encoded exactly as it goes on the wire (and is signed).
    pub path_and_query: String,
    /// The client's end-to-end headers (range, conditionals, content-type, x-amz-meta-*,
    /// x-amz-checksum-*...). Per-hop headers, the client's authentication and `host` are
    /// dropped here; so is `content-length`, which [`OriginGroup::send`] takes separately.
    pub headers: HeaderMap,
    /// Sent unsigned, so the origin applies its anonymous-access rules.
    pub anonymous: bool,
    /// The body is framed aws-chunked with trailing headers (checksums), signed as
    /// `STREAMING-UNSIGNED-PAYLOAD-TRAILER`; otherwise as `UNSIGNED-PAYLOAD`.
    pub aws_chunked: bool,
}

/// An origin's answer, its body streaming from the origin connection (and failing when the
/// origin stalls).
pub type OriginResponse = http::Response<OriginBody>;
pub use client::{OriginBody, OriginBodyError, pool};
pub use error::{NoAnswer, OriginError, client_error};

/// An origin's answer for the edge's client, as it streams, without the origin's per-hop
/// headers.
pub fn to_client(response: OriginResponse) -> axum::response::Response {
    let (mut parts, body) = response.into_parts();
    for name in ["connection", "keep-alive", "transfer-encoding", "server"] {
        parts.headers.remove(name);
    }
    http::Response::from_parts(parts, Body::new(body))
}

/// The origin's path for an object: path-style, from the routed bucket and key, each encoded
/// once (S3's encoding, which the origin signs and checks), so the origin routes the very
/// resource the edge routed. (A routed bucket holds no byte that needs encoding; encoding it
/// anyway keeps that true here too.)
pub fn path(bucket: &str, key: &str, query: &str) -> String {
    use outpost_store::s3::auth::sigv4::uri_encode;
    let mut path = format!("/{}", uri_encode(bucket, false));
    if !key.is_empty() {
        path.push('/');
        path.push_str(&uri_encode(key, true));
    }
    if !query.is_empty() {
        path.push('?');
        path.push_str(query);
    }
    path
}

/// One origin's state, as `/_outpost/ready` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OriginState {
    /// Its place in the configured `origins` list (0: the primary).
    pub index: usize,
    /// A TCP connection to it succeeded just now.
    pub reachable: bool,
    /// Its circuit is open (recent failures; not tried first until it proves healthy).
    pub circuit_open: bool,
    /// Why the connection failed: `connection-refused`, `connect-failed`, `connect-timeout`.
    pub error: Option<&'static str>,
}

/// Called once per origin attempt with the answer's status (None: no answer) and the time to
/// its head (or to the failure).
pub type Observer = Arc<dyn Fn(Option<u16>, Duration) + Send + Sync>;

/// One origin group: the primary first, failovers after, one shared pooled client.
pub struct OriginGroup {
    origins: Vec<Origin>,
    pool: client::Pool,
    signer: Signer,
    timeout: Duration,
    response_timeout: Duration,
    idle_timeout: Duration,
    retry_after: Duration,
    observer: Option<Observer>,
    /// Entries from this group stored before this time (ms since the epoch, by the cache
    /// clock; 0: none) are revalidated before their next use: set when the change feed of
    /// one of its origins missed events (`feed.rs`).
    revalidate_before_ms: std::sync::atomic::AtomicU64,
}

struct Origin {
    /// `http(s)://host:port`, as in the configuration less any trailing `/`.
    url: String,
    /// `host:port`, the Host header sent and signed.
    host: HeaderValue,
    circuit: Mutex<Circuit>,
}

impl Origin {
    fn circuit(&self) -> std::sync::MutexGuard<'_, Circuit> {
        self.circuit.lock().expect("circuit lock")
    }
}

impl OriginGroup {
    /// A group over `urls` (`http(s)://host:port`, primary first). Errors on an empty list, a
    /// duplicate, a URL that is not `http(s)://authority` (no path, query or user info), or a
    /// zero timeout.
    pub fn new(urls: &[String], settings: OriginSettings) -> anyhow::Result<OriginGroup> {
        anyhow::ensure!(
            !urls.is_empty(),
            "an origin group needs at least one origin"
        );
        anyhow::ensure!(
            !settings.timeout.is_zero(),
            "the origin timeout must be more than zero"
        );
        let mut origins: Vec<Origin> = Vec::with_capacity(urls.len());
        for url in urls {
            let origin = parse_origin(url)?;
            anyhow::ensure!(
                origins.iter().all(|o| o.url != origin.url),
                "origin {url} is listed twice"
            );
            origins.push(origin);
        }
        Ok(OriginGroup {
            origins,
            pool: client::pool(settings.timeout, &settings.tls),
            signer: Signer::new(
                &settings.access_key_id,
                &settings.secret_access_key,
                &settings.region,
            ),
            timeout: settings.timeout,
            response_timeout: settings.response_timeout,
            idle_timeout: settings.idle_timeout,
            retry_after: settings.retry_after,
            observer: None,
            revalidate_before_ms: Default::default(),
        })
    }

    /// Reports every origin attempt to `observer` (metrics).
    pub fn with_observer(mut self, observer: Observer) -> OriginGroup {
        self.observer = Some(observer);
        self
    }

    /// GET or HEAD with failover. Tries the origins in order, skipping those whose circuit is
    /// open; a connection error, no response head within the timeout, or a 5xx answer (501
    /// aside) moves on to the next. Returns the first other answer; when all fail, the last 5xx
    /// answer if there was one, else [`OriginError::Unreachable`] with the last cause. A
    /// connection that breaks mid-request is retried once on the same origin (a pooled
    /// connection the origin closed as the request went out). Other methods: `Invalid`.
    pub async fn fetch(&self, req: &OriginRequest) -> Result<OriginResponse, OriginError> {
        if req.method != Method::GET && req.method != Method::HEAD {
            return Err(OriginError::Invalid(format!(
                "fetch repeats requests, so it takes GET and HEAD only, not {}",
                req.method
            )));
        }
        let headers = self.forwarded_headers(req, None);
        let mut last_answer = None;
        let mut last_cause = None;
        for attempt in self.attempts() {
            let origin = attempt.origin;
            let started = Instant::now();
            let deadline = tokio::time::Instant::now() + self.timeout;
            let mut result = self
                .send_by(deadline, self.build(origin, req, &headers, Body::empty())?)
                .await;
            if let Err(NoAnswer::Broken(_)) = result {
                result = self
                    .send_by(deadline, self.build(origin, req, &headers, Body::empty())?)
                    .await;
            }
            if let Err(NoAnswer::Local(why)) = result {
                // Every origin would fail alike; the attempt is dropped unsettled.
                return Err(OriginError::Local(why));
            }
            self.observe(&result, started);
            match result {
                Ok(response) if !failover::is_failure(response.status()) => {
                    attempt.succeeded();
                    return Ok(response);
                }
                Ok(response) => {
                    attempt.failed(Fault::Failing, &format!("answered {}", response.status()));
                    last_answer = Some(response);
                }
                Err(cause) => {
                    if let Some(fault) = cause.fault() {
                        attempt.failed(fault, &cause.to_string());
                    }
                    last_cause = Some((origin.url.clone(), cause));
                }
            }
        }
        match (last_answer, last_cause) {
            (Some(answer), _) => Ok(answer),
            (None, Some((origin, cause))) => Err(OriginError::Unreachable { origin, cause }),
            (None, None) => unreachable!("attempts() yields at least the primary"),
        }
    }

    /// Any method with a streaming body, to the first origin whose circuit is closed (the
    /// primary when all are open). A body cannot be replayed, so the answer is returned
    /// whatever it is, 5xx included; only a connection that could not be made, which read none
    /// of the body, moves the request on to the next origin. `content_length` is sent as
    /// `content-length` and must be the body's exact length; None sends it chunked. Bounded by
    /// the timeout while connecting only (see [`OriginSettings::timeout`]).
    pub async fn send(
        &self,
        req: OriginRequest,
        body: Body,
        content_length: Option<u64>,
    ) -> Result<OriginResponse, OriginError> {
        let headers = self.forwarded_headers(&req, content_length);
        let mut attempts = self.attempts();
        let mut body = Some(client::Resendable::new(body));
        let mut last_cause = None;
        while let Some(outgoing) = body.take() {
            let Some(attempt) = attempts.next() else {
                break;
            };
            let origin = attempt.origin;
            let request = self.build(origin, &req, &headers, outgoing.attempt())?;
            let started = Instant::now();
            let result = self.sent_head(request, &outgoing).await;
            if let Some(e) = outgoing.take_body_error() {
                // Says nothing about the origin: the attempt is dropped unsettled.
                return Err(OriginError::Body(e));
            }
            if let Err(NoAnswer::Local(why)) = result {
                return Err(OriginError::Local(why));
            }
            self.observe(&result, started);
            match result {
                Ok(response) => {
                    if failover::is_failure(response.status()) {
                        attempt.failed(Fault::Failing, &format!("answered {}", response.status()));
                    } else {
                        attempt.succeeded();
                    }
                    return Ok(response);
                }
                Err(cause) => {
                    if let Some(fault) = cause.fault() {
                        attempt.failed(fault, &cause.to_string());
                    }
                    if let NoAnswer::Connect(_) = cause {
                        body = outgoing.take_back();
                    }
                    last_cause = Some((origin.url.clone(), cause));
                }
            }
        }
        let (origin, cause) = last_cause.expect("attempts() yields at least the primary");
        Err(OriginError::Unreachable { origin, cause })
    }

    /// GET from the origin at `index` alone (no failover, no circuit, not observed): what
    /// the change feed's follower of that origin sends (`feed.rs`). Bounded by the timeout
    /// until the response head; its body by the idle timeout.
    pub async fn fetch_from(
        &self,
        index: usize,
        req: &OriginRequest,
    ) -> Result<OriginResponse, OriginError> {
        let origin = self
            .origins
            .get(index)
            .ok_or_else(|| OriginError::Invalid(format!("no origin {index}")))?;
        let headers = self.forwarded_headers(req, None);
        let deadline = tokio::time::Instant::now() + self.timeout;
        self.send_by(deadline, self.build(origin, req, &headers, Body::empty())?)
            .await
            .map_err(|cause| OriginError::Unreachable {
                origin: origin.url.clone(),
                cause,
            })
    }

    /// Marks every entry from this group stored before `at` as needing revalidation.
    pub fn revalidate_before(&self, at: SystemTime) {
        // Rounded up: an entry received in the same millisecond, before `at`, is marked too.
        let ms = at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64 + 1);
        self.revalidate_before_ms
            .fetch_max(ms, std::sync::atomic::Ordering::AcqRel);
    }

    /// Whether an entry from this group received at `received` must be revalidated first.
    pub fn must_revalidate(&self, received: SystemTime) -> bool {
        let mark = self
            .revalidate_before_ms
            .load(std::sync::atomic::Ordering::Acquire);
        mark > 0 && received < SystemTime::UNIX_EPOCH + Duration::from_millis(mark)
    }

    /// Each origin's URL and whether its circuit is open (failed, not yet proved healthy
    /// again), in order, primary first.
    pub fn health(&self) -> Vec<(String, bool)> {
        self.origins
            .iter()
            .map(|o| (o.url.clone(), o.circuit().is_open()))
            .collect()
    }

    /// Each origin's state now, primary first: a TCP connection is tried to each (bounded by
    /// the connect timeout), and its circuit read. Origins are named by their index in the
    /// configured list, never by address: the answer goes to whoever asks `/_outpost/ready`.
    pub async fn probe(&self) -> Vec<OriginState> {
        let probes = self
            .origins
            .iter()
            .enumerate()
            .map(|(index, o)| async move {
                let host = o.host.to_str().unwrap_or_default().to_owned();
                let connected =
                    tokio::time::timeout(self.timeout, tokio::net::TcpStream::connect(host)).await;
                let error = match connected {
                    Ok(Ok(_)) => None,
                    Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                        Some("connection-refused")
                    }
                    Ok(Err(_)) => Some("connect-failed"),
                    Err(_) => Some("connect-timeout"),
                };
                OriginState {
                    index,
                    reachable: error.is_none(),
                    circuit_open: o.circuit().is_open(),
                    error,
                }
            });
        futures::future::join_all(probes).await
    }

    /// The origins to try, in order, each admitted by its circuit only when reached; the
    /// primary regardless when none was admitted.
    fn attempts(&self) -> Attempts<'_> {
        Attempts {
            group: self,
            next: 0,
            admitted: false,
        }
    }

    fn forwarded_headers(&self, req: &OriginRequest, content_length: Option<u64>) -> HeaderMap {
        let mut headers = sign::forwardable(&req.headers);
        if let Some(n) = content_length {
            headers.insert(http::header::CONTENT_LENGTH, n.into());
        }
        headers
    }

    fn build(
        &self,
        origin: &Origin,
        req: &OriginRequest,
        headers: &HeaderMap,
        body: Body,
    ) -> Result<http::Request<Body>, OriginError> {
        if !req.path_and_query.starts_with('/') {
            return Err(OriginError::Invalid(format!(
                "the path {:?} does not start with '/'",
                req.path_and_query
            )));
        }
        let mut headers = headers.clone();
        headers.insert(http::header::HOST, origin.host.clone());
        if !req.anonymous {
            let payload = if req.aws_chunked {
                "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
            } else {
                "UNSIGNED-PAYLOAD"
            };
            self.signer
                .sign(
                    &req.method,
                    &req.path_and_query,
                    &mut headers,
                    payload,
                    SystemTime::now(),
                )
                .map_err(OriginError::Invalid)?;
        }
        let mut request = http::Request::builder()
            .method(req.method.clone())
            .uri(format!("{}{}", origin.url, req.path_and_query))
            .body(body)
            .map_err(|e| OriginError::Invalid(e.to_string()))?;
        *request.headers_mut() = headers;
        Ok(request)
    }

    /// Sends `request`, waiting for its response head until `deadline`.
    async fn send_by(
        &self,
        deadline: tokio::time::Instant,
        request: http::Request<Body>,
    ) -> Result<OriginResponse, NoAnswer> {
        match tokio::time::timeout_at(deadline, self.pool.request(request)).await {
            Ok(answer) => self.answer(answer),
            Err(_) => Err(NoAnswer::Timeout(self.timeout)),
        }
    }

    /// Sends `request` with its body, waiting for its response head up to `response_timeout` of
    /// the origin's turn (see [`client::Resendable::origins_turn_since`]).
    async fn sent_head(
        &self,
        request: http::Request<Body>,
        outgoing: &client::Resendable,
    ) -> Result<OriginResponse, NoAnswer> {
        let answer = self.pool.request(request);
        tokio::pin!(answer);
        loop {
            let since = outgoing.origins_turn_since();
            let wake = since.unwrap_or_else(tokio::time::Instant::now) + self.response_timeout;
            tokio::select! {
                answer = &mut answer => return self.answer(answer),
                () = tokio::time::sleep_until(wake) => {
                    if outgoing.origins_turn_since() == since && since.is_some() {
                        return Err(NoAnswer::Timeout(self.response_timeout));
                    }
                }
            }
        }
    }

    fn answer(
        &self,
        answer: Result<http::Response<hyper::body::Incoming>, hyper_util::client::legacy::Error>,
    ) -> Result<OriginResponse, NoAnswer> {
        match answer {
            Ok(response) => Ok(response.map(|body| OriginBody::new(body, self.idle_timeout))),
            Err(e) => Err(NoAnswer::of(&e)),
        }
    }

    fn observe(&self, result: &Result<OriginResponse, NoAnswer>, started: Instant) {
        if let Some(observer) = &self.observer {
            let status = result.as_ref().ok().map(|r| r.status().as_u16());
            observer(status, started.elapsed());
        }
    }

    /// One log line per circuit transition, never one per request.
    fn log(&self, origin: &Origin, transition: Option<Transition>, reason: &str) {
        match transition {
            Some(Transition::Opened) if self.origins.len() > 1 => tracing::warn!(
                origin = %origin.url,
                reason,
                retry_after = ?self.retry_after,
                "origin failing; requests fail over to the next origin"
            ),
            Some(Transition::Opened) => tracing::warn!(
                origin = %origin.url,
                reason,
                "origin failing, and it has no failover"
            ),
            Some(Transition::Recovered) => {
                tracing::info!(origin = %origin.url, "origin answers again");
            }
            None => {}
        }
    }
}

fn parse_origin(url: &str) -> anyhow::Result<Origin> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| anyhow::anyhow!("origin {url:?} is not a URL: {e}"))?;
    anyhow::ensure!(
        matches!(uri.scheme_str(), Some("http" | "https")),
        "origin {url}: an origin is an http:// or https:// URL"
    );
    let authority = uri
        .authority()
        .ok_or_else(|| anyhow::anyhow!("origin {url} has no host"))?;
    anyhow::ensure!(
        !authority.as_str().contains('@'),
        "origin {url}: credentials go in the edge's configuration, not in the URL"
    );
    anyhow::ensure!(
        matches!(uri.path(), "" | "/") && uri.query().is_none(),
        "origin {url}: an origin is a host and port; buckets come from the request path"
    );
    let scheme = uri.scheme_str().unwrap_or("http");
    Ok(Origin {
        url: format!("{scheme}://{authority}"),
        host: HeaderValue::from_str(authority.as_str())?,
        circuit: Mutex::new(Circuit::default()),
    })
}

/// See [`OriginGroup::attempts`].
struct Attempts<'g> {
    group: &'g OriginGroup,
    next: usize,
    admitted: bool,
}

impl<'g> Iterator for Attempts<'g> {
    type Item = Attempt<'g>;

    fn next(&mut self) -> Option<Attempt<'g>> {
        let group = self.group;
        while let Some(origin) = group.origins.get(self.next) {
            self.next += 1;
            match origin.circuit().admit(Instant::now(), group.timeout) {
                Admission::Pass => {}
                Admission::Probe => {
                    tracing::debug!(origin = %origin.url, "probing an origin whose circuit is open");
                }
                Admission::Refuse => continue,
            }
            self.admitted = true;
            return Some(Attempt::new(group, origin));
        }
        if self.admitted {
            return None;
        }
        self.admitted = true;
        Some(Attempt::new(group, &group.origins[0]))
    }
}

/// One request on one origin. Reports its outcome to the origin's circuit once; dropped
/// unsettled (the caller went away, the client's body failed), it tells the circuit nothing
/// but frees the probe it may hold.
struct Attempt<'g> {
    group: &'g OriginGroup,
    origin: &'g Origin,
    settled: bool,
}

impl<'g> Attempt<'g> {
    fn new(group: &'g OriginGroup, origin: &'g Origin) -> Attempt<'g> {
        Attempt {
            group,
            origin,
            settled: false,
        }
    }

    fn succeeded(mut self) {
        self.settled = true;
        let transition = self.origin.circuit().succeeded();
        self.group.log(self.origin, transition, "");
    }

    fn failed(mut self, fault: Fault, reason: &str) {
        self.settled = true;
        let transition =
            self.origin
                .circuit()
                .failed(fault, Instant::now(), self.group.retry_after);
        self.group.log(self.origin, transition, reason);
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.origin.circuit().abandoned(Instant::now());
        }
    }
}
