//! The change log: every committed mutation gets a sequence number in the very transaction
//! that commits it, so the log holds exactly what was committed, in commit order, and a
//! crash loses an event only together with the change it tells of.
//!
//! ```text
//!   changes  seq (u64)        → StoredChange (JSON)  time, kind, bucket, key, etag, ...
//!   feed     "last_seq"       → u64 (big endian)     the last number given; kept when pruning
//!                                                    empties `changes`, so numbers only grow
//!            "store_id"       → 32 hex               made when the index is created: an edge
//!                                                    told another id knows the data was replaced
//! ```
//!
//! A write records its events with [`record`] inside its transaction; the index itself, just
//! before each commit, prunes events older than [`Retention::max_age`] or past
//! [`Retention::max_events`] and notes the last number, which it announces to subscribers once
//! the commit returned ([`super::index::Index::subscribe`]): readers of the feed are woken by
//! commits, never by polling the disk.

use std::time::{Duration, SystemTime};

use redb::{
    ReadTransaction, ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction,
};
use serde::{Deserialize, Serialize};

use super::codec;
use super::error::Result;

pub(in crate::engine) const CHANGES: TableDefinition<u64, &[u8]> = TableDefinition::new("changes");
pub(in crate::engine) const FEED: TableDefinition<&str, &[u8]> = TableDefinition::new("feed");
const LAST_SEQ: &str = "last_seq";
const STORE_ID: &str = "store_id";
/// Events older than the retention removed by one commit at most, so a commit after a long
/// quiet spell does not stall on a large prune (the next commits take the rest).
const PRUNE_BATCH: u64 = 1024;

/// How long and how many events the log keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub max_age: Duration,
    pub max_events: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            max_age: Duration::from_secs(86_400),
            max_events: 1_000_000,
        }
    }
}

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// An object was written (PUT, copy, completed upload, headers replaced).
    Put,
    /// An object was deleted (DeleteObject, each key of DeleteObjects).
    Delete,
    BucketCreate,
    BucketDelete,
    /// The bucket policy (or the legacy public-read ACL flag) changed.
    Policy,
    /// The bucket's Public Access Block changed.
    PublicAccess,
    Website,
    Cors,
    /// An access key was created or deleted, or its right to create buckets changed.
    Key,
    /// A key's grant on a bucket changed.
    Grant,
    /// `POST /_outpost/invalidations`: paths (`/bucket/key`, `prefix*`) to drop everywhere.
    Invalidation,
}

impl ChangeKind {
    pub const ALL: [ChangeKind; 11] = [
        ChangeKind::Put,
        ChangeKind::Delete,
        ChangeKind::BucketCreate,
        ChangeKind::BucketDelete,
        ChangeKind::Policy,
        ChangeKind::PublicAccess,
        ChangeKind::Website,
        ChangeKind::Cors,
        ChangeKind::Key,
        ChangeKind::Grant,
        ChangeKind::Invalidation,
    ];

    /// The name on the wire and in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Put => "put",
            ChangeKind::Delete => "delete",
            ChangeKind::BucketCreate => "bucket_create",
            ChangeKind::BucketDelete => "bucket_delete",
            ChangeKind::Policy => "policy",
            ChangeKind::PublicAccess => "public_access",
            ChangeKind::Website => "website",
            ChangeKind::Cors => "cors",
            ChangeKind::Key => "key",
            ChangeKind::Grant => "grant",
            ChangeKind::Invalidation => "invalidation",
        }
    }
}

/// One change, as recorded (the sequence number and time are added by [`record`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub kind: ChangeKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Puts: the new object's ETag as the `ETag` header carries it (quoted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// Key and grant changes: whose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    /// Invalidations: the paths.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
}

impl Change {
    pub fn new(kind: ChangeKind) -> Change {
        Change {
            kind,
            bucket: None,
            key: None,
            etag: None,
            access_key_id: None,
            paths: Vec::new(),
        }
    }

    pub fn bucket(kind: ChangeKind, bucket: &str) -> Change {
        Change {
            bucket: Some(bucket.to_owned()),
            ..Change::new(kind)
        }
    }

    pub fn put(bucket: &str, key: &str, etag: &str) -> Change {
        Change {
            key: Some(key.to_owned()),
            etag: Some(format!("\"{etag}\"")),
            ..Change::bucket(ChangeKind::Put, bucket)
        }
    }

    pub fn delete(bucket: &str, key: &str) -> Change {
        Change {
            key: Some(key.to_owned()),
            ..Change::bucket(ChangeKind::Delete, bucket)
        }
    }

