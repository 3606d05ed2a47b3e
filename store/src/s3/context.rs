//! One step from an HTTP request to what an operation works with, the same for both front
//! ends (the store, and the edge as a second S3 front end): route → authenticate → authorise
//! → verified body ([`context`]). What only a front end knows, it answers through
//! [`FrontEnd`]: its settings, its metrics, whether an identity may do what a route asks, and
//! a bucket's CORS rules.

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use prometheus_client::metrics::counter::Counter;

use super::auth::{self, AuthParams, Identity, Keyring, Payload, Trailers};
use super::body::{self, BodyLimits};
use super::client_ip::IpNet;
use super::cors::{CorsConfiguration, Preflight, PreflightRequest};
use super::route::Route;
use super::xml::read_small_body;
use crate::engine::ByteStream;
use crate::error::Result;
use crate::metrics::Metrics;

/// What the kit's steps read from a front end's configuration.
pub struct Settings<'a> {
    pub keyring: &'a Keyring,
    pub region: &'a str,
    pub base_domain: Option<&'a str>,
    pub max_header_bytes: usize,
    pub body_limits: BodyLimits,
    /// Peers whose `X-Forwarded-For` names the client in the access log.
    pub trusted_proxies: &'a [IpNet],
}

/// A front end of the S3 protocol: the store or the edge.
pub trait FrontEnd: Send + Sync {
    fn settings(&self) -> Settings<'_>;
    /// Request metrics (`<prefix>_requests_total` and friends).
    fn metrics(&self) -> &Metrics;
    /// The authorisation decision: may `identity` do what `route` asks (`parts` carries the
    /// facts policy conditions read: source address, Referer, User-Agent)? `Err`
    /// (AccessDenied) refuses the request before its body is read. Both front ends decide
    /// with [`crate::access`] (the edge on what the store publishes to its edge key; until
    /// then, or with the root key, it lets the origin decide for anonymous requests).
    fn authorize(
        &self,
        parts: &http::request::Parts,
        route: &Route,
        identity: &Identity,
    ) -> impl Future<Output = Result<Access>> + Send;
    /// The CORS rules of the bucket `parts` is for: None when it has none or the request names
    /// no bucket, NoSuchBucket when there is no such bucket. Asked before authentication
    /// (preflights are unsigned) by [`super::serve`], which answers preflights with them and
    /// puts their headers on every response to a request with an Origin.
    fn cors(
        &self,
        parts: &http::request::Parts,
    ) -> impl Future<Output = Result<Option<Arc<CorsConfiguration>>>> + Send;
    /// Whether a GET or HEAD without an Origin is given `Vary` here when its bucket has rules
    /// (see [`super::serve`]). The store says yes; the edge's answers carry the store's, kept
    /// with the cached object, so that a hit needs no look-up of the rules.
    fn vary_without_origin(&self) -> bool {
        true
    }
    /// An answer given before anything else, preflights included, with the operation it is
    /// counted and logged as; None lets the request go on (the store's case). The edge
    /// answers here the plain-HTTP requests its distribution's viewer protocol does not serve.
    fn refusal(&self, _parts: &http::request::Parts) -> Option<(&'static str, Result<Response>)> {
        None
    }
    /// The answer to the preflight `asked` of `parts`: the rules matched each time (the edge
    /// keeps its answers).
    fn preflight(
        &self,
        parts: &http::request::Parts,
        asked: &PreflightRequest,
    ) -> impl Future<Output = Result<Preflight>> + Send {
        async move { Ok(Preflight::answer(self.cors(parts).await?.as_deref(), asked)) }
    }
}

/// Why a request may proceed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Signed with this access key (signature verified).
    Signed(String),
    /// Anonymous, and let through for this reason.
    Public(Public),
    /// Not decided yet: the operation authenticates itself from its body
    /// ([`Endpoint::authenticates_itself`](super::route::Endpoint::authenticates_itself)) and
    /// asks [`FrontEnd::authorize`] once it has. Only such an operation sees this.
    Pending,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Public {
    /// The bucket's policy opens the operation to anyone.
    BucketPolicy,
    /// The bucket's legacy `public-read` ACL opens reads of its objects.
    BucketAcl,
    /// Relayed unsigned to an origin whose own policy decides (the edge).
    OriginDecides,
}

impl Access {
    pub fn is_public(&self) -> bool {
        matches!(self, Access::Public(_))
    }
}

/// What a handler tells the serve wrapper ([`super::serve`]) for the access line and the
/// metrics.
pub struct Note {
    pub(super) request_id: String,
    pub(super) operation: &'static str,
    pub(super) cache: Option<(&'static str, Option<&'static str>)>,
}

impl Note {
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// The operation the request turned out to be (an AWS operation name); `Unknown` until
    /// set.
    pub fn operation(&mut self, name: &'static str) {
        self.operation = name;
    }

