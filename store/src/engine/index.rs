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
//!   inline_bodies  (bucket, key)          → bytes                   the body of a small object
//!                                                                   (ObjectRecord::inline), written
//!                                                                   and removed with its row
//! ```
//!
//! Values are JSON with `#[serde(default)]` so a field added later reads old rows. All redb work
//! runs on the blocking pool ([`Index::read`], [`Index::write`]). redb serialises write
//! transactions, so a precondition checked inside [`Index::write`] holds at commit: conditional
//! writes are atomic under concurrency. Commits use redb's default (immediate, fsync) durability.
//!
//! Group commit ([`Index::write_grouped`], used by the hot writes: object commits and part
//! rows): concurrent writes queue up while a commit is being fsynced, and the next commit
//! carries all of them in one transaction, so N concurrent PUTs cost one fsync of the index
//! instead of N serialised ones. Each write still runs its checks and its inserts inside the
//! transaction that commits it, in queue order (so a later write in a batch sees the earlier
//! ones), and each waiter gets its own result: a write that fails (a precondition, say) aborts
//! the transaction, is answered with its error, and the others are run again in a fresh one
//! without it (nothing it wrote survives). Nobody is answered before the commit that holds
//! their write has returned. No timer: a lone write commits at once, as before.

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
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
pub(super) const INLINE: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("inline_bodies");

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
    /// The body is in the `inline_bodies` table under the same (bucket, key), not in blobs
    /// (a small single-part object: see `objects::INLINE_MAX`); `segments` is empty.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub inline: bool,
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
    /// Writes waiting for the next group commit (see the module documentation).
    group: Mutex<Group>,
    /// Group commits that committed, for tests of the batching.
    #[cfg(test)]
    group_commits: std::sync::atomic::AtomicUsize,
}

#[derive(Default)]
struct Group {
    queued: Vec<Box<dyn Grouped>>,
    /// A committer is running on the blocking pool; it takes whatever is queued when its
    /// current commit returns, and stops when the queue is empty.
    committing: bool,
}

/// One write waiting in a group commit, its result type erased.
trait Grouped: Send {
    /// Runs the write in `txn` and keeps its result; false if it failed.
    fn apply(&mut self, shared: &Shared, txn: &WriteTransaction) -> bool;
    /// Answers the waiter: its kept result if the transaction holding it committed (or it
    /// failed by itself), else `commit`'s error.
    fn answer(self: Box<Self>, commit: Result<()>);
}

struct GroupedWrite<T, F> {
    write: F,
    result: Option<Result<T>>,
    reply: tokio::sync::oneshot::Sender<Result<T>>,
}

