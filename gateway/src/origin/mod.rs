//! The edge's client toward its origin stores: one pooled HTTP/1.1 client (warm keep-alive
//! connections, TCP_NODELAY), every request re-signed with SigV4 (`sign`), GET/HEAD failing
//! over along the origin group with a circuit per origin (`circuit`).

mod circuit;
mod sign;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use circuit::Circuit;

/// How long an idle pooled connection is kept (long-haul connections are worth keeping).
const POOL_IDLE: Duration = Duration::from_secs(90);

pub struct OriginSettings {
    /// Time allowed for a connection and a response head before an origin counts as failed.
    pub timeout: Duration,
    /// How long a failed origin is skipped before one probe request is let through.
    pub retry_after: Duration,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub region: String,
}

/// A request for the origin, path-style.
#[derive(Debug, Clone)]
pub struct OriginRequest {
    pub method: http::Method,
    /// `/bucket/key?query`, percent-encoded as it goes on the wire.
    pub path_and_query: String,
    /// End-to-end headers to forward; hop-by-hop and authentication headers are dropped here.
    pub headers: http::HeaderMap,
    /// Sent unsigned, so the origin applies its anonymous-access rules.
    pub anonymous: bool,
}

pub type OriginResponse = http::Response<hyper::body::Incoming>;

#[derive(thiserror::Error, Debug)]
pub enum OriginError {
    #[error("no origin answered: {0}")]
    Unreachable(String),
    #[error("could not build the origin request: {0}")]
    Invalid(String),
}

/// Called with each origin answer's status (None: no answer) and time to its head.
pub type Observer = Arc<dyn Fn(Option<u16>, Duration) + Send + Sync>;

/// Origins in order of preference, sharing one connection pool.
pub struct OriginGroup {
    origins: Vec<Origin>,
    client: Client<HttpConnector, Body>,
    settings: OriginSettings,
    observer: Option<Observer>,
}

struct Origin {
    /// `http://host:port`
    base: String,
    authority: String,
    circuit: Mutex<Circuit>,
}

