//! STORAGE: the metadata index (redb) plus blobs (object_store). Never sees HTTP.
//!
//! ```text
//!   Engine ──► objects.rs    PUT / GET / DELETE / LIST: blob first, then index, then cleanup
//!          ├─► multipart.rs  uploads and parts; a completed upload's segments are its part blobs
//!          ├─► index.rs      redb: buckets, objects (bucket,key), uploads, parts — ordered, ACID;
//!          │                 small bodies inline; group commit of concurrent writes
//!          ├─► changes.rs    the change log: a sequence number per committed mutation, in its
//!          │                 transaction; read after a number, woken by commits (the feed)
//!          ├─► keys.rs       access keys, grants, bucket owners; the live key directory
//!          ├─► blobs.rs      object_store: immutable blobs named by generated ids, never by keys
//!          ├─► durable.rs    StagedFile: staging file → fsync → rename → fsync dir, removed on drop;
//!          │                 directories that survive a power cut (fsync of parents)
//!          ├─► error.rs      the engine's error kinds (NotFound, Precondition, Invalid, NoSpace…);
//!          │                 crate::error maps them to S3 codes, in one place
//!          ├─► space.rs      free space on the data's filesystem (a full disk is reported, not 500)
//!          └─► sweep.rs      start-up removal of orphan blobs / staging files; stale uploads
//!
//!   <data_dir>/index.redb                 the index (and bodies ≤ objects::INLINE_MAX)
//!   <data_dir>/blobs/<2 hex>/<32 hex>     one blob per object body or multipart part
//!   <data_dir>/blobs/<2 hex>/.<rand>.tmp  a blob being written (swept at open after a crash)
//! ```
//!
//! Tests that drive a whole engine live in `tests/<area>.rs`; pure logic is tested inline.
//!
//! Contract every write keeps: the body is streamed into a *new* blob (hashing on the way), the
//! blob is made durable (fsync), then the index entry is committed in one redb transaction, then
//! any blob the commit made unreachable is deleted. A PUT body of at most
//! `objects::INLINE_MAX` bytes skips the blob: it is written with its entry, in the same
//! transaction. Object and part commits are group-committed ([`index::Index::write_grouped`]):
//! one transaction and one fsync for the writes that queued meanwhile, each checked and
//! answered on its own, none answered before that commit returned. A crash at any point leaves the old object or
//! the new one, and at worst an orphan blob that [`Engine::open`] sweeps away. A body stream that
//! yields an error, or a `verify` callback that refuses the digests, aborts the write before the
//! commit: nothing becomes visible.

pub mod blobs;
pub mod changes;
pub mod checksum;
mod codec;
pub mod durable;
mod error;
pub mod index;
pub mod keys;
pub mod multipart;
mod objects;
pub mod space;
pub mod sweep;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::stream::BoxStream;
use redb::ReadableTable as _;
use serde::{Deserialize, Serialize};

pub use changes::{Change, ChangeKind, ChangesAfter, Event};
pub use checksum::{ChecksumAlgorithm, ChecksumType, ChecksumValue};
pub use multipart::MIN_PART_SIZE;
pub use objects::MAX_KEY_LEN;

pub use error::{Error, Invalid, Kind, Result, What};

/// A stream of body bytes, shared by the protocol layer and the engine. Its errors are the
/// protocol's (a client's body fails as the client should hear it); errors abort whatever
/// consumes it.
pub type ByteStream = BoxStream<'static, crate::error::Result<Bytes>>;

/// Where and how the engine keeps its data.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Data directory: `index.redb` and `blobs/` live under it.
    pub data_dir: PathBuf,
    /// Largest object a single PutObject (or one part) may carry, in bytes.
    pub max_object_size: u64,
    /// Multipart uploads idle for longer than this are aborted by [`Engine::sweep_stale_uploads`].
    pub stale_upload_age: Duration,
    /// How long and how many events the change log keeps.
    pub changes: changes::Retention,
}

/// Headers stored with an object and returned on GET/HEAD.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ObjectHeaders {
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub content_disposition: Option<String>,
    pub content_language: Option<String>,
    pub cache_control: Option<String>,
    /// Raw `Expires` header value as the client sent it.
    pub expires: Option<String>,
    pub website_redirect_location: Option<String>,
    /// `x-amz-meta-*` pairs, names lower-cased without the prefix, in sorted order.
    pub user_metadata: Vec<(String, String)>,
}

