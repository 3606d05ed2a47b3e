//! The metadata index: one redb database at `<data_dir>/index.redb`.
//!
//! ```text
//!   buckets  name                         → BucketRecord  (JSON)
//!   objects  (bucket, key)                → ObjectRecord  (JSON)   ordered: a bucket listing is
//!                                                                   one range scan, UTF-8 byte order
//!   uploads  (bucket, key, upload_id)     → UploadRecord  (JSON)   upload ids start with the
//!                                                                   initiation time, so this is
//!                                                                   (key, initiated) order
//!   parts    (upload_id, part_number)     → PartRecord    (JSON)
//!   completed_uploads  upload_id          → CompletedRecord (JSON)  what a completed upload
//!                                                                   answered, for retries
//! ```
//!
//! Values are JSON with `#[serde(default)]` so a field added later reads old rows. All redb work
//! runs on the blocking pool ([`Index::read`], [`Index::write`]). redb serialises write
//! transactions, so a precondition checked inside [`Index::write`] holds at commit: conditional
//! writes are atomic under concurrency. Commits use redb's default (immediate, fsync) durability.

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redb::{Database, ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::error::{Error, Kind, Result, What};
use super::space;
use super::{
    BucketInfo, BucketSettings, ChecksumAlgorithm, ChecksumType, ListQuery, ObjectHeaders,
    ObjectInfo, PartInfo, PartSummary, StoredChecksum, UploadInfo, WriteCondition,
};

pub(super) const BUCKETS: TableDefinition<&str, &[u8]> = TableDefinition::new("buckets");
pub(super) const OBJECTS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("objects");
pub(super) const UPLOADS: TableDefinition<(&str, &str, &str), &[u8]> =
    TableDefinition::new("uploads");
pub(super) const PARTS: TableDefinition<(&str, u32), &[u8]> = TableDefinition::new("parts");
pub(super) const COMPLETED: TableDefinition<&str, &[u8]> =
    TableDefinition::new("completed_uploads");

/// A bucket row.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BucketRecord {
    pub created_ms: u64,
    #[serde(default)]
    pub settings: BucketSettings,
}

/// A run of object bytes held by one blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    pub blob: String,
    pub len: u64,
}

/// An object row. Segments hold the bytes in order; an empty object has none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ObjectRecord {
    pub size: u64,
    pub etag: String,
    pub last_modified_ms: u64,
    pub headers: ObjectHeaders,
    pub checksum: Option<StoredChecksum>,
    pub parts: Vec<PartSummary>,
    pub segments: Vec<Segment>,
}

impl ObjectRecord {
    pub fn info(&self, key: &str) -> ObjectInfo {
        ObjectInfo {
            key: key.to_owned(),
            size: self.size,
            etag: self.etag.clone(),
            last_modified: from_ms(self.last_modified_ms),
            headers: self.headers.clone(),
            checksum: self.checksum.clone(),
            parts: self.parts.clone(),
        }
    }

    pub fn blobs(&self) -> Vec<String> {
        self.segments.iter().map(|s| s.blob.clone()).collect()
    }
}

/// A multipart upload row.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadRecord {
    pub initiated_ms: u64,
    #[serde(default)]
    pub headers: ObjectHeaders,
    #[serde(default)]
    pub checksum: Option<(ChecksumAlgorithm, ChecksumType)>,
}

impl UploadRecord {
    pub fn info(&self, bucket: &str, key: &str, upload_id: &str) -> UploadInfo {
        UploadInfo {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            upload_id: upload_id.to_owned(),
            initiated: from_ms(self.initiated_ms),
            headers: self.headers.clone(),
            checksum: self.checksum,
        }
    }
}

/// A completed upload's row, written in the transaction that completed it and kept for
/// [`super::multipart::COMPLETED_RETENTION`], so a retried CompleteMultipartUpload (a client
/// whose first answer was lost) gets the same answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CompletedRecord {
    pub bucket: String,
    pub key: String,
    pub size: u64,
    pub etag: String,
    #[serde(default)]
    pub checksum: Option<StoredChecksum>,
    /// Hex SHA-256 of the parts list the completion named (see `multipart::parts_digest`).
    pub parts_digest: String,
    pub completed_ms: u64,
}