impl OriginGroup {
    pub fn new(urls: &[String], settings: OriginSettings) -> anyhow::Result<OriginGroup> {
        anyhow::ensure!(
            !urls.is_empty(),
            "an origin group needs at least one origin"
        );
        let origins = urls
            .iter()
            .map(|url| {
                let uri: http::Uri = url.parse()?;
                anyhow::ensure!(
                    uri.scheme_str() == Some("http"),
                    "origin {url}: only http:// origins are supported"
                );
                let authority = uri
                    .authority()
                    .ok_or_else(|| anyhow::anyhow!("origin {url} has no host"))?
                    .to_string();
                Ok(Origin {
                    base: format!("http://{authority}"),
                    authority,
                    circuit: Mutex::new(Circuit::default()),
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut connector = HttpConnector::new();
        // Delayed-ACK interplay stalls small requests by ~40 ms without this (DESIGN.md).
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(settings.timeout));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE)
            .build(connector);
        Ok(OriginGroup {
            origins,
            client,
            settings,
            observer: None,
        })
    }

    pub fn with_observer(mut self, observer: Observer) -> OriginGroup {
        self.observer = Some(observer);
        self
    }

    /// GET/HEAD with failover: origins in order, skipping those whose circuit is open; a
    /// connection error, a timeout before the response head or a 5xx moves on to the next.
    /// Returns the first answer below 500; if all fail, the last 5xx if there was one.
    /// When every circuit is open the primary is tried anyway: refusing outright helps no one.
    pub async fn fetch(&self, req: &OriginRequest) -> Result<OriginResponse, OriginError> {
        let now = Instant::now();
        let mut candidates: Vec<&Origin> = self
            .origins
            .iter()
            .filter(|o| o.circuit.lock().expect("circuit lock").allow(now))
            .collect();
        if candidates.is_empty() {
            candidates.push(&self.origins[0]);
        }
        let mut last_error = String::new();
        let mut last_5xx = None;
        for origin in candidates {
            let request = self.build(origin, req, Body::empty(), None)?;
            let started = Instant::now();
            let answer =
                tokio::time::timeout(self.settings.timeout, self.client.request(request)).await;
            let failure = match answer {
                Ok(Ok(response)) if response.status().is_server_error() => {
                    last_error = format!("{} answered {}", origin.base, response.status());
                    self.observe(Some(response.status().as_u16()), started);
                    last_5xx = Some(response);
                    last_error.clone()
                }
                Ok(Ok(response)) => {
                    self.observe(Some(response.status().as_u16()), started);
                    self.record(origin, true);
                    return Ok(response);
                }
                Ok(Err(e)) => format!("{}: {e}", origin.base),
                Err(_) => format!(
                    "{}: no response within {:?}",
                    origin.base, self.settings.timeout
                ),
            };
            if last_5xx.is_none() {
                self.observe(None, started);
            }
            self.record(origin, false);
            last_error = failure;
        }
        last_5xx.ok_or(OriginError::Unreachable(last_error))
    }

    /// Any request with a streaming body, to the first origin whose circuit is closed. A body
    /// cannot be replayed, so there is no failover once it is sent.
    pub async fn relay(
        &self,
        req: OriginRequest,
        body: Body,
        content_length: Option<u64>,
    ) -> Result<OriginResponse, OriginError> {
        let now = Instant::now();
        let origin = self
            .origins
            .iter()
            .find(|o| o.circuit.lock().expect("circuit lock").allow(now))
            .unwrap_or(&self.origins[0]);
        let request = self.build(origin, &req, body, content_length)?;
        let started = Instant::now();
        match self.client.request(request).await {
            Ok(response) => {
                self.observe(Some(response.status().as_u16()), started);
                self.record(origin, !response.status().is_server_error());
                Ok(response)
            }
            Err(e) => {
                self.observe(None, started);
                self.record(origin, false);
                Err(OriginError::Unreachable(format!("{}: {e}", origin.base)))
            }
        }
    }

    /// (origin, circuit open?) for each origin.
    pub fn health(&self) -> Vec<(String, bool)> {
        let now = Instant::now();
        self.origins
            .iter()
            .map(|o| {
                (
                    o.base.clone(),
                    o.circuit.lock().expect("circuit lock").is_open(now),
                )
            })
            .collect()
    }

    fn build(
        &self,
        origin: &Origin,
        req: &OriginRequest,
        body: Body,
        content_length: Option<u64>,
    ) -> Result<http::Request<Body>, OriginError> {
        let mut headers = sign::forwardable(&req.headers);
        headers.insert(
            http::header::HOST,
            http::HeaderValue::from_str(&origin.authority)
                .map_err(|e| OriginError::Invalid(e.to_string()))?,
        );
        if let Some(n) = content_length {
            headers.insert(http::header::CONTENT_LENGTH, n.into());
        }
        let uri = format!("{}{}", origin.base, req.path_and_query);
        let mut request = http::Request::builder()
            .method(req.method.clone())
            .uri(&uri)
            .body(body)
            .map_err(|e| OriginError::Invalid(e.to_string()))?;
        *request.headers_mut() = headers;
        if !req.anonymous {
            sign::sign(&mut request, &uri, &self.settings)?;
        }
        Ok(request)
    }

    fn record(&self, origin: &Origin, ok: bool) {
        let now = Instant::now();
        let mut circuit = origin.circuit.lock().expect("circuit lock");
        let was_open = circuit.is_open(now);
        circuit.record(ok, now, self.settings.retry_after);
        // One log line per transition, not per request; a lone origin has nowhere to fail over.
        if ok && was_open {
            tracing::info!(origin = %origin.base, "origin is back");
        } else if !ok && !was_open && self.origins.len() > 1 {
            tracing::warn!(origin = %origin.base, "origin failed; failing over");
        }
    }

    fn observe(&self, status: Option<u16>, started: Instant) {
        if let Some(observer) = &self.observer {
            observer(status, started.elapsed());
        }
    }
}
