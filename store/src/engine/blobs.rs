//! Blobs: immutable byte runs behind `object_store`, named by generated ids, never by user keys.
//!
//! ```text
//!   <data_dir>/blobs/ab/ab3f…(32 hex)      one blob = one object body or one multipart part
//! ```
//!
//! A blob id is a random UUID in lowercase hex; its path is `<first two hex>/<id>`, so no client
//! input ever reaches a file path and no directory grows past ~1/256 of the blobs.
//!
//! Writes stream through [`Blobs::write`]: bytes are hashed as they arrive, buffered only up to
//! one write chunk, and the blob is durable before the caller commits the index. On local disk
//! the engine writes blobs itself, through [`StagedFile`] (staging file, fsync, rename, fsync of
//! the directory; object_store's LocalFileSystem renames but never fsyncs); reads, listing and
//! deletes, and every operation on a remote store, go through object_store. Reads ([`Blobs::open`]) stream a byte range in 1 MiB chunks with one chunk
//! of read-ahead.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write as _};
use std::ops::Range;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    GetOptions, GetRange, GetResultPayload, ObjectStore, PutPayload, WriteMultipart,
};
use tokio::task::JoinHandle;

use super::checksum::BodyDigest;
use super::durable::{self, StagedFile};
use super::error::{Error, Invalid, Result, What};
use super::{ByteStream, ChecksumAlgorithm, Digests, Verify};

/// Bytes read per chunk when streaming a local blob: large enough that GET is not bound by
/// per-chunk overhead (object_store's own file stream uses 8 KiB chunks), small enough that a
/// slow reader pins little memory.
pub const READ_CHUNK_SIZE: usize = 1 << 20;

/// Write chunk for local disk: bodies below this are written with one `put`.
const LOCAL_WRITE_CHUNK: usize = 2 << 20;
/// Write chunk for remote stores, whose multipart APIs need ≥ 5 MiB parts.
const REMOTE_WRITE_CHUNK: usize = 8 << 20;

/// The blob store. Cheap to clone.
#[derive(Clone)]
pub struct Blobs {
    store: Arc<dyn ObjectStore>,
    /// The root directory when blobs are on local disk: enables fsync and staging-file sweeps.
    local_root: Option<PathBuf>,
    write_chunk: usize,
}

impl Blobs {
    /// Blobs on local disk under `root`, which is created along with its 256 shard directories
    /// (created and synced once here, so a blob's durability only needs its own directory).
    pub async fn local(root: PathBuf) -> Result<Blobs> {
        let dir = root.clone();
        tokio::task::spawn_blocking(move || -> Result<()> {
            durable::create_dir_all(&dir)?;
            for shard in 0..=255u8 {
                std::fs::create_dir_all(dir.join(format!("{shard:02x}")))?;
            }
            durable::sync_dir(&dir)?;
            Ok(())
        })
        .await??;
        let store = LocalFileSystem::new_with_prefix(&root)?;
        Ok(Blobs {
            store: Arc::new(store),
            local_root: Some(root),
            write_chunk: LOCAL_WRITE_CHUNK,
        })
    }

    /// Blobs on any other object store (S3-compatible, GCS, Azure…). Writes there are durable
    /// when the store acknowledges them.
    pub fn remote(store: Arc<dyn ObjectStore>) -> Blobs {
        Blobs {
            store,
            local_root: None,
            write_chunk: REMOTE_WRITE_CHUNK,
        }
    }

    pub fn local_root(&self) -> Option<&FsPath> {
        self.local_root.as_deref()
    }

    pub fn new_id() -> String {
        uuid::Uuid::new_v4().simple().to_string()
    }

    fn path(id: &str) -> Path {
        Path::from(format!("{}/{id}", &id[..2]))
    }

    /// Parses a stored blob path back to its id; None for anything we did not name.
    pub fn id_from_path(path: &Path) -> Option<String> {
        let mut parts = path.parts();
        let shard = parts.next()?;
        let name = parts.next()?;
        let (shard, name) = (shard.as_ref(), name.as_ref());
        let valid = parts.next().is_none()
            && name.len() == 32
            && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            && shard == &name[..2];
        valid.then(|| name.to_owned())
    }

