//! The store's authorisation step: the facts of a request ([`facts`]: who, the IAM action,
//! the resource ARN, the policy condition values read from the request) and the bucket's
//! policy, legacy ACL and Block Public Access settings go to [`crate::access::decide`].
//!
//! An edge key may relay for its clients: it asserts who the client is in signed headers
//! ([`ON_BEHALF_OF`]: an access key id or `anonymous`; [`CLIENT_IP`] for `aws:SourceIp`;
//! [`CLIENT_TLS`] for `aws:SecureTransport`), and the request is authorised as that client.
//! From anyone else such a header is AccessDenied, never ignored. Speaking for itself, an
//! edge key may do what an edge does after it has decided for its clients ([`edge_own`]).

use std::net::IpAddr;
use std::time::SystemTime;

use super::auth::Identity;
use super::client_ip::IpNet;
use super::context::{self, Access, Public};
use super::ops::policy::stored_policy;
use super::route::{Endpoint, Query, Route};
use super::{S3, headers};
use crate::access::{self, BucketAccess, Decision, Policy, Principal, Request, Rights};
use crate::error::{Code, Error, Result};

/// Who signed: the root key, or an index key by id and name (a policy's `Principal` may name
/// either). A key deleted since its signature was checked is no one: anonymous.
fn principal(s3: &S3, key: Option<&str>) -> Principal {
    match key {
        None => Principal::Anonymous,
        Some(key) if s3.keyring.is_root(key) => Principal::Root,
        Some(key) => match s3.engine.keys().by_access_key(key) {
            Some(found) => Principal::Key {
                id: key.to_owned(),
                name: found.name.clone(),
            },
            None => Principal::Anonymous,
        },
    }
}

/// The rights an index key holds on `bucket` (none for anyone else).
fn rights(s3: &S3, principal: &Principal, bucket: &str) -> Rights {
    let Principal::Key { id, .. } = principal else {
        return Rights::default();
    };
    s3.engine
        .keys()
        .by_access_key(id)
        .map_or_else(Rights::default, |key| Rights {
            grant: key.grant(bucket),
            create_bucket: key.create_bucket,
        })
}

/// Who an edge relays for (a signed header): an access key id, or [`ANONYMOUS`].
pub const ON_BEHALF_OF: &str = "x-amz-outpost-on-behalf-of";
/// The client's address as the edge saw it (`aws:SourceIp`).
pub const CLIENT_IP: &str = "x-amz-outpost-client-ip";
/// `true` when the client reached the edge over TLS (`aws:SecureTransport`).
pub const CLIENT_TLS: &str = "x-amz-outpost-client-tls";
pub const ANONYMOUS: &str = "anonymous";
const ASSERTIONS: [&str; 3] = [ON_BEHALF_OF, CLIENT_IP, CLIENT_TLS];

/// The identity a request is authorised as: its signer's, or the client an edge key asserts.
/// AccessDenied for an assertion from anyone but an edge key (or naming a key no one has).
fn asserted(s3: &S3, parts: &http::request::Parts, identity: &Identity) -> Result<Identity> {
    let asserts = ASSERTIONS.iter().any(|h| parts.headers.contains_key(*h));
    if !asserts {
        return Ok(identity.clone());
    }
    let refused = |why: &'static str| Err(Error::msg(Code::AccessDenied, why));
    let by_edge = match identity {
        Identity::Key(id) => s3.engine.keys().by_access_key(id).is_some_and(|k| k.edge),
        Identity::Anonymous => false,
    };
    if !by_edge {
        return refused("Only an edge key may relay on behalf of a client.");
    }
    match headers::get(&parts.headers, ON_BEHALF_OF) {
        Some(ANONYMOUS) => Ok(Identity::Anonymous),
        Some(id) if s3.engine.keys().by_access_key(id).is_some_and(|k| !k.edge) => {
            Ok(Identity::Key(id.to_owned()))
        }
        _ => refused("The relayed client is not a known key."),
    }
}

