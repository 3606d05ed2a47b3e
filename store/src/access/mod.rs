//! Who may do what: the one access decision, shared by the store and the edge.
//!
//! ```text
//!  request ─► s3::route (Endpoint::action: IAM action + grant class)
//!          ─► FrontEnd::authorize ─► access::decide(Request, Rights, BucketAccess) ─► Decision
//! ```
//!
//! The rule, as AWS evaluates it: the root key may do anything; otherwise an explicit `Deny`
//! in the bucket policy wins; otherwise a grant covering the action or a policy `Allow`
//! permits; otherwise AccessDenied. This module knows no HTTP and no storage: it is given the
//! facts and answers. Modules: [`policy`] (bucket policies: parse, validate, evaluate),
//! [`ip_net`] (CIDR blocks), [`edge`] (what the store publishes to edges so that they decide
//! for their clients with this same evaluator).

pub mod edge;
mod ip_net;
pub mod policy;

use std::net::IpAddr;
use std::time::SystemTime;

pub use ip_net::IpNet;
pub use policy::{Policy, Verdict};

/// The kind of right an operation needs, as grants name them (`outpost key allow NAME
/// --bucket B --read --write --owner`, `--create-bucket`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Reading objects and listing the bucket.
    Read,
    /// Writing and deleting objects (uploads included).
    Write,
    /// The bucket's own settings: policy, website, ACL, CORS, public access block, deletion.
    Owner,
    /// Creating a bucket (a right of the key, not of a bucket).
    CreateBucket,
    /// Service-level calls any signed key may make (ListBuckets shows it only what it may see).
    Service,
    /// Operations only the root key may call (those the store does not implement, whose
    /// right we do not classify).
    Root,
}

/// What an operation asks for: the IAM action a bucket policy names (`s3:GetObject`) and the
/// class of grant that covers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Action {
    pub name: &'static str,
    pub class: Class,
}

/// A key's rights on one bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Grant {
    pub read: bool,
    pub write: bool,
    pub owner: bool,
}

impl Grant {
    /// Does this grant cover an action of `class`? (Creating buckets is the key's own right,
    /// service calls need none, root-only calls no grant covers.)
    pub fn covers(&self, class: Class) -> bool {
        match class {
            Class::Read => self.read,
            Class::Write => self.write,
            Class::Owner => self.owner,
            Class::Service => true,
            Class::CreateBucket | Class::Root => false,
        }
    }
}

/// Grants as `outpost key allow/deny` add and take them.
impl Grant {
    pub const READ: Grant = Grant {
        read: true,
        write: false,
        owner: false,
    };
    pub const WRITE: Grant = Grant {
        read: false,
        write: true,
        owner: false,
    };
    /// What a key gets on a bucket it creates.
    pub const ALL: Grant = Grant {
        read: true,
        write: true,
        owner: true,
    };

    /// These rights and those of `more`.
    pub fn with(self, more: Grant) -> Grant {
        Grant {
            read: self.read || more.read,
            write: self.write || more.write,
            owner: self.owner || more.owner,
        }
    }

    /// These rights but those of `less`.
    pub fn without(self, less: Grant) -> Grant {
        Grant {
            read: self.read && !less.read,
            write: self.write && !less.write,
            owner: self.owner && !less.owner,
        }
    }

    /// No right at all.
    pub fn is_none(self) -> bool {
        self == Grant::default()
    }
}

/// Who asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// An unsigned request.
    Anonymous,
    /// The root key: every right, no policy applies.
    Root,
    /// Another access key, by id and name (what a policy's `Principal` names).
    Key { id: String, name: String },
}

/// The facts of one request a decision reads: who, what, on which resource, and the values of
/// the policy condition keys.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub principal: Principal,
    pub action: Action,
    /// The ARN of the bucket or object ([`resource_arn`]).
    pub resource: String,
    /// `aws:SourceIp`: the client (the peer, or who trusted proxies name).
    pub source_ip: Option<IpAddr>,
    /// `aws:Referer`, `aws:UserAgent`: the request headers, when sent.
    pub referer: Option<String>,
    pub user_agent: Option<String>,
    /// `aws:SecureTransport` (false until the store speaks TLS itself).
    pub secure_transport: bool,
    /// `aws:CurrentTime`.
    pub current_time: SystemTime,
    /// `s3:prefix` (empty when a listing names none), `s3:delimiter`, `s3:max-keys` (as
    /// sent): on listings only.
    pub prefix: Option<String>,
    pub delimiter: Option<String>,
    pub max_keys: Option<String>,
}

impl Request {
    /// The same request asking for another action on another resource (a copy's source, each
    /// key of a DeleteObjects).
    pub fn asking(&self, action: Action, resource: String) -> Request {
        Request {
            action,
            resource,
            ..self.clone()
        }
    }

    /// The same request reading the object `bucket`/`key` (a copy's source).
    pub fn reading(&self, bucket: &str, key: &str) -> Request {
        let action = Action {
            name: "s3:GetObject",
            class: Class::Read,
        };
        self.asking(action, resource_arn(bucket, key))
    }