    /// Streams `body` into a new blob, computing MD5 and `checksum` on the way and failing with
    /// EntityTooLarge as soon as more than `max_size` bytes arrive. After the last byte `verify`
    /// sees the digests; only if it accepts is the blob completed and made durable. On any error
    /// nothing is left behind. An empty body writes no blob (`blob` is None).
    ///
    /// A body of 1 to `inline_max` bytes writes no blob either: it comes back in
    /// [`Written::inline`] for the caller to make durable with its index entry (nothing was
    /// written anywhere; such a body is held in memory anyway, below one write chunk).
    pub async fn write(
        &self,
        body: ByteStream,
        checksum: Option<ChecksumAlgorithm>,
        max_size: u64,
        verify: Verify,
        inline_max: usize,
    ) -> Result<Written> {
        let id = Self::new_id();
        // Armed until the caller commits: covers cancellation after the blob exists.
        let guard = BlobGuard {
            blobs: self.clone(),
            id: Some(id.clone()),
        };
        let mut sink = match &self.local_root {
            Some(root) => Sink::Local(LocalSink::new(root.join(&id[..2]).join(&id))),
            None => Sink::Buffer(Vec::new(), 0),
        };
        match self
            .write_inner(&id, body, checksum, max_size, verify, inline_max, &mut sink)
            .await
        {
            Ok((digests, Stored::Blob)) => Ok(Written {
                blob: Some(guard),
                inline: None,
                digests,
            }),
            Ok((digests, stored)) => Ok(Written {
                blob: guard.forget(),
                inline: match stored {
                    Stored::Inline(body) => Some(body),
                    _ => None,
                },
                digests,
            }),
            Err(e) => {
                match sink {
                    Sink::Multipart(w) => {
                        let _ = w.abort().await;
                    }
                    // The staged file is removed before the error is answered, not later on
                    // the blocking pool: a refused write leaves nothing behind once it returns.
                    Sink::Local(local) => local.discard().await,
                    Sink::Buffer(..) => {}
                }
                guard.discard().await;
                Err(e)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn write_inner(
        &self,
        id: &str,
        mut body: ByteStream,
        checksum: Option<ChecksumAlgorithm>,
        max_size: u64,
        verify: Verify,
        inline_max: usize,
        sink: &mut Sink,
    ) -> Result<(Digests, Stored)> {
        let path = Self::path(id);
        let mut digest = BodyDigest::new(checksum);
        let mut size = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            size += chunk.len() as u64;
            if size > max_size {
                return Err(Error::invalid(Invalid::TooLarge));
            }
            digest.update(chunk.clone()).await?;
            match sink {
                Sink::Local(local) => local.put(chunk).await?,
                Sink::Buffer(buf, len) => {
                    *len += chunk.len();
                    buf.push(chunk);
                    if *len >= self.write_chunk {
                        let upload = self.store.put_multipart(&path).await?;
                        let mut w = WriteMultipart::new_with_chunk_size(upload, self.write_chunk);
                        for b in buf.drain(..) {
                            w.put(b);
                        }
                        *sink = Sink::Multipart(w);
                    }
                }
                Sink::Multipart(w) => {
                    // At most one chunk in flight plus the one filling: memory stays flat.
                    w.wait_for_capacity(1).await?;
                    w.put(chunk);
                }
            }
        }
        let (md5, checksum) = digest.finish().await?;
        let digests = Digests {
            size,
            md5,
            checksum,
        };
        verify(&digests)?;
        let inline = 0 < size && size <= inline_max as u64;
        let stored = match std::mem::replace(sink, Sink::Buffer(Vec::new(), 0)) {
            // Nothing reached the disk yet: a body this small is still all in `pending`.
            Sink::Local(local) if inline && local.inflight.is_none() => {
                Stored::Inline(concat(local.pending))
            }
            Sink::Local(local) => local.commit().await?,
            Sink::Buffer(_, 0) => Stored::Nothing,
            Sink::Buffer(buf, _) if inline => Stored::Inline(concat(buf)),
            Sink::Buffer(buf, _) => {
                self.store.put(&path, PutPayload::from_iter(buf)).await?;
                Stored::Blob
            }
            Sink::Multipart(w) => {
                w.finish().await?;
                Stored::Blob
            }
        };
        Ok((digests, stored))
    }

    /// Deletes a blob; a blob already gone is not an error.
    pub async fn delete(&self, id: &str) -> Result<()> {
        match self.store.delete(&Self::path(id)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Best-effort deletion of blobs a commit made unreachable. A failure only leaves an
    /// orphan, which the next start-up sweep removes, so it is logged, not returned.
    pub async fn delete_all(&self, ids: impl IntoIterator<Item = String>) {
        for id in ids {
            if let Err(e) = self.delete(&id).await {
                tracing::warn!(blob = %id, error = ?e, "could not delete unreachable blob");
            }
        }
    }

    /// Streams `range` (relative to the blob) of a blob. NoSuchKey if the blob is gone (its
    /// object was replaced or deleted). An empty range reads nothing.
    pub async fn open(&self, id: &str, range: Range<u64>) -> Result<ByteStream> {
        if range.is_empty() {
            return Ok(futures::stream::empty().boxed());
        }
        let opts = GetOptions {
            range: Some(GetRange::Bounded(range)),
            ..Default::default()
        };
        let got = match self.store.get_opts(&Self::path(id), opts).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Err(Error::not_found(What::Key)),
            Err(e) => return Err(e.into()),
        };
        let range = got.range.clone();
        Ok(match got.payload {
            GetResultPayload::File(file, _) => file_stream(file, range),
            GetResultPayload::Stream(s) => s.map_err(|e| Error::from(e).into()).boxed(),
        })
    }

    /// Ids of every blob in the store (staging files excluded).
    pub async fn list_ids(&self) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        let mut listing = self.store.list(None);
        while let Some(meta) = listing.next().await {
            if let Some(id) = Self::id_from_path(&meta?.location) {
                ids.push(id);
            }
        }
        Ok(ids)
    }
}

/// What became of a written body.
enum Stored {
    /// Empty: no blob.
    Nothing,
    Blob,
    /// Small enough to go into the index with its entry (see [`Blobs::write`]).
    Inline(Bytes),
}

/// The chunks of a small body as one buffer (no copy when it came in one chunk).
fn concat(chunks: Vec<Bytes>) -> Bytes {
    if chunks.len() == 1 {
        return chunks.into_iter().next().unwrap_or_default();
    }
    chunks.concat().into()
}

/// Where a new blob's bytes go.
enum Sink {
    /// Local disk: a [`StagedFile`] beside the blob's final path, renamed into place durably.
    Local(LocalSink),
    /// Remote store: chunks held until the body proves larger than one write chunk, and their
    /// total length.
    Buffer(Vec<Bytes>, usize),
    Multipart(WriteMultipart),
}

/// A local blob being written: chunks are gathered up to [`LOCAL_WRITE_CHUNK`] and written
/// on the blocking pool, one write in flight while the next chunk fills (memory stays flat).
/// Dropped before [`LocalSink::commit`] (an error, a cancelled request), the staged file
/// removes itself, whether it is here or on the blocking pool at that moment.
struct LocalSink {
    target: PathBuf,
    /// The staged file, once a chunk was written; on the blocking pool while a write runs.
    inflight: Option<JoinHandle<std::io::Result<StagedFile>>>,
    pending: Vec<Bytes>,
    pending_len: usize,
    flush: WriteBehind,
}

impl LocalSink {
    fn new(target: PathBuf) -> Self {
        LocalSink {
            target,
            inflight: None,
            pending: Vec::new(),
            pending_len: 0,
            flush: WriteBehind::default(),
        }
    }

    async fn put(&mut self, chunk: Bytes) -> Result<()> {
        self.pending_len += chunk.len();
        self.pending.push(chunk);
        if self.pending_len >= LOCAL_WRITE_CHUNK {
            let file = self.settle().await?;
            if let Some(file) = &file {
                self.flush.wrote(file, self.pending_len);
            }
            self.inflight = Some(self.write_pending(file));
        }
        Ok(())
    }

    /// Waits for the write in flight and takes the staged file back (None before the first).
    async fn settle(&mut self) -> Result<Option<StagedFile>> {
        match self.inflight.take() {
            Some(inflight) => Ok(Some(inflight.await??)),
            None => Ok(None),
        }
    }

    /// Writes the gathered chunks on the blocking pool (creating the staged file first if
    /// `file` is None).
    fn write_pending(
        &mut self,
        file: Option<StagedFile>,
    ) -> JoinHandle<std::io::Result<StagedFile>> {
        let chunks = std::mem::take(&mut self.pending);
        self.pending_len = 0;
        let dir = self
            .target
            .parent()
            .map(FsPath::to_owned)
            .unwrap_or_default();
        tokio::task::spawn_blocking(move || {
            let mut file = match file {
                Some(file) => file,
                None => StagedFile::create_in(&dir, 0o644)?,
            };
            for chunk in chunks {
                file.write_all(&chunk)?;
            }
            Ok(file)
        })
    }

    /// Waits for the write in flight, then drops the staged file (which removes it).
    async fn discard(mut self) {
        let _ = self.settle().await;
    }

    /// Writes what is left and makes the blob durable under its final name (fsync, rename,
    /// fsync of the shard directory, which was itself synced into `blobs/` at open).
    /// Nothing when no byte was written (an empty body has no blob).
    async fn commit(mut self) -> Result<Stored> {
        let file = self.settle().await?;
        if file.is_none() && self.pending.is_empty() {
            return Ok(Stored::Nothing);
        }
        let file = self.write_pending(file).await??;
        let target = self.target;
        tokio::task::spawn_blocking(move || file.commit(&target)).await??;
        Ok(Stored::Blob)
    }
}

/// Starts flushing a large local blob to disk while it is still being written, so the fsync
/// at commit finds little left to do instead of a whole object's worth of dirty pages (a 1 GiB
/// PUT otherwise waits ~1 s more at the end). Runs beside the writes, on a clone of the
/// staged file's descriptor.
#[derive(Default)]
struct WriteBehind {
    unsynced: usize,
    inflight: Option<JoinHandle<()>>,
}

impl WriteBehind {
    const EVERY: usize = 32 << 20;

    fn wrote(&mut self, staged: &StagedFile, len: usize) {
        self.unsynced += len;
        if self.unsynced < Self::EVERY || self.inflight.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        if let Ok(file) = staged.file().try_clone() {
            self.unsynced = 0;
            self.inflight = Some(tokio::task::spawn_blocking(move || {
                let _ = file.sync_data();
            }));
        }
    }
}

/// A written blob and what was computed on the way.
pub struct Written {
    /// None for an empty body or an inline one.
    pub blob: Option<BlobGuard>,
    /// The body, when it was small enough to be kept in the index (see [`Blobs::write`]).
    pub inline: Option<Bytes>,
    pub digests: Digests,
}

/// A new blob not yet referenced by the index. Dropped without [`BlobGuard::keep`] (e.g. the
/// request future was cancelled) it deletes the blob in the background.
pub struct BlobGuard {
    blobs: Blobs,
    id: Option<String>,
}

impl BlobGuard {
    pub fn id(&self) -> &str {
        self.id.as_deref().unwrap_or_default()
    }

    /// The index now references the blob: keep it.
    pub fn keep(mut self) -> String {
        self.id.take().unwrap_or_default()
    }

    /// Deletes the blob now.
    pub async fn discard(mut self) {
        if let Some(id) = self.id.take() {
            self.blobs.delete_all([id]).await;
        }
    }

    fn forget(mut self) -> Option<BlobGuard> {
        self.id = None;
        None
    }
}

impl Drop for BlobGuard {
    fn drop(&mut self) {
        let Some(id) = self.id.take() else {
            return;
        };
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let blobs = self.blobs.clone();
            rt.spawn(async move { blobs.delete_all([id]).await });
        }
    }
}

/// Streams `range` of an open file in [`READ_CHUNK_SIZE`] chunks, each read on the blocking
/// pool, with the next chunk read while the consumer handles the current one. No thread is
/// held between chunks, so slow readers cost memory (≤ 2 chunks), not blocking threads.
fn file_stream(file: File, range: Range<u64>) -> ByteStream {
    struct State {
        pos: u64,
        end: u64,
        file: Option<File>,
        inflight: Option<JoinHandle<std::io::Result<(File, Bytes)>>>,
    }

    fn start(st: &mut State, file: File) {
        if st.pos >= st.end {
            return;
        }
        let len = (st.end - st.pos).min(READ_CHUNK_SIZE as u64);
        let pos = st.pos;
        st.pos += len;
        st.inflight = Some(tokio::task::spawn_blocking(move || {
            let mut file = file;
            file.seek(SeekFrom::Start(pos))?;
            let mut buf = Vec::with_capacity(len as usize);
            (&mut file).take(len).read_to_end(&mut buf)?;
            if buf.len() as u64 != len {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "blob shorter than its index entry",
                ));
            }
            Ok((file, Bytes::from(buf)))
        }));
    }

    let state = State {
        pos: range.start,
        end: range.end,
        file: Some(file),
        inflight: None,
    };
    futures::stream::unfold(state, |mut st| async move {
        if st.inflight.is_none() {
            let file = st.file.take()?;
            start(&mut st, file);
        }
        let inflight = st.inflight.take()?;
        match inflight.await {
            Ok(Ok((file, bytes))) => {
                start(&mut st, file);
                Some((Ok(bytes), st))
            }
            Ok(Err(e)) => Some((Err(Error::internal(e).into()), st)),
            Err(e) => Some((Err(Error::from(e).into()), st)),
        }
    })
    .boxed()
}
