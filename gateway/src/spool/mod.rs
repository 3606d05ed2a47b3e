//! The upload spool (transfer acceleration, first step): UploadPart bodies held durably on the
//! edge's disk (fsync), answered at once; the workers ([`worker`]) push spooled parts to the
//! store over the pooled connections, retrying while it is away. CompleteMultipartUpload waits
//! ([`Spool::settled`]) until every spooled part of the upload is at the store, so a client
//! never sees success for data the store does not hold. A restarted edge pushes what its spool
//! still holds. The client side of uploads is `ops/multipart.rs`.
//!
//! Spool layout: `<cache_dir>/spool/<hash of upload id>/<part>.json` (what the part is) and
//! `<part>.data` (its bytes, removed once the store has them).

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use md5::{Digest, Md5};
use outpost_store::engine::durable::{self, StagedFile};
use outpost_store::engine::{ByteStream, ChecksumAlgorithm, ChecksumType, space};
use outpost_store::error::{Code, Error, Result};
use outpost_store::s3::auth::Trailers;
use outpost_store::s3::headers;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tokio::sync::{mpsc, watch};

use crate::origin::OriginGroup;

mod worker;

/// What a spooled part is; written next to its bytes.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PartMeta {
    bucket: String,
    key: String,
    upload_id: String,
    part_number: u32,
    size: u64,
    md5_hex: String,
    /// `x-amz-checksum-<algo>` name and value the client sent (header or trailer).
    checksum: Option<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PartState {
    Spooled,
    AtStore,
    /// The store refused it (4xx): pushing it again would not help.
    Refused(String),
}

pub struct Spool {
    dir: PathBuf,
    budget: u64,
    /// upload id → part number → state.
    uploads: Mutex<HashMap<String, BTreeMap<u32, PartState>>>,
    /// Upload ids the store confirmed, with the checksum settings its answers named when the
    /// edge saw one (`None`: not learned, e.g. the store was away).
    known: Mutex<HashMap<String, Option<UploadChecksum>>>,
    spooled_bytes: Mutex<u64>,
    changed: watch::Sender<()>,
    jobs: mpsc::UnboundedSender<PathBuf>,
}

/// An upload's checksum algorithm and type (from its CreateMultipartUpload), or none.
pub type UploadChecksum = Option<(ChecksumAlgorithm, ChecksumType)>;

/// Which part of which upload.
pub struct PartOf<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    pub upload_id: &'a str,
    pub number: u32,
}

/// A part as ListParts shows it.
pub struct ListedPart {
    pub number: u32,
    pub size: u64,
    pub md5_hex: String,
    pub checksum: Option<(String, String)>,
    pub modified: std::time::SystemTime,
}

/// A part as answered to the client.
pub struct Spooled {
    pub md5_hex: String,
    pub checksum: Option<(String, String)>,
}

impl Spool {
    /// Opens the spool under `cache_dir`, queues what a previous run left unpushed, and
    /// starts the workers.
    pub fn open(
        cache_dir: &Path,
        budget: u64,
        workers: usize,
        origins: Arc<OriginGroup>,
    ) -> std::io::Result<Arc<Spool>> {
        let dir = cache_dir.join("spool");
        // Durable names all the way down: a spooled part is acknowledged to the client.
        durable::create_dir_all(&dir)?;
        let (jobs, queue) = mpsc::unbounded_channel();
        let spool = Arc::new(Spool {
            dir,
            budget,
            uploads: Mutex::new(HashMap::new()),
            known: Mutex::new(Default::default()),
            spooled_bytes: Mutex::new(0),
            changed: watch::channel(()).0,
            jobs,
        });
        spool.recover()?;
        let queue = Arc::new(tokio::sync::Mutex::new(queue));
        for _ in 0..workers {
            tokio::spawn(worker::push(
                Arc::clone(&spool),
                Arc::clone(&queue),
                Arc::clone(&origins),
            ));
        }
        Ok(spool)
    }

