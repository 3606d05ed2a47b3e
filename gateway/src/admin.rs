//! The admin endpoints (`/_outpost/health`, `/_outpost/metrics`, `POST /_outpost/invalidations`,
//! `POST /_outpost/notifications` in [`crate::notifications`])
//! and the edge's router and accept loop: everything else goes to the request pipeline.

use std::future::Future;
use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use outpost_store::error::{Code, Error};
use outpost_store::s3::auth::{self, AuthParams, Identity};
use outpost_store::server::{self, ConnLimits};
use serde::Deserialize;

use crate::edge::Edge;
use crate::viewer;

/// Largest admin request body.
const MAX_ADMIN_BODY: usize = 1 << 20;

impl Edge {
    pub fn router(self: &Arc<Self>) -> axum::Router {
        axum::Router::new()
            .route("/_outpost/health", get(|| async { "ok\n" }))
            .route("/_outpost/ready", get(ready))
            .route("/_outpost/metrics", get(metrics))
            .route("/_outpost/invalidations", post(invalidate))
            .route("/_outpost/notifications", post(notifications))
            .route("/_outpost/test/clock", post(advance_clock))
            .fallback(requests)
            .with_state(Arc::clone(self))
    }

    pub async fn serve(
        self: Arc<Self>,
        listeners: Vec<server::Listener>,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let config = &self.config;
        let limits = ConnLimits::new(
            config.header_read_timeout_secs,
            config.max_header_bytes,
            config.max_connections,
            config.max_connections_per_ip,
        );
        // The first document before the first client, if the store answers soon; the poll
        // goes on for as long as the edge serves. Following the origins' change feeds too,
        // caught up with what changed while the edge was down (if it kept entries) meanwhile.
        let feeds = async {
            match config.feed {
                true => Some(crate::feed::start(Arc::clone(&self)).await),
                false => None,
            }
        };
        let (poll, feeds) = tokio::join!(self.poller.start(FIRST_POLL), feeds);
        let served = server::serve(
            listeners,
            self.router(),
            limits,
            self.metrics.requests.tls_handshakes(),
            shutdown,
        )
        .await;
        poll.abort();
        if let Some(feeds) = feeds {
            feeds.abort();
        }
        served
    }
}

/// How long the edge waits for the store's access document before it starts serving.
const FIRST_POLL: std::time::Duration = std::time::Duration::from_secs(3);

async fn metrics(State(edge): State<Arc<Edge>>) -> impl axum::response::IntoResponse {
    (
        [(
            http::header::CONTENT_TYPE,
            outpost_store::metrics::CONTENT_TYPE,
        )],
        edge.metrics.render(&edge.cache),
    )
}