    /// A cache outcome (`Hit`, `Miss`, ...) and, for a Bypass, why the answer was not stored.
    pub fn cache(&mut self, outcome: &'static str, reason: Option<&'static str>) {
        self.cache = Some((outcome, reason));
    }
}

/// A request after the kit's step: routed, authenticated, authorised, its body verified as
/// it is read.
pub struct Context {
    /// The request id (`x-amz-request-id`).
    pub id: String,
    pub parts: http::request::Parts,
    pub route: Route,
    pub access: Access,
    pub body: VerifiedBody,
}

/// Routes, authenticates and authorises a request; its body comes back wrapped to be read
/// under the slow-client limits, de-chunked and checked (payload hash, chunk signature chain,
/// trailing checksums: see [`auth::verified_body`]). Names the operation in `note` as soon
/// as it is known, so the access line has it whatever fails after.
pub async fn context<F: FrontEnd>(
    front: &F,
    parts: http::request::Parts,
    body: Body,
    note: &mut Note,
) -> Result<Context> {
    let settings = front.settings();
    let route = super::route_request(&parts, settings.base_domain)?;
    note.operation(route.endpoint.name());
    let (access, payload) = if route.endpoint.authenticates_itself() {
        // Its signature is in the body (POST Object's form): checked by the operation.
        (Access::Pending, Payload::Unsigned)
    } else {
        let authenticated = auth::authenticate(
            &parts,
            &AuthParams {
                keyring: settings.keyring,
                region: settings.region,
                bucket: &route.bucket,
                now: std::time::SystemTime::now(),
                max_skew: super::MAX_CLOCK_SKEW,
            },
        )?;
        let access = front
            .authorize(&parts, &route, &authenticated.identity)
            .await?;
        (access, authenticated.payload)
    };
    Ok(Context {
        id: note.request_id().to_owned(),
        parts,
        route,
        access,
        body: VerifiedBody {
            source: Source::Client {
                body: std::sync::Mutex::new(body),
                limits: settings.body_limits,
                received: front.metrics().bytes_in(),
            },
            payload,
        },
    })
}

/// A request body that is checked as it is read (nothing is read until an operation asks).
pub struct VerifiedBody {
    source: Source,
    payload: Payload,
}

enum Source {
    /// Still with the client. (In a Mutex only to make a [`Context`] Sync, so handlers may
    /// hold `&Context` across awaits.)
    Client {
        body: std::sync::Mutex<Body>,
        limits: BodyLimits,
        received: Counter,
    },
    /// Read and checked whole ([`VerifiedBody::read_whole`]).
    Checked(Bytes, Trailers),
}

impl VerifiedBody {
    /// How the client framed and signed the body (the edge re-frames aws-chunked bodies for
    /// its origin).
    pub fn payload(&self) -> &Payload {
        &self.payload
    }

    /// The body as an operation reads it: de-chunked, ending in an error instead of its last
    /// piece when a check fails; the trailers are filled once it has ended.
    pub fn into_stream(self) -> (ByteStream, Trailers) {
        match self.source {
            Source::Client {
                body,
                limits,
                received,
            } => {
                let body = body.into_inner().unwrap_or_else(|p| p.into_inner());
                let raw = body::client_body(body, limits, move |n| {
                    received.inc_by(n as u64);
                });
                auth::verified_body(raw, self.payload)
            }
            Source::Checked(bytes, trailers) => {
                let once = futures::stream::iter([Ok(bytes)]);
                (Box::pin(once), trailers)
            }
        }
    }

    /// Reads the body whole (at most `limit` bytes: InvalidRequest past it), running every
    /// check now; what is returned streams the checked bytes.
    pub async fn read_whole(self, limit: usize) -> Result<VerifiedBody> {
        let payload = self.payload.clone();
        let (stream, trailers) = self.into_stream();
        let bytes = read_small_body(stream, limit).await?;
        Ok(VerifiedBody {
            source: Source::Checked(bytes, trailers),
            payload,
        })
    }
}

/// The peer address of a request, when the accept loop recorded it.
pub fn peer(parts: &http::request::Parts) -> Option<std::net::SocketAddr> {
    parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0)
}

/// `https` for a request that came over TLS, else `http`: the scheme of the URLs an answer
/// names (a response over TLS never points the client at plain HTTP).
pub fn scheme(parts: &http::request::Parts) -> &'static str {
    if parts.extensions.get::<crate::server::Encrypted>().is_some() {
        "https"
    } else {
        "http"
    }
}

/// The client's address for the log (see [`super::client_ip`]).
pub fn client(parts: &http::request::Parts, trusted: &[IpNet]) -> Option<IpAddr> {
    peer(parts).map(|p| super::client_ip::client_ip(p.ip(), &parts.headers, trusted))
}
