//! The edge's access decisions, made here for its own clients: the store publishes the keys,
//! grants and bucket policies an edge key needs (`/_outpost/admin/edge/access`, see
//! [`outpost_store::access::edge`]); [`poll`] fetches that document every second (304 when
//! nothing changed) into the [`PublishedView`] the keyring and [`decide`] read.
//!
//! ```text
//!  poll (1 s) ─► PublishedView ─► keyring: clients' signatures (published signing keys)
//!                              └► decide: access::decide on the client's facts ─► Access
//!  relay: signed with the edge key + x-amz-outpost-on-behalf-of / -client-ip / -client-tls
//! ```
//!
//! Until a document arrives, and always at an edge that runs with the root key, the edge
//! decides as before: its own key is the only one it checks, and anonymous requests go
//! unsigned for the origin to decide ([`Public::OriginDecides`]). A document that stops
//! arriving (the store unreachable) stays in force: the last rights the store published. A
//! poll the store refuses (403: the edge's key deleted) replaces it with
//! [`Published::refused`]: every key refused, its own too, and no bucket open to anyone.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderValue, Method};
use outpost_store::access::edge::{EdgeAccess, Published, PublishedView};
use outpost_store::access::{self, Decision, Principal};
use outpost_store::error::{Code, Error, Result};
use outpost_store::s3::auth::{Identity, Keyring};
use outpost_store::s3::authorize::{self, ANONYMOUS, CLIENT_IP, CLIENT_TLS, ON_BEHALF_OF};
use outpost_store::s3::client_ip::IpNet;
use outpost_store::s3::context::{self, Access, Public};
use outpost_store::s3::route::{Endpoint, Route};

use crate::origin::{OriginGroup, OriginRequest};

/// How often the document is asked for (a revoked key is refused within about this, plus
/// the store's answer time).
pub const POLL_EVERY: Duration = Duration::from_secs(1);
/// The largest document taken.
const MAX_DOCUMENT: usize = 64 << 20;
const PATH: &str = "/_outpost/admin/edge/access";

/// What a poll learnt.
pub enum Polled {
    /// The version of the document now held (None: none yet).
    Holding(Option<HeaderValue>),
    /// The edge runs with the root key: it decides as it always did, and polls no more.
    RootKey,
}

/// Asks the store for the document once; installs it when it changed.
pub async fn poll_once(
    origins: &OriginGroup,
    view: &PublishedView,
    held: Option<HeaderValue>,
) -> Polled {
    let mut headers = HeaderMap::new();
    if let Some(etag) = &held {
        headers.insert(http::header::IF_NONE_MATCH, etag.clone());
    }
    let request = OriginRequest {
        method: Method::GET,
        path_and_query: PATH.to_owned(),
        headers,
        anonymous: false,
        aws_chunked: false,
    };
    let response = match origins.fetch(&request).await {
        Ok(response) => response,
        Err(e) => {
            tracing::debug!(error = %e, "edge access: the store did not answer");
            return Polled::Holding(held);
        }
    };
    let status = response.status();
    if status == http::StatusCode::NOT_MODIFIED {
        return Polled::Holding(held);
    }
    let etag = response.headers().get(http::header::ETAG).cloned();
    let body = crate::origin::to_client(response).into_body();
    let body = axum::body::to_bytes(body, MAX_DOCUMENT).await;
    if !status.is_success() {
        tracing::warn!(%status, "edge access: the store refused the edge key's poll");
        if status == http::StatusCode::FORBIDDEN {
            view.install(Published::refused());
            return Polled::Holding(None);
        }
        return Polled::Holding(held);
    }
    let doc: EdgeAccess = match body.ok().and_then(|b| serde_json::from_slice(&b).ok()) {
        Some(doc) => doc,
        None => {
            tracing::warn!("edge access: the store's document does not parse");
            return Polled::Holding(held);
        }
    };
    if !doc.caller_is_edge {
        return Polled::RootKey;
    }
    view.install(Published::new(doc));
    Polled::Holding(etag)
}

