//! What an edge needs to check its own clients, as the store hands it out
//! (`GET /_outpost/admin/edge/access`, callable by the root key and edge keys): every non-edge
//! key with its grants and its SigV4 signing keys, and every bucket's policy, Block Public
//! Access settings and legacy public-read flag.
//!
//! ```text
//!   store: engine (keys, grants, buckets) ─► EdgeAccess::build ─► JSON + ETag (its SHA-256)
//!   edge:  poll (If-None-Match) ─► 304 | EdgeAccess ─► Published (parsed policies, keys by id)
//!                                                    ─► auth keyring + access::decide
//! ```
//!
//! Secrets never leave the store: a key travels as the SigV4 signing keys derived from its
//! secret for the store's region and service `s3`, one per UTC date from [`DAYS_BACK`] days
//! ago to tomorrow (a presigned URL may be up to 7 days old; a client's clock may be ahead).
//! A signing key signs only requests scoped to its date, region and service; SigV2 needs the
//! secret itself, so the edge relays SigV2 requests to the store untouched.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::{BucketAccess, Grant, Policy, PublicAccessBlock, Rights};

/// How many UTC dates before today a key's signing keys cover (SigV4 presigned URLs live at
/// most 7 days).
pub const DAYS_BACK: u64 = 7;

/// The document, as it travels (the admin API adds its `request_id`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct EdgeAccess {
    /// The region the signing keys are derived for.
    pub region: String,
    /// Is the caller an edge key (false: the root key)?
    pub caller_is_edge: bool,
    /// Every key but the edge keys, by access key id.
    pub keys: BTreeMap<String, EdgeKey>,
    /// Every bucket, by name.
    pub buckets: BTreeMap<String, EdgeBucket>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EdgeKey {
    pub name: String,
    pub create_bucket: bool,
    pub grants: BTreeMap<String, Grant>,
    /// `YYYYMMDD` → hex SigV4 signing key for that date, the region and `s3`.
    pub signing_keys: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EdgeBucket {
    /// The policy's JSON text, as stored.
    pub policy: Option<String>,
    pub public_access_block: PublicAccessBlock,
    pub public_read_acl: bool,
}

/// The UTC dates (`YYYYMMDD`) signing keys are handed out for at `now`.
pub fn signing_dates(now: SystemTime) -> Vec<String> {
    let day = Duration::from_secs(86_400);
    let format = time::macros::format_description!("[year][month][day]");
    (0..=DAYS_BACK + 1)
        .filter_map(|i| {
            let t = (now + day).checked_sub(day * i as u32)?;
            time::OffsetDateTime::from(t).format(format).ok()
        })
        .collect()
}

/// The edge's current [`Published`] document, replaced whole by each poll that brings a new
/// one and read by every request. Cheap to clone.
#[derive(Clone, Default)]
pub struct PublishedView(Arc<RwLock<Option<Arc<Published>>>>);

impl PublishedView {
    /// The last document installed (None before the first poll answered).
    pub fn load(&self) -> Option<Arc<Published>> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn install(&self, published: Arc<Published>) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Some(published);
    }
}

/// A published document made ready for requests: policies parsed, signing keys decoded.
#[derive(Debug, Default)]
pub struct Published {
    pub region: String,
    /// The store refused the edge's own key ([`Published::refused`]).
    pub edge_key_refused: bool,
    keys: HashMap<String, PublishedKey>,
    buckets: HashMap<String, PublishedBucket>,
}

#[derive(Debug)]
struct PublishedKey {
    name: String,
    create_bucket: bool,
    grants: BTreeMap<String, Grant>,
    signing_keys: HashMap<String, [u8; 32]>,
}

#[derive(Debug, Default)]
struct PublishedBucket {
    policy: Option<Policy>,
    block: PublicAccessBlock,
    public_read_acl: bool,
}

impl Published {
    /// What an edge whose own key the store refuses (deleted) goes by: no key, no bucket,
    /// and its own key refused too. No change would reach it any more, so the rights it last
    /// learnt are not to be trusted for a moment longer.
    pub fn refused() -> Arc<Published> {
        Arc::new(Published {
            edge_key_refused: true,
            ..Published::default()
        })
    }