/// The full-object checksum stored with an object (single part, or multipart as declared).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredChecksum {
    pub algorithm: ChecksumAlgorithm,
    /// Base64 value as S3 returns it; COMPOSITE values end in `-N`.
    pub value: String,
    pub kind: ChecksumType,
}

/// One part of a completed multipart object, kept for `partNumber` reads and attributes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartSummary {
    pub size: u64,
    /// Hex MD5 of the part (no quotes).
    pub etag: String,
    /// Base64 checksum of the part, in the upload's algorithm.
    pub checksum: Option<String>,
}

/// What the index knows about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
    /// Hex MD5, or `hex(md5(concat(part md5s)))-N` for multipart, without quotes.
    pub etag: String,
    pub last_modified: SystemTime,
    pub headers: ObjectHeaders,
    pub checksum: Option<StoredChecksum>,
    /// Empty for single-part objects.
    pub parts: Vec<PartSummary>,
    /// The change log's number of the commit that wrote this version (0: older than the log).
    pub seq: u64,
}

/// Per-bucket settings kept in the index. Opaque documents are stored as sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BucketSettings {
    /// The bucket policy JSON as the client sent it.
    pub policy: Option<String>,
    /// Canned ACL `public-read` (or `public-read-write`) was set on the bucket before ACLs
    /// were disabled (no request can set it now): still honoured as an anonymous read.
    pub public_read_acl: bool,
    /// The website configuration XML as the client sent it.
    pub website: Option<String>,
    /// PutPublicAccessBlock's settings (`None`: never set, or deleted).
    pub public_access_block: Option<crate::access::PublicAccessBlock>,
    /// The CORS configuration XML, validated and written back by the protocol layer
    /// (`s3::cors`) at PutBucketCors.
    pub cors: Option<String>,
}

impl BucketSettings {
    /// The kinds of change from `old` to these settings.
    fn changed_from(&self, old: &BucketSettings) -> Vec<ChangeKind> {
        let mut kinds = Vec::new();
        if self.policy != old.policy || self.public_read_acl != old.public_read_acl {
            kinds.push(ChangeKind::Policy);
        }
        if self.public_access_block != old.public_access_block {
            kinds.push(ChangeKind::PublicAccess);
        }
        if self.website != old.website {
            kinds.push(ChangeKind::Website);
        }
        if self.cors != old.cors {
            kinds.push(ChangeKind::Cors);
        }
        kinds
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketInfo {
    pub name: String,
    pub created: SystemTime,
    pub settings: BucketSettings,
}

/// Preconditions a write must meet, checked atomically inside the commit transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteCondition {
    /// `If-None-Match: *`: fail with PreconditionFailed if the key exists.
    pub if_none_match_any: bool,
    /// `If-Match: "etag"` (unquoted here; `*` means "must exist"): fail with PreconditionFailed
    /// if the current ETag differs, NoSuchKey if there is no object.
    pub if_match: Option<String>,
    /// `x-amz-if-match-last-modified-time` (deletes): an existing object must have been last
    /// modified in this second, else PreconditionFailed.
    pub if_match_last_modified: Option<SystemTime>,
    /// `x-amz-if-match-size` (deletes): an existing object must have this size, else
    /// PreconditionFailed.
    pub if_match_size: Option<u64>,
}

/// What a PUT (or part upload) computed while streaming the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digests {
    pub size: u64,
    pub md5: [u8; 16],
    /// Present when the request asked for a checksum algorithm.
    pub checksum: Option<ChecksumValue>,
}

/// How a new object is written.
#[derive(Debug, Clone, Default)]
pub struct PutOptions {
    pub headers: ObjectHeaders,
    /// Algorithm to compute and store (from `x-amz-checksum-*`, `x-amz-sdk-checksum-algorithm`
    /// or the trailer name). MD5 is always computed for the ETag.
    pub checksum: Option<ChecksumAlgorithm>,
    pub condition: WriteCondition,
}

/// Called with the computed digests once the body has been fully read and before the commit.
/// Returning an error (e.g. BadDigest) aborts the write, and the
/// engine passes that error back as [`Kind::Rejected`].
pub type Verify = Box<dyn FnOnce(&Digests) -> crate::error::Result<()> + Send>;