impl<T, F> Grouped for GroupedWrite<T, F>
where
    T: Send,
    F: Fn(&WriteTransaction) -> Result<T> + Send,
{
    fn apply(&mut self, shared: &Shared, txn: &WriteTransaction) -> bool {
        let result = (self.write)(txn).map_err(|e| shared.note_failure(e));
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn answer(self: Box<Self>, commit: Result<()>) {
        let GroupedWrite { result, reply, .. } = *self;
        let result = commit.and_then(|()| {
            result.unwrap_or_else(|| Err(Error::internal(anyhow::anyhow!("write never applied"))))
        });
        // A waiter that stopped waiting has nobody to tell; its write stands or not as above.
        let _ = reply.send(result);
    }
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
                    group: Mutex::default(),
                    #[cfg(test)]
                    group_commits: Default::default(),
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

    /// As [`Index::write`], but committed together with the other grouped writes queued
    /// meanwhile (see the module documentation). `f` may run more than once, each time in a
    /// fresh transaction, when another write of its batch fails: it must do only index work.
    pub async fn write_grouped<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: Fn(&WriteTransaction) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let write = Box::new(GroupedWrite {
            write: f,
            result: None,
            reply,
        });
        let start = {
            let mut group = self.shared.lock_group();
            group.queued.push(write);
            !std::mem::replace(&mut group.committing, true)
        };
        if start {
            let shared = Arc::downgrade(&self.shared);
            tokio::task::spawn_blocking(move || Shared::commit_queued(shared));
        }
        answer
            .await
            .map_err(|_| Error::internal(anyhow::anyhow!("the index committer stopped")))?
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

    fn lock_group(&self) -> std::sync::MutexGuard<'_, Group> {
        self.group.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The committer: commits what is queued, batch after batch, until the queue is empty.
    /// It answers a batch only once it has let go of the index, so a waiter that closes the
    /// engine on its answer can reopen the file at once (redb locks it while a handle lives).
    fn commit_queued(shared: Weak<Shared>) {
        // Should a write panic, the queue is not left waiting for a committer that is gone:
        // the writes queued are dropped (their waiters hear that the committer stopped).
        struct Stop<'a>(&'a Shared);
        impl Drop for Stop<'_> {
            fn drop(&mut self) {
                let mut group = self.0.lock_group();
                group.committing = false;
                group.queued.clear();
            }
        }
        loop {
            let Some(shared) = shared.upgrade() else {
                return; // the index is gone, and the writes queued with it
            };
            let batch = {
                let mut group = shared.lock_group();
                if group.queued.is_empty() {
                    group.committing = false;
                    return;
                }
                std::mem::take(&mut group.queued)
            };
            let stop = Stop(&shared);
            let answers = shared.commit_batch(batch);
            std::mem::forget(stop);
            drop(shared);
            for (write, result) in answers {
                write.answer(result);
            }
        }
    }

    /// Commits `batch` in one transaction and returns each write with what its waiter is to
    /// hear. A write that fails hears its own error and the transaction is retried without
    /// it, until the rest commit (or the commit fails, and every one left hears why).
    fn commit_batch(
        &self,
        mut batch: Vec<Box<dyn Grouped>>,
    ) -> Vec<(Box<dyn Grouped>, Result<()>)> {
        let mut answers = Vec::with_capacity(batch.len());
        while !batch.is_empty() {
            let attempt = self.run(true, |db| {
                let txn = db.begin_write()?;
                for (i, write) in batch.iter_mut().enumerate() {
                    if !write.apply(self, &txn) {
                        txn.abort()?;
                        return Ok(Some(i));
                    }
                }
                txn.commit()?;
                #[cfg(test)]
                self.group_commits.fetch_add(1, Ordering::AcqRel);
                Ok(None)
            });
            match attempt {
                Ok(Some(failed)) => answers.push((batch.remove(failed), Ok(()))),
                Ok(None) => answers.extend(batch.drain(..).map(|write| (write, Ok(())))),
                Err(e) => answers.extend(batch.drain(..).map(|write| (write, Err(e.duplicate())))),
            }
        }
        answers
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

/// redb's page cache, in the store's own memory. Its default (1 GiB) would let the process
/// grow with the index, and with the small bodies kept inline (a GET 4 KiB storm of 5,000
/// objects already took the server to 89 MiB): bounded here so memory stays flat; pages
/// beyond it are read back through the kernel's page cache.
const CACHE_BYTES: usize = 32 << 20;

/// Opens (repairing after a crash or an I/O failure) or creates the database, and makes sure
/// every table exists.
fn open_db(path: &Path) -> Result<Database> {
    let db = Database::builder()
        .set_cache_size(CACHE_BYTES)
        .create(path)?;
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
    txn.open_table(INLINE)?;
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

/// Stores `record` at (bucket, key) if the bucket exists and `cond` holds, with `inline` as its
/// body when `record.inline` (the record replaced loses its inline body, if it had one);
/// returns the record it replaced, whose blobs the caller deletes after the commit.
pub fn commit_object(
    txn: &WriteTransaction,
    bucket: &str,
    key: &str,
    record: &ObjectRecord,
    inline: Option<&[u8]>,
    cond: &WriteCondition,
) -> Result<Option<ObjectRecord>> {
    require_bucket(&txn.open_table(BUCKETS)?, bucket)?;
    let mut objects = txn.open_table(OBJECTS)?;
    let current = get_object(&objects, bucket, key)?;
    check_condition(current.as_ref(), cond)?;
    objects.insert((bucket, key), encode(record)?.as_slice())?;
    let mut bodies = txn.open_table(INLINE)?;
    match inline.filter(|_| record.inline) {
        Some(body) => drop(bodies.insert((bucket, key), body)?),
        None if current.as_ref().is_some_and(|c| c.inline) => drop(bodies.remove((bucket, key))?),
        None => {}
    }
    Ok(current)
}

/// The inline body of the object `record` (as read in the same transaction); None when its
/// bytes are in blobs.
pub fn inline_body(
    txn: &ReadTransaction,
    bucket: &str,
    key: &str,
    record: &ObjectRecord,
) -> Result<Option<bytes::Bytes>> {
    if !record.inline {
        return Ok(None);
    }
    match txn.open_table(INLINE)?.get((bucket, key))? {
        Some(body) => Ok(Some(bytes::Bytes::copy_from_slice(body.value()))),
        None => Err(Error::internal(anyhow::anyhow!(
            "object {bucket}/{key} has no inline body"
        ))),
    }
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

    /// Writes queued while a commit runs share the next transaction, and each gets its own
    /// result: one that fails (after writing) leaves nothing and does not fail the others; a
    /// later write in the batch sees the earlier ones.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_group_commit_answers_each_write_on_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::open(&dir.path().join("index.redb")).await.unwrap();
        let insert = |txn: &WriteTransaction, name: &str| -> Result<()> {
            txn.open_table(BUCKETS)?.insert(name, b"{}".as_slice())?;
            Ok(())
        };
        // The first write holds the committer until the others are queued behind it.
        let (open_gate, gate) = std::sync::mpsc::channel::<()>();
        let gate = std::sync::Mutex::new(gate);
        let (running, is_running) = tokio::sync::oneshot::channel::<()>();
        let running = std::sync::Mutex::new(Some(running));
        let first = tokio::spawn({
            let index = index.clone();
            async move {
                index
                    .write_grouped(move |txn| {
                        if let Some(running) = running.lock().unwrap().take() {
                            running.send(()).unwrap();
                        }
                        gate.lock().unwrap().recv().unwrap();
                        insert(txn, "first")
                    })
                    .await
            }
        });
        is_running.await.unwrap();
        let mut waiters = Vec::new();
        for i in 0..8 {
            let index = index.clone();
            waiters.push(tokio::spawn(async move {
                index
                    .write_grouped(move |txn| {
                        let name = format!("w{i}");
                        insert(txn, &name)?;
                        if i % 3 == 1 {
                            return Err(Error::new(Kind::Precondition)); // after writing
                        }
                        Ok(())
                    })
                    .await
            }));
        }
        // Two writes of one name, each only if it is absent (If-None-Match: *).
        for _ in 0..2 {
            let index = index.clone();
            waiters.push(tokio::spawn(async move {
                index
                    .write_grouped(move |txn| {
                        if txn.open_table(BUCKETS)?.get("once")?.is_some() {
                            return Err(Error::new(Kind::Precondition));
                        }
                        insert(txn, "once")
                    })
                    .await
            }));
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while index.shared.lock_group().queued.len() < 10 {
            assert!(std::time::Instant::now() < deadline, "writes never queued");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        open_gate.send(()).unwrap();
        first.await.unwrap().unwrap();
        let mut results = Vec::new();
        for w in waiters {
            results.push(w.await.unwrap().map_err(|e| e.kind()));
        }
        let failed = Err(Kind::Precondition);
        let each: Vec<_> = (0..8)
            .map(|i| if i % 3 == 1 { failed } else { Ok(()) })
            .collect();
        assert_eq!(results[..8], each);
        let once = &results[8..];
        assert!(
            once == [Ok(()), failed] || once == [failed, Ok(())],
            "one of the two writes of `once` wins: {once:?}"
        );
        assert_eq!(
            index.shared.group_commits.load(Ordering::Acquire),
            2,
            "the first write alone, then the ten queued behind it in one commit"
        );
        let names = index
            .read(|txn| {
                let mut names = Vec::new();
                for entry in txn.open_table(BUCKETS)?.iter()? {
                    names.push(entry?.0.value().to_owned());
                }
                Ok(names)
            })
            .await
            .unwrap();
        assert_eq!(names, ["first", "once", "w0", "w2", "w3", "w5", "w6"]);
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