    /// Parses `doc`. A policy that does not parse (a store newer than this edge) allows
    /// nothing and denies everything on its bucket: never fail open.
    pub fn new(doc: EdgeAccess) -> Arc<Published> {
        let keys = doc
            .keys
            .into_iter()
            .map(|(id, key)| {
                let signing_keys = key
                    .signing_keys
                    .iter()
                    .filter_map(|(date, hex_key)| {
                        let mut k = [0u8; 32];
                        hex::decode_to_slice(hex_key, &mut k).ok()?;
                        Some((date.clone(), k))
                    })
                    .collect();
                let key = PublishedKey {
                    name: key.name,
                    create_bucket: key.create_bucket,
                    grants: key.grants,
                    signing_keys,
                };
                (id, key)
            })
            .collect();
        let buckets = doc
            .buckets
            .into_iter()
            .map(|(name, b)| {
                let policy = b.policy.as_deref().map(|text| Policy::stored(&name, text));
                let bucket = PublishedBucket {
                    policy,
                    block: b.public_access_block,
                    public_read_acl: b.public_read_acl,
                };
                (name, bucket)
            })
            .collect();
        Arc::new(Published {
            region: doc.region,
            edge_key_refused: false,
            keys,
            buckets,
        })
    }

    /// The signing key of `access_key_id` for `date` (`YYYYMMDD`).
    pub fn signing_key(&self, access_key_id: &str, date: &str) -> Option<[u8; 32]> {
        self.keys
            .get(access_key_id)?
            .signing_keys
            .get(date)
            .copied()
    }

    pub fn knows(&self, access_key_id: &str) -> bool {
        self.keys.contains_key(access_key_id)
    }

    /// The name of the key `access_key_id`.
    pub fn name(&self, access_key_id: &str) -> Option<&str> {
        self.keys.get(access_key_id).map(|k| k.name.as_str())
    }

    /// The rights of `access_key_id` on `bucket` (none for an unknown key).
    pub fn rights(&self, access_key_id: Option<&str>, bucket: &str) -> Rights {
        access_key_id
            .and_then(|id| self.keys.get(id))
            .map_or_else(Rights::default, |k| Rights {
                grant: k.grants.get(bucket).copied().unwrap_or_default(),
                create_bucket: k.create_bucket,
            })
    }

    /// What `bucket` says about access (nothing for a bucket it does not list).
    pub fn bucket(&self, bucket: &str) -> BucketAccess<'_> {
        self.buckets
            .get(bucket)
            .map_or_else(BucketAccess::default, |b| BucketAccess {
                policy: b.policy.as_ref(),
                public_read_acl: b.public_read_acl,
                block: b.block,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_run_from_a_week_back_to_tomorrow() {
        // 2026-12-01T00:30:00Z
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_085_000);
        let dates = signing_dates(now);
        assert_eq!(dates.len(), DAYS_BACK as usize + 2);
        assert_eq!(dates[0], "20261202");
        assert_eq!(dates[1], "20261201");
        assert_eq!(dates.last().unwrap(), "20261124");
    }

    #[test]
    fn an_unparsable_policy_denies_everything() {
        let mut doc = EdgeAccess::default();
        doc.buckets.insert(
            "b".into(),
            EdgeBucket {
                policy: Some("{not a policy".into()),
                ..EdgeBucket::default()
            },
        );
        let published = Published::new(doc);
        let request = super::super::Request {
            principal: super::super::Principal::Anonymous,
            action: super::super::Action {
                name: "s3:GetObject",
                class: super::super::Class::Read,
            },
            resource: super::super::resource_arn("b", "k"),
            source_ip: None,
            referer: None,
            user_agent: None,
            secure_transport: false,
            current_time: SystemTime::now(),
            prefix: None,
            delimiter: None,
            max_keys: None,
        };
        let bucket = published.bucket("b");
        let decision = super::super::decide(&request, Rights::default(), &bucket);
        assert_eq!(decision, super::super::Decision::PolicyDeny);
    }
}