/// An uploaded part row. `blob` is None for an empty part.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PartRecord {
    pub size: u64,
    pub etag: String,
    #[serde(default)]
    pub checksum: Option<String>,
    pub last_modified_ms: u64,
    #[serde(default)]
    pub blob: Option<String>,
}

impl PartRecord {
    pub fn info(&self, part_number: u32) -> PartInfo {
        PartInfo {
            part_number,
            size: self.size,
            etag: self.etag.clone(),
            last_modified: from_ms(self.last_modified_ms),
            checksum: self.checksum.clone(),
        }
    }
}

pub fn to_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub fn from_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

pub fn now_ms() -> u64 {
    to_ms(SystemTime::now())
}

pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    Ok(serde_json::to_vec(value)?)
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    Ok(serde_json::from_slice(bytes)?)
}

/// Handle on the index database. Cheap to clone.
///
/// After an I/O failure (typically a full disk during a commit) redb refuses every later
/// transaction ("Previous I/O error occurred") until the database is closed and reopened.
/// The handle then marks itself failed, and the next operation reopens the file (redb repairs
/// it to the last committed transaction, so nothing acknowledged is lost and nothing half
/// written becomes visible) once the disk has [`space::MIN_FREE_BYTES`] free again. Until
/// then reads go on from the old handle and writes are refused as InsufficientStorage.
#[derive(Clone)]
pub struct Index {
    shared: Arc<Shared>,
}

struct Shared {
    path: PathBuf,
    /// Every transaction holds the read lock from begin to end, so a reopen (write lock) waits
    /// until nobody uses the old handle: redb locks its file, and a second handle cannot open
    /// it while the first is alive. None only after a reopen failed.
    db: RwLock<Option<Database>>,
    failed: AtomicBool,
}

impl Index {
    /// Opens or creates the database and makes sure every table exists.
    pub async fn open(path: &Path) -> Result<Index> {
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || {
            let db = open_db(&path)?;
            Ok(Index {
                shared: Arc::new(Shared {
                    path,
                    db: RwLock::new(Some(db)),
                    failed: AtomicBool::new(false),
                }),
            })
        })
        .await?
    }

    /// Runs `f` in a read transaction on the blocking pool.
    pub async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&ReadTransaction) -> Result<T> + Send + 'static,
    {
        let shared = Arc::clone(&self.shared);
        tokio::task::spawn_blocking(move || shared.run(false, |db| f(&db.begin_read()?))).await?
    }

    /// Runs `f` in a write transaction on the blocking pool and commits if it returns `Ok`;
    /// an `Err` aborts the transaction and nothing it wrote is kept.
    pub async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&WriteTransaction) -> Result<T> + Send + 'static,
    {
        let shared = Arc::clone(&self.shared);
        tokio::task::spawn_blocking(move || {
            shared.run(true, |db| {
                let txn = db.begin_write()?;
                match f(&txn) {
                    Ok(out) => {
                        txn.commit()?;
                        Ok(out)
                    }
                    Err(e) => {
                        txn.abort()?;
                        Err(e)
                    }
                }
            })
        })
        .await?
    }

    /// Whether the index can take writes: Err(reason) while it waits to be reopened after an
    /// I/O failure (this call tries the reopen).
    pub async fn writable(&self) -> std::result::Result<(), String> {
        let shared = Arc::clone(&self.shared);
        let checked = tokio::task::spawn_blocking(move || shared.recover()).await;
        match checked {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("index unavailable after an I/O failure ({e})")),
            Err(e) => Err(format!("index check failed ({e})")),
        }
    }
}

impl Shared {
    fn run<T>(&self, writes: bool, op: impl FnOnce(&Database) -> Result<T>) -> Result<T> {
        // A read goes on from the old handle while the index cannot be reopened.
        if let Err(e) = self.recover()
            && writes
        {
            return Err(e);
        }
        let db = self.db.read().unwrap_or_else(PoisonError::into_inner);
        let db = db
            .as_ref()
            .ok_or_else(|| Error::internal(anyhow::anyhow!("the index could not be reopened")))?;
        op(db).map_err(|e| self.note_failure(e))
    }