    /// Parts a crash left behind: those with bytes go back in the queue.
    fn recover(&self) -> std::io::Result<()> {
        for upload in std::fs::read_dir(&self.dir)? {
            let upload = upload?.path();
            for entry in std::fs::read_dir(&upload)? {
                let path = entry?.path();
                match path.extension().and_then(|e| e.to_str()) {
                    Some("json") => {
                        let Ok(meta) = read_meta(&path) else { continue };
                        let spooled = path.with_extension("data").exists();
                        let state = if spooled {
                            PartState::Spooled
                        } else {
                            PartState::AtStore
                        };
                        self.set(&meta, state);
                        if spooled {
                            self.account(|used| *used += meta.size);
                            let _ = self.jobs.send(path);
                        }
                    }
                    // Bytes whose description was never written: never answered either.
                    Some("data") if !path.with_extension("json").exists() => {
                        std::fs::remove_file(&path)?;
                    }
                    // A part that was being written when the edge stopped was never answered:
                    // staging files (`durable::is_staging`, and older versions' temp files)
                    // all end in `.tmp`.
                    Some("tmp") => std::fs::remove_file(&path)?,
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// Checks and spools one UploadPart body. Errors: SlowDown when the spool is full (its
    /// budget, or the filesystem: checked before the body when its length is declared),
    /// BadDigest / InvalidRequest for integrity failures (nothing is kept then).
    pub async fn put_part(
        &self,
        part: PartOf<'_>,
        request_headers: &http::HeaderMap,
        declared_size: Option<u64>,
        body: ByteStream,
        trailers: Trailers,
    ) -> Result<Spooled> {
        let integrity = headers::integrity(request_headers)?;
        let reserve = declared_size.unwrap_or(0);
        let room = self.account(|used| {
            let room = *used + reserve <= self.budget;
            if room {
                *used += reserve;
            }
            room
        });
        // The filesystem may hold less than the budget (the disk cache and others share it).
        if !room || !space::has_room(&self.dir, reserve) {
            if room {
                self.account(|used| *used -= reserve);
            }
            return Err(spool_full());
        }
        let body = integrity.verify_stream(body, trailers.clone());
        let upload_dir = self.dir.join(upload_dir_name(part.upload_id));
        let written = write_part(&upload_dir, body).await;
        self.account(|used| *used -= reserve);
        let (tmp, size, md5) = written.map_err(full_is_slow_down)?;
        if integrity.content_md5.is_some_and(|want| want != md5) {
            return Err(Error::new(Code::BadDigest));
        }
        let checksum = integrity.algorithm.and_then(|a| {
            let value = integrity
                .expected
                .as_ref()
                .map(|v| v.to_base64())
                .or_else(|| trailers.get(a.header()))?;
            Some((a.header().to_owned(), value))
        });
        let meta = PartMeta {
            bucket: part.bucket.to_owned(),
            key: part.key.to_owned(),
            upload_id: part.upload_id.to_owned(),
            part_number: part.number,
            size,
            md5_hex: hex::encode(md5),
            checksum: checksum.clone(),
        };
        let meta_path = upload_dir.join(format!("{}.json", part.number));
        commit_part(tmp, &meta_path, &meta)
            .await
            .map_err(full_is_slow_down)?;
        self.account(|used| *used += size);
        self.set(&meta, PartState::Spooled);
        let _ = self.jobs.send(meta_path);
        Ok(Spooled {
            md5_hex: meta.md5_hex,
            checksum,
        })
    }

    /// Waits up to `wait` until every spooled part of the upload is at the store. Errors:
    /// InvalidPart when the store refused one, ServiceUnavailable when some are still on
    /// their way (the workers go on; the client may retry Complete).
    pub async fn settled(&self, upload_id: &str, wait: Duration) -> Result<()> {
        let mut rx = self.changed.subscribe();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            {
                let uploads = self.uploads.lock().expect("spool lock");
                let parts = uploads.get(upload_id);
                let mut pending = 0;
                for (n, state) in parts.into_iter().flatten() {
                    match state {
                        PartState::Refused(why) => {
                            return Err(Error::msg(
                                Code::InvalidPart,
                                format!("Part {n} was refused by the store: {why}"),
                            ));
                        }
                        PartState::Spooled => pending += 1,
                        PartState::AtStore => {}
                    }
                }
                if pending == 0 {
                    return Ok(());
                }
            }
            if tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
            {
                return Err(Error::msg(
                    Code::ServiceUnavailable,
                    "Some parts are not at the store yet (it may be unreachable); the edge keeps pushing them: retry CompleteMultipartUpload.",
                ));
            }
        }
    }

    /// The parts of an upload the edge has taken (spooled or already at the store), in
    /// number order; None when none went through this edge.
    pub fn parts(&self, upload_id: &str) -> Option<Vec<ListedPart>> {
        let dir = self.dir.join(upload_dir_name(upload_id));
        let mut parts: Vec<ListedPart> = std::fs::read_dir(dir)
            .ok()?
            .filter_map(|entry| {
                let path = entry.ok()?.path();
                if path.extension()? != "json" {
                    return None;
                }
                let meta = read_meta(&path).ok()?;
                let modified = std::fs::metadata(&path).ok()?.modified().ok()?;
                Some(ListedPart {
                    number: meta.part_number,
                    size: meta.size,
                    md5_hex: meta.md5_hex,
                    checksum: meta.checksum,
                    modified,
                })
            })
            .collect();
        parts.sort_by_key(|p| p.number);
        (!parts.is_empty()).then_some(parts)
    }

    /// Whether the upload is known to exist at the store (so a part for it may be spooled).
    pub fn is_known(&self, upload_id: &str) -> bool {
        self.known
            .lock()
            .expect("spool lock")
            .contains_key(upload_id)
            || self
                .uploads
                .lock()
                .expect("spool lock")
                .contains_key(upload_id)
    }

    /// The upload exists at the store; `checksum` when an answer of the store named its
    /// checksum settings (a learned value is kept when a later mark has none).
    pub fn mark_known(&self, upload_id: &str, checksum: Option<UploadChecksum>) {
        let mut known = self.known.lock().expect("spool lock");
        let entry = known.entry(upload_id.to_owned()).or_default();
        if checksum.is_some() {
            *entry = checksum;
        }
    }

    /// The upload's checksum settings, if the edge has learned them (memory only: after a
    /// restart the store is asked again).
    pub fn checksum(&self, upload_id: &str) -> Option<UploadChecksum> {
        *self.known.lock().expect("spool lock").get(upload_id)?
    }

    /// The upload is complete or aborted: its spool goes, and the bytes of parts still
    /// waiting return to the budget.
    pub fn forget(&self, upload_id: &str) {
        self.uploads.lock().expect("spool lock").remove(upload_id);
        self.known.lock().expect("spool lock").remove(upload_id);
        let dir = self.dir.join(upload_dir_name(upload_id));
        let waiting: u64 = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .filter_map(|entry| {
                let path = entry.ok()?.path();
                let meta = read_meta(&path).ok()?;
                path.with_extension("data").exists().then_some(meta.size)
            })
            .sum();
        let _ = std::fs::remove_dir_all(dir);
        self.account(|used| *used = used.saturating_sub(waiting));
    }

    /// Bytes spooled and not yet at the store (what the budget bounds).
    fn account<R>(&self, f: impl FnOnce(&mut u64) -> R) -> R {
        f(&mut self.spooled_bytes.lock().expect("spool lock"))
    }

    fn set(&self, meta: &PartMeta, state: PartState) {
        let mut uploads = self.uploads.lock().expect("spool lock");
        uploads
            .entry(meta.upload_id.clone())
            .or_default()
            .insert(meta.part_number, state);
        drop(uploads);
        self.changed.send_replace(());
    }
}

fn spool_full() -> Error {
    Error::msg(
        Code::SlowDown,
        "The edge's upload spool is full; retry shortly.",
    )
}

/// A disk that filled up while a part was written is a full spool: the client should come
/// back later (or elsewhere), as for the budget, and nothing was kept.
fn full_is_slow_down(e: Error) -> Error {
    if e.code == Code::InsufficientStorage {
        tracing::warn!(error = ?e, "upload spool: the disk is full");
        spool_full()
    } else {
        e
    }
}

/// Upload ids come from the store; the spool names directories after a hash of them, so no
/// id can name a path.
fn upload_dir_name(upload_id: &str) -> String {
    hex::encode(&Sha256::digest(upload_id.as_bytes())[..16])
}

fn read_meta(path: &Path) -> std::io::Result<PartMeta> {
    serde_json::from_slice(&std::fs::read(path)?).map_err(std::io::Error::other)
}

/// Spool files are the edge's alone.
const SPOOL_FILE_MODE: u32 = 0o600;

/// Streams `body` into a staging file in `dir` ([`durable::StagedFile`]): (file, size, MD5).
/// Dropped on any error, the staging file goes with it.
async fn write_part(dir: &Path, mut body: ByteStream) -> Result<(StagedFile, u64, [u8; 16])> {
    let dir = dir.to_owned();
    let mut file = blocking(move || {
        durable::create_dir_all(&dir)?;
        StagedFile::create_in(&dir, SPOOL_FILE_MODE)
    })
    .await?;
    let mut md5 = Md5::new();
    let mut size = 0u64;
    while let Some(piece) = body.next().await {
        let piece = piece?;
        md5.update(&piece);
        size += piece.len() as u64;
        file = blocking(move || file.write_all(&piece).map(|_| file)).await?;
    }
    Ok((file, size, md5.finalize().into()))
}

/// The part's bytes and then its description take their final names, each durably (fsync,
/// rename, fsync of the directory): after a crash a part is either whole and described, or
/// its description is missing and the bytes are never relayed (the client was not answered).
async fn commit_part(data: StagedFile, meta_path: &Path, meta: &PartMeta) -> Result<()> {
    let meta_path = meta_path.to_owned();
    let json = serde_json::to_vec(meta).map_err(Error::internal)?;
    blocking(move || {
        data.commit(&meta_path.with_extension("data"))?;
        durable::write_replace(&meta_path, &json, SPOOL_FILE_MODE)
    })
    .await
}

/// Blocking file work on the blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(Error::internal)?
        .map_err(Error::internal)
}