/// A ListObjects query. `start_after` is exclusive and may be a key or a common prefix.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub prefix: String,
    pub delimiter: Option<String>,
    pub start_after: Option<String>,
    pub max_keys: usize,
}

#[derive(Debug, Clone, Default)]
pub struct ListPage {
    pub objects: Vec<ObjectInfo>,
    pub common_prefixes: Vec<String>,
    pub is_truncated: bool,
    /// Last key or common prefix returned, to resume from when truncated.
    pub next_marker: Option<String>,
}

/// A multipart upload in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadInfo {
    pub bucket: String,
    pub key: String,
    pub upload_id: String,
    pub initiated: SystemTime,
    pub headers: ObjectHeaders,
    pub checksum: Option<(ChecksumAlgorithm, ChecksumType)>,
}

/// An uploaded part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartInfo {
    pub part_number: u32,
    pub size: u64,
    /// Hex MD5 without quotes.
    pub etag: String,
    pub last_modified: SystemTime,
    /// Base64 checksum in the upload's algorithm, if any.
    pub checksum: Option<String>,
}

/// What a CompleteMultipartUpload answers: the object the upload became, as it was at
/// completion (a retry answers the same, even if the key was written again since).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedUpload {
    pub key: String,
    pub size: u64,
    /// `hex(md5(concat(part md5s)))-N`, without quotes.
    pub etag: String,
    pub checksum: Option<StoredChecksum>,
    pub completed: SystemTime,
}

/// A part as listed in CompleteMultipartUpload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedPart {
    pub part_number: u32,
    /// ETag as the client sent it, quotes stripped.
    pub etag: String,
    /// Base64 checksum the client listed for the part, if any.
    pub checksum: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct ListUploadsQuery {
    pub prefix: String,
    pub key_marker: Option<String>,
    pub upload_id_marker: Option<String>,
    pub max_uploads: usize,
}

#[derive(Debug, Clone, Default)]
pub struct ListPartsQuery {
    /// Exclusive: list parts with a number greater than this.
    pub part_number_marker: u32,
    pub max_parts: usize,
}

/// The checks behind [`Engine::readiness`], each Ok or Err(why).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    /// The index takes transactions (not waiting to be reopened after an I/O failure).
    pub index_open: std::result::Result<(), String>,
    /// The data directory has room and takes new files.
    pub data_dir_writable: std::result::Result<(), String>,
}

impl Readiness {
    pub fn ready(&self) -> bool {
        self.index_open.is_ok() && self.data_dir_writable.is_ok()
    }
}

/// The storage engine. Cheap to clone (shared handles inside).
#[derive(Clone)]
pub struct Engine {
    inner: std::sync::Arc<Inner>,
}

struct Inner {
    cfg: EngineConfig,
    index: index::Index,
    blobs: blobs::Blobs,
    /// The keys and grants as the last committed change left them (see keys.rs).
    keys: keys::KeyView,
}

impl Engine {
    /// Opens (creating if needed) the index and blob store under `cfg.data_dir`, then sweeps
    /// orphan blobs and staging files left by a crash.
    pub async fn open(cfg: EngineConfig) -> Result<Engine> {
        let data_dir = cfg.data_dir.clone();
        let dir = data_dir.clone();
        tokio::task::spawn_blocking(move || durable::create_dir_all(&dir)).await??;
        let index = index::Index::open(&data_dir.join("index.redb"), cfg.changes).await?;
        let blobs = blobs::Blobs::local(data_dir.join("blobs")).await?;
        let report = sweep::sweep_orphans(&index, &blobs).await?;
        let keys = keys::open_view(&index).await?;
        tracing::debug!(?report, "engine opened");
        Ok(Engine {
            inner: std::sync::Arc::new(Inner {
                cfg,
                index,
                blobs,
                keys,
            }),
        })
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.cfg
    }

    /// InsufficientStorage when a body of `len` bytes cannot fit in the free space of the
    /// blobs' filesystem: lets a request that declares its length be refused before its body
    /// is read. Remote blob stores are not checked.
    pub fn check_room(&self, len: u64) -> Result<()> {
        match self.inner.blobs.local_root() {
            Some(root) if !space::has_room(root, len) => Err(Error::new(Kind::NoSpace)),
            _ => Ok(()),
        }
    }

    /// Ok when the store can take writes; otherwise why not (for the health endpoint): the
    /// index waits to be reopened after an I/O failure, or the data directory is full.
    pub async fn writable(&self) -> std::result::Result<(), String> {
        let checks = self.readiness().await;
        checks.index_open.and(checks.data_dir_writable)
    }