    /// An I/O failure marks the handle failed; while the disk has no room, an operation that
    /// failed only because an earlier one did is InsufficientStorage too.
    fn note_failure(&self, e: Error) -> Error {
        let io = e
            .cause()
            .and_then(|c| c.downcast_ref::<redb::Error>())
            .is_some_and(|c| matches!(c, redb::Error::Io(_) | redb::Error::PreviousIo));
        if !io {
            return e;
        }
        if !self.failed.swap(true, Ordering::AcqRel) {
            tracing::warn!(error = ?e, "index I/O failure; it is reopened once the disk has room");
        }
        if e.kind() == Kind::Internal && !self.has_room() {
            return Error::new(Kind::NoSpace);
        }
        e
    }

    /// Reopens the database if an I/O failure marked it failed and the disk has room.
    fn recover(&self) -> Result<()> {
        if !self.failed.load(Ordering::Acquire) {
            return Ok(());
        }
        if !self.has_room() {
            return Err(Error::new(Kind::NoSpace));
        }
        let mut slot = self.db.write().unwrap_or_else(PoisonError::into_inner);
        if !self.failed.load(Ordering::Acquire) {
            return Ok(()); // another thread reopened it meanwhile
        }
        // Closes the file and releases redb's lock on it before the new handle takes it.
        *slot = None;
        *slot = Some(open_db(&self.path)?);
        self.failed.store(false, Ordering::Release);
        tracing::info!("index reopened after an I/O failure");
        Ok(())
    }

    fn has_room(&self) -> bool {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        space::has_room(dir, space::MIN_FREE_BYTES)
    }
}

/// Opens (repairing after a crash or an I/O failure) or creates the database, and makes sure
/// every table exists.
fn open_db(path: &Path) -> Result<Database> {
    let db = Database::create(path)?;
    // redb syncs the file's contents at each commit, never its name: a new index.redb needs
    // its directory synced, or a power cut can leave a data dir without its index.
    if let Some(dir) = path.parent() {
        super::durable::sync_dir(dir)?;
    }
    let txn = db.begin_write()?;
    txn.open_table(BUCKETS)?;
    txn.open_table(OBJECTS)?;
    txn.open_table(UPLOADS)?;
    txn.open_table(PARTS)?;
    txn.open_table(COMPLETED)?;
    txn.commit()?;
    Ok(db)
}

// ----- buckets -----

pub fn get_bucket(
    t: &impl ReadableTable<&'static str, &'static [u8]>,
    name: &str,
) -> Result<Option<BucketRecord>> {
    t.get(name)?.map(|v| decode(v.value())).transpose()
}

pub fn require_bucket(
    t: &impl ReadableTable<&'static str, &'static [u8]>,
    name: &str,
) -> Result<BucketRecord> {
    get_bucket(t, name)?.ok_or_else(|| Error::not_found(What::Bucket))
}

pub fn bucket_info(name: &str, r: BucketRecord) -> BucketInfo {
    BucketInfo {
        name: name.to_owned(),
        created: from_ms(r.created_ms),
        settings: r.settings,
    }
}

// ----- objects -----

pub fn get_object(
    t: &impl ReadableTable<(&'static str, &'static str), &'static [u8]>,
    bucket: &str,
    key: &str,
) -> Result<Option<ObjectRecord>> {
    t.get((bucket, key))?.map(|v| decode(v.value())).transpose()
}

/// The object, or NoSuchBucket / NoSuchKey.
pub fn lookup_object(txn: &ReadTransaction, bucket: &str, key: &str) -> Result<ObjectRecord> {
    match get_object(&txn.open_table(OBJECTS)?, bucket, key)? {
        Some(r) => Ok(r),
        None => {
            require_bucket(&txn.open_table(BUCKETS)?, bucket)?;
            Err(Error::not_found(What::Key))
        }
    }
}

/// Does the bucket hold at least one object?
pub fn bucket_has_objects(
    t: &impl ReadableTable<(&'static str, &'static str), &'static [u8]>,
    bucket: &str,
) -> Result<bool> {
    let mut range = t.range::<(&str, &str)>((bucket, "")..)?;
    match range.next() {
        Some(entry) => Ok(entry?.0.value().0 == bucket),
        None => Ok(false),
    }
}

