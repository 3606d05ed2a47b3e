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
//!   keys     name                         → KeyRecord     (JSON)   access keys (`engine/keys.rs`)
//!   grants   (access_key_id, bucket)      → access::Grant (JSON)   a key's rights on a bucket;
//!                                                                   removed with the key or bucket
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
//!
//! The change log (`engine/changes.rs`) rides on every commit: writes record their events in
//! their transaction, and just before each commit the index prunes the log to its retention
//! and reads the last sequence number, which [`Index::subscribe`] announces once the commit
//! returned.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};

use redb::{Database, ReadTransaction, WriteTransaction};

use super::changes::{self, Retention};
use super::codec::now_ms;
use super::error::{Error, Kind, Result};
use super::space;

mod records;
mod rows;

pub use records::*;
pub use rows::*;

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
    retention: Retention,
    /// The last sequence number of the change log committed, for the feed's readers.
    last_seq: tokio::sync::watch::Sender<u64>,
    /// Events the change log kept at the last commit.
    retained: std::sync::atomic::AtomicU64,
    store_id: String,
    /// Cancelled as the server shuts down: feeds end, so the shutdown need not wait for them.
    closing: tokio_util::sync::CancellationToken,
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
    /// Opens or creates the database and makes sure every table exists; the change log keeps
    /// what `retention` says.
    pub async fn open(path: &Path, retention: Retention) -> Result<Index> {
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || {
            let db = open_db(&path)?;
            let (store_id, last, kept) = changes::state(&db.begin_read()?)?;
            Ok(Index {
                shared: Arc::new(Shared {
                    path,
                    db: RwLock::new(Some(db)),
                    failed: AtomicBool::new(false),
                    group: Mutex::default(),
                    retention,
                    last_seq: tokio::sync::watch::channel(last).0,
                    retained: kept.into(),
                    store_id,
                    closing: Default::default(),
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
                        shared.commit(txn)?;
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

    /// The last sequence number of the change log committed, as it moves on (see the module
    /// documentation).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.shared.last_seq.subscribe()
    }

    /// Cancelled by [`Index::close_feeds`]: readers of the change log stop.
    pub fn feeds_closing(&self) -> tokio_util::sync::CancellationToken {
        self.shared.closing.clone()
    }

    /// Tells the change log's readers to stop (the server shuts down).
    pub fn close_feeds(&self) {
        self.shared.closing.cancel();
    }

    /// How many readers of the change log are subscribed.
    pub fn subscribers(&self) -> usize {
        self.shared.last_seq.receiver_count()
    }

    /// Events the change log kept as of the last commit.
    pub fn retained(&self) -> u64 {
        self.shared.retained.load(Ordering::Acquire)
    }

    /// Made when the index was created; another id means other data.
    pub fn store_id(&self) -> &str {
        &self.shared.store_id
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
    /// Prunes the change log, commits, then tells the feed's readers the last sequence number.
    fn commit(&self, txn: WriteTransaction) -> Result<()> {
        let (last, kept) = changes::before_commit(&txn, &self.retention, now_ms())?;
        txn.commit()?;
        self.retained.store(kept, Ordering::Release);
        self.last_seq.send_if_modified(|seen| {
            let newer = last > *seen;
            if newer {
                *seen = last;
            }
            newer
        });
        Ok(())
    }

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
                self.commit(txn)?;
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
    txn.open_table(KEYS)?;
    txn.open_table(GRANTS)?;
    changes::init(&txn)?;
    txn.commit()?;
    Ok(db)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use redb::ReadableTable;

    use super::*;

    /// Writes queued while a commit runs share the next transaction, and each gets its own
    /// result: one that fails (after writing) leaves nothing and does not fail the others; a
    /// later write in the batch sees the earlier ones.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_group_commit_answers_each_write_on_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::open(&dir.path().join("index.redb"), Retention::default())
            .await
            .unwrap();
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
}
