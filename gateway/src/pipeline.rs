//! The request path, as named steps in order, through the protocol kit: [`s3::serve`]
//! (request id, limits, errors, metrics, one access-log line) → sites by Host, or
//! [`s3::context`] (route → authenticate, same rules as the store → the edge's authorisation
//! decision → verified body) → one dispatch: GET/HEAD through the cache (`respond`), uploads
//! held in the spool (`ops::multipart`), everything else forwarded to the origin
//! (`ops::forward`). Cache answers carry `X-Cache`.

use std::sync::Arc;

use axum::response::Response;
use http::HeaderValue;
use outpost_store::error::{Code, Error, Result};
use outpost_store::metrics::Metrics;
use outpost_store::s3::auth::Identity;
use outpost_store::s3::body::BodyLimits;
use outpost_store::s3::context::{self, Access, Context, FrontEnd, Settings};
use outpost_store::s3::cors::{CorsConfiguration, Preflight, PreflightRequest};
use outpost_store::s3::route::{Endpoint, Route};
use outpost_store::s3::serve::{self, Note};

use crate::cache::outcome::CacheOutcome;
use crate::cors::Source;
use crate::edge::Edge;
use crate::ops::{forward, multipart, post};
use crate::respond;
use crate::site;

pub async fn handle(
    axum::extract::State(edge): axum::extract::State<Arc<Edge>>,
    request: axum::extract::Request,
) -> Response {
    serve::serve(&*edge, request, async |parts, body, note| {
        let host = parts
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok());
        if let Some(site) = edge.sites.for_host(host) {
            note.operation("Site");
            let (response, outcome) = site::handle(&edge, &parts, &site).await?;
            return Ok(match outcome {
                Some(o) => with_outcome(&edge, note, response, o),
                None => response,
            });
        }
        if crate::access::is_foreign_sigv2(&edge.keyring, &edge.published, &parts) {
            note.operation("RelayedSigV2");
            return forward::relay_untouched(&edge, parts, body).await;
        }
        let context = context::context(&*edge, parts, body, note).await?;
        dispatch(&edge, context, note).await
    })
    .await
}

async fn dispatch(edge: &Arc<Edge>, context: Context, note: &mut Note) -> Result<Response> {
    match &context.route.endpoint {
        Endpoint::GetObject(_) | Endpoint::HeadObject(_) => {
            let (response, outcome) = cached(edge, &context).await?;
            Ok(with_outcome(edge, note, response, outcome))
        }
        Endpoint::CreateMultipartUpload => multipart::create_upload(edge, context).await,
        Endpoint::PostObject => post::post_object(edge, context).await,
        Endpoint::UploadPart(part) => {
            let part = part.clone();
            multipart::upload_part(edge, context, &part).await
        }
        Endpoint::ListParts(list) => {
            let list = list.clone();
            multipart::list_parts(edge, context, &list).await
        }
        Endpoint::CompleteMultipartUpload(upload_id)
        | Endpoint::AbortMultipartUpload(upload_id) => {
            let upload_id = upload_id.clone();
            multipart::finish_upload(edge, context, upload_id).await
        }
        _ => forward::forward(edge, context).await,
    }
}

/// What the edge decides before any handler runs ([`crate::access::decide`]): with what the
/// store publishes to its edge key, every client's request, anonymous ones too, on the
/// client's facts; before that (or with the root key), signed requests are the edge's own
/// identity's and anonymous ones are relayed unsigned so the origin's policy decides, except
/// UploadPart, which the edge holds itself and no origin sees before it is answered.
impl FrontEnd for Edge {
    fn settings(&self) -> Settings<'_> {
        let config = &self.config;
        Settings {
            keyring: &self.keyring,
            region: &config.region,
            base_domain: config.base_domain.as_deref(),
            max_header_bytes: config.max_header_bytes,
            body_limits: BodyLimits::new(
                config.body_idle_timeout_secs,
                config.body_min_rate_bytes_per_sec,
                config.body_min_rate_window_secs,
            ),
            trusted_proxies: &config.trusted_proxies,
        }
    }

    fn metrics(&self) -> &Metrics {
        &self.metrics.requests
    }

    fn refusal(&self, parts: &http::request::Parts) -> Option<(&'static str, Result<Response>)> {
        crate::viewer::refusal(self, parts).map(|answer| ("ViewerProtocol", answer))
    }

    fn vary_without_origin(&self) -> bool {
        false
    }

    async fn cors(&self, parts: &http::request::Parts) -> Result<Option<Arc<CorsConfiguration>>> {
        match self.cors_source(parts)? {
            Some(source) => self.cors.rules(&source, self.cache.clock.now()).await,
            None => Ok(None),
        }
    }

    async fn preflight(
        &self,
        parts: &http::request::Parts,
        asked: &PreflightRequest,
    ) -> Result<Preflight> {
        match self.cors_source(parts)? {
            Some(source) => {
                let now = self.cache.clock.now();
                self.cors.preflight(&source, asked, now).await
            }
            None => Ok(Preflight::NotEnabled),
        }
    }

    async fn authorize(
        &self,
        parts: &http::request::Parts,
        route: &Route,
        identity: &Identity,
    ) -> Result<Access> {
        let trusted = &self.config.trusted_proxies;
        crate::access::decide(
            &self.keyring,
            &self.published,
            trusted,
            parts,
            route,
            identity,
        )
    }
}

impl Edge {
    /// Where the CORS rules of a request come from: its site's bucket, or the bucket it names
    /// on the S3 face (None: it names none).
    fn cors_source(&self, parts: &http::request::Parts) -> Result<Option<Source>> {
        let host = outpost_store::s3::host(parts);
        if let Some(site) = self.sites.for_host(host) {
            return Ok(Some(Source {
                scope: site.id.clone(),
                origins: Arc::clone(&site.origins),
                bucket: site.bucket.clone(),
            }));
        }
        let base_domain = self.config.base_domain.as_deref();
        let (bucket, _) = outpost_store::s3::route::target(host, parts.uri.path(), base_domain)?;
        Ok((!bucket.is_empty()).then(|| Source {
            scope: "s3".into(),
            origins: Arc::clone(&self.origins),
            bucket,
        }))
    }
}

/// A cache answer: `X-Cache`, the outcome's metrics, and its note for the access line.
fn with_outcome(
    edge: &Edge,
    note: &mut Note,
    mut response: Response,
    outcome: CacheOutcome,
) -> Response {
    let x_cache = HeaderValue::from_static(outcome.x_cache());
    response.headers_mut().insert("x-cache", x_cache);
    edge.metrics.outcome(outcome);
    note.cache(outcome.as_str(), outcome.reason());
    response
}

/// GET/HEAD of an object on the S3 face.
async fn cached(edge: &Arc<Edge>, context: &Context) -> Result<(Response, CacheOutcome)> {
    let parts = &context.parts;
    let route = &context.route;
    let object = edge.s3_object(parts, &route.bucket, &route.key, &context.access);
    let found = object.lookup(&edge.cache, respond::hint(parts)).await;
    let answer = respond::answer(edge, parts, &object, found).await?;
    // A missing key is AccessDenied to a reader who may not list the bucket, as at the
    // store, whoever's fill brought the 404 into the cache.
    let trusted = &edge.config.trusted_proxies;
    if answer.0.status() == http::StatusCode::NOT_FOUND
        && !crate::access::may_list(
            &edge.keyring,
            &edge.published,
            trusted,
            parts,
            route,
            &context.access,
        )
    {
        return Err(Error::new(Code::AccessDenied));
    }
    Ok(answer)
}