    /// The same request listing `bucket` (whether a missing key may be told apart).
    pub fn listing(&self, bucket: &str) -> Request {
        let action = Action {
            name: "s3:ListBucket",
            class: Class::Read,
        };
        self.asking(action, resource_arn(bucket, ""))
    }
}

/// What a key holds: its grant on the bucket asked for, and whether it may create buckets.
/// (Anonymous clients and the root key hold none: they are decided without.)
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rights {
    pub grant: Grant,
    pub create_bucket: bool,
}

/// A bucket's Block Public Access settings (PutPublicAccessBlock).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct PublicAccessBlock {
    /// Refuse public ACLs (every public ACL is refused anyway: ACLs are disabled).
    pub block_public_acls: bool,
    /// Ignore the bucket's legacy `public-read` ACL.
    pub ignore_public_acls: bool,
    /// Refuse a public policy at PutBucketPolicy (AccessDenied).
    pub block_public_policy: bool,
    /// A public policy grants nothing to anonymous clients.
    pub restrict_public_buckets: bool,
}

/// What a bucket says about access to it.
#[derive(Debug, Clone, Copy, Default)]
pub struct BucketAccess<'a> {
    pub policy: Option<&'a Policy>,
    /// A `public-read` canned ACL stored before ACLs were disabled: still honoured as an
    /// anonymous GetObject of every object, unless `IgnorePublicAcls`.
    pub public_read_acl: bool,
    pub block: PublicAccessBlock,
}

/// The answer, and why (logged with the request at debug level; an anonymous request's
/// `Access` names the policy or the ACL that let it through).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The root key may do anything.
    Root,
    /// A grant of the key covers the action (or its create-bucket right).
    Grant,
    /// A bucket-policy statement allows it.
    PolicyAllow,
    /// The bucket's legacy `public-read` ACL allows it (a read of an object).
    PublicAcl,
    /// A bucket-policy statement denies it: nothing else counts.
    PolicyDeny,
    /// Nothing allows it.
    NoPermission,
}

impl Decision {
    pub fn is_allowed(self) -> bool {
        matches!(
            self,
            Decision::Root | Decision::Grant | Decision::PolicyAllow | Decision::PublicAcl
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Root => "root",
            Decision::Grant => "grant",
            Decision::PolicyAllow => "policy-allow",
            Decision::PublicAcl => "public-acl",
            Decision::PolicyDeny => "policy-deny",
            Decision::NoPermission => "no-permission",
        }
    }
}

/// The one access decision: root → allowed; an explicit policy Deny wins; then a grant (keys
/// only) or a policy Allow (not for anonymous clients when `RestrictPublicBuckets` meets a
/// public policy), or the legacy public-read ACL for an object read; else denied.
pub fn decide(request: &Request, rights: Rights, bucket: &BucketAccess) -> Decision {
    if request.principal == Principal::Root {
        return Decision::Root;
    }
    let verdict = bucket
        .policy
        .map_or(Verdict::NotApplicable, |p| p.evaluate(request));
    if verdict == Verdict::Deny {
        return Decision::PolicyDeny;
    }
    let class = request.action.class;
    if matches!(request.principal, Principal::Key { .. })
        && (rights.grant.covers(class) || (class == Class::CreateBucket && rights.create_bucket))
    {
        return Decision::Grant;
    }
    let restricted = bucket.block.restrict_public_buckets
        && request.principal == Principal::Anonymous
        && bucket.policy.is_some_and(Policy::is_public);
    if verdict == Verdict::Allow && !restricted {
        return Decision::PolicyAllow;
    }
    let object_read = request.action.name == "s3:GetObject" && request.resource.contains('/');
    if object_read && bucket.public_read_acl && !bucket.block.ignore_public_acls {
        return Decision::PublicAcl;
    }
    Decision::NoPermission
}

