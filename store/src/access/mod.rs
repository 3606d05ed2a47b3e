//! Who may do what: the one access decision, shared by the store and the edge.
//!
//! ```text
//!  request ─► s3::route (Endpoint::action: IAM action + grant class)
//!          ─► FrontEnd::authorize ─► access::decide(principal, action, resource, grant, policy)
//! ```
//!
//! The rule, as AWS evaluates it: the root key may do anything; otherwise an explicit `Deny`
//! in the bucket policy wins; otherwise a grant covering the action or a policy `Allow`
//! permits; otherwise AccessDenied. This module knows no HTTP and no storage: it is given the
//! facts and answers.

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
}