    /// Each check readiness rests on, run now: Err(why) for a failed one.
    pub async fn readiness(&self) -> Readiness {
        let index_open = self.inner.index.writable().await;
        let dir = self.inner.cfg.data_dir.clone();
        let data_dir_writable = if !space::has_room(&dir, space::MIN_FREE_BYTES) {
            Err(format!(
                "less than {} KiB free in the data directory",
                space::MIN_FREE_BYTES >> 10
            ))
        } else {
            // A file created (and removed again) proves the directory takes new files: it is
            // there, writable, and not on a filesystem remounted read-only.
            let probe = tokio::task::spawn_blocking(move || {
                durable::StagedFile::create_in(&dir, 0o600).map(drop)
            });
            match probe.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "readiness: the data directory takes no new file");
                    Err(format!(
                        "the data directory takes no new file ({})",
                        e.kind()
                    ))
                }
                Err(e) => Err(format!("data directory check failed ({e})")),
            }
        };
        Readiness {
            index_open,
            data_dir_writable,
        }
    }

    // ----- buckets -----

    /// BucketAlreadyOwnedByYou if it exists. Name validation is the protocol layer's job.
    pub async fn create_bucket(&self, name: &str, settings: BucketSettings) -> Result<()> {
        let name = name.to_owned();
        self.inner
            .index
            .write(move |txn| {
                let record = index::BucketRecord {
                    created_ms: codec::now_ms(),
                    settings,
                    owner: None,
                };
                index::insert_new_bucket(txn, &name, &record)?;
                changes::record(txn, Change::bucket(ChangeKind::BucketCreate, &name))?;
                Ok(())
            })
            .await
    }

    /// NoSuchBucket; BucketNotEmpty if it holds objects. Aborts its multipart uploads and
    /// removes the grants on it, in the deleting transaction.
    pub async fn delete_bucket(&self, name: &str) -> Result<()> {
        let inner = std::sync::Arc::clone(&self.inner);
        let name = name.to_owned();
        objects::detached(async move {
            let (blobs, _) = keys::write_keys(&inner, move |txn| {
                let mut buckets = txn.open_table(index::BUCKETS)?;
                index::require_bucket(&buckets, &name)?;
                if index::bucket_has_objects(&txn.open_table(index::OBJECTS)?, &name)? {
                    return Err(Error::new(Kind::NotEmpty));
                }
                let blobs = multipart::remove_bucket_uploads(txn, &name)?;
                keys::remove_bucket_grants(txn, &name)?;
                buckets.remove(name.as_str())?;
                changes::record(txn, Change::bucket(ChangeKind::BucketDelete, &name))?;
                Ok(blobs)
            })
            .await?;
            inner.blobs.delete_all(blobs).await;
            Ok(())
        })
        .await
    }

    /// NoSuchBucket if absent.
    pub async fn bucket(&self, name: &str) -> Result<BucketInfo> {
        let name = name.to_owned();
        self.inner
            .index
            .read(move |txn| {
                let record = index::require_bucket(&txn.open_table(index::BUCKETS)?, &name)?;
                Ok(index::bucket_info(&name, record))
            })
            .await
    }

    /// All buckets, sorted by name.
    pub async fn list_buckets(&self) -> Result<Vec<BucketInfo>> {
        self.inner
            .index
            .read(|txn| {
                let mut out = Vec::new();
                for entry in txn.open_table(index::BUCKETS)?.iter()? {
                    let (k, v) = entry?;
                    out.push(index::bucket_info(k.value(), codec::decode(v.value())?));
                }
                Ok(out)
            })
            .await
    }

    /// Replaces the bucket's settings (policy, ACL flag, website, CORS, Public Access Block).
    /// NoSuchBucket if absent. Each setting that changed is an event of its kind.
    pub async fn set_bucket_settings(&self, name: &str, settings: BucketSettings) -> Result<()> {
        let name = name.to_owned();
        self.inner
            .index
            .write(move |txn| {
                let mut buckets = txn.open_table(index::BUCKETS)?;
                let mut record = index::require_bucket(&buckets, &name)?;
                for kind in settings.changed_from(&record.settings) {
                    changes::record(txn, Change::bucket(kind, &name))?;
                }
                record.settings = settings;
                buckets.insert(name.as_str(), codec::encode(&record)?.as_slice())?;
                Ok(())
            })
            .await
    }

    // ----- the change log (see changes.rs) -----

    /// Up to `limit` events after sequence number `after`, or Gone when some are no longer
    /// kept (or `after` is past the last number: other data).
    pub async fn changes_after(&self, after: u64, limit: usize) -> Result<ChangesAfter> {
        self.inner
            .index
            .read(move |txn| changes::after(txn, after, limit))
            .await
    }

    /// The last sequence number committed, announced after each commit that moved it.
    pub fn watch_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.index.subscribe()
    }

    /// Cancelled once [`Engine::close_feeds`] is called: a reader of the log stops then.
    pub fn feeds_closing(&self) -> tokio_util::sync::CancellationToken {
        self.inner.index.feeds_closing()
    }

    /// Ends every feed being sent (the server shuts down and waits for its connections).
    pub fn close_feeds(&self) {
        self.inner.index.close_feeds();
    }

    /// Readers of [`Engine::watch_changes`] now, and events the log keeps (for metrics).
    pub fn change_log_state(&self) -> (usize, u64) {
        let index = &self.inner.index;
        // The engine keeps one receiver-less sender; every receiver is a reader.
        (index.subscribers(), index.retained())
    }

    /// This store's data's id (made with its index), which the feed names.
    pub fn store_id(&self) -> &str {
        self.inner.index.store_id()
    }

    /// Records an invalidation of `paths` (`/bucket/key`, `prefix*`) as an event for every
    /// edge; its sequence number.
    pub async fn record_invalidation(&self, paths: Vec<String>) -> Result<u64> {
        self.inner
            .index
            .write(move |txn| {
                let change = Change {
                    paths: paths.clone(),
                    ..Change::new(ChangeKind::Invalidation)
                };
                changes::record(txn, change)
            })
            .await
    }

    // ----- objects -----

    /// Streams `body` into a new blob, computing MD5 and `opts.checksum`, fails with
    /// EntityTooLarge past `max_object_size`, calls `verify`, then commits atomically (checking
    /// `opts.condition` inside the transaction). NoSuchBucket if the bucket is absent.
    pub async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        opts: PutOptions,
        body: ByteStream,
        verify: Verify,
    ) -> Result<ObjectInfo> {
        objects::put(&self.inner, bucket, key, opts, body, verify).await
    }

    /// NoSuchBucket / NoSuchKey.
    pub async fn head_object(&self, bucket: &str, key: &str) -> Result<ObjectInfo> {
        Ok(objects::lookup(&self.inner, bucket, key).await?.info(key))
    }

    /// The object and a stream of `range` (inclusive start, exclusive end, already validated
    /// against the size by the caller; `None` = whole object). Multipart objects read only the
    /// segments that overlap the range. The stream reads in large chunks (≥ 256 KiB).
    pub async fn read_object(
        &self,
        bucket: &str,
        key: &str,
        range: Option<std::ops::Range<u64>>,
    ) -> Result<(ObjectInfo, ByteStream)> {
        objects::read(&self.inner, bucket, key, range).await
    }

    /// Same as [`Engine::read_object`] but reads from an already fetched `info` snapshot
    /// (so a conditional check and the read see the same version). Fails with NoSuchKey if that
    /// version was replaced in between.
    pub async fn read_version(
        &self,
        bucket: &str,
        info: &ObjectInfo,
        range: Option<std::ops::Range<u64>>,
    ) -> Result<ByteStream> {
        objects::read_version(&self.inner, bucket, info, range).await
    }

    /// Replaces only the headers of an existing object (copy onto itself with REPLACE); the
    /// data, ETag and checksums stay. Updates last_modified. NoSuchKey if absent.
    pub async fn replace_headers(
        &self,
        bucket: &str,
        key: &str,
        headers: ObjectHeaders,
    ) -> Result<ObjectInfo> {
        objects::replace_headers(&self.inner, bucket, key, headers).await
    }

    /// Deletes the key if present and `cond` holds, checked in the deleting transaction (an
    /// absent key is no error unless `cond.if_match` asks for one, as S3). NoSuchBucket if no
    /// bucket; PreconditionFailed / NoSuchKey from `cond`, with nothing deleted.
    pub async fn delete_object(&self, bucket: &str, key: &str, cond: WriteCondition) -> Result<()> {
        let mut outcomes =
            objects::delete(&self.inner, bucket, vec![(key.to_owned(), cond)]).await?;
        outcomes.pop().unwrap_or(Ok(()))
    }

    /// Deletes many keys in one transaction, each under its own condition; absent keys count as
    /// deleted. Returns each key's outcome in order: a key whose condition failed is kept and
    /// its error returned, the others are deleted.
    pub async fn delete_objects(
        &self,
        bucket: &str,
        keys: Vec<(String, WriteCondition)>,
    ) -> Result<Vec<Result<()>>> {
        objects::delete(&self.inner, bucket, keys).await
    }

    /// Lists keys in UTF-8 binary order. With a delimiter, keys sharing `prefix + ... +
    /// delimiter` fold into one common prefix, and the scan seeks past the whole group instead of
    /// walking it. At most `max_keys` entries (objects + prefixes) are returned.
    pub async fn list_objects(&self, bucket: &str, query: ListQuery) -> Result<ListPage> {
        Ok(objects::list(&self.inner, bucket, query).await?.0)
    }

    // ----- multipart (see multipart.rs) -----

    pub async fn create_upload(
        &self,
        bucket: &str,
        key: &str,
        headers: ObjectHeaders,
        checksum: Option<(ChecksumAlgorithm, ChecksumType)>,
    ) -> Result<UploadInfo> {
        multipart::create(&self.inner, bucket, key, headers, checksum).await
    }

    /// NoSuchUpload if the id is unknown or belongs to another key. Computes MD5 and the
    /// upload's checksum algorithm. Replaces an earlier part with the same number.
    pub async fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: ByteStream,
        verify: Verify,
    ) -> Result<PartInfo> {
        multipart::upload_part(
            &self.inner,
            bucket,
            key,
            upload_id,
            part_number,
            body,
            verify,
        )
        .await
    }

    pub async fn upload(&self, bucket: &str, key: &str, upload_id: &str) -> Result<UploadInfo> {
        multipart::upload(&self.inner, bucket, key, upload_id).await
    }

    /// Commits the listed parts as one object whose segments are the part blobs (no data copy).
    /// InvalidPartOrder, InvalidPart (missing / ETag or checksum mismatch), EntityTooSmall (a part
    /// other than the last under 5 MiB), BadDigest when `expected` (the whole-object checksum
    /// the client declared) differs from the one computed from the parts, then the condition,
    /// all in one transaction. Unlisted parts' blobs are deleted after the commit.
    ///
    /// The same transaction records the answer under the upload id, kept for
    /// [`multipart::COMPLETED_RETENTION`]: a retry (same bucket, key, upload id and parts list)
    /// gets the same answer, whatever `condition` says (the write it asks about is done);
    /// another parts list for a completed upload is NoSuchUpload, as for any finished upload.
    pub async fn complete_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: Vec<CompletedPart>,
        condition: WriteCondition,
        expected: Option<ChecksumValue>,
    ) -> Result<CompletedUpload> {
        multipart::complete(
            &self.inner,
            bucket,
            key,
            upload_id,
            parts,
            condition,
            expected,
        )
        .await
    }

    /// NoSuchUpload if unknown. Deletes the parts' blobs.
    pub async fn abort_upload(&self, bucket: &str, key: &str, upload_id: &str) -> Result<()> {
        multipart::abort(&self.inner, bucket, key, upload_id).await
    }

    /// Parts in number order after the marker; `bool` = truncated.
    pub async fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        query: ListPartsQuery,
    ) -> Result<(UploadInfo, Vec<PartInfo>, bool)> {
        multipart::list_parts(&self.inner, bucket, key, upload_id, query).await
    }

    /// Uploads in (key, initiated) order after the markers; `bool` = truncated.
    pub async fn list_uploads(
        &self,
        bucket: &str,
        query: ListUploadsQuery,
    ) -> Result<(Vec<UploadInfo>, bool)> {
        multipart::list_uploads(&self.inner, bucket, query).await
    }

    /// Aborts uploads initiated longer ago than `stale_upload_age` and forgets completed
    /// uploads older than [`multipart::COMPLETED_RETENTION`]; returns how many were aborted.
    pub async fn sweep_stale_uploads(&self, now: SystemTime) -> Result<usize> {
        sweep::sweep_stale_uploads(&self.inner, now).await
    }
}