/// Readiness (`/_outpost/health` is liveness): 200 when at least one origin of the S3 face
/// takes connections, 503 when none does; the body lists each origin by index.
async fn ready(State(edge): State<Arc<Edge>>) -> axum::response::Response {
    let origins = edge.origins.probe().await;
    let ready = origins.iter().any(|o| o.reachable);
    let status = if ready {
        http::StatusCode::OK
    } else {
        http::StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({ "ready": ready, "origins": origins });
    (
        status,
        [(http::header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// `{"paths": ["/bucket/key", "/bucket/images/*"]}`.
#[derive(Deserialize)]
struct InvalidationRequest {
    paths: Vec<String>,
}

/// Drops matching entries at once (fills in flight included). Signed with the edge's key
/// (SigV4, service `s3`), as any S3 request: `curl --aws-sigv4 aws:amz:REGION:s3 ...`.
async fn invalidate(
    State(edge): State<Arc<Edge>>,
    request: axum::extract::Request,
) -> axum::response::Response {
    admin(&edge, request, |edge, _, body| {
        let request: InvalidationRequest = serde_json::from_slice(body).map_err(|e| {
            Error::msg(
                Code::InvalidArgument,
                format!("Expected {{\"paths\": [...]}}: {e}"),
            )
        })?;
        edge.cache.invalidate(&request.paths);
        tracing::info!(paths = ?request.paths, "invalidated");
        Ok(serde_json::json!({ "status": "Completed", "paths": request.paths }))
    })
    .await
}

/// Every request that is not an `/_outpost/` endpoint: the pipeline, with HSTS on a
/// distribution's answers over https ([`viewer`]).
async fn requests(
    State(edge): State<Arc<Edge>>,
    request: axum::extract::Request,
) -> axum::response::Response {
    let hsts = viewer::hsts(&edge, &request);
    let mut response = crate::pipeline::handle(State(edge), request).await;
    if let Some(hsts) = hsts {
        let headers = response.headers_mut();
        headers.insert(http::header::STRICT_TRANSPORT_SECURITY, hsts);
    }
    response
}

/// S3 event notifications from an origin with no change feed ([`crate::notifications`]).
async fn notifications(
    State(edge): State<Arc<Edge>>,
    request: axum::extract::Request,
) -> axum::response::Response {
    let id = outpost_store::s3::request_id();
    let (parts, body) = request.into_parts();
    let result = crate::notifications::receive(&edge, &parts, body).await;
    answer(&parts, &id, http::StatusCode::OK, result)
}

/// Test support (`test_clock = true` only): moves the cache clock forward.
async fn advance_clock(
    State(edge): State<Arc<Edge>>,
    request: axum::extract::Request,
) -> axum::response::Response {
    admin(&edge, request, |edge, parts, _| {
        let secs: u64 = parts
            .uri
            .query()
            .and_then(|q| q.strip_prefix("advance="))
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| Error::msg(Code::InvalidArgument, "expected ?advance=SECONDS"))?;
        if !edge.config.test_clock {
            return Err(Error::new(Code::AccessDenied));
        }
        edge.cache.clock.advance(secs);
        Ok(serde_json::json!({ "advanced": secs }))
    })
    .await
}

/// An admin request: signed with the edge's key, a small JSON body, a JSON answer (201).
async fn admin(
    edge: &Arc<Edge>,
    request: axum::extract::Request,
    action: impl FnOnce(&Edge, &http::request::Parts, &[u8]) -> Result<serde_json::Value, Error>,
) -> axum::response::Response {
    let id = outpost_store::s3::request_id();
    let (parts, body) = request.into_parts();
    let result = async {
        let authenticated = auth::authenticate(
            &parts,
            &AuthParams {
                keyring: &edge.keyring,
                region: &edge.config.region,
                bucket: "",
                now: SystemTime::now(),
                max_skew: outpost_store::s3::MAX_CLOCK_SKEW,
            },
        )?;
        // The edge's own key only: the keyring also knows its clients' keys (the store
        // publishes them), which may use the S3 face but not administer the edge.
        match &authenticated.identity {
            Identity::Key(id) if edge.keyring.is_root(id) => {}
            _ => return Err(Error::new(Code::AccessDenied)),
        }
        let bytes = axum::body::to_bytes(body, MAX_ADMIN_BODY)
            .await
            .map_err(|_| Error::new(Code::EntityTooLarge))?;
        let raw = futures::stream::iter([Ok(bytes)]);
        let (verified, _) = auth::verified_body(Box::pin(raw), authenticated.payload);
        let pieces: Vec<bytes::Bytes> = futures::TryStreamExt::try_collect(verified).await?;
        action(edge, &parts, &pieces.concat())
    }
    .await;
    answer(&parts, &id, http::StatusCode::CREATED, result)
}

/// An admin request's answer: `status` with the JSON `result` (its `id` the request id), or
/// the S3 error document.
fn answer(
    parts: &http::request::Parts,
    id: &str,
    status: http::StatusCode,
    result: Result<serde_json::Value, Error>,
) -> axum::response::Response {
    let mut response = match result {
        Ok(mut answer) => {
            answer["id"] = serde_json::Value::String(id.to_owned());
            (
                status,
                [(http::header::CONTENT_TYPE, "application/json")],
                answer.to_string(),
            )
                .into_response()
        }
        Err(e) => outpost_store::s3::error_response(&e, parts.uri.path(), id, false),
    };
    let asked = outpost_store::s3::serve::Asked::of(parts);
    outpost_store::s3::finish_response(&mut response, id, asked);
    response
}