/// Checks a write precondition against the object currently stored (inside the transaction).
pub fn check_condition(current: Option<&ObjectRecord>, cond: &WriteCondition) -> Result<()> {
    if cond.if_none_match_any && current.is_some() {
        return Err(Error::new(Kind::Precondition));
    }
    if let Some(expected) = &cond.if_match {
        let Some(current) = current else {
            return Err(Error::not_found(What::Key));
        };
        let matches = expected.split(',').any(|e| {
            let e = e.trim().trim_matches('"');
            e == "*" || e == current.etag
        });
        if !matches {
            return Err(Error::new(Kind::Precondition));
        }
    }
    if let Some(current) = current {
        // Last-Modified is compared at the precision HTTP dates carry: whole seconds.
        let modified_differs = cond.if_match_last_modified.is_some_and(|t| {
            let secs = t
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs();
            secs != current.last_modified_ms / 1000
        });
        if modified_differs || cond.if_match_size.is_some_and(|s| s != current.size) {
            return Err(Error::new(Kind::Precondition));
        }
    }
    Ok(())
}

/// Stores `record` at (bucket, key) if the bucket exists and `cond` holds; returns the record
/// it replaced, whose blobs the caller deletes after the commit.
pub fn commit_object(
    txn: &WriteTransaction,
    bucket: &str,
    key: &str,
    record: &ObjectRecord,
    cond: &WriteCondition,
) -> Result<Option<ObjectRecord>> {
    require_bucket(&txn.open_table(BUCKETS)?, bucket)?;
    let mut objects = txn.open_table(OBJECTS)?;
    let current = get_object(&objects, bucket, key)?;
    check_condition(current.as_ref(), cond)?;
    objects.insert((bucket, key), encode(record)?.as_slice())?;
    Ok(current)
}

/// One page of a bucket listing, plus how many index entries the scan touched.
#[derive(Debug, Default)]
pub struct Listing {
    pub objects: Vec<(String, ObjectRecord)>,
    pub common_prefixes: Vec<String>,
    pub is_truncated: bool,
    pub next_marker: Option<String>,
    /// Index entries read; a delimiter listing touches about one per group, not one per key.
    pub scanned: usize,
}

/// Lists `bucket` per `q` (see [`super::Engine::list_objects`]). When a key folds into a common
/// prefix the scan restarts at the prefix's successor, so a whole group costs one entry.
pub fn list_objects(
    t: &impl ReadableTable<(&'static str, &'static str), &'static [u8]>,
    bucket: &str,
    q: &ListQuery,
) -> Result<Listing> {
    let mut out = Listing::default();
    if q.max_keys == 0 {
        return Ok(out);
    }
    let prefix = q.prefix.as_str();
    let delimiter = q.delimiter.as_deref().filter(|d| !d.is_empty());
    let after = q.start_after.as_deref();
    let mut from = match after {
        Some(a) if a >= prefix => Bound::Excluded(a.to_owned()),
        _ => Bound::Included(prefix.to_owned()),
    };
    let mut count = 0usize;
    'scan: loop {
        let lower = match &from {
            Bound::Included(s) => Bound::Included((bucket, s.as_str())),
            Bound::Excluded(s) => Bound::Excluded((bucket, s.as_str())),
            Bound::Unbounded => Bound::Unbounded,
        };
        let mut seek_to = None;
        for entry in t.range::<(&str, &str)>((lower, Bound::Unbounded))? {
            let (k, v) = entry?;
            out.scanned += 1;
            let (b, key) = k.value();
            if b != bucket || !key.starts_with(prefix) {
                break 'scan;
            }
            let group_end =
                delimiter.and_then(|d| Some(prefix.len() + key[prefix.len()..].find(d)? + d.len()));
            if let Some(end) = group_end {
                let common = &key[..end];
                // A group at or before the marker was returned on an earlier page.
                if after.is_none_or(|a| common > a) {
                    if count == q.max_keys {
                        out.is_truncated = true;
                        break 'scan;
                    }
                    out.common_prefixes.push(common.to_owned());
                    out.next_marker = Some(common.to_owned());
                    count += 1;
                }
                match successor(common) {
                    Some(next) => {
                        seek_to = Some(next);
                        break;
                    }
                    None => break 'scan,
                }
            }
            if count == q.max_keys {
                out.is_truncated = true;
                break 'scan;
            }
            out.objects.push((key.to_owned(), decode(v.value())?));
            out.next_marker = Some(key.to_owned());
            count += 1;
        }
        match seek_to {
            Some(next) => from = Bound::Included(next),
            None => break,
        }
    }
    Ok(out)
}