/// The facts of a request as a front end sees them: `principal` asks the route's action on
/// its resource, from the address `trusted` proxies name, with its Referer, User-Agent and
/// transport. (The edge decides on these, the store on [`facts`].)
pub fn request_facts(
    parts: &http::request::Parts,
    route: &Route,
    principal: Principal,
    trusted: &[IpNet],
) -> Request {
    let list = route.endpoint.list_params();
    Request {
        principal,
        action: route.endpoint.action(),
        resource: access::resource_arn(&route.bucket, &route.key),
        source_ip: context::client(parts, trusted),
        referer: headers::get(&parts.headers, "referer").map(str::to_owned),
        user_agent: headers::get(&parts.headers, "user-agent").map(str::to_owned),
        secure_transport: context::scheme(parts) == "https",
        current_time: SystemTime::now(),
        prefix: list.map(|l| l.prefix.clone()),
        delimiter: list.and_then(|l| l.delimiter.clone()),
        // As sent (a listing without it carries no `s3:max-keys`, as at AWS).
        max_keys: list.and_then(|_| {
            Query::parse(parts.uri.query())
                .get("max-keys")
                .map(str::to_owned)
        }),
    }
}

/// The facts of a request at the store. A relayed one ([`ON_BEHALF_OF`]) is decided on the
/// client's address and transport as its edge asserts them: [`authorize`] refused it unless
/// an edge key signed them, and every operation's facts come after that step.
pub fn facts(s3: &S3, parts: &http::request::Parts, route: &Route, access: &Access) -> Request {
    let key = match access {
        Access::Signed(key) => Some(key.as_str()),
        Access::Public(_) | Access::Pending => None,
    };
    let mut request = request_facts(parts, route, principal(s3, key), &s3.config.trusted_proxies);
    if parts.headers.contains_key(ON_BEHALF_OF) {
        let asserted_ip = headers::get(&parts.headers, CLIENT_IP);
        request.source_ip = asserted_ip.and_then(|ip| ip.parse::<IpAddr>().ok());
        request.secure_transport = headers::get(&parts.headers, CLIENT_TLS) == Some("true");
    }
    request
}

/// What an edge key may do speaking for itself, on any bucket, its policy aside: the edge
/// decided for its clients before it asks. It fills its cache (GetObject, HeadObject),
/// learns CORS rules and its sites' website configurations, and relays spooled parts of
/// uploads its clients started.
fn edge_own(endpoint: &Endpoint) -> bool {
    matches!(
        endpoint,
        Endpoint::GetObject(_)
            | Endpoint::HeadObject(_)
            | Endpoint::GetBucketCors
            | Endpoint::GetBucketWebsite
            | Endpoint::UploadPart(_)
            | Endpoint::ListParts(_)
    )
}

/// What a bucket says about access, and the rights the principal holds on it, loaded once for
/// the decisions of one request.
pub struct Bucket {
    policy: Option<Policy>,
    public_read_acl: bool,
    block: access::PublicAccessBlock,
    rights: Rights,
}

impl Bucket {
    /// The bucket's settings and `principal`'s grant on it; a bucket that does not exist (or
    /// no bucket: a service call) opens nothing beyond the grant.
    pub async fn load(s3: &S3, name: &str, principal: &Principal) -> Bucket {
        let settings = match name {
            "" => None,
            name => s3.engine.bucket(name).await.ok().map(|b| b.settings),
        };
        let settings = settings.unwrap_or_default();
        Bucket {
            policy: stored_policy(name, &settings),
            public_read_acl: settings.public_read_acl,
            block: settings.public_access_block.unwrap_or_default(),
            rights: rights(s3, principal, name),
        }
    }

    pub fn decide(&self, request: &Request) -> Decision {
        let bucket = BucketAccess {
            policy: self.policy.as_ref(),
            public_read_acl: self.public_read_acl,
            block: self.block,
        };
        access::decide(request, self.rights, &bucket)
    }
}

/// As AWS answers a reader who may not list the bucket: a missing key is AccessDenied, not
/// NoSuchKey, so which keys exist is not learnt by trying them.
pub async fn hide_missing(s3: &S3, facts: &Request, bucket: &str, error: Error) -> Error {
    // An edge key reading for itself (a fill) learns what exists: it decides for its clients.
    let edge = match &facts.principal {
        Principal::Key { id, .. } => s3.engine.keys().by_access_key(id).is_some_and(|k| k.edge),
        _ => false,
    };
    if error.code != Code::NoSuchKey || facts.principal == Principal::Root || edge {
        return error;
    }
    let list = facts.listing(bucket);
    if Bucket::load(s3, bucket, &facts.principal)
        .await
        .decide(&list)
        .is_allowed()
    {
        error
    } else {
        Error::new(Code::AccessDenied)
    }
}

