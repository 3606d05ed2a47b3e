//! The store's authorisation step: the facts of a request ([`facts`]: who, the IAM action,
//! the resource ARN, the policy condition values read from the request) and the bucket's
//! policy, legacy ACL and Block Public Access settings go to [`crate::access::decide`].

use std::time::SystemTime;

use super::auth::Identity;
use super::context::{self, Access, Public};
use super::ops::policy::stored_policy;
use super::route::{Endpoint, Query, Route};
use super::{S3, headers};
use crate::access::{self, Action, BucketAccess, Decision, Policy, Principal, Request, Rights};
use crate::error::{Code, Error, Result};

/// Who `identity` is. Every configured key is the root key until keys with grants land.
fn principal(s3: &S3, key: Option<&str>) -> Principal {
    match key {
        None => Principal::Anonymous,
        Some(key) if key == s3.owner_id => Principal::Root,
        Some(key) => Principal::Key {
            id: key.to_owned(),
            name: key.to_owned(),
        },
    }
}

/// The facts of a request as the decision reads them.
pub fn facts(s3: &S3, parts: &http::request::Parts, route: &Route, access: &Access) -> Request {
    let key = match access {
        Access::Signed(key) => Some(key.as_str()),
        Access::Public(_) => None,
    };
    let list = route.endpoint.list_params();
    Request {
        principal: principal(s3, key),
        action: route.endpoint.action(),
        resource: access::resource_arn(&route.bucket, &route.key),
        source_ip: context::client(parts, &s3.config.trusted_proxies),
        referer: headers::get(&parts.headers, "referer").map(str::to_owned),
        user_agent: headers::get(&parts.headers, "user-agent").map(str::to_owned),
        secure_transport: false,
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

/// What a bucket says about access, loaded once for the decisions of one request.
pub struct Bucket {
    policy: Option<Policy>,
    public_read_acl: bool,
    block: access::PublicAccessBlock,
}

impl Bucket {
    /// The bucket's settings; a bucket that does not exist (or no bucket: a service call)
    /// opens nothing.
    pub async fn load(s3: &S3, name: &str) -> Bucket {
        let settings = match name {
            "" => None,
            name => s3.engine.bucket(name).await.ok().map(|b| b.settings),
        };
        let settings = settings.unwrap_or_default();
        Bucket {
            policy: stored_policy(name, &settings),
            public_read_acl: settings.public_read_acl,
            block: settings.public_access_block.unwrap_or_default(),
        }
    }

    pub fn decide(&self, request: &Request) -> Decision {
        let bucket = BucketAccess {
            policy: self.policy.as_ref(),
            public_read_acl: self.public_read_acl,
            block: self.block,
        };
        // Keys and grants are stored by the next step of issue 11: none yet.
        access::decide(request, Rights::default(), &bucket)
    }
}

/// As AWS answers a reader who may not list the bucket: a missing key is AccessDenied, not
/// NoSuchKey, so which keys exist is not learnt by trying them.
pub async fn hide_missing(s3: &S3, facts: &Request, bucket: &str, error: Error) -> Error {
    if error.code != Code::NoSuchKey || facts.principal == Principal::Root {
        return error;
    }
    let list = facts.asking(
        Action {
            name: "s3:ListBucket",
            class: access::Class::Read,
        },
        access::resource_arn(bucket, ""),
    );
    if Bucket::load(s3, bucket).await.decide(&list).is_allowed() {
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
    let access = match identity {
        Identity::Key(key) => Access::Signed(key.clone()),
        Identity::Anonymous => Access::Public(Public::BucketPolicy),
    };
    let request = facts(s3, parts, route, &access);
    if request.principal == Principal::Root {
        return Ok(access);
    }
    let bucket = Bucket::load(s3, &route.bucket).await;
    // DeleteObjects is decided per key, on each key's ARN (`ops::delete`), as at AWS: a
    // policy may allow some keys and not the bucket.
    if route.endpoint == Endpoint::DeleteObjects && bucket.policy.is_some() {
        return Ok(access);
    }
    let mut decision = bucket.decide(&request);
    if decision.is_allowed()
        && let Some(source) = route.endpoint.copy_source()
    {
        let read = request.asking(
            Action {
                name: "s3:GetObject",
                class: access::Class::Read,
            },
            access::resource_arn(&source.bucket, &source.key),
        );
        decision = Bucket::load(s3, &source.bucket).await.decide(&read);
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