    pub fn key(kind: ChangeKind, access_key_id: &str, bucket: Option<&str>) -> Change {
        Change {
            access_key_id: Some(access_key_id.to_owned()),
            bucket: bucket.map(str::to_owned),
            ..Change::new(kind)
        }
    }
}

/// A committed change and its place in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub seq: u64,
    pub time: SystemTime,
    pub change: Change,
}

/// What a read of the log after some sequence number found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangesAfter {
    /// The events after it, in order (none: nothing new), and the last number given.
    Events { events: Vec<Event>, last: u64 },
    /// Events after it are no longer all kept (older than the retention), or it is past the
    /// last number given (the data was replaced by an older copy): the reader missed events.
    Gone { oldest: u64, last: u64 },
}

#[derive(Serialize, Deserialize)]
struct StoredChange {
    time_ms: u64,
    #[serde(flatten)]
    change: Change,
}

/// Records `change` in `txn` under the next sequence number, which it returns.
pub fn record(txn: &WriteTransaction, change: Change) -> Result<u64> {
    let mut feed = txn.open_table(FEED)?;
    let seq = read_u64(&feed, LAST_SEQ)? + 1;
    feed.insert(LAST_SEQ, seq.to_be_bytes().as_slice())?;
    let row = StoredChange {
        time_ms: codec::now_ms(),
        change,
    };
    txn.open_table(CHANGES)?
        .insert(seq, codec::encode(&row)?.as_slice())?;
    Ok(seq)
}

/// Run by the index before each commit: prunes past `retention` (as of `now_ms`) and returns
/// the last sequence number and how many events are kept.
pub(in crate::engine) fn before_commit(
    txn: &WriteTransaction,
    retention: &Retention,
    now_ms: u64,
) -> Result<(u64, u64)> {
    let mut changes = txn.open_table(CHANGES)?;
    let over = changes.len()?.saturating_sub(retention.max_events);
    let cutoff = now_ms.saturating_sub(retention.max_age.as_millis() as u64);
    let mut removed = 0;
    while removed < over + PRUNE_BATCH {
        let old = match changes.first()? {
            None => break,
            Some((_, row)) => {
                removed < over || codec::decode::<StoredChange>(row.value())?.time_ms < cutoff
            }
        };
        if !old {
            break;
        }
        changes.pop_first()?;
        removed += 1;
    }
    let kept = changes.len()?;
    let last = read_u64(&txn.open_table(FEED)?, LAST_SEQ)?;
    Ok((last, kept))
}

/// At the index's creation: gives it a store id if it has none.
pub(in crate::engine) fn init(txn: &WriteTransaction) -> Result<()> {
    txn.open_table(CHANGES)?;
    let mut feed = txn.open_table(FEED)?;
    if feed.get(STORE_ID)?.is_none() {
        let id = uuid::Uuid::new_v4().simple().to_string();
        feed.insert(STORE_ID, id.as_bytes())?;
    }
    Ok(())
}

/// The store id, the last sequence number and the count of events kept.
pub(in crate::engine) fn state(txn: &ReadTransaction) -> Result<(String, u64, u64)> {
    let feed = txn.open_table(FEED)?;
    let id = match feed.get(STORE_ID)? {
        Some(v) => String::from_utf8_lossy(v.value()).into_owned(),
        None => String::new(),
    };
    let kept = txn.open_table(CHANGES)?.len()?;
    Ok((id, read_u64(&feed, LAST_SEQ)?, kept))
}

/// Up to `limit` events after `after` (see [`ChangesAfter`]).
pub(in crate::engine) fn after(
    txn: &ReadTransaction,
    after: u64,
    limit: usize,
) -> Result<ChangesAfter> {
    let last = read_u64(&txn.open_table(FEED)?, LAST_SEQ)?;
    let changes = txn.open_table(CHANGES)?;
    let oldest = match changes.first()? {
        Some((seq, _)) => seq.value(),
        None => last + 1,
    };
    if after > last || after + 1 < oldest {
        return Ok(ChangesAfter::Gone { oldest, last });
    }
    let mut events = Vec::new();
    for entry in changes.range(after + 1..)?.take(limit) {
        let (seq, row) = entry?;
        let row: StoredChange = codec::decode(row.value())?;
        events.push(Event {
            seq: seq.value(),
            time: codec::from_ms(row.time_ms),
            change: row.change,
        });
    }
    Ok(ChangesAfter::Events { events, last })
}

fn read_u64(t: &impl ReadableTable<&'static str, &'static [u8]>, name: &str) -> Result<u64> {
    Ok(t.get(name)?
        .and_then(|v| <[u8; 8]>::try_from(v.value()).ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0))
}