/// Decides a request: the operation on its resource, and for a copy the read of its source.
pub async fn authorize(
    s3: &S3,
    parts: &http::request::Parts,
    route: &Route,
    identity: &Identity,
) -> Result<Access> {
    let relayed = parts.headers.contains_key(ON_BEHALF_OF);
    let identity = &asserted(s3, parts, identity)?;
    if let (Identity::Key(id), false) = (identity, relayed)
        && edge_own(&route.endpoint)
        && s3.engine.keys().by_access_key(id).is_some_and(|k| k.edge)
    {
        return Ok(Access::Signed(id.clone()));
    }
    let access = match identity {
        Identity::Key(key) => Access::Signed(key.clone()),
        Identity::Anonymous => Access::Public(Public::BucketPolicy),
    };
    let request = facts(s3, parts, route, &access);
    if request.principal == Principal::Root {
        return Ok(access);
    }
    let bucket = Bucket::load(s3, &route.bucket, &request.principal).await;
    // DeleteObjects is decided per key, on each key's ARN (`ops::delete`), as at AWS: a
    // policy may allow some keys and not the bucket.
    if route.endpoint == Endpoint::DeleteObjects && bucket.policy.is_some() {
        return Ok(access);
    }
    let mut decision = bucket.decide(&request);
    if decision.is_allowed()
        && let Some(source) = route.endpoint.copy_source()
    {
        let read = request.reading(&source.bucket, &source.key);
        let source_bucket = Bucket::load(s3, &source.bucket, &request.principal).await;
        decision = source_bucket.decide(&read);
    }
    tracing::debug!(
        decision = decision.as_str(),
        action = request.action.name,
        resource = %request.resource,
        "access decision"
    );
    match (decision, access) {
        (Decision::PublicAcl, Access::Public(_)) => Ok(Access::Public(Public::BucketAcl)),
        (d, access) if d.is_allowed() => Ok(access),
        _ => Err(Error::new(Code::AccessDenied)),
    }
}

#[cfg(test)]
mod tests {
    /// An operation that asks who signed (ListBuckets filters, CreateBucket records an owner)
    /// refuses a key deleted since it was authorised, rather than take it for the root key.
    #[tokio::test]
    async fn a_key_deleted_after_authorisation_is_not_taken_for_the_root_key() {
        use crate::s3::auth::{Credentials, Keyring};
        use crate::s3::context::Access;
        let dir = tempfile::tempdir().unwrap();
        let config = crate::config::StoreConfig {
            data_dir: dir.path().to_owned(),
            ..Default::default()
        };
        let engine = crate::engine::Engine::open(crate::engine::EngineConfig {
            data_dir: dir.path().to_owned(),
            max_object_size: 1 << 20,
            stale_upload_age: std::time::Duration::from_secs(60),
            changes: Default::default(),
        })
        .await
        .unwrap();
        let root = Credentials {
            access_key_id: "ROOT".into(),
            secret: crate::secret::SecretKey::new("s"),
        };
        let s3 = crate::s3::S3 {
            keyring: Keyring::new([root]).with_index(engine.key_view()),
            engine,
            config,
            metrics: crate::metrics::Metrics::new("test"),
            owner_id: "ROOT".into(),
            feeds: Default::default(),
        };
        let key = s3.engine.create_key("app", false).await.unwrap();
        let signed = Access::Signed(key.access_key_id.clone());
        assert_eq!(s3.signer(&signed).unwrap().unwrap().name, "app");
        assert!(s3.signer(&Access::Signed("ROOT".into())).unwrap().is_none());
        s3.engine.delete_key("app").await.unwrap();
        let refused = s3.signer(&signed).unwrap_err();
        assert_eq!(refused.code, crate::error::Code::AccessDenied);
    }
}