/// The edge's poll: a group of its own toward the origins (so that polls neither count as
/// the edge's origin traffic nor hold its connections), the view it fills, and the version
/// it holds.
pub struct Poller {
    origins: OriginGroup,
    view: PublishedView,
    held: tokio::sync::Mutex<Option<HeaderValue>>,
    stopped: std::sync::atomic::AtomicBool,
}

impl Poller {
    pub fn new(origins: OriginGroup, view: PublishedView) -> Poller {
        Poller {
            origins,
            view,
            held: tokio::sync::Mutex::new(None),
            stopped: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Polls now (after a change made through this edge, so that its client's next request
    /// sees it); false once the edge is known to run with the root key.
    pub async fn refresh(&self) -> bool {
        use std::sync::atomic::Ordering;
        if self.stopped.load(Ordering::Relaxed) {
            return false;
        }
        let mut held = self.held.lock().await;
        match poll_once(&self.origins, &self.view, held.take()).await {
            Polled::Holding(now) => *held = now,
            Polled::RootKey => self.stopped.store(true, Ordering::Relaxed),
        }
        !self.stopped.load(Ordering::Relaxed)
    }

    /// The first poll (awaited for at most `first`, so that a store that answers soon has
    /// the edge deciding from its first client on), then one every [`POLL_EVERY`] until the
    /// edge is known to run with the root key.
    pub async fn start(self: &Arc<Self>, first: Duration) -> tokio::task::JoinHandle<()> {
        let _ = tokio::time::timeout(first, self.refresh()).await;
        let poller = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(POLL_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                if !poller.refresh().await {
                    return;
                }
            }
        })
    }
}

/// The edge's decision for a request (`FrontEnd::authorize`).
pub fn decide(
    keyring: &Keyring,
    view: &PublishedView,
    trusted: &[IpNet],
    parts: &http::request::Parts,
    route: &Route,
    identity: &Identity,
) -> Result<Access> {
    let published = match (identity, view.load()) {
        (Identity::Key(id), Some(p)) if keyring.is_root(id) && p.edge_key_refused => {
            return Err(Error::new(Code::InvalidAccessKeyId));
        }
        // The edge's own key speaks for itself, as before.
        (Identity::Key(id), _) if keyring.is_root(id) => return Ok(Access::Signed(id.clone())),
        (_, Some(published)) => published,
        (Identity::Key(id), None) => return Ok(Access::Signed(id.clone())),
        (Identity::Anonymous, None) if matches!(route.endpoint, Endpoint::UploadPart(_)) => {
            // Held here, seen by no origin before it is answered.
            return Err(Error::new(Code::AccessDenied));
        }
        (Identity::Anonymous, None) => return Ok(Access::Public(Public::OriginDecides)),
    };
    let principal = principal(&published, identity);
    let request = authorize::request_facts(parts, route, principal, trusted);
    let key = match identity {
        Identity::Key(id) => Some(id.as_str()),
        Identity::Anonymous => None,
    };
    let on = |bucket: &str, request: &access::Request| {
        let rights = published.rights(key, bucket);
        access::decide(request, rights, &published.bucket(bucket))
    };
    let mut decision = on(&route.bucket, &request);
    // DeleteObjects is decided per key at the store, on each key's ARN.
    if route.endpoint == Endpoint::DeleteObjects && published.bucket(&route.bucket).policy.is_some()
    {
        decision = Decision::PolicyAllow;
    }
    if decision.is_allowed()
        && let Some(source) = route.endpoint.copy_source()
    {
        let read = request.reading(&source.bucket, &source.key);
        decision = on(&source.bucket, &read);
    }
    tracing::debug!(
        decision = decision.as_str(),
        action = request.action.name,
        resource = %request.resource,
        "edge access decision"
    );
    match (decision, identity) {
        (d, _) if !d.is_allowed() => Err(Error::new(Code::AccessDenied)),
        (_, Identity::Key(id)) => Ok(Access::Signed(id.clone())),
        (Decision::PublicAcl, Identity::Anonymous) => Ok(Access::Public(Public::BucketAcl)),
        (_, Identity::Anonymous) => Ok(Access::Public(Public::BucketPolicy)),
    }
}

/// May the requester of `access` list `bucket` (else a missing key is AccessDenied to it, as
/// at the store)? True for the edge's own key and where the edge does not decide.
pub fn may_list(
    keyring: &Keyring,
    view: &PublishedView,
    trusted: &[IpNet],
    parts: &http::request::Parts,
    route: &Route,
    access: &Access,
) -> bool {
    let (Some(published), Some(key)) = (view.load(), asserted(access)) else {
        return true;
    };
    if keyring.is_root(key) {
        return true;
    }
    let identity = match key {
        ANONYMOUS => Identity::Anonymous,
        id => Identity::Key(id.to_owned()),
    };
    let principal = principal(&published, &identity);
    let list = authorize::request_facts(parts, route, principal, trusted).listing(&route.bucket);
    let id = (key != ANONYMOUS).then_some(key);
    let rights = published.rights(id, &route.bucket);
    access::decide(&list, rights, &published.bucket(&route.bucket)).is_allowed()
}

/// A SigV2 presigned URL by a key the edge checks no signature of: no signing key verifies
/// SigV2 (it signs with the secret itself, which the store never hands out), so the request
/// goes to the store untouched and uncached ([`crate::ops::forward::relay_untouched`]), and
/// the store decides. Only once the edge decides for its clients; its own key it checks.
pub fn is_foreign_sigv2(
    keyring: &Keyring,
    view: &PublishedView,
    parts: &http::request::Parts,
) -> bool {
    let query = outpost_store::s3::route::Query::parse(parts.uri.query());
    let signed_v2 = query.get("Signature").is_some() && query.get("X-Amz-Signature").is_none();
    let by = query.get("AWSAccessKeyId");
    view.load().is_some()
        && signed_v2
        && !parts.headers.contains_key(http::header::AUTHORIZATION)
        && by.is_some_and(|id| !keyring.is_root(id))
}

fn principal(published: &Published, identity: &Identity) -> Principal {
    match identity {
        Identity::Key(id) => Principal::Key {
            id: id.clone(),
            name: published.name(id).unwrap_or_default().to_owned(),
        },
        Identity::Anonymous => Principal::Anonymous,
    }
}

/// Who the edge relays a request of `access` for, when it decided it: a client's key id, or
/// `anonymous`. None: the edge's own key, or the origin decides.
fn asserted(access: &Access) -> Option<&str> {
    match access {
        Access::Public(Public::BucketPolicy | Public::BucketAcl) => Some(ANONYMOUS),
        Access::Signed(id) => Some(id.as_str()),
        Access::Public(Public::OriginDecides) | Access::Pending => None,
    }
}

/// Removes a client's own claims of who it relays for: that is the edge's to say.
pub fn drop_claims(headers: &mut HeaderMap) {
    for name in [ON_BEHALF_OF, CLIENT_IP, CLIENT_TLS] {
        headers.remove(name);
    }
}

/// How a request of `access` goes to the origin: unsigned (`true`: the origin decides), or
/// signed with the edge key and `headers` given the client's identity, address and
/// transport when the edge decided for a client.
pub fn relay_as(
    keyring: &Keyring,
    trusted: &[IpNet],
    parts: &http::request::Parts,
    access: &Access,
    headers: &mut HeaderMap,
) -> bool {
    drop_claims(headers);
    if access == &Access::Public(Public::OriginDecides) {
        return true;
    }
    let Some(client) = asserted(access).filter(|id| !keyring.is_root(id)) else {
        return false;
    };
    let value = |v: &str| HeaderValue::from_str(v).expect("ids and addresses are header values");
    headers.insert(ON_BEHALF_OF, value(client));
    if let Some(ip) = context::client(parts, trusted) {
        headers.insert(CLIENT_IP, value(&ip.to_string()));
    }
    let tls = context::scheme(parts) == "https";
    headers.insert(CLIENT_TLS, value(if tls { "true" } else { "false" }));
    false
}
