//! Start-up and periodic cleanup.
//!
//! A crash can leave two kinds of garbage, never a half-visible object:
//! - orphan blobs: written (or made unreachable by a commit) but not deleted — any blob that no
//!   object segment and no upload part references;
//! - staging files: a blob write interrupted before its rename ([`durable::StagedFile`]'s
//!   `.<random>.tmp`, or `<blob>#<n>` from object_store, which wrote local blobs before). The
//!   blob listing skips both, so they are found by walking the directory.
//!
//! [`sweep_orphans`] runs inside [`super::Engine::open`], before any request can write, so the
//! diff between the blob listing and the index cannot race a PUT in flight.
//! [`sweep_stale_uploads`] aborts multipart uploads left idle for too long.

use std::collections::HashSet;
use std::path::Path;
use std::time::SystemTime;

use redb::ReadableTable;

use super::blobs::Blobs;
use super::codec;
use super::error::Result;
use super::index::{self, Index, OBJECTS, PARTS, UPLOADS, UploadRecord};
use super::{Inner, durable};

/// What a start-up sweep removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    pub orphan_blobs: usize,
    pub staging_files: usize,
}

/// Deletes staging leftovers and every blob the index does not reference. Call only while no
/// write can be in flight (at open).
pub async fn sweep_orphans(index: &Index, blobs: &Blobs) -> Result<SweepReport> {
    let mut report = SweepReport::default();
    if let Some(root) = blobs.local_root() {
        let root = root.to_owned();
        report.staging_files = tokio::task::spawn_blocking(move || remove_staging(&root)).await??;
    }
    let referenced = index
        .read(|txn| {
            // Ids are 128-bit hex; keep them as integers so a large index stays compact here.
            let mut ids = HashSet::new();
            for entry in txn.open_table(OBJECTS)?.iter()? {
                let (_, v) = entry?;
                let record: index::ObjectRecord = codec::decode(v.value())?;
                ids.extend(record.segments.iter().filter_map(|s| id_bits(&s.blob)));
            }
            for entry in txn.open_table(PARTS)?.iter()? {
                let (_, v) = entry?;
                let part: index::PartRecord = codec::decode(v.value())?;
                ids.extend(part.blob.as_deref().and_then(id_bits));
            }
            Ok(ids)
        })
        .await?;
    let orphans: Vec<String> = blobs
        .list_ids()
        .await?
        .into_iter()
        .filter(|id| id_bits(id).is_some_and(|bits| !referenced.contains(&bits)))
        .collect();
    report.orphan_blobs = orphans.len();
    if !orphans.is_empty() {
        tracing::info!(count = orphans.len(), "removing orphan blobs");
    }
    blobs.delete_all(orphans).await;
    Ok(report)
}

fn is_staging_leftover(name: &str) -> bool {
    durable::is_staging(name) || name.contains('#')
}

fn id_bits(id: &str) -> Option<u128> {
    u128::from_str_radix(id, 16).ok()
}

/// Removes staging files (ours, and object_store's `name#suffix`) anywhere under `root`.
fn remove_staging(root: &Path) -> Result<usize> {
    let mut removed = 0;
    let mut dirs = vec![root.to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                dirs.push(entry.path());
            } else if is_staging_leftover(&entry.file_name().to_string_lossy()) {
                std::fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
    }
    if removed > 0 {
        tracing::info!(count = removed, "removed interrupted blob writes");
    }
    Ok(removed)
}

/// Aborts uploads initiated more than `stale_upload_age` before `now`, and forgets completed
/// uploads past their retention; returns how many uploads were aborted.
pub(super) async fn sweep_stale_uploads(inner: &Inner, now: SystemTime) -> Result<usize> {
    let max_age = inner.cfg.stale_upload_age.as_millis() as u64;
    let now = codec::to_ms(now);
    let (count, blobs) = inner
        .index
        .write(move |txn| {
            let mut stale = Vec::new();
            for entry in txn.open_table(UPLOADS)?.iter()? {
                let (k, v) = entry?;
                let upload: UploadRecord = codec::decode(v.value())?;
                if now.saturating_sub(upload.initiated_ms) > max_age {
                    let (bucket, key, id) = k.value();
                    stale.push((bucket.to_owned(), key.to_owned(), id.to_owned()));
                }
            }
            let mut blobs = Vec::new();
            for (bucket, key, id) in &stale {
                blobs.extend(index::remove_upload(txn, bucket, key, id)?);
            }
            super::multipart::forget_completed(txn, now, None)?;
            Ok((stale.len(), blobs))
        })
        .await?;
    inner.blobs.delete_all(blobs).await;
    Ok(count)
}