/// The ARN a policy's `Resource` is matched against: the bucket's, or one object's.
pub fn resource_arn(bucket: &str, key: &str) -> String {
    match (bucket, key) {
        ("", _) => "*".to_owned(),
        (bucket, "") => format!("arn:aws:s3:::{bucket}"),
        (bucket, key) => format!("arn:aws:s3:::{bucket}/{key}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_cover_their_class_only() {
        let read = Grant {
            read: true,
            ..Grant::default()
        };
        assert!(read.covers(Class::Read));
        assert!(!read.covers(Class::Write));
        assert!(!read.covers(Class::Owner));
        assert!(read.covers(Class::Service));
        let all = Grant {
            read: true,
            write: true,
            owner: true,
        };
        assert!(!all.covers(Class::CreateBucket));
        assert!(!all.covers(Class::Root));
    }

    #[test]
    fn rights_are_added_and_taken_one_by_one() {
        let rw = Grant::READ.with(Grant::WRITE);
        assert_eq!((rw.read, rw.write, rw.owner), (true, true, false));
        assert_eq!(rw.without(Grant::READ), Grant::WRITE);
        assert_eq!(Grant::ALL.without(Grant::ALL), Grant::default());
        assert!(Grant::WRITE.without(Grant::WRITE).is_none());
        assert!(!Grant::READ.without(Grant::WRITE).is_none());
    }

    #[test]
    fn resources_are_arns() {
        assert_eq!(resource_arn("b", ""), "arn:aws:s3:::b");
        assert_eq!(resource_arn("b", "a/c"), "arn:aws:s3:::b/a/c");
        assert_eq!(resource_arn("", ""), "*");
    }

    fn request(principal: Principal, name: &'static str, class: Class, key: &str) -> Request {
        Request {
            principal,
            action: Action { name, class },
            resource: resource_arn("b", key),
            source_ip: None,
            referer: None,
            user_agent: None,
            secure_transport: false,
            current_time: SystemTime::UNIX_EPOCH,
            prefix: None,
            delimiter: None,
            max_keys: None,
        }
    }

    #[test]
    fn the_decision_follows_awss_order() {
        let policy = Policy::parse(
            "b",
            r#"{"Statement":[
            {"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"},
            {"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::b/secret/*"}]}"#,
        )
        .unwrap();
        let bucket = BucketAccess {
            policy: Some(&policy),
            ..BucketAccess::default()
        };
        let key = || Principal::Key {
            id: "AK".into(),
            name: "app".into(),
        };
        let writer = Rights {
            grant: Grant {
                write: true,
                ..Grant::default()
            },
            create_bucket: false,
        };
        let none = Rights::default();
        let cases = [
            (
                Principal::Root,
                "s3:GetObject",
                Class::Read,
                "secret/x",
                none,
                Decision::Root,
            ),
            (
                Principal::Anonymous,
                "s3:GetObject",
                Class::Read,
                "a",
                none,
                Decision::PolicyAllow,
            ),
            (
                Principal::Anonymous,
                "s3:GetObject",
                Class::Read,
                "secret/x",
                none,
                Decision::PolicyDeny,
            ),
            (
                Principal::Anonymous,
                "s3:PutObject",
                Class::Write,
                "a",
                writer,
                Decision::NoPermission,
            ),
            (
                Principal::Anonymous,
                "s3:ListAllMyBuckets",
                Class::Service,
                "",
                none,
                Decision::NoPermission,
            ),
            (
                key(),
                "s3:PutObject",
                Class::Write,
                "a",
                writer,
                Decision::Grant,
            ),
            (
                key(),
                "s3:PutObject",
                Class::Write,
                "secret/x",
                writer,
                Decision::PolicyDeny,
            ),
            (
                key(),
                "s3:PutObject",
                Class::Write,
                "a",
                none,
                Decision::NoPermission,
            ),
            (
                key(),
                "s3:GetObject",
                Class::Read,
                "a",
                none,
                Decision::PolicyAllow,
            ),
            (
                key(),
                "s3:CreateBucket",
                Class::CreateBucket,
                "",
                Rights {
                    create_bucket: true,
                    ..none
                },
                Decision::Grant,
            ),
        ];
        for (principal, name, class, key, rights, decision) in cases {
            let r = request(principal.clone(), name, class, key);
            assert_eq!(
                decide(&r, rights, &bucket),
                decision,
                "{principal:?} {name} {key}"
            );
        }
        // RestrictPublicBuckets: the public policy no longer opens anything to anonymous
        // clients (its Deny still holds for everyone); keys are of the owner's account.
        let restricted = BucketAccess {
            block: PublicAccessBlock {
                restrict_public_buckets: true,
                ..PublicAccessBlock::default()
            },
            ..bucket
        };
        let anonymous = request(Principal::Anonymous, "s3:GetObject", Class::Read, "a");
        assert_eq!(
            decide(&anonymous, none, &restricted),
            Decision::NoPermission
        );
        let app = request(key(), "s3:GetObject", Class::Read, "a");
        assert_eq!(decide(&app, none, &restricted), Decision::PolicyAllow);
    }

    #[test]
    fn a_legacy_public_read_acl_opens_object_reads_unless_ignored() {
        let mut bucket = BucketAccess {
            public_read_acl: true,
            ..BucketAccess::default()
        };
        let get = request(Principal::Anonymous, "s3:GetObject", Class::Read, "k");
        let list = request(Principal::Anonymous, "s3:ListBucket", Class::Read, "");
        let put = request(Principal::Anonymous, "s3:PutObject", Class::Write, "k");
        assert_eq!(
            decide(&get, Rights::default(), &bucket),
            Decision::PublicAcl
        );
        assert_eq!(
            decide(&list, Rights::default(), &bucket),
            Decision::NoPermission
        );
        assert_eq!(
            decide(&put, Rights::default(), &bucket),
            Decision::NoPermission
        );
        bucket.block.ignore_public_acls = true;
        assert_eq!(
            decide(&get, Rights::default(), &bucket),
            Decision::NoPermission
        );
    }
}