/// The smallest string greater than every string starting with `s`: `s` with its last char
/// replaced by the next code point (UTF-8 byte order is code point order), dropping trailing
/// chars that have no successor. None if there is no such string.
pub fn successor(s: &str) -> Option<String> {
    let mut out = s.to_owned();
    while let Some(c) = out.pop() {
        let mut next = c as u32 + 1;
        if next == 0xD800 {
            next = 0xE000; // skip the surrogate range, which no char may hold
        }
        if let Some(n) = char::from_u32(next) {
            out.push(n);
            return Some(out);
        }
    }
    None
}

// ----- uploads and parts -----

/// All part rows of an upload, in part-number order.
pub fn upload_parts(
    t: &impl ReadableTable<(&'static str, u32), &'static [u8]>,
    upload_id: &str,
) -> Result<Vec<(u32, PartRecord)>> {
    let mut parts = Vec::new();
    for entry in t.range::<(&str, u32)>((upload_id, 0)..=(upload_id, u32::MAX))? {
        let (k, v) = entry?;
        parts.push((k.value().1, decode(v.value())?));
    }
    Ok(parts)
}

/// Removes an upload row and all its parts; returns the parts' blobs for deletion after commit.
pub fn remove_upload(
    txn: &WriteTransaction,
    bucket: &str,
    key: &str,
    upload_id: &str,
) -> Result<Vec<String>> {
    txn.open_table(UPLOADS)?.remove((bucket, key, upload_id))?;
    let mut parts_table = txn.open_table(PARTS)?;
    let parts = upload_parts(&parts_table, upload_id)?;
    let mut blobs = Vec::new();
    for (n, part) in parts {
        parts_table.remove((upload_id, n))?;
        blobs.extend(part.blob);
    }
    Ok(blobs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successor_bounds_a_group() {
        assert_eq!(successor("a/").as_deref(), Some("a0"));
        assert_eq!(successor("é/").as_deref(), Some("é0"));
        assert_eq!(successor("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
        assert_eq!(successor("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(successor("\u{10FFFF}"), None);
        // Every string starting with the group sorts below the successor, in byte order.
        let next = successor("a\u{7F}").unwrap();
        assert!("a\u{7F}\u{10FFFF}".as_bytes() < next.as_bytes());
    }

    #[test]
    fn conditions() {
        let rec = ObjectRecord {
            etag: "abc".into(),
            ..Default::default()
        };
        let none_match = WriteCondition {
            if_none_match_any: true,
            if_match: None,
            ..WriteCondition::default()
        };
        assert!(check_condition(None, &none_match).is_ok());
        assert_eq!(
            check_condition(Some(&rec), &none_match).unwrap_err().kind(),
            Kind::Precondition
        );
        let if_match = |e: &str| WriteCondition {
            if_none_match_any: false,
            if_match: Some(e.into()),
            ..WriteCondition::default()
        };
        assert_eq!(
            check_condition(None, &if_match("abc")).unwrap_err().kind(),
            Kind::NotFound(What::Key)
        );
        assert!(check_condition(Some(&rec), &if_match("abc")).is_ok());
        assert!(check_condition(Some(&rec), &if_match("\"abc\"")).is_ok());
        assert!(check_condition(Some(&rec), &if_match("*")).is_ok());
        assert_eq!(
            check_condition(Some(&rec), &if_match("xyz"))
                .unwrap_err()
                .kind(),
            Kind::Precondition
        );
    }

    #[test]
    fn records_tolerate_missing_fields() {
        let r: ObjectRecord = decode(br#"{"size":3,"etag":"x"}"#).unwrap();
        assert_eq!(r.size, 3);
        assert!(r.segments.is_empty());
        let b: BucketRecord = decode(br#"{"created_ms":5}"#).unwrap();
        assert_eq!(b.settings, BucketSettings::default());
    }
}
